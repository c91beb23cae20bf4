// Membership: which hosts are in the mesh and whether they are alive, as a pure state
// machine. SWIM (Das, Gupta, Motivala 2002) with Lifeguard's refinements (Dadgar, Phillips,
// Currey 2018), in the shape of HashiCorp memberlist; docs/MESH.md "## Membership".
//
//   probe      every probe interval one member gets a Ping: staggered (the default), on slots
//              of a clock all hosts share, the slot's member by rotation over the sorted live
//              members, so the mesh probes each member about once per interval; or SWIM's
//              randomized round-robin. Without an Ack within the probe timeout, k others are
//              asked to ping it (PingReq) and answer with its Ack or a Nack; without any Ack by
//              the end of the indirect timeout the member is suspected. Probes may overlap.
//   suspicion  a suspected member is declared dead when its suspicion times out (Lifeguard's
//              dynamic timeout, suspicion.h) unless it refutes first by raising its
//              incarnation (its new Alive goes straight to up to refute_fanout members). The
//              prober sends the suspicion to the suspect at once, and every message to it
//              carries it (Lifeguard's buddy system). A host that still hears from a suspect
//              puts its own verdict off.
//   local      Lifeguard's local health multiplier (local_health.h) stretches this host's own
//   health     probe interval and timeouts when the evidence says it is the slow one (relays
//              that do not nack, refutations, its own probes starting late).
//   gossip     every change (Alive, Suspect, Dead, Left, a new meta) is queued and piggybacked
//              on every message this host sends, up to mult * ceil(log10(N + 1)) times
//              (broadcast_queue.h); while anything is queued, a gossip message also goes to
//              `gossip_fanout` random members every gossip interval.
//   sync       on join, a seed sends its whole state; every sync interval (longer with N) a
//              host sends a random member a digest of its state (a hash of each name, the
//              incarnation, state and meta version) and gets back what it lacks or holds
//              older (anti-entropy: what gossip missed, a join burst above all).
//   leave      a host leaving says so (Left, not Dead) and keeps gossiping until told.
//   restart    a host that comes back (new Membership, same name) with a lower incarnation
//              than the mesh remembers refutes the old Dead/Left record with a higher one.
//   reap       Dead and Left members are forgotten after `reap_after_us`.
//
// No I/O, no threads, no sleeping: the caller feeds the clock and the messages that arrive,
// and sends what comes out. Given the same seed and inputs it makes the same decisions.
//
// Thread safety: none; one thread drives an instance (augurd's mesh loop, or a simulation).
#ifndef AUGUR_MESH_MEMBERSHIP_H_
#define AUGUR_MESH_MEMBERSHIP_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "augur/status.h"
#include "mesh/broadcast_queue.h"
#include "mesh/intern_table.h"
#include "mesh/local_health.h"
#include "mesh/membership.pb.h"
#include "mesh/peer_address.h"
#include "mesh/suspicion.h"

namespace augur::mesh {

// PeerAddress (peer_address.h): a host as the transport reaches it. Its `endpoint` may be
// empty on a reply to a host this one does not know yet; such a message cannot be sent (the
// transport sends only to endpoints) and MeshNode counts it as unaddressed.

// NOTE: values are shown by augurctl and compared by tests; append only.
enum class MemberState { kAlive = 0, kSuspect = 1, kDead = 2, kLeft = 3 };
const char* MemberStateName(MemberState s);  // "alive", "suspect", "dead", "left"

struct Member {
  std::string name;
  std::string endpoint;
  std::string zone;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  int64_t last_seen_us = 0;    // last message from it, or ack for it (relayed too); 0: never
  int64_t state_since_us = 0;  // when this host last changed its state
  std::string meta;            // the member's metadata (its headroom summary), opaque here
  uint64_t meta_version = 0;   // raised by the member with each SetMeta
};

// What a member says of itself that changes only with its word (a new incarnation or a new
// meta_version): kept once in MemberTables and shared by every record of it.
struct MemberCard {
  std::string endpoint;
  std::string zone;
  std::string meta;
  uint64_t meta_version = 0;
  bool operator==(const MemberCard&) const = default;
};

// A MemberCard's fields where they lie (in a wire record): interned without copying unless new.
struct MemberCardView {
  std::string_view endpoint;
  std::string_view zone;
  std::string_view meta;
  uint64_t meta_version = 0;
  bool operator==(const MemberCard& c) const {
    return meta_version == c.meta_version && endpoint == c.endpoint && zone == c.zone &&
           meta == c.meta;
  }
  explicit operator MemberCard() const {
    return MemberCard{std::string(endpoint), std::string(zone), std::string(meta), meta_version};
  }
};

struct MemberCardHash {
  size_t operator()(const MemberCardView& c) const noexcept;
  size_t operator()(const MemberCard& c) const noexcept {
    return (*this)(MemberCardView{c.endpoint, c.zone, c.meta, c.meta_version});
  }
};
struct StringHash {
  size_t operator()(const std::string& s) const noexcept { return std::hash<std::string>{}(s); }
};

// The names and cards a core's member records refer to (intern_table.h). Each core makes its
// own unless given one; cores on one thread may share one (MembershipSim does: N hosts then
// hold N names and N cards, not N^2). Thread safety: that of InternTable (one thread).
struct MemberTables {
  InternTable<std::string, StringHash> names;
  InternTable<MemberCard, MemberCardHash> cards;
};

// One payload to send: a serialized wire::MembershipMessage (membership.proto).
struct Outgoing {
  PeerAddress to;
  std::string payload;
};

enum class MembershipEventKind {
  kJoined,        // first seen, or alive again after Dead/Left (a rejoin)
  kStateChanged,  // alive -> suspect, suspect -> alive (refuted), -> dead, -> left
  kMetaChanged,   // new metadata (a new meta_version, or another meta with a new incarnation)
  kReaped,        // a Dead or Left member forgotten
};

struct MembershipEvent {
  int64_t at_us = 0;
  std::string name;
  MemberState state = MemberState::kAlive;
  uint64_t incarnation = 0;
  MembershipEventKind kind = MembershipEventKind::kStateChanged;
};

// Defaults are tuned for the targets at 32 hosts (docs/MESH.md has the numbers they gave).
struct MembershipConfig {
  // A probe starts every probe interval (times the local health multiplier).
  int64_t probe_interval_us = 300'000;
  // Staggered probing: the probes lie on slots of a clock every host shares (the wall
  // clock: now_us + clock_offset_us), each host at its own phase, and the slot picks the
  // target by rotation over the sorted live members, so the mesh as a whole probes each
  // member about once per interval, at most 1 + 2/N intervals apart, instead of at
  // exponentially distributed gaps (a dead host's first probe: p99 ~1 interval rather than
  // ~4.6). Each host still probes every member once per round. false: SWIM's randomized
  // round-robin (a fresh shuffle each round).
  bool staggered_probes = true;
  // Added to now_us to give the shared clock of the probe slots (MeshNode: the wall clock
  // minus the monotonic one). Hosts whose clocks disagree probe at random-looking gaps
  // instead, as with staggered_probes false; nothing else depends on it.
  int64_t clock_offset_us = 0;
  // Direct ack wait; then indirect probes, and the suspicion at probe_timeout +
  // indirect_timeout after the ping (both times the local health multiplier).
  int64_t probe_timeout_us = 40'000;
  int64_t indirect_timeout_us = 300'000;
  int indirect_probes = 3;  // k members asked to probe through
  // Suspicion timeout: min = suspicion_mult * max(1, log10(N)) * suspicion_unit,
  // max = suspicion_max_mult * min; suspicion_mult - 2 confirmations bring it to min.
  // (memberlist's unit is the probe interval; here the two are apart, so that probing less
  // often does not slow the verdict.) A suspect heard from directly since it was suspected
  // is not declared dead by this host until suspicion min after the last time it was heard.
  int suspicion_mult = 5;
  int suspicion_max_mult = 6;
  int64_t suspicion_unit_us = 200'000;
  // Whether a suspicion's verdict waits while the suspect is heard from (above); off only to
  // measure what it brings.
  bool defer_verdict_while_heard = true;
  // A host that refutes a suspicion of itself sends its new Alive straight to this many
  // random members at once (besides gossiping it): a refutation races the suspicion timers
  // of every host, and the epidemic's rounds would cost it hundreds of ms.
  int refute_fanout = 32;
  // Each update is sent retransmit_mult * ceil(log10(N + 1)) times by each host.
  int retransmit_mult = 6;
  int max_local_health = 8;  // Lifeguard's LHM: timeouts stretch up to this factor
  int64_t gossip_interval_us = 100'000;
  int gossip_fanout = 3;
  // Dead members still get gossip for this long, so a live one wrongly declared dead hears
  // it and refutes.
  int64_t gossip_to_dead_us = 10'000'000;
  // Anti-entropy: a digest of this host's state to one random member (which answers with
  // what this host lacks), every sync_interval at N <= 32 and (ceil(log2(N / 32)) + 1) times
  // that above.
  int64_t sync_interval_us = 10'000'000;
  int64_t join_retry_us = 1'000'000;  // resend joins while no seed has answered
  int64_t reap_after_us = 60'000'000;
  size_t max_piggyback_bytes = 1024;     // updates carried on a probe, ack or sync message
  size_t max_gossip_bytes = 4096;        // updates carried on a gossip message
  size_t max_message_bytes = 16 * 1024;  // any one payload (join answers come in chunks)
  size_t max_meta_bytes = 512;
  // The incarnation this host starts with. A restart that passes something higher than
  // before (e.g. the wall clock in seconds) is believed at once; otherwise it refutes.
  uint64_t initial_incarnation = 0;

  // OK, or InvalidArgument naming the first bad field.
  Status Validate() const;
};

// Messages by what they are, for the stats.
enum class MessageKind { kPing = 0, kAck, kPingReq, kNack, kGossip, kSync, kCount };
const char* MessageKindName(MessageKind k);

struct MessageCounts {
  uint64_t msgs = 0;
  uint64_t bytes = 0;
};

struct MembershipStats {
  std::array<MessageCounts, static_cast<size_t>(MessageKind::kCount)> sent{};
  std::array<MessageCounts, static_cast<size_t>(MessageKind::kCount)> received{};
  uint64_t bad_payloads = 0;  // payloads that did not parse or were misaddressed
  uint64_t bad_updates = 0;   // member updates dropped as malformed (bad name, meta too big)
  std::string last_bad;       // what the last bad one was, and from whom
  uint64_t probes = 0;
  uint64_t indirect_probes = 0;  // probes that needed PingReqs
  uint64_t probe_failures = 0;   // probes that ended in a suspicion
  uint64_t late_acks = 0;        // acks for no pending probe or relay
  uint64_t nacks_received = 0;
  uint64_t relayed_pings = 0;      // PingReqs served for others
  uint64_t suspicions_raised = 0;  // by this host's own probes
  uint64_t deaths_declared = 0;    // by this host's own suspicion timeouts
  uint64_t refutations = 0;
  uint64_t updates_piggybacked = 0;
  uint64_t late_evidence = 0;      // late acks (direct or relayed) of a probe that had failed
  uint64_t verdicts_deferred = 0;  // suspicion timeouts put off: the suspect was heard from
  uint64_t late_ticks = 0;         // probes started over probe_timeout late (raise local health)

  MessageCounts TotalSent() const;
  MessageCounts TotalReceived() const;
};

class Membership {
 public:
  // `self.endpoint` is what others are told to reach this host at. REQUIRES: self.name is
  // not empty; config.Validate().ok() (out-of-range values are clamped, never trusted).
  // `tables`: where names and cards are kept; null: a table of its own.
  Membership(MembershipConfig config, PeerAddress self, std::string zone, uint64_t seed,
             std::shared_ptr<MemberTables> tables = nullptr);

  // Starts joining through `seeds` (self and duplicates are skipped): a join request to
  // each, resent every join_retry_us until some member answers. May be called again (e.g.
  // after a partition left this host alone).
  std::vector<Outgoing> Join(int64_t now_us, const std::vector<PeerAddress>& seeds);

  // Runs the timers: probes, their timeouts, suspicion timeouts, gossip, sync, reaping.
  // Call at NextWakeUs() (or every few ms).
  std::vector<Outgoing> Tick(int64_t now_us);

  // One payload from `from` (the transport's authenticated name). A payload that does not
  // parse or is misaddressed is counted (stats().bad_payloads, last_bad) and ignored;
  // malformed updates inside a good one are dropped one by one (bad_updates).
  std::vector<Outgoing> OnMessage(int64_t now_us, const std::string& from,
                                  std::string_view payload);

  // Leaves gracefully: raises the incarnation, marks itself Left and tells a few members
  // at once; later Ticks only gossip, until LeaveDone(). To come back, make a new Membership.
  std::vector<Outgoing> Leave(int64_t now_us);
  bool HasLeft() const { return left_; }
  bool LeaveDone() const { return left_ && broadcasts_.empty(); }

  // This host's metadata (its headroom summary), disseminated with a new meta_version.
  // InvalidArgument if longer than max_meta_bytes (then nothing changes).
  Status SetMeta(std::string meta);

  // When Tick next has something to do (may be <= now: tick at once).
  int64_t NextWakeUs() const;

  // All known members, this host included, by name.
  std::vector<Member> Members() const;
  // The member, or null. Valid until the next non-const call.
  const Member* Find(const std::string& name) const;
  // Bytes this core holds per member record: its entry in the member table and its places
  // in the indexes (the shared names and cards not counted). For the simulation's sizing.
  static size_t RecordBytes();
  // Members not Dead or Left, this host included.
  int LiveCount() const { return live_count_; }
  const std::string& name() const { return self_name_; }
  uint64_t incarnation() const;

  // Events since the last call, in order.
  std::vector<MembershipEvent> TakeEvents();

  int LocalHealth() const { return health_.score(); }
  const MembershipStats& stats() const { return stats_; }
  const MembershipConfig& config() const { return config_; }

 private:
  using NameRef = InternTable<std::string, StringHash>::Ref;
  using CardRef = InternTable<MemberCard, MemberCardHash>::Ref;
  // One member as this host knows it: 48 bytes, with the name and the card shared
  // (MemberTables). Held in an unordered_set keyed by the name; the fields but the name are
  // mutable, as a set's elements are const.
  struct Entry {
    NameRef name;
    mutable CardRef card;
    mutable uint64_t incarnation = 0;
    mutable int64_t last_seen_us = 0;    // last message from it, or ack for it; 0: never
    mutable int64_t state_since_us = 0;  // when this host last changed its state
    mutable MemberState state = MemberState::kAlive;
    mutable uint32_t index = 0;  // position in names_
    const std::string& Name() const { return *name; }
  };
  struct EntryHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
    // The name's hash as its table keeps it (StringHash: the same as a string_view's).
    size_t operator()(const Entry& e) const noexcept { return e.name.hash(); }
  };
  struct EntryEq {
    using is_transparent = void;
    static std::string_view V(std::string_view s) { return s; }
    static std::string_view V(const Entry& e) { return *e.name; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return V(a) == V(b);
    }
  };
  // A suspected member's timer (Lifeguard's dynamic timeout) and whether its verdict was
  // put off (VerdictAt; counted once).
  struct Suspect {
    Suspicion suspicion;
    bool deferred = false;
  };
  struct Probe {
    std::string target;
    int64_t timeout_at = 0;   // direct ack wait ends: indirect probes
    int64_t deadline_at = 0;  // no ack by then: suspect
    bool indirect_sent = false;
    std::vector<std::string> relays;  // asked to probe for us
    std::vector<std::string> nacked;  // relays whose nack came (duplicates counted once)
  };
  struct Relay {
    PeerAddress origin;
    uint64_t origin_seq = 0;
    int64_t nack_at = 0;
    int64_t expire_at = 0;
    bool nacked = false;
  };

  // Message assembly: piggybacks queued updates (and the buddy-system record of `to` when
  // it is not alive) and serializes.
  // `carry`, when set, is appended first (a refutation's own record) and not piggybacked
  // again from the queue.
  void Send(std::vector<Outgoing>& out, const PeerAddress& to, const wire::MembershipMessage& msg,
            MessageKind kind, const wire::MemberUpdate* carry = nullptr);
  PeerAddress AddressOf(const std::string& name) const;
  // Where to answer `name`: as known, else at the endpoint its message `claimed` (a host that
  // joined a moment ago), else nowhere (empty: the transport cannot send it).
  PeerAddress ReplyAddress(const std::string& name, const std::string& claimed) const;
  void SendJoins(std::vector<Outgoing>& out, int64_t now_us);
  // Records to `to` in sync messages under the size limit, at most `max_messages` of them.
  void SendRecords(std::vector<Outgoing>& out, const PeerAddress& to,
                   const std::vector<const Entry*>& records, size_t max_messages);
  void SendDigest(std::vector<Outgoing>& out, const PeerAddress& to);
  // The records `digest` (a peer's) lacks or holds older, in its hash range.
  std::vector<const Entry*> NewerThan(const wire::Sync& digest) const;
  void GossipRound(std::vector<Outgoing>& out, int64_t now_us, int fanout);

  void StartProbe(std::vector<Outgoing>& out, int64_t now_us);
  void RunProbes(std::vector<Outgoing>& out, int64_t now_us);
  void RunRelays(std::vector<Outgoing>& out, int64_t now_us);
  void RunSuspicions(int64_t now_us);
  void Reap(int64_t now_us);
  std::string NextProbeTarget(int64_t now_us);
  void AddToProbeRound(const std::string& name);
  // Staggered probing (MembershipConfig::staggered_probes): ring_ holds the live members'
  // names, this host's included, sorted; this host probes at its phase of every slot.
  std::string StaggeredTarget(int64_t now_us);
  int64_t PhaseUs() const;
  // The first of this host's probe slots at or after `t_us`.
  int64_t SlotAtOrAfter(int64_t t_us) const;
  int64_t NextProbeAt(int64_t now_us) const;
  void RingInsert(const Entry& e);
  void RingErase(const Entry& e);
  // When this host declares a suspect dead: its suspicion's deadline, put off while the
  // suspect is heard from directly (it is running, just slow to refute).
  int64_t VerdictAt(const Entry& e, const Suspect& s) const;
  // After a refutation: this host's new Alive straight to refute_fanout members.
  void SendRefutation(std::vector<Outgoing>& out);

  // Applying what others say (from updates, sync records and our own findings).
  void ApplyUpdate(int64_t now_us, const wire::MemberUpdate& u, const std::string& sender,
                   bool from_sync);
  // Each queues what it changed for dissemination when `gossip` is set.
  void ApplyAlive(int64_t now_us, const wire::MemberUpdate& u, bool gossip);
  void ApplySuspect(int64_t now_us, const std::string& name, uint64_t incarnation,
                    const std::string& accuser, bool gossip);
  void ApplyDead(int64_t now_us, const std::string& name, uint64_t incarnation,
                 const std::string& accuser, bool left, bool gossip);
  void Refute(int64_t now_us, uint64_t accused_incarnation);
  void SetState(int64_t now_us, const Entry& e, MemberState s, MembershipEventKind kind);
  void QueueAlive(const Entry& e);
  wire::MemberUpdate Record(const Entry& e) const;
  Member ToMember(const Entry& e) const;
  const Entry* Lookup(std::string_view name) const;
  CardRef Card(const wire::MemberUpdate& u);
  std::string CheckUpdate(const wire::MemberUpdate& u) const;  // "" when well formed
  void Bad(const std::string& from, const std::string& what, bool whole_payload);

  // Random members for relays, gossip and sync: up to `n` names (not self, not `exclude`)
  // whose entries pass `ok`.
  template <typename Pred>
  std::vector<std::string> PickRandom(size_t n, const std::string& exclude, Pred ok);
  bool Gossipable(const Entry& e, int64_t now_us) const;

  int RetransmitLimit() const;
  int64_t SuspicionMinUs() const;
  int64_t SyncIntervalUs() const;
  const Entry& Self() const { return *Lookup(self_name_); }

  MembershipConfig config_;
  std::string self_name_;
  std::mt19937_64 rng_;
  std::shared_ptr<MemberTables> tables_;  // before anything that refers into it
  std::unordered_set<Entry, EntryHash, EntryEq> members_;  // this host included
  std::vector<const Entry*> names_;                        // the same, for random picks
  std::vector<std::string> probe_order_;  // this round of the randomized round-robin
  // Staggered probing never reads probe_order_: it only counts what would be added, to make
  // the same draw (AddToProbeRound), so that a seed gives the decisions it always gave.
  size_t probe_order_added_ = 0;
  size_t probe_pos_ = 0;
  std::vector<const Entry*> ring_;  // staggered probing: live members, sorted by name
  std::vector<bool> probed_;        // staggered probing: this round's, by position in names_
  // Probes that ended in a suspicion, by seq, with their target and when: an ack that comes
  // for one later is evidence that the target is alive (it counts as hearing from it).
  std::map<uint64_t, std::pair<std::string, int64_t>> failed_probes_;
  bool refute_pending_ = false;  // a refutation happened; SendRefutation at the end of the call
  std::map<std::string, Suspect, std::less<>> suspects_;  // members with a suspicion timer
  std::set<std::string> tombstones_;  // Dead and Left members, until reaped
  std::map<uint64_t, Probe> probes_;  // this host's probes in flight, by seq
  std::map<uint64_t, Relay> relays_;  // pings sent for others' PingReqs, by our seq
  BroadcastQueue broadcasts_;
  LocalHealthMultiplier health_;
  int live_count_ = 1;
  uint64_t next_seq_ = 1;
  uint64_t digest_round_ = 0;  // which hash range the next digest covers
  std::vector<PeerAddress> seeds_;
  bool joining_ = false;
  bool left_ = false;
  int64_t next_probe_at_ = 0;
  int64_t next_gossip_at_ = 0;
  int64_t next_sync_at_ = 0;
  int64_t next_join_at_ = 0;
  std::vector<MembershipEvent> events_;
  MembershipStats stats_;
  mutable std::map<std::string, Member, std::less<>> found_;  // Find()'s answers until a change
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_MEMBERSHIP_H_
