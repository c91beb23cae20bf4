// Ledger: the soft reservations granted on one host (or one backend), and the pure
// decisions about them.
//
// A request says what it wants and the least it accepts (seed 002's soft reservations). A
// grant lies between the two, and the grants never add up to more than the capacity. When
// a request of higher score cannot fit, lower-score grants are shrunk toward their minimum
// (graceful degradation); only when the minimums cannot make room, and pre-emption is
// allowed, are lower-score holders pre-empted. When room comes back, shrunk grants grow back
// toward what they want, highest score first.
//
// Planning is separate from applying: Plan*() return what would change (so the executor
// can persist it and drive the backends' live resize before the ledger believes it), and
// Apply() records it. No I/O, no clock, no threads: the same inputs give the same plans.
//
// Thread safety: a value type; one thread at a time.
#ifndef AUGUR_WORKFLOW_LEDGER_H_
#define AUGUR_WORKFLOW_LEDGER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "augur/status.h"
#include "workflow/resources.h"

namespace augur::workflow {

struct ReservationRequest {
  std::string holder;  // unique id of who holds the grant (a shard attempt)
  Resources want;
  Resources min;       // <= want in every dimension
  double score = 0;    // higher keeps its grant longer
};

struct Grant {
  std::string holder;
  Resources want;
  Resources min;
  Resources granted;  // min <= granted <= want
  double score = 0;
};

// One change to an existing grant: shrink or grow toward `to`, or pre-empt (`to` is zero).
struct GrantChange {
  enum class Kind { kShrink, kGrow, kPreempt };
  Kind kind = Kind::kShrink;
  std::string holder;
  Resources from;
  Resources to;
  std::string reason;  // for the log: who it made room for, or why it grew
};

// What admitting a request takes: its grant, and the changes to others that make room.
struct Admission {
  Resources grant;
  std::vector<GrantChange> changes;  // shrinks (and pre-emptions) of lower-score grants
};

struct LedgerOptions {
  // Whether a request may pre-empt lower-score holders whose minimums stand in its way.
  // Off by default: a pre-empted shard loses its work (it is re-queued and re-run).
  bool allow_preemption = false;
};

class Ledger {
 public:
  explicit Ledger(Resources capacity, LedgerOptions options = {})
      : capacity_(capacity), options_(options) {}

  const Resources& capacity() const { return capacity_; }
  // Changes the capacity (a backend reported another size). Grants are not changed here:
  // when they no longer fit, PlanShrinkToCapacity() says what to shrink.
  void SetCapacity(Resources capacity) { capacity_ = capacity; }

  Resources Granted() const;  // sum of all grants
  Resources Free() const { return capacity_ - Granted(); }
  const std::map<std::string, Grant>& grants() const { return grants_; }
  const Grant* Find(const std::string& holder) const;

  // How `req` could be admitted now, or nullopt when even its minimum cannot be made to
  // fit (with this ledger's pre-emption setting). The grant is the most of `want` that fits;
  // lower-score grants (strictly lower score) are shrunk toward their minimums, lowest score
  // first, as far as `req.want` needs, and pre-empted (only if pre-emption is on) as far as
  // `req.min` needs.
  // `reserved` is kept out of reach (room held back for a blocked higher-score request).
  // InvalidArgument when min > want or the holder already has a grant.
  Result<std::optional<Admission>> PlanAdmit(const ReservationRequest& req,
                                             const Resources& reserved = {}) const;

  // Grows shrunk grants back toward their want, highest score first, within what is free
  // (less `reserved`). One change per grant that can grow.
  std::vector<GrantChange> PlanGrowBack(const Resources& reserved = {}) const;

  // When grants exceed the capacity (it shrank), shrinks the lowest-score grants toward
  // their minimum until they fit, then pre-empts (regardless of allow_preemption: nothing
  // else can make them fit) lowest-score first.
  std::vector<GrantChange> PlanShrinkToCapacity() const;

  // Records an admission (the grant, and its changes to others).
  Status ApplyAdmission(const ReservationRequest& req, const Admission& admission);
  // Records one change (a grow or shrink after the backend's resize said what it gave, or a
  // pre-emption). `granted` overrides change.to when the backend gave something else.
  Status ApplyChange(const GrantChange& change, std::optional<Resources> granted = {});
  // Ends a grant (the shard attempt finished or was cancelled). NotFound for an unknown one.
  Status Release(const std::string& holder);
  // Changes what a holder wants (its minimum and grant come down with it if above): a
  // grant that should grow past its old want (a shard whose usage ran away) then grows
  // through PlanGrowBack like a shrunk one. NotFound for an unknown holder.
  Status SetWant(const std::string& holder, const Resources& want);
  // Records a grant as it was found (recovery after a restart). Fails if it does not fit.
  Status Restore(const Grant& grant);

 private:
  Resources capacity_;
  LedgerOptions options_;
  std::map<std::string, Grant> grants_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_LEDGER_H_
