#include "forecast/task_runtime.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace augur::forecast {
namespace {

TEST(TaskRuntimeTest, NothingLearnedMeansNoPrediction) {
  TaskRuntimePredictor p;
  EXPECT_TRUE(std::isnan(p.Predict(TaskFeatures{"a", "", 0, 0, 0, 0})));
}

TEST(TaskRuntimeTest, LearnsRuntimeProportionalToInputSize) {
  TaskRuntimePredictor p;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> mb(10, 1000);
  std::lognormal_distribution<double> noise(0, 0.05);
  std::vector<double> ape;
  for (int i = 0; i < 300; ++i) {
    TaskFeatures t;
    t.category = "convert";
    t.input_bytes = mb(rng) * 1e6;
    const double runtime = 0.02 * t.input_bytes / 1e6 * noise(rng);
    const double pred = p.Predict(t);
    if (i >= 200) ape.push_back(std::fabs(pred - runtime) / runtime);
    p.Learn(t, runtime);
  }
  std::sort(ape.begin(), ape.end());
  // Input size explains all but 5 % noise; a category mean would be off by ~50 %.
  EXPECT_LT(ape[ape.size() / 2], 0.15);
}

TEST(TaskRuntimeTest, CategoriesAreSeparateAndUnknownOnesFallBack) {
  TaskRuntimePredictor p;
  for (int i = 0; i < 20; ++i) {
    p.Learn(TaskFeatures{"fast", "", 0, 0, 0, 0}, 1.0);
    p.Learn(TaskFeatures{"slow", "", 0, 0, 0, 0}, 100.0);
  }
  EXPECT_NEAR(p.Predict(TaskFeatures{"fast", "", 0, 0, 0, 0}), 1.0, 0.01);
  EXPECT_NEAR(p.Predict(TaskFeatures{"slow", "", 0, 0, 0, 0}), 100.0, 1.0);
  const double unknown = p.Predict(TaskFeatures{"new", "", 0, 0, 0, 0});
  EXPECT_GT(unknown, 1.0);
  EXPECT_LT(unknown, 100.0);
  EXPECT_EQ(p.categories(), 2u);
}

TEST(TaskRuntimeTest, HostFactorLearnsASlowerMachine) {
  TaskRuntimePredictor p;
  for (int i = 0; i < 40; ++i) {
    for (const char* c : {"a", "b"}) {
      const double base = c[0] == 'a' ? 10.0 : 50.0;
      p.Learn(TaskFeatures{c, "fast-host", 0, 0, 0, 0}, base);
      p.Learn(TaskFeatures{c, "slow-host", 0, 0, 0, 0}, 2 * base);
    }
  }
  const double fast = p.Predict(TaskFeatures{"a", "fast-host", 0, 0, 0, 0});
  const double slow = p.Predict(TaskFeatures{"a", "slow-host", 0, 0, 0, 0});
  EXPECT_GT(slow / fast, 1.6);
}

TEST(TaskRuntimeTest, BadValuesAreIgnored) {
  TaskRuntimePredictor p;
  p.Learn(TaskFeatures{"a", "", 0, 0, 0, 0}, -1);
  p.Learn(TaskFeatures{"a", "", 0, 0, 0, 0}, std::nan(""));
  p.Learn(TaskFeatures{"a", "", 0, 0, 0, 0}, 0);
  EXPECT_TRUE(std::isnan(p.Predict(TaskFeatures{"a", "", 0, 0, 0, 0})));
}

}  // namespace
}  // namespace augur::forecast
