// The byte cap on kept outputs (src/mesh/kept_outputs.h; docs/MESH.md, "Outputs after a
// takeover"): oldest first, no more than needed, and the index's sums right.
#include "mesh/kept_outputs.h"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

std::vector<std::string> Paths(const std::vector<KeptFile>& files) {
  std::vector<std::string> p;
  for (const KeptFile& f : files) p.push_back(f.path);
  return p;
}

TEST(KeptOutputs, OverTheCapTheOldestGoFirstAndNoMoreThanNeeded) {
  KeptOutputs k(100);
  k.Add({"/k/a/3.out", 40, 30});
  k.Add({"/k/a/1.out", 40, 10});
  k.Add({"/k/b/2.out", 40, 20});
  EXPECT_EQ(k.bytes(), 120u);
  // 120 > 100: the one kept at 10 goes, and that is enough.
  std::vector<KeptFile> gone = k.Evict();
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], (KeptFile{"/k/a/1.out", 40, 10}));
  EXPECT_EQ(k.bytes(), 80u);
  EXPECT_EQ(k.files(), 2u);
  EXPECT_TRUE(k.Evict().empty());
  // A big newcomer pushes out both older ones; one larger than the cap goes itself too.
  k.Add({"/k/c/4.out", 90, 40});
  EXPECT_EQ(Paths(k.Evict()), (std::vector<std::string>{"/k/b/2.out", "/k/a/3.out"}));
  k.Add({"/k/c/5.out", 500, 50});
  EXPECT_EQ(Paths(k.Evict()), (std::vector<std::string>{"/k/c/4.out", "/k/c/5.out"}));
  EXPECT_EQ(k.bytes(), 0u);
  EXPECT_EQ(k.files(), 0u);
}

TEST(KeptOutputs, ZeroMeansNoCapAndTiesGoByPath) {
  KeptOutputs none(0);
  none.Add({"/k/a", 1ULL << 50, 1});
  EXPECT_TRUE(none.Evict().empty());
  KeptOutputs k(10);
  k.Add({"/k/b", 10, 5});
  k.Add({"/k/a", 10, 5});
  EXPECT_EQ(Paths(k.Evict()), std::vector<std::string>{"/k/a"});
}

TEST(KeptOutputs, RemovedAndReplacedFilesLeaveTheSums) {
  KeptOutputs k(100);
  k.Add({"/k/w1/a.out", 30, 1});
  k.Add({"/k/w1/b.out", 30, 2});
  k.Add({"/k/w10/c.out", 30, 3});  // not under /k/w1
  k.Add({"/k/w1/a.out", 50, 4});   // kept again: replaces, now the newest
  EXPECT_EQ(k.bytes(), 110u);
  EXPECT_EQ(k.files(), 3u);
  EXPECT_FALSE(k.Remove("/k/nothing"));
  EXPECT_EQ(k.RemoveUnder("/k/w1"), 2u);
  EXPECT_EQ(k.bytes(), 30u);
  EXPECT_TRUE(k.Remove("/k/w10/c.out"));
  EXPECT_EQ(k.bytes(), 0u);
  EXPECT_EQ(k.files(), 0u);
}

// Random adds (some replacing), removals and evictions, checked against a plain list: after
// each Evict the total is within the cap, every file evicted is older than every file left,
// the last one evicted was needed (without evicting it the total was over the cap), and
// bytes() is the sum of what is left.
TEST(KeptOutputs, PropertyOldestFirstAndMinimalAgainstAPlainList) {
  int seeds = 200;
  if (const char* more = std::getenv("AUGUR_PROPERTY_SEEDS")) seeds = std::atoi(more);
  for (int seed = 0; seed < seeds; ++seed) {
    std::mt19937_64 rng(seed);
    const uint64_t cap = 1 + rng() % 1000;
    KeptOutputs k(cap);
    std::vector<KeptFile> model;
    auto older = [](const KeptFile& a, const KeptFile& b) {
      return std::pair(a.kept_ns, a.path) < std::pair(b.kept_ns, b.path);
    };
    for (int step = 0; step < 300; ++step) {
      const std::string path = fmt::format("/k/w{}/{}.out", rng() % 4, rng() % 20);
      switch (rng() % 5) {
        case 0:
        case 1: {
          KeptFile f{path, rng() % 400, int64_t(rng() % 50)};
          std::erase_if(model, [&](const KeptFile& m) { return m.path == path; });
          model.push_back(f);
          k.Add(f);
          break;
        }
        case 2: {
          const bool had = std::erase_if(model, [&](const KeptFile& m) { return m.path == path; });
          EXPECT_EQ(k.Remove(path), had) << "seed " << seed;
          break;
        }
        case 3: {
          const std::string dir = fmt::format("/k/w{}", rng() % 4);
          const size_t n = std::erase_if(
              model, [&](const KeptFile& m) { return m.path.starts_with(dir + "/"); });
          EXPECT_EQ(k.RemoveUnder(dir), n) << "seed " << seed;
          break;
        }
        default: {
          uint64_t before = 0;
          for (const KeptFile& m : model) before += m.bytes;
          std::vector<KeptFile> gone = k.Evict();
          std::sort(model.begin(), model.end(), older);
          ASSERT_LE(gone.size(), model.size()) << "seed " << seed;
          // The model's oldest, in order.
          EXPECT_TRUE(std::equal(gone.begin(), gone.end(), model.begin())) << "seed " << seed;
          uint64_t evicted = 0;
          for (const KeptFile& g : gone) evicted += g.bytes;
          EXPECT_LE(before - evicted, cap) << "seed " << seed;
          if (!gone.empty()) {
            EXPECT_GT(before - evicted + gone.back().bytes, cap) << "seed " << seed;
          } else {
            EXPECT_LE(before, cap) << "seed " << seed;
          }
          model.erase(model.begin(), model.begin() + gone.size());
        }
      }
      uint64_t sum = 0;
      for (const KeptFile& m : model) sum += m.bytes;
      ASSERT_EQ(k.bytes(), sum) << "seed " << seed << " step " << step;
      ASSERT_EQ(k.files(), model.size()) << "seed " << seed << " step " << step;
    }
  }
}

}  // namespace
}  // namespace augur::mesh
