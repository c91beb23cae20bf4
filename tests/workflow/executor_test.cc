// The executor's side of the backend contract, against a recording backend: what a task is
// sent with (its origin host among the metadata) and what a finished task's status becomes
// in the history (the backend's I/O counters, not the size of the output file). Real
// SQLite store and engine thread; the end to end run on the process backend is in
// tests/integration/workflow_test.cc.
// And starts off the engine thread (start_pool.h), on the real process backend held at a
// gate in Run (a slow start): what comes meanwhile is answered, a cancel that comes for a
// start in flight stops its task as it starts, and a stop during a start leaves the task to
// the next start, which re-attaches it.
#include "workflow/executor.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "plugin/backend.h"
#include "testing/gated_backend.h"
#include "testing/process_backend.h"

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// Grants what is asked, "runs" a task by writing its output file, and reports it finished
// with fixed usage figures.
class RecordingBackend : public plugin::Backend {
 public:
  static constexpr uint64_t kRead = 123456789;
  static constexpr uint64_t kWritten = 987654321;

  const std::string& name() const override { return name_; }
  Result<plugin::BackendInfo> Describe() override { return plugin::BackendInfo{}; }
  Result<plugin::Instance> Provision(const plugin::AllocRequest& req) override {
    return plugin::Instance{req.name, req.want, plugin::InstanceState::kReady};
  }
  Result<uint32_t> Prewarm(const plugin::AllocRequest&, uint32_t) override { return 0u; }
  Result<plugin::Resources> Resize(const std::string&, const plugin::Resources& t) override {
    return t;
  }
  Result<std::string> Run(const std::string&, const plugin::Task& task) override {
    std::ofstream(task.stdout_path) << "out\n";  // 4 bytes: not what the history must show
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(task);
    return "inv-" + std::to_string(tasks_.size());
  }
  Result<plugin::TaskStatus> Poll(const std::string&, milliseconds) override {
    plugin::TaskStatus st;
    st.state = plugin::TaskState::kExited;
    st.cpu_seconds = 0.5;
    st.started_ns = 1;
    st.finished_ns = 2;
    st.bytes_read = kRead;
    st.bytes_written = kWritten;
    return st;
  }
  Status Cancel(const std::string&) override { return Status::OK(); }
  Status Release(const std::string&) override { return Status::OK(); }
  Result<plugin::RecoverResult> Recover(const std::vector<std::string>&,
                                        const std::vector<std::string>&) override {
    return plugin::RecoverResult{};
  }

  std::vector<plugin::Task> tasks() {
    std::lock_guard<std::mutex> lock(mu_);
    return tasks_;
  }

 private:
  std::string name_ = "process";
  std::mutex mu_;
  std::vector<plugin::Task> tasks_;
};

// A new directory under /tmp ("" when none could be made).
std::string MakeTempDir() {
  std::string t = "/tmp/augur-executor-test.XXXXXX";
  return ::mkdtemp(t.data()) != nullptr ? t : "";
}

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  ExecutorOptions Options() {
    ExecutorOptions o;
    o.state_dir = dir_;
    o.engine.capacity = {4, 4ULL << 30};
    o.tick = milliseconds(10);
    return o;
  }

  Result<std::unique_ptr<Executor>> Start(ExecutorOptions o) {
    return Executor::Start(std::move(o), [this](const std::string& name) -> plugin::Backend* {
      return name == "process" ? &backend_ : nullptr;
    });
  }

  // The history rows, once there are at least `n` (or what there is after 10 s).
  nlohmann::json History(Executor& e, size_t n) {
    nlohmann::json rows = nlohmann::json::array();
    for (int i = 0; i < 1000 && rows.size() < n; ++i) {
      auto h = e.HistoryJson("", 100);
      if (h) rows = nlohmann::json::parse(*h);
      if (rows.size() < n) std::this_thread::sleep_for(milliseconds(10));
    }
    return rows;
  }

  std::string dir_;
  RecordingBackend backend_;
};

constexpr char kTwoShards[] = R"(workflow: io
stages:
  - name: work
    resources: {cpu: 0.5, memory: 64Mi}
    shards: {range: [0, 2], count: 2}
    run: [sh, -c, "echo {shard.index}"]
)";

TEST_F(ExecutorTest, TasksCarryTheOriginHostAndTheHistoryTheBackendsIoCounters) {
  ExecutorOptions o = Options();
  o.host_name = "owner.example";
  auto e = Start(o);
  ASSERT_TRUE(e) << e.error().ToString();
  auto id = (*e)->Submit(kTwoShards, "test");
  ASSERT_TRUE(id) << id.error().ToString();
  nlohmann::json rows = History(**e, 2);
  ASSERT_EQ(rows.size(), 2u) << rows.dump(2);
  for (const auto& row : rows) {
    EXPECT_EQ(row["state"], "succeeded") << row.dump();
    EXPECT_EQ(row["bytes_read"].get<uint64_t>(), RecordingBackend::kRead) << row.dump();
    EXPECT_EQ(row["bytes_written"].get<uint64_t>(), RecordingBackend::kWritten) << row.dump();
  }
  std::vector<plugin::Task> tasks = backend_.tasks();
  ASSERT_GE(tasks.size(), 2u);
  for (const plugin::Task& t : tasks) {
    EXPECT_EQ(t.meta.origin_host, "owner.example") << t.meta.shard_id;
    EXPECT_EQ(t.meta.workflow, *id);
  }
}

TEST_F(ExecutorTest, TheOriginHostIsThisHostsNameUnlessSet) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(ExecutorOptions{}.host_name, host);
  EXPECT_EQ(LocalHostName(), host);
  auto e = Start(Options());
  ASSERT_TRUE(e) << e.error().ToString();
  ASSERT_TRUE((*e)->Submit(kTwoShards, "test"));
  ASSERT_EQ(History(**e, 2).size(), 2u);
  for (const plugin::Task& t : backend_.tasks()) EXPECT_EQ(t.meta.origin_host, host);
}

TEST_F(ExecutorTest, AHostNameAPluginCannotTakeIsRefusedAtStart) {
  for (const std::string& bad : {std::string("two\nlines"), std::string(256, 'h'),
                                 std::string("\xff\xfe")}) {
    ExecutorOptions o = Options();
    o.host_name = bad;
    auto e = Start(o);
    ASSERT_FALSE(e) << bad;
    EXPECT_TRUE(e.error().IsInvalidArgument()) << e.error().ToString();
    EXPECT_NE(e.error().message().find("host name"), std::string::npos) << e.error().ToString();
  }
  ExecutorOptions unknown = Options();
  unknown.host_name = "";  // allowed: "unknown"
  EXPECT_TRUE(Start(unknown));
}

// The real process backend (tests/testing/process_backend.h) behind a gate in Run.
class ExecutorStartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    cgroup_ = "augur-executor-test-" + std::to_string(::getpid());
    auto b = testing::LoadProcessBackend(cgroup_, dir_ + "/plugin");
    if (!b) GTEST_SKIP() << b.error().ToString();
    real_ = std::move(*b);
    gated_ = std::make_unique<testing::GatedBackend>(real_.get());
  }
  void TearDown() override {
    if (gated_) gated_->Open();
    executor_.reset();
    gated_.reset();
    real_.reset();
    testing::RemoveCgroupParent(cgroup_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartExecutor() {
    ExecutorOptions o = testing::TestExecutorOptions(dir_ + "/state", "h1", {2, 1ULL << 30});
    o.profile.min_samples = 2;  // the start-up time of the first test's two starts shows
    auto e = Executor::Start(std::move(o), testing::ProcessOnly(gated_.get()));
    ASSERT_TRUE(e) << e.error().ToString();
    executor_ = std::move(*e);
  }

  // The workflow's state once it is no longer running (or "running" after 20 s).
  std::string WaitDone(const std::string& id) {
    std::string state = "running";
    for (int i = 0; i < 2000 && state == "running"; ++i) {
      auto s = executor_->StatusJson(id, false);
      if (s) state = nlohmann::json::parse(*s)[0]["state"];
      if (state == "running") std::this_thread::sleep_for(milliseconds(10));
    }
    return state;
  }

  // One shard running `cmd` (sh -c).
  static std::string OneShard(const std::string& name, const std::string& cmd) {
    return "workflow: " + name +
           "\nstages:\n  - name: work\n    resources: {cpu: 0.25, memory: 32Mi}\n"
           "    run: [sh, -c, \"" + cmd + "\"]\n";
  }

  std::string dir_, cgroup_;
  std::unique_ptr<plugin::AbiBackend> real_;
  std::unique_ptr<testing::GatedBackend> gated_;
  std::unique_ptr<Executor> executor_;
};

TEST_F(ExecutorStartTest, AStartInFlightHoldsUpNeitherRequestsNorTheNextStart) {
  StartExecutor();
  auto a = executor_->Submit(OneShard("slow-a", "echo a"), "test");
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_TRUE(gated_->WaitInRun(1));
  // While that start is held: requests are answered, and another workflow's start goes to
  // the second worker.
  auto status = executor_->StatusJson(*a, false);
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(nlohmann::json::parse(*status)[0]["state"], "running");
  auto b = executor_->Submit(OneShard("slow-b", "echo b"), "test");
  ASSERT_TRUE(b) << b.error().ToString();
  EXPECT_TRUE(executor_->HistoryJson("", 10));
  ASSERT_TRUE(gated_->WaitInRun(2));
  EXPECT_EQ(gated_->runs(), 0) << "a start completed before the requests were answered";
  gated_->Open();
  EXPECT_EQ(WaitDone(*a), "succeeded");
  EXPECT_EQ(WaitDone(*b), "succeeded");
  EXPECT_EQ(executor_->Output(*a, "").value_or("?"), "a\n");
  EXPECT_EQ(executor_->Output(*b, "").value_or("?"), "b\n");
  // What start-up costs is still learned (provision + run, per backend).
  auto profile = executor_->ProfileJson("slow-a", "");
  ASSERT_TRUE(profile) << profile.error().ToString();
  const nlohmann::json startup = nlohmann::json::parse(*profile)["startup"];
  ASSERT_EQ(startup.size(), 1u) << startup.dump();
  EXPECT_EQ(startup[0]["backend"], "process");
  EXPECT_EQ(startup[0]["samples"], 2) << startup.dump();
}

TEST_F(ExecutorStartTest, ACancelDuringAStartStopsTheTaskAsItStartsAndLeaksNoInstance) {
  StartExecutor();
  auto id = executor_->Submit(OneShard("cancelled", "sleep 60; echo late"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_TRUE(gated_->WaitInRun(1));
  ASSERT_TRUE(executor_->Cancel(*id).ok());
  EXPECT_EQ(gated_->runs(), 0) << "the cancel waited for the start";
  gated_->Open();
  EXPECT_EQ(WaitDone(*id), "cancelled");
  // The task ran, was stopped at once (not after its 60 s), and its instance went back.
  nlohmann::json rows;
  for (int i = 0; i < 2000 && rows.empty(); ++i) {
    rows = nlohmann::json::parse(executor_->HistoryJson(*id, 10).value_or("[]"));
    if (rows.empty()) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_NE(rows[0]["state"], "succeeded") << rows.dump();
  ASSERT_EQ(gated_->invocations().size(), 1u);
  EXPECT_TRUE(gated_->cancelled(gated_->invocations()[0]));
  for (int i = 0; i < 2000 && !gated_->held_instances().empty(); ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gated_->held_instances().empty());
}

TEST_F(ExecutorStartTest, AStopDuringAStartLeavesTheTaskRunningForTheNextStartToReattach) {
  StartExecutor();
  auto id = executor_->Submit(OneShard("stopped", "sleep 1; echo done"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_TRUE(gated_->WaitInRun(1));
  // The stop waits for the start in flight: the gate opens while it waits (or before it
  // begins to: the outcome is the same).
  std::thread stop([&] { executor_.reset(); });
  std::this_thread::sleep_for(milliseconds(100));
  gated_->Open();
  stop.join();
  ASSERT_EQ(gated_->runs(), 1);
  ASSERT_EQ(gated_->invocations().size(), 1u);
  EXPECT_FALSE(gated_->cancelled(gated_->invocations()[0]));
  // The next start re-attaches the task: it is not run again, and its output is merged.
  StartExecutor();
  EXPECT_EQ(WaitDone(*id), "succeeded");
  EXPECT_EQ(executor_->Output(*id, "").value_or("?"), "done\n");
  EXPECT_EQ(gated_->runs(), 1);
}

}  // namespace
}  // namespace augur::workflow
