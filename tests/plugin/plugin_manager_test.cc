#include "plugin/plugin_manager.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

PluginManagerOptions ProbingOptions(const testing::TempDir& state, const testing::TempDir& runtime,
                                    std::vector<std::string> enabled) {
  PluginManagerOptions o;
  o.dir = std::string(AUGUR_BUILD_DIR) + "/plugins";
  o.enabled = std::move(enabled);
  o.state_dir = state.path();
  o.host_path = testing::HostPath();
  o.runtime_parent = runtime.path();
  o.call_timeout = 300ms;
  o.health_interval = 100ms;
  o.backoff_initial = 50ms;
  o.backoff_max = 200ms;
  return o;
}

// The first health of `name` that satisfies `pred`, waiting up to `wait` (generous: the
// machine may be loaded); the last one seen otherwise.
BackendHealth WaitForHealth(const PluginManager& m, const std::string& name,
                            const std::function<bool(const BackendHealth&)>& pred,
                            std::chrono::milliseconds wait = 20s) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  BackendHealth last;
  while (std::chrono::steady_clock::now() < deadline) {
    for (const BackendHealth& h : m.Health()) {
      if (h.name != name) continue;
      last = h;
      if (pred(h)) return h;
    }
    std::this_thread::sleep_for(20ms);
  }
  return last;
}

TEST(PluginManagerTest, LoadsWhatItCanAndReportsTheRest) {
  testing::TempDir state, runtime;
  PluginManagerOptions o;
  o.dir = std::string(AUGUR_BUILD_DIR) + "/plugins";
  o.enabled = {"example", "test_abi_major_2", "missing"};
  o.state_dir = state.path();
  o.host_path = testing::HostPath();
  o.runtime_parent = runtime.path();
  o.config["example"] = {{"cpu_cores", "3"}};
  std::string runtime_dir;
  {
    auto m = PluginManager::Start(o);
    ASSERT_TRUE(m) << m.error().ToString();
    runtime_dir = (*m)->runtime_dir();
    EXPECT_EQ(std::filesystem::status(runtime_dir).permissions(), std::filesystem::perms::owner_all);
    std::vector<BackendHealth> h = (*m)->Health();
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].name, "example");
    EXPECT_TRUE(h[0].up) << h[0].last_error;
    EXPECT_EQ(h[1].state, HostState::kRefused);
    EXPECT_THAT(h[1].last_error, HasSubstr("declares plugin ABI 2.3"));
    EXPECT_EQ(h[2].state, HostState::kRefused);
    EXPECT_THAT(h[2].last_error, HasSubstr("augur-missing.so): no such file"));

    Backend* example = (*m)->Find("example");
    ASSERT_NE(example, nullptr);
    auto info = example->Describe();
    ASSERT_TRUE(info) << info.error().ToString();
    EXPECT_EQ(info->capacity.cpu_cores, 3);  // plugins.config.example reached init()
    EXPECT_EQ((*m)->Find("test_abi_major_2"), nullptr);
    EXPECT_EQ((*m)->Find("nope"), nullptr);
  }
  EXPECT_FALSE(std::filesystem::exists(runtime_dir));
}

// The hardening issue: a plugin whose describe() hangs stayed augur_backend_up 1.
TEST(PluginManagerTest, AHangingDescribeIsReportedDownAndItsHostRestarted) {
  testing::TempDir state, runtime;
  auto m = PluginManager::Start(ProbingOptions(state, runtime, {"test_hang", "example"}));
  ASSERT_TRUE(m) << m.error().ToString();
  BackendHealth h = WaitForHealth(**m, "test_hang", [](const BackendHealth& b) {
    return b.restarts >= 2 && b.reason == HealthReason::kTimeout;
  });
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.reason, HealthReason::kTimeout) << h.health_detail;
  EXPECT_THAT(h.health_detail, HasSubstr("describe timed out"));
  EXPECT_THAT(h.health_detail, HasSubstr("no reply within 300 ms"));
  EXPECT_GE(h.restarts, 2u) << "the hung host was not restarted under the backoff";
  EXPECT_NE(h.last_check, std::chrono::system_clock::time_point{});
  // The other backend, in its own host, is unaffected.
  BackendHealth ex =
      WaitForHealth(**m, "example", [](const BackendHealth& b) { return b.healthy; });
  EXPECT_TRUE(ex.healthy) << ex.health_detail;
  EXPECT_EQ(ex.restarts, 0u);
}

// ... and one that answers garbage (a NULL name) likewise.
TEST(PluginManagerTest, AGarbageDescribeIsReportedAsAContractViolation) {
  testing::TempDir state, runtime;
  auto m = PluginManager::Start(ProbingOptions(state, runtime, {"test_garbage"}));
  ASSERT_TRUE(m) << m.error().ToString();
  BackendHealth h = WaitForHealth(**m, "test_garbage", [](const BackendHealth& b) {
    return b.restarts >= 2 && b.reason == HealthReason::kContract;
  });
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.reason, HealthReason::kContract) << h.health_detail;
  EXPECT_THAT(h.health_detail, HasSubstr("broke the ABI contract"));
  EXPECT_THAT(h.health_detail, HasSubstr("name is NULL"));
  EXPECT_GE(h.restarts, 2u);
}

TEST(PluginManagerTest, APluginThatSaysUnhealthyIsDownButNotRestarted) {
  testing::TempDir state, runtime;
  auto m = PluginManager::Start(ProbingOptions(state, runtime, {"test_unhealthy"}));
  ASSERT_TRUE(m) << m.error().ToString();
  BackendHealth h = WaitForHealth(**m, "test_unhealthy", [](const BackendHealth& b) {
    return b.reason == HealthReason::kPluginUnhealthy;
  });
  EXPECT_TRUE(h.up);  // the host works
  EXPECT_FALSE(h.healthy);
  EXPECT_EQ(h.reason, HealthReason::kPluginUnhealthy);
  EXPECT_THAT(h.health_detail, HasSubstr("scratch disk full"));
  std::this_thread::sleep_for(500ms);  // several probes
  EXPECT_EQ((*m)->Health()[0].restarts, 0u);
}

TEST(PluginManagerTest, AWorkingBackendIsHealthyWithItsCapacity) {
  testing::TempDir state, runtime;
  PluginManagerOptions o = ProbingOptions(state, runtime, {"example"});
  o.config["example"] = {{"cpu_cores", "3"}};
  auto m = PluginManager::Start(o);
  ASSERT_TRUE(m) << m.error().ToString();
  BackendHealth h = WaitForHealth(**m, "example", [](const BackendHealth& b) { return b.healthy; });
  EXPECT_TRUE(h.healthy) << h.health_detail;
  EXPECT_EQ(h.reason, HealthReason::kOk);
  EXPECT_EQ(h.health_detail, "");
  EXPECT_EQ(h.capacity.cpu_cores, 3);
  const auto first = h.last_check;
  h = WaitForHealth(**m, "example", [&](const BackendHealth& b) { return b.last_check > first; });
  EXPECT_GT(h.last_check, first) << "not probed again";
  EXPECT_TRUE(h.healthy);
  EXPECT_EQ(h.restarts, 0u);
}

// After kill -9 of augurd its hosts die, but its socket directory stayed behind.
TEST(PluginManagerTest, StartRemovesSocketDirectoriesOfDeadAgents) {
  testing::TempDir runtime, state, elsewhere;
  // A pid that is certainly dead: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  // And one not reaped yet: an agent killed with SIGKILL is a zombie until its parent
  // reaps it.
  const pid_t zombie = ::fork();
  if (zombie == 0) ::_exit(0);
  ASSERT_GT(zombie, 0);
  siginfo_t si{};
  ASSERT_EQ(::waitid(P_PID, zombie, &si, WEXITED | WNOWAIT), 0);  // exited, left unreaped
  const std::string parent = runtime.path();
  const std::string stale = fmt::format("{}/augur-plugins.{}.AbC123", parent, dead);
  ASSERT_TRUE(std::filesystem::create_directory(stale));
  std::ofstream(stale + "/example.1.sock") << "x";
  // Kept: a live process's (ours), an old-style name with no pid, a symlink by the stale
  // pattern (never followed into the directory it points at), and a plain file.
  const std::string live = fmt::format("{}/augur-plugins.{}.XyZ789", parent, ::getpid());
  const std::string old_style = parent + "/augur-plugins.Qw3rty";
  ASSERT_TRUE(std::filesystem::create_directory(live));
  ASSERT_TRUE(std::filesystem::create_directory(old_style));
  std::ofstream(elsewhere.path() + "/precious") << "x";
  const std::string link = fmt::format("{}/augur-plugins.{}.LiNk00", parent, dead);
  std::filesystem::create_directory_symlink(elsewhere.path(), link);
  const std::string file = fmt::format("{}/augur-plugins.{}.FiLe00", parent, dead);
  std::ofstream(file) << "x";

  const std::string zombie_dir = fmt::format("{}/augur-plugins.{}.ZoMb1e", parent, zombie);
  ASSERT_TRUE(std::filesystem::create_directory(zombie_dir));

  auto m = PluginManager::Start(ProbingOptions(state, runtime, {"example"}));
  ::waitpid(zombie, nullptr, 0);
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_FALSE(std::filesystem::exists(zombie_dir)) << "a zombie's directory was kept";
  EXPECT_TRUE(std::filesystem::exists(live));
  EXPECT_TRUE(std::filesystem::exists(old_style));
  EXPECT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_TRUE(std::filesystem::exists(elsewhere.path() + "/precious"));
  EXPECT_TRUE(std::filesystem::exists(file));
  // Its own directory names its pid, so that the next agent can tell it is alive.
  EXPECT_THAT((*m)->runtime_dir(),
              ::testing::StartsWith(fmt::format("{}/augur-plugins.{}.", parent, ::getpid())));
}

}  // namespace
}  // namespace augur::plugin
