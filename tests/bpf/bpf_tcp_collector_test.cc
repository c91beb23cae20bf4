// Loads the real bpf_tcp programs and checks that a loopback transfer made by a process in
// a fresh cgroup is charged to that cgroup, both ways. Privileged: skips, printing why,
// where eBPF cannot load.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "bpf_test_util.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/recording_sink.h"

namespace augur::telemetry {
namespace {

using testing::Key;
using testing::ValueOr0;

constexpr size_t kTransferBytes = 8u << 20;

// Sends kTransferBytes from one end of a 127.0.0.1 connection to the other, in one
// single-threaded process (poll loop), and returns 0 when all of it arrived.
int LoopbackTransfer() {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;  // any free port
  socklen_t len = sizeof addr;
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 2;
  }
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return 3;
  }
  const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (server < 0) return 4;
  ::fcntl(client, F_SETFL, O_NONBLOCK);
  ::fcntl(server, F_SETFL, O_NONBLOCK);

  std::vector<char> out(64 << 10, 'x'), in(64 << 10);
  size_t sent = 0, received = 0;
  while (received < kTransferBytes) {
    pollfd fds[2] = {{client, static_cast<short>(sent < kTransferBytes ? POLLOUT : 0), 0},
                     {server, POLLIN, 0}};
    if (::poll(fds, 2, 5000) <= 0) return 5;
    if (fds[0].revents & POLLOUT) {
      const ssize_t n = ::send(client, out.data(), std::min(out.size(), kTransferBytes - sent), 0);
      if (n > 0)
        sent += static_cast<size_t>(n);
      else if (n < 0 && errno != EAGAIN)
        return 6;
    }
    if (fds[1].revents & POLLIN) {
      const ssize_t n = ::recv(server, in.data(), in.size(), 0);
      if (n > 0)
        received += static_cast<size_t>(n);
      else if (n == 0 || errno != EAGAIN)
        return 7;
    }
  }
  ::close(client);
  ::close(server);
  ::close(listener);
  return received == kTransferBytes ? 0 : 8;
}

TEST(BpfTcpCollectorTest, ChargesLoopbackBytesToTheSendersCgroup) {
  BpfOptions options;
  AUGUR_SKIP_UNLESS_BPF_CAPABLE(options);
  Result<CgroupFs> fs = CgroupFs::Discover();
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  Result<std::unique_ptr<Collector>> c = MakeBpfTcpCollector(options, *fs);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  Collector& collector = **c;

  std::optional<CgroupMount> mount = testing::CollectorCgroupMount(*fs, options);
  ASSERT_TRUE(mount.has_value()) << "no cgroup hierarchy to create a test cgroup in";
  testing::TestCgroup cgroup(*mount, testing::UniqueCgroupName("tcp"));
  ASSERT_EQ(cgroup.error(), "");
  const std::string sent_key =
      Key("tcp_bytes_total", {{"cgroup", cgroup.path()}, {"direction", "sent"}, {"source", "bpf"}});
  const std::string received_key = Key(
      "tcp_bytes_total", {{"cgroup", cgroup.path()}, {"direction", "received"}, {"source", "bpf"}});

  RecordingSink before;
  ASSERT_TRUE(collector.Collect(testing::RealtimeNs(), before).ok());
  ASSERT_EQ(testing::RunInCgroup(cgroup, LoopbackTransfer).exit_code, 0);
  RecordingSink after;
  ASSERT_TRUE(collector.Collect(testing::RealtimeNs(), after).ok());

  const double sent = ValueOr0(after, sent_key) - ValueOr0(before, sent_key);
  const double received = ValueOr0(after, received_key) - ValueOr0(before, received_key);
  std::printf("cgroup %s: sent %.0f B, received %.0f B (transfer %zu B)\n", cgroup.path().c_str(),
              sent, received, kTransferBytes);
  // Payload bytes only, and the child did nothing else over TCP: anything beyond the
  // transfer would be double counting.
  EXPECT_GE(sent, static_cast<double>(kTransferBytes));
  EXPECT_GE(received, static_cast<double>(kTransferBytes));
  EXPECT_LE(sent, static_cast<double>(kTransferBytes));
  EXPECT_LE(received, static_cast<double>(kTransferBytes));

  EXPECT_TRUE(after.Has(Key("tcp_retransmits_total", {{"source", "bpf"}})));
  // Whichever hook set loaded (fentry, or the sock tracepoints where trampolines are
  // refused) must have run.
  double byte_program_runs = 0;
  for (const std::string& k : after.KeysNamed("augur_bpf_program_runs_total")) {
    if (k.find("tcp_retransmit_skb") == std::string::npos) byte_program_runs += *after.Get(k);
    std::printf("%s = %.0f\n", k.c_str(), *after.Get(k));
  }
  EXPECT_GT(byte_program_runs, 0);
}

}  // namespace
}  // namespace augur::telemetry
