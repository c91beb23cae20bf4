// Fixture tests for CgroupCollector on a v2-only tree and on a v1/hybrid tree laid out like
// a Debian host with systemd's hybrid mode.
#include "telemetry/cgroup_collector.h"

#include <gtest/gtest.h>

#include <string>

#include "telemetry/recording_sink.h"
#include "telemetry/temp_tree.h"

namespace augur::telemetry {
namespace {

constexpr int64_t kTs = 1700000000000000000;

void ExpectValue(const RecordingSink& sink, const std::string& key, double value) {
  std::optional<double> got = sink.Get(key);
  ASSERT_TRUE(got.has_value()) << "missing " << key;
  EXPECT_DOUBLE_EQ(*got, value) << key;
}

std::string Key(std::string_view name, std::string_view cgroup) {
  return std::string(name) + "{cgroup=\"" + std::string(cgroup) + "\",source=\"procfs\"}";
}

void WriteV2Tree(const TempTree& t) {
  t.Write("/proc/self/mountinfo",
          "22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
          "25 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
          "cgroup2 rw,nsdelegate,memory_recursiveprot\n");
  t.Write("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  // The v2 root has cpu.stat but no memory.current or memory.max.
  t.Write("/sys/fs/cgroup/cpu.stat",
          "usage_usec 5000000\nuser_usec 3000000\nsystem_usec 2000000\n");
  t.Write("/sys/fs/cgroup/system.slice/cpu.stat",
          "usage_usec 2000000\nuser_usec 1500000\nsystem_usec 500000\nnr_periods 10\n"
          "nr_throttled 2\nthrottled_usec 250000\nnr_bursts 0\nburst_usec 0\n");
  t.Write("/sys/fs/cgroup/system.slice/memory.current", "1048576\n");
  t.Write("/sys/fs/cgroup/system.slice/memory.max", "max\n");
  t.Write("/sys/fs/cgroup/user.slice/cpu.stat", "usage_usec 1500\n");
  t.Write("/sys/fs/cgroup/user.slice/memory.current", "4096\n");
  t.Write("/sys/fs/cgroup/user.slice/memory.max", "2147483648\n");
  t.Write("/sys/fs/cgroup/user.slice/user-1000.slice/session-1.scope/cpu.stat", "usage_usec 700\n");
}

TEST(CgroupCollectorTest, V2OnlyTree) {
  TempTree t;
  WriteV2Tree(t);
  CgroupCollector c(t.root());
  EXPECT_EQ(c.name(), "procfs_cgroup");
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.malformed_lines(), 0u);

  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/"), 5.0);
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/system.slice"), 2.0);
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/user.slice"), 0.0015);
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/user.slice/user-1000.slice/session-1.scope"),
              0.0007);
  ExpectValue(sink, Key("cgroup_cpu_throttled_seconds_total", "/system.slice"), 0.25);
  EXPECT_FALSE(sink.Has(Key("cgroup_cpu_throttled_seconds_total", "/user.slice")));
  ExpectValue(sink, Key("cgroup_memory_bytes", "/system.slice"), 1048576);
  ExpectValue(sink, Key("cgroup_memory_bytes", "/user.slice"), 4096);
  EXPECT_FALSE(sink.Has(Key("cgroup_memory_bytes", "/")));
  // memory.max "max" means no limit: no series, rather than a huge number.
  EXPECT_FALSE(sink.Has(Key("cgroup_memory_limit_bytes", "/system.slice")));
  ExpectValue(sink, Key("cgroup_memory_limit_bytes", "/user.slice"), 2147483648.0);
}

TEST(CgroupCollectorTest, DepthAndCountLimitsBoundTheSeries) {
  TempTree t;
  WriteV2Tree(t);
  {
    CgroupCollector c(t.root(), /*max_depth=*/1, /*max_cgroups=*/256);
    RecordingSink sink;
    ASSERT_TRUE(c.Collect(kTs, sink).ok());
    EXPECT_EQ(sink.KeysNamed("cgroup_cpu_seconds_total").size(), 3u);  // /, system, user
  }
  {
    CgroupCollector c(t.root(), /*max_depth=*/3, /*max_cgroups=*/2);
    RecordingSink sink;
    ASSERT_TRUE(c.Collect(kTs, sink).ok());
    EXPECT_EQ(sink.KeysNamed("cgroup_cpu_seconds_total"),
              (std::vector<std::string>{Key("cgroup_cpu_seconds_total", "/"),
                                        Key("cgroup_cpu_seconds_total", "/system.slice")}));
  }
}

void WriteHybridTree(const TempTree& t) {
  // Like this project's build host: each v1 controller on its own mount, systemd's named
  // hierarchy, and a unified tree offering only hugetlb.
  t.Write("/proc/self/mountinfo",
          "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
          "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
          "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
          "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
          "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
          "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
          "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  t.Write("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
  // The unified tree's cpu.stat must not be used: cpuacct holds CPU usage on this host.
  t.Write("/sys/fs/cgroup/unified/cpu.stat", "usage_usec 1\n");
  t.Write("/sys/fs/cgroup/cpuacct/cpuacct.usage", "41374700260\n");
  t.Write("/sys/fs/cgroup/cpuacct/app/cpuacct.usage", "1500000000\n");
  t.Write("/sys/fs/cgroup/cpu/cpu.stat",
          "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n");
  t.Write("/sys/fs/cgroup/cpu/app/cpu.stat",
          "nr_periods 100\nnr_throttled 20\nthrottled_time 3000000000\n");
  t.Write("/sys/fs/cgroup/memory/memory.usage_in_bytes", "37724160\n");
  t.Write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n");
  t.Write("/sys/fs/cgroup/memory/app/memory.usage_in_bytes", "8192\n");
  t.Write("/sys/fs/cgroup/memory/app/memory.limit_in_bytes", "536870912\n");
}

TEST(CgroupCollectorTest, V1HybridTree) {
  TempTree t;
  WriteHybridTree(t);
  CgroupCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(c.malformed_lines(), 0u);

  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/"), 41.37470026);
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/app"), 1.5);
  ExpectValue(sink, Key("cgroup_cpu_throttled_seconds_total", "/"), 0.0);
  ExpectValue(sink, Key("cgroup_cpu_throttled_seconds_total", "/app"), 3.0);
  ExpectValue(sink, Key("cgroup_memory_bytes", "/"), 37724160);
  ExpectValue(sink, Key("cgroup_memory_bytes", "/app"), 8192);
  // The root's "limit" is the kernel's no-limit value: omitted.
  EXPECT_FALSE(sink.Has(Key("cgroup_memory_limit_bytes", "/")));
  ExpectValue(sink, Key("cgroup_memory_limit_bytes", "/app"), 536870912);
  EXPECT_EQ(sink.KeysNamed("cgroup_cpu_seconds_total").size(), 2u);
}

TEST(CgroupCollectorTest, V1CoMountedCpuCpuacct) {
  TempTree t;
  t.Write("/proc/self/mountinfo",
          "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n");
  t.Write("/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage", "2000000000\n");
  t.Write("/sys/fs/cgroup/cpu,cpuacct/cpu.stat", "nr_periods 1\nthrottled_time 5000\n");
  CgroupCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/"), 2.0);
  ExpectValue(sink, Key("cgroup_cpu_throttled_seconds_total", "/"), 5e-6);
  EXPECT_TRUE(sink.KeysNamed("cgroup_memory_bytes").empty());  // no memory hierarchy
}

TEST(CgroupCollectorTest, MalformedValuesAreSkippedAndCounted) {
  TempTree t;
  WriteHybridTree(t);
  t.Write("/sys/fs/cgroup/cpuacct/app/cpuacct.usage", "garbage\n");
  t.Write("/sys/fs/cgroup/cpu/app/cpu.stat", "throttled_time 12x\nnr_periods\n");
  t.Write("/sys/fs/cgroup/memory/app/memory.usage_in_bytes", "");
  t.Write("/sys/fs/cgroup/memory/app/memory.limit_in_bytes", "-1\n");
  CgroupCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.malformed_lines(), 4u);
  EXPECT_FALSE(sink.Has(Key("cgroup_cpu_seconds_total", "/app")));
  EXPECT_FALSE(sink.Has(Key("cgroup_cpu_throttled_seconds_total", "/app")));
  EXPECT_FALSE(sink.Has(Key("cgroup_memory_bytes", "/app")));
  EXPECT_FALSE(sink.Has(Key("cgroup_memory_limit_bytes", "/app")));
  // The good root values are still there.
  ExpectValue(sink, Key("cgroup_cpu_seconds_total", "/"), 41.37470026);
  ExpectValue(sink, Key("cgroup_memory_bytes", "/"), 37724160);
}

TEST(CgroupCollectorTest, OversizedCgroupPathIsDroppedNotEmitted) {
  TempTree t;
  WriteV2Tree(t);
  std::string deep = "/" + std::string(240, 'x');
  t.Write("/sys/fs/cgroup" + deep + "/cpu.stat", "usage_usec 1\n");
  CgroupCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.oversized_keys(), 1u);
  for (const auto& [k, v] : sink.last()) {
    EXPECT_LE(k.size(), SeriesKey::kMaxKeyLength) << k;
  }
}

TEST(CgroupCollectorTest, MissingMountinfoAndNoHierarchies) {
  TempTree t;
  CgroupCollector missing(t.root());
  RecordingSink sink;
  Status s = missing.Collect(kTs, sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("/proc/self/mountinfo"), std::string::npos);

  t.Write("/proc/self/mountinfo", "36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
  CgroupCollector none(t.root());
  Status first = none.Collect(kTs, sink);
  EXPECT_TRUE(first.IsUnavailable()) << first.ToString();
  EXPECT_TRUE(none.Collect(kTs + 1, sink).ok());
  EXPECT_TRUE(sink.points().empty());
}

TEST(CgroupCollectorTest, VanishedHierarchyIsReportedThenRediscovered) {
  TempTree t;
  WriteV2Tree(t);
  CgroupCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  t.Remove("/sys/fs/cgroup");
  Status s = c.Collect(kTs + 1, sink);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/sys/fs/cgroup"), std::string::npos) << s.ToString();
  WriteV2Tree(t);
  RecordingSink again;
  ASSERT_TRUE(c.Collect(kTs + 2, again).ok());
  EXPECT_TRUE(again.Has(Key("cgroup_cpu_seconds_total", "/system.slice")));
}

}  // namespace
}  // namespace augur::telemetry
