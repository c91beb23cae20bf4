// ReplayWindow: which (boot_id, seq) pairs one sender has already delivered, so that a
// message captured and sent again, or duplicated on the way, is dropped (the anti-replay
// window of IPsec, RFC 4303 section 3.4.3, over the envelope's seq).
//
// Per sender the window holds the newest boot id seen and, for that boot, the highest seq and
// a bitmap of the kWindow seqs at or below it. A message is accepted once: a newer boot id
// starts a fresh window (the sender restarted), an older boot id is stale, a seq at or below
// highest - kWindow is too old to tell apart from a replay and counts as one.
//
// Pure and deterministic; no clock. Thread safety: none (one mesh thread owns the transport's
// windows).
#ifndef AUGUR_MESH_REPLAY_WINDOW_H_
#define AUGUR_MESH_REPLAY_WINDOW_H_

#include <bitset>
#include <cstdint>

namespace augur::mesh {

class ReplayWindow {
 public:
  // Seqs this far below the highest one seen are still accepted once each (reordering).
  static constexpr uint64_t kWindow = 1024;

  enum class Verdict {
    kAccept,     // new: delivered, and now remembered
    kReplayed,   // this (boot, seq) was accepted before
    kTooOld,     // seq <= highest - kWindow: cannot tell, dropped as a replay
    kStaleBoot,  // boot_id older than the newest this sender has used
  };

  // Checks (boot_id, seq) and, when accepted, records it. REQUIRES: seq > 0 (DecodeEnvelope
  // refuses 0).
  Verdict Check(uint64_t boot_id, uint64_t seq) {
    if (!any_ || boot_id > boot_) {
      any_ = true;
      boot_ = boot_id;
      highest_ = seq;
      seen_.reset();
      seen_.set(0);
      return Verdict::kAccept;
    }
    if (boot_id < boot_) return Verdict::kStaleBoot;
    if (seq > highest_) {
      const uint64_t shift = seq - highest_;
      if (shift >= kWindow) {
        seen_.reset();
      } else {
        seen_ <<= shift;
      }
      seen_.set(0);
      highest_ = seq;
      return Verdict::kAccept;
    }
    const uint64_t back = highest_ - seq;  // bit `back` stands for seq highest_ - back
    if (back >= kWindow) return Verdict::kTooOld;
    if (seen_.test(back)) return Verdict::kReplayed;
    seen_.set(back);
    return Verdict::kAccept;
  }

  uint64_t boot_id() const { return boot_; }
  uint64_t highest_seq() const { return highest_; }

 private:
  bool any_ = false;
  uint64_t boot_ = 0;
  uint64_t highest_ = 0;
  std::bitset<kWindow> seen_;  // bit i: seq highest_ - i was accepted
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_REPLAY_WINDOW_H_
