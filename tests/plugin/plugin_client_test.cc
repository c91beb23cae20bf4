// Isolation through real augur-plugin-host processes: a crashing, a hanging and a
// garbage-returning plugin each fail only their own calls and host, get restarted with
// backoff, and leave the example backend, loaded at the same time, untouched.
#include "plugin/plugin_client.h"

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "augur/plugin.h"
#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;
using testing::TempDir;
using testing::TestOptions;
using Clock = std::chrono::steady_clock;

std::unique_ptr<HostedBackend> StartOrDie(const PluginClientOptions& o) {
  auto b = HostedBackend::Start(o);
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? std::move(*b) : nullptr;
}

bool ProcessExists(int pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// Waits for the backend to come back after losing its host; returns how long it took.
milliseconds TimeUntilUp(HostedBackend& b) {
  const auto t0 = Clock::now();
  EXPECT_TRUE(b.WaitUntilUp(milliseconds(10'000)));
  return std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
}

class PluginClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    example_ = StartOrDie(TestOptions("example", runtime_, state_.path()));
    ASSERT_NE(example_, nullptr);
    ASSERT_TRUE(example_->Health().up) << example_->Health().last_error;
    example_pid_ = example_->Health().host_pid;
  }

  // The example backend still answers, from the same host, never restarted.
  void ExpectExampleUnaffected() {
    auto info = example_->Describe();
    ASSERT_TRUE(info) << info.error().ToString();
    EXPECT_EQ(info->name, "example");
    BackendHealth h = example_->Health();
    EXPECT_TRUE(h.up);
    EXPECT_EQ(h.restarts, 0u);
    EXPECT_EQ(h.host_pid, example_pid_);
  }

  TempDir runtime_;
  TempDir state_;
  std::unique_ptr<HostedBackend> example_;
  int example_pid_ = 0;
};

TEST_F(PluginClientTest, ExampleLifecycleThroughTheHost) {
  auto inst = example_->Provision({"web", {1, 1 << 20}, {0.5, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  Task t;
  t.argv = {"/bin/sh", "-c", "exit 5"};
  auto inv = example_->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();
  auto st = example_->Poll(*inv, milliseconds(5000));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->exit_code, 5);
  EXPECT_TRUE(example_->Release(inst->handle).ok());
  Status again = example_->Release(inst->handle);
  EXPECT_TRUE(again.IsNotFound()) << again.ToString();
  EXPECT_THAT(again.message(), HasSubstr("backend 'example': release: AUGUR_ERR_NOT_FOUND"));
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, AbiMismatchIsRefusedAndNotRestarted) {
  auto b = HostedBackend::Start(TestOptions("test_abi_major_2", runtime_, ""));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().message(),
            "plugin 'test_abi_major_2' (" + testing::PluginPath("test_abi_major_2") +
                ") declares plugin ABI 2.3; this agent supports plugin ABI 1.1 (same major, "
                "minor at most 1)");
  auto n = HostedBackend::Start(TestOptions("test_no_entry_symbol", runtime_, ""));
  ASSERT_FALSE(n);
  EXPECT_THAT(n.error().message(), HasSubstr("does not export augur_plugin_entry()"));
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, CrashingPluginIsRestartedWithBackoff) {
  auto crash = StartOrDie(TestOptions("test_crash", runtime_, state_.path()));
  ASSERT_NE(crash, nullptr);
  ASSERT_TRUE(crash->Health().up);
  const int first_pid = crash->Health().host_pid;
  auto info = crash->Describe();  // only provision crashes
  ASSERT_TRUE(info) << info.error().ToString();

  auto r = crash->Provision({"x", {1, 1}, {1, 1}, "", "", {}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("backend 'test_crash': provision: plugin host died"));
  EXPECT_THAT(r.error().message(), HasSubstr("was killed by signal 11 (SIGSEGV)"));
  BackendHealth h = crash->Health();
  EXPECT_FALSE(h.up);
  EXPECT_EQ(h.backoff, milliseconds(100));
  EXPECT_THAT(h.last_error, HasSubstr("SIGSEGV"));

  // Calls while it is down fail at once, saying why.
  auto down = crash->Describe();
  if (!down) {
    EXPECT_TRUE(down.error().IsUnavailable());
    EXPECT_THAT(down.error().message(), HasSubstr("restarting after"));
  }
  milliseconds first_wait = TimeUntilUp(*crash);
  EXPECT_GE(first_wait, milliseconds(80));
  h = crash->Health();
  EXPECT_EQ(h.restarts, 1u);
  EXPECT_NE(h.host_pid, first_pid);
  EXPECT_FALSE(ProcessExists(first_pid));
  ASSERT_TRUE(crash->Describe());

  // The second crash in a row waits twice as long.
  ASSERT_FALSE(crash->Provision({"x", {1, 1}, {1, 1}, "", "", {}}));
  EXPECT_EQ(crash->Health().backoff, milliseconds(200));
  milliseconds second_wait = TimeUntilUp(*crash);
  EXPECT_GE(second_wait, milliseconds(180));
  EXPECT_EQ(crash->Health().restarts, 2u);

  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, HangingPluginTimesOutAndIsKilled) {
  PluginClientOptions o = TestOptions("test_hang", runtime_, state_.path());
  o.call_timeout = milliseconds(300);
  auto hang = StartOrDie(o);
  ASSERT_NE(hang, nullptr);
  ASSERT_TRUE(hang->Health().up);
  const int pid = hang->Health().host_pid;

  const auto t0 = Clock::now();
  auto info = hang->Describe();
  const auto took = Clock::now() - t0;
  ASSERT_FALSE(info);
  EXPECT_TRUE(info.error().IsUnavailable());
  EXPECT_THAT(info.error().message(), HasSubstr("describe: no reply within 300 ms (hung plugin?)"));
  EXPECT_THAT(info.error().message(), HasSubstr("was killed by signal 9 (SIGKILL)"));
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(2000));
  EXPECT_FALSE(ProcessExists(pid));

  TimeUntilUp(*hang);
  EXPECT_EQ(hang->Health().restarts, 1u);
  // Other calls on the new host work: only describe hangs.
  auto inst = hang->Provision({"x", {1, 1}, {1, 1}, "", "", {}});
  EXPECT_TRUE(inst) << inst.error().ToString();
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, GarbageAnswersRestartTheHost) {
  auto garbage = StartOrDie(TestOptions("test_garbage", runtime_, ""));
  ASSERT_NE(garbage, nullptr);
  uint64_t restarts = 0;
  auto expect_restarted = [&](const Status& s, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(s.IsCorruption()) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(what));
    EXPECT_THAT(s.message(), HasSubstr("its plugin host was killed and is being restarted"));
    ASSERT_TRUE(garbage->WaitUntilUp(milliseconds(10'000)));
    EXPECT_EQ(garbage->Health().restarts, ++restarts);
  };
  expect_restarted(garbage->Describe().error(),
                   "backend 'test_garbage': describe: the plugin broke the ABI contract: "
                   "describe: name is NULL");
  expect_restarted(garbage->Provision({"x", {1, 1}, {1, 1}, "", "", {}}).error(),
                   "instance handle has no NUL within 128 bytes");
  expect_restarted(garbage->Poll("inv-1", milliseconds(0)).error(),
                   "task state is 99, not an AUGUR_TASK_* value");
  expect_restarted(garbage->Poll("inv-io-huge", milliseconds(0)).error(),
                   "backend 'test_garbage': poll: the plugin broke the ABI contract: poll: "
                   "bytes_written is 18446744073709551615, more than 9223372036854775807");
  expect_restarted(garbage->Cancel("inv-1"), "returned 12345");
  expect_restarted(garbage->Release("inst-1"), "last_error() is longer than 4096 bytes");
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, RecoverReattachesATaskAfterTheHostIsKilled) {
  auto inst = example_->Provision({"batch", {1, 1 << 20}, {1, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  Task t;
  t.argv = {"/bin/sh", "-c", "sleep 0.7; exit 7"};
  auto inv = example_->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();

  ASSERT_EQ(::kill(example_pid_, SIGKILL), 0);
  // The next call sees the dead host (or the backend is already restarting).
  auto during = example_->Describe();
  EXPECT_FALSE(during);
  TimeUntilUp(*example_);
  BackendHealth h = example_->Health();
  EXPECT_EQ(h.restarts, 1u);
  EXPECT_EQ(h.recovered_instances, 1u);
  EXPECT_EQ(h.lost_instances, 0u);
  EXPECT_THAT(h.last_error, HasSubstr("was killed by signal 9"));

  // The task outlived its host; the new host reports its real exit code.
  auto st = example_->Poll(*inv, milliseconds(5000));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->exit_code, 7);
  EXPECT_TRUE(example_->Release(inst->handle).ok());
}

// A plugin of ABI 1.0 through a real host: loaded (its minor reported), its tasks run and
// report no I/O counters, and the backend beside it is unaffected.
TEST_F(PluginClientTest, APluginOfAbi1_0RunsThroughTheHost) {
  auto old = StartOrDie(TestOptions("test_example_abi_1_0", runtime_, state_.path()));
  ASSERT_NE(old, nullptr);
  BackendHealth h = old->Health();
  ASSERT_TRUE(h.up) << h.last_error;
  EXPECT_EQ(h.abi_major, 1u);
  EXPECT_EQ(h.abi_minor, 0u);
  EXPECT_EQ(example_->Health().abi_minor, uint32_t{AUGUR_PLUGIN_ABI_MINOR});
  auto inst = old->Provision({"old", {1, 1 << 20}, {1, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  Task t;
  t.argv = {"/bin/sh", "-c", "exit 4"};
  t.meta.origin_host = "owner";
  auto inv = old->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();
  auto st = old->Poll(*inv, milliseconds(5000));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->exit_code, 4);
  EXPECT_EQ(st->bytes_read, 0u);
  EXPECT_EQ(st->bytes_written, 0u);
  EXPECT_TRUE(old->Release(inst->handle).ok());
  EXPECT_EQ(old->Health().restarts, 0u);
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, RecoverAfterAnAgentRestartFromPersistedHandles) {
  std::string handle, inv;
  {
    auto inst = example_->Provision({"long", {1, 1 << 20}, {1, 1 << 20}, "", "", {}});
    ASSERT_TRUE(inst) << inst.error().ToString();
    handle = inst->handle;
    Task t;
    t.argv = {"/bin/sleep", "30"};
    auto r = example_->Run(handle, t);
    ASSERT_TRUE(r) << r.error().ToString();
    inv = *r;
    example_.reset();  // the agent stops; instances and tasks stay
  }
  auto again = StartOrDie(TestOptions("example", runtime_, state_.path()));
  ASSERT_NE(again, nullptr);
  BackendHealth h = again->Health();
  ASSERT_TRUE(h.up) << h.last_error;
  EXPECT_EQ(h.recovered_instances, 1u);
  auto st = again->Poll(inv, milliseconds(0));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kRunning);
  ASSERT_TRUE(again->Cancel(inv).ok());
  st = again->Poll(inv, milliseconds(2000));
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, TaskState::kKilled);
  EXPECT_EQ(st->term_signal, SIGKILL);
  EXPECT_TRUE(again->Release(handle).ok());
}

TEST_F(PluginClientTest, HostDeathBetweenCallsIsNoticedWithoutACall) {
  ASSERT_EQ(::kill(example_pid_, SIGKILL), 0);
  // No call is made: the supervisor must see the death and restart on its own.
  const auto deadline = Clock::now() + milliseconds(5000);
  while (example_->Health().restarts == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  BackendHealth h = example_->Health();
  EXPECT_EQ(h.restarts, 1u);
  EXPECT_THAT(h.last_error, HasSubstr("plugin host died between calls"));
  EXPECT_THAT(h.last_error, HasSubstr("was killed by signal 9 (SIGKILL)"));
  EXPECT_TRUE(example_->WaitUntilUp(milliseconds(5000)));
  EXPECT_NE(example_->Health().host_pid, example_pid_);
}

TEST_F(PluginClientTest, ConcurrentCallsAllSucceed) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 20; ++k) {
        if (!example_->Describe()) ++failures;
        auto inst = example_->Provision(
            {"t" + std::to_string(i) + "-" + std::to_string(k), {0.01, 1}, {0.01, 1}, "", "", {}});
        if (!inst || !example_->Release(inst->handle).ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ExpectExampleUnaffected();
}

TEST_F(PluginClientTest, HostGoesAwayWithTheBackend) {
  auto b = StartOrDie(TestOptions("test_crash", runtime_, ""));
  ASSERT_NE(b, nullptr);
  const int pid = b->Health().host_pid;
  ASSERT_TRUE(ProcessExists(pid));
  b.reset();
  EXPECT_FALSE(ProcessExists(pid));
}

}  // namespace
}  // namespace augur::plugin
