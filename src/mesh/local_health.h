// LocalHealthMultiplier: Lifeguard's local health multiplier (LHM), a host's own evidence
// that it is the slow one. It rises when this host's probes fail without the nacks its
// relays should have sent (or fail with no relay to ask) and when it has to refute a
// suspicion of itself; it falls with each successful probe. Probe intervals and timeouts are
// stretched by (score + 1), so an overloaded host slows its own judgements instead of accusing
// healthy peers (Dadgar et al., "Lifeguard", 2018, section IV-A; memberlist's awareness).
//
// Thread safety: a value type; one thread at a time.
#ifndef AUGUR_MESH_LOCAL_HEALTH_H_
#define AUGUR_MESH_LOCAL_HEALTH_H_

#include <algorithm>
#include <cstdint>

namespace augur::mesh {

class LocalHealthMultiplier {
 public:
  // `max_multiplier` >= 1: the most a timeout is stretched (the score stays below it).
  explicit LocalHealthMultiplier(int max_multiplier) : max_(std::max(1, max_multiplier)) {}

  void Apply(int delta) { score_ = std::clamp(score_ + delta, 0, max_ - 1); }
  int score() const { return score_; }
  int64_t Scale(int64_t timeout_us) const { return timeout_us * (score_ + 1); }

 private:
  int max_;
  int score_ = 0;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_LOCAL_HEALTH_H_
