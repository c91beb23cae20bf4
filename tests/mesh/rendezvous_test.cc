#include "mesh/rendezvous.h"

#include <algorithm>
#include <map>
#include <set>

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

std::vector<std::string> Hosts(int n, const std::string& prefix = "host-") {
  std::vector<std::string> h;
  for (int i = 0; i < n; ++i) h.push_back(prefix + std::to_string(i));
  return h;
}

std::vector<std::string> Without(std::vector<std::string> v, const std::string& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
  return v;
}

TEST(Rendezvous, TheOrderIsAFunctionOfTheNamesAlone) {
  std::vector<std::string> hosts = Hosts(16);
  const std::vector<std::string> order = RendezvousOrder("wf-42", hosts);
  EXPECT_EQ(order.size(), 16u);
  EXPECT_EQ(std::set<std::string>(order.begin(), order.end()).size(), 16u);
  std::reverse(hosts.begin(), hosts.end());
  hosts.push_back("host-3");  // listed twice: counted once
  EXPECT_EQ(RendezvousOrder("wf-42", hosts), order);
  EXPECT_NE(RendezvousOrder("wf-43", hosts), order);
  const std::vector<std::string> set = ReplicaSet("wf-42", hosts, 2);
  EXPECT_EQ(set, std::vector<std::string>(order.begin(), order.begin() + 3));
  EXPECT_EQ(ReplicaSet("wf-42", {"a", "b"}, 5).size(), 2u);
  EXPECT_TRUE(ReplicaSet("wf-42", {}, 2).empty());
}

// When the owner dies exactly the next live replica takes over; no other workflow changes
// owner, and a replica set loses only the dead host (one newcomer appended in its place).
TEST(Rendezvous, WhenTheOwnerDiesOnlyItsWorkflowsMoveToTheirNextReplica) {
  const std::vector<std::string> all = Hosts(32);
  for (const std::string& dead : {std::string("host-0"), std::string("host-17")}) {
    const std::vector<std::string> live = Without(all, dead);
    int moved = 0;
    for (int w = 0; w < 5000; ++w) {
      const std::string wf = "wf-" + std::to_string(w);
      const std::vector<std::string> before = ReplicaSet(wf, all, 2);
      const std::vector<std::string> after = ReplicaSet(wf, live, 2);
      const std::optional<std::string> owner =
          OwnerOf(wf, all, [&](const std::string& h) { return h != dead; });
      ASSERT_TRUE(owner.has_value());
      EXPECT_EQ(*owner, after[0]);
      if (before[0] == dead) {
        ++moved;
        EXPECT_EQ(after[0], before[1]) << wf;
        EXPECT_EQ(after[1], before[2]) << wf;
      } else {
        EXPECT_EQ(after[0], before[0]) << wf;
      }
      std::vector<std::string> kept = Without(before, dead);
      EXPECT_TRUE(std::equal(kept.begin(), kept.end(), after.begin())) << wf;
    }
    // About 1/32 of the workflows were its own.
    EXPECT_NEAR(moved, 5000 / 32, 60) << dead;
  }
  EXPECT_EQ(OwnerOf("wf", all, [](const std::string&) { return false; }), std::nullopt);
}

TEST(Rendezvous, AJoiningHostTakesOnlyWhatItNowWins) {
  const std::vector<std::string> before = Hosts(20);
  std::vector<std::string> after = before;
  after.push_back("newcomer");
  int taken = 0;
  for (int w = 0; w < 10000; ++w) {
    const std::string wf = "wf-" + std::to_string(w);
    const std::string was = ReplicaSet(wf, before, 0)[0];
    const std::string now = ReplicaSet(wf, after, 0)[0];
    if (now != was) {
      EXPECT_EQ(now, "newcomer");
      ++taken;
    }
  }
  EXPECT_NEAR(taken, 10000 / 21, 90);
}

// Owners are balanced: with names that differ only in their last characters (the case
// FNV-1a alone mixes poorly), each of 100 hosts owns close to 1% of 50,000 workflows.
TEST(Rendezvous, OwnershipIsBalancedAcrossHosts) {
  for (const std::string& prefix : {std::string("host-"), std::string("10.0.0.")}) {
    const std::vector<std::string> hosts = Hosts(100, prefix);
    std::map<std::string, int> owned;
    for (int w = 0; w < 50000; ++w) ++owned[ReplicaSet("wf-" + std::to_string(w), hosts, 0)[0]];
    ASSERT_EQ(owned.size(), 100u) << prefix;
    int lo = 1 << 30, hi = 0;
    for (const auto& [h, n] : owned) {
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    // Binomial(50000, 0.01): mean 500, sd 22.2; the extremes of 100 draws sit near 3 sd,
    // these bounds at 4.5 sd. Plain FNV-1a of key and name misses them by far (tried: some
    // hosts own nothing, one owns 12 times its share).
    EXPECT_GT(lo, 400) << prefix;
    EXPECT_LT(hi, 600) << prefix;
  }
}

}  // namespace
}  // namespace augur::mesh
