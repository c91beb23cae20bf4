#include "mesh/replay_window.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <utility>

namespace augur::mesh {
namespace {

using V = ReplayWindow::Verdict;
constexpr uint64_t W = ReplayWindow::kWindow;

TEST(ReplayWindow, AcceptsEachSeqOnce) {
  ReplayWindow w;
  for (uint64_t s = 1; s <= 3000; ++s) ASSERT_EQ(w.Check(7, s), V::kAccept) << s;
  EXPECT_EQ(w.Check(7, 3000), V::kReplayed);
  EXPECT_EQ(w.Check(7, 2999), V::kReplayed);
  EXPECT_EQ(w.Check(7, 3000 - W + 1), V::kReplayed);  // oldest still in the window
  EXPECT_EQ(w.Check(7, 3000 - W), V::kTooOld);
  EXPECT_EQ(w.Check(7, 1), V::kTooOld);
  EXPECT_EQ(w.highest_seq(), 3000u);
}

TEST(ReplayWindow, ReorderedWithinTheWindowIsAcceptedOnce) {
  ReplayWindow w;
  EXPECT_EQ(w.Check(1, 100), V::kAccept);
  EXPECT_EQ(w.Check(1, 98), V::kAccept);
  EXPECT_EQ(w.Check(1, 99), V::kAccept);
  EXPECT_EQ(w.Check(1, 98), V::kReplayed);
  EXPECT_EQ(w.Check(1, 100 + W - 1), V::kAccept);  // shifts by W-1: 100 is the oldest now
  EXPECT_EQ(w.Check(1, 100), V::kReplayed);
  EXPECT_EQ(w.Check(1, 101), V::kAccept);
  EXPECT_EQ(w.Check(1, 99), V::kTooOld);
}

TEST(ReplayWindow, AJumpPastTheWindowForgetsEverything) {
  ReplayWindow w;
  EXPECT_EQ(w.Check(1, 5), V::kAccept);
  EXPECT_EQ(w.Check(1, 5 + 10 * W), V::kAccept);
  EXPECT_EQ(w.Check(1, 5 + 10 * W - 1), V::kAccept);
  EXPECT_EQ(w.Check(1, 5 + 10 * W), V::kReplayed);
  EXPECT_EQ(w.Check(1, 5), V::kTooOld);
}

TEST(ReplayWindow, ANewerBootStartsAfreshAnOlderOneIsStale) {
  ReplayWindow w;
  EXPECT_EQ(w.Check(10, 500), V::kAccept);
  EXPECT_EQ(w.Check(20, 1), V::kAccept);  // restarted: seq starts again
  EXPECT_EQ(w.Check(20, 1), V::kReplayed);
  EXPECT_EQ(w.Check(20, 2), V::kAccept);
  EXPECT_EQ(w.Check(10, 501), V::kStaleBoot);
  EXPECT_EQ(w.Check(9, 1), V::kStaleBoot);
  EXPECT_EQ(w.boot_id(), 20u);
}

// Against a model that remembers every accepted pair: a (boot, seq) is accepted at most once,
// and a fresh seq within the window of the newest boot is always accepted.
TEST(ReplayWindow, SeededAgainstAModel) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    ReplayWindow w;
    std::set<std::pair<uint64_t, uint64_t>> accepted;
    uint64_t boot = 1, highest = 0;
    bool any = false;
    for (int i = 0; i < 20000; ++i) {
      uint64_t b = boot;
      const int r = static_cast<int>(rng() % 100);
      if (r == 0) b = boot + 1;                 // a restart
      if (r == 1 && boot > 1) b = boot - 1;     // an old boot's message
      // Half in order; half around the window's lower edge, with replays of recent seqs.
      const uint64_t back = rng() % (W + 100);
      uint64_t s = highest + 5 > back ? highest + 5 - back : 1 + rng() % 5;
      if (r >= 50 && any) s = highest + 1 + rng() % 3;
      const bool seen_before = accepted.count({b, s}) > 0;
      const V v = w.Check(b, s);
      if (v == V::kAccept) {
        ASSERT_FALSE(seen_before) << "accepted twice: " << b << "/" << s;
        accepted.emplace(b, s);
      }
      if (!any || b > boot) {
        ASSERT_EQ(v, V::kAccept);
        any = true;
        boot = b;
        highest = s;
      } else if (b < boot) {
        ASSERT_EQ(v, V::kStaleBoot);
      } else if (s > highest) {
        ASSERT_EQ(v, V::kAccept);
        highest = s;
      } else if (highest - s >= W) {
        ASSERT_EQ(v, V::kTooOld);
      } else {
        ASSERT_EQ(v, seen_before ? V::kReplayed : V::kAccept) << b << "/" << s;
      }
    }
  }
}

}  // namespace
}  // namespace augur::mesh
