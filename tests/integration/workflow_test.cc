// The workflow engine end to end: a real augurd with the process backend (cgroups), driven
// by augurctl over the control socket. Each example in examples/ is checked against a direct
// computation; then kill -9 halfway, an OOM retried with more memory, a high-priority
// workflow shrinking a low one's grant (read from the cgroup files) and growing it back, an
// unprivileged user refused, shards charged at the backend's price under a budget, a
// straggler re-run in pieces, and pre-warming. Needs root (cgroups); skips, saying so,
// without it.
#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/temp_segment.h"
#include "integration/subprocess.h"
#include "workflow/store.h"

namespace augur {
namespace {

namespace fs = std::filesystem;
using testing::BuildPath;
using testing::Subprocess;
using testing::WaitFor;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string Sh(const std::string& cmd) {
  auto r = testing::Run({"/bin/sh", "-c", cmd}, 60s);
  return r.out;
}

class WorkflowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: the process backend makes cgroups";
    if (access("/sys/fs/cgroup/cpu", W_OK) != 0 && access("/sys/fs/cgroup/cgroup.procs", W_OK) != 0) {
      GTEST_SKIP() << "no writable cgroup hierarchy here";
    }
    name_ = "augur-wf-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = "/tmp/" + name_;
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    socket_ = dir_ + "/augur.sock";
  }
  void TearDown() override {
    agent_.reset();
    // The backend's parent cgroup, left empty by released instances.
    Sh("for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir ${h}" + name_ + " 2>/dev/null; done");
    // The telemetry segment (113 MiB): an agent a test killed leaves it behind.
    testing::TempSegmentName::Remove(name_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void WriteConfig(const std::string& workflows_extra = "", const std::string& process_extra = "") {
    std::ofstream f(dir_ + "/augur.yaml");
    f << "telemetry:\n  interval: 500ms\n  ebpf: off\n  shm_name: " << name_
      << "\nmetrics:\n  enabled: false\nforecast:\n  enabled: false\n"
      << "plugins:\n  dir: " << BuildPath("plugins") << "\n  enabled: [process]\n  state_dir: "
      << dir_ << "/plugins\n  config:\n    process:\n      cgroup_parent: " << name_
      << "\n" << process_extra << "control:\n  socket: " << socket_ << "\nworkflows:\n  state_dir: " << dir_
      << "/wf\n"
      << workflows_extra;
  }
  void StartAgent() {
    agent_ = std::make_unique<Subprocess>(
        std::vector<std::string>{BuildPath("agent/augurd"), "--config", dir_ + "/augur.yaml"});
    ASSERT_TRUE(WaitFor([&] { return access(socket_.c_str(), F_OK) == 0 || !agent_->running(); },
                        20s));
    ASSERT_TRUE(agent_->running()) << agent_->err();
  }
  testing::RunResult Ctl(std::vector<std::string> args, std::chrono::milliseconds t = 60s) {
    std::vector<std::string> argv = {BuildPath("agent/augurctl"), "--socket", socket_};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, t);
  }
  std::string Submit(const std::string& file) {
    auto r = Ctl({"submit", file});
    EXPECT_EQ(r.code, 0) << r.err;
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') id.pop_back();
    return id;
  }
  // The workflow's status object; an empty object while augurd does not answer.
  nlohmann::json Status(const std::string& id) {
    auto r = Ctl({"status", id, "--json", "--explain"});
    if (r.code != 0) return nlohmann::json::object();
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_array() && !j.empty() ? j[0] : nlohmann::json::object();
  }
  std::string WaitDone(const std::string& id, std::chrono::seconds t = 60s) {
    std::string state;
    WaitFor([&] {
      state = Status(id).value("state", "");
      return state != "" && state != "running";
    }, t);
    return state;
  }
  std::string Example(const std::string& name) {
    return std::string(AUGUR_SOURCE_DIR) + "/examples/" + name;
  }
  std::string WriteWorkflow(const std::string& file, const std::string& text) {
    std::ofstream(dir_ + "/" + file) << text;
    return dir_ + "/" + file;
  }

  std::string name_, dir_, socket_;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(WorkflowTest, TheExamplesMatchADirectComputation) {
  WriteConfig("  max_memory: 1Gi\n");  // a small host: examples/tight.yaml must split
  StartAgent();
  Sh("head -c 8M /dev/urandom > /tmp/augur-example-input");
  const std::string fan = Submit(Example("fanout.yaml"));
  const std::string sum = Submit(Example("checksum.yaml"));
  const std::string tight = Submit(Example("tight.yaml"));
  for (const std::string& id : {fan, sum, tight}) {
    EXPECT_EQ(WaitDone(id), "succeeded") << id << "\n" << Status(id).dump(2) << agent_->err();
  }
  EXPECT_EQ(Ctl({"result", fan}).out,
            Sh("seq 1 10000 | awk '{s+=$1*$1+$1*$1*$1} END {printf \"%.0f\\n\", s}'"));
  EXPECT_EQ(Ctl({"result", sum}).out,
            Sh("for i in 0 1 2 3 4 5 6 7; do dd if=/tmp/augur-example-input bs=1M skip=$i "
               "count=1 2>/dev/null | cksum; done"));
  EXPECT_EQ(Ctl({"result", tight}).out, Sh("seq 1 200000 | wc -w"));
  // It really split: 4 GiB wanted, at least 2 GiB, on a host that grants 1 GiB.
  const nlohmann::json t = Status(tight);
  EXPECT_GT(t["stages"][0]["shards"].get<int>(), 1) << t.dump(2);
  EXPECT_NE(t["stages"][0]["note"].get<std::string>().find("split"), std::string::npos);
  // A stage other than the last, by name.
  EXPECT_EQ(Ctl({"result", "fanout", "numbers"}).out, Sh("seq 1 10000"));
  // History has every attempt, with what it used: one success per shard (an attempt the
  // backend could not provision while merges held some of its capacity shows as lost).
  auto h = nlohmann::json::parse(Ctl({"history", "checksum", "--json"}).out);
  std::multiset<int> ok;
  for (const auto& row : h) {
    if (row["state"] != "succeeded") {
      EXPECT_EQ(row["state"], "lost") << row.dump();
      continue;
    }
    ok.insert(row["shard"].get<int>());
    EXPECT_GT(row["wall_seconds"].get<double>(), 0);
    // Its cksum line, as the backend counts writes: one dirtied page of the output file.
    EXPECT_GT(row["bytes_written"].get<uint64_t>(), 0u);
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ok.count(i), 1u) << "shard " << i;
}

TEST_F(WorkflowTest, KillNineHalfwayThenRestartGivesTheSameOutputWithNoShardTwice) {
  WriteConfig("  max_cpu: 2\n");
  StartAgent();
  const std::string wf = WriteWorkflow("slow.yaml", R"(workflow: slow
stages:
  - name: tick
    resources: {cpu: 1, memory: 32Mi}
    shards: {range: [0, 8], count: 8}
    run: [sh, -c, "sleep 1; echo shard {shard.index}"]
)");
  const std::string id = Submit(wf);
  ASSERT_FALSE(id.empty());
  // Some shards done, some running.
  ASSERT_TRUE(WaitFor([&] {
    auto st = Status(id);
    return st.contains("stages") && st["stages"][0]["counts"].value("succeeded", 0) >= 3;
  }, 30s));
  agent_->Signal(SIGKILL);
  agent_->Wait(10s);
  StartAgent();
  // Its socket file outlived the kill; wait for the new agent to answer on it.
  ASSERT_TRUE(WaitFor([&] { return Ctl({"status"}).code == 0; }, 20s)) << agent_->err();
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out,
            Sh("for i in 0 1 2 3 4 5 6 7; do echo shard $i; done"));
  // Every shard has exactly one successful attempt in the history.
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json", "--limit", "1000"}).out);
  std::multiset<int> ok;
  for (const auto& row : h) {
    if (row["state"] == "succeeded") ok.insert(row["shard"].get<int>());
  }
  for (int i = 0; i < 8; ++i) EXPECT_EQ(ok.count(i), 1u) << "shard " << i << "\n" << h.dump(2);
}

TEST_F(WorkflowTest, AnOomKilledShardSucceedsOnRetryWithMoreMemory) {
  WriteConfig();
  StartAgent();
  const std::string wf = WriteWorkflow("oom.yaml", R"(workflow: oom
stages:
  - name: grow
    resources: {cpu: 1, memory: 48Mi}
    retries: {count: 2, backoff: 100ms, grow_memory: 3}
    run: [sh, -c, "dd if=/dev/zero of=/dev/null bs=90M count=1 2>/dev/null && echo filled"]
)");
  const std::string id = Submit(wf);
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out, "filled\n");
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json"}).out);
  std::vector<std::string> states;
  for (const auto& row : h) states.push_back(row["state"]);
  EXPECT_NE(std::find(states.begin(), states.end(), "oom"), states.end()) << h.dump(2);
}

// Each attempt's storage I/O, as the process backend measures it (/proc/PID/io of the task at
// reap time), reaches the history and augurctl's table: a shard writes 4 MiB (fsync) and
// reads it back with O_DIRECT, so both directions reach the disk.
TEST_F(WorkflowTest, TheHistoryHasEachShardsStorageBytes) {
  struct statfs st {};
  ASSERT_EQ(statfs(dir_.c_str(), &st), 0);
  if (st.f_type == TMPFS_MAGIC) GTEST_SKIP() << dir_ << " is on tmpfs: no storage I/O to count";
  WriteConfig();
  StartAgent();
  const std::string id = Submit(WriteWorkflow("io.yaml", R"(workflow: io
stages:
  - name: write
    resources: {cpu: 0.5, memory: 64Mi}
    shards: {range: [0, 2], count: 2}
    run: [sh, -c, "f=part.{shard.index}; dd if=/dev/zero of=$f bs=1M count=4 conv=fsync 2>/dev/null && dd if=$f of=/dev/null bs=1M iflag=direct 2>/dev/null && rm $f && echo ok"]
)"));
  ASSERT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json"}).out);
  ASSERT_EQ(h.size(), 2u) << h.dump(2);
  constexpr uint64_t kMiB = 1ULL << 20;
  for (const auto& row : h) {
    EXPECT_EQ(row["state"], "succeeded") << row.dump();
    // The 4 MiB file and the 3-byte output (one page); not the output file's size alone.
    EXPECT_GE(row["bytes_written"].get<uint64_t>(), 4 * kMiB) << row.dump();
    EXPECT_LE(row["bytes_written"].get<uint64_t>(), 5 * kMiB) << row.dump();
    EXPECT_GE(row["bytes_read"].get<uint64_t>(), 4 * kMiB) << row.dump();
    EXPECT_LE(row["bytes_read"].get<uint64_t>(), 8 * kMiB) << row.dump();
  }
  // The table shows both columns, with the same figures.
  const std::string table = Ctl({"history", id}).out;
  EXPECT_NE(table.find("BYTES IN"), std::string::npos) << table;
  EXPECT_NE(table.find("BYTES OUT"), std::string::npos) << table;
  EXPECT_NE(table.find(std::to_string(h[0]["bytes_read"].get<uint64_t>())), std::string::npos)
      << table;
  EXPECT_NE(table.find(std::to_string(h[0]["bytes_written"].get<uint64_t>())), std::string::npos)
      << table;
}

TEST_F(WorkflowTest, AShardPastItsTimeoutIsCancelledThroughTheBackend) {
  WriteConfig();
  StartAgent();
  const std::string id = Submit(WriteWorkflow("slow.yaml", R"(workflow: late
stages:
  - name: nap
    resources: {cpu: 0.5, memory: 32Mi}
    timeout: 1s
    run: [sleep, "30"]
)"));
  EXPECT_EQ(WaitDone(id, 20s), "failed");
  EXPECT_NE(Status(id).value("error", "").find("timed out after 1s"), std::string::npos)
      << Status(id).dump(2);
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json"}).out);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0]["state"], "timed_out");
  EXPECT_LT(h[0]["wall_seconds"].get<double>(), 10) << "cancelled, not left to run 30 s";
}

// Reads the CFS quota of the one instance cgroup whose task runs `marker`.
double QuotaCoresOf(const std::string& parent, const std::string& marker) {
  for (const char* root : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup"}) {
    const std::string dir = std::string(root) + "/" + parent;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      std::ifstream procs(e.path() / "cgroup.procs");
      pid_t pid;
      while (procs >> pid) {
        std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
        std::string c((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
        if (c.find(marker) == std::string::npos) continue;
        std::ifstream q(e.path() / "cpu.cfs_quota_us"), p(e.path() / "cpu.cfs_period_us");
        double quota = 0, period = 0;
        if (q >> quota && p >> period && period > 0) return quota < 0 ? -1 : quota / period;
        std::ifstream max(e.path() / "cpu.max");
        std::string qs;
        if (max >> qs >> period && qs != "max") return std::stod(qs) / period;
        return -1;
      }
    }
  }
  return 0;
}

TEST_F(WorkflowTest, AHighPriorityArrivalShrinksALowOnesGrantAndItGrowsBack) {
  WriteConfig("  max_cpu: 1.6\n");  // what shards may hold, whatever this host has
  StartAgent();
  const std::string low = Submit(WriteWorkflow("low.yaml", R"(workflow: low
priority: 2
stages:
  - name: hold
    resources: {cpu: 1.6, memory: 32Mi, min_cpu: 0.4, min_memory: 32Mi}
    run: [sh, -c, "sleep 12 # lowmarker"]
)"));
  auto near = [&](const char* marker, double cores) {
    return WaitFor([&] { return std::abs(QuotaCoresOf(name_, marker) - cores) < 0.01; }, 20s);
  };
  ASSERT_TRUE(near("lowmarker", 1.6)) << QuotaCoresOf(name_, "lowmarker") << Status(low).dump(2);
  const std::string high = Submit(WriteWorkflow("high.yaml", R"(workflow: high
priority: 9
stages:
  - name: burst
    resources: {cpu: 1.2, memory: 32Mi, min_cpu: 0.8, min_memory: 32Mi}
    run: [sh, -c, "sleep 3 # highmarker"]
)"));
  // The low grant shrinks toward its minimum to make room, as the cgroup says, and the high
  // one gets all it wants.
  EXPECT_TRUE(near("lowmarker", 0.4))
      << QuotaCoresOf(name_, "lowmarker") << "\n" << Status(low).dump(2) << agent_->err();
  EXPECT_TRUE(near("highmarker", 1.2)) << QuotaCoresOf(name_, "highmarker");
  EXPECT_EQ(WaitDone(high), "succeeded");
  // And grows back once the high one is gone.
  EXPECT_TRUE(near("lowmarker", 1.6)) << QuotaCoresOf(name_, "lowmarker");
  EXPECT_EQ(WaitDone(low), "succeeded");
  EXPECT_NE(agent_->err().find("making room for"), std::string::npos) << "logged with its reason";
}

// Two runs teach augurctl profile what the shards of a stage take (with intervals and the
// sample count); a stage with too few samples says its declared values apply; an event shows
// in the next hour's demand at once, and both survive a restart (learned again from the
// store).
TEST_F(WorkflowTest, ProfileShowsWhatRunsTaughtAndEventsReachTheDemand) {
  WriteConfig();
  StartAgent();
  const std::string wf = WriteWorkflow("learn.yaml", R"(workflow: learn
stages:
  - name: work
    resources: {cpu: 0.5, memory: 32Mi}
    shards: {range: [0, 40000], count: 4}
    run: [sh, -c, "seq {shard.begin} $(({shard.end} - 1)) | wc -l"]
  - name: total
    needs: [work]
    expected: 5s
    run: [sh, -c, "cat {input} | wc -l"]
)");
  // Nothing known yet: said so.
  auto none = Ctl({"profile", "learn"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no workflow named 'learn'"), std::string::npos) << none.err;
  for (int run = 0; run < 2; ++run) {
    const std::string id = Submit(wf);
    ASSERT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  }
  auto check = [&](const nlohmann::json& p, bool with_event) {
    ASSERT_TRUE(p.is_object()) << p;
    EXPECT_EQ(p["workflow"], "learn");
    ASSERT_EQ(p["stages"].size(), 2u) << p.dump(2);
    const nlohmann::json& work = p["stages"][0];
    EXPECT_EQ(work["stage"], "work");
    EXPECT_EQ(work["source"], "history");
    EXPECT_EQ(work["samples"].get<int>(), 8) << work.dump(2);  // 4 shards, twice
    EXPECT_EQ(work["units"]["typical"].get<double>(), 10000);
    for (const char* q : {"wall_seconds", "cpu_seconds", "peak_memory_bytes", "bytes_written"}) {
      const nlohmann::json& e = work["quantities"][q];
      EXPECT_EQ(e["source"], "history") << q;
      EXPECT_EQ(e["samples"].get<int>(), 8) << q;
      EXPECT_LE(e["lo"].get<double>(), e["value"].get<double>()) << q;
      EXPECT_LE(e["value"].get<double>(), e["hi"].get<double>()) << q;
    }
    EXPECT_GT(work["quantities"]["wall_seconds"]["value"].get<double>(), 0);
    EXPECT_LT(work["quantities"]["wall_seconds"]["lo"].get<double>(),
              work["quantities"]["wall_seconds"]["hi"].get<double>());
    EXPECT_GT(work["quantities"]["peak_memory_bytes"]["value"].get<double>(), 0);
    // "6\n" per shard, as the backend counts writes: in whole page-cache pages dirtied.
    EXPECT_GE(work["quantities"]["bytes_written"]["value"].get<double>(), 6);
    // Two samples of the last stage: its expected: applies, and says so.
    const nlohmann::json& total = p["stages"][1];
    EXPECT_EQ(total["samples"].get<int>(), 2);
    EXPECT_EQ(total["source"], "expected");
    EXPECT_EQ(total["quantities"]["wall_seconds"]["value"].get<double>(), 5);
    EXPECT_EQ(total["quantities"]["peak_memory_bytes"]["source"], "declared");
    // Demand from the two submissions; start-up time of the process backend.
    EXPECT_GE(p["demand"]["expected"].get<double>(), with_event ? 25 : 0);
    EXPECT_EQ(p["demand"]["from_events"].get<double>(), with_event ? 25 : 0);
    ASSERT_FALSE(p["startup"].empty());
    EXPECT_EQ(p["startup"][0]["backend"], "process");
    EXPECT_EQ(p["startup"][0]["samples"].get<int>(), 10);
  };
  auto profile = [&] {
    auto r = Ctl({"profile", "learn", "--json"});
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  };
  check(profile(), false);
  // The table people read.
  auto table = Ctl({"profile", "learn"});
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("stage work: 8 samples"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("80 % INTERVAL"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("stage total: 2 samples; fewer than 3: its declared expected"),
            std::string::npos)
      << table.out;
  // One stage, and one that does not exist.
  auto one = nlohmann::json::parse(Ctl({"profile", "learn", "total", "--json"}).out);
  ASSERT_EQ(one["stages"].size(), 1u);
  auto bad = Ctl({"profile", "learn", "nope"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("no stage 'nope' (stages: work, total)"), std::string::npos) << bad.err;

  // An event 30 minutes from now: in the next hour's demand at once.
  auto ev = Ctl({"event", "launch", "--workflow", "learn", "--expect", "25", "--at", "30m"});
  EXPECT_EQ(ev.code, 0) << ev.err;
  EXPECT_NE(ev.out.find("event launch: 25 submissions of learn expected"), std::string::npos)
      << ev.out;
  nlohmann::json p = profile();
  check(p, true);
  ASSERT_EQ(p["upcoming_events"].size(), 1u);
  EXPECT_EQ(p["upcoming_events"][0]["name"], "launch");
  EXPECT_NE(Ctl({"profile", "learn"}).out.find("event launch 25 at"), std::string::npos);
  auto list = nlohmann::json::parse(Ctl({"events", "--json"}).out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["workflow"], "learn");
  // Bad events are refused with the reason.
  auto past =
      Ctl({"event", "old", "--workflow", "learn", "--expect", "3", "--at", "2020-01-01T00:00:00Z"});
  EXPECT_EQ(past.code, 1);
  EXPECT_NE(past.err.find("in the past"), std::string::npos) << past.err;
  auto garbled = Ctl({"event", "x", "--workflow", "learn", "--expect", "3", "--at", "soon"});
  EXPECT_EQ(garbled.code, 2);
  EXPECT_NE(garbled.err.find("--at: bad duration 'soon'"), std::string::npos) << garbled.err;

  // A restart learns it all again from the store.
  agent_->Signal(SIGTERM);
  agent_->Wait(10s);
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return Ctl({"events"}).code == 0; }, 20s)) << agent_->err();
  nlohmann::json again = profile();
  const nlohmann::json& work = again["stages"][0];
  EXPECT_EQ(work["samples"].get<int>(), 8) << work.dump(2);
  EXPECT_EQ(again["demand"]["from_events"].get<double>(), 25);
  EXPECT_EQ(again["demand"]["model"] == "none", false) << again["demand"].dump(2);
}

// A store with 200-day-old history and an old finished workflow (with its outputs): augurd
// prunes them in the background with workflows.history_retention: 180d, while a new
// workflow runs as usual; newer history stays.
TEST_F(WorkflowTest, RetentionPrunesOldHistoryInTheBackground) {
  WriteConfig("  history_retention: 180d\n");
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const int64_t day = 86'400LL * 1'000'000'000;
  {
    auto store = workflow::WorkflowStore::Open(dir_ + "/wf/workflows.db");
    ASSERT_TRUE(store) << store.error().ToString();
    ASSERT_TRUE((*store)
                    ->Transaction([&]() -> augur::Status {
                      workflow::WorkflowRecord w;
                      w.id = "ancient-1";
                      w.name = "ancient";
                      w.spec_yaml = "workflow: ancient\nstages: [{name: s, run: [true]}]\n";
                      w.state = workflow::WorkflowState::kSucceeded;
                      w.submitted_ns = now - 200 * day;
                      w.finished_ns = now - 200 * day + 1;
                      AUGUR_RETURN_IF_ERROR((*store)->PutWorkflow(w));
                      for (int i = 0; i < 5000; ++i) {
                        workflow::HistoryRecord h;
                        h.attempt_id = "ancient-1/s/" + std::to_string(i) + "#1";
                        h.workflow_id = "ancient-1";
                        h.workflow_name = "ancient";
                        h.stage = "s";
                        h.started_ns = now - (i % 2 ? 200 : 10) * day + i;  // half old, half recent
                        h.wall_seconds = 1;
                        AUGUR_RETURN_IF_ERROR((*store)->AppendHistory(h));
                      }
                      return augur::Status::OK();
                    })
                    .ok());
  }
  fs::create_directories(dir_ + "/wf/work/ancient-1");
  std::ofstream(dir_ + "/wf/work/ancient-1/out") << "old output\n";
  StartAgent();
  const std::string id = Submit(WriteWorkflow("quick.yaml", R"(workflow: quick
stages:
  - name: one
    resources: {cpu: 0.5, memory: 32Mi}
    run: [echo, hi]
)"));
  EXPECT_EQ(WaitDone(id), "succeeded") << agent_->err();
  auto rows = [&] {
    auto h = nlohmann::json::parse(Ctl({"history", "ancient", "--json", "--limit", "100000"}).out,
                                   nullptr, false);
    return h.is_array() ? h.size() : size_t(0);
  };
  EXPECT_TRUE(WaitFor([&] { return rows() == 2500; }, 30s)) << rows() << agent_->err();
  EXPECT_TRUE(WaitFor([&] { return !fs::exists(dir_ + "/wf/work/ancient-1"); }, 10s));
  EXPECT_TRUE(fs::exists(dir_ + "/wf/work/" + id)) << "a new workflow's outputs stay";
  EXPECT_EQ(Ctl({"result", id}).out, "hi\n");
  EXPECT_TRUE(WaitFor(
      [&] {
        return agent_->err().find(
                   "pruned what was older than 180d: 2500 "
                   "history rows, 1 workflows") != std::string::npos;
      },
      10s))
      << agent_->err();
}

TEST_F(WorkflowTest, CancelStopsEverythingAndAnUnprivilegedUserIsRefused) {
  WriteConfig();
  StartAgent();
  const std::string id = Submit(WriteWorkflow("long.yaml", R"(workflow: long
stages:
  - name: wait
    resources: {cpu: 0.5, memory: 32Mi}
    shards: {range: [0, 2], count: 2}
    run: [sh, -c, "sleep 300 # cancelmarker"]
)"));
  ASSERT_TRUE(WaitFor([&] { return QuotaCoresOf(name_, "cancelmarker") > 0; }, 20s));
  // nobody (uid 65534) may not use the socket.
  std::vector<std::string> argv = {BuildPath("agent/augurctl"), "--socket", socket_, "status"};
  Subprocess nobody(argv, 65534);
  EXPECT_EQ(nobody.Wait(20s), 1);
  EXPECT_NE(nobody.err().find("permission denied"), std::string::npos) << nobody.err();
  // Nor announce demand.
  Subprocess nobody_event({BuildPath("agent/augurctl"), "--socket", socket_, "event", "x",
                           "--workflow", "long", "--expect", "5", "--at", "10m"},
                          65534);
  EXPECT_EQ(nobody_event.Wait(20s), 1);
  EXPECT_NE(nobody_event.err().find("permission denied"), std::string::npos) << nobody_event.err();
  EXPECT_NE(Ctl({"events"}).out.find("no events"), std::string::npos);
  auto r = Ctl({"cancel", id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(WaitDone(id), "cancelled");
  EXPECT_TRUE(WaitFor([&] { return QuotaCoresOf(name_, "cancelmarker") == 0; }, 20s))
      << "every shard stopped";
  EXPECT_EQ(Ctl({"cancel", id}).code, 1) << "twice";
}

}  // namespace

TEST_F(WorkflowTest, ShardsAreChargedAtTheBackendsPriceAndABudgetStopsAWorkflow) {
  // One core-second costs 1: each one-second shard of one core costs about 1.
  WriteConfig("", "      cost_per_core_hour: 3600\n      cost_class: metered\n");
  StartAgent();
  auto paid = [&](const std::string& name, double budget) {
    return WriteWorkflow(name + ".yaml", fmt::format(R"(workflow: {}
budget: {}
stages:
  - name: work
    resources: {{cpu: 1, memory: 64Mi}}
    shards: {{range: [0, 2], count: 2}}
    expected: 1s
    run: [sleep, "1"]
)", name, budget));
  };
  const std::string rich = Submit(paid("rich", 10));
  EXPECT_EQ(WaitDone(rich), "succeeded") << Status(rich).dump(2) << agent_->err();
  const double spent = Status(rich).value("spent", 0.0);
  EXPECT_GT(spent, 1.9) << "two shards of about one core-second each";
  EXPECT_LT(spent, 4.0);
  EXPECT_THAT(Ctl({"status", rich}).out, HasSubstr("cost "));

  // 1.5 admits the first shard (predicted 1); after it the rest cannot fit: failed, saying so.
  const std::string poor = Submit(paid("poor", 1.5));
  EXPECT_EQ(WaitDone(poor), "failed");
  EXPECT_THAT(Status(poor).value("error", ""), HasSubstr("over budget"));
  EXPECT_LT(Status(poor).value("spent", 0.0), 1.5);
}


TEST_F(WorkflowTest, AStragglersRangeIsRerunInPiecesAndTheResultStaysExact) {
  WriteConfig();
  StartAgent();
  // Shard 3 covers [300, 400): whole, it hangs for a minute (a slow input); any piece of it
  // runs at once. The stage's other shards teach the engine that a shard takes a moment.
  const std::string file = WriteWorkflow("skew.yaml", R"(workflow: skew
stages:
  - name: sum
    resources: {cpu: 0.25, memory: 32Mi}
    shards: {range: [0, 400], count: 4}
    canary: false
    run: [sh, -c, "if [ $(({shard.end} - {shard.begin})) -gt 50 ] && [ {shard.begin} -ge 300 ]; then sleep 60; fi; seq {shard.begin} $(({shard.end} - 1)) | awk '{s+=$1} END {print s}'"]
  - name: total
    needs: [sum]
    run: [sh, -c, "awk '{s+=$1} END {print s}' {input}"]
)");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string id = Submit(file);
  EXPECT_EQ(WaitDone(id, 50s), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s) << "not the minute of the straggler";
  EXPECT_EQ(Ctl({"result", id}).out, "79800\n") << "sum of 0..399, each value once";
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json"}).out);
  int pieces = 0, cancelled = 0;
  for (const auto& a : h) {
    const std::string attempt = a["attempt"];
    if (attempt.find("/sum/3~") != std::string::npos && a["state"] == "succeeded") ++pieces;
    if (attempt.find("/sum/3#") != std::string::npos && a["state"] == "cancelled") ++cancelled;
  }
  EXPECT_GE(pieces, 2);
  EXPECT_EQ(cancelled, 1) << h.dump(2);
  EXPECT_THAT(agent_->err(), HasSubstr("straggler"));
}
// ---- Pre-warming (issue 11) ------------------------------------------------------------
namespace {

// The warm instances the process backend holds now (cgroups named augur-warm-*).
int WarmCgroups(const std::string& parent) {
  return std::stoi(Sh("ls -d /sys/fs/cgroup/*/" + parent + "/augur-warm-* /sys/fs/cgroup/" +
                      parent + "/augur-warm-* 2>/dev/null | sed 's|.*/||' | sort -u | wc -l"));
}

// Stage b needs a; a runs about as long as it says, so b's two shards are predicted and
// their instances made (and probed) before a ends.
std::string TwoStages(const std::string& name, const std::string& a_run,
                      const std::string& a_expected,
                      const std::string& b_run = "echo {shard.item}") {
  return fmt::format(R"(workflow: {}
stages:
  - name: a
    resources: {{cpu: 0.5, memory: 32Mi}}
    expected: {}
    run: [sh, -c, "{}"]
  - name: b
    needs: [a]
    resources: {{cpu: 0.5, memory: 32Mi}}
    shards: {{items: [x, y]}}
    run: [sh, -c, "{} > {{output}}"]
)",
                     name, a_expected, a_run, b_run);
}

TEST_F(WorkflowTest, TheSecondStageStartsInInstancesPreWarmedAndProbedBeforeTheFirstEnds) {
  WriteConfig(fmt::format(
      "  prewarm:\n    lead: 5s\n    probe: [sh, -c, \"echo ok >> {}/probe-ran\"]\n", dir_));
  StartAgent();
  const std::string id = Submit(WriteWorkflow("ab.yaml", TwoStages("ab", "sleep 3", "3s")));
  // While a runs, b's two instances are warm.
  EXPECT_TRUE(WaitFor([&] { return Status(id)["prewarm"]["pool"].value("warm_now", 0) == 2; }, 10s))
      << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Status(id)["stages"][0]["state"], "running") << "before a ended";
  EXPECT_EQ(WarmCgroups(name_), 2);
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out, "x\ny\n");
  const nlohmann::json p = Status(id)["prewarm"];
  EXPECT_EQ(p.value("hits", 0), 2) << p.dump(2);
  EXPECT_EQ(p.value("misses", 0), 0);
  EXPECT_EQ(p.value("cold", 0), 1) << "a itself: nothing predicted it";
  EXPECT_GT(p.value("saved_s", 0.0), 0);
  // The probe ran in each instance.
  EXPECT_EQ(Sh("cat " + dir_ + "/probe-ran"), "ok\nok\n");
  EXPECT_THAT(agent_->err(), HasSubstr("pre-warming: hit"));
  EXPECT_EQ(WarmCgroups(name_), 0) << "used, then released with their shards";
  // The same counters as series (what /metrics serves), written each sample.
  std::string series;
  EXPECT_TRUE(WaitFor(
      [&] {
        series = testing::Run({BuildPath("agent/augurctl"), "--shm", name_, "series"}, 10s).out;
        return series.find("augur_prewarm_hits_total") != std::string::npos &&
               std::regex_search(series, std::regex("augur_prewarm_hits_total\\s+2\\b"));
      },
      10s))
      << series;
  EXPECT_THAT(series, HasSubstr("augur_prewarm_wasted_instance_seconds_total"));
}

TEST_F(WorkflowTest, AnIdleWarmInstanceIsReleasedAfterItsTimeoutAndCountedAsWaste) {
  WriteConfig("  prewarm:\n    lead: 5s\n    idle_timeout: 1s\n");
  StartAgent();
  // a is said to take 1 s and takes 5: b's instances wait, go idle and are released.
  const std::string id = Submit(WriteWorkflow("late.yaml", TwoStages("late", "sleep 5", "1s")));
  EXPECT_TRUE(
      WaitFor([&] { return Status(id)["prewarm"]["pool"].value("released_idle", 0) >= 1; }, 10s))
      << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Status(id)["stages"][0]["state"], "running") << "released before a ended";
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  const nlohmann::json pool = Status(id)["prewarm"]["pool"];
  EXPECT_GT(pool.value("wasted_instance_s", 0.0), 1.0) << pool.dump(2);
  EXPECT_EQ(pool.value("hits", 0), 0);
  EXPECT_EQ(pool.value("warm_now", 0), 0);
  EXPECT_EQ(WarmCgroups(name_), 0) << "nothing left behind";
}

TEST_F(WorkflowTest, AFailingProbeIsCountedAndItsInstanceIsNeverUsed) {
  WriteConfig("  prewarm:\n    lead: 5s\n    probe: [sh, -c, \"echo broken >&2; exit 3\"]\n");
  StartAgent();
  const std::string id = Submit(WriteWorkflow("bad.yaml", TwoStages("badprobe", "sleep 2", "2s")));
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out, "x\ny\n");
  const nlohmann::json p = Status(id)["prewarm"];
  EXPECT_GE(p["pool"].value("probe_failures", 0), 1) << p.dump(2);
  EXPECT_EQ(p.value("hits", 0), 0);
  EXPECT_EQ(p.value("misses", 0), 2) << "predicted, but nothing warm to start in";
  EXPECT_THAT(agent_->err(), HasSubstr("exited with status 3: broken"));
  EXPECT_EQ(WarmCgroups(name_), 0);
}

TEST_F(WorkflowTest, KillNineKeepsShardsInWarmInstancesAndReleasesTheUnusedOnes) {
  WriteConfig("  prewarm:\n    lead: 5s\n");
  StartAgent();
  const std::string id = Submit(
      WriteWorkflow("kill.yaml", TwoStages("kill", "sleep 4", "4s", "sleep 3; echo {shard.item}")));
  // Killed while b's instances are warm and unused: the next agent releases them.
  ASSERT_TRUE(WaitFor([&] { return WarmCgroups(name_) == 2; }, 10s)) << agent_->err();
  agent_->Signal(SIGKILL);
  agent_->Wait(10s);
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return Ctl({"status"}).code == 0; }, 20s)) << agent_->err();
  EXPECT_THAT(agent_->err(), HasSubstr("warmed before the restart and never used"));
  // Then killed while b runs in the instances warmed again: its shards are re-attached.
  ASSERT_TRUE(
      WaitFor([&] { return Status(id)["stages"][1]["counts"].value("running", 0) == 2; }, 20s))
      << Status(id).dump(2) << agent_->err();
  // (a's attempt, lost across the kill as a re-attached task is, may start again in one of
  // b's instances: a hit as well, and then one of b's shards starts in a fresh one.)
  EXPECT_GE(Status(id)["prewarm"].value("hits", 0), 2) << agent_->err();
  const std::string log = agent_->err();
  auto warm_starts = [&](const std::string& stage) {
    int n = 0;
    for (const std::string shard : {"/0#1", "/0#2", "/1#1"}) {
      n += log.find("started " + id + "/" + stage + shard + " (augur-warm-") != std::string::npos;
    }
    return n;
  };
  EXPECT_GE(warm_starts("b"), 1) << log;
  EXPECT_GE(warm_starts("a") + warm_starts("b"), 2) << log;
  agent_->Signal(SIGKILL);
  agent_->Wait(10s);
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return Ctl({"status"}).code == 0; }, 20s)) << agent_->err();
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out, "x\ny\n");
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json", "--limit", "1000"}).out);
  std::multiset<int> ok;
  for (const auto& row : h) {
    if (row["state"] == "succeeded" && row["stage"] == "b") ok.insert(row["shard"].get<int>());
  }
  EXPECT_EQ(ok.count(0), 1u) << h.dump(2);
  EXPECT_EQ(ok.count(1), 1u) << "re-attached, not run again";
  EXPECT_EQ(WarmCgroups(name_), 0);
}

TEST_F(WorkflowTest, AWorkflowThatFollowsAnotherStartsInInstancesWarmedWhenThatOneIsSubmitted) {
  WriteConfig("  prewarm:\n    lead: 5s\n    follow_window: 2s\n");
  StartAgent();
  const std::string first = WriteWorkflow("first.yaml", R"(workflow: first
stages:
  - name: only
    resources: {cpu: 0.2, memory: 16Mi}
    run: [sh, -c, "echo first > {output}"]
)");
  const std::string then = WriteWorkflow("then.yaml", R"(workflow: then
stages:
  - name: go
    resources: {cpu: 0.3, memory: 24Mi}
    shards: {items: [p, q]}
    run: [sh, -c, "echo {shard.item} > {output}"]
)");
  // Three times: "then" 0.5 s after "first"; each window closes before the next.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(WaitDone(Submit(first)), "succeeded");
    usleep(500'000);
    EXPECT_EQ(WaitDone(Submit(then)), "succeeded");
    usleep(2'200'000);
  }
  const std::string a = Submit(first);
  ASSERT_TRUE(WaitFor([&] { return WarmCgroups(name_) == 2; }, 5s)) << agent_->err();
  const std::string b = Submit(then);
  EXPECT_EQ(WaitDone(b), "succeeded") << Status(b).dump(2) << agent_->err();
  EXPECT_EQ(Status(b)["prewarm"].value("hits", 0), 2) << Status(b).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", b}).out, "p\nq\n");
  EXPECT_EQ(WaitDone(a), "succeeded");
}

}  // namespace

TEST_F(WorkflowTest, AWorkflowWithoutADeadlineRunsOnSpotAndCostsLessThanOneThatCannot) {
  // One core-second costs 1 on "local", 0.25 on "spot".
  WriteConfig("", "      cost_per_core_hour: 3600\n      spot_per_core_hour: 900\n");
  StartAgent();
  auto paid = [&](const std::string& name, const std::string& extra) {
    return WriteWorkflow(name + ".yaml", fmt::format(R"(workflow: {}
{}stages:
  - name: work
    resources: {{cpu: 1, memory: 64Mi}}
    shards: {{range: [0, 2], count: 2}}
    canary: false
    expected: 1s
    run: [sleep, "1"]
)", name, extra));
  };
  const std::string spot = Submit(paid("relaxed", ""));
  EXPECT_EQ(WaitDone(spot), "succeeded") << Status(spot).dump(2) << agent_->err();
  // Half a second of slack for 1 s shards: losing a spot instance could not be absorbed.
  const std::string local = Submit(paid("pressed", "deadline: 1500ms\n"));
  EXPECT_EQ(WaitDone(local), "succeeded") << Status(local).dump(2) << agent_->err();
  const double on_spot = Status(spot).value("spent", 0.0);
  const double on_local = Status(local).value("spent", 0.0);
  EXPECT_GT(on_spot, 0.4);
  EXPECT_LT(on_spot, 1.2) << "two shards of about a core-second at 0.25";
  EXPECT_GT(on_local, 1.9);
  EXPECT_LT(on_spot / on_local, 0.4);
  std::cout << "cost with the spot class: " << on_spot << ", without: " << on_local << "\n";
}
}  // namespace augur

namespace augur {
TEST_F(WorkflowTest, ASpotTaskTheBackendTakesBackRunsAgainOnItsOwnClassWithoutARetry) {
  // Spot tasks are taken back after half a second; the shards need a second.
  WriteConfig("", "      cost_per_core_hour: 3600\n      spot_per_core_hour: 900\n"
                  "      spot_max_runtime: 0.5\n");
  StartAgent();
  const std::string id = Submit(WriteWorkflow("reclaimed.yaml", R"(workflow: reclaimed
stages:
  - name: work
    resources: {cpu: 1, memory: 64Mi}
    shards: {range: [0, 2], count: 2}
    canary: false
    retries: {count: 0}
    expected: 1s
    run: [sh, -c, "sleep 1; echo {shard.begin} > {output}"]
)"));
  EXPECT_EQ(WaitDone(id), "succeeded") << Status(id).dump(2) << agent_->err();
  EXPECT_EQ(Ctl({"result", id}).out, "0\n1\n");
  auto h = nlohmann::json::parse(Ctl({"history", id, "--json"}).out);
  int reclaimed = 0, succeeded = 0;
  for (const auto& a : h) {
    reclaimed += a["state"] == "reclaimed";
    succeeded += a["state"] == "succeeded";
  }
  EXPECT_EQ(reclaimed, 2) << h.dump(2);
  EXPECT_EQ(succeeded, 2) << h.dump(2);
  // Half a second on spot (0.25) and a second on "local" (1) per shard: the re-run was not
  // on spot, which would have been taken back again.
  const double spent = Status(id).value("spent", 0.0);
  EXPECT_GT(spent, 1.9) << Status(id).dump(2);
  EXPECT_LT(spent, 3.5) << Status(id).dump(2);
  EXPECT_NE(agent_->err().find("reclaiming spot task"), std::string::npos) << agent_->err();
}
}  // namespace augur
