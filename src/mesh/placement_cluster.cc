#include "mesh/placement_cluster.h"

#include <algorithm>

#include <fmt/format.h>

namespace augur::mesh {

struct PlacementCluster::Host {
  Host(ClusterHost s, const ClusterOptions& o, uint64_t seed)
      : spec(std::move(s)),
        ledger(spec.capacity, o.ledger),
        negotiator(spec.name, WithSeed(o.negotiator, seed)),
        bidder(spec.name, WithBackends(o.bidder, spec.backends)) {
    if (spec.older_peer) bidder = Bidder(spec.name, [&] {
      BidderOptions b = WithBackends(o.bidder, spec.backends);
      b.report_room = false;
      b.lease_at_once = false;
      return b;
    }());
  }
  static NegotiatorOptions WithSeed(NegotiatorOptions n, uint64_t seed) {
    n.seed = seed;
    return n;
  }
  static BidderOptions WithBackends(BidderOptions b, std::vector<BackendCosts> backends) {
    b.backends = std::move(backends);
    return b;
  }

  ClusterHost spec;
  workflow::Ledger ledger;
  Negotiator negotiator;
  Bidder bidder;
  bool down = false;
  bool owner_stopped = false;
  int64_t timer_at = -1;  // the one timer event that is not stale
  std::string pending;    // the summary on its way to the others' views
  std::string published;  // the summary they see
};

PlacementCluster::PlacementCluster(std::vector<ClusterHost> hosts, ClusterOptions options)
    : o_(std::move(options)), net_(o_.seed, o_.faults) {
  for (size_t i = 0; i < hosts.size(); ++i) {
    index_[hosts[i].name] = i;
    view_.push_back({hosts[i].name, hosts[i].zone, true, 0, {}});
    hosts_.push_back(std::make_unique<Host>(std::move(hosts[i]), o_,
                                            o_.seed * 0x9e3779b97f4a7c15ULL + i + 1));
  }
  ledger_epochs_.assign(hosts_.size(), 0);
  // Everyone starts knowing everyone's summary; then each gossips at its own phase.
  std::uniform_int_distribution<int64_t> phase(0, std::max<int64_t>(0, o_.gossip_period_ns - 1));
  for (size_t i = 0; i < hosts_.size(); ++i) {
    Gossip(i);
    view_[i].headroom = DecodeHeadroom(hosts_[i]->pending).value_or(HeadroomSummary{});
    view_[i].headroom_version = 1;
    hosts_[i]->published = hosts_[i]->pending;
    Push(phase(net_.rng()), Event::Kind::kGossip, i);
  }
  // The publications queued by the Gossip calls above are of what is already published.
}

PlacementCluster::~PlacementCluster() = default;

const std::string& PlacementCluster::name(size_t i) const { return hosts_.at(i)->spec.name; }

size_t PlacementCluster::Index(const std::string& host) const { return index_.at(host); }

workflow::Ledger& PlacementCluster::ledger(const std::string& host) {
  return hosts_[Index(host)]->ledger;
}
const Negotiator& PlacementCluster::negotiator(const std::string& host) const {
  return hosts_[Index(host)]->negotiator;
}
const Bidder& PlacementCluster::bidder(const std::string& host) const {
  return hosts_[Index(host)]->bidder;
}

uint64_t PlacementCluster::messages_sent() const { return net_.sent(); }

void PlacementCluster::Push(int64_t at, Event::Kind kind, size_t host) {
  events_.push({at, seq_++, kind, host});
}

void PlacementCluster::At(int64_t at, std::function<void()> fn) {
  calls_[seq_] = std::move(fn);
  Push(std::max(at, now_), Event::Kind::kCall, 0);
}

Status PlacementCluster::Submit(const std::string& owner, ShardRequest shard) {
  const size_t h = Index(owner);
  if (hosts_[h]->down || hosts_[h]->owner_stopped) {
    return Status::FailedPrecondition(owner + " is not running");
  }
  AUGUR_RETURN_IF_ERROR(hosts_[h]->negotiator.Submit(std::move(shard), now_));
  Reschedule(h);
  return Status::OK();
}

Status PlacementCluster::Release(const std::string& owner, const std::string& shard) {
  const size_t h = Index(owner);
  NegotiatorOutput nout;
  BidderOutput bout;
  AUGUR_RETURN_IF_ERROR(hosts_[h]->negotiator.Release(shard, now_, &nout));
  Flush(h, nout, bout);
  return Status::OK();
}

void PlacementCluster::SetDown(const std::string& host) {
  const size_t h = Index(host);
  hosts_[h]->down = true;
  net_.SetDown(host, true);
  Push(now_ + o_.detect_ns, Event::Kind::kDetect, h);
}

void PlacementCluster::StopOwner(const std::string& host) {
  hosts_[Index(host)]->owner_stopped = true;
}

void PlacementCluster::Reschedule(size_t h) {
  Host& host = *hosts_[h];
  std::optional<int64_t> next = host.bidder.NextDeadline();
  if (!host.owner_stopped) {
    if (auto n = host.negotiator.NextDeadline(); n && (!next || *n < *next)) next = n;
  }
  if (!next) return;
  const int64_t at = std::max(*next, now_);
  if (host.timer_at >= 0 && host.timer_at <= at) return;  // an earlier timer will see it
  host.timer_at = at;
  Push(at, Event::Kind::kTimer, h);
}

void PlacementCluster::Flush(size_t h, NegotiatorOutput& nout, BidderOutput& bout) {
  Host& host = *hosts_[h];
  auto send = [&](std::vector<PlacementOutgoing>& msgs) {
    for (PlacementOutgoing& m : msgs) {
      const std::string kind(BodyName(m.msg));
      Result<std::string> bytes = EncodePlacement(std::move(m.msg));
      if (!bytes) {
        ++encode_errors_;
        continue;
      }
      ++sent_by_kind_[kind];
      net_.Send(now_ / 1000, host.spec.name, m.to, std::move(*bytes));
    }
  };
  send(nout.messages);
  send(bout.messages);
  if (on_placement) {
    for (const PlacementEvent& e : nout.events) on_placement(host.spec.name, e);
  }
  if (on_bidder) {
    for (const BidderEvent& e : bout.events) on_bidder(host.spec.name, e);
  }
  Reschedule(h);
}

void PlacementCluster::Deliver(const SimDelivery& d) {
  const size_t h = Index(d.to);
  Host& host = *hosts_[h];
  if (host.down) return;
  Result<wire::PlacementMessage> msg = DecodePlacement(d.bytes);
  if (!msg) {
    ++bad_messages_;
    return;
  }
  NegotiatorOutput nout;
  BidderOutput bout;
  if (ForBidder(*msg)) {
    ++ledger_epochs_[h];
    host.bidder.Handle(d.from, *msg, now_, host.ledger, &bout);
  } else if (!host.owner_stopped) {
    host.negotiator.Handle(d.from, *msg, now_, &nout);
  }
  Flush(h, nout, bout);
}

void PlacementCluster::Gossip(size_t h) {
  Host& host = *hosts_[h];
  HeadroomSummary s;
  const workflow::Resources free = host.ledger.Free();
  for (uint32_t ahead : o_.horizons_s) s.horizons.push_back({ahead, free, free});
  s.backends = host.spec.backends;
  s.zone = host.spec.zone;
  Result<std::string> bytes = EncodeHeadroom(s);
  if (!bytes) {
    ++encode_errors_;
    return;
  }
  gossip_bytes_max_ = std::max<uint64_t>(gossip_bytes_max_, bytes->size());
  host.pending = std::move(*bytes);
  Push(now_ + o_.dissemination_ns, Event::Kind::kPublish, h);
}

std::optional<int64_t> PlacementCluster::NextOwnAt() const {
  if (events_.empty()) return std::nullopt;
  return events_.top().at;
}

std::optional<int64_t> PlacementCluster::NextAt() const {
  std::optional<int64_t> own = NextOwnAt();
  std::optional<int64_t> net = net_.NextAt();
  if (net) *net *= 1000;
  if (!own) return net;
  if (!net) return own;
  return std::min(*own, *net);
}

void PlacementCluster::RunUntil(int64_t until) {
  for (;;) {
    std::optional<int64_t> own = NextOwnAt();
    std::optional<int64_t> net = net_.NextAt();
    const int64_t net_ns = net ? *net * 1000 : INT64_MAX;
    const int64_t own_ns = own ? *own : INT64_MAX;
    const int64_t t = std::min(net_ns, own_ns);
    if (t == INT64_MAX || t > until) break;
    now_ = std::max(now_, t);
    if (net_ns <= own_ns) {
      if (std::optional<SimDelivery> d = net_.Pop(*net)) Deliver(*d);
    } else {
      const Event e = events_.top();
      events_.pop();
      Host& host = *hosts_[e.host];
      NegotiatorOutput nout;
      BidderOutput bout;
      switch (e.kind) {
        case Event::Kind::kTimer:
          if (e.at != host.timer_at) break;  // superseded by an earlier one
          host.timer_at = -1;
          if (host.down) break;
          if (!host.owner_stopped) host.negotiator.Tick(now_, view_, &nout);
          ++ledger_epochs_[e.host];
          host.bidder.Tick(now_, host.ledger, &bout);
          Flush(e.host, nout, bout);
          break;
        case Event::Kind::kGossip:
          if (host.down) break;
          Gossip(e.host);
          Push(now_ + o_.gossip_period_ns, Event::Kind::kGossip, e.host);
          break;
        case Event::Kind::kPublish:
          if (host.pending != host.published) {
            if (Result<HeadroomSummary> s = DecodeHeadroom(host.pending)) {
              view_[e.host].headroom = std::move(*s);
              ++view_[e.host].headroom_version;
              host.published = host.pending;
            } else {
              ++bad_messages_;
            }
          }
          break;
        case Event::Kind::kDetect:
          view_[e.host].alive = false;
          for (size_t g = 0; g < hosts_.size(); ++g) {
            if (g == e.host || hosts_[g]->down || hosts_[g]->owner_stopped) continue;
            NegotiatorOutput n2;
            BidderOutput b2;
            hosts_[g]->negotiator.PeerDown(host.spec.name, now_, &n2);
            Flush(g, n2, b2);
          }
          break;
        case Event::Kind::kCall: {
          auto it = calls_.find(e.seq);
          std::function<void()> fn = std::move(it->second);
          calls_.erase(it);
          fn();
          break;
        }
      }
    }
    if (after_event) after_event();
  }
  now_ = std::max(now_, until);
}

}  // namespace augur::mesh
