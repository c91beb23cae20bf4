#include "mesh/membership_sim.h"

#include <algorithm>
#include <utility>

namespace augur::mesh {

MembershipSim::MembershipSim(uint64_t seed, MembershipConfig config, SimLinkFaults faults)
    : config_(config), net_(seed, faults), rng_(seed ^ 0x9e3779b97f4a7c15ULL) {}

// A made-up but realistically sized endpoint (its bytes are on the wire in Alive records).
std::string MembershipSim::EndpointOf(size_t h) {
  return "tcp://198.18." + std::to_string(h / 250) + "." + std::to_string(h % 250 + 1) + ":7946";
}

void MembershipSim::Push(Action a) {
  a.order = order_++;
  actions_.push(std::move(a));
}

void MembershipSim::AddHost(const std::string& name, const std::string& zone, int64_t join_at_us,
                            std::vector<std::string> seeds, uint64_t initial_incarnation,
                            std::string meta) {
  size_t h = hosts_.size();
  Host host;
  host.name = name;
  host.zone = zone;
  host.meta = std::move(meta);
  hosts_.push_back(std::move(host));
  index_[name] = h;
  net_.SetDown(name, true);  // not there until it joins
  Action a{};
  a.at = std::max(join_at_us, now_);
  a.kind = ActionKind::kJoin;
  a.host = h;
  a.generation = hosts_[h].generation;
  a.seeds = std::move(seeds);
  a.incarnation = initial_incarnation;
  Push(std::move(a));
}

void MembershipSim::StartCore(size_t h, uint64_t incarnation,
                              const std::vector<std::string>& seeds) {
  Host& host = hosts_[h];
  MembershipConfig cfg = config_;
  cfg.initial_incarnation = incarnation;
  if (clock_skew_us_ > 0) {
    cfg.clock_offset_us +=
        std::uniform_int_distribution<int64_t>(-clock_skew_us_, clock_skew_us_)(skew_rng_);
  }
  host.core = std::make_unique<Membership>(cfg, PeerAddress{host.name, EndpointOf(h)}, host.zone,
                                           rng_(), tables_);
  if (!host.meta.empty()) (void)host.core->SetMeta(host.meta);  // sized by the caller
  host.scheduled_wake = INT64_MAX;
  host.tick_pending = false;
  net_.SetDown(host.name, false);
  std::vector<PeerAddress> addrs;
  for (const auto& s : seeds) {
    auto it = index_.find(s);
    addrs.push_back(PeerAddress{s, it == index_.end() ? "" : EndpointOf(it->second)});
  }
  Emit(h, host.core->Join(now_, addrs));
  Reschedule(h, now_);
}

void MembershipSim::AddKnownHosts(const std::vector<std::string>& names,
                                  const std::vector<std::string>& zones,
                                  const std::vector<std::string>& metas) {
  std::vector<size_t> added;
  for (size_t i = 0; i < names.size(); ++i) {
    const size_t h = hosts_.size();
    Host host;
    host.name = names[i];
    host.zone = zones.at(i);
    host.meta = metas.at(i);
    hosts_.push_back(std::move(host));
    index_[names[i]] = h;
    added.push_back(h);
    StartCore(h, 0, {});
  }
  std::sort(added.begin(), added.end(),
            [&](size_t a, size_t b) { return hosts_[a].name < hosts_[b].name; });
  // Every record as its own host holds it, in sync messages of at most max_message_bytes.
  std::vector<std::string> chunks;
  wire::MembershipMessage msg;
  for (size_t h : added) {
    const Member& m = *hosts_[h].core->Find(hosts_[h].name);
    wire::MemberUpdate u;
    u.set_status(wire::MEMBER_ALIVE);
    u.set_name(m.name);
    u.set_incarnation(m.incarnation);
    u.set_endpoint(m.endpoint);
    u.set_zone(m.zone);
    u.set_meta(m.meta);
    u.set_meta_version(m.meta_version);
    if (msg.ByteSizeLong() + u.ByteSizeLong() + 8 > config_.max_message_bytes) {
      chunks.push_back(msg.SerializeAsString());
      msg.Clear();
    }
    *msg.mutable_sync()->add_members() = std::move(u);
  }
  chunks.push_back(msg.SerializeAsString());
  // From the first host (to the first, from the second): a host's sync is from another.
  for (size_t h : added) {
    const std::string& from = hosts_[h == added[0] ? added[1] : added[0]].name;
    for (const std::string& c : chunks) Emit(h, hosts_[h].core->OnMessage(now_, from, c));
    Reschedule(h, now_);
  }
}

void MembershipSim::Kill(const std::string& name) {
  Host& host = hosts_.at(index_.at(name));
  host.core.reset();
  ++host.generation;
  host.scheduled_wake = INT64_MAX;
  net_.SetDown(name, true);
}

void MembershipSim::Restart(const std::string& name, uint64_t initial_incarnation,
                            std::vector<std::string> seeds) {
  size_t h = index_.at(name);
  Host& host = hosts_[h];
  host.core.reset();
  ++host.generation;
  StartCore(h, initial_incarnation, seeds);
}

void MembershipSim::Leave(const std::string& name) {
  size_t h = index_.at(name);
  if (!hosts_[h].core) return;
  Emit(h, hosts_[h].core->Leave(now_));
  Reschedule(h, now_);
}

Status MembershipSim::SetMeta(const std::string& name, std::string meta) {
  size_t h = index_.at(name);
  if (!hosts_[h].core) return Status::FailedPrecondition("sim host '" + name + "' is not running");
  Status s = hosts_[h].core->SetMeta(std::move(meta));
  Reschedule(h, now_);
  return s;
}

void MembershipSim::SetSlow(const std::string& name, int64_t min_us, int64_t max_us) {
  Host& host = hosts_.at(index_.at(name));
  host.slow_min_us = min_us;
  host.slow_max_us = std::max(min_us, max_us);
}

Membership* MembershipSim::host(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : hosts_[it->second].core.get();
}

bool MembershipSim::IsRunning(const std::string& name) const {
  auto it = index_.find(name);
  return it != index_.end() && hosts_[it->second].core != nullptr;
}

std::vector<std::string> MembershipSim::RunningHosts() const {
  std::vector<std::string> out;
  for (const auto& h : hosts_) {
    if (h.core) out.push_back(h.name);
  }
  return out;
}

int64_t MembershipSim::SlowAt(Host& host, int64_t at, bool message) {
  int64_t d = std::uniform_int_distribution<int64_t>(host.slow_min_us, host.slow_max_us)(rng_);
  if (!message) return at + d;
  host.last_processed_us = std::max(host.last_processed_us, at + d);
  return host.last_processed_us;
}

void MembershipSim::Emit(size_t h, std::vector<Outgoing> out) {
  Host& host = hosts_[h];
  for (auto& o : out) {
    if (on_send) on_send(host.name, o);
    if (o.to.endpoint.empty()) {  // as in MeshNode: the transport sends only to endpoints
      ++unaddressed_;
      continue;
    }
    net_.Send(now_, host.name, o.to.name, std::move(o.payload));
  }
  if (on_event && host.core) {
    for (const auto& e : host.core->TakeEvents()) on_event(host.name, e);
  } else if (host.core) {
    host.core->TakeEvents();
  }
}

void MembershipSim::Reschedule(size_t h, int64_t earliest) {
  Host& host = hosts_[h];
  if (!host.core || host.tick_pending) return;
  int64_t w = std::max(host.core->NextWakeUs(), earliest);
  if (w >= host.scheduled_wake) return;
  host.scheduled_wake = w;
  Action a{};
  a.at = w;
  a.kind = ActionKind::kWake;
  a.host = h;
  a.generation = host.generation;
  Push(std::move(a));
}

void MembershipSim::DoTick(size_t h) {
  Host& host = hosts_[h];
  host.tick_pending = false;
  Emit(h, host.core->Tick(now_));
  // Tick runs every due timer, so its next wake is later; asking for at least now + 1 keeps
  // a wrong NextWakeUs() from spinning the simulation in place.
  Reschedule(h, now_ + 1);
}

void MembershipSim::DoDeliver(size_t h, const std::string& from, const std::string& bytes) {
  Emit(h, hosts_[h].core->OnMessage(now_, from, bytes));
  Reschedule(h, now_);
}

void MembershipSim::RunUntil(int64_t t_us) {
  while (true) {
    auto net_at = net_.NextAt();
    int64_t act_at = actions_.empty() ? INT64_MAX : actions_.top().at;
    int64_t next = std::min(net_at.value_or(INT64_MAX), act_at);
    if (next > t_us) break;
    now_ = next;
    if (net_at && *net_at <= act_at) {
      auto d = net_.Pop(now_);
      if (!d) continue;
      auto it = index_.find(d->to);
      if (it == index_.end()) continue;
      size_t h = it->second;
      Host& host = hosts_[h];
      if (!host.core) continue;
      if (host.slow_max_us > 0) {
        Action a{};
        a.at = SlowAt(host, now_, /*message=*/true);
        a.kind = ActionKind::kSlowDeliver;
        a.host = h;
        a.generation = host.generation;
        a.from = std::move(d->from);
        a.bytes = std::move(d->bytes);
        Push(std::move(a));
      } else {
        DoDeliver(h, d->from, d->bytes);
      }
      continue;
    }
    Action a = actions_.top();
    actions_.pop();
    Host& host = hosts_[a.host];
    if (a.generation != host.generation) continue;  // for a life since ended
    switch (a.kind) {
      case ActionKind::kJoin:
        StartCore(a.host, a.incarnation, a.seeds);
        break;
      case ActionKind::kWake:
        if (!host.core || a.at != host.scheduled_wake) break;  // superseded
        host.scheduled_wake = INT64_MAX;
        if (host.slow_max_us > 0) {
          host.tick_pending = true;
          Action t{};
          t.at = SlowAt(host, now_, /*message=*/false);
          t.kind = ActionKind::kSlowTick;
          t.host = a.host;
          t.generation = host.generation;
          Push(std::move(t));
        } else {
          DoTick(a.host);
        }
        break;
      case ActionKind::kSlowTick:
        if (host.core) DoTick(a.host);
        break;
      case ActionKind::kSlowDeliver:
        if (host.core) DoDeliver(a.host, a.from, a.bytes);
        break;
    }
  }
  now_ = std::max(now_, t_us);
}

}  // namespace augur::mesh
