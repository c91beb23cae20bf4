// SimNetwork: a seeded, lossy, in-memory network in virtual time, for the mesh's protocol
// tests and its large-N simulations (bench/mesh/). It carries opaque byte strings between
// host names, the way the real transport carries payloads, and can lose, delay, reorder,
// duplicate and partition them. Nothing here sleeps or touches a socket: the caller asks for
// the next delivery and advances its own clock to it.
//
// Thread safety: none; one simulation drives it from one thread.
#ifndef AUGUR_MESH_SIM_NETWORK_H_
#define AUGUR_MESH_SIM_NETWORK_H_

#include <cstdint>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace augur::mesh {

struct SimLinkFaults {
  double loss = 0.0;         // probability a message is dropped
  double duplicate = 0.0;    // probability a delivered message arrives twice
  int64_t min_delay_us = 200;
  int64_t max_delay_us = 800;  // uniform in [min, max]: messages may overtake each other
};

struct SimDelivery {
  int64_t at_us = 0;
  std::string from;
  std::string to;
  std::string bytes;
};

class SimNetwork {
 public:
  explicit SimNetwork(uint64_t seed, SimLinkFaults faults = {}) : rng_(seed), faults_(faults) {}

  void SetFaults(const SimLinkFaults& f) { faults_ = f; }
  // Faults for messages sent by `host` (e.g. loss on one host's link only).
  void SetHostFaults(const std::string& host, const SimLinkFaults& f) { host_faults_[host] = f; }
  // A host that is down neither sends nor receives (messages in flight to it are lost).
  void SetDown(const std::string& host, bool down) {
    if (down) down_.insert(host); else down_.erase(host);
  }
  bool IsDown(const std::string& host) const { return down_.count(host) > 0; }
  // Drop everything between a and b, both ways, until Heal.
  void Partition(const std::string& a, const std::string& b) { cut_.insert(Key(a, b)); }
  void Heal(const std::string& a, const std::string& b) { cut_.erase(Key(a, b)); }
  void HealAll() { cut_.clear(); }

  void Send(int64_t now_us, const std::string& from, const std::string& to, std::string bytes) {
    ++sent_;
    sent_bytes_ += bytes.size();
    per_host_sent_[from] += 1;
    per_host_bytes_[from] += bytes.size();
    if (IsDown(from) || IsDown(to) || IsCut(from, to)) { ++dropped_; return; }
    const SimLinkFaults& f = FaultsFor(from);
    if (Chance(f.loss)) { ++dropped_; return; }
    int copies = Chance(f.duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      std::uniform_int_distribution<int64_t> d(f.min_delay_us, std::max(f.min_delay_us, f.max_delay_us));
      queue_.push(Pending{now_us + d(rng_), order_++, SimDelivery{0, from, to, bytes}});
    }
  }

  // When the next message arrives, if any is in flight.
  std::optional<int64_t> NextAt() const {
    if (queue_.empty()) return std::nullopt;
    return queue_.top().at_us;
  }
  // The next message due at or before `now_us`, if any. Messages to a host that went down or
  // across a link cut while they were in flight are lost.
  std::optional<SimDelivery> Pop(int64_t now_us) {
    while (!queue_.empty() && queue_.top().at_us <= now_us) {
      Pending p = queue_.top();
      queue_.pop();
      if (IsDown(p.d.to) || IsCut(p.d.from, p.d.to)) { ++dropped_; continue; }
      p.d.at_us = p.at_us;
      return p.d;
    }
    return std::nullopt;
  }

  uint64_t sent() const { return sent_; }
  uint64_t sent_bytes() const { return sent_bytes_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t SentBy(const std::string& h) const { auto it = per_host_sent_.find(h); return it == per_host_sent_.end() ? 0 : it->second; }
  uint64_t BytesBy(const std::string& h) const { auto it = per_host_bytes_.find(h); return it == per_host_bytes_.end() ? 0 : it->second; }
  std::mt19937_64& rng() { return rng_; }

 private:
  struct Pending {
    int64_t at_us;
    uint64_t order;  // ties keep send order, so a seed replays exactly
    SimDelivery d;
    bool operator>(const Pending& o) const {
      return at_us != o.at_us ? at_us > o.at_us : order > o.order;
    }
  };
  static std::pair<std::string, std::string> Key(const std::string& a, const std::string& b) {
    return a < b ? std::make_pair(a, b) : std::make_pair(b, a);
  }
  bool IsCut(const std::string& a, const std::string& b) const {
    return !cut_.empty() && cut_.count(Key(a, b)) > 0;
  }
  bool Chance(double p) {
    if (p <= 0) return false;
    return std::uniform_real_distribution<double>(0, 1)(rng_) < p;
  }
  const SimLinkFaults& FaultsFor(const std::string& host) const {
    auto it = host_faults_.find(host);
    return it == host_faults_.end() ? faults_ : it->second;
  }

  std::mt19937_64 rng_;
  SimLinkFaults faults_;
  std::map<std::string, SimLinkFaults> host_faults_;
  std::unordered_set<std::string> down_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::priority_queue<Pending, std::vector<Pending>, std::greater<Pending>> queue_;
  uint64_t order_ = 0;
  uint64_t sent_ = 0, sent_bytes_ = 0, dropped_ = 0;
  std::unordered_map<std::string, uint64_t> per_host_sent_, per_host_bytes_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_SIM_NETWORK_H_
