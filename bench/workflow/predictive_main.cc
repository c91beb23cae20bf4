// workflow-predictive: does learning from earlier runs beat declared sizes? Replays the same
// workflows several times in sequence ("runs") through augur's scheduler and ledger in virtual
// time (replay.h, policy augur) on a host of fixed capacity, twice side by side with the same
// noise:
//   OFF  declared sizes only: want and min as a user would write them, predicted_s the stage's
//        declared expected run time;
//   ON   predictions learned online by a ProfileBook (profile.h) from the earlier runs only:
//        predicted_s = the learned wall time, want right-sized by engine.cc's SizedWant rule
//        (learned upper edge of peak memory x 1.1, of cores x 1.25, within [min, want]).
// A run's history is fed to the book after the run is replayed, never before.
//
//   workflow-predictive --ablate --cores 4,8,16 --seeds 5 --runs 8 --from 4 --jobs 50
//       --alibaba ../shared/traces/alibaba2017_batch_task_subset.csv
//       ../shared/traces/wfcommons-*.json
//
// Each run perturbs every task's duration, CPU and peak memory by an independent lognormal
// factor (sigma 0.2, clipped to [0.6, 1.6]) drawn from the seed, so that runs differ. A task's
// real usage (the trace's avgCPU cores and memory, perturbed) is what it uses whatever it
// declares: a want below its real cores stretches its run time by real/want; a grant below
// its real peak memory would be OOM-killed, which the replay cannot do, so such a task is
// counted and charged: it is replayed again with the run time doubled (killed at the end,
// the worst case) and its memory at the declared want, and the book learns the OOM.
// bench/RESULTS.md "Predictive allocation (issue 11)" states the assumptions.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "wfcommons.h"
#include "workflow/profile.h"
#include "workflow/replay.h"

namespace {

using augur::workflow::AttemptState;
using augur::workflow::HistoryRecord;
using augur::workflow::ProfileBook;
using augur::workflow::Quantity;
using augur::workflow::Replay;
using augur::workflow::ReplayOptions;
using augur::workflow::ReplayPolicy;
using augur::workflow::ReplayTask;
using augur::workflow::Resources;

constexpr double kGiB = double(1ULL << 30);

// One task of a trace, unperturbed.
struct Task {
  std::string workflow, stage;
  std::vector<int> preds;
  double duration_s = 1;
  double cpu = 1;               // real cores used (avgCPU / 100)
  double memory = 0;            // real peak bytes; 0: the trace has none (memory is not sized)
  Resources want, min;          // declared
  double expected_s = 1;        // declared expected run time
  bool within_request = false;  // real usage never exceeds the declared want (Alibaba)
};

struct Trace {
  std::string name;
  std::vector<Task> tasks;
};

// WfCommons, parsed as makespan_main.cc does; the stage is the task's category (or its name
// without the trailing _ID). Declared: `declared` (1 core, 2 GiB unless told), min 0.25 core
// and 256 MiB, expected the category's mean run time in the trace.
bool LoadWfCommons(const std::string& path, const Resources& declared, Trace* out,
                   std::string* error) {
  augur::bench::WfTrace trace;
  if (!augur::bench::LoadWfCommons(path, &trace, error)) return false;
  out->name = trace.name;
  std::map<std::string, std::pair<double, int>> mean;
  for (const augur::bench::WfTask& t : trace.tasks) {
    Task r;
    r.workflow = out->name;
    r.stage = t.category;
    r.duration_s = t.runtime_s;
    r.cpu = std::max(0.01, t.avg_cpu_percent / 100.0);
    r.memory = std::max(0.0, t.memory_kb.value_or(0.0)) * 1024;
    r.want = declared;
    r.min = {0.25, 256ULL << 20};
    r.preds = t.parents;
    mean[r.stage].first += r.duration_s;
    mean[r.stage].second += 1;
    out->tasks.push_back(std::move(r));
  }
  for (Task& t : out->tasks) t.expected_s = mean[t.stage].first / mean[t.stage].second;
  return true;
}

// Alibaba 2017 batch_task: the first `jobs` jobs (in file order) with Terminated tasks. A job
// is a workflow, each of its tasks a stage of one shard (one instance stands for the task),
// independent (the table has no edges). Duration end - create (at least 1 s, the trace's
// resolution). The table has requests only: declared want = the request (cpus / 100 cores,
// normalized memory x 64 GiB), min = half its cores and all its memory (the ledger may grant
// memory down to min, and a grant below the peak would be an OOM), expected = the job's mean
// duration; the real
// usage is taken to be the request times the run's noise factor capped at 1 (a task does not
// use more than it requested, so declared sizes never OOM).
bool LoadAlibaba(const std::string& path, int jobs, Trace* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot open";
    return false;
  }
  out->name = fmt::format("alibaba2017 batch ({} jobs)", jobs);
  std::string line;
  std::getline(in, line);
  std::map<std::string, std::vector<int>> by_job;
  std::vector<std::string> order;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) f.push_back(c);
    if (f.size() < 8 || f[5] != "Terminated" || f[6].empty() || f[7].empty()) continue;
    if (!by_job.contains(f[2])) {
      if (int(order.size()) == jobs) break;
      order.push_back(f[2]);
    }
    Task t;
    try {
      t.duration_s = std::max(1.0, std::stod(f[1]) - std::stod(f[0]));
      t.cpu = std::stod(f[6]) / 100;
      t.memory = std::floor(std::stod(f[7]) * 64 * kGiB);
    } catch (const std::exception&) {
      *error = fmt::format("{}:{}: bad number", path, lineno);
      return false;
    }
    t.workflow = "job" + f[2];
    t.stage = "task" + f[3];
    t.want = {t.cpu, uint64_t(t.memory)};
    t.within_request = true;
    t.min = {t.cpu / 2, uint64_t(t.memory)};
    by_job[f[2]].push_back(int(out->tasks.size()));
    out->tasks.push_back(std::move(t));
  }
  for (auto& [job, idx] : by_job) {
    double sum = 0;
    for (int i : idx) sum += out->tasks[i].duration_s;
    for (int i : idx) out->tasks[i].expected_s = sum / double(idx.size());
  }
  return true;
}

// One run's real values of one task.
struct Actual {
  double duration_s, cpu, memory;
};

std::vector<std::vector<Actual>> Perturb(const Trace& tr, int runs, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0, 0.2);
  auto f = [&] { return std::clamp(std::exp(n(rng)), 0.6, 1.6); };
  std::vector<std::vector<Actual>> out(runs);
  for (auto& run : out) {
    for (const Task& t : tr.tasks) {
      const double c = f(), m = f();
      run.push_back({t.duration_s * f(), t.cpu * (t.within_request ? std::min(1.0, c) : c),
                     t.memory * (t.within_request ? std::min(1.0, m) : m)});
    }
  }
  return out;
}

// engine.cc Impl::SizedWant (size_memory_margin 1.1, size_cpu_margin 1.25).
std::optional<Resources> SizedWant(const ProfileBook& book, const Task& t) {
  auto e = book.Predict(t.workflow, t.stage);
  if (!e.memory() && !e.cpu()) return std::nullopt;
  Resources sized = t.want;
  if (e.memory() && t.memory > 0) {
    double mem = e.memory()->hi * 1.1;
    if (e.memory()->floor) mem = std::max(mem, *e.memory()->floor * 1.2);
    sized.memory = std::clamp<uint64_t>(uint64_t(std::ceil(mem)), t.min.memory, t.want.memory);
  }
  if (e.cpu() && e.wall() && e.wall()->value > 0) {
    sized.cpu = std::clamp(e.cpu()->hi / e.wall()->value * 1.25, t.min.cpu, t.want.cpu);
  }
  return sized;
}

struct Errors {
  std::vector<double> wall_ape, mem_ape;
  size_t wall_in = 0, mem_in = 0;
};

struct RunStats {
  double makespan = 0, bound = 0, util = 0;
  int ooms = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Replays one run of `tr` with real values `act`. With a book (ON), predictions and sizes come
// from it and the run's history is learned afterwards; errors are recorded when `err`.
augur::Result<RunStats> RunOnce(const Trace& tr, const std::vector<Actual>& act,
                                const Resources& cap, ProfileBook* book, Errors* err,
                                int64_t run_index, bool use_times = true, bool use_sizes = true) {
  const size_t n = tr.tasks.size();
  std::vector<ReplayTask> tasks(n);
  std::vector<double> dur(n);  // run time at a full grant, after a want below the real cores
  for (size_t i = 0; i < n; ++i) {
    const Task& t = tr.tasks[i];
    ReplayTask& r = tasks[i];
    r.preds = t.preds;
    r.want = t.want;
    r.min = t.min;
    r.predicted_s = t.expected_s;
    if (book != nullptr) {
      if (auto w = book->Predict(t.workflow, t.stage, Quantity::kWall)) {
        if (use_times) r.predicted_s = std::max(w->value, 0.001);
        if (err) {
          err->wall_ape.push_back(std::abs(w->value - act[i].duration_s) / act[i].duration_s);
          err->wall_in += w->lo <= act[i].duration_s && act[i].duration_s <= w->hi;
        }
      }
      if (auto m = book->Predict(t.workflow, t.stage, Quantity::kMemory); m && t.memory > 0) {
        if (err) {
          err->mem_ape.push_back(std::abs(m->value - act[i].memory) / act[i].memory);
          err->mem_in += m->lo <= act[i].memory && act[i].memory <= m->hi;
        }
      }
      if (auto w = SizedWant(*book, t); w && use_sizes) r.want = *w;
    }
    // Capacity clamps (as makespan_main does), min within want.
    r.want.cpu = std::min(r.want.cpu, cap.cpu);
    r.want.memory = std::min(r.want.memory, cap.memory);
    r.min.cpu = std::min(r.min.cpu, r.want.cpu);
    r.min.memory = std::min(r.min.memory, r.want.memory);
    dur[i] = act[i].duration_s * std::max(1.0, act[i].cpu / r.want.cpu);
    r.actual_s = dur[i];
  }
  ReplayOptions o;
  o.capacity = cap;
  o.policy = ReplayPolicy::kAugur;
  auto first = Replay(tasks, o);
  if (!first) return augur::Err(first.error());
  // A first grant below the real peak: OOM-killed in reality. Charge a re-run at the declared
  // memory, killed at the end (twice the run time).
  std::vector<bool> oom(n, false);
  RunStats s;
  for (size_t i = 0; i < n; ++i) {
    if (tr.tasks[i].memory > 0 && double(first->tasks[i].first_grant.memory) < act[i].memory) {
      oom[i] = true;
      ++s.ooms;
      tasks[i].actual_s = 2 * dur[i];
      tasks[i].want.memory = std::min(tr.tasks[i].want.memory, cap.memory);
    }
  }
  auto result = first;
  if (s.ooms > 0) {
    result = Replay(tasks, o);
    if (!result) return augur::Err(result.error());
  }
  s.makespan = result->makespan_s;
  // The true lower bound from real usage: critical path of the real durations, and the real
  // CPU and memory work over the capacity.
  double cpu_work = 0, mem_work = 0;
  std::vector<double> finish(n, 0);
  double cp = 0;
  for (size_t i = 0; i < n; ++i) {
    cpu_work += std::min(act[i].cpu, cap.cpu) * act[i].duration_s;
    mem_work += std::min(act[i].memory, double(cap.memory)) * act[i].duration_s;
  }
  // Longest path by repeated relaxation in topological order (Kahn).
  std::vector<int> indeg(n, 0);
  std::vector<std::vector<int>> succ(n);
  for (size_t i = 0; i < n; ++i) {
    for (int p : tr.tasks[i].preds) {
      succ[p].push_back(int(i));
      ++indeg[i];
    }
  }
  std::vector<int> q;
  for (size_t i = 0; i < n; ++i)
    if (indeg[i] == 0) q.push_back(int(i));
  for (size_t k = 0; k < q.size(); ++k) {
    const int i = q[k];
    finish[i] += act[i].duration_s;
    cp = std::max(cp, finish[i]);
    for (int c : succ[i]) {
      finish[c] = std::max(finish[c], finish[i]);
      if (--indeg[c] == 0) q.push_back(c);
    }
  }
  s.bound = std::max({cp, cpu_work / cap.cpu, mem_work / double(cap.memory)});
  s.util = s.makespan > 0 ? cpu_work / (cap.cpu * s.makespan) : 0;
  if (book != nullptr) {
    for (size_t i = 0; i < n; ++i) {
      const Task& t = tr.tasks[i];
      HistoryRecord h;
      h.workflow_name = t.workflow;
      h.stage = t.stage;
      h.started_ns = int64_t((run_index * 1e6 + result->tasks[i].start_s) * 1e9);
      h.grant = tasks[i].want;
      if (oom[i]) {
        h.state = AttemptState::kOom;
        h.grant.memory = first->tasks[i].first_grant.memory;
        book->Learn(h);
        h.grant = tasks[i].want;
      }
      h.state = AttemptState::kSucceeded;
      h.wall_seconds = dur[i];
      h.cpu_seconds = act[i].cpu * act[i].duration_s;
      h.peak_memory_bytes = uint64_t(act[i].memory);
      book->Learn(h);
    }
  }
  return s;
}

std::vector<double> ParseList(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  for (std::string c; std::getline(ss, c, ',');) v.push_back(std::stod(c));
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"workflow-predictive: learned vs declared sizes over repeated runs, virtual time"};
  std::vector<std::string> files;
  std::string alibaba, cores_list = "4,8,16";
  double gib_per_core = 4;
  int seeds = 5, runs = 8, from = 4, jobs = 50;
  double wf_cores = 1, wf_gib = 2;
  bool ablate = false;
  app.add_option("FILES", files, "WfCommons JSON files")->check(CLI::ExistingFile);
  app.add_option("--alibaba", alibaba, "Alibaba 2017 batch_task CSV")->check(CLI::ExistingFile);
  app.add_option("--jobs", jobs, "Alibaba jobs to take, in file order")->capture_default_str();
  app.add_option("--cores", cores_list, "host sizes (cores), comma-separated")
      ->capture_default_str();
  app.add_option("--gib-per-core", gib_per_core, "host memory per core")->capture_default_str();
  app.add_option("--seeds", seeds, "noise seeds (median over them)")->capture_default_str();
  app.add_option("--runs", runs, "runs of each trace in sequence")->capture_default_str();
  app.add_option("--from", from, "makespan averaged over runs from..runs")->capture_default_str();
  app.add_option("--wf-cores", wf_cores, "WfCommons tasks' declared cores")->capture_default_str();
  app.add_option("--wf-gib", wf_gib, "WfCommons tasks' declared memory")->capture_default_str();
  app.add_flag("--ablate", ablate, "also ON with learned times only and with learned sizes only");
  CLI11_PARSE(app, argc, argv);
  from = std::clamp(from, 1, runs);

  std::vector<Trace> traces;
  for (const std::string& path : files) {
    Trace t;
    std::string error;
    if (!LoadWfCommons(path, {wf_cores, uint64_t(wf_gib * kGiB)}, &t, &error)) {
      std::fprintf(stderr, "workflow-predictive: %s\n", error.c_str());
      return 1;
    }
    traces.push_back(std::move(t));
  }
  if (!alibaba.empty()) {
    Trace t;
    std::string error;
    if (!LoadAlibaba(alibaba, jobs, &t, &error)) {
      std::fprintf(stderr, "workflow-predictive: %s\n", error.c_str());
      return 1;
    }
    traces.push_back(std::move(t));
  }

  std::printf("runs %d (makespan: mean of runs %d..%d), seeds %d (median), %g GiB per core\n\n",
              runs, from, runs, seeds, gib_per_core);
  std::printf(
      "| trace | tasks | cores | bound s | OFF s (x bound) | ON s (x bound) | ON/OFF | "
      "util OFF | util ON | OOMs ON (OFF) per run "
      "|%s\n|---|---|---|---|---|---|---|---|---|---|%s\n",
      ablate ? " times only / OFF | sizes only / OFF |" : "", ablate ? "---|---|" : "");
  std::map<std::string, Errors> errors;
  for (const Trace& tr : traces) {
    for (const double cores : ParseList(cores_list)) {
      const Resources cap{cores, uint64_t(cores * gib_per_core * kGiB)};
      std::vector<double> on_m, off_m, bound_m, on_u, off_u, on_oom, off_oom, t_m, s_m;
      for (int seed = 1; seed <= seeds; ++seed) {
        const auto act = Perturb(tr, runs, uint32_t(seed * 7919 + tr.tasks.size()));
        ProfileBook book, book_t, book_s;
        double tonly = 0, sonly = 0;
        double on = 0, off = 0, bound = 0, uon = 0, uoff = 0, oon = 0, ooff = 0;
        // Errors once per trace (the first host size): the book's predictions do not depend
        // on the host except through OOM records, which are rare.
        Errors* err = cores == ParseList(cores_list)[0] ? &errors[tr.name] : nullptr;
        for (int r = 1; r <= runs; ++r) {
          auto a = RunOnce(tr, act[r - 1], cap, nullptr, nullptr, r);
          auto b = RunOnce(tr, act[r - 1], cap, &book, r >= 2 ? err : nullptr, r);
          if (!a || !b) {
            std::fprintf(stderr, "workflow-predictive: %s: %s\n", tr.name.c_str(),
                         (!a ? a.error() : b.error()).message().c_str());
            return 1;
          }
          if (ablate) {
            auto t = RunOnce(tr, act[r - 1], cap, &book_t, nullptr, r, true, false);
            auto z = RunOnce(tr, act[r - 1], cap, &book_s, nullptr, r, false, true);
            if (!t || !z) return 1;
            if (r >= from) {
              tonly += t->makespan;
              sonly += z->makespan;
            }
          }
          if (r < from) continue;
          off += a->makespan;
          on += b->makespan;
          bound += a->bound;
          uoff += a->util;
          uon += b->util;
          oon += b->ooms;
          ooff += a->ooms;
        }
        const double k = runs - from + 1;
        on_m.push_back(on / k);
        off_m.push_back(off / k);
        bound_m.push_back(bound / k);
        on_u.push_back(uon / k);
        off_u.push_back(uoff / k);
        on_oom.push_back(oon / k);
        off_oom.push_back(ooff / k);
        t_m.push_back(tonly / k);
        s_m.push_back(sonly / k);
      }
      const double b = Median(bound_m), on = Median(on_m), off = Median(off_m);
      std::printf(
          "| %s | %zu | %g | %.1f | %.1f (%.2f) | %.1f (%.2f) | %.3f | %.0f %% | %.0f %% | "
          "%.1f (%.1f) |%s\n",
          tr.name.c_str(), tr.tasks.size(), cores, b, off, off / b, on, on / b, on / off,
          100 * Median(off_u), 100 * Median(on_u), Median(on_oom), Median(off_oom),
          ablate ? fmt::format(" {:.3f} | {:.3f} |", Median(t_m) / off, Median(s_m) / off).c_str()
                 : "");
    }
  }
  std::printf(
      "\nPrediction error of the book's estimate made before each task of runs 2..%d "
      "(pooled over seeds; first host size)\n\n",
      runs);
  std::printf(
      "| trace | wall n | wall MAPE | wall MdAPE | wall 80 %% coverage | memory n | "
      "memory MAPE | memory MdAPE | memory 80 %% coverage "
      "|\n|---|---|---|---|---|---|---|---|---|\n");
  for (const Trace& tr : traces) {
    const Errors& e = errors[tr.name];
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return v.empty() ? 0.0 : s / double(v.size());
    };
    auto cell = [&](const std::vector<double>& v, size_t in) {
      if (v.empty()) return std::string("— | — | — | —");
      return fmt::format("{} | {:.1f} % | {:.1f} % | {:.1f} %", v.size(), 100 * mean(v),
                         100 * Median(v), 100.0 * double(in) / double(v.size()));
    };
    std::printf("| %s | %s | %s |\n", tr.name.c_str(), cell(e.wall_ape, e.wall_in).c_str(),
                cell(e.mem_ape, e.mem_in).c_str());
  }
  return 0;
}
