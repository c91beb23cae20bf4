// Tests against the live host: /proc, /sys/block, PSI and the real cgroup hierarchies.
// These check what fixtures cannot: that today's kernel still prints what the parsers
// expect, and that the numbers move the way the workload on this machine makes them move.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "telemetry/cgroup_collector.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/procfs_collectors.h"
#include "telemetry/procfs_schedstat_collector.h"
#include "telemetry/procfs_stat_collector.h"
#include "telemetry/recording_sink.h"

namespace augur::telemetry {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keeps one CPU busy for `d` of wall time.
void Burn(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  volatile uint64_t x = 0;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
}

// Spins until this process has used `cpu` of CPU time, however long that takes in wall
// time on a contended machine.
void BurnCpuTime(std::chrono::milliseconds cpu) {
  auto used = [] {
    timespec ts;
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
  };
  auto end = used() + cpu;
  volatile uint64_t x = 0;
  while (used() < end) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
}

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

TEST(ProcfsHostTest, EveryFamilyPresentWithSaneValues) {
  RecordingSink sink;
  bool cgroups_available = true;
  for (auto& c : MakeProcfsCollectors(ProcfsOptions{})) {
    Status s = c->Collect(NowNs(), sink);
    if (c->name() == "procfs_psi" && !Exists("/proc/pressure")) {
      EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
      continue;
    }
    if (c->name() == "procfs_cgroup" && s.IsUnavailable()) {
      std::printf("note: %s\n", s.ToString().c_str());
      cgroups_available = false;
      continue;
    }
    EXPECT_TRUE(s.ok()) << c->name() << ": " << s.ToString();
    auto* pc = dynamic_cast<ProcfsCollector*>(c.get());
    ASSERT_NE(pc, nullptr);
    EXPECT_EQ(pc->malformed_lines(), 0u) << c->name() << " misread this kernel's output";
  }

  // /proc/stat: one cpuN per online CPU plus "all"; busy > 0 since boot.
  long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ(sink.KeysNamed("cpu_busy_seconds_total").size(), static_cast<size_t>(ncpu) + 1);
  auto busy = sink.Get(R"(cpu_busy_seconds_total{cpu="all",source="procfs"})");
  ASSERT_TRUE(busy.has_value());
  EXPECT_GT(*busy, 0.0);
  auto idle = sink.Get(R"(cpu_seconds_total{cpu="all",mode="idle",source="procfs"})");
  ASSERT_TRUE(idle.has_value());
  EXPECT_GT(*busy + *idle, 0.0);
  EXPECT_GT(*sink.Get(R"(context_switches_total{source="procfs"})"), 0.0);
  EXPECT_GE(*sink.Get(R"(processes_running{source="procfs"})"), 1.0);  // this test runs
  EXPECT_TRUE(sink.Has(R"(processes_blocked{source="procfs"})"));

  // meminfo
  auto total = sink.Get(R"(memory_bytes{kind="total",source="procfs"})");
  auto avail = sink.Get(R"(memory_bytes{kind="available",source="procfs"})");
  ASSERT_TRUE(total && avail);
  EXPECT_GT(*total, 64.0 * 1024 * 1024);
  EXPECT_LE(*avail, *total);
  EXPECT_EQ(sink.KeysNamed("memory_bytes").size(), 10u);

  // diskstats: every real whole disk in /sys/block appears.
  if (DIR* d = ::opendir("/sys/block")) {
    while (dirent* e = ::readdir(d)) {
      std::string dev = e->d_name;
      if (dev[0] == '.' || dev.starts_with("loop") || dev.starts_with("ram") ||
          dev.starts_with("zram")) {
        continue;
      }
      EXPECT_TRUE(
          sink.Has("disk_ios_total{device=\"" + dev + "\",direction=\"read\",source=\"procfs\"}"))
          << dev;
      EXPECT_TRUE(sink.Has("disk_io_time_seconds_total{device=\"" + dev + "\",source=\"procfs\"}"))
          << dev;
    }
    ::closedir(d);
  }

  // net/dev: loopback always exists in a network namespace.
  EXPECT_TRUE(
      sink.Has(R"(network_bytes_total{direction="received",interface="lo",source="procfs"})"));
  EXPECT_TRUE(
      sink.Has(R"(network_packets_total{direction="transmitted",interface="lo",source="procfs"})"));

  // snmp
  EXPECT_TRUE(sink.Has(R"(tcp_segments_total{direction="received",source="procfs"})"));
  EXPECT_TRUE(sink.Has(R"(tcp_retransmits_total{source="procfs"})"));
  EXPECT_TRUE(sink.Has(R"(tcp_connections_active{source="procfs"})"));

  // run-queue wait, from /proc/schedstat or the per-task fallback.
  EXPECT_TRUE(sink.Has(R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})"));

  // PSI
  if (Exists("/proc/pressure")) {
    for (const char* r : {"cpu", "memory", "io"}) {
      std::string key = std::string("pressure_stall_seconds_total{kind=\"some\",resource=\"") + r +
                        "\",source=\"procfs\"}";
      EXPECT_TRUE(sink.Has(key)) << key;
    }
    for (const std::string& k : sink.KeysNamed("pressure_ratio")) {
      double v = *sink.Get(k);
      EXPECT_GE(v, 0.0) << k;
      EXPECT_LE(v, 1.0) << k;
    }
    EXPECT_EQ(sink.KeysNamed("pressure_ratio").size() % 3, 0u);
  }

  // cgroups: the root of the CPU hierarchy has used CPU since boot.
  if (cgroups_available) {
    auto root_cpu = sink.Get(R"(cgroup_cpu_seconds_total{cgroup="/",source="procfs"})");
    ASSERT_TRUE(root_cpu.has_value());
    EXPECT_GT(*root_cpu, 0.0);
  }

  // Everything is stamped and labelled as promised.
  for (const auto& p : sink.points()) {
    EXPECT_EQ(p.key.label("source"), "procfs") << p.key.ToString();
    EXPECT_TRUE(p.key.Validate().ok()) << p.key.ToString();
    EXPECT_TRUE(std::isfinite(p.value)) << p.key.ToString();
  }
}

TEST(ProcfsHostTest, CpuBusyIsMonotonicAndGrowsUnderLoad) {
  ProcStatCollector c;
  RecordingSink a;
  ASSERT_TRUE(c.Collect(NowNs(), a).ok());
  Burn(std::chrono::milliseconds(300));
  RecordingSink b;
  ASSERT_TRUE(c.Collect(NowNs(), b).ok());
  const std::string busy = R"(cpu_busy_seconds_total{cpu="all",source="procfs"})";
  // 300 ms of burning is 30 ticks at USER_HZ 100; allow for scheduling slop.
  EXPECT_GE(*b.Get(busy) - *a.Get(busy), 0.2);
  EXPECT_GE(*b.Get(R"(context_switches_total{source="procfs"})"),
            *a.Get(R"(context_switches_total{source="procfs"})"));
  for (const std::string& k : a.KeysNamed("cpu_busy_seconds_total")) {
    if (!b.Has(k)) continue;  // a CPU went offline in between
    EXPECT_GE(*b.Get(k), *a.Get(k)) << k;
  }
}

TEST(ProcfsHostTest, RunqueueWaitGrowsWhenCpusAreOversubscribed) {
  SchedstatCollector c;
  RecordingSink before;
  ASSERT_TRUE(c.Collect(NowNs(), before).ok());
  if (c.mode() == SchedstatCollector::Mode::kUnavailable) {
    GTEST_SKIP() << "no run-queue source on this kernel";
  }
  std::printf("schedstat source: %s\n",
              c.mode() == SchedstatCollector::Mode::kKernel ? "/proc/schedstat" : "per-task");

  // Twice as many spinning threads as CPUs must queue. They keep running through the second
  // Collect so that the per-task source still sees them.
  long ncpu = ::sysconf(_SC_NPROCESSORS_ONLN);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (long i = 0; i < 2 * ncpu; ++i) {
    threads.emplace_back([&stop] {
      volatile uint64_t x = 0;
      while (!stop.load(std::memory_order_relaxed)) x = x + 1;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  RecordingSink after;
  Status s = c.Collect(NowNs(), after);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(s.ok()) << s.ToString();

  const std::string wait = R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})";
  double grew = *after.Get(wait) - *before.Get(wait);
  // Each of 2N threads runnable for 400 ms with only N CPUs: about N * 400 ms of waiting.
  EXPECT_GT(grew, 0.05 * static_cast<double>(ncpu)) << "run_delay grew by " << grew << " s";
  auto mean = after.Get(R"(runqueue_latency_seconds{source="procfs",stat="mean"})");
  ASSERT_TRUE(mean.has_value());
  EXPECT_GT(*mean, 0.0);
  EXPECT_LT(*mean, 1.0);
}

// Creates a cgroup named augur-test-<pid> in each of the given hierarchies; removes it (after
// moving any stragglers out) on destruction.
class ScopedCgroups {
 public:
  explicit ScopedCgroups(std::vector<const CgroupMount*> mounts) {
    name_ = "/augur-test-" + std::to_string(::getpid());
    for (const CgroupMount* m : mounts) {
      std::string dir = m->mount_point + name_;
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        error_ = dir + ": " + std::strerror(errno);
        return;
      }
      dirs_.push_back(dir);
    }
  }
  ~ScopedCgroups() {
    for (const std::string& d : dirs_) ::rmdir(d.c_str());
  }
  const std::string& name() const { return name_; }
  const std::string& error() const { return error_; }
  // Moves `pid` into every created cgroup; returns "" or what failed.
  std::string Enter(pid_t pid) const {
    for (const std::string& d : dirs_) {
      std::ofstream procs(d + "/cgroup.procs");
      procs << pid << "\n";
      procs.flush();
      if (!procs.good()) return d + "/cgroup.procs: write failed";
    }
    return "";
  }

 private:
  std::string name_;
  std::string error_;
  std::vector<std::string> dirs_;
};

TEST(ProcfsHostTest, RealCgroupCpuGrowsWithBurnerChild) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups (euid " << ::geteuid() << ")";
  auto fs = CgroupFs::Discover();
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  // The hierarchies the collector reads CPU usage and memory from.
  std::vector<const CgroupMount*> mounts;
  auto add = [&mounts](const CgroupMount* m) {
    if (m != nullptr && std::find(mounts.begin(), mounts.end(), m) == mounts.end()) {
      mounts.push_back(m);
    }
  };
  const CgroupMount* cpu_usage = fs->ForController("cpuacct");
  if (cpu_usage == nullptr || cpu_usage->version != 1) cpu_usage = fs->ForController("cpu");
  if (cpu_usage == nullptr) cpu_usage = fs->Unified();
  if (cpu_usage == nullptr) GTEST_SKIP() << "no cgroup hierarchy accounts CPU on this host";
  add(cpu_usage);
  add(fs->ForController("cpu"));
  add(fs->ForController("memory"));

  ScopedCgroups cg(mounts);
  if (!cg.error().empty()) GTEST_SKIP() << "cannot create cgroups here: " << cg.error();

  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Wait until the parent has moved us into the cgroups, then burn 0.5 s of CPU.
    ::close(go[1]);
    char b;
    if (::read(go[0], &b, 1) != 1) ::_exit(2);
    std::vector<char> touch(8 << 20, 1);  // some memory to charge as well
    BurnCpuTime(std::chrono::milliseconds(500));
    ::_exit(touch[4096] == 1 ? 0 : 3);
  }
  ::close(go[0]);
  std::string enter_error = cg.Enter(child);
  if (!enter_error.empty()) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    FAIL() << enter_error;
  }

  // max_cgroups high enough that a busy host's other top-level cgroups cannot crowd ours out.
  CgroupCollector collector("", /*max_depth=*/1, /*max_cgroups=*/100000);
  const std::string key =
      "cgroup_cpu_seconds_total{cgroup=\"" + cg.name() + "\",source=\"procfs\"}";
  RecordingSink before;
  Status s = collector.Collect(NowNs(), before);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(before.Has(key)) << key;

  ASSERT_EQ(::write(go[1], "x", 1), 1);
  ::close(go[1]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  EXPECT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << wstatus;

  RecordingSink after;
  ASSERT_TRUE(collector.Collect(NowNs(), after).ok());
  ASSERT_TRUE(after.Has(key)) << key;
  double used = *after.Get(key) - *before.Get(key);
  std::printf("cgroup %s used %.3f s of CPU\n", cg.name().c_str(), used);
  // The child spent 0.5 s of CPU time spinning, plus a little for fork, page faults and
  // exit, all charged to the cgroup.
  EXPECT_GE(used, 0.49);
  EXPECT_LT(used, 0.8);
  if (fs->ForController("memory") != nullptr) {
    EXPECT_TRUE(after.Has("cgroup_memory_bytes{cgroup=\"" + cg.name() + "\",source=\"procfs\"}"));
  }
}

}  // namespace
}  // namespace augur::telemetry
