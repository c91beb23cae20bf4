#include "workflow/merge.h"

namespace augur::workflow {

MergeOutcome MergeBook::Offer(uint32_t index, const std::string& attempt_id, bool succeeded) {
  if (index >= winners_.size()) return MergeOutcome::kUnknown;
  std::optional<std::string>& w = winners_[index];
  if (w) {
    if (*w == attempt_id) return MergeOutcome::kAccepted;
    if (succeeded) ++duplicates_;
    return succeeded ? MergeOutcome::kDuplicate : MergeOutcome::kFailed;
  }
  if (!succeeded) return MergeOutcome::kFailed;
  w = attempt_id;
  ++done_;
  return MergeOutcome::kAccepted;
}

}  // namespace augur::workflow
