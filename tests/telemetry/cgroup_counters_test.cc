#include "telemetry/cgroup_counters.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace augur::telemetry {
namespace {

using Sample = CgroupCounters::Sample;

// A hierarchy the test edits between updates; Walk() lists it like CgroupFs::Walk would.
class FakeTree {
 public:
  void Add(uint64_t id, std::string path) {
    int depth = 0;
    for (char c : path) depth += c == '/';
    if (path == "/") depth = 0;
    dirs_[id] = CgroupDir{std::move(path), id, depth};
  }
  void Remove(uint64_t id) { dirs_.erase(id); }
  CgroupCounters::WalkFn Walker() {
    return [this] {
      ++walks;
      std::vector<CgroupDir> out;
      for (const auto& [id, dir] : dirs_) out.push_back(dir);
      return out;
    };
  }
  int walks = 0;

 private:
  std::map<uint64_t, CgroupDir> dirs_;
};

std::map<std::string, CgroupCounters::Values> Totals(const CgroupCounters& c) {
  std::map<std::string, CgroupCounters::Values> out;
  c.ForEach([&](const std::string& path, const CgroupCounters::Values& v) { out[path] = v; });
  return out;
}

CgroupCounters::Options Opts(int depth, size_t max_series, int forget_after_idle = 100) {
  CgroupCounters::Options o;
  o.depth = depth;
  o.max_series = max_series;
  o.forget_after_idle = forget_after_idle;
  return o;
}

TEST(CgroupCountersTest, AncestorAtDepth) {
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/a/b/c", 0), "/");
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/a/b/c", 1), "/a");
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/a/b/c", 2), "/a/b");
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/a/b/c", 3), "/a/b/c");
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/a/b/c", 9), "/a/b/c");
  EXPECT_EQ(CgroupCounters::AncestorAtDepth("/", 2), "/");
}

TEST(CgroupCountersTest, AccumulatesDeltasPerPath) {
  FakeTree tree;
  tree.Add(1, "/");
  tree.Add(10, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10));
  c.Update(std::vector<Sample>{{1, {100, 0}}, {10, {50, 5}}});
  c.Update(std::vector<Sample>{{1, {130, 0}}, {10, {80, 6}}});
  const auto t = Totals(c);
  EXPECT_EQ(t.at("/")[0], 130u);
  EXPECT_EQ(t.at("/a")[0], 80u);
  EXPECT_EQ(t.at("/a")[1], 6u);
  EXPECT_EQ(tree.walks, 1);  // both ids were known after the first walk
}

TEST(CgroupCountersTest, FoldsDeepCgroupsIntoTheirAncestor) {
  FakeTree tree;
  tree.Add(10, "/system.slice");
  tree.Add(11, "/system.slice/ssh.service");
  tree.Add(12, "/system.slice/ssh.service/child");
  CgroupCounters c(tree.Walker(), Opts(1, 10));
  c.Update(std::vector<Sample>{{10, {1, 0}}, {11, {2, 0}}, {12, {4, 0}}});
  const auto t = Totals(c);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t.at("/system.slice")[0], 7u);
}

TEST(CgroupCountersTest, UnknownIdsGoToOtherAndWalkOnlyOncePerUpdate) {
  FakeTree tree;
  tree.Add(10, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10));
  c.Update(std::vector<Sample>{{10, {1, 0}}, {98, {2, 0}}, {99, {3, 0}}});
  EXPECT_EQ(tree.walks, 1);
  EXPECT_EQ(Totals(c).at("/other")[0], 5u);
  // Ids already filed under /other do not walk again.
  c.Update(std::vector<Sample>{{10, {1, 0}}, {98, {4, 0}}, {99, {3, 0}}});
  EXPECT_EQ(tree.walks, 1);
  EXPECT_EQ(Totals(c).at("/other")[0], 7u);
}

TEST(CgroupCountersTest, NewCgroupTriggersAWalk) {
  FakeTree tree;
  tree.Add(10, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10));
  c.Update(std::vector<Sample>{{10, {1, 0}}});
  tree.Add(20, "/b");
  c.Update(std::vector<Sample>{{10, {1, 0}}, {20, {9, 0}}});
  EXPECT_EQ(tree.walks, 2);
  EXPECT_EQ(Totals(c).at("/b")[0], 9u);
  EXPECT_FALSE(Totals(c).contains("/other"));
}

TEST(CgroupCountersTest, OverflowIdIsOtherWithoutWalking) {
  FakeTree tree;
  CgroupCounters c(tree.Walker(), Opts(2, 10));
  c.Update(std::vector<Sample>{{CgroupCounters::kOverflowId, {7, 0}}});
  EXPECT_EQ(tree.walks, 0);
  EXPECT_EQ(Totals(c).at("/other")[0], 7u);
}

TEST(CgroupCountersTest, CapsDistinctPathsAndSendsTheRestToOther) {
  FakeTree tree;
  tree.Add(1, "/a");
  tree.Add(2, "/b");
  tree.Add(3, "/c");
  CgroupCounters c(tree.Walker(), Opts(2, 2));
  c.Update(std::vector<Sample>{{1, {1, 0}}, {2, {2, 0}}, {3, {4, 0}}});
  const auto t = Totals(c);
  EXPECT_EQ(t.size(), 3u);  // two named paths plus /other
  EXPECT_EQ(t.at("/a")[0] + t.at("/b")[0] + t.at("/other")[0], 7u);
}

TEST(CgroupCountersTest, NeverGoesBackwards) {
  FakeTree tree;
  tree.Add(1, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10));
  c.Update(std::vector<Sample>{{1, {100, 0}}});
  // A torn read or an over-credited running slice: lower than before.
  c.Update(std::vector<Sample>{{1, {90, 0}}});
  EXPECT_EQ(Totals(c).at("/a")[0], 100u);
  // Only growth past the high-water mark counts.
  c.Update(std::vector<Sample>{{1, {120, 0}}});
  EXPECT_EQ(Totals(c).at("/a")[0], 120u);
}

TEST(CgroupCountersTest, ForgetsIdleIdsAndContinuesThePathWhenTheyReturn) {
  FakeTree tree;
  tree.Add(1, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10, /*forget_after_idle=*/2));
  EXPECT_TRUE(c.Update(std::vector<Sample>{{1, {10, 0}}}).empty());
  EXPECT_TRUE(c.Update(std::vector<Sample>{{1, {10, 0}}}).empty());
  EXPECT_EQ(c.Update(std::vector<Sample>{{1, {10, 0}}}), std::vector<uint64_t>{1});
  // The caller deleted the map entry; the program re-creates it from zero.
  c.Update(std::vector<Sample>{});
  c.Update(std::vector<Sample>{{1, {5, 0}}});
  EXPECT_EQ(Totals(c).at("/a")[0], 15u);
}

TEST(CgroupCountersTest, NeverForgetsPinnedIds) {
  FakeTree tree;
  tree.Add(1, "/a");
  CgroupCounters c(tree.Walker(), Opts(2, 10, /*forget_after_idle=*/1));
  // Time held outside the map (not yet flushed) does not change while the CPU idles.
  const std::vector<Sample> pinned = {{1, {10, 0}, /*pinned=*/true}};
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(c.Update(pinned).empty());
  EXPECT_EQ(Totals(c).at("/a")[0], 10u);
}

TEST(CgroupCountersTest, RemovedCgroupKeepsItsTotalUntilItsSlotIsNeeded) {
  FakeTree tree;
  tree.Add(1, "/a");
  tree.Add(2, "/b");
  CgroupCounters c(tree.Walker(), Opts(2, 1, /*forget_after_idle=*/1));
  c.Update(std::vector<Sample>{{1, {10, 0}}});
  // /a's cgroup goes away and its entry is forgotten; its total stays reported...
  tree.Remove(1);
  EXPECT_EQ(c.Update(std::vector<Sample>{{1, {10, 0}}}), std::vector<uint64_t>{1});
  c.Update(std::vector<Sample>{});
  EXPECT_EQ(Totals(c).at("/a")[0], 10u);
  // ...until a new path needs the only slot.
  c.Update(std::vector<Sample>{{2, {3, 0}}});
  const auto t = Totals(c);
  EXPECT_FALSE(t.contains("/a"));
  EXPECT_EQ(t.at("/b")[0], 3u);
}

}  // namespace
}  // namespace augur::telemetry
