// Dag: the stages of a workflow as a directed acyclic graph, and its critical path.
//
// Nodes are indices (a workflow's stages in file order, or any tasks). The critical path is
// the longest chain of predicted durations from a node to the end of the graph (HEFT's
// upward rank); the scheduler uses it for slack ("deadline - now - remaining path") and the
// engine recomputes it as shards finish, with finished work counted as zero.
//
// Thread safety: immutable after construction.
#ifndef AUGUR_WORKFLOW_DAG_H_
#define AUGUR_WORKFLOW_DAG_H_

#include <optional>
#include <vector>

#include "augur/status.h"

namespace augur::workflow {

class Dag {
 public:
  // `preds[i]` lists the nodes node i waits for. InvalidArgument naming the cycle
  // ("0 -> 2 -> 0") or an out-of-range or repeated edge.
  static Result<Dag> FromPredecessors(std::vector<std::vector<int>> preds);

  size_t size() const { return preds_.size(); }
  const std::vector<int>& preds(int node) const { return preds_[node]; }
  const std::vector<int>& succs(int node) const { return succs_[node]; }
  // Every node after all of its predecessors; among ready nodes, the lower index first.
  const std::vector<int>& topological_order() const { return topo_; }

  // A cycle as the list of nodes along it (first node repeated at the end), or nullopt.
  static std::optional<std::vector<int>> FindCycle(const std::vector<std::vector<int>>& preds);

 private:
  Dag() = default;
  std::vector<std::vector<int>> preds_;
  std::vector<std::vector<int>> succs_;
  std::vector<int> topo_;
};

struct CriticalPath {
  double length_s = 0;            // the longest chain, start to end
  std::vector<int> path;          // its nodes, in order
  // remaining_s[i]: the longest chain from the start of node i to the end, i included.
  std::vector<double> remaining_s;
};

// `duration_s[i]` is node i's predicted (remaining) duration; 0 for finished nodes.
CriticalPath ComputeCriticalPath(const Dag& dag, const std::vector<double>& duration_s);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_DAG_H_
