#include "forecast/forecaster_bank.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace augur::forecast {
namespace {

namespace fs = std::filesystem;

class ForecasterBankTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("augur_fc_bank_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  BankOptions Opts() {
    BankOptions o;
    o.forecaster.step_seconds = 60;
    o.state_dir = dir_.string();
    return o;
  }
  fs::path dir_;
};

void FeedTwo(ForecasterBank& b, int from, int to) {
  for (int i = from; i < to; ++i) {
    b.Observe("cpu{cpu=\"0\"}", i * 60.0, 10 + std::sin(i * 0.05));
    b.Observe("mem", i * 60.0, 1e6 + 100 * (i % 30));
  }
}

TEST_F(ForecasterBankTest, SaveAndLoadRestoresEverySeries) {
  auto a = ForecasterBank::Open(Opts());
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  FeedTwo(*a, 0, 500);
  ASSERT_TRUE(a->SaveAll().ok());
  EXPECT_EQ(a->stats().series, 2u);

  auto b = ForecasterBank::Open(Opts());
  ASSERT_TRUE(b.has_value());
  ASSERT_TRUE(b->LoadAll().ok());
  EXPECT_EQ(b->stats().restored, 2u);
  EXPECT_EQ(b->stats().restore_failures, 0u);
  for (const char* name : {"cpu{cpu=\"0\"}", "mem"}) {
    ASSERT_NE(b->Find(name), nullptr) << name;
    EXPECT_EQ(b->Find(name)->Forecast().horizons[0].mean,
              a->Find(name)->Forecast().horizons[0].mean);
  }
  FeedTwo(*a, 500, 520);
  FeedTwo(*b, 500, 520);
  EXPECT_EQ(b->Find("mem")->Forecast().horizons[2].mean,
            a->Find("mem")->Forecast().horizons[2].mean);
}

TEST_F(ForecasterBankTest, CorruptFileIsSetAsideAndTheSeriesStartsFresh) {
  auto a = ForecasterBank::Open(Opts());
  ASSERT_TRUE(a.has_value());
  FeedTwo(*a, 0, 300);
  ASSERT_TRUE(a->SaveAll().ok());
  const std::string path = a->PathFor("mem");
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  auto b = ForecasterBank::Open(Opts());
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->LoadAll().ok());
  EXPECT_EQ(b->stats().restored, 1u);
  EXPECT_EQ(b->stats().restore_failures, 1u);
  EXPECT_EQ(b->Find("mem"), nullptr);
  EXPECT_TRUE(fs::exists(path + ".bad"));
  b->Observe("mem", 1e9, 1.0);  // starts fresh
  EXPECT_NE(b->Find("mem"), nullptr);
}

TEST_F(ForecasterBankTest, EventsAreLoggedCountedAndKept) {
  BankOptions o = Opts();
  o.recent_events = 2;
  auto b = ForecasterBank::Open(o);
  ASSERT_TRUE(b.has_value());
  int sunk = 0;
  b->SetEventSink([&](const SeriesAnomalyEvent& e) {
    EXPECT_EQ(e.series, "s");
    ++sunk;
  });
  for (int i = 0; i < 2000; ++i) {
    double v = 10 + 0.1 * std::sin(i * 0.3);
    if (i == 700 || i == 1100 || i == 1500) v += 50;
    b->Observe("s", i * 60.0, v);
  }
  EXPECT_GE(b->stats().anomaly_events, 3u);
  EXPECT_EQ(static_cast<uint64_t>(sunk), b->stats().anomaly_events);
  EXPECT_EQ(b->recent_events().size(), 2u);
}

TEST_F(ForecasterBankTest, SeriesBeyondTheLimitAreRefused) {
  BankOptions o = Opts();
  o.max_series = 1;
  auto b = ForecasterBank::Open(o);
  ASSERT_TRUE(b.has_value());
  EXPECT_FALSE(b->Observe("a", 0, 1).dropped);
  EXPECT_TRUE(b->Observe("b", 0, 1).dropped);
  EXPECT_EQ(b->stats().refused_series, 1u);
}

}  // namespace
}  // namespace augur::forecast
