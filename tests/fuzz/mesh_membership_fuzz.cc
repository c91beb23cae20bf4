// Fuzzes what the mesh's membership channel takes from peers (src/mesh/membership.h): a real
// Membership core (SWIM with Lifeguard) on a fake clock, fed arbitrary payloads as if from
// its peers. The core parses its own messages (OnMessage), so the decoder is the core.
//  - The input is read as frames [op][time][len lo][len hi][payload]: op's low two bits pick
//    the sender (h1, h2, h3, or h0, the host itself, whose name a peer cannot use); op 0x80
//    sets the payload as this host's meta instead; op 0xC0 makes it leave. Virtual time
//    advances by the time byte (10 ms steps) and the core is ticked after every frame.
//  - Whatever the messages: every payload the core sends parses, is within the message limit
//    and goes to another host; the core's own record stays alive (until it leaves); its
//    incarnation never goes down and outbids whatever peers accuse it of; LiveCount is the
//    members not dead or left; nothing is due again right after a Tick (NextWakeUs is later
//    than now, or a caller would spin); every event names a member.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "mesh/membership.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;

using augur::fuzz::Require;

const char* const kPeers[] = {"h1", "h2", "h3", "h0"};  // h0 is the host itself

class Harness {
 public:
  Harness() : m_(Config(), PeerAddress{"h0", "tcp://10.0.0.1:7946"}, "z0", 1) {
    Check(m_.Join(now_, {{"h1", "tcp://10.0.0.2:7946"}, {"h2", "tcp://10.0.0.3:7946"}}));
    Check(m_.Tick(now_));
  }

  void Frame(uint8_t op, uint8_t step, std::string_view payload) {
    now_ += int64_t(step) * 10'000;
    if ((op & 0xC0) == 0xC0) {
      if (!m_.HasLeft()) {
        Check(m_.Leave(now_));
        Require(m_.HasLeft() && m_.Find("h0")->state == MemberState::kLeft, "Leave did not leave");
      }
    } else if (op & 0x80) {
      const bool fits = payload.size() <= m_.config().max_meta_bytes;
      Require(m_.SetMeta(std::string(payload)).ok() == fits, "SetMeta misjudged the limit");
    } else {
      const bool refutes = !m_.HasLeft() && (op & 3) != 3;
      const uint64_t bad_before = m_.stats().bad_updates;
      Check(m_.OnMessage(now_, kPeers[op & 3], payload));
      if (refutes) CheckRefuted(payload, bad_before);
    }
    Check(m_.Tick(now_));
    Require(m_.NextWakeUs() > now_, "something is due again right after a Tick");
  }

 private:
  static MembershipConfig Config() {
    MembershipConfig c;
    c.max_message_bytes = 4096;  // small, so that join answers and digests come in chunks
    c.max_gossip_bytes = 2048;
    c.max_piggyback_bytes = 512;
    c.max_meta_bytes = 256;
    c.reap_after_us = 5'000'000;
    return c;
  }

  void Check(const std::vector<Outgoing>& out) {
    for (const Outgoing& o : out) {
      Require(!o.to.name.empty() && o.to.name != "h0", "a message to no host or to itself");
      Require(o.payload.size() <= m_.config().max_message_bytes, "a message over the limit");
      wire::MembershipMessage msg;
      Require(msg.ParseFromString(o.payload), "a message peers cannot parse");
    }
    const Member* self = m_.Find("h0");
    Require(self != nullptr, "the host forgot itself");
    Require(self->state == (m_.HasLeft() ? MemberState::kLeft : MemberState::kAlive),
            "the host's own record is not alive (or left, once it left)");
    Require(self->incarnation >= incarnation_, "the host's incarnation went down");
    incarnation_ = self->incarnation;
    int live = 0;
    for (const Member& mb : m_.Members()) {
      live += mb.state == MemberState::kAlive || mb.state == MemberState::kSuspect;
    }
    Require(live == m_.LiveCount(), "LiveCount differs from the members' states");
    for (const MembershipEvent& e : m_.TakeEvents()) {
      Require(!e.name.empty(), "an event without a member");
    }
  }

  // What peers say of this host (in updates and sync records) it outbids: above every
  // suspicion, death or leave, at least every alive; what it cannot outbid (an incarnation of
  // 2^64 - 1) is refused as malformed.
  void CheckRefuted(std::string_view payload, uint64_t bad_before) {
    wire::MembershipMessage msg;
    if (payload.size() > 2 * m_.config().max_message_bytes ||
        !msg.ParseFromArray(payload.data(), int(payload.size()))) {
      return;
    }
    std::vector<const wire::MemberUpdate*> about_self;
    for (const auto& u : msg.updates()) about_self.push_back(&u);
    if (msg.has_sync() && msg.sync().digest_name_size() == msg.sync().digest_incarnation_size() &&
        msg.sync().digest_name_size() == msg.sync().digest_status_size() &&
        msg.sync().digest_name_size() == msg.sync().digest_meta_version_size() &&
        msg.sync().digest_lo() <= msg.sync().digest_hi()) {
      for (const auto& u : msg.sync().members()) about_self.push_back(&u);
    }
    const uint64_t inc = m_.incarnation();
    for (const wire::MemberUpdate* u : about_self) {
      if (u->name() != "h0" || !wire::MemberStatus_IsValid(u->status()) ||
          u->endpoint().size() > 256 || u->zone().size() > 64 || u->from().size() > 253 ||
          u->meta().size() > m_.config().max_meta_bytes) {
        continue;  // not about this host, or malformed
      }
      if (u->incarnation() == UINT64_MAX) {
        Require(m_.stats().bad_updates > bad_before, "accepted an incarnation it cannot outbid");
      } else if (u->status() == wire::MEMBER_ALIVE) {
        Require(inc >= u->incarnation(), "an older incarnation than peers claim of it");
      } else {
        Require(inc > u->incarnation(), "did not outbid a suspicion, death or leave of itself");
      }
    }
  }

  Membership m_;
  int64_t now_ = 1'000'000;
  uint64_t incarnation_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Harness().Frame(0, 0, bytes);  // the whole input as one message from h1
  Harness h;
  size_t i = 0;
  while (i + 4 <= bytes.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(bytes[i + k]); };
    const size_t len = std::min<size_t>(u(2) | (size_t(u(3)) << 8), bytes.size() - i - 4);
    h.Frame(u(0), u(1), bytes.substr(i + 4, len));
    i += 4 + len;
  }
  return 0;
}
