// ReplicationCluster: a virtual-time cluster of Replicators over a SimNetwork, for the
// replication tests (tests/mesh/replication_test.cc) and the benchmark (bench/mesh/
// transfer_sim.cc). Membership is an oracle: each host's view is every host that is up and
// not cut off from it, given to its Replicator `detect_ns` after the change (the time
// membership would take to notice). Each host's executor persists DrainDirty()'s snapshots
// before its messages leave ("state before action"); a killed host loses its memory and
// restarts from those snapshots.
//
// Thread safety: none; one test or simulation drives it.
#ifndef AUGUR_MESH_REPLICATION_CLUSTER_H_
#define AUGUR_MESH_REPLICATION_CLUSTER_H_

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mesh/replication.h"
#include "mesh/sim_network.h"

namespace augur::mesh {

class ReplicationCluster {
 public:
  ReplicationCluster(size_t n, uint64_t seed, SimLinkFaults faults, ReplicationOptions options,
                     int64_t detect_ns = 0)
      : net_(seed, faults), options_(options), detect_ns_(detect_ns) {
    for (size_t i = 0; i < n; ++i) {
      const std::string h = "h" + std::to_string(i);
      names_.push_back(h);
      hosts_.emplace(h, Replicator(h, options));
      up_.insert(h);
    }
    ViewsChanged();
    Settle(now_);
  }

  const std::vector<std::string>& names() const { return names_; }
  int64_t now() const { return now_; }
  SimNetwork& net() { return net_; }
  bool IsUp(const std::string& h) const { return up_.count(h) > 0; }
  Replicator& at(const std::string& h) { return hosts_.at(h); }
  const std::vector<ReplicationEvent>& events(const std::string& h) { return events_[h]; }

  // What each host's view is now (it reaches its Replicator detect_ns later).
  std::vector<std::string> ViewOf(const std::string& h) const {
    std::vector<std::string> v;
    for (const std::string& x : names_) {
      if (up_.count(x) && !Cut(h, x)) v.push_back(x);
    }
    return v;
  }

  void Kill(const std::string& h) {
    up_.erase(h);
    net_.SetDown(h, true);
    hosts_.erase(h);
    hosts_.emplace(h, Replicator(h, options_));  // memory lost; disk stays
    ViewsChanged();
  }
  void Restart(const std::string& h) {
    Replicator fresh(h, options_);
    for (const auto& [id, bytes] : disk_[h]) {
      Status s = fresh.Restore(bytes);
      if (!s.ok()) restore_errors_.push_back(s.ToString());
    }
    hosts_.erase(h);
    hosts_.emplace(h, std::move(fresh));
    up_.insert(h);
    net_.SetDown(h, false);
    ViewsChanged();
  }
  void Partition(const std::string& a, const std::string& b) {
    cut_.insert(Key(a, b));
    net_.Partition(a, b);
    ViewsChanged();
  }
  // Cuts every link between `side` and the other hosts.
  void Split(const std::set<std::string>& side) {
    for (const std::string& a : names_) {
      for (const std::string& b : names_) {
        if (a < b && side.count(a) != side.count(b)) {
          cut_.insert(Key(a, b));
          net_.Partition(a, b);
        }
      }
    }
    ViewsChanged();
  }
  void HealAll() {
    cut_.clear();
    net_.HealAll();
    ViewsChanged();
  }
  // Drops messages between a and b without membership noticing (a lossy link, not a cut).
  void Blackhole(const std::string& a, const std::string& b, bool on) {
    if (on) net_.Partition(a, b); else net_.Heal(a, b);
  }

  // Runs the executor's side of host h now: fn(replicator, out), then delivers its output.
  template <typename Fn>
  auto Do(const std::string& h, Fn fn) {
    ReplicationOutput out;
    auto r = fn(hosts_.at(h), &out);
    Flush(h, out);
    return r;
  }

  // Advances virtual time to `until_ns`, delivering messages and running timers.
  void RunUntil(int64_t until_ns) {
    while (true) {
      std::optional<int64_t> next;
      auto consider = [&](std::optional<int64_t> t) {
        if (t && (!next || *t < *next)) next = *t;
      };
      if (auto at = net_.NextAt()) consider(*at * 1000);
      for (const std::string& h : up_) consider(hosts_.at(h).NextDeadline());
      if (!pending_views_.empty()) consider(pending_views_.begin()->first);
      if (!next || *next > until_ns) break;
      Settle(std::max(now_, *next));
    }
    now_ = std::max(now_, until_ns);
  }
  void RunFor(int64_t ns) { RunUntil(now_ + ns); }

  // The up hosts that own `id` now.
  std::vector<std::string> Owners(const std::string& id) {
    std::vector<std::string> o;
    for (const std::string& h : up_) {
      if (hosts_.at(h).Owns(id)) o.push_back(h);
    }
    return o;
  }
  // The owner with the highest epoch, if any.
  std::optional<std::string> Owner(const std::string& id) {
    std::optional<std::string> best;
    for (const std::string& h : Owners(id)) {
      if (!best || hosts_.at(*best).Find(id)->epoch < hosts_.at(h).Find(id)->epoch) best = h;
    }
    return best;
  }

  uint64_t decode_errors() const { return decode_errors_; }
  const std::vector<std::string>& restore_errors() const { return restore_errors_; }

 private:
  static std::pair<std::string, std::string> Key(const std::string& a, const std::string& b) {
    return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
  }
  bool Cut(const std::string& a, const std::string& b) const { return a != b && cut_.count(Key(a, b)); }

  void ViewsChanged() {
    for (const std::string& h : up_) pending_views_.emplace(now_ + detect_ns_, std::make_pair(h, ViewOf(h)));
    if (detect_ns_ == 0) Settle(now_);
  }

  void Flush(const std::string& h, ReplicationOutput& out) {
    // State before action: what changed is on disk before the messages leave.
    if (up_.count(h)) {
      for (const std::string& id : hosts_.at(h).DrainDirty()) {
        auto snap = hosts_.at(h).Snapshot(id);
        if (snap) disk_[h][id] = *snap;
      }
      for (const ReplicationEvent& e : out.events) {
        if (e.kind == ReplicationEvent::Kind::kDropped) disk_[h].erase(e.workflow_id);
      }
      for (auto& m : out.messages) net_.Send(now_ / 1000, h, m.to, std::move(m.payload));
    }
    for (auto& e : out.events) events_[h].push_back(std::move(e));
    out = {};
  }

  void Settle(int64_t t) {
    now_ = t;
    while (!pending_views_.empty() && pending_views_.begin()->first <= now_) {
      auto [h, view] = pending_views_.begin()->second;
      pending_views_.erase(pending_views_.begin());
      if (!up_.count(h)) continue;
      // Only the latest view counts: a host killed and restarted meanwhile gets the new one.
      ReplicationOutput out;
      hosts_.at(h).SetMembers(view, now_, &out);
      Flush(h, out);
    }
    while (auto d = net_.Pop(now_ / 1000)) {
      if (!up_.count(d->to)) continue;
      auto msg = DecodeReplication(d->bytes, options_.max_payload_bytes);
      if (!msg) {
        ++decode_errors_;
        continue;
      }
      ReplicationOutput out;
      hosts_.at(d->to).Handle(d->from, *msg, now_, &out);
      Flush(d->to, out);
    }
    for (const std::string& h : std::vector<std::string>(up_.begin(), up_.end())) {
      ReplicationOutput out;
      hosts_.at(h).Tick(now_, &out);
      Flush(h, out);
    }
  }

  SimNetwork net_;
  ReplicationOptions options_;
  int64_t detect_ns_;
  int64_t now_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, Replicator> hosts_;
  std::set<std::string> up_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::multimap<int64_t, std::pair<std::string, std::vector<std::string>>> pending_views_;
  std::map<std::string, std::map<std::string, std::string>> disk_;
  std::map<std::string, std::vector<ReplicationEvent>> events_;
  std::vector<std::string> restore_errors_;
  uint64_t decode_errors_ = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_REPLICATION_CLUSTER_H_
