// Suspicion: Lifeguard's dynamic suspicion timeout for one suspected member.
//
// The timeout starts at `max` and shrinks toward `min` as independent hosts confirm the
// suspicion (each distinct accuser other than the first counts once), on a log scale:
//
//   timeout(c) = max(min, max - (max - min) * log(c + 1) / log(k + 1))
//
// where c is the confirmations so far and k those expected (memberlist's
// remainingSuspicionTime; Lifeguard, Dadgar et al. 2018, section IV-B). With k == 0 (too few
// hosts to expect confirmations) the timeout is `min`. A suspicion that many hosts share is
// settled quickly; a lone one, likely the accuser's own trouble, waits long enough for the
// accused to refute it.
//
// Thread safety: a value type; one thread at a time.
#ifndef AUGUR_MESH_SUSPICION_H_
#define AUGUR_MESH_SUSPICION_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string>

namespace augur::mesh {

class Suspicion {
 public:
  // REQUIRES: 0 < min_us <= max_us, k >= 0.
  Suspicion(std::string first_accuser, int k, int64_t min_us, int64_t max_us, int64_t start_us)
      : k_(k), min_us_(min_us), max_us_(max_us), start_us_(start_us) {
    accusers_.insert(std::move(first_accuser));
  }

  // Records an accusation by `from`. True when it is a new, counted confirmation (so the
  // caller re-gossips it); false for a repeat or once k confirmations are in.
  bool Confirm(const std::string& from) {
    if (Confirmations() >= k_) return false;
    return accusers_.insert(from).second;
  }

  int Confirmations() const { return static_cast<int>(accusers_.size()) - 1; }

  // The timeout for `confirmations` out of `k` expected, between min and max.
  static int64_t Timeout(int confirmations, int k, int64_t min_us, int64_t max_us) {
    if (k < 1) return min_us;
    double frac = std::log(confirmations + 1.0) / std::log(k + 1.0);
    double raw = static_cast<double>(max_us) - frac * static_cast<double>(max_us - min_us);
    return std::max(min_us, static_cast<int64_t>(raw));
  }

  // When the member is declared dead unless it refutes first.
  int64_t DeadlineUs() const { return start_us_ + Timeout(Confirmations(), k_, min_us_, max_us_); }
  int64_t start_us() const { return start_us_; }

 private:
  int k_;
  int64_t min_us_, max_us_, start_us_;
  std::set<std::string> accusers_;  // the first accuser and each confirmation
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_SUSPICION_H_
