// WorkflowSpec: a workflow file (YAML) as the engine reads it, and its validation.
//
// A workflow is a DAG of stages; each stage runs one command per shard on a backend, under a
// soft reservation (want, and the least it accepts), and merges the shards' outputs. The
// keys and their meaning are documented in docs/WORKFLOWS.md; this header is the parsed
// form. ParseWorkflow is strict the way the agent config is (common/yaml_reader.h): every
// problem is reported, each as "ORIGIN:LINE:COLUMN: what is wrong", and nothing partial is
// returned.
//
// Thread safety: plain values.
#ifndef AUGUR_WORKFLOW_WORKFLOW_SPEC_H_
#define AUGUR_WORKFLOW_WORKFLOW_SPEC_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "workflow/resources.h"

namespace augur::workflow {

// Where something was written, for messages. 1-based; 0 when unknown.
struct SourcePos {
  int line = 0;
  int column = 0;
};

// How a stage is split into shards.
struct ShardsSpec {
  enum class Kind {
    kSingle,  // no `shards:` key: one shard
    kRange,   // shards: {range: [begin, end], count: N | auto, max: M}
    kItems,   // shards: {items: [a, b, c]}: one shard per item (count/max group them)
  };
  Kind kind = Kind::kSingle;
  uint64_t begin = 0;  // kRange: the half-open range [begin, end), begin < end
  uint64_t end = 0;
  std::vector<std::string> items;  // kItems, non-empty
  // Shards to cut; 0 means `count: auto` (the planner picks, at most `max`). For kItems the
  // default is one shard per item.
  uint32_t count = 1;
  uint32_t max = 0;  // with auto: upper bound (0: the planner's default)
  // A shard whose minimum cannot fit the host even when nothing else runs is split into
  // smaller shards (its range or items divided, its resources scaled by the fraction),
  // seeds 001/002. Only ranged and item shards can split. Key `split: false` turns it off.
  bool split_to_fit = true;
};

struct RetrySpec {
  uint32_t count = 0;  // attempts after the first
  std::chrono::milliseconds backoff{1000};  // before the first retry; doubles each time
  double grow_memory = 1.0;  // want and min memory multiplied by this per retry (>= 1)
  double grow_cpu = 1.0;     // and CPU
};

struct MergeSpec {
  enum class Kind {
    kConcat,   // shard outputs joined in shard order
    kCommand,  // `merge: {command: [...]}`: reads {inputs} (the shard outputs), writes stdout
  };
  Kind kind = Kind::kConcat;
  std::vector<std::string> command;
};

struct StageSpec {
  std::string name;                // [A-Za-z0-9_-]{1,64}, unique in the workflow
  std::vector<std::string> needs;  // stages this one waits for
  std::string backend = "process";
  std::optional<int> priority;     // 1..10; the workflow's when absent
  Resources want{1.0, 256ULL << 20};
  Resources min{1.0, 256ULL << 20};  // <= want; defaults to want
  ShardsSpec shards;
  RetrySpec retries;
  std::chrono::milliseconds timeout{0};  // per shard attempt; 0: none
  // The user's estimate of one shard's run time, used until history has one.
  std::optional<std::chrono::milliseconds> expected;
  std::vector<std::string> run;  // argv with placeholders; non-empty
  MergeSpec merge;
  // `canary:`: when the stage has no history, run one shard first, learn from it, then size
  // and start the rest (seed 001). Unset: on for a stage of 3 or more shards.
  std::optional<bool> canary;
  // `speculate:`: a ranged or item shard running well past its prediction may have its
  // range re-run split in parallel; the first to finish (the shard, or all its pieces) wins.
  bool speculate = true;
  // `right_size:`: shards want what the stage's history (or its canary) says they use,
  // within the file's bounds. false: the declared resources, always.
  bool right_size = true;
  std::vector<std::pair<std::string, std::string>> env;  // `env: {K: V}`, added to the task's
  SourcePos pos;  // of the stage's `name:` key
};

struct Deadline {
  enum class Kind { kNone, kRelative, kAbsolute };
  Kind kind = Kind::kNone;
  std::chrono::milliseconds relative{0};  // kRelative: after submission
  int64_t absolute_ns = 0;                // kAbsolute: CLOCK_REALTIME (RFC 3339 in the file)

  // The deadline of a workflow submitted at `submitted_ns`, or 0 for none.
  int64_t At(int64_t submitted_ns) const;
};

struct WorkflowSpec {
  std::string name;  // `workflow:`, [A-Za-z0-9_.-]{1,64}
  int priority = 5;  // 1..10, 10 highest
  Deadline deadline;
  std::optional<double> budget;  // in the cost unit of the backends' cost classes; >= 0
  std::vector<StageSpec> stages;  // in file order

  // Index of the stage called `name`, or -1.
  int StageIndex(std::string_view name) const;
  // The stage's own priority, else the workflow's.
  int PriorityOf(const StageSpec& stage) const {
    return stage.priority.value_or(priority);
  }
};

// Parses and validates a workflow file. InvalidArgument listing every problem, one per line
// ("checksum.yaml:12:15: stages[1].needs: unknown stage 'cuont' (did you mean 'count'?)"),
// including: a cycle in needs (with its path: "a -> b -> a"), an unknown stage in needs, a
// priority out of range, a bad unit or duration, min above want, a range that cannot be
// split into `count` shards, a placeholder that cannot be filled ({input} in a stage that
// does not need exactly one stage, {inputs.X} for an X not in needs, {shard.item} without
// items), bad UTF-8. `origin` names the file in messages.
Result<WorkflowSpec> ParseWorkflow(std::string_view yaml, std::string_view origin = "<string>");
// Reads at most kMaxWorkflowFileBytes (a workflow file is a few KiB; the cap keeps
// `submit /dev/zero` from eating memory).
Result<WorkflowSpec> LoadWorkflowFile(const std::string& path);
inline constexpr size_t kMaxWorkflowFileBytes = 4 << 20;

// A workflow's name as `workflow:` accepts it: 1-64 of A-Z a-z 0-9 _ - . (stage names are the
// same without the dot).
bool IsWorkflowName(std::string_view s);
bool IsStageName(std::string_view s);
// An RFC 3339 date-time with its offset (2026-12-04T18:00:00Z, 2026-12-04T19:00:00.5+01:00),
// as `deadline:` accepts it: nanoseconds since the epoch, or nullopt.
std::optional<int64_t> ParseRfc3339(std::string_view text);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_WORKFLOW_SPEC_H_
