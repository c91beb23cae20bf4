// cost.h: what a grant costs, and which class a shard runs on.
#include "workflow/cost.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace augur::workflow {
namespace {

constexpr uint64_t kGi = 1ULL << 30;
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(CostTest, AGrantCostsItsCoresAndGibibytesAtTheClassPrices) {
  EXPECT_DOUBLE_EQ(CostPerHour({"x", 0.5, 0.25, false}, {2, 4 * kGi}), 2.0);
  EXPECT_FALSE(DefaultClass({}));
  EXPECT_EQ(DefaultClass({{"spot", 0.01, 0, true}, {"on-demand", 0.1, 0, false}})->name,
            "on-demand");
}

TEST(CostTest, TheCheapestClassThatMeetsDeadlineAndBudgetIsChosen) {
  const std::vector<CostClass> c = {
      {"on-demand", 1.0, 0, false}, {"reserved", 0.6, 0, false}, {"spot", 0.2, 0, true}};
  const Resources want{1, kGi};
  // No deadline (infinite slack), ample budget: spot.
  EXPECT_EQ(ChooseClass(c, want, 3600, kInf, kInf, false)->cls.name, "spot");
  // Slack under one run: spot could not be lost and re-run in time: reserved.
  auto ch = ChooseClass(c, want, 3600, 1800, kInf, false);
  EXPECT_EQ(ch->cls.name, "reserved");
  EXPECT_DOUBLE_EQ(ch->cost_per_hour, 0.6);
  // Budget 0.5 left: reserved (0.6) does not fit; spot would but misses the deadline risk;
  // the cheapest within the budget is spot, the deadline at risk.
  ch = ChooseClass(c, want, 3600, 1800, 0.5, false);
  EXPECT_EQ(ch->cls.name, "spot");
  EXPECT_THAT(ch->why, ::testing::HasSubstr("at risk"));
  // Taken away once: not spot again.
  EXPECT_EQ(ChooseClass(c, want, 3600, kInf, kInf, true)->cls.name, "reserved");
  // Nothing fits the budget: the cheapest, said.
  EXPECT_THAT(ChooseClass(c, want, 3600, kInf, 0.01, true)->why,
              ::testing::HasSubstr("over the budget"));
  // Only spot, and it was taken away: spot anyway (nothing else to run on).
  EXPECT_EQ(ChooseClass({c[2]}, want, 3600, kInf, kInf, true)->cls.name, "spot");
  EXPECT_FALSE(ChooseClass({}, want, 3600, kInf, kInf, false));
}

}  // namespace
}  // namespace augur::workflow
