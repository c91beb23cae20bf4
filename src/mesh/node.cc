#include "mesh/node.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "mesh/headroom_summary.h"

namespace augur::mesh {
namespace {

int64_t ClockUs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}
int64_t MonotonicUs() { return ClockUs(CLOCK_MONOTONIC); }

// The longest the loop sleeps in a receive: it also bounds how late a SetMeta, a Stop or
// a snapshot refresh is noticed.
constexpr int64_t kMaxWaitUs = 20'000;
// Messages handled per wake-up before the protocol gets its tick: a flood cannot starve
// the probes.
constexpr int kMaxBurst = 256;
// Other threads' snapshot of the members is at most this old when nothing changed but
// last-seen times and incarnations without an event (Publish).
constexpr int64_t kMembersRefreshUs = 100'000;

double MeanMs(const LatencyHistogram& h) {
  return h.count() > 0 ? h.sum() * 1e3 / double(h.count()) : 0.0;
}

}  // namespace

// The word of a membership event in the log. One line per event, "mesh: member NAME WORD
// incarnation N": bench/mesh/runner_augur.sh reads them.
const char* EventWord(const MembershipEvent& e) {
  switch (e.kind) {
    case MembershipEventKind::kJoined: return "joined";
    case MembershipEventKind::kStateChanged: return MemberStateName(e.state);
    case MembershipEventKind::kMetaChanged: return "meta";
    case MembershipEventKind::kReaped: return "reaped";
  }
  return "?";
}

struct MeshNode::Impl {
  MeshNodeOptions o;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Membership> membership;
  std::thread thread;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> unaddressed{0};  // sends from any thread
  uint64_t unhandled = 0;                // mesh thread only
  LatencyHistogram placement_transit;    // mesh thread only
  int64_t next_members_us = 0;           // mesh thread only: Publish's next full snapshot

  std::chrono::milliseconds leave_grace{500};

  mutable std::mutex mu;  // guards everything below
  std::vector<Member> members;     // sorted by name (Membership::Members)
  uint64_t members_generation = 0;  // raised with each new snapshot of members
  // PlacementView's last answer, made from the snapshot of that generation, and each
  // member's gossiped bytes with their decoding (under view_mu; the generation is read
  // under mu).
  struct Decoded {
    std::string meta;
    HeadroomSummary headroom;
  };
  mutable std::mutex view_mu;
  mutable PeerView view;
  mutable uint64_t view_generation = 0;
  mutable std::map<std::string, Decoded> decoded;
  MeshNodeStats stats;
  std::optional<std::string> pending_meta;
  std::function<void(const MembershipEvent&)> on_event;
  LatencyHistogram placement_send;
  std::map<Channel, std::function<void(const std::string&, std::string)>> handlers;

  void Send(const std::vector<Outgoing>& out) {
    for (const Outgoing& m : out) {
      if (m.to.endpoint.empty()) {
        // A reply to a host whose endpoint is not known yet.
        unaddressed.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // A full queue or an unreachable peer is a lost datagram to SWIM: counted by the
      // transport, and the protocol's own timeouts deal with it.
      (void)transport->Send(m.to.name, m.to.endpoint, Channel::kMembership, m.payload);
    }
  }

  void Dispatch(int64_t now, const Inbound& in) {
    switch (in.channel) {
      case Channel::kMembership:
        Send(membership->OnMessage(now, in.from, in.payload));
        break;
      default: {
        if (in.channel == Channel::kPlacement && in.sent_unix_ns > 0) {
          placement_transit.Record(double(ClockUs(CLOCK_REALTIME) * 1000 - in.sent_unix_ns) / 1e9);
        }
        std::function<void(const std::string&, std::string)> fn;
        {
          std::lock_guard lock(mu);
          auto it = handlers.find(in.channel);
          if (it != handlers.end()) fn = it->second;
        }
        if (fn) {
          fn(in.from, in.payload);
        } else {
          ++unhandled;
        }
        break;
      }
    }
  }

  // What other threads read: the members when membership reported a change, and at least
  // every kMembersRefreshUs (their last-seen times change with every message, and copying
  // every member on every message is most of this thread's work at 32 hosts); the counters
  // every time.
  void Publish(int64_t now) {
    std::vector<MembershipEvent> events = membership->TakeEvents();
    const bool refresh = !events.empty() || now >= next_members_us;
    std::vector<Member> fresh;
    if (refresh) {
      fresh = membership->Members();
      next_members_us = now + kMembersRefreshUs;
    }
    std::function<void(const MembershipEvent&)> cb;
    {
      std::lock_guard lock(mu);
      if (refresh) {
        members.swap(fresh);
        ++members_generation;
      }
      stats.transport = transport->stats();
      stats.membership = membership->stats();
      stats.local_health = membership->LocalHealth();
      stats.unaddressed = unaddressed.load(std::memory_order_relaxed);
      stats.unhandled = unhandled;
      stats.placement_send = placement_send;
      stats.placement_transit = placement_transit;
      cb = on_event;
    }
    for (const MembershipEvent& e : events) {
      if (e.kind == MembershipEventKind::kMetaChanged) {
        spdlog::debug("mesh: member {} meta incarnation {}", e.name, e.incarnation);
      } else {
        spdlog::info("mesh: member {} {} incarnation {}", e.name, EventWord(e), e.incarnation);
      }
      if (e.kind == MembershipEventKind::kStateChanged &&
          (e.state == MemberState::kDead || e.state == MemberState::kLeft)) {
        transport->ResetLink(e.name);
      }
      if (cb) cb(e);
    }
  }

  // One line of counters since start: what the mesh costs, as this host counts it.
  void LogCounters() const {
    LatencyHistogram send;
    {
      std::lock_guard lock(mu);
      send = placement_send;
    }
    const TransportStats t = transport->stats();
    const MembershipStats& m = membership->stats();
    const MessageCounts ms = m.TotalSent(), mr = m.TotalReceived();
    spdlog::info(
        "mesh: counters sent_msgs={} sent_bytes={} received_msgs={} received_bytes={} "
        "membership_sent_msgs={} membership_received_msgs={} probes={} indirect_probes={} "
        "suspicions_raised={} refutations={} verdicts_deferred={} late_evidence={} "
        "late_ticks={} lhm={} placement_sent={} placement_send_mean_ms={:.3f} "
        "placement_received={} placement_transit_mean_ms={:.3f}",
        t.sent_messages, t.sent_bytes, t.received_messages, t.received_bytes, ms.msgs, mr.msgs,
        m.probes, m.indirect_probes, m.suspicions_raised, m.refutations, m.verdicts_deferred,
        m.late_evidence, m.late_ticks, membership->LocalHealth(), send.count(),
        MeanMs(send), placement_transit.count(), MeanMs(placement_transit));
  }

  // Partitions heal through this: every reconnect interval, one host this one holds dead
  // (not left), or a seed it does not see alive, gets a join. A host wrongly declared dead
  // on either side of a healed cut then hears of it and refutes, as a restarted one does.
  // (SWIM alone would not notice: nobody probes the dead.) A join to a host that really is
  // dead costs one dropped message a second until the next pick.
  std::optional<PeerAddress> ReconnectTarget(std::mt19937_64& rng) const {
    std::vector<PeerAddress> targets;
    std::set<std::string> live;
    for (const Member& m : membership->Members()) {
      if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) live.insert(m.name);
      if (m.state == MemberState::kDead && !m.endpoint.empty()) {
        targets.push_back({m.name, m.endpoint});
      }
    }
    for (const PeerAddress& seed : o.seeds) {
      if (!live.count(seed.name)) targets.push_back(seed);
    }
    if (targets.empty()) return std::nullopt;
    return targets[std::uniform_int_distribution<size_t>(0, targets.size() - 1)(rng)];
  }

  void Loop() {
    int64_t now = MonotonicUs();
    Send(membership->Join(now, o.seeds));
    std::mt19937_64 rng(o.seed ^ 0x9e3779b97f4a7c15ULL);
    int64_t next_rejoin = now + int64_t(o.rejoin_interval.count()) * 1000;
    const int64_t counters_every = int64_t(o.counters_log_interval.count()) * 1000;
    int64_t next_counters = now + counters_every;
    while (!stop.load(std::memory_order_relaxed)) {
      now = MonotonicUs();
      const int64_t wait = std::clamp<int64_t>(membership->NextWakeUs() - now, 0, kMaxWaitUs);
      if (auto in = transport->Receive(std::chrono::milliseconds((wait + 999) / 1000))) {
        Dispatch(MonotonicUs(), *in);
        for (int i = 1; i < kMaxBurst; ++i) {
          auto more = transport->Receive(std::chrono::milliseconds(0));
          if (!more) break;
          Dispatch(MonotonicUs(), *more);
        }
      }
      now = MonotonicUs();
      {
        std::optional<std::string> meta;
        {
          std::lock_guard lock(mu);
          meta.swap(pending_meta);
          ++stats.loop_iterations;
        }
        if (meta) {
          if (Status st = membership->SetMeta(std::move(*meta)); !st.ok()) {
            spdlog::warn("mesh: this host's metadata is not gossiped: {}", st.ToString());
          }
        }
      }
      if (now >= membership->NextWakeUs()) Send(membership->Tick(now));
      if (now >= next_rejoin) {
        if (auto target = ReconnectTarget(rng)) Send(membership->Join(now, {*target}));
        next_rejoin = now + int64_t(o.rejoin_interval.count()) * 1000;
      }
      if (counters_every > 0 && now >= next_counters) {
        LogCounters();
        next_counters = now + counters_every;
      }
      Publish(now);
    }
    // Graceful leave: tell the others, and keep answering for a moment so that the news
    // spreads before this host stops acknowledging probes.
    now = MonotonicUs();
    Send(membership->Leave(now));
    const int64_t until = now + int64_t(leave_grace.count()) * 1000;
    while ((now = MonotonicUs()) < until) {
      if (auto in = transport->Receive(std::chrono::milliseconds(10))) Dispatch(now, *in);
      if (now >= membership->NextWakeUs()) Send(membership->Tick(now));
    }
    Publish(now);
  }
};

Result<std::unique_ptr<MeshNode>> MeshNode::Start(MeshNodeOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  auto transport = Transport::Start(impl->o.transport);
  if (!transport) return std::unexpected(transport.error());
  impl->transport = std::move(*transport);
  const std::string advertise =
      impl->o.advertise.empty() ? impl->transport->endpoint() : impl->o.advertise;
  uint64_t seed = impl->o.seed;
  if (seed == 0) seed = std::random_device{}() ^ uint64_t(MonotonicUs());
  impl->o.seed = seed;
  // Staggered probing lies on slots of a clock the hosts share: the wall clock (NTP keeps
  // hosts within milliseconds), read through the monotonic one the loop runs on.
  impl->o.membership.clock_offset_us = ClockUs(CLOCK_REALTIME) - MonotonicUs();
  impl->membership = std::make_unique<Membership>(
      impl->o.membership, PeerAddress{impl->o.transport.host_name, advertise}, impl->o.zone,
      seed);
  Impl* raw = impl.get();
  raw->members = raw->membership->Members();
  raw->thread = std::thread([raw] { raw->Loop(); });
  spdlog::info("mesh: {} listening on {} (advertised as {}), {} seed(s)",
               raw->o.transport.host_name, raw->transport->endpoint(), advertise,
               raw->o.seeds.size());
  return std::unique_ptr<MeshNode>(new MeshNode(std::move(impl)));
}

MeshNode::MeshNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MeshNode::~MeshNode() { Stop(); }

void MeshNode::Stop(std::chrono::milliseconds leave_grace) {
  if (!impl_->thread.joinable()) return;
  impl_->leave_grace = leave_grace;
  impl_->stop.store(true);
  impl_->transport->Wake();  // out of its wait now, not at the end of it
  impl_->thread.join();
}

std::vector<Member> MeshNode::Peers() const {
  std::lock_guard lock(impl_->mu);
  return impl_->members;
}

MeshNodeStats MeshNode::Stats() const {
  std::lock_guard lock(impl_->mu);
  return impl_->stats;
}

void MeshNode::SetMeta(std::string meta) {
  std::lock_guard lock(impl_->mu);
  impl_->pending_meta = std::move(meta);
}

void MeshNode::OnChannel(Channel ch,
                         std::function<void(const std::string&, std::string)> fn) {
  std::lock_guard lock(impl_->mu);
  impl_->handlers[ch] = std::move(fn);
}

void MeshNode::Send(const std::string& host, Channel ch, std::string payload) {
  if (impl_->stop.load(std::memory_order_relaxed)) return;  // leaving: nothing new goes out
  std::string endpoint;
  {
    std::lock_guard lock(impl_->mu);
    const std::vector<Member>& ms = impl_->members;
    auto it = std::lower_bound(ms.begin(), ms.end(), host,
                               [](const Member& m, const std::string& n) { return m.name < n; });
    if (it != ms.end() && it->name == host) endpoint = it->endpoint;
  }
  if (endpoint.empty()) {
    impl_->unaddressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // This thread sends: a message queued for the mesh thread would wait for it to wake (one
  // thread hop of the few a placement's round trip has; docs/MESH.md "The hops").
  const int64_t start = MonotonicUs();
  (void)impl_->transport->Send(host, endpoint, ch, payload);
  if (ch == Channel::kPlacement) {
    const double took = double(MonotonicUs() - start) / 1e6;
    std::lock_guard lock(impl_->mu);
    impl_->placement_send.Record(took);
  }
}

PeerView MeshNode::PlacementView() const {
  std::lock_guard view_lock(impl_->view_mu);
  std::vector<Member> ms;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->view != nullptr && impl_->view_generation == impl_->members_generation) {
      return impl_->view;
    }
    impl_->view_generation = impl_->members_generation;
    ms = impl_->members;
  }
  // A member's headroom is decoded again only when its gossiped bytes changed (a version
  // alone could repeat across a restart).
  std::map<std::string, Impl::Decoded> decoded;
  auto out = std::make_shared<std::vector<PlacementPeer>>();
  out->reserve(ms.size());
  for (Member& m : ms) {
    PlacementPeer p;
    p.zone = m.zone;
    p.alive = m.state == MemberState::kAlive;
    p.headroom_version = m.meta_version;
    Impl::Decoded& d = decoded[m.name];
    if (auto old = impl_->decoded.find(m.name);
        old != impl_->decoded.end() && old->second.meta == m.meta) {
      d = std::move(old->second);
    } else {
      d.meta = std::move(m.meta);
      if (auto h = DecodeHeadroom(d.meta)) d.headroom = std::move(*h);
    }
    p.headroom = d.headroom;
    p.name = std::move(m.name);
    out->push_back(std::move(p));
  }
  impl_->decoded.swap(decoded);  // members gone are forgotten
  impl_->view = std::move(out);
  return impl_->view;
}

void MeshNode::OnEvent(std::function<void(const MembershipEvent&)> fn) {
  std::lock_guard lock(impl_->mu);
  impl_->on_event = std::move(fn);
}

const std::string& MeshNode::name() const { return impl_->o.transport.host_name; }

std::string MeshNode::endpoint() const { return impl_->transport->endpoint(); }

std::string MeshNode::PeersJson() const {
  const int64_t now = MonotonicUs();
  nlohmann::json arr = nlohmann::json::array();
  for (const Member& m : Peers()) {
    arr.push_back({{"name", m.name},
                   {"endpoint", m.endpoint},
                   {"state", MemberStateName(m.state)},
                   {"zone", m.zone},
                   {"incarnation", m.incarnation},
                   {"self", m.name == name()},
                   {"last_seen_s", m.last_seen_us > 0 ? double(now - m.last_seen_us) / 1e6 : -1.0},
                   {"state_for_s", double(now - m.state_since_us) / 1e6},
                   {"meta_version", m.meta_version}});
    if (m.meta.empty()) continue;
    // A peer's meta is untrusted: shown only when it decodes as a headroom summary.
    auto h = DecodeHeadroom(m.meta);
    if (!h) {
      arr.back()["headroom_error"] = h.error().message();
      continue;
    }
    nlohmann::json hs = nlohmann::json::array();
    for (const HorizonHeadroom& x : h->horizons) {
      hs.push_back({{"ahead_s", x.ahead_s},
                    {"cpu_lo", x.free_lo.cpu},
                    {"cpu_hi", x.free_hi.cpu},
                    {"memory_lo", x.free_lo.memory},
                    {"memory_hi", x.free_hi.memory}});
    }
    nlohmann::json backends = nlohmann::json::array();
    for (const BackendCosts& b : h->backends) {
      nlohmann::json classes = nlohmann::json::array();
      for (const workflow::CostClass& c : b.classes) {
        classes.push_back({{"name", c.name},
                           {"per_core_hour", c.per_core_hour},
                           {"per_gib_hour", c.per_gib_hour},
                           {"preemptible", c.preemptible}});
      }
      backends.push_back({{"name", b.name}, {"classes", classes}});
    }
    arr.back()["headroom"] = {{"horizons", hs}, {"backends", backends}, {"region", h->region}};
  }
  return arr.dump(2);
}

}  // namespace augur::mesh
