#include "workflow/ledger.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

namespace augur::workflow {
namespace {

// Per-dimension "how much is still needed" after taking `got` from `need`.
struct Need {
  double cpu = 0;
  uint64_t memory = 0;
  bool none() const { return cpu <= Resources::kCpuEpsilon && memory == 0; }
  void Take(const Resources& got) {
    cpu = std::max(0.0, cpu - got.cpu);
    memory = memory > got.memory ? memory - got.memory : 0;
  }
  // The part of `have` that covers what is still needed.
  Resources Covered(const Resources& have) const {
    return {std::min(cpu, have.cpu), std::min(memory, have.memory)};
  }
};

bool IsZero(const Resources& r) { return r.cpu <= Resources::kCpuEpsilon && r.memory == 0; }

// Grants of score below `score`, lowest score first (ties by holder, so plans repeat).
std::vector<const Grant*> LowerScoreAscending(const std::map<std::string, Grant>& grants,
                                              double score) {
  std::vector<const Grant*> out;
  for (const auto& [holder, g] : grants) {
    if (g.score < score) out.push_back(&g);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Grant* a, const Grant* b) { return a->score < b->score; });
  return out;
}

}  // namespace

Resources Ledger::Granted() const {
  Resources sum;
  for (const auto& [holder, g] : grants_) sum += g.granted;
  return sum;
}

const Grant* Ledger::Find(const std::string& holder) const {
  auto it = grants_.find(holder);
  return it == grants_.end() ? nullptr : &it->second;
}

Result<std::optional<Admission>> Ledger::PlanAdmit(const ReservationRequest& req,
                                                   const Resources& reserved) const {
  if (!req.min.FitsIn(req.want)) {
    return Err(Status::InvalidArgument(fmt::format("reservation {}: min {} is above want {}",
                                                   req.holder, req.min.ToString(),
                                                   req.want.ToString())));
  }
  if (grants_.contains(req.holder)) {
    return Err(Status::InvalidArgument(fmt::format("{} already holds a grant", req.holder)));
  }
  const Resources avail = Free() - reserved;
  if (req.min.FitsIn(avail)) {
    return std::optional<Admission>(Admission{Resources::Min(req.want, avail), {}});
  }
  // Room must come from lower-score grants: shrinking them toward their minimums, as far
  // as the request's want needs (a higher score deserves what it wants before a lower one
  // keeps more than its least), and pre-empting only as far as its minimum needs.
  auto deficit = [&](const Resources& r) {
    return Need{std::max(0.0, r.cpu - avail.cpu), r.memory > avail.memory ? r.memory - avail.memory : 0};
  };
  const std::vector<const Grant*> lower = LowerScoreAscending(grants_, req.score);
  Resources shrinkable_total;
  for (const Grant* g : lower) shrinkable_total += g->granted - g->min;
  std::vector<const Grant*> preempted;
  {
    Need rest = deficit(req.min);
    rest.Take(shrinkable_total);
    for (size_t i = 0; !rest.none() && options_.allow_preemption && i < lower.size(); ++i) {
      // Pre-empting frees its minimum on top of what shrinking it would have given.
      rest.Take(lower[i]->min);
      preempted.push_back(lower[i]);
    }
    if (!rest.none()) return std::optional<Admission>();
  }
  Need need = deficit(req.want);
  Admission a;
  const std::string why = fmt::format("making room for {} (score {:.2f})", req.holder, req.score);
  for (const Grant* g : preempted) {
    need.Take(g->granted);
    a.changes.push_back({GrantChange::Kind::kPreempt, g->holder, g->granted, {}, why});
  }
  for (const Grant* g : lower) {
    if (need.none()) break;
    if (std::find(preempted.begin(), preempted.end(), g) != preempted.end()) continue;
    const Resources take = need.Covered(g->granted - g->min);
    if (IsZero(take)) continue;
    need.Take(take);
    a.changes.push_back({GrantChange::Kind::kShrink, g->holder, g->granted, g->granted - take, why});
  }
  Resources freed;
  for (const GrantChange& c : a.changes) freed += c.from - c.to;
  a.grant = Resources::Min(req.want, avail + freed);
  return std::optional<Admission>(std::move(a));
}

std::vector<GrantChange> Ledger::PlanGrowBack(const Resources& reserved) const {
  std::vector<const Grant*> order;
  for (const auto& [holder, g] : grants_) {
    if (!g.want.FitsIn(g.granted)) order.push_back(&g);
  }
  std::stable_sort(order.begin(), order.end(),
                   [](const Grant* a, const Grant* b) { return a->score > b->score; });
  Resources free = Free() - reserved;
  std::vector<GrantChange> out;
  for (const Grant* g : order) {
    const Resources grow = Resources::Min(g->want - g->granted, free);
    if (IsZero(grow)) continue;
    free -= grow;
    out.push_back({GrantChange::Kind::kGrow, g->holder, g->granted, g->granted + grow,
                   "load fell: growing back toward its want"});
  }
  return out;
}

std::vector<GrantChange> Ledger::PlanShrinkToCapacity() const {
  const Resources total = Granted();
  Need over{std::max(0.0, total.cpu - capacity_.cpu),
            total.memory > capacity_.memory ? total.memory - capacity_.memory : 0};
  std::vector<GrantChange> out;
  if (over.none()) return out;
  const std::vector<const Grant*> order =
      LowerScoreAscending(grants_, std::numeric_limits<double>::infinity());
  const std::string why = fmt::format("capacity fell to {}", capacity_.ToString());
  std::vector<const Grant*> shrunk;
  for (const Grant* g : order) {
    if (over.none()) break;
    const Resources take = over.Covered(g->granted - g->min);
    if (IsZero(take)) continue;
    over.Take(take);
    out.push_back({GrantChange::Kind::kShrink, g->holder, g->granted, g->granted - take, why});
  }
  for (const Grant* g : order) {
    if (over.none()) break;
    // Its shrink (if any) is replaced by the pre-emption, which frees the rest too.
    Resources freed_by_shrink;
    for (auto it = out.begin(); it != out.end(); ++it) {
      if (it->holder == g->holder) {
        freed_by_shrink = it->from - it->to;
        out.erase(it);
        break;
      }
    }
    over.Take(g->granted - freed_by_shrink);
    out.push_back({GrantChange::Kind::kPreempt, g->holder, g->granted, {}, why});
  }
  return out;
}

Status Ledger::ApplyAdmission(const ReservationRequest& req, const Admission& admission) {
  for (const GrantChange& c : admission.changes) {
    if (Status s = ApplyChange(c); !s.ok()) return s;
  }
  if (grants_.contains(req.holder)) {
    return Status::InvalidArgument(fmt::format("{} already holds a grant", req.holder));
  }
  grants_[req.holder] = Grant{req.holder, req.want, req.min, admission.grant, req.score};
  return Status::OK();
}

Status Ledger::ApplyChange(const GrantChange& change, std::optional<Resources> granted) {
  auto it = grants_.find(change.holder);
  if (it == grants_.end()) {
    return Status::NotFound(fmt::format("no grant held by {}", change.holder));
  }
  if (change.kind == GrantChange::Kind::kPreempt) {
    grants_.erase(it);
    return Status::OK();
  }
  it->second.granted = granted.value_or(change.to);
  return Status::OK();
}

Status Ledger::Release(const std::string& holder) {
  if (grants_.erase(holder) == 0) {
    return Status::NotFound(fmt::format("no grant held by {}", holder));
  }
  return Status::OK();
}

Status Ledger::SetWant(const std::string& holder, const Resources& want) {
  auto it = grants_.find(holder);
  if (it == grants_.end()) return Status::NotFound(fmt::format("no grant held by {}", holder));
  Grant& g = it->second;
  g.want = want;
  g.min = Resources::Min(g.min, want);
  g.granted = Resources::Min(g.granted, want);
  return Status::OK();
}

Status Ledger::Restore(const Grant& grant) {
  if (grants_.contains(grant.holder)) {
    return Status::InvalidArgument(fmt::format("{} already holds a grant", grant.holder));
  }
  if (!(Granted() + grant.granted).FitsIn(capacity_)) {
    return Status::ResourceExhausted(fmt::format(
        "grant of {} to {} does not fit: {} of {} already granted", grant.granted.ToString(),
        grant.holder, Granted().ToString(), capacity_.ToString()));
  }
  grants_[grant.holder] = grant;
  return Status::OK();
}

}  // namespace augur::workflow
