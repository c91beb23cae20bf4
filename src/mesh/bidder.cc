#include "mesh/bidder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "workflow/cost.h"

namespace augur::mesh {
namespace {

using workflow::Grant;
using workflow::GrantChange;
using workflow::Ledger;
using workflow::Resources;

constexpr int64_t kNsPerMs = 1'000'000;

uint32_t ToMs(double seconds) {
  return uint32_t(std::clamp(std::ceil(seconds * 1000), 0.0,
                             double(std::numeric_limits<uint32_t>::max())));
}

// How much longer a shard runs on `grant` than on its `want` (CPU-bound: in proportion).
double Stretch(const Resources& want, const Resources& grant) {
  if (want.cpu <= 0 || grant.cpu >= want.cpu) return 1;
  return want.cpu / std::max(grant.cpu, want.cpu / 1000);
}

}  // namespace

std::optional<std::vector<workflow::CostClass>> ClassesFor(const BidderOptions& o,
                                                           const std::string& backend) {
  std::vector<workflow::CostClass> classes;
  if (!backend.empty()) {
    auto be = std::find_if(o.backends.begin(), o.backends.end(),
                           [&](const BackendCosts& c) { return c.name == backend; });
    if (be == o.backends.end()) return std::nullopt;
    return be->classes;
  }
  for (const BackendCosts& be : o.backends) {
    classes.insert(classes.end(), be.classes.begin(), be.classes.end());
  }
  return classes;
}

OfferTerms TermsOf(const BidderOptions& o, const wire::BidRequest& b,
                   const std::vector<workflow::CostClass>& classes, const Resources& grant) {
  const double run_s = b.predicted_ms() / 1000.0 * Stretch(FromAmount(b.want()), grant);
  const double budget = b.has_budget_left() ? double(b.budget_left())
                                            : std::numeric_limits<double>::infinity();
  const std::optional<workflow::ClassChoice> cls =
      workflow::ChooseClass(classes, grant, run_s, std::numeric_limits<double>::infinity(),
                            budget, b.avoid_preemptible());
  OfferTerms t;
  t.hold_ns = b.hold_ms() > 0 ? std::min<int64_t>(b.hold_ms() * kNsPerMs, o.max_hold_ns)
                              : std::min(o.default_hold_ns, o.max_hold_ns);
  wire::Offer& offer = t.offer;
  offer.set_request_id(b.request_id());
  *offer.mutable_grant() = ToAmount(grant);
  offer.set_start_ms(ToMs(o.startup_s));
  offer.set_finish_ms(ToMs(o.startup_s + run_s));
  offer.set_cost_per_hour(cls ? float(cls->cost_per_hour) : 0.0f);
  offer.set_cost_class(cls ? cls->cls.name : "");
  offer.set_preemptible(cls && cls->cls.preemptible);
  offer.set_hold_ms(uint32_t(t.hold_ns / kNsPerMs));
  return t;
}

Bidder::Bidder(std::string self, BidderOptions options)
    : self_(std::move(self)), o_(std::move(options)) {}

size_t Bidder::holds() const {
  return size_t(std::count_if(entries_.begin(), entries_.end(),
                              [](const auto& kv) { return !kv.second.leased; }));
}

size_t Bidder::leases() const { return entries_.size() - holds(); }

std::optional<int64_t> Bidder::NextDeadline() const {
  if (expiries_.empty()) return std::nullopt;
  return expiries_.begin()->first;
}

void Bidder::Handle(const std::string& from, const wire::PlacementMessage& msg, int64_t now,
                    Ledger& ledger, BidderOutput* out) {
  const size_t first = out->messages.size();
  HandleMessage(from, msg, now, ledger, out);
  StampRoom(first, ledger, out);
}

BidderRoom Bidder::RoomNow(const Ledger& ledger) const {
  BidderRoom r;
  r.room = FloorToMilli(ledger.Free() - QueueReserve());
  for (const auto& [holder, e] : entries_) {
    const workflow::Grant* g = e.leased ? nullptr : ledger.Find(holder);
    if (g != nullptr) r.held += g->granted;
  }
  r.held = FloorToMilli(r.held);
  return r;
}

void Bidder::StampRoom(size_t first, const Ledger& ledger, BidderOutput* out) const {
  if (!o_.report_room) return;
  if (first == out->messages.size()) return;
  const BidderRoom now = RoomNow(ledger);
  const wire::Amount room = ToAmount(now.room - promised_);
  const wire::Amount held_amount = ToAmount(now.held);
  for (size_t i = first; i < out->messages.size(); ++i) {
    wire::PlacementMessage& m = out->messages[i].msg;
    if (!m.has_offer()) continue;
    *m.mutable_offer()->mutable_room() = room;
    *m.mutable_offer()->mutable_held() = held_amount;
  }
}

void Bidder::HandleMessage(const std::string& from, const wire::PlacementMessage& msg,
                           int64_t now, Ledger& ledger, BidderOutput* out) {
  Forget(now);
  const std::string& rid = RequestIdOf(msg);
  const std::string holder = LeaseId(from, rid);
  auto it = entries_.find(holder);
  const bool decided = decided_.contains(holder);
  switch (msg.body_case()) {
    case wire::PlacementMessage::kBidRequest:
      if (queued_.contains(holder)) {
        ++stats_.duplicates;
        SendQueued(from, rid, out);
        return;
      }
      if (it != entries_.end()) {
        ++stats_.duplicates;
        if (!it->second.leased || it->second.offer.leased()) {
          out->messages.push_back({from, {}});
          *out->messages.back().msg.mutable_offer() = it->second.offer;
        }
        return;
      }
      if (decided) {
        ++stats_.stale;  // the owner has moved on; a new hold would only wait to expire
        return;
      }
      OnBidRequest(from, msg.bid_request(), now, ledger, out);
      return;

    case wire::PlacementMessage::kAward: {
      Dequeue(holder, now);  // never offered: nothing to award
      if (it == entries_.end() || ledger.Find(holder) == nullptr) {
        ++stats_.stale;
        if (it != entries_.end()) End(holder, now, ledger);  // taken away under us
        SendReclaimed(from, rid,
                      decided || it != entries_.end() ? "the hold ended before the award came"
                                                      : "no such offer",
                      out);
        Remember(holder, now);
        return;
      }
      Entry& e = it->second;
      if (e.leased) {
        ++stats_.duplicates;
      } else {
        e.leased = true;
        ++stats_.leases;
        const int64_t ttl = msg.award().ttl_ms() > 0
                                ? std::min<int64_t>(msg.award().ttl_ms() * kNsPerMs, o_.max_ttl_ns)
                                : o_.max_ttl_ns;
        SetExpiry(holder, e, now + ttl);
        out->events.push_back({BidderEvent::Kind::kLeased, holder, e.owner, e.request_id, e.shard,
                               e.backend, e.cost_class, ledger.Find(holder)->granted, "awarded"});
      }
      SendLeased(holder, now, ledger, out);
      return;
    }

    case wire::PlacementMessage::kDecline:
      if (Dequeue(holder, now)) {
        ++stats_.declines;
        return;
      }
      if (it == entries_.end()) {
        ++stats_.stale;
        Remember(holder, now);  // it may have overtaken its BidRequest
        return;
      }
      if (it->second.leased && !it->second.offer.leased()) {
        ++stats_.stale;  // an award came for the same request: the lease stands
        return;
      }
      ++stats_.declines;
      if (it->second.leased) {
        // Leased at once, and not wanted after all: released as by its owner.
        ++stats_.releases;
        const Grant* g = ledger.Find(holder);
        out->events.push_back({BidderEvent::Kind::kReleased, holder, it->second.owner, rid,
                               it->second.shard, it->second.backend, it->second.cost_class,
                               g ? g->granted : Resources{}, "declined by its owner"});
      }
      End(holder, now, ledger);
      RoomFreed(now, ledger, out);
      return;

    case wire::PlacementMessage::kRenew: {
      if (it == entries_.end() || !it->second.leased) {
        ++stats_.stale;
        if (it == entries_.end()) SendReclaimed(from, rid, "no such lease", out);
        return;
      }
      ++stats_.renewals;
      const int64_t ttl = msg.renew().ttl_ms() > 0
                              ? std::min<int64_t>(msg.renew().ttl_ms() * kNsPerMs, o_.max_ttl_ns)
                              : o_.max_ttl_ns;
      SetExpiry(holder, it->second, std::max(it->second.expires_ns, now + ttl));
      SendLeased(holder, now, ledger, out);
      return;
    }

    case wire::PlacementMessage::kRelease:
      if (Dequeue(holder, now)) return;
      if (it == entries_.end()) {
        ++stats_.stale;
        Remember(holder, now);
        return;
      }
      ++stats_.releases;
      if (it->second.leased) {
        const Grant* g = ledger.Find(holder);
        out->events.push_back({BidderEvent::Kind::kReleased, holder, it->second.owner, rid,
                               it->second.shard, it->second.backend, it->second.cost_class,
                               g ? g->granted : Resources{}, "released by its owner"});
      }
      End(holder, now, ledger);
      RoomFreed(now, ledger, out);
      return;

    default:
      ++stats_.stale;  // an owner-side message sent here by mistake
      return;
  }
}

Status Bidder::Restore(const workflow::LeaseRecord& l, int64_t now, Ledger& ledger,
                      BidderOutput* out) {
  if (l.lease_id != LeaseId(l.owner, l.request_id) || entries_.contains(l.lease_id)) {
    return Status::InvalidArgument(fmt::format(
        "lease '{}' of '{}' (request '{}'): not its lease id, or already held", l.lease_id,
        l.owner, l.request_id));
  }
  const Resources granted = Resources::Min(l.grant, ledger.Free());
  if (!l.min.FitsIn(granted)) {
    return Status::ResourceExhausted(fmt::format("lease {}: its min {} no longer fits ({} free)",
                                                 l.lease_id, l.min.ToString(),
                                                 ledger.Free().ToString()));
  }
  AUGUR_RETURN_IF_ERROR(ledger.Restore({l.lease_id, l.want, l.min, granted, l.score}));
  Entry& e = entries_[l.lease_id];
  e.leased = true;
  e.owner = l.owner;
  e.request_id = l.request_id;
  e.shard = l.attempt_id;
  e.backend = l.backend;
  e.cost_class = l.cost_class;
  SetExpiry(l.lease_id, e, now + std::clamp<int64_t>(l.ttl_ns, 1, o_.max_ttl_ns));
  SendLeased(l.lease_id, now, ledger, out);
  return Status::OK();
}

int64_t Bidder::TtlLeft(const std::string& lease_id, int64_t now) const {
  auto it = entries_.find(lease_id);
  return it == entries_.end() ? 0 : std::max<int64_t>(0, it->second.expires_ns - now);
}

void Bidder::OnBidRequest(const std::string& from, const wire::BidRequest& b, int64_t now,
                          Ledger& ledger, BidderOutput* out) {
  ++stats_.requests;
  // Requests already waiting keep their place: a newcomer gets only the room beyond theirs.
  const Tried tried = TryOffer(from, b, now, QueueReserve() + promised_, ledger, out);
  if (tried == Tried::kDone) return;
  if (b.queue_ms() == 0 || queued_.size() >= o_.max_queue) {
    Refuse(from, b.request_id(),
           fmt::format("no room{}: needs at least {}, {} free{}",
                       tried == Tried::kNeedsShrink ? " without shrinking lower-score grants" : "",
                       FromAmount(b.min()).ToString(), ledger.Free().ToString(),
                       queued_.empty() ? "" : ", others waiting"),
           out);
    return;
  }
  ++stats_.queued;
  const std::string holder = LeaseId(from, b.request_id());
  Queued& q = queued_[holder];
  q.owner = from;
  q.bid = b;
  q.key = {-double(b.score()), next_seq_++};
  q.expires_ns = now + std::min<int64_t>(int64_t(b.queue_ms()) * kNsPerMs, o_.max_queue_ns);
  queue_[q.key] = holder;
  expiries_.emplace(q.expires_ns, holder);
  SendQueued(from, b.request_id(), out);
}

Bidder::Tried Bidder::TryOffer(const std::string& from, const wire::BidRequest& b, int64_t now,
                               const Resources& reserved, Ledger& ledger, BidderOutput* out) {
  const std::string holder = LeaseId(from, b.request_id());
  // The classes the shard may run on.
  const std::optional<std::vector<workflow::CostClass>> classes = ClassesFor(o_, b.backend());
  if (!classes) {
    Refuse(from, b.request_id(), fmt::format("no backend {} here", b.backend()), out);
    return Tried::kDone;
  }
  const workflow::ReservationRequest req{holder, FromAmount(b.want()), FromAmount(b.min()),
                                         double(b.score())};
  Result<std::optional<workflow::Admission>> plan = ledger.PlanAdmit(req, reserved);
  if (!plan) {
    Refuse(from, b.request_id(), plan.error().message(), out);
    return Tried::kDone;
  }
  if (!*plan) return Tried::kNoRoom;
  if (!(*plan)->changes.empty() && !b.may_shrink()) return Tried::kNeedsShrink;
  workflow::Admission adm = std::move(**plan);
  // What the wire can say exactly (the min came off the wire, so it is whole millicores).
  adm.grant = Resources::Max(req.min, FloorToMilli(adm.grant));
  if (Status st = ledger.ApplyAdmission(req, adm); !st.ok()) {
    Refuse(from, b.request_id(), st.message(), out);  // planned a moment ago: not expected
    return Tried::kDone;
  }
  ++stats_.offers;
  Entry& e = entries_[holder];
  e.owner = from;
  e.request_id = b.request_id();
  e.shard = b.shard();
  e.backend = b.backend();
  OfferTerms terms = TermsOf(o_, b, *classes, adm.grant);
  e.cost_class = terms.offer.cost_class();
  SetExpiry(holder, e, now + terms.hold_ns);
  e.offer = std::move(terms.offer);
  wire::Offer& offer = e.offer;
  if (o_.lease_at_once && b.lease_ttl_ms() > 0 && adm.grant == req.want &&
      adm.changes.empty()) {
    // A lease at once: the owner takes this offer as it comes (one round trip). Only for
    // the whole want without shrinking anyone: a lesser offer is held, for the owner to
    // weigh against the others as usual.
    e.leased = true;
    ++stats_.leases;
    ++stats_.leased_at_once;
    SetExpiry(holder, e, now + std::min<int64_t>(b.lease_ttl_ms() * kNsPerMs, o_.max_ttl_ns));
    offer.set_leased(true);
    out->events.push_back({BidderEvent::Kind::kLeased, holder, e.owner, e.request_id, e.shard,
                           e.backend, e.cost_class, adm.grant, "leased at once"});
  }
  out->messages.push_back({from, {}});
  *out->messages.back().msg.mutable_offer() = offer;
  Report(adm.changes, now, /*from_engine=*/false, out);
  return Tried::kDone;
}

void Bidder::Tick(int64_t now, Ledger& ledger, BidderOutput* out) {
  const size_t first = out->messages.size();
  Expire(now, ledger, out);
  StampRoom(first, ledger, out);
}

void Bidder::Expire(int64_t now, Ledger& ledger, BidderOutput* out) {
  bool freed = false;
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    const std::string holder = expiries_.begin()->second;
    if (auto q = queued_.find(holder); q != queued_.end()) {
      ++stats_.queue_expired;
      Refuse(q->second.owner, q->second.bid.request_id(),
             fmt::format("waited {} ms in the queue without room", q->second.bid.queue_ms()), out,
             /*count=*/false);
      Dequeue(holder, now);
      continue;
    }
    Entry& e = entries_.at(holder);
    if (e.leased) {
      ++stats_.leases_reclaimed;
      const Grant* g = ledger.Find(holder);
      out->events.push_back({BidderEvent::Kind::kReclaimed, holder, e.owner, e.request_id,
                             e.shard, e.backend, e.cost_class, g ? g->granted : Resources{},
                             "lease expired: not renewed"});
      SendReclaimed(e.owner, e.request_id, "lease expired: not renewed", out);
    } else {
      ++stats_.holds_expired;
    }
    End(holder, now, ledger);
    freed = true;
  }
  Forget(now);
  if (freed || !queue_.empty()) RoomFreed(now, ledger, out);
}

void Bidder::RoomFreed(int64_t now, Ledger& ledger, BidderOutput* out) {
  // Waiting requests first, best score then oldest; one that still does not fit keeps its
  // minimum out of reach of those behind it.
  Resources reserved = promised_;
  for (auto it = queue_.begin(); it != queue_.end();) {
    const std::string holder = it->second;
    ++it;
    Queued& q = queued_.at(holder);
    if (TryOffer(q.owner, q.bid, now, reserved, ledger, out) == Tried::kDone) {
      Dequeue(holder, now, /*remember=*/false);
    } else {
      reserved += FromAmount(q.bid.min());
    }
  }
  GrowLeases(now, ledger, out);
}

Resources Bidder::QueueReserve() const {
  Resources r;
  for (const auto& [holder, q] : queued_) r += FromAmount(q.bid.min());
  return r;
}

bool Bidder::Dequeue(const std::string& holder, int64_t now, bool remember) {
  auto it = queued_.find(holder);
  if (it == queued_.end()) return false;
  queue_.erase(it->second.key);
  expiries_.erase({it->second.expires_ns, holder});
  queued_.erase(it);
  if (remember) Remember(holder, now);
  return true;
}

void Bidder::SendQueued(const std::string& to, const std::string& request_id, BidderOutput* out) {
  out->messages.push_back({to, {}});
  wire::Offer* o = out->messages.back().msg.mutable_offer();
  o->set_request_id(request_id);
  o->set_queued(true);
}

void Bidder::NoteLedgerChanges(const std::vector<GrantChange>& changes, int64_t now,
                               BidderOutput* out) {
  Report(changes, now, /*from_engine=*/true, out);
}

void Bidder::Report(const std::vector<GrantChange>& changes, int64_t now, bool from_engine,
                    BidderOutput* out) {
  for (const GrantChange& c : changes) {
    auto it = entries_.find(c.holder);
    if (it == entries_.end()) {
      // A local attempt: the engine acts on its own changes; ours it must be told of.
      if (!from_engine) out->changes.push_back(c);
      continue;
    }
    Entry& e = it->second;
    const bool preempt = c.kind == GrantChange::Kind::kPreempt;
    if (!e.leased) {
      // A hold is not running: nothing to resize. A pre-empted one is gone (an award for
      // it is answered Reclaimed); a shrunk one is leased at its grant then.
      if (preempt) {
        expiries_.erase({e.expires_ns, c.holder});
        entries_.erase(it);
        Remember(c.holder, now);
      }
      continue;
    }
    out->changes.push_back(c);
    if (preempt) {
      ++stats_.leases_reclaimed;
      SendReclaimed(e.owner, e.request_id, "pre-empted: " + c.reason, out);
      expiries_.erase({e.expires_ns, c.holder});
      entries_.erase(it);
      Remember(c.holder, now);
    } else {
      out->messages.push_back({e.owner, {}});
      wire::LeaseChanged* lc = out->messages.back().msg.mutable_lease_changed();
      lc->set_request_id(e.request_id);
      *lc->mutable_grant() = ToAmount(c.to);
      lc->set_reason(c.reason.substr(0, kMaxPlacementIdBytes));
    }
  }
}

void Bidder::GrowLeases(int64_t now, Ledger& ledger, BidderOutput* out) {
  std::vector<GrantChange> grown;
  for (const GrantChange& c : ledger.PlanGrowBack(promised_)) {
    auto it = entries_.find(c.holder);
    if (it == entries_.end() || !it->second.leased) continue;  // the engine grows its own
    if (ledger.ApplyChange(c).ok()) grown.push_back(c);
  }
  Report(grown, now, /*from_engine=*/false, out);
}

void Bidder::Refuse(const std::string& to, const std::string& request_id, std::string why,
                    BidderOutput* out, bool count) {
  if (count) ++stats_.refusals;
  out->messages.push_back({to, {}});
  wire::Offer* o = out->messages.back().msg.mutable_offer();
  o->set_request_id(request_id);
  if (why.size() > kMaxPlacementIdBytes) why.resize(kMaxPlacementIdBytes);
  o->set_refused(why.empty() ? "refused" : std::move(why));
}

void Bidder::SendLeased(const std::string& holder, int64_t now, const Ledger& ledger,
                        BidderOutput* out) {
  const Entry& e = entries_.at(holder);
  const workflow::Grant* g = ledger.Find(holder);
  out->messages.push_back({e.owner, {}});
  wire::Leased* l = out->messages.back().msg.mutable_leased();
  l->set_request_id(e.request_id);
  *l->mutable_grant() = ToAmount(g ? g->granted : Resources{});
  l->set_ttl_ms(uint32_t(std::max<int64_t>(0, e.expires_ns - now) / kNsPerMs));
}

void Bidder::SendReclaimed(const std::string& to, const std::string& request_id,
                           std::string reason, BidderOutput* out) {
  out->messages.push_back({to, {}});
  wire::Reclaimed* r = out->messages.back().msg.mutable_reclaimed();
  r->set_request_id(request_id);
  if (reason.size() > kMaxPlacementIdBytes) reason.resize(kMaxPlacementIdBytes);
  r->set_reason(std::move(reason));
}

void Bidder::End(const std::string& holder, int64_t now, Ledger& ledger) {
  auto it = entries_.find(holder);
  if (it != entries_.end()) {
    expiries_.erase({it->second.expires_ns, holder});
    entries_.erase(it);
  }
  (void)ledger.Release(holder);  // NotFound when the engine pre-empted it: already free
  Remember(holder, now);
}

void Bidder::Remember(const std::string& holder, int64_t now) {
  const int64_t until = now + o_.remember_ns;
  decided_[holder] = until;
  forget_.emplace_back(until, holder);
}

void Bidder::Forget(int64_t now) {
  while (!forget_.empty() && forget_.front().first <= now) {
    auto d = decided_.find(forget_.front().second);
    if (d != decided_.end() && d->second == forget_.front().first) decided_.erase(d);
    forget_.pop_front();
  }
}

void Bidder::SetExpiry(const std::string& holder, Entry& e, int64_t at) {
  expiries_.erase({e.expires_ns, holder});
  e.expires_ns = at;
  expiries_.emplace(at, holder);
}

}  // namespace augur::mesh
