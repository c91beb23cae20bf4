#include "workflow/dag.h"

#include <algorithm>
#include <queue>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace augur::workflow {

std::optional<std::vector<int>> Dag::FindCycle(const std::vector<std::vector<int>>& preds) {
  const int n = static_cast<int>(preds.size());
  // Iterative DFS along "waits for" edges; a grey node met again closes a cycle.
  enum Color : char { kWhite, kGrey, kBlack };
  std::vector<Color> color(n, kWhite);
  std::vector<int> parent(n, -1);
  for (int root = 0; root < n; ++root) {
    if (color[root] != kWhite) continue;
    std::vector<std::pair<int, size_t>> stack = {{root, 0}};
    color[root] = kGrey;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next == preds[node].size()) {
        color[node] = kBlack;
        stack.pop_back();
        continue;
      }
      const int p = preds[node][next++];
      if (p < 0 || p >= n) continue;  // FromPredecessors reports these
      if (color[p] == kGrey) {
        // node waits for p, which is on the stack; each node on the stack waits for the one
        // above it, so climbing parents from node back to p lists the cycle in the order
        // the nodes would run: p before node before parent(node) ... before p.
        std::vector<int> cycle = {p};
        for (int v = node; v != p; v = parent[v]) cycle.push_back(v);
        cycle.push_back(p);
        return cycle;
      }
      if (color[p] == kWhite) {
        color[p] = kGrey;
        parent[p] = node;
        stack.push_back({p, 0});
      }
    }
  }
  return std::nullopt;
}

Result<Dag> Dag::FromPredecessors(std::vector<std::vector<int>> preds) {
  const int n = static_cast<int>(preds.size());
  for (int i = 0; i < n; ++i) {
    std::vector<int> sorted = preds[i];
    std::sort(sorted.begin(), sorted.end());
    for (size_t k = 0; k < sorted.size(); ++k) {
      if (sorted[k] < 0 || sorted[k] >= n) {
        return Err(Status::InvalidArgument(
            fmt::format("node {} waits for node {}, which does not exist", i, sorted[k])));
      }
      if (k > 0 && sorted[k] == sorted[k - 1]) {
        return Err(Status::InvalidArgument(
            fmt::format("node {} waits for node {} twice", i, sorted[k])));
      }
    }
  }
  if (auto cycle = FindCycle(preds)) {
    return Err(Status::InvalidArgument(
        fmt::format("the graph has a cycle: {}", fmt::join(*cycle, " -> "))));
  }
  Dag d;
  d.preds_ = std::move(preds);
  d.succs_.assign(n, {});
  std::vector<int> indegree(n, 0);
  for (int i = 0; i < n; ++i) {
    indegree[i] = static_cast<int>(d.preds_[i].size());
    for (int p : d.preds_[i]) d.succs_[p].push_back(i);
  }
  std::priority_queue<int, std::vector<int>, std::greater<>> ready;
  for (int i = 0; i < n; ++i) {
    if (indegree[i] == 0) ready.push(i);
  }
  while (!ready.empty()) {
    const int v = ready.top();
    ready.pop();
    d.topo_.push_back(v);
    for (int s : d.succs_[v]) {
      if (--indegree[s] == 0) ready.push(s);
    }
  }
  return d;
}

CriticalPath ComputeCriticalPath(const Dag& dag, const std::vector<double>& duration_s) {
  const size_t n = dag.size();
  CriticalPath cp;
  cp.remaining_s.assign(n, 0);
  std::vector<int> next(n, -1);
  const std::vector<int>& topo = dag.topological_order();
  for (auto it = topo.rbegin(); it != topo.rend(); ++it) {
    const int v = *it;
    double tail = 0;
    for (int s : dag.succs(v)) {
      if (cp.remaining_s[s] > tail || (cp.remaining_s[s] == tail && next[v] == -1)) {
        tail = cp.remaining_s[s];
        next[v] = s;
      }
    }
    cp.remaining_s[v] = (v < int(duration_s.size()) ? duration_s[v] : 0) + tail;
  }
  int start = -1;
  for (size_t v = 0; v < n; ++v) {
    if (start == -1 || cp.remaining_s[v] > cp.remaining_s[start]) start = int(v);
  }
  if (start >= 0) {
    cp.length_s = cp.remaining_s[start];
    for (int v = start; v != -1; v = next[v]) cp.path.push_back(v);
  }
  return cp;
}

}  // namespace augur::workflow
