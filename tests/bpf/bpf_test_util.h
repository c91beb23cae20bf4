// Helpers for the privileged eBPF collector tests: skipping with the reason when this host
// cannot load programs, throw-away cgroups, and workloads run in a child placed in such a
// cgroup before it starts.
//
// Thread safety: none; tests are single-threaded apart from the workloads they start.
#ifndef AUGUR_TESTS_BPF_BPF_TEST_UTIL_H_
#define AUGUR_TESTS_BPF_BPF_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "telemetry/bpf_cgroup_hierarchy.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/kernel_btf.h"
#include "telemetry/recording_sink.h"
#include "telemetry/series_key.h"

namespace augur::telemetry::testing {

// Skips the current test, printing why, when this host cannot load eBPF tracing programs
// at all (no BTF, no privilege). Anything else that fails later is a real failure.
#define AUGUR_SKIP_UNLESS_BPF_CAPABLE(options)                                          \
  do {                                                                                  \
    ::augur::Status _prereq = ::augur::telemetry::CheckBpfPrerequisites(options);       \
    if (!_prereq.ok()) GTEST_SKIP() << "cannot load eBPF here: " << _prereq.ToString(); \
  } while (0)

inline std::string Key(std::string name, std::vector<Label> labels) {
  return SeriesKey(std::move(name), std::move(labels)).ToString();
}

// Value of `key` in `sink`, 0 when it was never emitted (a counter that has not started).
inline double ValueOr0(const RecordingSink& sink, const std::string& key) {
  return sink.Get(key).value_or(0.0);
}

inline double MonotonicSeconds() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

inline int64_t RealtimeNs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Spins until this thread has used `seconds` of CPU time (not wall time, so the amount is
// the same however busy the host is).
inline void BurnThreadCpu(double seconds) {
  struct timespec ts;
  for (;;) {
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    if (static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9 >= seconds) return;
  }
}

// The hierarchy the collectors report cgroups in (same choice as the factories).
inline std::optional<CgroupMount> CollectorCgroupMount(const CgroupFs& fs,
                                                       const BpfOptions& options) {
  Result<KernelBtf> btf = KernelBtf::Load(options.btf_path);
  if (!btf) return std::nullopt;
  Result<BpfCgroupHierarchy> h = SelectBpfCgroupHierarchy(fs, *btf);
  if (!h) return std::nullopt;
  return h->mount;
}

// A cgroup directly under the root of `mount`, removed on destruction (after its processes
// have exited; the destructor retries briefly while the kernel finishes tearing them down).
class TestCgroup {
 public:
  TestCgroup(const CgroupMount& mount, const std::string& name)
      : rel_("/" + name), abs_(mount.mount_point + rel_) {
    if (::mkdir(abs_.c_str(), 0755) != 0 && errno != EEXIST) {
      error_ = "mkdir " + abs_ + ": " + std::strerror(errno);
    }
  }
  ~TestCgroup() {
    if (!error_.empty()) return;
    for (int i = 0; i < 100 && ::rmdir(abs_.c_str()) != 0 && errno == EBUSY; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  TestCgroup(const TestCgroup&) = delete;
  TestCgroup& operator=(const TestCgroup&) = delete;

  // Empty when the cgroup was created.
  const std::string& error() const { return error_; }
  // Path relative to the mount ("/augur-test-123-cpu"), as the collectors label it.
  const std::string& path() const { return rel_; }

  bool AddPid(pid_t pid) const {
    std::ofstream procs(abs_ + "/cgroup.procs");
    procs << pid << std::flush;
    return procs.good();
  }

 private:
  std::string rel_;
  std::string abs_;
  std::string error_;
};

struct ChildResult {
  int exit_code = -1;      // -1 when it did not exit normally
  double cpu_seconds = 0;  // user + system time, from wait4()
};

// Forks a child, moves it into `cgroup` while it waits, then lets it run `work` and waits
// for it. The child's exit code is work()'s return value.
inline ChildResult RunInCgroup(const TestCgroup& cgroup, const std::function<int()>& work) {
  ChildResult result;
  int go[2];
  if (::pipe(go) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::close(go[1]);
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(100);  // parent gave up
    ::_exit(work());
  }
  ::close(go[0]);
  const bool moved = cgroup.AddPid(pid);
  EXPECT_TRUE(moved) << "moving " << pid << " into " << cgroup.path();
  if (moved) {
    char c = 'g';
    EXPECT_EQ(::write(go[1], &c, 1), 1);
  }
  ::close(go[1]);
  int status = 0;
  struct rusage ru = {};
  if (::wait4(pid, &status, 0, &ru) != pid) {
    ADD_FAILURE() << "wait4: " << std::strerror(errno);
    return result;
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.cpu_seconds = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  return result;
}

// A name no other test run on this host uses at the same time.
inline std::string UniqueCgroupName(const std::string& what) {
  return "augur-test-" + std::to_string(::getpid()) + "-" + what;
}

}  // namespace augur::telemetry::testing

#endif  // AUGUR_TESTS_BPF_BPF_TEST_UTIL_H_
