// Dag (src/workflow/dag.h): cycles named along their path, topological order, the critical
// path and each node's remaining path.
#include "workflow/dag.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(DagTest, ACycleIsNamedAlongItsPath) {
  // 0 waits for 2, 2 waits for 1, 1 waits for 0: 0 runs before 1 before 2 before 0.
  auto d = Dag::FromPredecessors({{2}, {0}, {1}, {}});
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().message(), HasSubstr("0 -> 1 -> 2 -> 0"));
  EXPECT_THAT(Dag::FromPredecessors({{0}}).error().message(), HasSubstr("0 -> 0"));
  EXPECT_THAT(Dag::FromPredecessors({{5}}).error().message(), HasSubstr("does not exist"));
  EXPECT_THAT(Dag::FromPredecessors({{}, {0, 0}}).error().message(), HasSubstr("twice"));
}

TEST(DagTest, CriticalPathAndRemainingPaths) {
  //   0 (2s) -> 1 (5s) -> 3 (1s)
  //   0      -> 2 (1s) -> 3
  auto d = Dag::FromPredecessors({{}, {0}, {0}, {1, 2}});
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_THAT(d->topological_order(), ElementsAre(0, 1, 2, 3));
  const CriticalPath cp = ComputeCriticalPath(*d, {2, 5, 1, 1});
  EXPECT_DOUBLE_EQ(cp.length_s, 8);
  EXPECT_THAT(cp.path, ElementsAre(0, 1, 3));
  EXPECT_THAT(cp.remaining_s, ElementsAre(8, 6, 2, 1));
  // Recomputed as work finishes: 0 and 1 done.
  const CriticalPath later = ComputeCriticalPath(*d, {0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(later.length_s, 2);
}

}  // namespace
}  // namespace augur::workflow
