// SystemdNotifier against a real AF_UNIX datagram socket standing in for systemd's
// $NOTIFY_SOCKET: what it sends, and when the watchdog pings (times passed in, not slept).
#include "agent/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace augur::agent {
namespace {

class NotifySocket : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("augur-notify-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "notify").string();
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    ASSERT_LT(path_.size(), sizeof(addr.sun_path));
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    ASSERT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
  }
  void TearDown() override {
    ::unsetenv("NOTIFY_SOCKET");
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // The next datagram, or "" when none is queued.
  std::string Next() {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
    return n > 0 ? std::string(buf, size_t(n)) : std::string();
  }

  std::filesystem::path dir_;
  std::string path_;
  int fd_ = -1;
};

TEST_F(NotifySocket, ReadyReloadingStoppingAndStatusReachTheSocket) {
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  ASSERT_TRUE(n.enabled());
  EXPECT_EQ(n.watchdog_ns(), 0);
  n.Ready("sampling");
  EXPECT_EQ(Next(), "READY=1\nSTATUS=sampling");
  n.Reloading(5'000'000'123);
  EXPECT_EQ(Next(), "RELOADING=1\nMONOTONIC_USEC=5000000\nSTATUS=reloading the configuration");
  n.Status("42 series");
  EXPECT_EQ(Next(), "STATUS=42 series");
  n.Stopping("bye");
  EXPECT_EQ(Next(), "STOPPING=1\nSTATUS=bye");
  EXPECT_EQ(Next(), "");
}

TEST_F(NotifySocket, WatchdogPingsAtHalfTheIntervalOnly) {
  ::setenv("WATCHDOG_USEC", "200000", 1);  // 200 ms: a ping at most every 100 ms
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  ASSERT_EQ(n.watchdog_ns(), 200'000'000);
  const int64_t t0 = 1'000'000'000;
  EXPECT_TRUE(n.MaybePingWatchdog(t0));
  EXPECT_EQ(Next(), "WATCHDOG=1");
  EXPECT_FALSE(n.MaybePingWatchdog(t0 + 99'000'000));
  EXPECT_EQ(Next(), "");
  EXPECT_TRUE(n.MaybePingWatchdog(t0 + 100'000'000));
  EXPECT_EQ(Next(), "WATCHDOG=1");
  // Ready() (after a reload) makes the next call ping at once.
  n.Ready("again");
  EXPECT_EQ(Next(), "READY=1\nSTATUS=again");
  EXPECT_TRUE(n.MaybePingWatchdog(t0 + 101'000'000));
  EXPECT_EQ(Next(), "WATCHDOG=1");
}

TEST_F(NotifySocket, WatchdogMeantForAnotherPidIsOff) {
  // A plugin host inherits the variables; WATCHDOG_PID names augurd, not it.
  ::setenv("WATCHDOG_USEC", "200000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str(), 1);
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_EQ(n.watchdog_ns(), 0);
  EXPECT_FALSE(n.MaybePingWatchdog(1'000'000'000));
  EXPECT_EQ(Next(), "");
}

TEST(SystemdNotifier, WithoutNotifySocketNothingIsSent) {
  ::unsetenv("NOTIFY_SOCKET");
  SystemdNotifier n = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(n.enabled());
  n.Ready("x");  // must not crash or block
  EXPECT_FALSE(n.MaybePingWatchdog(1));
}

}  // namespace
}  // namespace augur::agent
