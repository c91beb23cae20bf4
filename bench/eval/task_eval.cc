#include "task_eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include "forecast/task_runtime.h"

namespace augur::eval {
namespace {

struct Task {
  std::string name;
  std::string category;
  std::string machine;
  std::vector<std::string> parents;
  double input_bytes = 0;
  double runtime = 0;
};

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool LoadTasks(const std::string& path, std::vector<Task>* out, std::string* err) {
  std::ifstream in(path);
  if (!in) {
    *err = "cannot open " + path;
    return false;
  }
  nlohmann::json j;
  try {
    in >> j;
    const auto& tasks = j.at("workflow").at("tasks");
    for (const auto& t : tasks) {
      Task task;
      task.name = t.at("name").get<std::string>();
      if (t.contains("category")) {
        task.category = t.at("category").get<std::string>();
      } else {
        task.category = task.name.substr(0, task.name.find("_ID"));
      }
      if (t.contains("machine") && t.at("machine").is_string()) {
        task.machine = t.at("machine").get<std::string>();
      }
      if (t.contains("parents")) task.parents = t.at("parents").get<std::vector<std::string>>();
      if (t.contains("files")) {
        for (const auto& f : t.at("files")) {
          if (f.value("link", "") == "input") task.input_bytes += f.value("sizeInBytes", 0.0);
        }
      }
      task.runtime = t.at("runtimeInSeconds").get<double>();
      out->push_back(std::move(task));
    }
  } catch (const std::exception& e) {
    *err = path + ": " + e.what();
    return false;
  }
  return true;
}

// Kahn's algorithm; among ready tasks the one listed first in the file goes first.
std::vector<size_t> TopoOrder(const std::vector<Task>& tasks) {
  std::unordered_map<std::string, size_t> idx;
  for (size_t i = 0; i < tasks.size(); ++i) idx[tasks[i].name] = i;
  std::vector<int> indeg(tasks.size(), 0);
  std::vector<std::vector<size_t>> children(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    for (const auto& p : tasks[i].parents) {
      auto it = idx.find(p);
      if (it == idx.end()) continue;
      ++indeg[i];
      children[it->second].push_back(i);
    }
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<>> ready;
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (indeg[i] == 0) ready.push(i);
  }
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = ready.top();
    ready.pop();
    order.push_back(i);
    for (size_t c : children[i]) {
      if (--indeg[c] == 0) ready.push(c);
    }
  }
  return order;  // tasks on a cycle (malformed input) are left out
}

}  // namespace

int RunTaskEval(const std::vector<std::string>& json_paths) {
  std::printf("| trace | host known | tasks | scored | MdAPE model | MdAPE per-category mean | "
              "model better on |\n|---|---|---|---|---|---|---|\n");
  for (const std::string& path : json_paths) {
   for (bool use_host : {false, true}) {
    std::vector<Task> tasks;
    std::string err;
    if (!LoadTasks(path, &tasks, &err)) {
      std::fprintf(stderr, "augur-eval tasks: %s\n", err.c_str());
      return 1;
    }
    const std::vector<size_t> order = TopoOrder(tasks);
    std::unordered_map<std::string, size_t> idx;
    for (size_t i = 0; i < tasks.size(); ++i) idx[tasks[i].name] = i;

    forecast::TaskRuntimePredictor model;
    std::map<std::string, std::pair<double, double>> mean;  // category -> (sum, n)
    std::vector<double> ape_model, ape_mean;
    size_t wins = 0;
    for (size_t i : order) {
      const Task& t = tasks[i];
      forecast::TaskFeatures f;
      f.category = t.category;
      if (use_host) f.host = t.machine;
      f.input_bytes = t.input_bytes;
      double psum = 0, pmax = 0;
      int np = 0;
      for (const auto& p : t.parents) {
        auto it = idx.find(p);
        if (it == idx.end()) continue;
        psum += tasks[it->second].runtime;
        pmax = std::max(pmax, tasks[it->second].runtime);
        ++np;
      }
      f.num_parents = np;
      f.parent_runtime_mean = np ? psum / np : 0;
      f.parent_runtime_max = pmax;

      const double pred = model.Predict(f);
      auto& m = mean[t.category];
      // Scored only once the baseline has something to say (the category ran before), so
      // both are judged on the same tasks.
      if (m.second > 0 && t.runtime > 0 && std::isfinite(pred)) {
        const double base = m.first / m.second;
        const double em = std::fabs(pred - t.runtime) / t.runtime;
        const double eb = std::fabs(base - t.runtime) / t.runtime;
        ape_model.push_back(em);
        ape_mean.push_back(eb);
        if (em < eb) ++wins;
      }
      model.Learn(f, t.runtime);
      m.first += t.runtime;
      m.second += 1;
    }
    std::printf("| %s | %s | %zu | %zu | %.1f %% | %.1f %% | %zu of %zu |\n",
                std::filesystem::path(path).stem().string().c_str(), use_host ? "yes" : "no",
                tasks.size(), ape_model.size(), 100 * Median(ape_model), 100 * Median(ape_mean),
                wins, ape_model.size());
   }
  }
  return 0;
}

}  // namespace augur::eval
