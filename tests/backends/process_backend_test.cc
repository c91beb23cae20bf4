// The process backend (augur-process.so), loaded with dlopen and driven through its C table.
// These tests create real cgroups and run real processes: they need root and writable cgroup
// hierarchies and skip, saying why, without them. Each test uses its own cgroup parent
// (augur-test-<pid>-<n>) so runs never see each other's instances.
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "backends/plugin_fixture.h"

namespace augur::testing {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::vector<std::string> Child(const std::string& mode, const std::string& arg = "") {
  std::vector<std::string> argv{SelfExe(), "--augur-child", mode};
  if (!arg.empty()) argv.push_back(arg);
  return argv;
}

// Mount points of the cgroup hierarchies, v1 and v2, read independently of the plugin.
std::vector<std::string> CgroupMounts() {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string f[5], fstype, src, opts;
    for (auto& x : f) pre >> x;
    post >> fstype >> src >> opts;
    if (fstype == "cgroup2") out.push_back(f[4]);
    if (fstype == "cgroup" && (opts.find("cpu") != std::string::npos ||
                               opts.find("memory") != std::string::npos)) {
      out.push_back(f[4]);
    }
  }
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// CPU seconds (user + system) of one process, from /proc/PID/stat: an independent check of
// what the plugin reports from the cgroup.
double ProcCpuSeconds(pid_t pid) {
  std::string s = Slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = s.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream in(s.substr(paren + 2));
  std::string skip;
  for (int i = 0; i < 11; ++i) in >> skip;  // fields 3..13
  double utime = 0, stime = 0;
  in >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

pid_t PidOf(const std::string& invocation) {
  size_t a = invocation.find('/');
  return static_cast<pid_t>(std::stol(invocation.substr(a + 1)));
}

// Gone = no /proc entry, or a zombie waiting for its (new) parent to reap it.
bool ProcessGone(pid_t pid) {
  std::string s = Slurp("/proc/" + std::to_string(pid) + "/stat");
  if (s.empty()) return true;
  size_t paren = s.rfind(')');
  return paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'Z';
}

class ProcessBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
    lib_ = std::make_unique<PluginLib>(PluginPath("process"));
    ASSERT_NE(lib_->api(), nullptr) << lib_->error();
    static int counter = 0;
    parent_ = "augur-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    plugin_ = NewPlugin();
    if (!plugin_->ok() && plugin_->init_rc() == AUGUR_ERR_IO) {
      GTEST_SKIP() << "cgroups not usable here: " << plugin_->init_error();
    }
    ASSERT_TRUE(plugin_->ok()) << plugin_->init_error();
    for (const auto& m : CgroupMounts()) {
      if (access(m.c_str(), W_OK) != 0) GTEST_SKIP() << m << " is not writable";
    }
  }

  void TearDown() override {
    if (plugin_ && plugin_->ok()) {
      for (const auto& name : provisioned_) plugin_->Release(name);
    }
    plugin_.reset();
    for (const auto& m : CgroupMounts()) rmdir((m + "/" + parent_).c_str());
  }

  std::unique_ptr<PluginInstance> NewPlugin() {
    return std::make_unique<PluginInstance>(
        lib_->api(), PluginInstance::Config{{"cgroup_parent", parent_}});
  }

  std::string Provision(const std::string& name, double cores, uint64_t memory) {
    augur_instance_info info;
    augur_rc rc = plugin_->Provision(name, {cores, memory}, {cores, memory}, &info);
    EXPECT_EQ(rc, AUGUR_OK) << plugin_->LastError();
    provisioned_.push_back(info.handle);
    return info.handle;
  }

  // CPU rate (core-seconds per second) over `window`, as the plugin reports it and as
  // /proc says of the task's main process.
  struct Rate {
    double plugin;
    double proc;
  };
  Rate MeasureRate(const std::string& invocation, std::chrono::milliseconds window) {
    augur_task_status s0, s1;
    pid_t pid = PidOf(invocation);
    EXPECT_EQ(plugin_->Poll(invocation, 0, &s0), AUGUR_OK);
    double p0 = ProcCpuSeconds(pid);
    auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(window);
    EXPECT_EQ(plugin_->Poll(invocation, 0, &s1), AUGUR_OK);
    double p1 = ProcCpuSeconds(pid);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(s1.state, AUGUR_TASK_RUNNING);
    return {(s1.cpu_seconds - s0.cpu_seconds) / secs, (p1 - p0) / secs};
  }

  std::string CgroupDir(const std::string& mount, const std::string& instance) const {
    return mount + "/" + parent_ + "/" + instance;
  }

  std::unique_ptr<PluginLib> lib_;
  std::unique_ptr<PluginInstance> plugin_;
  std::string parent_;
  std::vector<std::string> provisioned_;
};

TEST_F(ProcessBackendTest, DescribeReportsHostCapacity) {
  augur_backend_info info;
  ASSERT_EQ(plugin_->Describe(&info), AUGUR_OK) << plugin_->LastError();
  EXPECT_STREQ(info.name, "process");
  EXPECT_TRUE(info.healthy);
  EXPECT_EQ(info.capacity.cpu_cores, static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN)));
  std::string meminfo = Slurp("/proc/meminfo");
  uint64_t total = std::stoull(meminfo.substr(meminfo.find("MemTotal:") + 9)) * 1024;
  EXPECT_EQ(info.capacity.memory_bytes, total - 512 * kMiB);  // default reserve
  EXPECT_EQ(info.available.cpu_cores, info.capacity.cpu_cores);

  Provision("desc", 0.5, 128 * kMiB);
  ASSERT_EQ(plugin_->Describe(&info), AUGUR_OK);
  EXPECT_DOUBLE_EQ(info.available.cpu_cores, info.capacity.cpu_cores - 0.5);
  EXPECT_EQ(info.available.memory_bytes, info.capacity.memory_bytes - 128 * kMiB);
}

TEST_F(ProcessBackendTest, CpuQuotaHoldsABurnerToHalfACore) {
  std::string inst = Provision("cpu", 0.5, 256 * kMiB);
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, Child("burn"), {}, &inv), AUGUR_OK) << plugin_->LastError();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the first period
  Rate r = MeasureRate(inv, std::chrono::milliseconds(2000));
  // The quota is a ceiling; the floor only proves the burner ran, and is loose because a
  // busy host may give it less than its half core.
  EXPECT_GE(r.plugin, 0.3);
  EXPECT_LE(r.plugin, 0.6);
  EXPECT_GE(r.proc, 0.3);
  EXPECT_LE(r.proc, 0.6);
  EXPECT_EQ(plugin_->Cancel(inv), AUGUR_OK) << plugin_->LastError();
  augur_task_status s;
  ASSERT_EQ(plugin_->Poll(inv, 5000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_KILLED);
  EXPECT_EQ(s.term_signal, SIGKILL);
  EXPECT_GT(s.cpu_seconds, 0.8);  // ~2.3 s at half a core
  EXPECT_GT(s.finished_ns, s.started_ns);
}

TEST_F(ProcessBackendTest, ResizeRaisesTheQuotaOfARunningTask) {
  std::string inst = Provision("resize", 0.2, 256 * kMiB);
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, Child("burn"), {}, &inv), AUGUR_OK) << plugin_->LastError();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Rate before = MeasureRate(inv, std::chrono::milliseconds(1500));
  EXPECT_GE(before.proc, 0.12);
  EXPECT_LE(before.proc, 0.28);

  augur_resources granted{};
  ASSERT_EQ(plugin_->Resize(inst, {1.0, 256 * kMiB}, &granted), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_DOUBLE_EQ(granted.cpu_cores, 1.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Rate after = MeasureRate(inv, std::chrono::milliseconds(1500));
  // One spinning thread can use at most one core; on a busy 2-CPU host it may get less than
  // all of it, but far more than the 0.2 it was held to.
  EXPECT_GE(after.proc, 0.5);
  EXPECT_GE(after.proc, 3 * before.proc);
  EXPECT_GE(after.plugin, 0.5);
  plugin_->Cancel(inv);
}

TEST_F(ProcessBackendTest, MemoryHogOverItsLimitIsReportedAsOom) {
  std::string inst = Provision("oom", 0.5, 64 * kMiB);
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, Child("hog", "256"), {}, &inv), AUGUR_OK) << plugin_->LastError();
  augur_task_status s;
  ASSERT_EQ(plugin_->Poll(inv, 20000, &s), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(s.state, AUGUR_TASK_OOM);
  EXPECT_EQ(s.term_signal, SIGKILL);
  EXPECT_GE(s.peak_memory_bytes, 48 * kMiB);
  EXPECT_LE(s.peak_memory_bytes, 64 * kMiB);

  // The same instance runs a task that fits: it exits normally, so OOM above was not just
  // "any death in this cgroup".
  ASSERT_EQ(plugin_->Run(inst, Child("hog", "16"), {}, &inv), AUGUR_OK) << plugin_->LastError();
  ASSERT_EQ(plugin_->Poll(inv, 20000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_EXITED);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_GE(s.peak_memory_bytes, 16 * kMiB);
}

TEST_F(ProcessBackendTest, CancelKillsTheTaskAndEverythingItForked) {
  std::string inst = Provision("cancel", 0.5, 128 * kMiB);
  std::string out = "/tmp/" + parent_ + "-forker.out";
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, Child("forker", "3"), {}, &inv, out), AUGUR_OK)
      << plugin_->LastError();
  std::vector<pid_t> kids;
  for (int i = 0; i < 200 && kids.size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::istringstream in(Slurp(out));
    kids.clear();
    pid_t p;
    while (in >> p) kids.push_back(p);
  }
  ASSERT_EQ(kids.size(), 3u);
  for (pid_t k : kids) ASSERT_FALSE(ProcessGone(k));

  ASSERT_EQ(plugin_->Cancel(inv), AUGUR_OK) << plugin_->LastError();
  augur_task_status s;
  ASSERT_EQ(plugin_->Poll(inv, 5000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_KILLED);
  for (pid_t k : kids) {
    for (int i = 0; i < 100 && !ProcessGone(k); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(ProcessGone(k)) << "child " << k << " survived cancel";
  }
  for (const auto& m : CgroupMounts()) {
    std::string procs = CgroupDir(m, inst) + "/cgroup.procs";
    EXPECT_EQ(Slurp(procs), "") << procs;
  }
  EXPECT_EQ(plugin_->Cancel(inv), AUGUR_OK);  // cancelling a finished task is fine
  unlink(out.c_str());
}

// spot_max_runtime: a task on the spot class is taken back (killed, RECLAIMED) once it has
// run that long, even by a poll that was already waiting; the same task on the host's own
// class runs to its end.
TEST_F(ProcessBackendTest, SpotTasksAreReclaimedAfterTheirMaximumRunTime) {
  PluginInstance spot(lib_->api(), {{"cgroup_parent", parent_}, {"cost_per_core_hour", "1"},
                                    {"spot_per_core_hour", "0.25"}, {"spot_max_runtime", "0.3"}});
  ASSERT_TRUE(spot.ok()) << spot.init_error();
  augur_instance_info on_spot, on_local;
  ASSERT_EQ(spot.Provision("spot", {0.2, 32 * kMiB}, {0.2, 32 * kMiB}, &on_spot, "", "spot"),
            AUGUR_OK) << spot.LastError();
  ASSERT_EQ(spot.Provision("local", {0.2, 32 * kMiB}, {0.2, 32 * kMiB}, &on_local), AUGUR_OK);
  std::string a, b;
  ASSERT_EQ(spot.Run(on_spot.handle, {"/bin/sleep", "1"}, {}, &a), AUGUR_OK) << spot.LastError();
  ASSERT_EQ(spot.Run(on_local.handle, {"/bin/sleep", "1"}, {}, &b), AUGUR_OK);
  augur_task_status s;
  // The poll wakes at the reclaim deadline (0.5 s): one that slept on would see the task
  // exit on its own at 1 s.
  ASSERT_EQ(spot.Poll(a, 5000, &s), AUGUR_OK) << spot.LastError();
  EXPECT_EQ(s.state, AUGUR_TASK_RECLAIMED);
  ASSERT_EQ(spot.Poll(b, 5000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_EXITED);
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(spot.Release(on_spot.handle), AUGUR_OK);
  EXPECT_EQ(spot.Release(on_local.handle), AUGUR_OK);

  PluginInstance bad(lib_->api(), {{"cgroup_parent", parent_}, {"spot_max_runtime", "1"}});
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.init_error().find("spot_max_runtime needs a spot class"), std::string::npos)
      << bad.init_error();
}

// bytes_read / bytes_written are the storage I/O of the task and the children it reaped
// (/proc/PID/io read_bytes / write_bytes, read at reap time). A real task: sh starts dd to
// write 8 MiB with fsync, then dd to read it back with O_DIRECT (so the read reaches the
// disk, not the page cache); neither dd is the task's own process.
TEST_F(ProcessBackendTest, IoCountersAreTheStorageBytesOfTheTaskAndItsChildren) {
  const std::string dir = "/tmp/" + parent_ + "-io";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  struct statfs fs {};
  ASSERT_EQ(statfs(dir.c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) {
    rmdir(dir.c_str());
    GTEST_SKIP() << "/tmp is tmpfs: no block device to count I/O on";
  }
  std::string inst = Provision("io", 1, 256 * kMiB);
  auto run = [&](const std::string& script, augur_task_status* s) {
    std::string inv;
    ASSERT_EQ(plugin_->Run(inst, {"/bin/sh", "-c", script}, {"PATH=/usr/bin:/bin"}, &inv, "",
                           dir),
              AUGUR_OK)
        << plugin_->LastError();
    ASSERT_EQ(plugin_->Poll(inv, 30000, s), AUGUR_OK) << plugin_->LastError();
    ASSERT_EQ(s->state, AUGUR_TASK_EXITED) << script;
    ASSERT_EQ(s->exit_code, 0) << script;
    // Final figures: a second poll of the finished task gives the same.
    augur_task_status again;
    ASSERT_EQ(plugin_->Poll(inv, 0, &again), AUGUR_OK);
    EXPECT_EQ(again.bytes_read, s->bytes_read);
    EXPECT_EQ(again.bytes_written, s->bytes_written);
  };

  augur_task_status s;
  run("dd if=/dev/zero of=data bs=1M count=8 conv=fsync 2>/dev/null && "
      "dd if=data of=/dev/null bs=1M iflag=direct 2>/dev/null",
      &s);
  // Written: the 8 MiB of data pages (counted when dirtied, whole pages); a little more is
  // sane (metadata), a second copy is not.
  EXPECT_GE(s.bytes_written, 8 * kMiB);
  EXPECT_LE(s.bytes_written, 9 * kMiB);
  // Read: the 8 MiB from the disk, plus whatever program pages were not cached.
  EXPECT_GE(s.bytes_read, 8 * kMiB);
  EXPECT_LE(s.bytes_read, 12 * kMiB);

  // What does not reach storage is not counted: 8 MiB into /dev/null and through a pipe,
  // and the file read back from the page cache right after it was written there.
  run("dd if=/dev/zero bs=1M count=8 2>/dev/null | cat > /dev/null && "
      "dd if=/dev/zero of=cached bs=1M count=4 2>/dev/null && cat cached > /dev/null",
      &s);
  EXPECT_GE(s.bytes_written, 4 * kMiB);  // the 4 MiB file
  EXPECT_LT(s.bytes_written, 5 * kMiB);
  EXPECT_LT(s.bytes_read, 1 * kMiB);
  unlink((dir + "/data").c_str());
  unlink((dir + "/cached").c_str());
  rmdir(dir.c_str());
}

TEST_F(ProcessBackendTest, TaskGetsExactlyItsEnvironmentWorkdirAndCgroup) {
  std::string inst = Provision("env", 0.5, 128 * kMiB);
  std::string out = "/tmp/" + parent_ + "-env.out";
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, {"/bin/sh", "-c", "env; pwd; cat /proc/self/cgroup; exit 3"},
                         {"FOO=bar baz"}, &inv, out, "/tmp"),
            AUGUR_OK)
      << plugin_->LastError();
  augur_task_status s;
  ASSERT_EQ(plugin_->Poll(inv, 10000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_EXITED);
  EXPECT_EQ(s.exit_code, 3);
  std::string text = Slurp(out);
  EXPECT_NE(text.find("FOO=bar baz\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("HOME="), std::string::npos) << "leaked the test's environment: " << text;
  EXPECT_NE(text.find("\n/tmp\n"), std::string::npos) << text;
  // In the instance cgroup of every controller the backend uses (cpu and memory at least).
  std::string want = "/" + parent_ + "/" + inst + "\n";
  bool memory_v1 = text.find(":memory:" + want) != std::string::npos;
  bool unified = text.find("0::" + want) != std::string::npos;
  EXPECT_TRUE(memory_v1 || unified) << text;
  unlink(out.c_str());
}

TEST_F(ProcessBackendTest, RunReportsBadProgramsAndUnknownInstances) {
  std::string inst = Provision("bad", 0.5, 64 * kMiB);
  std::string inv;
  EXPECT_EQ(plugin_->Run(inst, {"/nonexistent/prog"}, {}, &inv), AUGUR_ERR_INVALID);
  EXPECT_NE(plugin_->LastError().find("/nonexistent/prog"), std::string::npos);
  EXPECT_EQ(plugin_->Run(inst, {"true"}, {"PATH=/nonexistent"}, &inv), AUGUR_ERR_INVALID);
  EXPECT_EQ(plugin_->Run("augur-nope", {"/bin/true"}, {}, &inv), AUGUR_ERR_NOT_FOUND);
  augur_task_status s;
  EXPECT_EQ(plugin_->Poll("augur-nope/1/1", 0, &s), AUGUR_ERR_NOT_FOUND);
  // PATH search uses the task's environment.
  ASSERT_EQ(plugin_->Run(inst, {"true"}, {"PATH=/usr/bin:/bin"}, &inv), AUGUR_OK)
      << plugin_->LastError();
  ASSERT_EQ(plugin_->Poll(inv, 5000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_EXITED);
}

TEST_F(ProcessBackendTest, ReleaseRemovesTheCgroupsAndASecondReleaseIsNotFound) {
  std::string inst = Provision("rel", 0.5, 64 * kMiB);
  std::string inv;
  ASSERT_EQ(plugin_->Run(inst, Child("burn"), {}, &inv), AUGUR_OK);
  std::vector<std::string> dirs;
  for (const auto& m : CgroupMounts()) {
    struct stat st;
    if (stat(CgroupDir(m, inst).c_str(), &st) == 0) dirs.push_back(CgroupDir(m, inst));
  }
  // Hybrid here: cpu, cpuacct and memory on v1 plus the v2 tree; v2-only: one directory.
  EXPECT_FALSE(dirs.empty());
  ASSERT_EQ(plugin_->Release(inst), AUGUR_OK) << plugin_->LastError();
  for (const auto& d : dirs) EXPECT_NE(access(d.c_str(), F_OK), 0) << d << " still there";
  EXPECT_TRUE(ProcessGone(PidOf(inv)));
  EXPECT_EQ(plugin_->Release(inst), AUGUR_ERR_NOT_FOUND);
  EXPECT_NE(plugin_->LastError(), "");
  augur_backend_info info;
  ASSERT_EQ(plugin_->Describe(&info), AUGUR_OK);
  EXPECT_EQ(info.available.cpu_cores, info.capacity.cpu_cores);
}

TEST_F(ProcessBackendTest, GrantsWhatIsAvailableAndRefusesBelowTheMinimum) {
  augur_backend_info info;
  ASSERT_EQ(plugin_->Describe(&info), AUGUR_OK);
  augur_instance_info out;
  double cores = info.capacity.cpu_cores;
  EXPECT_EQ(plugin_->Provision("big", {cores + 1, 64 * kMiB}, {cores + 1, 64 * kMiB}, &out),
            AUGUR_ERR_NO_CAPACITY);
  EXPECT_NE(plugin_->LastError().find("minimum"), std::string::npos) << plugin_->LastError();
  EXPECT_EQ(plugin_->Provision("bigmem", {1, info.capacity.memory_bytes + kMiB},
                               {1, info.capacity.memory_bytes + kMiB}, &out),
            AUGUR_ERR_NO_CAPACITY);

  // want above what is free, min below: granted exactly what is free.
  ASSERT_EQ(plugin_->Provision("most", {cores + 4, 64 * kMiB}, {0.1, 64 * kMiB}, &out),
            AUGUR_OK)
      << plugin_->LastError();
  provisioned_.push_back(out.handle);
  EXPECT_EQ(std::string(out.handle), "augur-most");
  EXPECT_DOUBLE_EQ(out.granted.cpu_cores, cores);
  // Now nothing is left for even a tenth of a core.
  augur_instance_info more;
  EXPECT_EQ(plugin_->Provision("more", {0.1, 64 * kMiB}, {0.1, 64 * kMiB}, &more),
            AUGUR_ERR_NO_CAPACITY);
  // Provision is idempotent on the name.
  augur_instance_info again;
  ASSERT_EQ(plugin_->Provision("most", {1, 64 * kMiB}, {1, 64 * kMiB}, &again), AUGUR_OK);
  EXPECT_STREQ(again.handle, out.handle);
  EXPECT_DOUBLE_EQ(again.granted.cpu_cores, cores);
  // Bad requests.
  EXPECT_EQ(plugin_->Provision("x/y", {1, 64 * kMiB}, {1, 64 * kMiB}, &more), AUGUR_ERR_INVALID);
  EXPECT_EQ(plugin_->Provision("x", {1, 64 * kMiB}, {2, 64 * kMiB}, &more), AUGUR_ERR_INVALID);
}

TEST_F(ProcessBackendTest, PrewarmIsANoOpThatSaysSo) {
  uint32_t prepared = 99;
  EXPECT_EQ(plugin_->Prewarm({1, 64 * kMiB}, 4, &prepared), AUGUR_OK);
  EXPECT_EQ(prepared, 0u);
  EXPECT_NE(plugin_->LastError().find("nothing to pre-warm"), std::string::npos);
}

TEST_F(ProcessBackendTest, RecoverAfterReinitFindsInstancesAndRunningTasks) {
  std::string kept = Provision("kept", 0.3, 96 * kMiB);
  std::string gone = Provision("gone", 0.2, 64 * kMiB);
  std::string running, finished;
  ASSERT_EQ(plugin_->Run(kept, Child("burn"), {}, &running), AUGUR_OK) << plugin_->LastError();
  ASSERT_EQ(plugin_->Run(kept, {"/bin/true"}, {}, &finished), AUGUR_OK);
  augur_task_status s;
  ASSERT_EQ(plugin_->Poll(finished, 5000, &s), AUGUR_OK);
  ASSERT_EQ(s.state, AUGUR_TASK_EXITED);
  ASSERT_EQ(plugin_->Release(gone), AUGUR_OK);

  // A restart: all plugin state is dropped; the cgroups and the burner stay.
  plugin_->Destroy();
  plugin_ = NewPlugin();
  ASSERT_TRUE(plugin_->ok()) << plugin_->init_error();

  std::vector<int32_t> states, task_states;
  std::string lost = kept + "/" + std::to_string(PidOf(finished)) + "/1";  // stale start time
  ASSERT_EQ(plugin_->Recover({kept, gone}, &states, {running, lost}, &task_states), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(states[0], AUGUR_INSTANCE_READY);
  EXPECT_EQ(states[1], AUGUR_INSTANCE_GONE);
  EXPECT_EQ(task_states[0], AUGUR_TASK_RUNNING);
  EXPECT_EQ(task_states[1], AUGUR_TASK_FAILED);
  EXPECT_NE(plugin_->LastError().find("lost"), std::string::npos) << plugin_->LastError();

  // The recovered instance is in the capacity ledger with the limits read back.
  augur_backend_info info;
  ASSERT_EQ(plugin_->Describe(&info), AUGUR_OK);
  EXPECT_NEAR(info.available.cpu_cores, info.capacity.cpu_cores - 0.3, 1e-9);
  EXPECT_EQ(info.available.memory_bytes, info.capacity.memory_bytes - 96 * kMiB);

  // The recovered task is live: its CPU keeps counting, cancel stops it.
  ASSERT_EQ(plugin_->Poll(running, 0, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_RUNNING);
  EXPECT_GT(s.cpu_seconds, 0.0);
  ASSERT_EQ(plugin_->Cancel(running), AUGUR_OK) << plugin_->LastError();
  ASSERT_EQ(plugin_->Poll(running, 5000, &s), AUGUR_OK);
  EXPECT_EQ(s.state, AUGUR_TASK_KILLED);
  EXPECT_TRUE(ProcessGone(PidOf(running)));
  EXPECT_EQ(plugin_->Release(gone), AUGUR_ERR_NOT_FOUND);
  EXPECT_EQ(plugin_->Release(kept), AUGUR_OK) << plugin_->LastError();
}

}  // namespace
}  // namespace augur::testing
