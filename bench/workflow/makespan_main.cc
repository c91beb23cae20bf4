// workflow-makespan: replays WfCommons workflow executions (real DAGs with each task's
// measured run time, CPU and memory) through the workflow engine's scheduler and ledger in
// virtual time, on a host of fixed capacity, and compares the makespan with a lower bound
// (makespan_bound.h; the old max(critical path, total work / capacity) beside it) and with
// two baselines in the same harness: FIFO in submission order, and a critical-path list
// scheduler (HEFT's upward rank).
//
//   workflow-makespan --cores 4 8 16 --seeds 5 --random 40 --mixed 100 TRACES/wfcommons-*.json
//
// "exact": the scheduler is told each task's true run time. "noisy": each prediction is off
// by a uniform factor in [0.7, 1.3] (a fresh draw per seed); the median over seeds is shown.
// --random N adds N seeded random layered DAGs (summarized), --mixed N seeded workloads of
// several workflows with priorities and deadlines; --no-plan runs augur without plans,
// --plan-search N with a local search over each plan; --dump writes the schedules as CSV.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "wfcommons.h"
#include "workflow/makespan_bound.h"
#include "workflow/replay.h"

namespace {

using augur::workflow::Replay;
using augur::workflow::ReplayOptions;
using augur::workflow::ReplayPolicy;
using augur::workflow::ReplayTask;
using augur::workflow::Resources;

struct Loaded {
  std::string name;
  std::vector<ReplayTask> tasks;
  std::vector<std::string> task_names;
};

// A WfCommons execution as replay tasks: each task's measured run time, avgCPU as its CPU
// want and its memory (1 MiB when the trace has none), within what the host has.
bool Load(const std::string& path, const Resources& cap, Loaded* out, std::string* error) {
  augur::bench::WfTrace trace;
  if (!augur::bench::LoadWfCommons(path, &trace, error)) return false;
  out->name = trace.name;
  for (const augur::bench::WfTask& t : trace.tasks) {
    ReplayTask r;
    r.actual_s = t.runtime_s;
    r.predicted_s = r.actual_s;
    const double cpu = std::max(0.05, t.avg_cpu_percent / 100.0);
    const uint64_t mem = uint64_t(std::max(1.0, t.memory_kb.value_or(1024.0))) * 1024;
    r.want = {std::min(cpu, cap.cpu), std::min(mem, cap.memory)};
    r.min = r.want;
    r.preds = t.parents;
    out->tasks.push_back(std::move(r));
    out->task_names.push_back(t.name);
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double GeoMean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += std::log(x);
  return v.empty() ? 0 : std::exp(s / double(v.size()));
}

// A seeded random layered DAG in the shape of scientific workflows: 3 to 7 layers of 1 to
// 24 tasks; each layer depends on the one before in one of four patterns (every task on
// all of it, on a group of it as a merge does, one to one, or on 1 to 3 random tasks); run
// times and CPU vary by layer as WfCommons tasks do (a layer's tasks are alike, within
// ±40 % and ±20 %). Tasks are listed layer by layer (the FIFO order).
Loaded RandomDag(uint32_t seed, const Resources& cap) {
  std::mt19937 rng(seed);
  auto uni = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  Loaded w;
  w.name = fmt::format("random-{}", seed);
  const int layers = 3 + int(rng() % 5);
  std::vector<int> prev;
  for (int l = 0; l < layers; ++l) {
    const int width = rng() % 4 == 0 ? 1 : 1 + int(rng() % 24);
    const double base_s = std::exp(uni(std::log(1.0), std::log(200.0)));
    const double base_cpu = uni(0.1, 1.5);
    const uint64_t mem = uint64_t(uni(0.1, 2.0) * double(1ULL << 30));
    const int pattern = int(rng() % 4);
    std::vector<int> layer;
    for (int k = 0; k < width; ++k) {
      ReplayTask t;
      t.actual_s = t.predicted_s = base_s * uni(0.6, 1.4);
      t.want = {std::min(cap.cpu, base_cpu * uni(0.8, 1.2)), std::min(mem, cap.memory)};
      t.min = t.want;
      if (!prev.empty()) {
        const int pw = int(prev.size());
        if (pattern == 0) {
          t.preds = prev;
        } else if (pattern == 1) {  // groups: task k merges its share of the layer before
          for (int j = k * pw / width; j < std::max(k * pw / width + 1, (k + 1) * pw / width);
               ++j) {
            t.preds.push_back(prev[std::min(j, pw - 1)]);
          }
        } else if (pattern == 2) {
          t.preds.push_back(prev[k % pw]);
        } else {
          for (int j = 0, m = 1 + int(rng() % 3); j < m; ++j) {
            const int p = prev[rng() % pw];
            if (std::find(t.preds.begin(), t.preds.end(), p) == t.preds.end()) {
              t.preds.push_back(p);
            }
          }
        }
        std::sort(t.preds.begin(), t.preds.end());
        t.preds.erase(std::unique(t.preds.begin(), t.preds.end()), t.preds.end());
      }
      layer.push_back(int(w.tasks.size()));
      w.tasks.push_back(std::move(t));
      w.task_names.push_back(fmt::format("l{}_{}", l, k));
    }
    prev = std::move(layer);
  }
  return w;
}

// As WfCommons writes it (what Load reads back).
void Export(const Loaded& w, const std::string& dir) {
  nlohmann::json tasks = nlohmann::json::array();
  for (size_t i = 0; i < w.tasks.size(); ++i) {
    const ReplayTask& t = w.tasks[i];
    nlohmann::json parents = nlohmann::json::array();
    for (int p : t.preds) parents.push_back(w.task_names[size_t(p)]);
    tasks.push_back({{"name", w.task_names[i]},
                     {"parents", parents},
                     {"runtimeInSeconds", t.actual_s},
                     {"avgCPU", t.want.cpu * 100},
                     {"memory", double(t.want.memory) / 1024}});
  }
  std::ofstream(dir + "/" + w.name + ".json")
      << nlohmann::json{{"name", w.name}, {"workflow", {{"tasks", tasks}}}}.dump(1) << "\n";
}

// A seeded mixed workload like the scheduler's property tests: 1 to 4 workflows arriving
// within 100 s, each of 1 to 30 tasks with random needs, its own priority (1..10) and, for
// half of them, a deadline 50 to 550 s after it arrives; tasks want 0.25 to 4 cores and
// accept 25 to 100 % of it; predictions within ±30 %.
std::vector<ReplayTask> MixedWorkload(uint32_t seed, const Resources& cap) {
  std::mt19937 rng(seed);
  const int workflows = 1 + int(rng() % 4);
  std::vector<ReplayTask> tasks;
  for (int w = 0; w < workflows; ++w) {
    const int n = 1 + int(rng() % 30), base = int(tasks.size());
    const double submit = double(rng() % 100);
    const int priority = 1 + int(rng() % 10);
    const double deadline = rng() % 2 ? submit + 50 + double(rng() % 500) : 0;
    for (int i = 0; i < n; ++i) {
      ReplayTask t;
      for (int j = 0; j < i; ++j) {
        if (rng() % 6 == 0) t.preds.push_back(base + j);
      }
      t.actual_s = 0.5 + double(rng() % 60);
      t.predicted_s = t.actual_s * (0.7 + 0.6 * double(rng() % 1000) / 1000.0);
      t.want = {std::min(cap.cpu, 0.25 * double(1 + rng() % 16)),
                std::min<uint64_t>(cap.memory, (1 + rng() % 32) * ((1ULL << 30) / 4))};
      t.min = t.want.Scaled(0.25 * double(1 + rng() % 4));
      t.priority = priority;
      t.workflow = w;
      t.submit_s = submit;
      t.deadline_s = deadline;
      tasks.push_back(std::move(t));
    }
  }
  return tasks;
}

constexpr ReplayPolicy kPolicies[] = {ReplayPolicy::kAugur, ReplayPolicy::kFifo,
                                      ReplayPolicy::kUpwardRank};

struct Settings {
  bool plan = true;
  int plan_search = 0;
};

ReplayOptions OptionsFor(ReplayPolicy p, const Resources& cap, const Settings& set) {
  ReplayOptions o;
  o.capacity = cap;
  o.policy = p;
  o.plan = set.plan;
  o.plan_search_steps = set.plan_search;
  return o;
}

// Makespans of each policy, exact (one run) or noisy (one run per seed), and the plan augur
// followed in each run.
struct Runs {
  std::map<ReplayPolicy, std::vector<double>> makespan;
  std::vector<std::string> plans;
};

bool RunAll(const Loaded& w, const Resources& cap, const Settings& set, bool noisy, int seeds,
            const std::string& dump, Runs* out) {
  for (int seed = 1; seed <= (noisy ? seeds : 1); ++seed) {
    std::vector<ReplayTask> tasks = w.tasks;
    if (noisy) {
      std::mt19937 rng(seed);
      std::uniform_real_distribution<double> f(0.7, 1.3);
      for (ReplayTask& t : tasks) t.predicted_s = t.actual_s * f(rng);
    }
    for (ReplayPolicy p : kPolicies) {
      auto r = Replay(tasks, OptionsFor(p, cap, set));
      if (!r) {
        std::fprintf(stderr, "workflow-makespan: %s: %s\n", w.name.c_str(),
                     r.error().message().c_str());
        return false;
      }
      out->makespan[p].push_back(r->makespan_s);
      if (p == ReplayPolicy::kAugur) out->plans.push_back(r->plan.empty() ? "-" : r->plan);
      if (!noisy && !dump.empty()) {
        std::ofstream csv(fmt::format("{}-{}-{}c-{}.csv", dump, w.name, cap.cpu,
                                      augur::workflow::ReplayPolicyName(p)));
        csv << "task,name,start,end,cpu\n";
        for (size_t i = 0; i < tasks.size(); ++i) {
          csv << fmt::format("{},{},{:.3f},{:.3f},{:.4f}\n", i, w.task_names[i],
                             r->tasks[i].start_s, r->tasks[i].end_s, r->tasks[i].first_grant.cpu);
        }
      }
    }
  }
  return true;
}

// The mixed workloads: makespan against the bound, the priority-weighted mean time from a
// workflow's arrival to its end (against FIFO's), and deadlines missed.
int RunMixed(int count, const Resources& cap, const Settings& set) {
  std::map<ReplayPolicy, std::vector<double>> makespan_ratio, flow_ratio;
  std::map<ReplayPolicy, int> missed;
  int with_deadline = 0;
  for (int seed = 1; seed <= count; ++seed) {
    const std::vector<ReplayTask> tasks = MixedWorkload(uint32_t(seed), cap);
    auto b = augur::workflow::ComputeMakespanBound(tasks, cap);
    if (!b) {
      std::fprintf(stderr, "workflow-makespan: mixed %d: %s\n", seed,
                   b.error().message().c_str());
      return 1;
    }
    std::map<ReplayPolicy, double> flow;
    for (ReplayPolicy p : kPolicies) {
      auto r = Replay(tasks, OptionsFor(p, cap, set));
      if (!r) {
        std::fprintf(stderr, "workflow-makespan: mixed %d: %s\n", seed,
                     r.error().message().c_str());
        return 1;
      }
      makespan_ratio[p].push_back(r->makespan_s / b->bound_s);
      std::map<int, double> end, submit, deadline, priority;
      for (size_t i = 0; i < tasks.size(); ++i) {
        const int w = tasks[i].workflow;
        end[w] = std::max(end[w], r->tasks[i].end_s);
        submit[w] = tasks[i].submit_s;
        deadline[w] = tasks[i].deadline_s;
        priority[w] = tasks[i].priority;
      }
      double weighted = 0, weights = 0;
      for (const auto& [w, e] : end) {
        weighted += priority[w] * (e - submit[w]);
        weights += priority[w];
        if (deadline[w] > 0) {
          if (p == ReplayPolicy::kAugur) ++with_deadline;
          if (e > deadline[w] + 1e-9) ++missed[p];
        }
      }
      flow[p] = weighted / weights;
    }
    for (ReplayPolicy p : kPolicies) flow_ratio[p].push_back(flow[p] / flow[ReplayPolicy::kFifo]);
  }
  std::printf("\n%d mixed workloads (seeds 1..%d: 1-4 workflows, priorities, deadlines, "
              "shrinkable tasks, ±30 %% predictions):\n\n"
              "| policy | makespan / bound, geo-mean (worst) | priority-weighted time to "
              "finish / FIFO's, geo-mean | deadlines missed (of %d) |\n|---|---|---|---|\n",
              count, count, with_deadline);
  for (ReplayPolicy p : kPolicies) {
    const auto& m = makespan_ratio[p];
    std::printf("| %s | %.3f (%.3f) | %.3f | %d |\n",
                std::string(augur::workflow::ReplayPolicyName(p)).c_str(), GeoMean(m),
                *std::max_element(m.begin(), m.end()), GeoMean(flow_ratio[p]), missed[p]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"workflow-makespan: WfCommons DAGs through augur's scheduler in virtual time"};
  std::vector<std::string> files;
  std::vector<double> cores_list{8};
  double memory_gib = 32;
  int seeds = 5, random = 0, mixed = 0;
  std::string dump, export_dir;
  bool verbose = false, no_plan = false;
  Settings set;
  app.add_option("FILES", files, "WfCommons JSON files")->check(CLI::ExistingFile);
  app.add_option("--cores", cores_list, "host CPU capacity (several: one table each)")
      ->capture_default_str();
  app.add_option("--memory-gib", memory_gib, "host memory capacity")->capture_default_str();
  app.add_option("--seeds", seeds, "noisy-prediction runs per DAG")->capture_default_str();
  app.add_option("--random", random,
                 "also replay this many seeded random layered DAGs and summarize them");
  app.add_option("--mixed", mixed,
                 "also replay this many seeded mixed workloads (several workflows, priorities, "
                 "deadlines) and summarize them");
  app.add_flag("--no-plan", no_plan, "augur without plans (the scheduler alone)");
  app.add_option("--plan-search", set.plan_search,
                 "local-search steps for each plan (PlanOptions::search_steps)")
      ->capture_default_str();
  app.add_flag("--verbose", verbose, "a row per random DAG too");
  app.add_option("--dump", dump,
                 "write each exact schedule as CSV to DUMP-<workflow>-<cores>c-<policy>.csv "
                 "(task, name, start, end, cpu)");
  app.add_option("--export", export_dir,
                 "write each random DAG to this directory as a WfCommons JSON file");
  CLI11_PARSE(app, argc, argv);
  set.plan = !no_plan;
  if (files.empty() && random == 0 && mixed == 0) {
    std::fprintf(stderr, "workflow-makespan: give WfCommons files, --random N, --mixed N\n");
    return 2;
  }

  int status = 0;
  for (const double cores : cores_list) {
    const Resources cap{cores, uint64_t(memory_gib * double(1ULL << 30))};
    std::printf("host: %g cores, %g GiB%s\n\n", cores, memory_gib,
                set.plan ? "" : "; augur without plans");
    std::vector<Loaded> dags;
    for (const std::string& path : files) {
      Loaded w;
      std::string error;
      if (!Load(path, cap, &w, &error)) {
        std::fprintf(stderr, "workflow-makespan: %s\n", error.c_str());
        status = 1;
        continue;
      }
      dags.push_back(std::move(w));
    }
    const size_t from_files = dags.size();
    for (int i = 1; i <= random; ++i) {
      dags.push_back(RandomDag(uint32_t(i), cap));
      if (!export_dir.empty()) Export(dags.back(), export_dir);
    }
    if (!dags.empty()) {
      std::printf(
          "| workflow | tasks | max(cp, work) s | bound s | predictions | augur s (x bound) | "
          "fifo s (x) | upward-rank s (x) | augur x max(cp, work) | augur's plan |\n"
          "|---|---|---|---|---|---|---|---|---|---|\n");
    }
    // Random DAGs: makespan / bound per policy, exact and noisy.
    std::map<std::pair<bool, ReplayPolicy>, std::vector<double>> ratios;
    std::map<bool, int> not_worse, worse_fifo, worse_ur;
    std::vector<std::string> bound_parts;
    for (size_t d = 0; d < dags.size(); ++d) {
      const Loaded& w = dags[d];
      auto b = augur::workflow::ComputeMakespanBound(w.tasks, cap);
      if (!b) {
        std::fprintf(stderr, "workflow-makespan: %s: %s\n", w.name.c_str(),
                     b.error().message().c_str());
        return 1;
      }
      if (d < from_files) {
        bound_parts.push_back(fmt::format(
            "{} on {} cores: critical path {:.1f}, work {:.1f}, heads and tails {:.1f}, "
            "packing {:.1f}, energetic {:.1f}",
            w.name, cores, b->critical_path_s, b->work_s, b->head_tail_s, b->packing_s,
            b->energetic_s));
      }
      for (const bool noisy : {false, true}) {
        Runs runs;
        if (!RunAll(w, cap, set, noisy, seeds, d < from_files ? dump : "", &runs)) return 1;
        std::map<ReplayPolicy, double> m;
        for (ReplayPolicy p : kPolicies) m[p] = Median(runs.makespan[p]);
        if (d < from_files || verbose) {
          std::map<std::string, int> chosen;
          for (const std::string& pl : runs.plans) ++chosen[pl];
          std::string plans;
          for (const auto& [pl, k] : chosen) {
            plans += (plans.empty() ? "" : ", ") + (noisy ? fmt::format("{} x{}", pl, k) : pl);
          }
          std::string row = fmt::format(
              "| {} | {} | {:.1f} | {:.1f} | {} |", w.name, w.tasks.size(), b->simple_s(),
              b->bound_s, noisy ? fmt::format("±30 %, median of {}", seeds) : "exact");
          for (ReplayPolicy p : kPolicies) {
            row += fmt::format(" {:.1f} ({:.3f}) |", m[p], m[p] / b->bound_s);
          }
          row += fmt::format(" {:.3f} | {} |", m[ReplayPolicy::kAugur] / b->simple_s(), plans);
          std::printf("%s\n", row.c_str());
        }
        if (d >= from_files) {
          for (ReplayPolicy p : kPolicies) ratios[{noisy, p}].push_back(m[p] / b->bound_s);
          const double a = m[ReplayPolicy::kAugur], f = m[ReplayPolicy::kFifo],
                       u = m[ReplayPolicy::kUpwardRank];
          not_worse[noisy] += a <= std::min(f, u) * 1.005;
          worse_fifo[noisy] += a > f * 1.005;
          worse_ur[noisy] += a > u * 1.005;
        }
      }
    }
    if (!dags.empty()) std::printf("\n");
    for (const std::string& s : bound_parts) std::printf("bound parts: %s\n", s.c_str());
    if (random > 0) {
      std::printf(
          "\n%d random layered DAGs (seeds 1..%d), makespan / bound:\n\n"
          "| predictions | augur geo-mean (worst) | fifo geo-mean (worst) | upward-rank "
          "geo-mean (worst) | augur within 0.5 %% of the better baseline or better | augur "
          "worse than fifo | augur worse than upward rank |\n|---|---|---|---|---|---|---|\n",
          random, random);
      for (const bool noisy : {false, true}) {
        std::string row =
            fmt::format("| {} |", noisy ? fmt::format("±30 %, median of {}", seeds) : "exact");
        for (ReplayPolicy p : kPolicies) {
          const std::vector<double>& v = ratios[{noisy, p}];
          row += fmt::format(" {:.3f} ({:.3f}) |", GeoMean(v),
                             *std::max_element(v.begin(), v.end()));
        }
        row += fmt::format(" {} of {} | {} | {} |", not_worse[noisy], random, worse_fifo[noisy],
                           worse_ur[noisy]);
        std::printf("%s\n", row.c_str());
      }
    }
    if (mixed > 0 && RunMixed(mixed, cap, set) != 0) return 1;
    std::printf("\n");
  }
  return status;
}
