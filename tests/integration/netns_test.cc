// The multi-host test bed (tests/testing/netns.h over bench/mesh/netns.sh): hosts reach each
// other and nothing of the bed shows in the root namespace; loss, partitions and heal do what
// they say; teardown leaves no namespace and no process behind. Needs root; skips otherwise.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "testing/netns.h"

namespace augur {
namespace {

using testing::NetnsBed;
using testing::Run;

sockaddr_in AddrOf(int k, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, NetnsBed::Addr(k).c_str(), &a.sin_addr);
  return a;
}

// A TCP listener of host k on an ephemeral port; returns {fd, port}.
std::pair<int, uint16_t> Listen(NetnsBed& bed, int k) {
  int fd = bed.Socket(k, SOCK_STREAM);
  sockaddr_in a = AddrOf(k, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 16) != 0) {
    return {-1, 0};
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return {fd, ntohs(a.sin_port)};
}

// A non-blocking UDP socket of host k on an ephemeral port; returns {fd, its address}.
std::pair<int, sockaddr_in> UdpReceiver(NetnsBed& bed, int k) {
  int fd = bed.Socket(k, SOCK_DGRAM | SOCK_NONBLOCK);
  sockaddr_in a = AddrOf(k, 0);
  socklen_t len = sizeof(a);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return {-1, a};
  }
  return {fd, a};
}

// Whether host `from` completes a TCP handshake with host `to` within `timeout_ms`.
bool Connects(NetnsBed& bed, int from, int to, uint16_t port, int timeout_ms = 1000) {
  int fd = bed.Socket(from, SOCK_STREAM | SOCK_NONBLOCK);
  if (fd < 0) return false;
  sockaddr_in a = AddrOf(to, port);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof(err);
    ok = poll(&p, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
         err == 0;
  }
  close(fd);
  return ok;
}

// How long a connect may take just after a cut is lifted. Frames are dropped below IP, ARP's
// too: the sender's neighbour entry for the peer may still be resolving, with the SYN queued
// behind an ARP request sent up to a second later (retrans_time 1 s), so a 1 s wait would race.
constexpr int kAfterCutMs = 3000;

std::set<std::string> RootInterfaces() {
  std::set<std::string> out;
  struct if_nameindex* all = if_nameindex();
  if (all == nullptr) return out;
  for (struct if_nameindex* i = all; i->if_index != 0; ++i) out.insert(i->if_name);
  if_freenameindex(all);
  return out;
}

// IPv4 addresses of the root namespace inside 198.18.0.0/15.
std::vector<std::string> RootAddressesInTestRange() {
  std::vector<std::string> out;
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return out;
  for (ifaddrs* i = all; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    in_addr a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    if ((ntohl(a.s_addr) & 0xfffe0000u) == 0xc6120000u) out.push_back(i->ifa_name);
  }
  freeifaddrs(all);
  return out;
}

std::string NamespacesNamed(const std::string& id) {
  std::string out;
  std::istringstream in(Run({"/usr/bin/env", "ip", "netns", "list"}).out);
  for (std::string line; std::getline(in, line);) {
    if (line.find("augur-" + id + "-") == 0) out += line + "\n";
  }
  return out;
}

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string& why = NetnsBed::Unavailable(); !why.empty()) GTEST_SKIP() << why;
  }
};

TEST_F(NetnsTest, HostsReachEachOtherAndTheRootNamespaceGainsNothing) {
  const std::set<std::string> before = RootInterfaces();
  NetnsBed bed(3);
  ASSERT_TRUE(bed.ok()) << bed.error();

  auto [listener, port] = Listen(bed, 3);
  ASSERT_GE(listener, 0);
  EXPECT_TRUE(Connects(bed, 1, 3, port));
  EXPECT_TRUE(Connects(bed, 2, 3, port));
  close(listener);

  // A command spawned in host 2 sees host 2's address and no other.
  auto addr = bed.RunIn(2, {"ip", "-o", "-4", "addr", "show"});
  EXPECT_EQ(addr.code, 0) << addr.err;
  EXPECT_NE(addr.out.find("198.18.0.2/16"), std::string::npos) << addr.out;
  EXPECT_EQ(addr.out.find("198.18.0.1/"), std::string::npos) << addr.out;

  // The root namespace has no interface more than before and no address in the test range;
  // the bridge (in the switch namespace) has exactly the hosts' ports.
  EXPECT_EQ(RootInterfaces(), before);
  EXPECT_TRUE(RootAddressesInTestRange().empty());
  auto ports = testing::Run(
      {"/usr/bin/env", "ip", "-n", bed.SwitchName(), "-o", "link", "show", "master", "br0"});
  EXPECT_EQ(std::count(ports.out.begin(), ports.out.end(), '\n'), 3) << ports.out;
}

TEST_F(NetnsTest, FullLossBlocksPartialLossDropsItsShareAndZeroRestores) {
  NetnsBed bed(2);
  ASSERT_TRUE(bed.ok()) << bed.error();
  auto [listener, port] = Listen(bed, 2);
  ASSERT_GE(listener, 0);

  ASSERT_TRUE(bed.Loss(2, 100));
  EXPECT_FALSE(Connects(bed, 1, 2, port));
  ASSERT_TRUE(bed.Loss(2, 0));
  EXPECT_TRUE(Connects(bed, 1, 2, port, kAfterCutMs));

  // 50 % inbound loss on host 2: of 400 datagrams, 200 ± 10 (one standard deviation) arrive;
  // outside 120..280 has a probability below 1e-14.
  auto [rx, to] = UdpReceiver(bed, 2);
  ASSERT_GE(rx, 0);
  int tx = bed.Socket(1, SOCK_DGRAM);
  auto sent_before = bed.CountersOf(1);
  auto got_before = bed.CountersOf(2);
  ASSERT_TRUE(sent_before.has_value() && got_before.has_value());
  ASSERT_TRUE(bed.Loss(2, 50, "in"));
  for (int i = 0; i < 400; ++i) {
    sendto(tx, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    if (i % 50 == 49) usleep(1000);  // Stay well inside the receive buffer.
  }
  usleep(200 * 1000);
  int received = 0;
  char buf[16];
  while (recv(rx, buf, sizeof(buf), 0) == 1) ++received;
  EXPECT_GE(received, 120);
  EXPECT_LE(received, 280);
  // Host 1 counts every datagram as sent (the loss is on host 2's way in); host 2 counts those
  // that got through as received: 29 bytes each (IP and UDP headers and the payload).
  auto sent_after = bed.CountersOf(1);
  auto got_after = bed.CountersOf(2);
  ASSERT_TRUE(sent_after.has_value() && got_after.has_value());
  EXPECT_EQ(sent_after->tx_packets - sent_before->tx_packets, 400u);
  EXPECT_EQ(sent_after->tx_bytes - sent_before->tx_bytes, 400u * 29);
  EXPECT_EQ(got_after->rx_packets - got_before->rx_packets, static_cast<uint64_t>(received));
  close(rx);
  close(tx);
  close(listener);
}

TEST_F(NetnsTest, PartitionBlocksOnlyAcrossGroupsAndHealRestores) {
  NetnsBed bed(4);
  ASSERT_TRUE(bed.ok()) << bed.error();
  std::vector<std::pair<int, uint16_t>> listeners;
  for (int k = 1; k <= 4; ++k) {
    listeners.push_back(Listen(bed, k));
    ASSERT_GE(listeners.back().first, 0);
  }
  auto port = [&](int k) { return listeners[k - 1].second; };

  ASSERT_TRUE(bed.Partition({1, 2}, {3, 4}));
  EXPECT_TRUE(Connects(bed, 1, 2, port(2)));
  EXPECT_TRUE(Connects(bed, 4, 3, port(3)));
  EXPECT_FALSE(Connects(bed, 1, 3, port(3), 300));
  EXPECT_FALSE(Connects(bed, 4, 2, port(2), 300));
  // Frames vanish as on a cut wire: the sender's send succeeds (an EPERM from a local filter
  // would tell the agent, which then skips the probe instead of suspecting the peer).
  auto [rx, to] = UdpReceiver(bed, 3);
  ASSERT_GE(rx, 0);
  int tx = bed.Socket(1, SOCK_DGRAM);
  EXPECT_EQ(sendto(tx, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1) << errno;
  usleep(100 * 1000);
  char buf[4];
  EXPECT_EQ(recv(rx, buf, sizeof(buf), 0), -1);
  close(rx);
  close(tx);

  ASSERT_TRUE(bed.Heal());
  EXPECT_TRUE(Connects(bed, 1, 3, port(3), kAfterCutMs));
  EXPECT_TRUE(Connects(bed, 4, 2, port(2), kAfterCutMs));
  for (auto [fd, p] : listeners) close(fd);
}

TEST_F(NetnsTest, TeardownLeavesNoNamespaceAndNoProcess) {
  std::string id;
  pid_t sleeper = -1;
  {
    NetnsBed bed(2);
    ASSERT_TRUE(bed.ok()) << bed.error();
    id = bed.id();
    const std::string names = NamespacesNamed(id);
    EXPECT_EQ(std::count(names.begin(), names.end(), '\n'), 3) << names;
    sleeper = bed.Spawn(1, {"sleep", "60"}).pid();
    ASSERT_TRUE(testing::WaitFor([&] { return kill(sleeper, 0) == 0; }, std::chrono::seconds(2)));
  }
  EXPECT_EQ(NamespacesNamed(id), "");
  EXPECT_NE(kill(sleeper, 0), 0);
}

}  // namespace
}  // namespace augur
