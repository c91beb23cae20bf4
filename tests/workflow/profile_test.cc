// ProfileBook (src/workflow/profile.h): seeded generated histories with known answers (the
// intervals' coverage, size exponents, drift, bounded memory, OOM floors), and the one-step-
// ahead coverage on the real WfCommons executions in ../shared/traces.
#include "workflow/profile.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "workflow/conformal.h"

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;

HistoryRecord Shard(const std::string& wf, const std::string& stage, double units, double wall,
                    double cpu = 1, double memory = 100e6, double written = 1e6,
                    double cost = 0.01) {
  static int n = 0;
  HistoryRecord h;
  h.attempt_id = fmt::format("{}/{}/{}#1", wf, stage, ++n);
  h.workflow_id = wf + "-1";
  h.workflow_name = wf;
  h.stage = stage;
  h.range_begin = 0;
  h.range_end = uint64_t(units);
  h.state = AttemptState::kSucceeded;
  h.started_ns = int64_t(n) * 1'000'000'000;
  h.wall_seconds = wall;
  h.cpu_seconds = cpu;
  h.peak_memory_bytes = uint64_t(memory);
  h.bytes_written = uint64_t(written);
  h.cost = cost;
  h.grant = {1, 1ULL << 30};
  return h;
}

TEST(ConformalTest, QuantilesOfTheNormalAndT) {
  EXPECT_NEAR(NormalQuantile(0.9), 1.281552, 1e-5);
  EXPECT_NEAR(NormalQuantile(0.975), 1.959964, 1e-5);
  EXPECT_NEAR(NormalQuantile(0.1), -1.281552, 1e-5);
  EXPECT_NEAR(TQuantile(0.9, 1), 3.078, 0.13);
  EXPECT_NEAR(TQuantile(0.9, 2), 1.886, 0.01);
  EXPECT_NEAR(TQuantile(0.9, 10), 1.372, 0.002);
}

TEST(ProfileTest, AnUnseenStageHasNoAnswerUntilMinSamples) {
  ProfileBook book;  // min_samples 3
  EXPECT_FALSE(book.Predict("wf", "count", Quantity::kWall));
  EXPECT_FALSE(book.View("wf", "count"));
  book.Learn(Shard("wf", "count", 100, 10));
  book.Learn(Shard("wf", "count", 100, 11));
  EXPECT_FALSE(book.Predict("wf", "count", Quantity::kWall));
  EXPECT_FALSE(book.Predict("wf", "count").wall());
  book.Learn(Shard("wf", "count", 100, 12));
  auto e = book.Predict("wf", "count", Quantity::kWall);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->source, "history");
  EXPECT_EQ(e->samples, 3u);
  EXPECT_GT(e->value, 9);
  EXPECT_LT(e->value, 13);
  EXPECT_LE(e->lo, e->value);
  EXPECT_GE(e->hi, e->value);
  EXPECT_LT(e->lo, e->hi);
  // Another stage, another workflow of the same stage name: still nothing.
  EXPECT_FALSE(book.Predict("wf", "total", Quantity::kWall));
  EXPECT_FALSE(book.Predict("other", "count", Quantity::kWall));
  EXPECT_EQ(book.Stages("wf"), std::vector<std::string>{"count"});
  EXPECT_TRUE(book.Stages("w").empty());
}

TEST(ProfileTest, OnlySuccessesTeachAndOtherEndsAreIgnored) {
  ProfileBook book;
  for (AttemptState s : {AttemptState::kFailed, AttemptState::kTimedOut, AttemptState::kCancelled,
                         AttemptState::kLost}) {
    HistoryRecord h = Shard("wf", "s", 10, 5);
    h.state = s;
    EXPECT_FALSE(book.Learn(h));
  }
  EXPECT_EQ(book.profiles(), 0u);
  HistoryRecord nameless = Shard("", "s", 10, 5);
  EXPECT_FALSE(book.Learn(nameless));
}

// Log-normal noise around a known model: the share of one-step-ahead actuals inside the
// interval predicted just before is the coverage. 80 % nominal, checked per seed.
TEST(ProfileTest, IntervalsCoverAboutEightyPercentOnGeneratedData) {
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> logsize(std::log(100.0), std::log(10000.0));
    // Each seed its own noise level and shape: normal and heavier-tailed (Laplace) logs.
    const double sigma = 0.1 + 0.1 * seed;
    std::normal_distribution<double> normal(0, sigma);
    std::exponential_distribution<double> expo(1 / (sigma / std::sqrt(2.0)));
    std::bernoulli_distribution coin(0.5);
    auto noise = [&] {
      if (seed % 2 == 0) return coin(rng) ? expo(rng) : -expo(rng);
      return normal(rng);
    };
    ProfileBook book;
    size_t checked = 0, inside = 0, width_n = 0;
    double width = 0;
    for (int i = 0; i < 2000; ++i) {
      const double units = std::exp(logsize(rng));
      const double wall = 0.02 * units * std::exp(noise());
      const double mem = 4e6 * std::sqrt(units) * std::exp(noise());
      if (i >= 50) {
        auto w = book.Predict("gen", "stage", Quantity::kWall, units);
        auto m = book.Predict("gen", "stage", Quantity::kMemory, units);
        ASSERT_TRUE(w && m);
        checked += 2;
        inside += (wall >= w->lo && wall <= w->hi) + (mem >= m->lo && mem <= m->hi);
        width += std::log(w->hi / w->lo);
        ++width_n;
      }
      book.Learn(Shard("gen", "stage", units, wall, 1, mem));
    }
    const double coverage = double(inside) / double(checked);
    std::printf(
        "seed %u (%s, log sigma %.1f): coverage %.3f over %zu predictions, mean log "
        "width %.2f (ideal %.2f)\n",
        seed, seed % 2 == 0 ? "laplace" : "normal", sigma, coverage, checked,
        width / double(width_n), 2 * 1.2816 * sigma);
    EXPECT_GT(coverage, 0.75) << "seed " << seed;
    EXPECT_LT(coverage, 0.86) << "seed " << seed;
    // Calibrated but not vacuous: within 40 % of the ideal width (for Laplace noise the
    // ideal 80 % width is 2 * 1.138 sigma, narrower than the normal's).
    EXPECT_LT(width / double(width_n), 1.4 * 2 * 1.2816 * sigma) << "seed " << seed;
    // What the book says of itself agrees.
    auto v = book.View("gen", "stage");
    ASSERT_TRUE(v);
    const QuantityView& wq = v->quantities[size_t(Quantity::kWall)];
    EXPECT_GT(wq.checked, 1900u);
    EXPECT_NEAR(wq.observed_coverage, 0.8, 0.06);
  }
}

TEST(ProfileTest, SizeScalingIsRecoveredAndExtrapolates) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> logsize(std::log(1000.0), std::log(64000.0));
  std::normal_distribution<double> noise(0, 0.15);
  ProfileBook book;
  for (int i = 0; i < 300; ++i) {
    const double u = std::exp(logsize(rng));
    book.Learn(Shard("scale", "s", u, 0.001 * u * std::exp(noise(rng)),
                     0.0008 * std::pow(u, 0.9) * std::exp(noise(rng)),
                     2e5 * std::pow(u, 0.5) * std::exp(noise(rng))));
  }
  auto wall = book.Predict("scale", "s", Quantity::kWall, 256000);  // 4x the largest seen
  auto cpu = book.Predict("scale", "s", Quantity::kCpu, 256000);
  auto mem = book.Predict("scale", "s", Quantity::kMemory, 500);  // half the smallest
  ASSERT_TRUE(wall && cpu && mem);
  EXPECT_EQ(wall->size_model, SizeModel::kFit);
  EXPECT_NEAR(wall->exponent, 1.0, 0.05);
  EXPECT_NEAR(cpu->exponent, 0.9, 0.05);
  EXPECT_NEAR(mem->exponent, 0.5, 0.05);
  EXPECT_NEAR(wall->value / 256.0, 1, 0.15);
  EXPECT_NEAR(cpu->value / (0.0008 * std::pow(256000, 0.9)), 1, 0.15);
  EXPECT_NEAR(mem->value / (2e5 * std::sqrt(500)), 1, 0.15);
  // Far from the sizes seen, the interval is wider than at the middle.
  auto mid = book.Predict("scale", "s", Quantity::kWall, 8000);
  ASSERT_TRUE(mid);
  // (By the fit's leverage: with 300 samples over a 64x spread of sizes, a few per cent.)
  EXPECT_GT(std::log(wall->hi / wall->lo), 1.02 * std::log(mid->hi / mid->lo));
  // The typical shard (units 0) is at the sizes' geometric mean.
  auto typical = book.Predict("scale", "s", Quantity::kWall);
  ASSERT_TRUE(typical);
  EXPECT_EQ(typical->units, 0);
  EXPECT_NEAR(typical->value, 0.001 * std::sqrt(1000.0 * 64000), 2);
}

TEST(ProfileTest, ShardsOfOneSizeKeepThePriorExponent) {
  ProfileBook book;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.1);
  for (int i = 0; i < 50; ++i) {
    book.Learn(Shard("same", "s", 1000, 10 * std::exp(noise(rng)), 9, 50e6 * std::exp(noise(rng))));
  }
  auto wall = book.Predict("same", "s", Quantity::kWall, 2000);
  auto mem = book.Predict("same", "s", Quantity::kMemory, 2000);
  ASSERT_TRUE(wall && mem);
  EXPECT_EQ(wall->size_model, SizeModel::kPrior);
  EXPECT_DOUBLE_EQ(wall->exponent, 1);  // twice the work: twice the time
  EXPECT_NEAR(wall->value, 20, 2);
  EXPECT_NEAR(mem->exponent, 0, 1e-9);  // memory: as before
  EXPECT_NEAR(mem->value, 50e6, 5e6);
}

TEST(ProfileTest, UnsizedShardsIgnoreUnits) {
  ProfileBook book;
  for (int i = 0; i < 10; ++i) book.Learn(Shard("one", "s", 0, 30));
  auto a = book.Predict("one", "s", Quantity::kWall, 0);
  auto b = book.Predict("one", "s", Quantity::kWall, 123456);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size_model, SizeModel::kNone);
  EXPECT_DOUBLE_EQ(a->value, b->value);
  EXPECT_NEAR(a->value, 30, 0.01);
  EXPECT_EQ(b->units, 0);
}

TEST(ProfileTest, ItemShardsCountTheirItems) {
  HistoryRecord h = Shard("it", "s", 0, 1);
  h.items = 7;
  EXPECT_EQ(ShardUnits(h), 7);
  ShardRecord s;
  s.begin = 10;
  s.end = 110;
  EXPECT_EQ(ShardUnits(s), 100);
  s = {};
  s.items = {"a", "b"};
  EXPECT_EQ(ShardUnits(s), 2);
}

TEST(ProfileTest, AStepChangeIsFollowedWithinAFewHalfLives) {
  ProfileBook book;  // half-life 25 samples
  std::mt19937_64 rng(11);
  std::normal_distribution<double> noise(0, 0.1);
  for (int i = 0; i < 200; ++i) book.Learn(Shard("drift", "s", 0, 10 * std::exp(noise(rng))));
  EXPECT_NEAR(book.Predict("drift", "s", Quantity::kWall)->value, 10, 1);
  // The stage's code changed: it now takes three times as long.
  size_t inside = 0;
  for (int i = 0; i < 150; ++i) {
    const double wall = 30 * std::exp(noise(rng));
    auto e = book.Predict("drift", "s", Quantity::kWall);
    if (i >= 100) inside += wall >= e->lo && wall <= e->hi;
    // After one half-life, about half way (in log: sqrt(10 * 30)); after two, more.
    if (i == 25) {
      EXPECT_GT(e->value, 0.9 * std::sqrt(10.0 * 30)) << "after 25 samples";
    }
    if (i == 50) {
      EXPECT_GT(e->value, 20) << "after 50 samples";
    }
    if (i == 100) {
      EXPECT_NEAR(e->value, 30, 4.5) << "after 100 samples";
    }
    book.Learn(Shard("drift", "s", 0, wall));
  }
  // Once the old regime's residuals have left the window, the intervals cover again.
  EXPECT_GT(inside, 35u);
}

TEST(ProfileTest, AnOomSetsAMemoryFloor) {
  ProfileBook book;
  HistoryRecord oom = Shard("oom", "s", 1000, 3, 1, 0);
  oom.state = AttemptState::kOom;
  oom.grant = {1, 512ULL << 20};
  EXPECT_TRUE(book.Learn(oom));
  // An OOM alone: no estimate yet, but a floor.
  EXPECT_FALSE(book.Predict("oom", "s", Quantity::kMemory));
  auto floor = book.MemoryFloor("oom", "s");
  ASSERT_TRUE(floor);
  EXPECT_NEAR(*floor, 512.0 * (1 << 20), 1);
  // Successes measured lower (a different input): the estimate does not go under the floor.
  for (int i = 0; i < 5; ++i) book.Learn(Shard("oom", "s", 1000, 3, 1, 100e6));
  auto m = book.Predict("oom", "s", Quantity::kMemory);
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->floor);
  EXPECT_GE(m->value, 512.0 * (1 << 20) - 1);
  EXPECT_GE(m->lo, 512.0 * (1 << 20) - 1);
  EXPECT_GE(m->hi, m->value);
  // Other quantities are not affected.
  EXPECT_FALSE(book.Predict("oom", "s", Quantity::kWall)->floor);
  // After max_samples successes the OOM has aged out.
  ProfileOptions o;
  o.max_samples = 10;
  ProfileBook small(o);
  small.Learn(oom);
  for (int i = 0; i < 11; ++i) small.Learn(Shard("oom", "s", 1000, 3, 1, 100e6));
  EXPECT_FALSE(small.MemoryFloor("oom", "s"));
  EXPECT_NEAR(small.Predict("oom", "s", Quantity::kMemory)->value, 100e6, 1e6);
}

TEST(ProfileTest, MemoryIsBounded) {
  ProfileOptions o;
  o.max_samples = 20;
  o.max_profiles = 10;
  ProfileBook book(o);
  for (int i = 0; i < 100; ++i) book.Learn(Shard("b", "s", 10, 1 + i % 3));
  EXPECT_EQ(book.View("b", "s")->samples, 20u);
  EXPECT_EQ(book.View("b", "s")->learned, 100u);
  // Eleven more stages: the least recently used goes, and "b/s" was used last by View above
  // only if touched again; touch it so it survives.
  for (int i = 0; i < 11; ++i) {
    book.Learn(Shard("b", "s" + std::to_string(i), 10, 1));
    (void)book.Predict("b", "s", Quantity::kWall);
  }
  EXPECT_EQ(book.profiles(), 10u);
  EXPECT_TRUE(book.View("b", "s"));    // recently predicted: kept
  EXPECT_FALSE(book.View("b", "s0"));  // least recently used: dropped
  EXPECT_TRUE(book.View("b", "s10"));
}

TEST(ProfileTest, StartupIsLearnedPerBackend) {
  ProfileBook book;
  EXPECT_FALSE(book.PredictStartup("process"));
  for (double s : {0.05, 0.06, 0.04, 0.05}) book.LearnStartup("process", s);
  book.LearnStartup("libvirt", 20);
  book.LearnStartup("process", -1);  // ignored
  book.LearnStartup("process", std::nan(""));
  auto p = book.PredictStartup("process");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->samples, 4u);
  EXPECT_NEAR(p->value, 0.05, 0.01);
  EXPECT_FALSE(book.PredictStartup("libvirt"));  // one sample < min_samples
  EXPECT_EQ(book.Backends(), (std::vector<std::string>{"libvirt", "process"}));
}

TEST(ProfileTest, EveryQuantityIsLearnedAndZerosAreValues) {
  ProfileBook book;
  for (int i = 0; i < 5; ++i) {
    HistoryRecord h = Shard("q", "s", 0, 2, 1.5, 64e6, 4096, 0.25);
    h.bytes_read = 0;  // the process backend does not measure it
    book.Learn(h);
  }
  ShardEstimate e = book.Predict("q", "s");
  for (Quantity q : kAllQuantities) ASSERT_TRUE(e[q]) << QuantityName(q);
  EXPECT_NEAR(e.wall()->value, 2, 1e-6);
  EXPECT_NEAR(e.cpu()->value, 1.5, 1e-6);
  EXPECT_NEAR(e.memory()->value, 64e6, 1);
  EXPECT_NEAR(e[Quantity::kBytesWritten]->value, 4096, 1e-3);
  EXPECT_NEAR(e[Quantity::kCost]->value, 0.25, 1e-9);
  EXPECT_NEAR(e[Quantity::kBytesRead]->value, 0, 1e-6);
  EXPECT_EQ(QuantityName(Quantity::kMemory), "peak_memory_bytes");
}

// Whatever comes in (any state, zeros, sizes, OOMs, many stages), every answer is ordered,
// non-negative and rests on no more samples than kept, and the book stays within its bounds.
TEST(ProfileTest, PropertiesHoldOnRandomHistories) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    ProfileOptions o;
    o.min_samples = 1 + rng() % 5;
    o.max_samples = 2 + rng() % 60;
    o.max_profiles = 1 + rng() % 8;
    ProfileBook book(o);
    o = book.options();  // as clamped
    std::uniform_real_distribution<double> u01(0, 1);
    for (int i = 0; i < 600; ++i) {
      const std::string stage = "s" + std::to_string(rng() % 12);
      HistoryRecord h = Shard("p", stage, rng() % 3 == 0 ? 0 : std::exp(12 * u01(rng)),
                              rng() % 10 == 0 ? 0 : 1e3 * u01(rng), 50 * u01(rng),
                              rng() % 10 == 0 ? 0 : 1e10 * u01(rng), 1e9 * u01(rng), u01(rng));
      h.state = static_cast<AttemptState>(rng() % 8);
      h.grant.memory = rng() % 2 ? uint64_t(1e10 * u01(rng)) : 0;
      book.Learn(h);
      if (rng() % 7 == 0) book.LearnStartup("b" + std::to_string(rng() % 3), 10 * u01(rng));
      ASSERT_LE(book.profiles(), o.max_profiles);
      const double units = rng() % 2 ? 0 : std::exp(14 * u01(rng));
      ShardEstimate e = book.Predict("p", stage, units);
      for (Quantity q : kAllQuantities) {
        if (!e[q]) continue;
        SCOPED_TRACE(fmt::format("seed {} step {} {} {}", seed, i, stage, QuantityName(q)));
        ASSERT_TRUE(std::isfinite(e[q]->value) && std::isfinite(e[q]->lo) &&
                    std::isfinite(e[q]->hi));
        ASSERT_GE(e[q]->lo, 0);
        ASSERT_LE(e[q]->lo, e[q]->value);
        ASSERT_LE(e[q]->value, e[q]->hi);
        ASSERT_GE(e[q]->samples, o.min_samples);
        ASSERT_LE(e[q]->samples, o.max_samples);
      }
      if (auto v = book.View("p", stage)) {
        ASSERT_LE(v->samples, o.max_samples);
      }
    }
  }
}

// What a restart costs: the executor feeds the newest rows of every profile back in.
TEST(ProfileTest, LearningIsCheapEnoughToReplayHistoryAtStart) {
  ProfileBook book;
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> wall(2, 0.4);
  auto t0 = std::chrono::steady_clock::now();
  constexpr int kRows = 20'000;
  for (int i = 0; i < kRows; ++i) {
    book.Learn(Shard("wf" + std::to_string(i % 10), "s" + std::to_string(i % 100 / 10),
                     1000 + double(i % 7) * 100, wall(rng)));
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%d samples over 100 profiles learned in %.0f ms (%.1f us each)\n", kRows, s * 1e3,
              s * 1e6 / kRows);
  EXPECT_LT(s, 5.0);
}

// ---- WfCommons executions ----------------------------------------------------------------

std::string TracesDir() {
  const char* env = std::getenv("AUGUR_TRACES_DIR");
  return env != nullptr ? env : "/work/shared/traces";
}

// Each WfCommons file is one execution of a workflow; tasks of one category are the shards of
// one stage, their input bytes the shard's size. The tasks are learned in file order, each
// predicted just before it is learned.
TEST(ProfileTest, IntervalsOnTheWfCommonsExecutions) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(TracesDir(), ec)) {
    if (e.path().filename().string().starts_with("wfcommons-")) files.push_back(e.path());
  }
  if (files.empty())
    GTEST_SKIP() << "no WfCommons traces in " << TracesDir() << " (set AUGUR_TRACES_DIR)";
  std::sort(files.begin(), files.end());
  size_t all_checked = 0, all_inside = 0;
  for (const fs::path& path : files) {
    std::ifstream in(path);
    auto j = nlohmann::json::parse(in, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << path;
    ProfileBook book;
    std::map<std::string, std::pair<size_t, size_t>> per;  // category -> (checked, inside)
    std::map<std::string, std::pair<size_t, size_t>> mem;
    for (const auto& t : j["workflow"]["tasks"]) {
      const std::string cat = t.value("category", "");
      double input = 0;
      for (const auto& f : t.value("files", nlohmann::json::array())) {
        if (f.value("link", "") == "input") input += f.value("sizeInBytes", 0.0);
      }
      HistoryRecord h = Shard(path.stem().string(), cat, 0, t.value("runtimeInSeconds", 0.0));
      h.range_end = uint64_t(input);
      h.cpu_seconds = h.wall_seconds * t.value("avgCPU", 100.0) / 100;
      h.peak_memory_bytes = uint64_t(t.value("memoryInBytes", 0.0));
      const double units = ShardUnits(h);
      if (auto e = book.Predict(h.workflow_name, cat, Quantity::kWall, units)) {
        ++per[cat].first;
        per[cat].second += h.wall_seconds >= e->lo && h.wall_seconds <= e->hi;
      }
      if (h.peak_memory_bytes > 0) {
        if (auto e = book.Predict(h.workflow_name, cat, Quantity::kMemory, units)) {
          const double m = double(h.peak_memory_bytes);
          ++mem[cat].first;
          mem[cat].second += m >= e->lo && m <= e->hi;
        }
      }
      book.Learn(h);
    }
    size_t checked = 0, inside = 0;
    std::string line;
    for (const auto& [cat, ci] : per) {
      checked += ci.first;
      inside += ci.second;
      line += fmt::format(" {} {}/{}", cat, ci.second, ci.first);
    }
    size_t mchecked = 0, minside = 0;
    for (const auto& [cat, ci] : mem) {
      mchecked += ci.first;
      minside += ci.second;
    }
    std::printf("%s: wall %zu/%zu inside the 80 %% interval (%.2f):%s; memory %zu/%zu\n",
                path.filename().c_str(), inside, checked,
                checked ? double(inside) / double(checked) : 0.0, line.c_str(), minside, mchecked);
    all_checked += checked + mchecked;
    all_inside += inside + minside;
  }
  ASSERT_GT(all_checked, 100u);
  const double coverage = double(all_inside) / double(all_checked);
  std::printf("WfCommons: %zu/%zu one-step-ahead actuals inside (%.3f)\n", all_inside, all_checked,
              coverage);
  // A few hundred tasks in small categories (most in the t regime): a loose band around 80 %.
  EXPECT_GT(coverage, 0.65);
  EXPECT_LT(coverage, 0.97);
}

}  // namespace
}  // namespace augur::workflow
