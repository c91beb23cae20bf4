#include "mesh/membership.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace augur::mesh {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
// Limits on what a peer may tell us; longer fields are malformed, not truncated.
constexpr size_t kMaxNameBytes = 253;  // a DNS name
constexpr size_t kMaxEndpointBytes = 256;
constexpr size_t kMaxZoneBytes = 64;
// The relay sends its Nack this far into the prober's indirect wait, so that it arrives
// before the prober gives up (memberlist sends it after its own probe timeout).
constexpr double kNackFraction = 0.8;
// A sync record's field tag and length, beyond its own encoding.
constexpr size_t kRecordOverhead = 4;
// A digest entry's bytes at most (8 hash, up to 10 + 10 varints, 1 status), with the room
// a digest leaves for its own record and piggybacked updates.
constexpr size_t kDigestEntryBytes = 29;
constexpr size_t kDigestRoom = 2048;
// Messages of records sent in answer to one digest; the next exchange sends the rest.
constexpr size_t kMaxSyncAnswerMessages = 4;

// FNV-1a, 64 bits: digests name members by this hash of their name.
uint64_t NameHash(std::string_view name) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Which of two facts about a member at the same incarnation is the later one.
int StatusRank(wire::MemberStatus s) {
  switch (s) {
    case wire::MEMBER_ALIVE:
      return 0;
    case wire::MEMBER_SUSPECT:
      return 1;
    case wire::MEMBER_DEAD:
      return 2;
    case wire::MEMBER_LEFT:
      return 3;
    default:
      return 0;
  }
}

wire::MemberStatus ToWire(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return wire::MEMBER_ALIVE;
    case MemberState::kSuspect:
      return wire::MEMBER_SUSPECT;
    case MemberState::kDead:
      return wire::MEMBER_DEAD;
    case MemberState::kLeft:
      return wire::MEMBER_LEFT;
  }
  return wire::MEMBER_ALIVE;
}

bool IsGone(MemberState s) { return s == MemberState::kDead || s == MemberState::kLeft; }

MessageKind KindOf(const wire::MembershipMessage& m) {
  switch (m.body_case()) {
    case wire::MembershipMessage::kPing:
      return MessageKind::kPing;
    case wire::MembershipMessage::kAck:
      return MessageKind::kAck;
    case wire::MembershipMessage::kPingReq:
      return MessageKind::kPingReq;
    case wire::MembershipMessage::kNack:
      return MessageKind::kNack;
    case wire::MembershipMessage::kSync:
      return MessageKind::kSync;
    case wire::MembershipMessage::BODY_NOT_SET:
      break;
  }
  return MessageKind::kGossip;
}

MessageCounts Sum(const std::array<MessageCounts, static_cast<size_t>(MessageKind::kCount)>& a) {
  MessageCounts t;
  for (const auto& c : a) {
    t.msgs += c.msgs;
    t.bytes += c.bytes;
  }
  return t;
}

}  // namespace

const char* MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "?";
}

const char* MessageKindName(MessageKind k) {
  switch (k) {
    case MessageKind::kPing:
      return "ping";
    case MessageKind::kAck:
      return "ack";
    case MessageKind::kPingReq:
      return "ping_req";
    case MessageKind::kNack:
      return "nack";
    case MessageKind::kGossip:
      return "gossip";
    case MessageKind::kSync:
      return "sync";
    case MessageKind::kCount:
      break;
  }
  return "?";
}

size_t MemberCardHash::operator()(const MemberCardView& c) const noexcept {
  const std::hash<std::string_view> h;
  size_t x = h(c.endpoint);
  for (size_t y : {h(c.zone), h(c.meta), std::hash<uint64_t>{}(c.meta_version)}) {
    x ^= y + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
  }
  return x;
}

MessageCounts MembershipStats::TotalSent() const { return Sum(sent); }
MessageCounts MembershipStats::TotalReceived() const { return Sum(received); }

Status MembershipConfig::Validate() const {
  auto bad = [](const char* field, const char* why) {
    return Status::InvalidArgument(std::string("membership config: ") + field + ": " + why);
  };
  if (probe_interval_us <= 0) return bad("probe_interval_us", "must be > 0");
  if (probe_timeout_us <= 0) return bad("probe_timeout_us", "must be > 0");
  if (indirect_timeout_us <= 0) return bad("indirect_timeout_us", "must be > 0");
  if (indirect_probes < 0) return bad("indirect_probes", "must be >= 0");
  if (suspicion_mult < 1) return bad("suspicion_mult", "must be >= 1");
  if (suspicion_max_mult < 1) return bad("suspicion_max_mult", "must be >= 1");
  if (suspicion_unit_us <= 0) return bad("suspicion_unit_us", "must be > 0");
  if (refute_fanout < 0) return bad("refute_fanout", "must be >= 0");
  if (retransmit_mult < 1) return bad("retransmit_mult", "must be >= 1");
  if (max_local_health < 1) return bad("max_local_health", "must be >= 1");
  if (gossip_interval_us <= 0) return bad("gossip_interval_us", "must be > 0");
  if (gossip_fanout < 1) return bad("gossip_fanout", "must be >= 1");
  if (gossip_to_dead_us < 0) return bad("gossip_to_dead_us", "must be >= 0");
  if (sync_interval_us <= 0) return bad("sync_interval_us", "must be > 0");
  if (join_retry_us <= 0) return bad("join_retry_us", "must be > 0");
  if (reap_after_us <= 0) return bad("reap_after_us", "must be > 0");
  if (max_message_bytes < 1024) return bad("max_message_bytes", "must be >= 1024");
  if (max_piggyback_bytes > max_message_bytes / 2) {
    return bad("max_piggyback_bytes", "must be <= max_message_bytes / 2");
  }
  if (max_gossip_bytes < 256 || max_gossip_bytes > max_message_bytes) {
    return bad("max_gossip_bytes", "must be in [256, max_message_bytes]");
  }
  if (max_meta_bytes > max_message_bytes / 4) {
    return bad("max_meta_bytes", "must be <= max_message_bytes / 4");
  }
  return Status::OK();
}

Membership::Membership(MembershipConfig config, PeerAddress self, std::string zone, uint64_t seed,
                       std::shared_ptr<MemberTables> tables)
    : config_(config),
      self_name_(std::move(self.name)),
      rng_(seed),
      tables_(tables ? std::move(tables) : std::make_shared<MemberTables>()),
      health_(config.max_local_health) {
  // Never trust the numbers blindly: a bad config degrades, it does not divide by zero.
  config_.probe_interval_us = std::max<int64_t>(config_.probe_interval_us, 1000);
  config_.probe_timeout_us = std::max<int64_t>(config_.probe_timeout_us, 1);
  config_.indirect_timeout_us = std::max<int64_t>(config_.indirect_timeout_us, 1);
  config_.indirect_probes = std::max(config_.indirect_probes, 0);
  config_.suspicion_mult = std::max(config_.suspicion_mult, 1);
  config_.suspicion_max_mult = std::max(config_.suspicion_max_mult, 1);
  config_.suspicion_unit_us = std::max<int64_t>(config_.suspicion_unit_us, 1000);
  config_.refute_fanout = std::max(config_.refute_fanout, 0);
  config_.retransmit_mult = std::max(config_.retransmit_mult, 1);
  config_.gossip_interval_us = std::max<int64_t>(config_.gossip_interval_us, 1000);
  config_.gossip_fanout = std::max(config_.gossip_fanout, 1);
  config_.sync_interval_us = std::max<int64_t>(config_.sync_interval_us, 1000);
  config_.join_retry_us = std::max<int64_t>(config_.join_retry_us, 1000);
  config_.reap_after_us = std::max<int64_t>(config_.reap_after_us, 1);
  config_.max_message_bytes = std::max<size_t>(config_.max_message_bytes, 1024);
  config_.max_piggyback_bytes =
      std::min(config_.max_piggyback_bytes, config_.max_message_bytes / 2);
  config_.max_gossip_bytes =
      std::clamp<size_t>(config_.max_gossip_bytes, 256, config_.max_message_bytes);
  config_.max_meta_bytes = std::min(config_.max_meta_bytes, config_.max_message_bytes / 4);

  Entry e;
  e.name = tables_->names.Intern(self_name_);
  e.card = tables_->cards.Intern(MemberCard{std::move(self.endpoint), std::move(zone), "", 0});
  e.incarnation = config_.initial_incarnation;
  e.index = 0;
  const Entry& added = *members_.insert(std::move(e)).first;
  names_.push_back(&added);
  probed_.push_back(false);
  ring_.push_back(&added);
  // Spread the first probe and the first sync over an interval, so hosts started together
  // do not probe in lockstep.
  next_probe_at_ = -1;
  next_sync_at_ = -1;
}

uint64_t Membership::incarnation() const { return Self().incarnation; }

const Membership::Entry* Membership::Lookup(std::string_view name) const {
  auto it = members_.find(name);
  return it == members_.end() ? nullptr : &*it;
}

Membership::CardRef Membership::Card(const wire::MemberUpdate& u) {
  return tables_->cards.InternAs(MemberCardView{u.endpoint(), u.zone(), u.meta(), u.meta_version()});
}

size_t Membership::RecordBytes() {
  // A node of members_ (the entry and its link; glibc rounds an allocation up to 16 bytes
  // with 8 of header), its bucket, and its places in names_ and ring_.
  const size_t node = (sizeof(Entry) + sizeof(void*) + 8 + 15) / 16 * 16;
  return node + sizeof(void*) + sizeof(const Entry*) * 2;
}

// ---- Timers ----------------------------------------------------------------------------

std::vector<Outgoing> Membership::Join(int64_t now_us, const std::vector<PeerAddress>& seeds) {
  std::vector<Outgoing> out;
  if (left_) return out;
  found_.clear();
  seeds_.clear();
  std::set<std::string> seen;
  for (const auto& s : seeds) {
    if (s.name.empty() || s.name == self_name_ || !seen.insert(s.name).second) continue;
    seeds_.push_back(s);
  }
  joining_ = !seeds_.empty();
  // A host that knows nobody yet puts its own Alive on its first messages, beside what the
  // seeds gossip of it: the members it probes first hear of it from itself.
  if (joining_ && live_count_ == 1 && !left_) QueueAlive(Self());
  if (joining_) SendJoins(out, now_us);
  return out;
}

void Membership::SendJoins(std::vector<Outgoing>& out, int64_t now_us) {
  for (const auto& seed : seeds_) {
    wire::MembershipMessage msg;
    auto* sync = msg.mutable_sync();
    sync->set_join(true);
    *sync->add_members() = Record(Self());
    Send(out, seed, msg, MessageKind::kSync);
  }
  next_join_at_ = now_us + config_.join_retry_us;
}

std::vector<Outgoing> Membership::Tick(int64_t now_us) {
  std::vector<Outgoing> out;
  found_.clear();
  if (next_probe_at_ < 0) {
    next_probe_at_ =
        config_.staggered_probes
            ? SlotAtOrAfter(now_us)
            : now_us + std::uniform_int_distribution<int64_t>(0, config_.probe_interval_us)(rng_);
    next_sync_at_ = now_us + std::uniform_int_distribution<int64_t>(0, SyncIntervalUs())(rng_);
    next_gossip_at_ = now_us;
  }
  if (!left_) {
    if (joining_ && now_us >= next_join_at_) SendJoins(out, now_us);
    Reap(now_us);
    RunSuspicions(now_us);
    RunProbes(out, now_us);
    RunRelays(out, now_us);
    if (now_us >= next_probe_at_) {
      // A probe that starts later than the probe timeout after its time says this host's own
      // loop is starved (a saturated CPU, an overloaded machine): like a missing nack, it is
      // evidence that this host, not its peers, is the slow one (Lifeguard's local health).
      if (now_us - next_probe_at_ > config_.probe_timeout_us) {
        health_.Apply(1);
        ++stats_.late_ticks;
      }
      StartProbe(out, now_us);
      next_probe_at_ = NextProbeAt(now_us);
    }
    // A probe that failed just now is this host's own accusation: a confirmation of an
    // existing suspicion, which may have brought its deadline into the past.
    RunSuspicions(now_us);
    if (now_us >= next_sync_at_) {
      auto peer =
          PickRandom(1, "", [](const Entry& e) { return e.state == MemberState::kAlive; });
      if (!peer.empty()) SendDigest(out, AddressOf(peer[0]));
      next_sync_at_ = now_us + SyncIntervalUs();
    }
  } else {
    RunRelays(out, now_us);
  }
  if (now_us >= next_gossip_at_) {
    if (!broadcasts_.empty()) GossipRound(out, now_us, config_.gossip_fanout);
    next_gossip_at_ = now_us + config_.gossip_interval_us;
  }
  if (refute_pending_) SendRefutation(out);
  return out;
}

int64_t Membership::NextWakeUs() const {
  if (next_probe_at_ < 0) return 0;  // never ticked: tick now
  int64_t t = kNever;
  if (!broadcasts_.empty()) t = std::min(t, next_gossip_at_);
  for (const auto& [seq, r] : relays_) t = std::min(t, r.nacked ? r.expire_at : r.nack_at);
  if (left_) return t;
  t = std::min({t, next_probe_at_, next_sync_at_});
  if (joining_) t = std::min(t, next_join_at_);
  for (const auto& [seq, p] : probes_)
    t = std::min(t, p.indirect_sent ? p.deadline_at : p.timeout_at);
  for (const auto& [name, s] : suspects_) t = std::min(t, VerdictAt(*Lookup(name), s));
  if (!tombstones_.empty()) t = std::min(t, next_probe_at_);  // reaping runs with probes
  return t;
}

std::string Membership::NextProbeTarget(int64_t now_us) {
  if (config_.staggered_probes) return StaggeredTarget(now_us);
  for (int pass = 0; pass < 2; ++pass) {
    while (probe_pos_ < probe_order_.size()) {
      const std::string& name = probe_order_[probe_pos_++];
      const Entry* e = Lookup(name);
      if (e != nullptr && name != self_name_ && !IsGone(e->state)) return name;
    }
    // A new round: every live member once, in a fresh random order (SWIM's randomized
    // round-robin bounds the time until a failed member is probed by each host).
    probe_order_.clear();
    for (const Entry& e : members_) {
      if (e.Name() != self_name_ && !IsGone(e.state)) probe_order_.push_back(e.Name());
    }
    std::shuffle(probe_order_.begin(), probe_order_.end(), rng_);
    probe_pos_ = 0;
  }
  return "";
}

void Membership::AddToProbeRound(const std::string& name) {
  // Probe a newcomer in this round, at a random place among those still to come (SWIM).
  if (config_.staggered_probes) {
    // The order is not used; the draw is made all the same (see probe_order_added_).
    ++probe_order_added_;
    (void)std::uniform_int_distribution<size_t>(probe_pos_, probe_order_added_ - 1)(rng_);
    return;
  }
  probe_order_.push_back(name);
  size_t at = std::uniform_int_distribution<size_t>(probe_pos_, probe_order_.size() - 1)(rng_);
  std::swap(probe_order_[at], probe_order_.back());
}

namespace {
// Floor division for a possibly negative numerator.
int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// Where `name` is or would go in a ring sorted by name.
template <typename Ring>
auto RingFind(Ring& ring, std::string_view name) {
  return std::lower_bound(ring.begin(), ring.end(), name,
                          [](const auto* e, std::string_view n) { return e->Name() < n; });
}
}  // namespace

int64_t Membership::PhaseUs() const {
  // Spread over the slot by position in the ring, so that the hosts probing one member in
  // consecutive slots (consecutive positions) probe it about one interval apart.
  const auto i = static_cast<int64_t>(RingFind(ring_, self_name_) - ring_.begin());
  return i * config_.probe_interval_us / std::max<int64_t>(1, static_cast<int64_t>(ring_.size()));
}

int64_t Membership::SlotAtOrAfter(int64_t t_us) const {
  const int64_t period = config_.probe_interval_us, phase = PhaseUs();
  const int64_t shared = t_us + config_.clock_offset_us - phase;
  const int64_t k = -FloorDiv(-shared, period);  // ceil
  return k * period + phase - config_.clock_offset_us;
}

int64_t Membership::NextProbeAt(int64_t now_us) const {
  const int64_t step = health_.Scale(config_.probe_interval_us);
  if (!config_.staggered_probes) return now_us + step;
  // The slot `step` on, or the nearest one if the ring (and so the phase) changed.
  return SlotAtOrAfter(now_us + step - config_.probe_interval_us / 2);
}

std::string Membership::StaggeredTarget(int64_t now_us) {
  const size_t m = ring_.size();
  if (m < 2) return "";
  const size_t i = static_cast<size_t>(RingFind(ring_, self_name_) - ring_.begin());
  if (i >= m || ring_[i]->Name() != self_name_) return "";  // left: not in the ring
  const int64_t period = config_.probe_interval_us;
  const int64_t slot =
      FloorDiv(now_us + config_.clock_offset_us - PhaseUs() + period / 2, period);
  // In slot s, the host at ring position p probes position p - 1 - (s mod (m - 1)): each
  // member is probed by exactly one host per slot, and by each host once in m - 1 slots.
  // Member j's prober in slot s is j + 1 + (s mod (m - 1)): one position on per slot, so its
  // phase, and with it the gap between two probes of j, grows by interval / m, except where
  // the positions wrap to 0 (a short gap); no gap is longer than interval * (1 + 2 / m).
  const auto first = static_cast<size_t>(((slot % static_cast<int64_t>(m - 1)) +
                                          static_cast<int64_t>(m - 1)) %
                                         static_cast<int64_t>(m - 1));
  // A slot this host skipped (local health, a late tick) or a ring that changed can name a
  // member probed already this round: then the next one not yet probed, so that every member
  // is still probed once per round.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t k = 0; k + 1 < m; ++k) {
      const Entry* e = ring_[(i + m - 1 - (first + k) % (m - 1)) % m];
      if (!probed_[e->index]) {
        probed_[e->index] = true;
        return e->Name();
      }
    }
    std::fill(probed_.begin(), probed_.end(), false);  // a new round
  }
  return "";
}

// A changed ring moves every host's slot targets: a new round starts, so that this host
// follows the schedule at once rather than once its old round has run out.
void Membership::RingInsert(const Entry& e) {
  auto it = RingFind(ring_, e.Name());
  if (it != ring_.end() && *it == &e) return;
  ring_.insert(it, &e);
  std::fill(probed_.begin(), probed_.end(), false);
}

void Membership::RingErase(const Entry& e) {
  auto it = RingFind(ring_, e.Name());
  if (it == ring_.end() || *it != &e) return;
  ring_.erase(it);
  std::fill(probed_.begin(), probed_.end(), false);
}

void Membership::StartProbe(std::vector<Outgoing>& out, int64_t now_us) {
  std::string target = NextProbeTarget(now_us);
  if (target.empty()) return;
  uint64_t seq = next_seq_++;
  Probe p;
  p.target = target;
  p.timeout_at = now_us + health_.Scale(config_.probe_timeout_us);
  p.deadline_at = now_us + health_.Scale(config_.probe_timeout_us + config_.indirect_timeout_us);
  probes_.emplace(seq, std::move(p));
  ++stats_.probes;
  wire::MembershipMessage msg;
  msg.mutable_ping()->set_seq(seq);
  msg.mutable_ping()->set_target(target);
  msg.mutable_ping()->set_endpoint(Self().card->endpoint);
  Send(out, AddressOf(target), msg, MessageKind::kPing);
}

void Membership::RunProbes(std::vector<Outgoing>& out, int64_t now_us) {
  for (auto it = probes_.begin(); it != probes_.end();) {
    Probe& p = it->second;
    const Entry* target = Lookup(p.target);
    if (target == nullptr || IsGone(target->state)) {
      it = probes_.erase(it);  // reaped or declared gone meanwhile: nothing to decide
      continue;
    }
    if (!p.indirect_sent && now_us >= p.timeout_at) {
      p.indirect_sent = true;
      ++stats_.indirect_probes;
      auto relays = PickRandom(static_cast<size_t>(config_.indirect_probes), p.target,
                               [](const Entry& e) { return e.state == MemberState::kAlive; });
      for (const auto& relay : relays) {
        wire::MembershipMessage msg;
        auto* req = msg.mutable_ping_req();
        req->set_seq(it->first);
        req->set_target(p.target);
        req->set_target_endpoint(target->card->endpoint);
        req->set_endpoint(Self().card->endpoint);
        Send(out, AddressOf(relay), msg, MessageKind::kPingReq);
      }
      p.relays = std::move(relays);
    }
    if (now_us < p.deadline_at) {
      ++it;
      continue;
    }
    // No ack in time. Lifeguard: relays that did not even nack point at us, not the target;
    // with no relays to ask, any failure counts against our own health.
    health_.Apply(p.relays.empty() ? 1 : static_cast<int>(p.relays.size() - p.nacked.size()));
    ++stats_.probe_failures;
    ++stats_.suspicions_raised;
    std::string name = p.target;
    uint64_t inc = target->incarnation;
    failed_probes_[it->first] = {name, now_us};
    it = probes_.erase(it);
    ApplySuspect(now_us, name, inc, self_name_, /*gossip=*/true);
    // Lifeguard's buddy system, at once: the suspect hears it now, not at the next ping to it
    // (which may be a round away), and can refute before the timers run out.
    if (const Entry* s = Lookup(name); s != nullptr && s->state == MemberState::kSuspect) {
      Send(out, AddressOf(name), wire::MembershipMessage{}, MessageKind::kGossip);
    }
  }
  // Late evidence is worth something for as long as a suspicion can last.
  const int64_t keep = SuspicionMinUs() * config_.suspicion_max_mult;
  while (!failed_probes_.empty() && now_us - failed_probes_.begin()->second.second > keep) {
    failed_probes_.erase(failed_probes_.begin());
  }
}

void Membership::RunRelays(std::vector<Outgoing>& out, int64_t now_us) {
  for (auto it = relays_.begin(); it != relays_.end();) {
    Relay& r = it->second;
    if (!r.nacked && now_us >= r.nack_at) {
      r.nacked = true;
      wire::MembershipMessage msg;
      msg.mutable_nack()->set_seq(r.origin_seq);
      Send(out, r.origin, msg, MessageKind::kNack);
    }
    if (now_us >= r.expire_at) {
      it = relays_.erase(it);
    } else {
      ++it;
    }
  }
}

void Membership::RunSuspicions(int64_t now_us) {
  std::vector<std::pair<std::string, uint64_t>> expired;
  for (auto& [name, s] : suspects_) {
    if (now_us < s.suspicion.DeadlineUs()) continue;
    const Entry& e = *Lookup(name);
    if (now_us < VerdictAt(e, s)) {
      if (!s.deferred) ++stats_.verdicts_deferred;
      s.deferred = true;
      continue;
    }
    expired.emplace_back(name, e.incarnation);
  }
  for (const auto& [name, inc] : expired) {
    ++stats_.deaths_declared;
    ApplyDead(now_us, name, inc, self_name_, /*left=*/false, /*gossip=*/true);
  }
}

int64_t Membership::VerdictAt(const Entry& e, const Suspect& s) const {
  const int64_t deadline = s.suspicion.DeadlineUs();
  // Heard from since it was suspected: it runs, and its refutation is on the way or it has
  // not heard of the suspicion yet. A dead host is not heard from, so this never delays the
  // verdict on one by more than suspicion min after its last message.
  if (config_.defer_verdict_while_heard && e.last_seen_us > s.suspicion.start_us()) {
    return std::max(deadline, e.last_seen_us + SuspicionMinUs());
  }
  return deadline;
}

void Membership::SendRefutation(std::vector<Outgoing>& out) {
  refute_pending_ = false;
  if (left_ || config_.refute_fanout == 0) return;
  const wire::MemberUpdate self = Record(Self());
  auto peers = PickRandom(static_cast<size_t>(config_.refute_fanout), "", [](const Entry& e) {
    return e.state == MemberState::kAlive || e.state == MemberState::kSuspect;
  });
  for (const auto& peer : peers) {
    Send(out, AddressOf(peer), wire::MembershipMessage{}, MessageKind::kGossip, &self);
  }
}

void Membership::Reap(int64_t now_us) {
  std::vector<std::string> gone;
  for (const auto& name : tombstones_) {
    if (now_us - Lookup(name)->state_since_us >= config_.reap_after_us) gone.push_back(name);
  }
  for (const auto& name : gone) {
    auto it = members_.find(std::string_view(name));
    const Entry& e = *it;
    events_.push_back({now_us, name, e.state, e.incarnation, MembershipEventKind::kReaped});
    // Keep names_ dense: the last name takes the reaped one's place (and its probed_ bit).
    const size_t idx = e.index;
    if (idx + 1 != names_.size()) {
      names_[idx] = names_.back();
      names_[idx]->index = static_cast<uint32_t>(idx);
      probed_[idx] = probed_.back();
    }
    names_.pop_back();
    probed_.pop_back();
    tombstones_.erase(name);
    members_.erase(it);
  }
}

void Membership::GossipRound(std::vector<Outgoing>& out, int64_t now_us, int fanout) {
  auto peers = PickRandom(static_cast<size_t>(fanout), "",
                          [&](const Entry& e) { return Gossipable(e, now_us); });
  for (const auto& peer : peers) {
    if (broadcasts_.empty()) break;
    wire::MembershipMessage msg;
    Send(out, AddressOf(peer), msg, MessageKind::kGossip);
  }
}

bool Membership::Gossipable(const Entry& e, int64_t now_us) const {
  if (!IsGone(e.state)) return true;
  // A member declared dead may be alive after all: tell it for a while, so it can refute.
  return e.state == MemberState::kDead && now_us - e.state_since_us < config_.gossip_to_dead_us;
}

// ---- Messages in -----------------------------------------------------------------------

std::vector<Outgoing> Membership::OnMessage(int64_t now_us, const std::string& from,
                                            std::string_view payload) {
  std::vector<Outgoing> out;
  wire::MembershipMessage msg;
  if (payload.size() > config_.max_message_bytes * 2 ||
      !msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    Bad(from, "not a membership message (" + std::to_string(payload.size()) + " bytes)", true);
    return out;
  }
  if (from.empty() || from == self_name_) {
    Bad(from, "a message from this host's own name", true);
    return out;
  }
  MessageKind kind = KindOf(msg);
  auto& rc = stats_.received[static_cast<size_t>(kind)];
  ++rc.msgs;
  rc.bytes += payload.size();

  found_.clear();
  if (const Entry* sender = Lookup(from)) sender->last_seen_us = now_us;

  for (const auto& u : msg.updates()) ApplyUpdate(now_us, u, from, /*from_sync=*/false);

  switch (msg.body_case()) {
    case wire::MembershipMessage::kPing: {
      if (msg.ping().target() != self_name_) {
        Bad(from, "ping for '" + msg.ping().target() + "', not this host", true);
        break;
      }
      if (msg.ping().endpoint().size() > kMaxEndpointBytes) {
        Bad(from, "ping with an endpoint over 256 bytes", true);
        break;
      }
      wire::MembershipMessage ack;
      ack.mutable_ack()->set_seq(msg.ping().seq());
      Send(out, ReplyAddress(from, msg.ping().endpoint()), ack, MessageKind::kAck);
      break;
    }
    case wire::MembershipMessage::kAck: {
      uint64_t seq = msg.ack().seq();
      if (auto p = probes_.find(seq); p != probes_.end()) {
        if (const Entry* t = Lookup(p->second.target)) t->last_seen_us = now_us;
        probes_.erase(p);
        health_.Apply(-1);
      } else if (auto r = relays_.find(seq); r != relays_.end()) {
        wire::MembershipMessage fwd;
        fwd.mutable_ack()->set_seq(r->second.origin_seq);
        Send(out, r->second.origin, fwd, MessageKind::kAck);
        relays_.erase(r);
      } else {
        ++stats_.late_acks;
        // An ack, direct or relayed, for a probe that had failed: its target is alive.
        if (auto f = failed_probes_.find(seq); f != failed_probes_.end()) {
          if (const Entry* t = Lookup(f->second.first)) {
            t->last_seen_us = now_us;
            ++stats_.late_evidence;
          }
          failed_probes_.erase(f);
        }
      }
      break;
    }
    case wire::MembershipMessage::kPingReq: {
      const auto& req = msg.ping_req();
      if (req.target().empty() || req.target().size() > kMaxNameBytes ||
          req.target_endpoint().size() > kMaxEndpointBytes ||
          req.endpoint().size() > kMaxEndpointBytes) {
        Bad(from, "ping_req with a malformed target or endpoint", true);
        break;
      }
      PeerAddress origin = ReplyAddress(from, req.endpoint());
      if (req.target() == self_name_) {  // asked to probe ourselves: we are the answer
        wire::MembershipMessage ack;
        ack.mutable_ack()->set_seq(req.seq());
        Send(out, origin, ack, MessageKind::kAck);
        break;
      }
      ++stats_.relayed_pings;
      uint64_t seq = next_seq_++;
      Relay r;
      r.origin = origin;
      r.origin_seq = req.seq();
      r.nack_at = now_us + static_cast<int64_t>(kNackFraction * config_.indirect_timeout_us);
      r.expire_at = now_us + 2 * config_.indirect_timeout_us;
      relays_.emplace(seq, std::move(r));
      PeerAddress target = AddressOf(req.target());
      if (target.endpoint.empty()) target.endpoint = req.target_endpoint();
      wire::MembershipMessage ping;
      ping.mutable_ping()->set_seq(seq);
      ping.mutable_ping()->set_target(req.target());
      ping.mutable_ping()->set_endpoint(Self().card->endpoint);
      Send(out, target, ping, MessageKind::kPing);
      break;
    }
    case wire::MembershipMessage::kNack: {
      if (auto p = probes_.find(msg.nack().seq()); p != probes_.end()) {
        auto& pr = p->second;
        if (std::count(pr.relays.begin(), pr.relays.end(), from) &&
            !std::count(pr.nacked.begin(), pr.nacked.end(), from)) {
          pr.nacked.push_back(from);
        }
      }
      ++stats_.nacks_received;
      break;
    }
    case wire::MembershipMessage::kSync: {
      const auto& sync = msg.sync();
      const int n = sync.digest_name_size();
      if (sync.digest_incarnation_size() != n || sync.digest_status_size() != n ||
          sync.digest_meta_version_size() != n || sync.digest_lo() > sync.digest_hi()) {
        Bad(from, "sync with a malformed digest", true);
        break;
      }
      for (const auto& rec : sync.members()) ApplyUpdate(now_us, rec, from, /*from_sync=*/true);
      if (!left_ && sync.join()) {
        std::vector<const Entry*> all;
        all.reserve(members_.size());
        for (const Entry& e : members_) all.push_back(&e);
        SendRecords(out, AddressOf(from), all, SIZE_MAX);
      } else if (!left_ && sync.reply()) {
        auto newer = NewerThan(sync);
        if (!newer.empty()) SendRecords(out, AddressOf(from), newer, kMaxSyncAnswerMessages);
      }
      // Someone answered (records, or a digest, whose answer brings what this host lacks):
      // the join is done. Not a join request: a host that holds this one dead sends it joins
      // too (MeshNode's rejoin), and taking one of those for an answer left a restarted host
      // whose own join was lost without the full state until its first digest exchange. A
      // digest does end it, so that joins to a host that never answers (a rejoin to a dead
      // one) stop within a sync interval or so.
      if (joining_ && !sync.join() && Lookup(from) != nullptr) joining_ = false;
      break;
    }
    case wire::MembershipMessage::BODY_NOT_SET:
      break;
  }
  if (refute_pending_) SendRefutation(out);
  return out;
}

std::string Membership::CheckUpdate(const wire::MemberUpdate& u) const {
  if (!wire::MemberStatus_IsValid(u.status())) {
    return "member update with unknown status " + std::to_string(u.status());
  }
  if (u.name().empty()) return "member update without a name";
  if (u.name().size() > kMaxNameBytes) return "member update with a name over 253 bytes";
  if (u.endpoint().size() > kMaxEndpointBytes) {
    return "member update for '" + u.name() + "': endpoint over 256 bytes";
  }
  if (u.zone().size() > kMaxZoneBytes) {
    return "member update for '" + u.name() + "': zone over 64 bytes";
  }
  if (u.meta().size() > config_.max_meta_bytes) {
    return "member update for '" + u.name() + "': meta of " + std::to_string(u.meta().size()) +
           " bytes, over the limit of " + std::to_string(config_.max_meta_bytes);
  }
  if (u.from().size() > kMaxNameBytes) return "member update with an accuser over 253 bytes";
  // Nothing outbids it: a host accused at this incarnation could never refute (its own would
  // wrap around to 0), so a peer that sends it is wrong, whatever the member.
  if (u.incarnation() == std::numeric_limits<uint64_t>::max()) {
    return "member update for '" + u.name() +
           "' at incarnation 2^64 - 1, which no refutation can outbid";
  }
  return "";
}

void Membership::Bad(const std::string& from, const std::string& what, bool whole_payload) {
  if (whole_payload) {
    ++stats_.bad_payloads;
  } else {
    ++stats_.bad_updates;
  }
  stats_.last_bad = "membership message from '" + from + "': " + what;
}

void Membership::ApplyUpdate(int64_t now_us, const wire::MemberUpdate& u, const std::string& sender,
                             bool from_sync) {
  if (std::string why = CheckUpdate(u); !why.empty()) {
    Bad(sender, why, false);
    return;
  }
  const std::string& accuser = u.from().empty() ? sender : u.from();
  // What a sync says is mostly old news to most hosts: what it changes here is not
  // re-gossiped (a joiner learning the whole mesh would otherwise gossip every member to
  // everyone), except what the sender says of itself, which may be news to all.
  const bool gossip = !from_sync || u.name() == sender;
  switch (u.status()) {
    case wire::MEMBER_ALIVE:
      ApplyAlive(now_us, u, gossip);
      break;
    case wire::MEMBER_SUSPECT:
      ApplySuspect(now_us, u.name(), u.incarnation(), accuser, gossip);
      break;
    case wire::MEMBER_DEAD:
      // A synced Dead is only a suspicion: the sender may have missed a refutation, and a
      // suspicion gives the member its chance to refute (memberlist's mergeState).
      if (from_sync) {
        ApplySuspect(now_us, u.name(), u.incarnation(), sender, gossip);
      } else {
        ApplyDead(now_us, u.name(), u.incarnation(), accuser, /*left=*/false, gossip);
      }
      break;
    case wire::MEMBER_LEFT:
      ApplyDead(now_us, u.name(), u.incarnation(), u.name(), /*left=*/true, gossip);
      break;
    default:
      break;
  }
}

void Membership::ApplyAlive(int64_t now_us, const wire::MemberUpdate& u, bool gossip) {
  if (u.name() == self_name_) {
    // Someone vouches for an incarnation of us newer than ours: a previous life's. Outbid
    // it so that what the mesh believes is this life.
    if (!left_ && u.incarnation() > Self().incarnation) Refute(now_us, u.incarnation());
    return;
  }
  const Entry* found = Lookup(u.name());
  if (found == nullptr) {
    Entry e;
    e.name = tables_->names.Intern(u.name());
    e.card = Card(u);
    e.incarnation = u.incarnation();
    e.state_since_us = now_us;
    e.index = static_cast<uint32_t>(names_.size());
    const Entry& added = *members_.insert(std::move(e)).first;
    names_.push_back(&added);
    probed_.push_back(false);
    ++live_count_;
    AddToProbeRound(u.name());
    RingInsert(added);
    events_.push_back(
        {now_us, u.name(), MemberState::kAlive, u.incarnation(), MembershipEventKind::kJoined});
    if (gossip) QueueAlive(added);
    return;
  }
  const Entry& e = *found;
  if (u.incarnation() < e.incarnation) return;
  if (u.incarnation() == e.incarnation) {
    // Same life: only newer metadata is news (it does not clear a suspicion or a death).
    if (u.meta_version() > e.card->meta_version && !IsGone(e.state)) {
      e.card = tables_->cards.Intern(
          MemberCard{e.card->endpoint, e.card->zone, u.meta(), u.meta_version()});
      events_.push_back(
          {now_us, e.Name(), e.state, e.incarnation, MembershipEventKind::kMetaChanged});
      if (gossip) QueueAlive(e);
    }
    return;
  }
  // A newer incarnation: the member's own word, which overrides anything older.
  MemberState was = e.state;
  bool meta_changed = u.meta() != e.card->meta;
  e.incarnation = u.incarnation();
  e.card = Card(u);
  if (was != MemberState::kAlive) {
    if (IsGone(was)) {
      ++live_count_;
      tombstones_.erase(e.Name());
      AddToProbeRound(e.Name());
      RingInsert(e);
    }
    SetState(now_us, e, MemberState::kAlive,
             IsGone(was) ? MembershipEventKind::kJoined : MembershipEventKind::kStateChanged);
  }
  if (meta_changed) {
    events_.push_back(
        {now_us, e.Name(), e.state, e.incarnation, MembershipEventKind::kMetaChanged});
  }
  if (gossip) QueueAlive(e);
}

void Membership::ApplySuspect(int64_t now_us, const std::string& name, uint64_t incarnation,
                              const std::string& accuser, bool gossip) {
  const Entry* found = Lookup(name);
  if (found == nullptr) return;  // never heard of it: nothing to suspect
  const Entry& e = *found;
  if (incarnation < e.incarnation) return;
  if (auto s = suspects_.find(name); s != suspects_.end()) {
    // Already suspected: an accusation from another host is a confirmation, which shortens
    // the timeout here and, re-gossiped, everywhere.
    if (s->second.suspicion.Confirm(accuser) && gossip) {
      wire::MemberUpdate u;
      u.set_status(wire::MEMBER_SUSPECT);
      u.set_name(name);
      u.set_incarnation(e.incarnation);
      u.set_from(accuser);
      broadcasts_.Push(std::move(u));
    }
    return;
  }
  if (e.state != MemberState::kAlive) return;
  if (name == self_name_) {
    if (!left_) Refute(now_us, incarnation);
    return;
  }
  e.incarnation = incarnation;
  int n = live_count_;
  int k = config_.suspicion_mult - 2;
  if (n - 2 < k) k = 0;
  int64_t min_us = SuspicionMinUs();
  suspects_.emplace(name, Suspect{Suspicion(accuser, std::max(k, 0), min_us,
                                            min_us * config_.suspicion_max_mult, now_us)});
  SetState(now_us, e, MemberState::kSuspect, MembershipEventKind::kStateChanged);
  wire::MemberUpdate s;
  s.set_status(wire::MEMBER_SUSPECT);
  s.set_name(name);
  s.set_incarnation(incarnation);
  s.set_from(accuser);
  if (gossip) broadcasts_.Push(std::move(s));
}

void Membership::ApplyDead(int64_t now_us, const std::string& name, uint64_t incarnation,
                           const std::string& accuser, bool left, bool gossip) {
  const Entry* found = Lookup(name);
  if (found == nullptr) return;
  const Entry& e = *found;
  if (incarnation < e.incarnation) return;
  if (e.state == MemberState::kLeft) return;
  // A Left at the incarnation of a Dead corrects it (the member said it was leaving); a
  // Dead never overrides either.
  if (e.state == MemberState::kDead && !(left && incarnation >= e.incarnation)) return;
  if (name == self_name_) {
    if (!left_) Refute(now_us, incarnation);
    return;
  }
  bool was_live = !IsGone(e.state);
  e.incarnation = incarnation;
  suspects_.erase(name);
  if (was_live) {
    --live_count_;
    RingErase(e);
  }
  tombstones_.insert(name);
  SetState(now_us, e, left ? MemberState::kLeft : MemberState::kDead,
           MembershipEventKind::kStateChanged);
  wire::MemberUpdate d;
  d.set_status(left ? wire::MEMBER_LEFT : wire::MEMBER_DEAD);
  d.set_name(name);
  d.set_incarnation(incarnation);
  if (!left) d.set_from(accuser);
  if (gossip) broadcasts_.Push(std::move(d));
}

void Membership::Refute(int64_t now_us, uint64_t accused_incarnation) {
  const Entry& self = Self();
  self.incarnation = std::max(self.incarnation, accused_incarnation) + 1;
  ++stats_.refutations;
  // Lifeguard: having to refute is a sign this host is slow to answer.
  health_.Apply(1);
  events_.push_back({now_us, self_name_, MemberState::kAlive, self.incarnation,
                     MembershipEventKind::kStateChanged});
  QueueAlive(self);
  refute_pending_ = true;
}

void Membership::SetState(int64_t now_us, const Entry& e, MemberState s,
                          MembershipEventKind kind) {
  if (s != MemberState::kSuspect) suspects_.erase(e.Name());
  e.state = s;
  e.state_since_us = now_us;
  events_.push_back({now_us, e.Name(), s, e.incarnation, kind});
}

void Membership::QueueAlive(const Entry& e) { broadcasts_.Push(Record(e)); }

wire::MemberUpdate Membership::Record(const Entry& e) const {
  wire::MemberUpdate u;
  u.set_status(ToWire(e.state));
  u.set_name(e.Name());
  u.set_incarnation(e.incarnation);
  if (!IsGone(e.state)) {
    u.set_endpoint(e.card->endpoint);
    u.set_zone(e.card->zone);
    u.set_meta(e.card->meta);
    u.set_meta_version(e.card->meta_version);
  }
  return u;
}

Member Membership::ToMember(const Entry& e) const {
  Member m;
  m.name = e.Name();
  m.endpoint = e.card->endpoint;
  m.zone = e.card->zone;
  m.state = e.state;
  m.incarnation = e.incarnation;
  m.last_seen_us = e.last_seen_us;
  m.state_since_us = e.state_since_us;
  m.meta = e.card->meta;
  m.meta_version = e.card->meta_version;
  return m;
}

// ---- Leaving and metadata --------------------------------------------------------------

std::vector<Outgoing> Membership::Leave(int64_t now_us) {
  std::vector<Outgoing> out;
  if (left_) return out;
  left_ = true;
  joining_ = false;
  probes_.clear();
  found_.clear();
  const Entry& self = Self();
  // (At 2^64 - 1 already, a Left of the same incarnation still overrides its Alive.)
  if (self.incarnation < std::numeric_limits<uint64_t>::max()) self.incarnation += 1;
  self.state = MemberState::kLeft;
  self.state_since_us = now_us;
  --live_count_;
  RingErase(self);
  events_.push_back({now_us, self_name_, MemberState::kLeft, self.incarnation,
                     MembershipEventKind::kStateChanged});
  wire::MemberUpdate u;
  u.set_status(wire::MEMBER_LEFT);
  u.set_name(self_name_);
  u.set_incarnation(self.incarnation);
  broadcasts_.Clear();  // nothing else we say matters now
  broadcasts_.Push(std::move(u));
  // Tell twice the usual fanout at once; later Ticks gossip the rest.
  GossipRound(out, now_us, 2 * config_.gossip_fanout);
  next_gossip_at_ = now_us + config_.gossip_interval_us;
  return out;
}

Status Membership::SetMeta(std::string meta) {
  if (meta.size() > config_.max_meta_bytes) {
    return Status::InvalidArgument("membership meta of " + std::to_string(meta.size()) +
                                   " bytes is over the limit of " +
                                   std::to_string(config_.max_meta_bytes));
  }
  found_.clear();
  const Entry& self = Self();
  self.card = tables_->cards.Intern(MemberCard{self.card->endpoint, self.card->zone,
                                               std::move(meta), self.card->meta_version + 1});
  if (!left_) QueueAlive(self);
  return Status::OK();
}

// ---- Messages out ----------------------------------------------------------------------

void Membership::Send(std::vector<Outgoing>& out, const PeerAddress& to,
                      const wire::MembershipMessage& msg, MessageKind kind,
                      const wire::MemberUpdate* carry) {
  Outgoing o;
  o.to = to;
  msg.SerializeToString(&o.payload);
  size_t room = config_.max_message_bytes > o.payload.size()
                    ? config_.max_message_bytes - o.payload.size()
                    : 0;
  // A gossip message exists to carry updates; the rest carry what fits beside their body.
  size_t budget = std::min(
      room, kind == MessageKind::kGossip ? config_.max_gossip_bytes : config_.max_piggyback_bytes);
  int updates = 0;
  std::string buddy;
  if (const Entry* m = Lookup(to.name); m != nullptr && m->state != MemberState::kAlive) {
    // Lifeguard's buddy system: a member we think suspect (or dead, or gone) hears it from
    // us directly, so it can refute at once rather than when gossip reaches it.
    wire::MemberUpdate u;
    u.set_status(ToWire(m->state));
    u.set_name(m->Name());
    u.set_incarnation(m->incarnation);
    if (m->state != MemberState::kLeft) u.set_from(self_name_);
    std::string encoded = BroadcastQueue::Encode(u);
    if (encoded.size() <= budget) {
      budget -= encoded.size();
      o.payload += encoded;
      buddy = m->Name();
      ++updates;
    }
  }
  if (carry != nullptr) {
    std::string encoded = BroadcastQueue::Encode(*carry);
    if (encoded.size() <= budget) {
      budget -= encoded.size();
      o.payload += encoded;
      if (buddy.empty()) buddy = carry->name();
      ++updates;
    }
  }
  if (!broadcasts_.empty() && budget > 0) {
    updates += broadcasts_.Take(budget, RetransmitLimit(), buddy, &o.payload);
  }
  stats_.updates_piggybacked += static_cast<uint64_t>(updates);
  auto& sc = stats_.sent[static_cast<size_t>(kind)];
  ++sc.msgs;
  sc.bytes += o.payload.size();
  out.push_back(std::move(o));
}

void Membership::SendRecords(std::vector<Outgoing>& out, const PeerAddress& to,
                             const std::vector<const Entry*>& records, size_t max_messages) {
  // Every sync message starts with this host's own record, then as many as fit.
  const size_t limit = config_.max_message_bytes - config_.max_piggyback_bytes - 16;
  auto fresh = [&] {
    wire::MembershipMessage msg;
    *msg.mutable_sync()->add_members() = Record(Self());
    return msg;
  };
  wire::MembershipMessage msg = fresh();
  size_t used = msg.ByteSizeLong(), sent = 0;
  for (const Entry* m : records) {
    if (m->Name() == self_name_) continue;
    wire::MemberUpdate rec = Record(*m);
    size_t bytes = rec.ByteSizeLong() + kRecordOverhead;
    if (used + bytes > limit) {
      Send(out, to, msg, MessageKind::kSync);
      if (++sent >= max_messages) return;
      msg = fresh();
      used = msg.ByteSizeLong();
    }
    used += bytes;
    *msg.mutable_sync()->add_members() = std::move(rec);
  }
  Send(out, to, msg, MessageKind::kSync);
}

void Membership::SendDigest(std::vector<Outgoing>& out, const PeerAddress& to) {
  // One message covers the members whose name hash lies in one of `ranges` equal parts of
  // the hash space (one part until the digest would not fit a message), a different part
  // each time.
  const size_t per_message = (config_.max_message_bytes - kDigestRoom) / kDigestEntryBytes;
  const uint64_t ranges = std::max<uint64_t>(1, (members_.size() + per_message - 1) / per_message);
  const uint64_t k = digest_round_++ % ranges;
  const uint64_t width = ranges == 1 ? 0 : UINT64_MAX / ranges;
  const uint64_t lo = k * width;
  const uint64_t hi = (ranges == 1 || k + 1 == ranges) ? UINT64_MAX : lo + width - 1;
  wire::MembershipMessage msg;
  auto* sync = msg.mutable_sync();
  sync->set_reply(true);
  *sync->add_members() = Record(Self());
  sync->set_digest_lo(lo);
  sync->set_digest_hi(hi);
  for (const Entry& e : members_) {
    uint64_t h = NameHash(e.Name());
    if (h < lo || h > hi) continue;
    sync->add_digest_name(h);
    sync->add_digest_incarnation(e.incarnation);
    sync->add_digest_status(ToWire(e.state));
    sync->add_digest_meta_version(e.card->meta_version);
  }
  Send(out, to, msg, MessageKind::kSync);
}

std::vector<const Membership::Entry*> Membership::NewerThan(const wire::Sync& digest) const {
  std::unordered_map<uint64_t, int> theirs;
  theirs.reserve(static_cast<size_t>(digest.digest_name_size()));
  for (int i = 0; i < digest.digest_name_size(); ++i) theirs.emplace(digest.digest_name(i), i);
  std::vector<const Entry*> newer;
  for (const Entry& e : members_) {
    const uint64_t h = NameHash(e.Name());
    if (h < digest.digest_lo() || h > digest.digest_hi()) continue;
    auto it = theirs.find(h);
    if (it == theirs.end()) {
      // They lack it. A dead or departed member is news to nobody who never knew it.
      if (!IsGone(e.state)) newer.push_back(&e);
      continue;
    }
    const int i = it->second;
    const uint64_t inc = digest.digest_incarnation(i);
    const int rank = StatusRank(digest.digest_status(i)), mine = StatusRank(ToWire(e.state));
    if (e.incarnation > inc || (e.incarnation == inc && mine > rank) ||
        (e.incarnation == inc && mine == rank &&
         e.card->meta_version > digest.digest_meta_version(i))) {
      newer.push_back(&e);
    }
  }
  return newer;
}

PeerAddress Membership::ReplyAddress(const std::string& name, const std::string& claimed) const {
  PeerAddress a = AddressOf(name);
  if (a.endpoint.empty()) a.endpoint = claimed;  // what it says of itself, for this answer only
  return a;
}

PeerAddress Membership::AddressOf(const std::string& name) const {
  const Entry* e = Lookup(name);
  if (e == nullptr) {
    for (const auto& s : seeds_) {
      if (s.name == name) return s;
    }
    return PeerAddress{name, ""};
  }
  return PeerAddress{name, e->card->endpoint};
}

template <typename Pred>
std::vector<std::string> Membership::PickRandom(size_t n, const std::string& exclude, Pred ok) {
  std::vector<std::string> picked;
  if (n == 0) return picked;
  auto eligible = [&](const Entry* e) {
    return e->Name() != self_name_ && e->Name() != exclude && ok(*e);
  };
  if (names_.size() <= 4 * n + 16) {
    // Few members: choose exactly among all that qualify.
    for (const Entry* e : names_) {
      if (eligible(e)) picked.push_back(e->Name());
    }
    std::shuffle(picked.begin(), picked.end(), rng_);
    if (picked.size() > n) picked.resize(n);
    return picked;
  }
  // Many: draw at random, a bounded number of times (most members qualify).
  std::uniform_int_distribution<size_t> pick(0, names_.size() - 1);
  for (size_t tries = 0; tries < 16 * n && picked.size() < n; ++tries) {
    const Entry* e = names_[pick(rng_)];
    if (eligible(e) && std::find(picked.begin(), picked.end(), e->Name()) == picked.end()) {
      picked.push_back(e->Name());
    }
  }
  return picked;
}

// ---- Derived numbers -------------------------------------------------------------------

int Membership::RetransmitLimit() const {
  double n = std::max(live_count_, 1);
  return config_.retransmit_mult * static_cast<int>(std::ceil(std::log10(n + 1)));
}

int64_t Membership::SuspicionMinUs() const {
  double n = std::max(live_count_, 1);
  double scale = std::max(1.0, std::log10(n));
  return static_cast<int64_t>(config_.suspicion_mult * scale *
                              static_cast<double>(config_.suspicion_unit_us));
}

int64_t Membership::SyncIntervalUs() const {
  // memberlist's pushPullScale: beyond 32 members, one more interval per doubling.
  if (live_count_ <= 32) return config_.sync_interval_us;
  double mult = std::ceil(std::log2(static_cast<double>(live_count_)) - std::log2(32.0)) + 1.0;
  return static_cast<int64_t>(mult * static_cast<double>(config_.sync_interval_us));
}

// ---- Views -----------------------------------------------------------------------------

std::vector<Member> Membership::Members() const {
  std::vector<Member> out;
  out.reserve(members_.size());
  for (const Entry& e : members_) out.push_back(ToMember(e));
  std::sort(out.begin(), out.end(),
            [](const Member& a, const Member& b) { return a.name < b.name; });
  return out;
}

const Member* Membership::Find(const std::string& name) const {
  if (auto it = found_.find(name); it != found_.end()) return &it->second;
  const Entry* e = Lookup(name);
  if (e == nullptr) return nullptr;
  return &found_.emplace(name, ToMember(*e)).first->second;
}

std::vector<MembershipEvent> Membership::TakeEvents() {
  std::vector<MembershipEvent> out;
  out.swap(events_);
  return out;
}

}  // namespace augur::mesh
