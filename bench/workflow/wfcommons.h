// WfCommons workflow executions (schema 1.x) as the workflow benchmarks read them:
// workflow.tasks[] with name, category, parents[], runtimeInSeconds (older files: runtime),
// avgCPU (%) and memory (KB). Each benchmark maps the raw figures to its own tasks.
#ifndef AUGUR_BENCH_WORKFLOW_WFCOMMONS_H_
#define AUGUR_BENCH_WORKFLOW_WFCOMMONS_H_

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace augur::bench {

struct WfTask {
  std::string name;
  std::string category;       // "category", else the name without its trailing _ID
  double runtime_s = 1;       // at least 1 ms
  double avg_cpu_percent = 100;
  std::optional<double> memory_kb;  // absent in some traces
  std::vector<int> parents;   // indices into the trace's tasks
};

struct WfTrace {
  std::string name;
  std::vector<WfTask> tasks;
};

// False with `*error` naming the file and what is wrong.
inline bool LoadWfCommons(const std::string& path, WfTrace* out, std::string* error) {
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
    WfTask w;
    w.name = t["name"].get<std::string>();
    w.category = t.value("category", w.name.substr(0, w.name.rfind('_')));
    w.runtime_s = std::max(0.001, t.contains("runtimeInSeconds")
                                      ? t["runtimeInSeconds"].get<double>()
                                      : t.value("runtime", 1.0));
    w.avg_cpu_percent = t.value("avgCPU", 100.0);
    if (t.contains("memory")) w.memory_kb = t["memory"].get<double>();
    for (const auto& p : t.value("parents", nlohmann::json::array())) {
      auto it = index.find(p.get<std::string>());
      if (it == index.end()) {
        *error = fmt::format("{}: task {} has unknown parent {}", path, w.name,
                             p.get<std::string>());
        return false;
      }
      w.parents.push_back(it->second);
    }
    out->tasks.push_back(std::move(w));
  }
  return true;
}

}  // namespace augur::bench

#endif  // AUGUR_BENCH_WORKFLOW_WFCOMMONS_H_
