// Feedback: resizing a running shard whose measured usage departs from what it was given or
// predicted to need (seeds 001 "dynamic re-sharding" and 004 "feedback loop": "adjust
// resource allocations during execution if the estimates deviate significantly from actual
// usage").
//
// The executor polls each running task; its backend reports the CPU seconds used so far and
// the peak memory so far. From two polls the engine knows the cores the shard used over the
// window between them. Decide() compares that with the shard's grant and, where the
// profiles know them, with the predicted intervals of the stage (profile.h), and answers with
// a new want (the ledger then grows the grant into free room, or shrinks it at once):
//
//   memory starving   peak >= starve_share of the granted memory (an OOM kill is near):
//                     want = max(peak * grow_margin, predicted hi), within the capacity
//   memory to spare   only with a prediction: after settle_s, the peak and the predicted
//                     upper edge both under spare_share of the grant:
//                     want = max(min, max(peak, predicted hi) * keep_margin)
//   CPU starving      used >= starve_share of the granted cores and the prediction's upper
//                     edge (or, without one, the want) is above the grant:
//                     want = predicted hi (or the want: the ledger grows it back)
//   CPU to spare      after settle_s, used and the predicted upper edge both under
//                     spare_share of the grant: want = max(min, max(used, hi) * keep_margin)
//
// Growing wins over shrinking in the same dimension; each dimension is decided on its own.
// The engine rate-limits the decisions per attempt (resize_interval_s).
//
// Pure: a function of its arguments. Thread safety: value types.
#ifndef AUGUR_WORKFLOW_FEEDBACK_H_
#define AUGUR_WORKFLOW_FEEDBACK_H_

#include <optional>
#include <string>

#include "workflow/resources.h"

namespace augur::workflow {

// What the shard used, measured.
struct Usage {
  double elapsed_s = 0;       // since the attempt started
  double cores = 0;           // CPU used over the last poll window, in cores
  uint64_t peak_memory = 0;   // bytes, high-water mark so far
};

// The 80 % upper edges of what the stage's shards use, where profiles know them.
struct UsagePrediction {
  std::optional<double> cores_hi;        // CPU seconds / wall seconds
  std::optional<uint64_t> peak_memory_hi;
};

struct FeedbackOptions {
  double settle_s = 5;         // no shrinking before a shard has run this long
  double starve_share = 0.9;   // of the grant: using this much is starving
  double spare_share = 0.5;    // of the grant: using less than this is over-provisioned
  double grow_margin = 1.5;
  double keep_margin = 1.25;
  double resize_interval_s = 10;  // per attempt, between two feedback resizes
  // The engine passes min(capacity, declared want * max_growth) as the ceiling: a cgroup's
  // peak memory counts page cache, which fills any limit when a shard reads a lot.
  double max_growth = 4;
};

struct FeedbackDecision {
  std::optional<Resources> want;  // nullopt: leave it
  std::string reason;             // for the log: what was measured against what
};

// `granted` is what the shard holds, `want`/`min` its request, `capacity` the most the want
// may become.
FeedbackDecision DecideFeedback(const Resources& granted, const Resources& want,
                                const Resources& min, const Resources& capacity,
                                const Usage& usage, const UsagePrediction& predicted,
                                const FeedbackOptions& options = {});

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_FEEDBACK_H_
