// Shard planning: how a stage is cut into shards when it becomes ready (seeds 001, 002).
//
//   shards: {range: [b, e], count: N}   N half-open sub-ranges as equal as integers allow
//   shards: {range: [b, e], count: auto} the count in 1..max that minimises the predicted
//                                         completion time (see PlanShards)
//   shards: {items: [...]}              one shard per item, or `count` groups of them
//   no shards key                       one shard
// Then, unless `split: false`, a shard whose minimum does not fit the largest instance the
// backend can grant even with nothing else running is split in halves, recursively, its
// range or items divided and its want and min scaled by the share it keeps, until its
// minimum fits or it is a single unit (then the stage cannot run here: an error). Split
// shards keep merge order: their ids read "3.0", "3.1", and `index` is the position in the
// stage's merged output.
//
// Pure: a function of the stage, the capacity and the predictions.
#ifndef AUGUR_WORKFLOW_SHARD_PLAN_H_
#define AUGUR_WORKFLOW_SHARD_PLAN_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/resources.h"
#include "workflow/workflow_spec.h"

namespace augur::workflow {

struct ShardDef {
  uint32_t index = 0;   // position in the stage's merge order, 0-based
  std::string id;       // "0", "1", ...; "1.0", "1.1" after a split
  uint64_t begin = 0;   // kRange: [begin, end)
  uint64_t end = 0;
  std::vector<std::string> items;  // kItems: the items this shard handles
  Resources want;
  Resources min;
};

struct PlanInput {
  // The largest single grant the stage's backend can give (its capacity).
  Resources capacity;
  // What is free for this stage now (for count: auto).
  Resources free;
  // count: auto: the predicted run time of the whole range as one shard (from history, else
  // `expected:` times the declared count, else a default), and a shard's start-up cost.
  double whole_stage_s = 60;
  double startup_s = 0.05;
  uint32_t default_max = 64;  // count: auto without max
  // count: auto with a budget: what one shard costs an hour at its want, and what is left
  // of the workflow's budget. Candidates whose predicted cost (k shards, each start-up plus
  // its share of the work) is over it are not chosen unless none fits.
  double cost_per_hour = 0;
  double budget_left = std::numeric_limits<double>::infinity();
};

// One candidate shard count considered by count: auto, for --explain.
struct CountCandidate {
  uint32_t count = 0;
  uint32_t parallel = 0;   // shards that fit at once
  double predicted_s = 0;  // predicted completion time of the stage
  double predicted_cost = 0;  // of all its shards, start-up included
  bool over_budget = false;
};

struct ShardPlan {
  std::vector<ShardDef> shards;
  std::vector<CountCandidate> candidates;  // count: auto only
  uint32_t splits = 0;                     // halvings done to fit (0: none)
  std::string note;                        // how the count was chosen, for status
};

// InvalidArgument when a shard cannot be made to fit (its minimum exceeds the capacity and it
// cannot be split further, or `split: false`).
Result<ShardPlan> PlanShards(const StageSpec& stage, const PlanInput& input);

// Halves a shard (range or items); false when it is a single unit.
bool SplitShard(const ShardDef& shard, ShardDef* first, ShardDef* second);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_SHARD_PLAN_H_
