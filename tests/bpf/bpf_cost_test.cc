// What the eBPF programs cost per event under a mixed CPU + block I/O + TCP load, from the
// kernel's own run-time statistics (augur_bpf_program_run*_total). Prints a table;
// docs/TELEMETRY-BPF.md quotes it. Run longer with AUGUR_BPF_COST_SECONDS=10.
// Privileged: skips, printing why, where eBPF cannot load.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bpf_test_util.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/recording_sink.h"

namespace augur::telemetry {
namespace {

double CostSeconds() {
  const char* s = std::getenv("AUGUR_BPF_COST_SECONDS");
  const double v = s != nullptr ? std::atof(s) : 0;
  return v > 0 ? v : 3.0;
}

// Two threads bouncing a byte over pipes: every round trip is two wakeups and at least two
// context switches, the densest load sched_switch sees.
void PingPong(std::atomic<bool>& stop) {
  int ab[2], ba[2];
  if (::pipe(ab) != 0 || ::pipe(ba) != 0) return;
  std::thread echo([&] {
    char c;
    while (::read(ab[0], &c, 1) == 1 && c != 'q') {
      if (::write(ba[1], &c, 1) != 1) break;
    }
  });
  char c = 'p';
  while (!stop.load(std::memory_order_relaxed)) {
    if (::write(ab[1], &c, 1) != 1 || ::read(ba[0], &c, 1) != 1) break;
  }
  c = 'q';
  (void)!::write(ab[1], &c, 1);
  echo.join();
  for (int fd : {ab[0], ab[1], ba[0], ba[1]}) ::close(fd);
}

void Spin(std::atomic<bool>& stop) {
  while (!stop.load(std::memory_order_relaxed)) {
  }
}

// 256 KiB O_DIRECT writes with an fsync each, so every one reaches the disk.
void DiskWriter(std::atomic<bool>& stop) {
  char path[] = "/var/tmp/augur-bpf-cost-XXXXXX";
  const int tmp = ::mkstemp(path);
  if (tmp < 0) return;
  ::close(tmp);
  const int fd = ::open(path, O_WRONLY | O_DIRECT);
  void* buf = nullptr;
  if (fd >= 0 && ::posix_memalign(&buf, 4096, 256 << 10) == 0) {
    std::memset(buf, 0x5a, 256 << 10);
    off_t off = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      if (::pwrite(fd, buf, 256 << 10, off) != (256 << 10)) break;
      ::fsync(fd);
      off = (off + (256 << 10)) % (64 << 20);
    }
  }
  std::free(buf);
  if (fd >= 0) ::close(fd);
  ::unlink(path);
}

// 16 KiB messages over a loopback connection, received by a second thread.
void TcpStream(std::atomic<bool>& stop) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return;
  }
  const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
  const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  std::thread reader([server] {
    std::vector<char> in(16 << 10);
    while (::recv(server, in.data(), in.size(), 0) > 0) {
    }
  });
  std::vector<char> out(16 << 10, 'x');
  while (!stop.load(std::memory_order_relaxed)) {
    if (::send(client, out.data(), out.size(), 0) <= 0) break;
  }
  ::shutdown(client, SHUT_WR);
  reader.join();
  for (int fd : {client, server, listener}) ::close(fd);
}

TEST(BpfCostTest, PerEventCostUnderLoad) {
  BpfOptions options;
  AUGUR_SKIP_UNLESS_BPF_CAPABLE(options);
  Result<CgroupFs> fs = CgroupFs::Discover();
  ASSERT_TRUE(fs.has_value()) << fs.error().ToString();
  Result<std::unique_ptr<Collector>> made[] = {MakeBpfCpuCollector(options, *fs),
                                               MakeBpfBlockIoCollector(options),
                                               MakeBpfTcpCollector(options, *fs)};
  std::vector<std::unique_ptr<Collector>> collectors;
  for (Result<std::unique_ptr<Collector>>& m : made) {
    ASSERT_TRUE(m.has_value()) << m.error().ToString();
    collectors.push_back(std::move(*m));
  }
  const auto collect = [&] {
    RecordingSink sink;
    for (auto& c : collectors) EXPECT_TRUE(c->Collect(testing::RealtimeNs(), sink).ok());
    return sink;
  };

  const RecordingSink before = collect();
  const double seconds = CostSeconds();
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  load.emplace_back(PingPong, std::ref(stop));
  load.emplace_back(Spin, std::ref(stop));
  load.emplace_back(DiskWriter, std::ref(stop));
  load.emplace_back(TcpStream, std::ref(stop));
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : load) t.join();
  const RecordingSink after = collect();

  std::map<std::string, double> ns_per_event;
  std::printf("%-20s %12s %12s %10s\n", "program", "events", "events/s", "ns/event");
  for (const std::string& runs_key : after.KeysNamed("augur_bpf_program_runs_total")) {
    const SeriesKey key = *SeriesKey::Parse(runs_key);
    const std::string program(key.label("program"));
    const std::string time_key =
        SeriesKey("augur_bpf_program_run_seconds_total", key.labels()).ToString();
    const double runs = testing::ValueOr0(after, runs_key) - testing::ValueOr0(before, runs_key);
    const double ns =
        (testing::ValueOr0(after, time_key) - testing::ValueOr0(before, time_key)) * 1e9;
    const double per_event = runs > 0 ? ns / runs : 0;
    ns_per_event[program] = per_event;
    std::printf("%-20s %12.0f %12.0f %10.1f\n", program.c_str(), runs, runs / seconds, per_event);
  }

  ASSERT_TRUE(ns_per_event.contains("sched_switch"));
  // A sanity bound, ten times the design target of 100 ns: beyond it something is badly
  // wrong (a helper call per hop, a map that never hits). The table above is the
  // measurement; the target itself is judged in docs/TELEMETRY-BPF.md because a busy VM
  // can blur a 100 ns figure.
  EXPECT_GT(ns_per_event["sched_switch"], 0);
  EXPECT_LT(ns_per_event["sched_switch"], 1000);
}

}  // namespace
}  // namespace augur::telemetry
