#include "forecast/seasonality.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace augur::forecast {
namespace {

constexpr double kPi = 3.14159265358979323846;

History Fill(int n, double (*f)(int, std::mt19937_64&)) {
  History h(4096);
  std::mt19937_64 rng(7);
  for (int i = 0; i < n; ++i) h.Push(f(i, rng), true);
  return h;
}

TEST(SeasonalityTest, FindsTheDailyPeriodOfANoisySine) {
  History h = Fill(288 * 4, [](int i, std::mt19937_64& rng) {
    std::normal_distribution<double> noise(0, 0.2);
    return 10 + std::sin(2 * kPi * i / 288.0) + noise(rng);
  });
  const Detection d = DetectPeriod(h, SeasonalityOptions{}, 0);
  EXPECT_NEAR(d.best.period, 288, 3);
  EXPECT_GT(d.best.acf, 0.5);
}

TEST(SeasonalityTest, FindsAShortSquareWave) {
  History h = Fill(600, [](int i, std::mt19937_64&) { return (i % 24) < 6 ? 5.0 : 1.0; });
  EXPECT_EQ(DetectPeriod(h, SeasonalityOptions{}, 0).best.period, 24);
}

TEST(SeasonalityTest, NoPeriodInWhiteNoiseOrARandomWalk) {
  History noise = Fill(2000, [](int, std::mt19937_64& rng) {
    std::normal_distribution<double> n(0, 1);
    return n(rng);
  });
  EXPECT_EQ(DetectPeriod(noise, SeasonalityOptions{}, 0).best.period, 0);
  double level = 0;
  History walk(4096);
  std::mt19937_64 rng(3);
  std::normal_distribution<double> n(0, 1);
  for (int i = 0; i < 2000; ++i) walk.Push(level += n(rng), true);
  EXPECT_EQ(DetectPeriod(walk, SeasonalityOptions{}, 0).best.period, 0);
}

TEST(SeasonalityTest, DetectorKeepsItsPeriodAndSaysWhenItChanged) {
  SeasonalityOptions o;
  o.recheck_steps = 64;
  SeasonalityDetector det(o);
  History h(4096);
  int changes = 0;
  for (int i = 0; i < 288 * 4; ++i) {
    h.Push(std::sin(2 * kPi * i / 96.0), true);
    if (det.OnStep(h)) ++changes;
  }
  EXPECT_EQ(det.period(), 96);
  EXPECT_EQ(changes, 1);
}

}  // namespace
}  // namespace augur::forecast
