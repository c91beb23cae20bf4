// workflow-makespan: replays WfCommons workflow executions (real DAGs with each task's
// measured run time, CPU and memory) through the workflow engine's scheduler and ledger in
// virtual time, on a host of fixed capacity, and compares the makespan with the lower bound
// max(critical path, total work / capacity) and with two baselines in the same harness:
// FIFO in submission order, and a critical-path list scheduler (HEFT's upward rank).
//
//   workflow-makespan --cores 8 --memory-gib 32 --seeds 5 ../shared/traces/wfcommons-*.json
//
// "exact": the scheduler is told each task's true run time. "noisy": each prediction is off
// by a uniform factor in [0.7, 1.3] (a fresh draw per seed); the median over seeds is shown.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

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
};

// WfCommons schema 1.x: workflow.tasks[] with name, parents[], runtimeInSeconds, avgCPU (%)
// and memory (KB); older files keep runtime under "runtime".
bool Load(const std::string& path, const Resources& cap, Loaded* out, std::string* error) {
  std::ifstream in(path);
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    *error = fmt::format("{}: not JSON: {}", path, e.what());
    return false;
  }
  const nlohmann::json& tasks = j["workflow"]["tasks"];
  if (!tasks.is_array()) {
    *error = path + ": no workflow.tasks array";
    return false;
  }
  out->name = j.value("name", path);
  std::map<std::string, int> index;
  for (const auto& t : tasks) index[t.at("name").get<std::string>()] = int(index.size());
  for (const auto& t : tasks) {
    ReplayTask r;
    r.actual_s = t.contains("runtimeInSeconds") ? t["runtimeInSeconds"].get<double>()
                                                : t.value("runtime", 1.0);
    r.actual_s = std::max(r.actual_s, 0.001);
    r.predicted_s = r.actual_s;
    const double cpu = std::max(0.05, t.value("avgCPU", 100.0) / 100.0);
    const uint64_t mem = uint64_t(std::max(1.0, t.value("memory", 1024.0))) * 1024;
    r.want = {std::min(cpu, cap.cpu), std::min(mem, cap.memory)};
    r.min = r.want;
    for (const auto& p : t.value("parents", nlohmann::json::array())) {
      auto it = index.find(p.get<std::string>());
      if (it == index.end()) {
        *error = fmt::format("{}: task {} has unknown parent {}", path,
                             t["name"].get<std::string>(), p.get<std::string>());
        return false;
      }
      r.preds.push_back(it->second);
    }
    out->tasks.push_back(std::move(r));
  }
  return true;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"workflow-makespan: WfCommons DAGs through augur's scheduler in virtual time"};
  std::vector<std::string> files;
  double cores = 8, memory_gib = 32;
  int seeds = 5;
  app.add_option("FILES", files, "WfCommons JSON files")->required()->check(CLI::ExistingFile);
  app.add_option("--cores", cores, "host CPU capacity")->capture_default_str();
  app.add_option("--memory-gib", memory_gib, "host memory capacity")->capture_default_str();
  app.add_option("--seeds", seeds, "noisy-prediction runs per file")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const Resources cap{cores, uint64_t(memory_gib * double(1ULL << 30))};
  const ReplayPolicy policies[] = {ReplayPolicy::kAugur, ReplayPolicy::kFifo,
                                   ReplayPolicy::kUpwardRank};
  std::printf("host: %g cores, %g GiB\n\n", cores, memory_gib);
  std::printf("| workflow | tasks | bound s | predictions | augur s (x bound) | fifo s (x) | "
              "upward-rank s (x) |\n|---|---|---|---|---|---|---|\n");
  int status = 0;
  for (const std::string& path : files) {
    Loaded w;
    std::string error;
    if (!Load(path, cap, &w, &error)) {
      std::fprintf(stderr, "workflow-makespan: %s\n", error.c_str());
      status = 1;
      continue;
    }
    for (const bool noisy : {false, true}) {
      std::map<ReplayPolicy, std::vector<double>> makespans;
      double bound = 0;
      for (int seed = 1; seed <= (noisy ? seeds : 1); ++seed) {
        std::vector<ReplayTask> tasks = w.tasks;
        if (noisy) {
          std::mt19937 rng(seed);
          std::uniform_real_distribution<double> f(0.7, 1.3);
          for (ReplayTask& t : tasks) t.predicted_s = t.actual_s * f(rng);
        }
        for (ReplayPolicy p : policies) {
          ReplayOptions o;
          o.capacity = cap;
          o.policy = p;
          auto r = Replay(tasks, o);
          if (!r) {
            std::fprintf(stderr, "workflow-makespan: %s: %s\n", path.c_str(),
                         r.error().message().c_str());
            return 1;
          }
          makespans[p].push_back(r->makespan_s);
          bound = r->lower_bound_s;
        }
      }
      std::string row = fmt::format("| {} | {} | {:.1f} | {} |", w.name, w.tasks.size(), bound,
                                    noisy ? fmt::format("±30 %, median of {}", seeds) : "exact");
      for (ReplayPolicy p : policies) {
        const double m = Median(makespans[p]);
        row += fmt::format(" {:.1f} ({:.3f}) |", m, m / bound);
      }
      std::printf("%s\n", row.c_str());
    }
  }
  return status;
}
