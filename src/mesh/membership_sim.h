// MembershipSim: many Membership cores on one SimNetwork, in virtual time. The membership
// tests (tests/mesh/membership_test.cc) and the large-N simulation
// (bench/mesh/membership_sim.cc) drive the real protocol code through it: each host is
// ticked at its NextWakeUs(), every payload it sends goes through the seeded lossy network,
// and hosts can be killed, restarted, made to leave, or made slow.
//
// A slow host models a saturated CPU: everything it has to do waits a random delay in
// [min, max] before it runs. Messages keep their order (one socket's backlog, first in
// first out); a timer runs after its own delay, so it may run before messages that arrived
// earlier but still wait, as in an event loop that runs due timers before reading its
// sockets. Its answers come late, and its own probes can time out with the acks unread.
//
// The cores share one MemberTables (membership.h): each name and each card (endpoint, zone,
// metadata) is held once, however many hosts know it.
//
// Thread safety: none; one thread drives a simulation.
#ifndef AUGUR_MESH_MEMBERSHIP_SIM_H_
#define AUGUR_MESH_MEMBERSHIP_SIM_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "mesh/membership.h"
#include "mesh/sim_network.h"

namespace augur::mesh {

class MembershipSim {
 public:
  MembershipSim(uint64_t seed, MembershipConfig config, SimLinkFaults faults = {});

  // A host that joins through `seeds` (names) at `join_at_us` (>= now()), with `meta` set
  // before it joins. Its endpoint is made up from its index; every host gets its own rng
  // seed from the simulation's.
  void AddHost(const std::string& name, const std::string& zone, int64_t join_at_us,
               std::vector<std::string> seeds, uint64_t initial_incarnation = 0,
               std::string meta = "");
  // Hosts that have long been members: each starts now (with `metas[i]` set, no seeds) and is
  // handed the state of the whole mesh through its OnMessage, as sync messages of records
  // under the message limit, the way a seed answers a join: each host's own record from its
  // own core, in name order. What a sync brings is not gossiped (only the sender's own
  // record is), so this skips the join burst, whose gossip grows as N^2 log N (every host
  // hears of every join ~retransmit_limit times): for simulations too large to join.
  // REQUIRES: at least two names, none added before; zones and metas as many as names.
  void AddKnownHosts(const std::vector<std::string>& names, const std::vector<std::string>& zones,
                     const std::vector<std::string>& metas);
  // kill -9 now: it stops ticking, and messages to and from it are lost.
  void Kill(const std::string& name);
  // A killed host comes back now as a new Membership (same name, zone and endpoint).
  void Restart(const std::string& name, uint64_t initial_incarnation,
               std::vector<std::string> seeds);
  void Leave(const std::string& name);
  // The host's SetMeta, then its timers rescheduled (the change is gossiped at once).
  Status SetMeta(const std::string& name, std::string meta);
  // Delays everything the host does by a uniform [min_us, max_us], FIFO (0, 0: not slow).
  void SetSlow(const std::string& name, int64_t min_us, int64_t max_us);
  // Hosts (re)started from now on read the shared clock of staggered probing off by a
  // uniform [-max_us, max_us] each (MembershipConfig::clock_offset_us), as NTP-synced
  // clocks are. 0 (the default): every host reads the same clock.
  void SetClockSkew(int64_t max_us) { clock_skew_us_ = max_us; }

  // Runs every delivery and timer up to `t_us`, then sets now() to it.
  void RunUntil(int64_t t_us);
  int64_t now() const { return now_; }

  // The live host's core, or null (killed, or not joined yet).
  Membership* host(const std::string& name);
  bool IsRunning(const std::string& name) const;
  std::vector<std::string> RunningHosts() const;
  SimNetwork& net() { return net_; }
  // Payloads dropped because they named no endpoint (a reply to a host the sender does not
  // know yet): the real transport cannot send those either.
  uint64_t unaddressed() const { return unaddressed_; }
  const MembershipConfig& config() const { return config_; }
  // The names and cards every host's core shares.
  const MemberTables& tables() const { return *tables_; }

  // Called with every event of every host as it happens (the host's name first).
  std::function<void(const std::string&, const MembershipEvent&)> on_event;
  // Called with every payload a host sends (before the network may lose it).
  std::function<void(const std::string& from, const Outgoing&)> on_send;

 private:
  struct Host {
    std::string name, zone, meta;
    std::unique_ptr<Membership> core;
    uint64_t generation = 0;  // bumped on kill/restart: stale actions are dropped
    int64_t scheduled_wake = INT64_MAX;
    bool tick_pending = false;  // slow host: a tick is queued behind its backlog
    int64_t slow_min_us = 0, slow_max_us = 0;
    int64_t last_processed_us = 0;  // slow host: its message backlog runs FIFO
  };
  enum class ActionKind { kJoin, kWake, kSlowTick, kSlowDeliver };
  struct Action {
    int64_t at;
    uint64_t order;
    ActionKind kind;
    size_t host;
    uint64_t generation;
    std::string from, bytes;         // kSlowDeliver
    std::vector<std::string> seeds;  // kJoin
    uint64_t incarnation = 0;        // kJoin
    bool operator>(const Action& o) const { return at != o.at ? at > o.at : order > o.order; }
  };

  void Push(Action a);
  void StartCore(size_t h, uint64_t incarnation, const std::vector<std::string>& seeds);
  void Emit(size_t h, std::vector<Outgoing> out);
  void Reschedule(size_t h, int64_t earliest);
  void DoTick(size_t h);
  void DoDeliver(size_t h, const std::string& from, const std::string& bytes);
  int64_t SlowAt(Host& host, int64_t at, bool message);
  static std::string EndpointOf(size_t h);

  MembershipConfig config_;
  std::shared_ptr<MemberTables> tables_ = std::make_shared<MemberTables>();
  SimNetwork net_;
  std::mt19937_64 rng_;
  std::vector<Host> hosts_;
  std::unordered_map<std::string, size_t> index_;
  std::priority_queue<Action, std::vector<Action>, std::greater<Action>> actions_;
  uint64_t order_ = 0;
  uint64_t unaddressed_ = 0;
  int64_t now_ = 0;
  int64_t clock_skew_us_ = 0;
  std::mt19937_64 skew_rng_{0x5eed};  // apart from rng_: skew does not change other draws
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_MEMBERSHIP_SIM_H_
