// MergeBook: which shard attempt's result counts, so that merging is idempotent.
//
// Every attempt has an id. The first successful result of a shard wins; a later success of
// another attempt of the same shard (a straggler whose retry finished first, a result
// replayed after a restart) is a duplicate and is discarded, and a result for a shard the
// book does not know is rejected. The seeds' "conflict resolution": one winner per shard,
// decided by arrival, recorded so that a replay decides the same way.
//
// A stage's output is then its winners' outputs in shard order (concat) or what its merge
// command makes of them; the executor does that I/O once Complete() is true.
//
// Thread safety: a value type; one thread at a time.
#ifndef AUGUR_WORKFLOW_MERGE_H_
#define AUGUR_WORKFLOW_MERGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace augur::workflow {

enum class MergeOutcome {
  kAccepted,   // the shard's winner
  kDuplicate,  // the shard already has a winner; discarded
  kFailed,     // a failed attempt: recorded, no winner
  kUnknown,    // no such shard in this book; rejected
};

class MergeBook {
 public:
  explicit MergeBook(uint32_t shards) : winners_(shards) {}

  // Offers the result of `attempt_id` for shard `index`. Idempotent: offering the winning
  // attempt again says kAccepted again and changes nothing.
  MergeOutcome Offer(uint32_t index, const std::string& attempt_id, bool succeeded);

  // The winning attempt of a shard, if any.
  const std::optional<std::string>& winner(uint32_t index) const { return winners_[index]; }
  uint32_t shards() const { return static_cast<uint32_t>(winners_.size()); }
  uint32_t done() const { return done_; }
  bool Complete() const { return done_ == winners_.size(); }
  uint64_t duplicates() const { return duplicates_; }

 private:
  std::vector<std::optional<std::string>> winners_;
  uint32_t done_ = 0;
  uint64_t duplicates_ = 0;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_MERGE_H_
