// DemandModel (src/workflow/demand.h): seeded Poisson submissions with a known daily and
// weekly shape; the forecast's error against the true rate, the coverage of its intervals,
// events added and not learned as a habit, and bounded memory.
#include "workflow/demand.h"

#include <cmath>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

constexpr int64_t kHour = 3600LL * 1'000'000'000;
constexpr int64_t kDay = 24 * kHour;
// 2026-01-05 00:00 UTC, a Monday.
constexpr int64_t kMonday = 1767571200LL * 1'000'000'000;

// Submissions per hour: busy office hours on weekdays, quiet nights, nothing at weekends
// when `weekends` is false.
double Rate(int64_t hour_index, bool weekends_quiet) {
  const int64_t h = hour_index % 24;
  const int64_t dow = (hour_index / 24) % 7;  // 0 = Monday from kMonday
  if (weekends_quiet && dow >= 5) return 0.2;
  if (h >= 9 && h < 17) return 12;
  if (h >= 7 && h < 20) return 4;
  return 0.5;
}

// Feeds `days` of Poisson submissions of rate Rate() starting at kMonday.
void Feed(DemandModel& m, std::mt19937_64& rng, int first_day, int days, bool weekends,
          const char* wf = "etl") {
  for (int64_t hour = int64_t(first_day) * 24; hour < int64_t(first_day + days) * 24; ++hour) {
    std::poisson_distribution<int> n(Rate(hour, weekends));
    const int k = n(rng);
    std::uniform_int_distribution<int64_t> at(0, kHour - 1);
    std::vector<int64_t> ts;
    for (int i = 0; i < k; ++i) ts.push_back(kMonday + hour * kHour + at(rng));
    std::sort(ts.begin(), ts.end());
    for (int64_t t : ts) m.Submitted(wf, t);
  }
}

TEST(DemandTest, NothingKnownIsZeroAndSaysSo) {
  DemandModel m;
  DemandForecast f = m.NextHour("etl", kMonday);
  EXPECT_EQ(f.expected, 0);
  EXPECT_EQ(f.lo, 0);
  EXPECT_EQ(f.hi, 0);
  EXPECT_EQ(f.model, "none");
  EXPECT_EQ(f.hours_seen, 0u);
  EXPECT_EQ(f.to_ns - f.from_ns, kHour);
}

// Four weeks of a daily shape: the next day's hourly forecasts are close to the true rate,
// and the actual counts fall inside the 80 % intervals about 80 % of the time.
TEST(DemandTest, TheDailyShapeIsLearnedWithCalibratedIntervals) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    std::mt19937_64 rng(seed);
    DemandModel m;
    Feed(m, rng, 0, 28, /*weekends=*/false);
    // The next week, hour by hour: forecast, then the real hour.
    double abs_err = 0;
    size_t hours = 0, inside = 0;
    for (int64_t hour = 28 * 24; hour < 35 * 24; ++hour) {
      const int64_t start = kMonday + hour * kHour;
      DemandForecast f = m.Predict("etl", start, start, start + kHour);
      abs_err += std::fabs(f.expected - Rate(hour, false));
      std::poisson_distribution<int> n(Rate(hour, false));
      const int k = n(rng);
      inside += k >= f.lo - 1e-9 && k <= f.hi + 1e-9;
      ++hours;
      for (int i = 0; i < k; ++i) m.Submitted("etl", start + (i + 1) * (kHour / (k + 1)));
    }
    const double mae = abs_err / double(hours), coverage = double(inside) / double(hours);
    std::printf(
        "seed %u: hourly MAE %.2f submissions (rates 0.5..12), coverage %.3f over %zu "
        "hours\n",
        seed, mae, coverage, hours);
    EXPECT_LT(mae, 1.2);
    // Counts are whole numbers and the bounds are not: coverage lands a little above.
    EXPECT_GT(coverage, 0.75);
    EXPECT_LT(coverage, 0.95);
  }
}

TEST(DemandTest, QuietWeekendsSwitchToTheHourOfWeekModel) {
  std::mt19937_64 rng(9);
  DemandModel m;
  Feed(m, rng, 0, 35, /*weekends=*/true);  // five weeks, ending on a Sunday night
  // From the Sunday night that ends week 5: Saturday 10:00 of week 6 against Monday 10:00.
  const int64_t now = kMonday + 35 * kDay - 1;
  const int64_t sat = kMonday + (35 + 5) * kDay + 10 * kHour;
  const int64_t mon = kMonday + 35 * kDay + 10 * kHour;
  DemandForecast fs = m.Predict("etl", now, sat, sat + kHour);
  DemandForecast fm = m.Predict("etl", now, mon, mon + kHour);
  EXPECT_EQ(fm.model, "hour-of-week");
  EXPECT_EQ(fs.model, "hour-of-week");
  EXPECT_LT(fs.expected, 2) << "a weekend hour";
  EXPECT_NEAR(fm.expected, 12, 3) << "a weekday office hour";
  std::mt19937_64 rng2(9);
  DemandModel daily;
  Feed(daily, rng2, 0, 35, /*weekends=*/false);
  // Without day-of-week structure, whichever model answers is close on a Saturday too.
  EXPECT_NEAR(daily.Predict("etl", now, sat, sat + kHour).expected, 12, 3);
}

TEST(DemandTest, AWindowSumsTheHoursItOverlaps) {
  std::mt19937_64 rng(4);
  DemandModel m;
  Feed(m, rng, 0, 28, false);
  const int64_t day = kMonday + 28 * kDay;
  // 08:30..09:30: half an hour at rate 4, half at 12.
  DemandForecast f =
      m.Predict("etl", day, day + 8 * kHour + kHour / 2, day + 9 * kHour + kHour / 2);
  EXPECT_NEAR(f.baseline, 8, 2);
  // A whole day: about 8*12 + 5*4 + 11*0.5 = 121.5.
  DemandForecast whole = m.Predict("etl", day, day, day + kDay);
  EXPECT_NEAR(whole.baseline, 121.5, 15);
}

TEST(DemandTest, HoursWithoutSubmissionsCountAsZero) {
  DemandModel m;
  // Ten submissions every hour for a day, then silence for a week.
  for (int64_t h = 0; h < 24; ++h) {
    for (int i = 0; i < 10; ++i) m.Submitted("burst", kMonday + h * kHour + i);
  }
  const int64_t later = kMonday + 8 * kDay + 12 * kHour;
  DemandForecast f = m.Predict("burst", later, later, later + kHour);
  // Asked from the last submission's time instead, the week is not known to be empty yet.
  const int64_t last = kMonday + 23 * kHour + 9;
  EXPECT_GT(m.Predict("burst", last, later, later + kHour).expected, 5);
  EXPECT_LT(f.expected, 10 * 0.5) << "a week of empty hours has pulled the means down";
}

TEST(DemandTest, AnEventAddsToItsHourAndIsNotLearnedAsAHabit) {
  std::mt19937_64 rng(5);
  DemandModel m;
  Feed(m, rng, 0, 28, false);
  const int64_t at = kMonday + 28 * kDay + 3 * kHour + 15 * 60 * 1'000'000'000LL;  // 03:15
  const int64_t now = kMonday + 28 * kDay;
  const DemandForecast before = m.Predict("etl", now, now + 3 * kHour, now + 4 * kHour);
  ASSERT_TRUE(m.AddEvent({"launch", "etl", 200, at, 1}).ok());
  ASSERT_TRUE(m.AddEvent({"other", "render", 50, at, 1}).ok());
  DemandForecast f = m.Predict("etl", now, now + 3 * kHour, now + 4 * kHour);
  EXPECT_NEAR(f.expected, before.expected + 200, 1e-9);
  EXPECT_NEAR(f.lo, before.lo + 200, 1e-9);
  EXPECT_NEAR(f.hi, before.hi + 200, 1e-9);
  EXPECT_EQ(f.from_events, 200);
  ASSERT_EQ(f.events.size(), 1u);
  EXPECT_EQ(f.events[0].name, "launch");
  // The next-hour view from 02:30 sees it too (03:15 is within the hour).
  EXPECT_EQ(m.NextHour("etl", at - 45 * 60 * 1'000'000'000LL).from_events, 200);
  EXPECT_EQ(m.NextHour("etl", at + 1).from_events, 0);
  // The launch happens: 200 extra submissions at 03:15. The next night's 03:00 forecast is
  // as before, not 200/n higher.
  for (int i = 0; i < 200; ++i) m.Submitted("etl", at + i);
  Feed(m, rng, 28, 1, false);  // the rest of that day (its 03:00 hour again: Poisson 0.5)
  const int64_t next = kMonday + 29 * kDay + 3 * kHour;
  DemandForecast after = m.Predict("etl", next, next, next + kHour);
  EXPECT_LT(after.expected, 2) << "the event's submissions were not learned as the 03:00 rate";
  // Replacing by name; forgetting the past.
  ASSERT_TRUE(m.AddEvent({"launch", "etl", 10, at, 2}).ok());
  EXPECT_EQ(m.Events("etl", 0).size(), 1u);
  EXPECT_EQ(m.Events("etl", 0)[0].expected, 10);
  EXPECT_EQ(m.Events("", 0).size(), 2u);
  m.ForgetEventsBefore(at + 1);
  EXPECT_TRUE(m.Events("", 0).empty());
}

TEST(DemandTest, BadEventsAreRefusedWithTheirName) {
  DemandModel m;
  EXPECT_TRUE(m.AddEvent({"", "etl", 1, 0, 0}).IsInvalidArgument());
  Status s = m.AddEvent({"launch", "", 1, 0, 0});
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("launch"), std::string::npos);
  EXPECT_TRUE(m.AddEvent({"launch", "etl", -1, 0, 0}).IsInvalidArgument());
  EXPECT_TRUE(m.AddEvent({"launch", "etl", std::nan(""), 0, 0}).IsInvalidArgument());
}

TEST(DemandTest, MemoryIsBounded) {
  DemandOptions o;
  o.max_workflows = 5;
  o.max_events = 3;
  DemandModel m(o);
  for (int i = 0; i < 10; ++i) m.Submitted("wf" + std::to_string(i), kMonday + i * kHour);
  EXPECT_EQ(m.workflows(), 5u);
  EXPECT_EQ(m.NextHour("wf0", kMonday + 10 * kHour).model, "none");  // dropped: oldest
  EXPECT_EQ(m.NextHour("wf9", kMonday + 10 * kHour).hours_seen, 1u);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.AddEvent({"e" + std::to_string(i), "wf9", 1, kMonday + i, 0}).ok());
  }
  auto ev = m.Events("", 0);
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].name, "e2");  // the earliest went
}

TEST(DemandTest, LocalHoursFollowTheOffset) {
  // A job submitted at 09:00 local time in UTC+2 every day: 07:00 UTC.
  DemandOptions o;
  o.utc_offset_s = 2 * 3600;
  DemandModel local(o), utc;
  for (int d = 0; d < 14; ++d) {
    local.Submitted("daily", kMonday + d * kDay + 7 * kHour);
    utc.Submitted("daily", kMonday + d * kDay + 7 * kHour);
  }
  const int64_t at = kMonday + 14 * kDay + 7 * kHour;
  EXPECT_NEAR(local.Predict("daily", at, at, at + kHour).expected, 1, 0.1);
  EXPECT_NEAR(utc.Predict("daily", at, at, at + kHour).expected, 1, 0.1);
  EXPECT_NEAR(local.Predict("daily", at, at + kHour, at + 2 * kHour).expected, 0, 0.1);
}

}  // namespace
}  // namespace augur::workflow
