// MeshNode over real ZeroMQ sockets on 127.0.0.1 with CURVE keys: two nodes join, gossip
// their headroom, and send to each other from threads other than their mesh threads (Send
// goes out on the caller's thread). Waits are bounded and only bound: every assertion is
// about what arrived, never about how fast.
#include "mesh/node.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "mesh/headroom_summary.h"
#include "mesh/keys.h"
#include "telemetry/temp_tree.h"

namespace augur::mesh {
namespace {

using std::chrono::milliseconds;
constexpr auto kWait = std::chrono::seconds(20);

// Runs `step` every 10 ms until `done` holds or kWait passes; returns whether it held.
template <typename Done>
bool Eventually(Done done, const std::function<void()>& step = [] {}) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    step();
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

std::string Headroom(double cpu) {
  HeadroomSummary s;
  s.zone = "z1";
  s.horizons.push_back({0, {cpu, uint64_t{1} << 30}, {cpu, uint64_t{1} << 30}});
  auto bytes = EncodeHeadroom(s);
  EXPECT_TRUE(bytes.has_value()) << bytes.error().ToString();
  return bytes ? *bytes : "";
}

class MeshNodeTest : public ::testing::Test {
 protected:
  MeshNodeOptions Options(const std::string& name) {
    auto k = WriteKeyFiles({dir_.Path("/" + name), name, false});
    EXPECT_TRUE(k.has_value()) << k.error().ToString();
    keys_ += k->public_line + "\n";
    MeshNodeOptions o;
    o.transport.host_name = name;
    o.transport.listen = "tcp://127.0.0.1:0";
    o.transport.secret_key_file = k->secret_path;
    o.transport.authorized_keys_file = dir_.Path("/authorized_keys");
    o.zone = "z1";
    o.counters_log_interval = milliseconds(0);
    return o;
  }

  std::unique_ptr<MeshNode> Start(MeshNodeOptions o) {
    auto n = MeshNode::Start(std::move(o));
    EXPECT_TRUE(n.has_value()) << n.error().ToString();
    return n ? std::move(*n) : nullptr;
  }

  static bool SeesAlive(const MeshNode& n, const std::string& peer) {
    for (const Member& m : n.Peers()) {
      if (m.name == peer) return m.state == MemberState::kAlive;
    }
    return false;
  }

  static const PlacementPeer* Find(const PeerView& v, const std::string& name) {
    for (const PlacementPeer& p : *v) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  telemetry::TempTree dir_;
  std::string keys_;
};

TEST_F(MeshNodeTest, PeersJoinGossipHeadroomAndSendFromAnyThread) {
  MeshNodeOptions oa = Options("alpha"), ob = Options("beta");
  dir_.Write("/authorized_keys", keys_);
  auto a = Start(oa);
  ASSERT_TRUE(a);
  ob.seeds = {{"alpha", a->endpoint()}};
  auto b = Start(ob);
  ASSERT_TRUE(b);
  ASSERT_TRUE(Eventually([&] { return SeesAlive(*a, "beta") && SeesAlive(*b, "alpha"); }));

  // The view decodes alpha's headroom, and a new one replaces it (not a cached old one).
  a->SetMeta(Headroom(3));
  ASSERT_TRUE(Eventually([&] {
    const PlacementPeer* p = Find(b->PlacementView(), "alpha");
    return p != nullptr && p->alive && p->headroom.FreeOver(0).cpu == 3;
  }));
  const uint64_t version = Find(b->PlacementView(), "alpha")->headroom_version;
  a->SetMeta(Headroom(1.5));
  ASSERT_TRUE(Eventually([&] {
    const PlacementPeer* p = Find(b->PlacementView(), "alpha");
    return p != nullptr && p->headroom.FreeOver(0).cpu == 1.5;
  }));
  EXPECT_GT(Find(b->PlacementView(), "alpha")->headroom_version, version);
  EXPECT_EQ(Find(b->PlacementView(), "alpha")->zone, "z1");

  // Sends from a thread of the test's (not the mesh thread) reach beta's handler; the first
  // ones may go before the link's handshake and be dropped, as datagrams are.
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> got;
  b->OnChannel(Channel::kPlacement, [&](const std::string& from, std::string payload) {
    std::lock_guard lock(mu);
    got.emplace_back(from, std::move(payload));
    cv.notify_all();
  });
  std::thread sender([&] {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mu);
        if (!got.empty()) break;
      }
      a->Send("beta", Channel::kPlacement, "from a thread");
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, kWait, [&] { return !got.empty(); }));
    EXPECT_EQ(got.front().first, "alpha");
    EXPECT_EQ(got.front().second, "from a thread");
  }
  sender.join();
  EXPECT_TRUE(Eventually([&] { return a->Stats().placement_send.count() >= 1; }));

  // A host nobody knows: counted, not sent.
  const uint64_t before = a->Stats().unaddressed;
  a->Send("gamma", Channel::kPlacement, "to nobody");
  EXPECT_TRUE(Eventually([&] { return a->Stats().unaddressed == before + 1; }));

  // Once stopped, nothing new goes out: beta, still up, hears nothing more from alpha's
  // placer (it would within milliseconds: the link is up).
  a->Stop(milliseconds(0));
  a->Send("beta", Channel::kPlacement, "after stop");
  std::this_thread::sleep_for(milliseconds(300));
  std::lock_guard lock(mu);
  for (const auto& [from, payload] : got) EXPECT_NE(payload, "after stop");
}

}  // namespace
}  // namespace augur::mesh
