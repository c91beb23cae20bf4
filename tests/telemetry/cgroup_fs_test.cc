#include "telemetry/cgroup_fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "telemetry/temp_tree.h"

namespace augur::telemetry {
namespace {

// A Debian-style hybrid host: v1 controllers (cpu and cpuacct co-mounted), systemd's named
// hierarchy, and a unified tree that only offers hugetlb; plus non-cgroup noise.
constexpr std::string_view kHybridMountinfo =
    "22 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "31 22 0:28 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 "
    "cgroup2 rw,nsdelegate\n"
    "33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup "
    "cgroup rw,xattr,name=systemd\n"
    "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - "
    "cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup "
    "cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup "
    "cgroup rw,pids\n";

const CgroupMount* FindMount(const CgroupFs& fs, std::string_view suffix) {
  for (const CgroupMount& m : fs.mounts()) {
    if (m.mount_point.ends_with(suffix)) return &m;
  }
  return nullptr;
}

TEST(CgroupFsTest, DiscoversHybridHierarchies) {
  TempTree t;
  t.Write("/mountinfo", kHybridMountinfo);
  t.Write("/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();

  ASSERT_EQ(fs->mounts().size(), 5u);  // unified, systemd, cpu+cpuacct, memory, pids
  const CgroupMount* cpu = fs->ForController("cpu");
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->mount_point, t.Path("/sys/fs/cgroup/cpu,cpuacct"));
  EXPECT_EQ(cpu->version, 1);
  EXPECT_EQ(cpu->controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(fs->ForController("cpuacct"), cpu);

  const CgroupMount* mem = fs->ForController("memory");
  ASSERT_NE(mem, nullptr);
  EXPECT_EQ(mem->mount_point, t.Path("/sys/fs/cgroup/memory"));

  // Mount options (rw, xattr) are not controllers; the named hierarchy keeps its name.
  const CgroupMount* systemd = FindMount(*fs, "/systemd");
  ASSERT_NE(systemd, nullptr);
  EXPECT_EQ(systemd->controllers, (std::vector<std::string>{"name=systemd"}));

  const CgroupMount* unified = fs->Unified();
  ASSERT_NE(unified, nullptr);
  EXPECT_EQ(unified->version, 2);
  EXPECT_EQ(unified->mount_point, t.Path("/sys/fs/cgroup/unified"));
  EXPECT_EQ(unified->controllers, (std::vector<std::string>{"hugetlb"}));
  EXPECT_EQ(fs->ForController("hugetlb"), unified);
  EXPECT_EQ(fs->ForController("io"), nullptr);
}

TEST(CgroupFsTest, DiscoversV2Only) {
  TempTree t;
  t.Write("/mountinfo",
          "25 30 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
          "cgroup2 rw,nsdelegate,memory_recursiveprot\n");
  t.Write("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  ASSERT_EQ(fs->mounts().size(), 1u);
  const CgroupMount* v2 = fs->Unified();
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(v2->mount_point, t.Path("/sys/fs/cgroup"));
  EXPECT_EQ(fs->ForController("memory"), v2);
  EXPECT_EQ(fs->ForController("cpu"), v2);
  EXPECT_EQ(fs->ForController("cpuacct"), nullptr);  // v2 has no cpuacct
  EXPECT_EQ(v2->controllers.size(), 8u);
}

TEST(CgroupFsTest, UnescapesMountPaths) {
  TempTree t;
  // The kernel writes ' ' as \040, '\t' as \011 and '\' as \134 in mountinfo paths.
  t.Write("/mountinfo", "40 31 0:40 / /cg/my\\040tree\\011x\\134y rw - cgroup2 cgroup2 rw\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  ASSERT_EQ(fs->mounts().size(), 1u);
  EXPECT_EQ(fs->mounts()[0].mount_point, t.Path("/cg/my tree\tx\\y"));
}

TEST(CgroupFsTest, SkipsMalformedLinesAndKeepsGoodOnes) {
  TempTree t;
  t.Write("/mountinfo",
          "garbage\n"
          "\n"
          "41 31 0:41 / /sys/fs/cgroup/memory rw - cgroup\n"                // truncated
          "42 31 0:42 / /sys/fs/cgroup/x rw shared:1 cgroup cgroup rw\n"    // no separator
          "43 31 0:43 / /sys/fs/cgroup/none rw - cgroup cgroup rw,xattr\n"  // no controller
          "44 31 0:44 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  ASSERT_EQ(fs->mounts().size(), 1u);
  EXPECT_EQ(fs->mounts()[0].controllers, (std::vector<std::string>{"memory"}));
  EXPECT_EQ(fs->Unified(), nullptr);
}

TEST(CgroupFsTest, PrefersMountOfWholeHierarchy) {
  TempTree t;
  // A container runtime bind-mounted a subtree first; the whole hierarchy comes later.
  t.Write("/mountinfo",
          "50 31 0:50 /kubepods/pod1 /var/lib/x/cgroup rw - cgroup cgroup rw,memory\n"
          "51 31 0:50 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
          "52 31 0:50 / /mnt/again rw - cgroup cgroup rw,memory\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value());
  ASSERT_EQ(fs->mounts().size(), 1u);
  EXPECT_EQ(fs->mounts()[0].mount_point, t.Path("/sys/fs/cgroup/memory"));
}

TEST(CgroupFsTest, MissingMountinfoIsNotFoundNamingTheFile) {
  TempTree t;
  auto fs = CgroupFs::Discover(t.Path("/nope/mountinfo"), t.root());
  ASSERT_FALSE(fs.has_value());
  EXPECT_TRUE(fs.error().IsNotFound()) << fs.error().ToString();
  EXPECT_NE(fs.error().message().find("/nope/mountinfo"), std::string::npos);
}

TEST(CgroupFsTest, HostWithoutCgroupsIsEmptyNotError) {
  TempTree t;
  t.Write("/mountinfo", "22 28 0:20 / /sys rw - sysfs sysfs rw\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value());
  EXPECT_TRUE(fs->mounts().empty());
  EXPECT_EQ(fs->ForController("cpu"), nullptr);
  EXPECT_EQ(fs->Unified(), nullptr);
}

uint64_t InodeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

std::vector<std::string> Paths(const std::vector<CgroupDir>& dirs) {
  std::vector<std::string> out;
  for (const CgroupDir& d : dirs) out.push_back(d.path);
  return out;
}

TEST(CgroupFsTest, WalkIsBreadthFirstWithDepthAndCountLimits) {
  TempTree t;
  t.Write("/mountinfo", "25 30 0:23 / /cg rw - cgroup2 cgroup2 rw\n");
  t.Write("/cg/cgroup.procs", "1\n");  // files are not cgroups
  t.Write("/cg/b.slice/cgroup.procs", "");
  t.Write("/cg/a.slice/x/cgroup.procs", "");
  t.Write("/cg/a.slice/y/deep/cgroup.procs", "");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value());
  const CgroupMount& m = *fs->Unified();

  std::vector<CgroupDir> all = fs->Walk(m, 10);
  EXPECT_EQ(Paths(all), (std::vector<std::string>{"/", "/a.slice", "/b.slice", "/a.slice/x",
                                                  "/a.slice/y", "/a.slice/y/deep"}));
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0].depth, 0);
  EXPECT_EQ(all[0].id, InodeOf(t.Path("/cg")));
  EXPECT_EQ(all[4].depth, 2);
  EXPECT_EQ(all[4].id, InodeOf(t.Path("/cg/a.slice/y")));
  EXPECT_EQ(all[5].depth, 3);

  EXPECT_EQ(Paths(fs->Walk(m, 0)), (std::vector<std::string>{"/"}));
  EXPECT_EQ(Paths(fs->Walk(m, 1)), (std::vector<std::string>{"/", "/a.slice", "/b.slice"}));
  EXPECT_EQ(Paths(fs->Walk(m, 10, 4)),
            (std::vector<std::string>{"/", "/a.slice", "/b.slice", "/a.slice/x"}));
  EXPECT_TRUE(fs->Walk(m, 10, 0).empty());

  CgroupMount gone{t.Path("/does-not-exist"), 2, {}};
  EXPECT_TRUE(fs->Walk(gone, 3).empty());
}

TEST(CgroupFsTest, CgroupOfPidMatchesHierarchies) {
  TempTree t;
  t.Write("/mountinfo", kHybridMountinfo);
  t.Write("/sys/fs/cgroup/unified/cgroup.controllers", "\n");
  t.Write("/proc/4242/cgroup",
          "12:pids:/system.slice/foo.service\n"
          "11:memory:/system.slice/foo.service\n"
          "garbage line without colons\n"
          "4:cpu,cpuacct:/system.slice/foo.service\n"
          "1:name=systemd:/system.slice/foo.service\n"
          "0::/system.slice/odd:name.service (deleted)\n");
  auto fs = CgroupFs::Discover(t.Path("/mountinfo"), t.root());
  ASSERT_TRUE(fs.has_value());

  auto cpu = fs->CgroupOfPid(*fs->ForController("cpuacct"), 4242);
  ASSERT_TRUE(cpu.has_value()) << cpu.error().ToString();
  EXPECT_EQ(*cpu, "/system.slice/foo.service");
  auto systemd = fs->CgroupOfPid(*FindMount(*fs, "/systemd"), 4242);
  ASSERT_TRUE(systemd.has_value());
  EXPECT_EQ(*systemd, "/system.slice/foo.service");
  // The v2 line: a ':' inside the path is kept, the kernel's " (deleted)" is not.
  auto v2 = fs->CgroupOfPid(*fs->Unified(), 4242);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(*v2, "/system.slice/odd:name.service");

  auto missing = fs->CgroupOfPid(*fs->ForController("memory"), 999999);
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find("/proc/999999/cgroup"), std::string::npos);

  t.Write("/proc/77/cgroup", "11:memory:/x\n");
  auto no_line = fs->CgroupOfPid(*fs->ForController("pids"), 77);
  ASSERT_FALSE(no_line.has_value());
  EXPECT_TRUE(no_line.error().IsNotFound());
}

// The live host: whatever its layout, our own cgroup must be a directory under each mount.
TEST(CgroupFsTest, LiveHostOwnCgroupExistsUnderEveryMount) {
  auto fs = CgroupFs::Discover();
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  if (fs->mounts().empty()) GTEST_SKIP() << "this host has no cgroup mounts";
  for (const CgroupMount& m : fs->mounts()) {
    auto path = fs->CgroupOfPid(m, ::getpid());
    ASSERT_TRUE(path.has_value()) << m.mount_point << ": " << path.error().ToString();
    std::string dir = *path == "/" ? m.mount_point : m.mount_point + *path;
    struct stat st;
    EXPECT_EQ(::stat(dir.c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
    std::vector<CgroupDir> top = fs->Walk(m, 0);
    ASSERT_EQ(top.size(), 1u) << m.mount_point;
    EXPECT_EQ(top[0].path, "/");
    EXPECT_EQ(top[0].id, InodeOf(m.mount_point));
  }
}

}  // namespace
}  // namespace augur::telemetry
