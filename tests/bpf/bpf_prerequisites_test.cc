// The reasons the eBPF factories give when they cannot run, which the agent logs once
// before falling back to procfs. Needs root to drop privileges from; skips otherwise.
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "bpf_test_util.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_fs.h"

namespace augur::telemetry {
namespace {

TEST(BpfPrerequisitesTest, MissingBtfFileIsNamed) {
  BpfOptions options;
  options.btf_path = "/nonexistent/augur/vmlinux";
  Result<CgroupFs> fs = CgroupFs::Discover();
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  for (auto& made : {MakeBpfCpuCollector(options, *fs), MakeBpfBlockIoCollector(options),
                     MakeBpfTcpCollector(options, *fs)}) {
    ASSERT_FALSE(made.has_value());
    EXPECT_TRUE(made.error().IsUnavailable()) << made.error().ToString();
    EXPECT_NE(made.error().message().find("no BTF at /nonexistent/augur/vmlinux"),
              std::string::npos)
        << made.error().ToString();
  }
}

// Runs `fn` in a child without CAP_SYS_ADMIN, CAP_BPF and CAP_PERFMON and returns what it
// wrote.
std::string RunWithoutBpfCapabilities(std::string (*fn)()) {
  int out[2];
  if (::pipe(out) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(out[0]);
    __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    std::string text;
    if (::syscall(SYS_capget, &header, data) != 0) {
      text = "capget failed";
    } else {
      for (int cap : {CAP_SYS_ADMIN, 38 /* CAP_PERFMON */, 39 /* CAP_BPF */}) {
        data[cap / 32].effective &= ~(1u << (cap % 32));
      }
      text = ::syscall(SYS_capset, &header, data) == 0 ? fn() : "capset failed";
    }
    const ssize_t ignored = ::write(out[1], text.data(), text.size());
    (void)ignored;
    ::_exit(0);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;) text.append(buf, n);
  ::close(out[0]);
  ::waitpid(pid, nullptr, 0);
  return text;
}

TEST(BpfPrerequisitesTest, MissingCapabilitiesAreNamed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to drop capabilities from";
  const std::string text = RunWithoutBpfCapabilities([]() -> std::string {
    Result<CgroupFs> fs = CgroupFs::Discover();
    if (!fs) return "discover: " + fs.error().ToString();
    Result<std::unique_ptr<Collector>> made = MakeBpfCpuCollector(BpfOptions{}, *fs);
    return made ? std::string("loaded") : made.error().ToString();
  });
  EXPECT_EQ(text,
            "Unavailable: bpf_cpu: missing CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load "
            "tracing programs");
}

}  // namespace
}  // namespace augur::telemetry
