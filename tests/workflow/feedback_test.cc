// DecideFeedback (src/workflow/feedback.h): a running shard's measured usage against its
// grant and its stage's predictions.
#include "workflow/feedback.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace augur::workflow {
namespace {

using ::testing::HasSubstr;
constexpr uint64_t kMi = 1ULL << 20;
const Resources kCap{8, 8192 * kMi};

TEST(FeedbackTest, MemoryNearItsLimitGrowsWithAMargin) {
  Usage u{.elapsed_s = 1, .cores = 0.2, .peak_memory = 60 * kMi};
  FeedbackDecision d = DecideFeedback({1, 64 * kMi}, {1, 64 * kMi}, {0.5, 32 * kMi}, kCap, u, {});
  ASSERT_TRUE(d.want);
  EXPECT_EQ(d.want->memory, 90 * kMi);
  EXPECT_EQ(d.want->cpu, 1);
  EXPECT_THAT(d.reason, HasSubstr("peak memory 60Mi"));
  // Within the ceiling.
  d = DecideFeedback({1, 64 * kMi}, {1, 64 * kMi}, {0.5, 32 * kMi}, {8, 80 * kMi}, u, {});
  ASSERT_TRUE(d.want);
  EXPECT_EQ(d.want->memory, 80 * kMi);
}

TEST(FeedbackTest, SpareResourcesShrinkOnlyWithAPredictionAndAfterSettling) {
  Usage u{.elapsed_s = 10, .cores = 0.1, .peak_memory = 10 * kMi};
  const Resources grant{2, 512 * kMi};
  EXPECT_FALSE(DecideFeedback(grant, grant, {0.25, 16 * kMi}, kCap, u, {}).want)
      << "no prediction: usage may still grow";
  UsagePrediction p{.cores_hi = 0.3, .peak_memory_hi = 20 * kMi};
  FeedbackDecision d = DecideFeedback(grant, grant, {0.25, 16 * kMi}, kCap, u, p);
  ASSERT_TRUE(d.want);
  EXPECT_NEAR(d.want->cpu, 0.375, 1e-9);  // max(0.1, 0.3) * 1.25
  EXPECT_EQ(d.want->memory, 25 * kMi);    // max(10Mi, 20Mi) * 1.25
  u.elapsed_s = 2;
  EXPECT_FALSE(DecideFeedback(grant, grant, {0.25, 16 * kMi}, kCap, u, p).want) << "settling";
  // Never below the minimum.
  u.elapsed_s = 10;
  d = DecideFeedback(grant, grant, {1, 256 * kMi}, kCap, u, p);
  ASSERT_TRUE(d.want);
  EXPECT_EQ(d.want->cpu, 1);
  EXPECT_EQ(d.want->memory, 256 * kMi);
}

TEST(FeedbackTest, ACpuBoundShardGrowsToWhatItsStageIsPredictedToUse) {
  Usage u{.elapsed_s = 3, .cores = 0.98, .peak_memory = 10 * kMi};
  const Resources grant{1, 512 * kMi};
  EXPECT_FALSE(DecideFeedback(grant, grant, grant, kCap, u, {}).want)
      << "at its want and nothing predicts more";
  FeedbackDecision d = DecideFeedback(grant, grant, grant, kCap, u, {.cores_hi = 2.5});
  ASSERT_TRUE(d.want);
  EXPECT_EQ(d.want->cpu, 2.5);
}

TEST(FeedbackTest, PropertyTheWantStaysWithinMinAndCeilingAndGrowsOnlyWhenStarving) {
  std::mt19937_64 rng(20261206);
  std::uniform_real_distribution<double> f(0.01, 1.0);
  for (int i = 0; i < 20000; ++i) {
    const Resources want{4 * f(rng), uint64_t(4096 * kMi * f(rng)) + kMi};
    const Resources min{want.cpu * f(rng), uint64_t(double(want.memory) * f(rng)) + 1};
    const Resources granted{std::max(min.cpu, want.cpu * f(rng)),
                            std::max<uint64_t>(min.memory, uint64_t(double(want.memory) * f(rng)))};
    const Resources cap = Resources::Max(want, {8 * f(rng), uint64_t(8192 * kMi * f(rng))});
    Usage u{.elapsed_s = 20 * f(rng), .cores = 4 * f(rng),
            .peak_memory = uint64_t(double(granted.memory) * 1.2 * f(rng))};
    UsagePrediction p;
    if (f(rng) < 0.5) p.cores_hi = 4 * f(rng);
    if (f(rng) < 0.5) p.peak_memory_hi = uint64_t(4096 * kMi * f(rng));
    FeedbackDecision d = DecideFeedback(granted, want, min, cap, u, p);
    if (!d.want) continue;
    ASSERT_TRUE(min.FitsIn(*d.want)) << i;
    ASSERT_TRUE(d.want->FitsIn(Resources::Max(cap, want))) << i;
    ASSERT_FALSE(d.reason.empty());
    if (d.want->memory > want.memory) {
      ASSERT_GE(double(u.peak_memory), 0.9 * double(granted.memory)) << i;
    }
  }
}

}  // namespace
}  // namespace augur::workflow
