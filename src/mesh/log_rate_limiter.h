// LogRateLimiter: at most one log line per key (a drop reason) per interval, so that a peer
// sending garbage at line rate costs one line per interval, not one per message. The line that
// is written says how many were held back since the previous one.
//
// Pure: the caller passes the time. Thread safety: none; each thread that logs keeps its own.
#ifndef AUGUR_MESH_LOG_RATE_LIMITER_H_
#define AUGUR_MESH_LOG_RATE_LIMITER_H_

#include <cstdint>
#include <map>

namespace augur::mesh {

class LogRateLimiter {
 public:
  explicit LogRateLimiter(int64_t interval_ns) : interval_ns_(interval_ns) {}

  // True when a line for `key` may be written at `now_ns`; then *suppressed is how many lines
  // for this key were refused since the last one allowed (and the count restarts).
  bool Allow(uint32_t key, int64_t now_ns, uint64_t* suppressed) {
    State& s = keys_[key];
    if (s.logged && now_ns - s.last_ns < interval_ns_) {
      ++s.suppressed;
      return false;
    }
    s.logged = true;
    s.last_ns = now_ns;
    *suppressed = s.suppressed;
    s.suppressed = 0;
    return true;
  }

 private:
  struct State {
    bool logged = false;
    int64_t last_ns = 0;
    uint64_t suppressed = 0;
  };
  int64_t interval_ns_;
  std::map<uint32_t, State> keys_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_LOG_RATE_LIMITER_H_
