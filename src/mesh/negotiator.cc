#include "mesh/negotiator.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <tuple>

#include <fmt/format.h>

namespace augur::mesh {
namespace {

using workflow::Resources;

constexpr int64_t kNsPerMs = 1'000'000;
// A shard that spreads across zones is probed in up to this many zones.
constexpr size_t kMaxSpreadProbes = 4;
// A lease at once is asked of a host only while the view shows room there for at least this
// many shards like it: near full, the owner weighs the offers as before (in the large-N
// simulation at 100 hosts, where bursts fill the cores, asking it at any room lengthened the
// tail of placements that had room when ready; docs/MESH.md "Placement benchmarks").
constexpr double kAtOnceRoom = 2;

uint32_t ClampMs(double ms) {
  return uint32_t(std::clamp(std::ceil(ms), 0.0, double(std::numeric_limits<uint32_t>::max())));
}

// Rounded as the wire carries it, so that offers compare exactly with what was asked.
Resources OnWire(const Resources& r) { return FromAmount(ToAmount(r)); }

// How many times over `free` holds `want`, in the tighter dimension (at most 8).
double Room(const Resources& free, const Resources& want) {
  double room = 8;
  if (want.cpu > 0) room = std::min(room, free.cpu / want.cpu);
  if (want.memory > 0) room = std::min(room, double(free.memory) / double(want.memory));
  return std::max(0.0, room);
}

// The predicted cost of an offer: its rate over its predicted run.
double OfferCost(const wire::Offer& o) {
  return double(o.cost_per_hour()) * double(o.finish_ms() - o.start_ms()) / 3.6e6;
}

}  // namespace

Negotiator::Negotiator(std::string self, NegotiatorOptions options)
    : self_(std::move(self)), o_(options), rng_(options.seed) {}

size_t Negotiator::pending() const { return shards_.size() - leased(); }

size_t Negotiator::leased() const {
  return size_t(std::count_if(shards_.begin(), shards_.end(),
                              [](const auto& kv) { return kv.second.phase == Phase::kLeased; }));
}

double Negotiator::Charged(const std::string& workflow) const {
  auto it = charged_.find(workflow);
  return it == charged_.end() ? 0 : it->second;
}

std::optional<int64_t> Negotiator::NextDeadline() const {
  if (timers_.empty()) return std::nullopt;
  return timers_.begin()->first;
}

Status Negotiator::Submit(ShardRequest req, int64_t now) {
  if (req.shard.empty() || req.shard.size() > kMaxPlacementIdBytes - 16) {
    return Status::InvalidArgument(fmt::format("shard id must be 1 to {} bytes",
                                               kMaxPlacementIdBytes - 16));
  }
  if (shards_.contains(req.shard)) {
    return Status::InvalidArgument(fmt::format("shard {} is already being placed", req.shard));
  }
  req.want = OnWire(req.want);
  req.min = OnWire(req.min);
  if (!req.min.FitsIn(req.want)) {
    return Status::InvalidArgument(fmt::format("shard {}: min {} is above want {}", req.shard,
                                               req.min.ToString(), req.want.ToString()));
  }
  if (req.want.cpu <= 0 && req.want.memory == 0) {
    return Status::InvalidArgument(fmt::format("shard {} wants nothing", req.shard));
  }
  ++stats_.submitted;
  const std::string id = req.shard;
  Shard& s = shards_[id];
  s.req = std::move(req);
  s.ready_ns = now;
  SetTimer(id, s, now);
  return Status::OK();
}

void Negotiator::SetTimer(const std::string& id, Shard& s, int64_t at) {
  timers_.erase({s.due_ns, id});
  s.due_ns = at;
  timers_.emplace(at, id);
}

void Negotiator::Tick(int64_t now, std::span<const PlacementPeer> peers, NegotiatorOutput* out) {
  std::vector<std::string> batch;
  while (!timers_.empty() && timers_.begin()->first <= now) {
    const std::string id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    Shard& s = shards_.at(id);
    switch (s.phase) {
      case Phase::kQueued:
        batch.push_back(id);
        break;
      case Phase::kProbing:
        for (const Probe& p : s.probes) stats_.no_answer += p.state == Probe::State::kWaiting;
        Decide(id, s, now, /*by_timer=*/true, out);
        break;
      case Phase::kAwarding:
        if (s.award_tries < o_.award_attempts) {
          ++s.award_tries;
          SendAward(s, out);
          SetTimer(id, s, now + o_.award_retry_ns);
        } else {
          ++stats_.award_failures;
          SendSimple(out, s.host, s.request_id, /*release=*/true);  // in case it took
          Unaward(s);
          Retry(id, s, now);
        }
        break;
      case Phase::kLeased:
        if (now - s.last_ack_ns >= o_.lease_ttl_ns) {
          SendSimple(out, s.host, s.request_id, /*release=*/true);
          Lose(id, s, now, "renewals unanswered for a whole ttl", out);
        } else {
          ++stats_.renewals;
          wire::PlacementMessage m;
          m.mutable_renew()->set_request_id(s.request_id);
          m.mutable_renew()->set_ttl_ms(uint32_t(o_.lease_ttl_ns / kNsPerMs));
          Send(out, s.host, std::move(m));
          // The next renewal, or the moment the candidate may have reclaimed the lease
          // (its ttl runs from before the last answer left it), whichever comes first.
          SetTimer(id, s, std::min(now + RenewEvery(),
                                   s.last_ack_ns + o_.lease_ttl_ns));
        }
        break;
    }
  }
  Sample(std::move(batch), now, peers, out);
}

void Negotiator::Sample(std::vector<std::string> batch, int64_t now,
                        std::span<const PlacementPeer> peers, NegotiatorOutput* out) {
  if (batch.empty()) return;
  // Largest shards first: they get the first pick of the hosts with most room.
  std::sort(batch.begin(), batch.end(), [&](const std::string& a, const std::string& b) {
    const Resources& wa = shards_.at(a).req.want;
    const Resources& wb = shards_.at(b).req.want;
    return std::tie(wb.cpu, wb.memory, a) < std::tie(wa.cpu, wa.memory, b);
  });
  // The live peers, with this owner's debit of each (reset by a new headroom version). A
  // peer never probed has no entry (no debit): entries are made when probed, so an owner
  // holds one per host it asked, not one per member (10,000 owners x 10,000 members in the
  // large-N simulation).
  std::vector<const PlacementPeer*> live;
  std::vector<const Debit*> debit;
  static const Debit kNoDebit;
  for (const PlacementPeer& p : peers) {
    if (!p.alive || (!o_.include_self && p.name == self_)) continue;
    auto it = debits_.find(p.name);
    if (it != debits_.end() && it->second.version != p.headroom_version) {
      it->second = Debit{p.headroom_version, {}, false, std::nullopt, {}};
    }
    live.push_back(&p);
    debit.push_back(it == debits_.end() ? &kNoDebit : &it->second);
  }
  std::vector<int> used(live.size(), 0);                          // probes in this batch
  std::map<std::string, std::map<std::string, int>> batch_zones;  // workflow -> zone -> probes
  std::uniform_real_distribution<double> unit(0, 1);
  struct Candidate {
    size_t peer;    // index into live
    bool fits;      // its min fits the host's headroom as gossiped, and it did not refuse
    int zone_load;  // shards of the workflow in the host's zone (placed, and this batch's)
    int used;       // probes this batch already sent it
    double key;     // Efraimidis-Spirakis: log(u) / w, larger first
  };
  std::vector<Candidate> cands;
  for (const std::string& id : batch) {
    Shard& s = shards_.at(id);
    s.probes.clear();
    cands.clear();
    // After a round without an offer, ask again only when the view shows a host with room
    // for it (a host that refused counts as full until it gossips again), or when it has not
    // asked for max_retry_backoff: under saturation the owner waits on gossip, not on probes.
    if (s.round > 0 && now - s.last_probe_ns < o_.max_retry_backoff_ns) {
      bool room = false;
      for (size_t i = 0; i < live.size() && !room; ++i) {
        room = !debit[i]->refused &&
               s.req.min.FitsIn(ViewFree(*live[i], *debit[i], s.req.predicted_s)) &&
               (s.req.backend.empty() || live[i]->headroom.FindBackend(s.req.backend));
      }
      if (!room) {
        ++stats_.deferred;
        Retry(id, s, now + o_.view_recheck_ns);
        continue;
      }
    }
    const auto& zones = placed_[s.req.workflow];
    auto& bzones = batch_zones[s.req.workflow];
    auto count = [](const std::map<std::string, int>& m, const std::string& zone) {
      auto z = m.find(zone);
      return z == m.end() ? 0 : z->second;
    };
    for (size_t i = 0; i < live.size(); ++i) {
      const PlacementPeer* p = live[i];
      if (!s.req.backend.empty() && !p->headroom.FindBackend(s.req.backend)) continue;
      const Resources free = ViewFree(*p, *debit[i], s.req.predicted_s);
      double w = s.req.want.FitsIn(free) ? 1 : s.req.min.FitsIn(free) ? 0.25 : 0.02;
      w *= 0.1 + Room(free, s.req.want);
      if (debit[i]->refused) w *= 0.05;
      const int load = s.req.spread_zone ? count(zones, p->zone) + count(bzones, p->zone) : 0;
      const double u = std::max(unit(rng_), 1e-300);
      cands.push_back({i, s.req.min.FitsIn(free) && !debit[i]->refused, load, used[i],
                       std::log(u) / w});
    }
    size_t d = std::max<uint32_t>(1, o_.probes_per_shard);
    if (s.req.spread_zone) {
      // To choose the zone, see them: one probe in each (up to kMaxSpreadProbes).
      std::set<std::string_view> zones_seen;
      for (const Candidate& c : cands) zones_seen.insert(live[c.peer]->zone);
      d = std::max(d, std::min(zones_seen.size(), kMaxSpreadProbes));
    }
    d = std::min(d, cands.size());
    if (d == 0) {
      ++stats_.no_candidates;
      Retry(id, s, now + o_.view_recheck_ns);
      continue;
    }
    ++stats_.rounds;
    ++s.round;
    s.last_probe_ns = now;
    s.first_answer_ns = 0;
    by_request_.erase(s.request_id);
    s.request_id = fmt::format("{}@{}", id, s.round);
    by_request_[s.request_id] = id;
    if (!s.req.spread_zone) {
      // Hosts not yet probed in this batch first (d*m distinct while there are enough).
      std::partial_sort(cands.begin(), cands.begin() + long(d), cands.end(),
                        [](const Candidate& a, const Candidate& b) {
                          return std::tie(a.used, b.key) < std::tie(b.used, a.key);
                        });
    } else {
      // Spread: among hosts with room, those in the zones where the workflow has fewest
      // shards, each probe in another zone while there are zones left.
      std::set<std::string> picked_zones;
      for (size_t k = 0; k < d; ++k) {
        auto rank = [&](const Candidate& c) {
          const bool again = picked_zones.contains(live[c.peer]->zone);
          return std::make_tuple(!c.fits, again, c.zone_load, c.used, -c.key);
        };
        auto best = std::min_element(cands.begin() + long(k), cands.end(),
                                     [&](const Candidate& a, const Candidate& b) {
                                       return rank(a) < rank(b);
                                     });
        std::iter_swap(cands.begin() + long(k), best);
        picked_zones.insert(live[cands[k].peer]->zone);
      }
      ++bzones[live[cands[0].peer]->zone];  // where it will most likely go
    }
    wire::PlacementMessage m;
    wire::BidRequest* b = m.mutable_bid_request();
    b->set_request_id(s.request_id);
    b->set_shard(id);
    *b->mutable_want() = ToAmount(s.req.want);
    *b->mutable_min() = ToAmount(s.req.min);
    b->set_score(float(s.req.score));
    b->set_predicted_ms(ClampMs(s.req.predicted_s * 1000));
    b->set_hold_ms(uint32_t(o_.hold_ns / kNsPerMs));
    b->set_may_shrink(o_.shrink_from_round > 0 && s.round >= o_.shrink_from_round);
    b->set_backend(s.req.backend);
    b->set_avoid_preemptible(s.req.avoid_preemptible);
    const double budget = BudgetLeft(s);
    if (std::isfinite(budget)) b->set_budget_left(float(std::max(0.0, budget)));
    // Queue only when the view shows no host with room for it: while some host seems to
    // have room, a quick refusal and a fresh sample find it sooner than a queue would.
    const bool room_in_view =
        std::any_of(cands.begin(), cands.end(), [](const Candidate& c) { return c.fits; });
    b->set_queue_ms(room_in_view ? 0 : uint32_t(o_.queue_ns / kNsPerMs));
    // The first-ranked probes ask for a lease at once when taking the first offer loses
    // nothing (no budget to weigh offers against, no zones to spread over, room in view
    // for two like it on the host): the quickest answer places the shard.
    const bool may_at_once =
        o_.lease_at_once && room_in_view && !s.req.spread_zone && !std::isfinite(budget);
    auto at_once = [&](size_t i) {
      return may_at_once && i < o_.at_once_probes && cands[i].fits &&
             Room(ViewFree(*live[cands[i].peer], *debit[cands[i].peer], s.req.predicted_s),
                  s.req.want) >= kAtOnceRoom;
    };
    for (size_t i = 0; i < d; ++i) {
      const PlacementPeer* p = live[cands[i].peer];
      debits_.try_emplace(p->name, Debit{p->headroom_version, {}, false, std::nullopt, {}});
      ++used[cands[i].peer];
      s.probes.push_back({p->name, p->zone, Probe::State::kWaiting, {}});
      ++stats_.probes;
      if (at_once(i)) {
        wire::PlacementMessage first = m;
        first.mutable_bid_request()->set_lease_ttl_ms(uint32_t(o_.lease_ttl_ns / kNsPerMs));
        Send(out, p->name, std::move(first));
      } else {
        Send(out, p->name, m);
      }
    }
    s.phase = Phase::kProbing;
    SetTimer(id, s, now + o_.offer_wait_ns);
  }
}

Resources Negotiator::ViewFree(const PlacementPeer& p, const Debit& d, double seconds) const {
  if (!d.room) return p.headroom.FreeOver(seconds) - d.granted;
  const double d_probes = std::max<uint32_t>(1, o_.probes_per_shard);
  return *d.room + d.held.Scaled((d_probes - 1) / d_probes) - d.granted;
}

void Negotiator::NoteRoom(const std::string& from, const wire::Offer& o) {
  if (!o.has_room()) return;
  ++stats_.room_reports;
  auto it = debits_.find(from);  // only hosts it probed (see Sample)
  if (it == debits_.end()) return;
  it->second.room = FromAmount(o.room());
  it->second.held = FromAmount(o.held());
  it->second.granted = {};  // the room counts every hold and lease there, ours too
  it->second.refused = false;  // a refusal among these answers sets it again (Handle)
}

void Negotiator::Declined(const Probe& p) {
  auto it = debits_.find(p.host);
  if (it == debits_.end() || !it->second.room) return;
  // Its hold is given back: room again in this owner's view of the host.
  const Resources grant = FromAmount(p.offer.grant());
  *it->second.room += grant;
  it->second.held -= grant;
}

double Negotiator::BudgetLeft(const Shard& s) const {
  return s.req.budget_left - Charged(s.req.workflow);
}

bool Negotiator::Acceptable(const Shard& s, const wire::Offer& o) const {
  const Resources grant = FromAmount(o.grant());
  return grant.FitsIn(s.req.want) && s.req.min.FitsIn(grant) &&  // what was asked
         OfferCost(o) <= BudgetLeft(s) + 1e-12;
}

void Negotiator::Decide(const std::string& id, Shard& s, int64_t now, bool by_timer,
                        NegotiatorOutput* out) {
  const auto& zones = placed_[s.req.workflow];
  const Probe* best = nullptr;
  auto rank = [&](const Probe& p) {
    int in_zone = 0;
    if (s.req.spread_zone) {
      auto z = zones.find(p.zone);
      in_zone = z == zones.end() ? 0 : z->second;
    }
    return std::make_tuple(in_zone, p.offer.finish_ms(), OfferCost(p.offer), p.host);
  };
  for (const Probe& p : s.probes) {
    if (p.state != Probe::State::kOffered || !Acceptable(s, p.offer)) continue;
    if (best == nullptr || rank(p) < rank(*best)) best = &p;
  }
  Take(s, best, now, by_timer, out);
  if (best == nullptr) {
    Retry(id, s, now + Backoff(s.round));
    return;
  }
  s.phase = Phase::kAwarding;
  s.award_tries = 1;
  SendAward(s, out);
  SetTimer(id, s, now + o_.award_retry_ns);
}

void Negotiator::Take(Shard& s, const Probe* best, int64_t now, bool by_timer,
                      NegotiatorOutput* out) {
  for (const Probe& p : s.probes) {
    // The losers' holds, and requests still queued or unanswered (a Decline that overtakes
    // its request is remembered by the candidate; one to a lease made at once releases it).
    if (p.state != Probe::State::kRefused && &p != best) {
      ++stats_.declined;
      SendSimple(out, p.host, s.request_id, /*release=*/false);
      if (p.state == Probe::State::kOffered) Declined(p);
    }
  }
  if (best == nullptr) return;
  s.host = best->host;
  s.zone = best->zone;
  s.won = best->offer;
  s.grant = FromAmount(best->offer.grant());
  s.cost = OfferCost(best->offer);
  charged_[s.req.workflow] += s.cost;
  ++placed_[s.req.workflow][s.zone];
  // A host that said its room counted this hold (or lease) in it already.
  Debit& debit = debits_[s.host];
  s.debited = !debit.room;
  if (s.debited) {
    debit.granted += s.grant;
  } else if (!best->offer.leased()) {
    debit.held -= s.grant;  // no longer a hold: a lease, still counted in the room
  }
  s.probes.clear();
  s.decided_ns = now;
  s.decided_by_timer = by_timer;
}

void Negotiator::Answered(const std::string& id, Shard& s, int64_t now, NegotiatorOutput* out) {
  bool waiting = false, offered = false, queued = false;
  for (const Probe& p : s.probes) {
    waiting |= p.state == Probe::State::kWaiting;
    offered |= p.state == Probe::State::kOffered;
    queued |= p.state == Probe::State::kQueued;
  }
  if (waiting) return;
  if (offered || !queued) {
    Decide(id, s, now, /*by_timer=*/false, out);
    return;
  }
  const int64_t until = s.last_probe_ns + o_.queue_ns + o_.offer_wait_ns;
  if (s.due_ns < until) SetTimer(id, s, until);
}

int64_t Negotiator::RenewEvery() const { return std::max<int64_t>(1, o_.lease_ttl_ns / 4); }

int64_t Negotiator::Backoff(uint32_t round) const {
  if (round <= 1) return std::min(o_.max_retry_backoff_ns, o_.first_retry_ns);
  const uint32_t doublings = std::min<uint32_t>(round - 2, 30);
  return std::min(o_.max_retry_backoff_ns, o_.retry_backoff_ns << doublings);
}

void Negotiator::Retry(const std::string& id, Shard& s, int64_t at) {
  s.phase = Phase::kQueued;
  s.probes.clear();
  SetTimer(id, s, at);
}

void Negotiator::Unaward(Shard& s) {
  charged_[s.req.workflow] -= s.cost;
  if (--placed_[s.req.workflow][s.zone] <= 0) placed_[s.req.workflow].erase(s.zone);
  if (s.debited) debits_[s.host].granted -= s.grant;
  s.debited = false;
  s.cost = 0;
}

void Negotiator::Handle(const std::string& from, const wire::PlacementMessage& msg, int64_t now,
                        NegotiatorOutput* out) {
  const std::string& rid = RequestIdOf(msg);
  auto rit = by_request_.find(rid);
  Shard* s = rit == by_request_.end() ? nullptr : &shards_.at(rit->second);
  const std::string id = s ? rit->second : std::string();
  // Whether this message comes from the host holding (or being awarded) the shard's lease.
  const bool from_holder =
      s && (s->phase == Phase::kAwarding || s->phase == Phase::kLeased) && s->host == from;
  switch (msg.body_case()) {
    case wire::PlacementMessage::kOffer: {
      const wire::Offer& o = msg.offer();
      const bool refused = !o.refused().empty();
      NoteRoom(from, o);
      Probe* probe = nullptr;
      if (s && s->phase == Phase::kProbing) {
        for (Probe& p : s->probes) {
          if (p.host == from) probe = &p;
        }
      }
      if (probe == nullptr) {
        if (from_holder) {
          ++stats_.duplicates;  // the winner's offer again
        } else {
          ++stats_.stale;
          if (!refused && !o.queued()) {  // a hold (or lease) nobody will take: let it go now
            ++stats_.declined;
            SendSimple(out, from, rid, /*release=*/o.leased());
          }
        }
        return;
      }
      using State = Probe::State;
      // An offer may follow a queued answer (room freed) or a refusal (a duplicated request
      // found room); anything else said twice is a duplicate.
      const bool fresh = o.queued() ? probe->state == State::kWaiting
                         : refused  ? probe->state == State::kWaiting || probe->state == State::kQueued
                                    : probe->state != State::kOffered;
      if (!fresh) {
        ++stats_.duplicates;
        return;
      }
      if (s->first_answer_ns == 0) s->first_answer_ns = now;
      if (o.queued()) {
        ++stats_.queued;
        probe->state = State::kQueued;
      } else if (refused) {
        ++stats_.refusals;
        probe->state = State::kRefused;
        probe->offer = o;
        // Full, unless it said what room it has and that is too little for this shard (a
        // refusal with room enough is for some other reason: count it full as before).
        debits_[from].refused = !o.has_room() || s->req.min.FitsIn(FromAmount(o.room()));
      } else {
        ++stats_.offers;
        probe->state = State::kOffered;
        probe->offer = o;
        if (o.leased()) {
          // A lease made at once: placed now, unless it is not what the shard can take.
          if (!Acceptable(*s, o)) {
            probe->state = State::kRefused;
            SendSimple(out, from, rid, /*release=*/true);
          } else {
            Take(*s, probe, now, /*by_timer=*/false, out);
            s->leased_at_once = true;
            s->phase = Phase::kLeased;
            s->last_ack_ns = now;
            ++stats_.awards;
            ++stats_.leased_at_once;
            out->events.push_back(Event(PlacementEvent::Kind::kAwarded, *s, now, "leased at once"));
            SetTimer(id, *s, now + RenewEvery());
            return;
          }
        }
      }
      Answered(id, *s, now, out);
      return;
    }

    case wire::PlacementMessage::kLeased: {
      if (!from_holder) {
        ++stats_.stale;  // not (or no longer) ours: make sure it is freed
        SendSimple(out, from, rid, /*release=*/true);
        return;
      }
      const Resources grant = FromAmount(msg.leased().grant());
      s->last_ack_ns = now;
      if (s->phase == Phase::kAwarding) {
        s->phase = Phase::kLeased;
        s->grant = grant;
        s->award_wait_us = msg.leased().wait_us();
        ++stats_.awards;
        out->events.push_back(Event(PlacementEvent::Kind::kAwarded, *s, now, "awarded"));
        SetTimer(id, *s, now + RenewEvery());
      } else if (!(grant == s->grant)) {
        s->grant = grant;
        out->events.push_back(Event(PlacementEvent::Kind::kChanged, *s, now, "renewal"));
      } else {
        ++stats_.duplicates;
      }
      return;
    }

    case wire::PlacementMessage::kLeaseChanged:
      if (!from_holder || s->phase != Phase::kLeased) {
        ++stats_.stale;
        return;
      }
      if (const Resources g = FromAmount(msg.lease_changed().grant()); !(g == s->grant)) {
        s->grant = g;
        out->events.push_back(
            Event(PlacementEvent::Kind::kChanged, *s, now, msg.lease_changed().reason()));
      }
      return;

    case wire::PlacementMessage::kReclaimed:
      if (!from_holder) {
        ++stats_.stale;
        return;
      }
      if (s->phase == Phase::kAwarding) {
        ++stats_.award_failures;
        Unaward(*s);
        Retry(id, *s, now);
      } else {
        Lose(id, *s, now, "reclaimed: " + msg.reclaimed().reason(), out);
      }
      return;

    default:
      ++stats_.stale;  // a candidate-side message sent here by mistake
      return;
  }
}

Status Negotiator::Release(const std::string& shard, int64_t now, NegotiatorOutput* out) {
  (void)now;
  auto it = shards_.find(shard);
  if (it == shards_.end()) return Status::NotFound(fmt::format("no shard {} being placed", shard));
  Shard& s = it->second;
  switch (s.phase) {
    case Phase::kQueued:
      break;
    case Phase::kProbing:
      // Waiting probes too: a Decline that overtakes its request is remembered.
      for (const Probe& p : s.probes) {
        if (p.state != Probe::State::kRefused) SendSimple(out, p.host, s.request_id, false);
      }
      break;
    case Phase::kAwarding:
    case Phase::kLeased:
      SendSimple(out, s.host, s.request_id, /*release=*/true);
      if (--placed_[s.req.workflow][s.zone] <= 0) placed_[s.req.workflow].erase(s.zone);
      break;
  }
  Forget(shard);
  return Status::OK();
}

Status Negotiator::Resume(ShardRequest req, const std::string& host,
                          const std::string& request_id, const Resources& grant, int64_t now) {
  if (req.shard.empty() || shards_.contains(req.shard) || request_id.empty() ||
      by_request_.contains(request_id) || host.empty()) {
    return Status::InvalidArgument(fmt::format(
        "cannot resume shard '{}' on '{}' under request '{}': empty, or already known",
        req.shard, host, request_id));
  }
  const std::string id = req.shard;
  Shard& s = shards_[id];
  s.req = std::move(req);
  s.ready_ns = now;
  s.phase = Phase::kLeased;
  const size_t at = request_id.rfind('@');
  s.round = at == std::string::npos ? 1 : uint32_t(std::strtoul(request_id.c_str() + at + 1, nullptr, 10));
  s.request_id = request_id;
  by_request_[request_id] = id;
  s.host = host;
  s.grant = grant;
  s.last_ack_ns = now;  // the host's ttl may run from before the restart: a renewal at once
  ++placed_[s.req.workflow][s.zone];
  SetTimer(id, s, now);
  return Status::OK();
}

void Negotiator::PeerDown(const std::string& host, int64_t now, NegotiatorOutput* out) {
  std::vector<std::string> ids;
  for (const auto& [id, s] : shards_) ids.push_back(id);
  for (const std::string& id : ids) {
    auto it = shards_.find(id);
    if (it == shards_.end()) continue;
    Shard& s = it->second;
    if (s.phase == Phase::kProbing) {
      bool touched = false;
      for (Probe& p : s.probes) {
        if (p.host == host && (p.state == Probe::State::kWaiting || p.state == Probe::State::kQueued)) {
          p.state = Probe::State::kRefused;
          touched = true;
        }
      }
      if (touched) Answered(id, s, now, out);
    } else if (s.host == host && s.phase == Phase::kAwarding) {
      ++stats_.award_failures;
      Unaward(s);
      Retry(id, s, now);
    } else if (s.host == host && s.phase == Phase::kLeased) {
      Lose(id, s, now, "host down", out);
      out->events.back().host_down = true;
    }
  }
  debits_.erase(host);
}

void Negotiator::Lose(const std::string& id, Shard& s, int64_t now, std::string reason,
                      NegotiatorOutput* out) {
  ++stats_.leases_lost;
  if (--placed_[s.req.workflow][s.zone] <= 0) placed_[s.req.workflow].erase(s.zone);
  out->events.push_back(Event(PlacementEvent::Kind::kLost, s, now, std::move(reason)));
  Forget(id);
}

void Negotiator::Forget(const std::string& id) {
  auto it = shards_.find(id);
  if (it == shards_.end()) return;
  timers_.erase({it->second.due_ns, id});
  by_request_.erase(it->second.request_id);
  shards_.erase(it);
}

PlacementEvent Negotiator::Event(PlacementEvent::Kind kind, const Shard& s, int64_t now,
                                 std::string reason) const {
  PlacementEvent e;
  e.kind = kind;
  e.shard = s.req.shard;
  e.workflow = s.req.workflow;
  e.host = s.host;
  e.lease_id = LeaseId(self_, s.request_id);
  e.grant = s.grant;
  e.cost_class = s.won.cost_class();
  e.cost_per_hour = s.won.cost_per_hour();
  e.ready_ns = s.ready_ns;
  e.at_ns = now;
  e.rounds = s.round;
  e.reason = std::move(reason);
  e.probed_ns = s.last_probe_ns;
  e.first_answer_ns = s.first_answer_ns;
  e.decided_ns = s.decided_ns;
  e.decided_by_timer = s.decided_by_timer;
  e.leased_at_once = s.leased_at_once;
  e.offer_wait_us = s.won.wait_us();
  e.award_wait_us = s.award_wait_us;
  return e;
}

void Negotiator::Send(NegotiatorOutput* out, const std::string& to, wire::PlacementMessage msg) {
  out->messages.push_back({to, std::move(msg)});
}

void Negotiator::SendAward(const Shard& s, NegotiatorOutput* out) {
  wire::PlacementMessage m;
  m.mutable_award()->set_request_id(s.request_id);
  m.mutable_award()->set_ttl_ms(uint32_t(o_.lease_ttl_ns / kNsPerMs));
  Send(out, s.host, std::move(m));
}

void Negotiator::SendSimple(NegotiatorOutput* out, const std::string& to,
                            const std::string& request_id, bool release) {
  wire::PlacementMessage m;
  if (release) {
    m.mutable_release()->set_request_id(request_id);
  } else {
    m.mutable_decline()->set_request_id(request_id);
  }
  Send(out, to, std::move(m));
}

}  // namespace augur::mesh
