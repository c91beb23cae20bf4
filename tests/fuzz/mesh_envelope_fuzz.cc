// Fuzzes the mesh's wire decoder (src/mesh/envelope.h) and its replay window: the two things
// every message from a peer passes through before any other mesh code sees it.
//  - DecodeEnvelope never crashes; what it accepts passes its own checks again after a round
//    trip through EncodeEnvelope, and a size limit below the input's size always refuses it.
//  - The same bytes, read as (boot, seq) pairs, drive a ReplayWindow next to a model that
//    remembers every accepted pair: nothing is accepted twice, a newer boot or a higher seq is
//    always accepted, an older boot never.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <utility>

#include "mesh/envelope.h"
#include "mesh/replay_window.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;

using augur::fuzz::Require;

void CheckDecoder(std::string_view bytes) {
  constexpr size_t kMax = 64 * 1024;
  auto env = DecodeEnvelope(bytes, kMax);
  if (env) {
    Require(env->version == kEnvelopeVersion, "accepted another version");
    Require(IsValidHostName(env->sender), "accepted a bad sender name");
    Require(env->seq > 0 && env->boot_id > 0, "accepted seq or boot_id 0");
    const auto ch = static_cast<uint32_t>(env->channel);
    Require(ch >= 1 && ch <= kMaxChannel, "accepted an unknown channel");
    auto again = DecodeEnvelope(EncodeEnvelope(*env), kMax);
    Require(again.has_value(), "a decoded envelope does not decode after re-encoding");
    Require(again->sender == env->sender && again->boot_id == env->boot_id &&
                again->seq == env->seq && again->channel == env->channel &&
                again->payload == env->payload && again->sent_unix_ns == env->sent_unix_ns,
            "envelope does not round-trip");
  } else {
    Require(!env.error().message().empty(), "an error without a message");
  }
  if (!bytes.empty()) {
    auto small = DecodeEnvelope(bytes, bytes.size() - 1);
    Require(!small && small.error().code() == augur::Status::Code::kResourceExhausted,
            "an envelope over the limit was not refused as oversized");
  }
}

void CheckReplayWindow(std::string_view bytes) {
  ReplayWindow w;
  std::set<std::pair<uint64_t, uint64_t>> accepted;
  bool any = false;
  uint64_t boot = 1000, highest = 0;
  for (size_t i = 0; i + 3 <= bytes.size(); i += 3) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(bytes[i + k]); };
    const uint64_t b = boot - 1 + u(0) % 3;  // the previous boot, this one or the next
    const uint64_t s = 1 + (u(1) | (static_cast<uint64_t>(u(2)) << 8));
    const bool seen = accepted.count({b, s}) > 0;
    const ReplayWindow::Verdict v = w.Check(b, s);
    const bool ok = v == ReplayWindow::Verdict::kAccept;
    Require(!(ok && seen), "accepted a (boot, seq) twice");
    if (ok) accepted.emplace(b, s);
    if (!any || b > boot) {
      Require(ok, "refused the first message of a newer boot");
      any = true;
      boot = b;
      highest = s;
    } else if (b < boot) {
      Require(v == ReplayWindow::Verdict::kStaleBoot, "an older boot was not stale");
    } else if (s > highest) {
      Require(ok, "refused a seq above the highest");
      highest = s;
    } else if (highest - s >= ReplayWindow::kWindow) {
      Require(v == ReplayWindow::Verdict::kTooOld, "a seq below the window was not too old");
    } else {
      Require(ok != seen, "a seq inside the window was judged wrongly");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckDecoder(bytes);
  CheckReplayWindow(bytes);
  return 0;
}
