// MergeBook (src/workflow/merge.h): the first successful attempt of a shard wins; late and
// duplicate results are discarded, replays decide the same.
#include "workflow/merge.h"

#include <random>

#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

TEST(MergeBookTest, FirstSuccessWinsAndDuplicatesAreDiscarded) {
  MergeBook b(2);
  EXPECT_EQ(b.Offer(0, "s0#1", false), MergeOutcome::kFailed);
  EXPECT_EQ(b.Offer(0, "s0#2", true), MergeOutcome::kAccepted);
  EXPECT_EQ(b.Offer(0, "s0#1", true), MergeOutcome::kDuplicate) << "the late first attempt";
  EXPECT_EQ(b.Offer(0, "s0#2", true), MergeOutcome::kAccepted) << "a replay of the winner";
  EXPECT_EQ(*b.winner(0), "s0#2");
  EXPECT_FALSE(b.Complete());
  EXPECT_EQ(b.Offer(7, "x", true), MergeOutcome::kUnknown);
  EXPECT_EQ(b.Offer(1, "s1#1", true), MergeOutcome::kAccepted);
  EXPECT_TRUE(b.Complete());
  EXPECT_EQ(b.duplicates(), 1u);
}

// Seeded: attempts of every shard arrive in any order, some twice, some failed; each shard
// ends with exactly one winner, its first success, and the count of accepted results is the
// shard count.
TEST(MergeBookPropertyTest, EveryShardIsMergedExactlyOnce) {
  for (uint32_t seed = 1; seed <= 500; ++seed) {
    std::mt19937 rng(seed);
    const uint32_t shards = 1 + rng() % 50;
    struct Offer {
      uint32_t shard;
      std::string attempt;
      bool ok;
    };
    std::vector<Offer> offers;
    for (uint32_t s = 0; s < shards; ++s) {
      const int attempts = 1 + rng() % 4;
      for (int a = 1; a <= attempts; ++a) {
        const bool ok = a == attempts || rng() % 2 == 0;  // the last always succeeds
        offers.push_back({s, std::to_string(s) + "#" + std::to_string(a), ok});
        if (rng() % 4 == 0) offers.push_back(offers.back());  // a replayed result
      }
    }
    std::shuffle(offers.begin(), offers.end(), rng);
    MergeBook b(shards);
    std::vector<std::string> first_success(shards);
    uint32_t fresh_accepts = 0;
    for (const Offer& o : offers) {
      const bool had = b.winner(o.shard).has_value();
      if (o.ok && first_success[o.shard].empty()) first_success[o.shard] = o.attempt;
      if (b.Offer(o.shard, o.attempt, o.ok) == MergeOutcome::kAccepted && !had) ++fresh_accepts;
    }
    ASSERT_TRUE(b.Complete()) << seed;
    ASSERT_EQ(fresh_accepts, shards) << seed;
    for (uint32_t s = 0; s < shards; ++s) ASSERT_EQ(*b.winner(s), first_success[s]) << seed;
  }
}

}  // namespace
}  // namespace augur::workflow
