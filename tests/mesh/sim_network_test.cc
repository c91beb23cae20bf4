#include "mesh/sim_network.h"

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

// Delivers everything in flight, in virtual time, and returns what arrived.
std::vector<SimDelivery> Drain(SimNetwork& net) {
  std::vector<SimDelivery> out;
  while (auto at = net.NextAt()) {
    while (auto d = net.Pop(*at)) out.push_back(*d);
  }
  return out;
}

TEST(SimNetwork, SameSeedReplaysExactly) {
  auto run = [](uint64_t seed) {
    SimNetwork net(seed, SimLinkFaults{0.2, 0.1, 100, 5000});
    for (int i = 0; i < 500; ++i) net.Send(i * 10, "a", "b", std::to_string(i));
    std::vector<std::string> got;
    for (const auto& d : Drain(net)) got.push_back(d.bytes + "@" + std::to_string(d.at_us));
    return got;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(SimNetwork, LossDuplicationAndReorderingHappenAtTheirRates) {
  SimNetwork net(1, SimLinkFaults{0.1, 0.05, 0, 10000});
  const int n = 20000;
  for (int i = 0; i < n; ++i) net.Send(i, "a", "b", std::to_string(i));
  auto got = Drain(net);
  EXPECT_NEAR(double(net.dropped()) / n, 0.1, 0.01);
  EXPECT_NEAR(double(got.size()) / (n - net.dropped()), 1.05, 0.01);
  int overtaken = 0;
  for (size_t i = 1; i < got.size(); ++i) overtaken += std::stoi(got[i].bytes) < std::stoi(got[i - 1].bytes);
  EXPECT_GT(overtaken, n / 10);
}

TEST(SimNetwork, DownHostsAndCutLinksLoseMessagesInFlight) {
  SimNetwork net(3, SimLinkFaults{0, 0, 1000, 1000});
  net.Send(0, "a", "b", "1");
  net.Send(0, "a", "c", "2");
  net.Send(0, "c", "a", "3");
  net.SetDown("b", true);
  net.Partition("c", "a");
  EXPECT_TRUE(Drain(net).empty());
  net.SetDown("b", false);
  net.HealAll();
  net.Send(2000, "a", "b", "4");
  auto got = Drain(net);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].bytes, "4");
  EXPECT_EQ(got[0].at_us, 3000);
  EXPECT_EQ(net.SentBy("a"), 3u);
}

}  // namespace
}  // namespace augur::mesh
