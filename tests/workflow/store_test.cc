// The workflow store (src/workflow/store.h) on real SQLite files in a temporary directory:
// round trips, replacement by key, ordering and filters, transactions, durability across
// reopening and processes, foreign and newer files left untouched, a full disk, and a year
// of history.
#include "workflow/store.h"

#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Runs SQL on the file directly, as another program would.
void RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("augur_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    db_ = (dir_ / "state" / "workflows.db").string();  // the parent does not exist yet
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<WorkflowStore> OpenOk(const std::string& path) {
    auto s = WorkflowStore::Open(path);
    EXPECT_TRUE(s) << s.error().ToString();
    return s ? std::move(*s) : nullptr;
  }

  fs::path dir_;
  std::string db_;
};

WorkflowRecord Workflow(std::string id, int64_t submitted, WorkflowState state) {
  WorkflowRecord w;
  w.id = std::move(id);
  w.name = "checksum";
  w.spec_yaml = "workflow: checksum\nstages: []\n";
  w.origin = "/home/u/checksum.yaml";
  w.state = state;
  w.submitted_ns = submitted;
  return w;
}

HistoryRecord History(std::string attempt, std::string wf, std::string name, int64_t started) {
  HistoryRecord h;
  h.attempt_id = std::move(attempt);
  h.workflow_id = std::move(wf);
  h.workflow_name = std::move(name);
  h.stage = "count";
  h.started_ns = started;
  return h;
}

void ExpectEq(const WorkflowRecord& a, const WorkflowRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.spec_yaml, b.spec_yaml);
  EXPECT_EQ(a.origin, b.origin);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.submitted_ns, b.submitted_ns);
  EXPECT_EQ(a.finished_ns, b.finished_ns);
  EXPECT_EQ(a.deadline_ns, b.deadline_ns);
  EXPECT_EQ(a.boost, b.boost);
  EXPECT_EQ(a.boost_until_ns, b.boost_until_ns);
  EXPECT_EQ(a.spent, b.spent);
  EXPECT_EQ(a.error, b.error);
}

TEST_F(StoreTest, CreatesTheParentDirectoryAndUsesWal) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->path(), db_);
  auto perms = fs::status(dir_ / "state").permissions();
  EXPECT_EQ(perms & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
  ASSERT_TRUE(s->PutWorkflow(Workflow("w", 1, WorkflowState::kRunning)).ok());
  EXPECT_TRUE(fs::exists(db_ + "-wal")) << "journal_mode=WAL";
}

TEST_F(StoreTest, EveryRecordRoundTripsWithEveryField) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  WorkflowRecord w{"checksum-1a2b3c", "checksum", "workflow: checksum\n\xff\x01 bytes\n",
                   "./checksum.yaml", WorkflowState::kFailed, 1'700'000'000'000'000'001,
                   1'700'000'000'500'000'000, 1'800'000'000'000'000'000, 2.5,
                   1'750'000'000'000'000'000, 12.75, "stage count failed: exit 3"};
  ASSERT_TRUE(s->PutWorkflow(w).ok());
  auto got = s->GetWorkflow(w.id);
  ASSERT_TRUE(got) << got.error().ToString();
  ASSERT_TRUE(*got);
  ExpectEq(**got, w);
  auto none = s->GetWorkflow("nope");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  ShardRecord sh;
  sh.workflow_id = w.id;
  sh.stage = "count";
  sh.index = 3;
  sh.shard_id = "3.1";
  sh.begin = 1000;
  sh.end = UINT64_MAX;  // the full unsigned range survives SQLite's signed integers
  sh.items = {"a.txt", "", "with\nnewline", "back\\slash\\n", "\xfe\xff not utf-8", ""};
  sh.state = ShardState::kSucceeded;
  sh.attempts = 4;
  sh.want = {1.5, 3ULL << 30};
  sh.min = {0.25, 512ULL << 20};
  sh.not_before_ns = 42;
  sh.winner = "checksum-1a2b3c/count/3.1#4";
  sh.output_path = "/var/lib/augur/out/3.1";
  ASSERT_TRUE(s->PutShard(sh).ok());
  ShardRecord empty_items = sh;
  empty_items.index = 4;
  empty_items.items = {};
  ASSERT_TRUE(s->PutShard(empty_items).ok());
  auto shards = s->Shards(w.id);
  ASSERT_TRUE(shards) << shards.error().ToString();
  ASSERT_EQ(shards->size(), 2u);
  const ShardRecord& r = (*shards)[0];
  EXPECT_EQ(r.workflow_id, sh.workflow_id);
  EXPECT_EQ(r.stage, sh.stage);
  EXPECT_EQ(r.index, sh.index);
  EXPECT_EQ(r.shard_id, sh.shard_id);
  EXPECT_EQ(r.begin, sh.begin);
  EXPECT_EQ(r.end, sh.end);
  EXPECT_EQ(r.items, sh.items);
  EXPECT_EQ(r.state, sh.state);
  EXPECT_EQ(r.attempts, sh.attempts);
  EXPECT_EQ(r.want, sh.want);
  EXPECT_EQ(r.min, sh.min);
  EXPECT_EQ(r.not_before_ns, sh.not_before_ns);
  EXPECT_EQ(r.winner, sh.winner);
  EXPECT_EQ(r.output_path, sh.output_path);
  EXPECT_TRUE((*shards)[1].items.empty());

  AttemptRecord a;
  a.attempt_id = "checksum-1a2b3c/count/3.1#4";
  a.workflow_id = w.id;
  a.stage = "count";
  a.shard_index = 3;
  a.attempt = 4;
  a.backend = "process";
  a.instance = "inst-7";
  a.invocation = "inv-9";
  a.grant = {0.75, 1ULL << 30};
  a.state = AttemptState::kOom;
  a.started_ns = 100;
  a.finished_ns = 200;
  a.exit_code = -1;
  a.term_signal = 9;
  a.cpu_seconds = 3.25;
  a.peak_memory_bytes = (1ULL << 63) + 5;
  a.bytes_read = 123456789012;
  a.bytes_written = 42;
  a.output_path = "/out/a";
  a.error = "killed: out of memory";
  a.resource_class = "spot";
  a.host = "peer-3";
  a.lease_id = "host-a/checksum-1a2b3c/count/3.1#4@2";
  ASSERT_TRUE(s->PutAttempt(a).ok());
  auto attempts = s->Attempts(w.id);
  ASSERT_TRUE(attempts) << attempts.error().ToString();
  ASSERT_EQ(attempts->size(), 1u);
  const AttemptRecord& b = (*attempts)[0];
  EXPECT_EQ(b.attempt_id, a.attempt_id);
  EXPECT_EQ(b.workflow_id, a.workflow_id);
  EXPECT_EQ(b.stage, a.stage);
  EXPECT_EQ(b.shard_index, a.shard_index);
  EXPECT_EQ(b.attempt, a.attempt);
  EXPECT_EQ(b.backend, a.backend);
  EXPECT_EQ(b.instance, a.instance);
  EXPECT_EQ(b.invocation, a.invocation);
  EXPECT_EQ(b.resource_class, "spot");
  EXPECT_EQ(b.host, "peer-3");
  EXPECT_EQ(b.lease_id, a.lease_id);
  EXPECT_EQ(b.grant, a.grant);
  EXPECT_EQ(b.state, a.state);
  EXPECT_EQ(b.started_ns, a.started_ns);
  EXPECT_EQ(b.finished_ns, a.finished_ns);
  EXPECT_EQ(b.exit_code, a.exit_code);
  EXPECT_EQ(b.term_signal, a.term_signal);
  EXPECT_EQ(b.cpu_seconds, a.cpu_seconds);
  EXPECT_EQ(b.peak_memory_bytes, a.peak_memory_bytes);
  EXPECT_EQ(b.bytes_read, a.bytes_read);
  EXPECT_EQ(b.bytes_written, a.bytes_written);
  EXPECT_EQ(b.output_path, a.output_path);
  EXPECT_EQ(b.error, a.error);

  ASSERT_TRUE(s->PutStageOutput(w.id, "count", "/out/count.merged").ok());
  auto out = s->StageOutput(w.id, "count");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, std::optional<std::string>("/out/count.merged"));
  auto no_out = s->StageOutput(w.id, "sum");
  ASSERT_TRUE(no_out);
  EXPECT_FALSE(*no_out);

  HistoryRecord h;
  h.attempt_id = a.attempt_id;
  h.workflow_id = w.id;
  h.workflow_name = w.name;
  h.stage = "count";
  h.shard_index = 3;
  h.range_begin = 1000;
  h.range_end = 2000;
  h.items = 17;
  h.state = AttemptState::kTimedOut;
  h.exit_code = 124;
  h.started_ns = 100;
  h.wall_seconds = 61.5;
  h.cpu_seconds = 58.25;
  h.peak_memory_bytes = 7ULL << 30;
  h.bytes_read = 1ULL << 40;
  h.bytes_written = 3;
  h.grant = {2, 8ULL << 30};
  h.cost = 0.125;
  ASSERT_TRUE(s->AppendHistory(h).ok());
  auto hist = s->History(std::nullopt, 10);
  ASSERT_TRUE(hist) << hist.error().ToString();
  ASSERT_EQ(hist->size(), 1u);
  const HistoryRecord& g = (*hist)[0];
  EXPECT_EQ(g.attempt_id, h.attempt_id);
  EXPECT_EQ(g.workflow_id, h.workflow_id);
  EXPECT_EQ(g.workflow_name, h.workflow_name);
  EXPECT_EQ(g.stage, h.stage);
  EXPECT_EQ(g.shard_index, h.shard_index);
  EXPECT_EQ(g.range_begin, h.range_begin);
  EXPECT_EQ(g.range_end, h.range_end);
  EXPECT_EQ(g.items, h.items);
  EXPECT_EQ(g.state, h.state);
  EXPECT_EQ(g.exit_code, h.exit_code);
  EXPECT_EQ(g.started_ns, h.started_ns);
  EXPECT_EQ(g.wall_seconds, h.wall_seconds);
  EXPECT_EQ(g.cpu_seconds, h.cpu_seconds);
  EXPECT_EQ(g.peak_memory_bytes, h.peak_memory_bytes);
  EXPECT_EQ(g.bytes_read, h.bytes_read);
  EXPECT_EQ(g.bytes_written, h.bytes_written);
  EXPECT_EQ(g.grant, h.grant);
  EXPECT_EQ(g.cost, h.cost);
}

TEST_F(StoreTest, StateNamesRoundTrip) {
  for (auto st : {WorkflowState::kRunning, WorkflowState::kSucceeded, WorkflowState::kFailed,
                  WorkflowState::kCancelled}) {
    EXPECT_EQ(WorkflowStateFromName(WorkflowStateName(st)), st);
  }
  for (int i = 0; i <= static_cast<int>(ShardState::kCancelled); ++i) {
    auto st = static_cast<ShardState>(i);
    EXPECT_EQ(ShardStateFromName(ShardStateName(st)), st);
  }
  for (int i = 0; i <= static_cast<int>(AttemptState::kLost); ++i) {
    auto st = static_cast<AttemptState>(i);
    EXPECT_EQ(AttemptStateFromName(AttemptStateName(st)), st);
  }
  EXPECT_EQ(AttemptStateName(AttemptState::kTimedOut), "timed_out");
  EXPECT_FALSE(WorkflowStateFromName("bogus"));
}

TEST_F(StoreTest, PutReplacesByKey) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  auto w = Workflow("w1", 10, WorkflowState::kRunning);
  ASSERT_TRUE(s->PutWorkflow(w).ok());
  w.state = WorkflowState::kSucceeded;
  w.finished_ns = 20;
  ASSERT_TRUE(s->PutWorkflow(w).ok());
  auto all = s->Workflows(false);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].state, WorkflowState::kSucceeded);
  EXPECT_EQ((*all)[0].finished_ns, 20);

  ShardRecord sh;
  sh.workflow_id = "w1";
  sh.stage = "count";
  sh.index = 0;
  sh.shard_id = "0";
  ASSERT_TRUE(s->PutShard(sh).ok());
  sh.state = ShardState::kRunning;
  sh.attempts = 1;
  ASSERT_TRUE(s->PutShard(sh).ok());
  sh.stage = "sum";  // another key
  ASSERT_TRUE(s->PutShard(sh).ok());
  auto shards = s->Shards("w1");
  ASSERT_TRUE(shards);
  ASSERT_EQ(shards->size(), 2u);
  EXPECT_EQ((*shards)[0].stage, "count");
  EXPECT_EQ((*shards)[0].state, ShardState::kRunning);
  EXPECT_EQ((*shards)[0].attempts, 1u);

  AttemptRecord a;
  a.attempt_id = "w1/count/0#1";
  a.workflow_id = "w1";
  ASSERT_TRUE(s->PutAttempt(a).ok());
  a.state = AttemptState::kSucceeded;
  a.instance = "i";
  ASSERT_TRUE(s->PutAttempt(a).ok());
  auto attempts = s->Attempts("w1");
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].state, AttemptState::kSucceeded);
  EXPECT_EQ((*attempts)[0].instance, "i");

  ASSERT_TRUE(s->PutStageOutput("w1", "count", "/a").ok());
  ASSERT_TRUE(s->PutStageOutput("w1", "count", "/b").ok());
  EXPECT_EQ(*s->StageOutput("w1", "count"), std::optional<std::string>("/b"));

  // History is append-only: appending the same attempt again keeps one row.
  auto h = History("w1/count/0#1", "w1", "checksum", 5);
  ASSERT_TRUE(s->AppendHistory(h).ok());
  ASSERT_TRUE(s->AppendHistory(h).ok());
  EXPECT_EQ(s->History(std::nullopt, 0)->size(), 1u);
}

TEST_F(StoreTest, WorkflowsNewestFirstAndRunningOnly) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutWorkflow(Workflow("old", 100, WorkflowState::kRunning)).ok());
  ASSERT_TRUE(s->PutWorkflow(Workflow("newest", 300, WorkflowState::kSucceeded)).ok());
  ASSERT_TRUE(s->PutWorkflow(Workflow("mid", 200, WorkflowState::kRunning)).ok());
  ASSERT_TRUE(s->PutWorkflow(Workflow("gone", 250, WorkflowState::kCancelled)).ok());
  auto ids = [](const std::vector<WorkflowRecord>& v) {
    std::vector<std::string> out;
    for (const auto& w : v) out.push_back(w.id);
    return out;
  };
  auto all = s->Workflows(false);
  ASSERT_TRUE(all);
  EXPECT_EQ(ids(*all), (std::vector<std::string>{"newest", "gone", "mid", "old"}));
  auto running = s->Workflows(true);
  ASSERT_TRUE(running);
  EXPECT_EQ(ids(*running), (std::vector<std::string>{"mid", "old"}));
  // Shards and attempts are per workflow.
  ShardRecord sh;
  sh.workflow_id = "old";
  ASSERT_TRUE(s->PutShard(sh).ok());
  EXPECT_TRUE(s->Shards("mid")->empty());
  EXPECT_EQ(s->Shards("old")->size(), 1u);
}

TEST_F(StoreTest, HistoryNewestFirstByIdOrNameWithLimit) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->AppendHistory(History("a#1", "checksum-1", "checksum", 10)).ok());
  ASSERT_TRUE(s->AppendHistory(History("b#1", "checksum-2", "checksum", 30)).ok());
  ASSERT_TRUE(s->AppendHistory(History("c#1", "render-1", "render", 20)).ok());
  ASSERT_TRUE(s->AppendHistory(History("a#2", "checksum-1", "checksum", 40)).ok());
  auto ids = [](const Result<std::vector<HistoryRecord>>& v) {
    std::vector<std::string> out;
    EXPECT_TRUE(v) << v.error().ToString();
    if (v) {
      for (const auto& h : *v) out.push_back(h.attempt_id);
    }
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(ids(s->History(std::nullopt, 100)), (V{"a#2", "b#1", "c#1", "a#1"}));
  EXPECT_EQ(ids(s->History(std::nullopt, 2)), (V{"a#2", "b#1"}));
  EXPECT_EQ(ids(s->History(std::nullopt, 0)), (V{"a#2", "b#1", "c#1", "a#1"})) << "0: all";
  EXPECT_EQ(ids(s->History("checksum-1", 100)), (V{"a#2", "a#1"}));
  EXPECT_EQ(ids(s->History("checksum", 100)), (V{"a#2", "b#1", "a#1"}));
  EXPECT_EQ(ids(s->History("checksum", 1)), (V{"a#2"}));
  EXPECT_EQ(ids(s->History("render", 100)), (V{"c#1"}));
  EXPECT_EQ(ids(s->History("nothing", 100)), V{});
}

TEST_F(StoreTest, TransactionCommitsOrLeavesNothing) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  Status st = s->Transaction([&] {
    AUGUR_RETURN_IF_ERROR(s->PutWorkflow(Workflow("rolled", 1, WorkflowState::kRunning)));
    ShardRecord sh;
    sh.workflow_id = "rolled";
    AUGUR_RETURN_IF_ERROR(s->PutShard(sh));
    AUGUR_RETURN_IF_ERROR(s->AppendHistory(History("rolled#1", "rolled", "x", 1)));
    EXPECT_EQ(s->Workflows(false)->size(), 1u) << "visible inside the transaction";
    return Status::Internal("the engine changed its mind");
  });
  EXPECT_EQ(st.code(), Status::Code::kInternal);
  EXPECT_EQ(st.message(), "the engine changed its mind");
  EXPECT_TRUE(s->Workflows(false)->empty());
  EXPECT_TRUE(s->Shards("rolled")->empty());
  EXPECT_TRUE(s->History(std::nullopt, 0)->empty());

  // Nested: joins the outer one; an inner failure rolls back the whole, even if ignored.
  st = s->Transaction([&] {
    AUGUR_RETURN_IF_ERROR(s->PutWorkflow(Workflow("outer", 1, WorkflowState::kRunning)));
    Status inner = s->Transaction([&] {
      AUGUR_RETURN_IF_ERROR(s->PutWorkflow(Workflow("inner", 2, WorkflowState::kRunning)));
      return Status::IOError("inner failed");
    });
    EXPECT_FALSE(inner.ok());
    return Status::OK();  // ignores it
  });
  EXPECT_EQ(st.code(), Status::Code::kIOError);
  EXPECT_TRUE(s->Workflows(false)->empty());

  st = s->Transaction([&] {
    AUGUR_RETURN_IF_ERROR(s->PutWorkflow(Workflow("outer", 1, WorkflowState::kRunning)));
    return s->Transaction(
        [&] { return s->PutWorkflow(Workflow("inner", 2, WorkflowState::kRunning)); });
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(s->Workflows(false)->size(), 2u);

  // A body that throws rolls back, and the store stays usable.
  EXPECT_THROW((void)s->Transaction([&]() -> Status {
    (void)s->PutWorkflow(Workflow("thrown", 3, WorkflowState::kRunning));
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_FALSE(*s->GetWorkflow("thrown"));
  EXPECT_TRUE(s->Transaction([] { return Status::OK(); }).ok());
}

TEST_F(StoreTest, ReopeningSeesTheData) {
  {
    auto s = OpenOk(db_);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->Transaction([&] {
                   AUGUR_RETURN_IF_ERROR(
                       s->PutWorkflow(Workflow("w", 1, WorkflowState::kRunning)));
                   return s->PutStageOutput("w", "count", "/o");
                 }).ok());
  }
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  auto w = s->GetWorkflow("w");
  ASSERT_TRUE(w);
  ASSERT_TRUE(*w);
  EXPECT_EQ((*w)->spec_yaml, "workflow: checksum\nstages: []\n");
  EXPECT_EQ(*s->StageOutput("w", "count"), std::optional<std::string>("/o"));
}

// Another process reads what this one wrote, while this one keeps the store open (and even
// while this one holds a write transaction: WAL readers are not blocked), and writes what
// this one then reads. The child is forked before this process opens any SQLite connection
// (SQLite connections must not cross fork()).
TEST_F(StoreTest, AnotherProcessReadsAndWritesWhileThisOneKeepsItOpen) {
  int to_child[2], to_parent[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(to_parent), 0);
  std::string path = db_;
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(to_child[1]);
    ::close(to_parent[0]);
    char c;
    auto step = [&](char expect) { return ::read(to_child[0], &c, 1) == 1 && c == expect; };
    auto say = [&](char v) { (void)!::write(to_parent[1], &v, 1); };
    if (!step('1')) ::_exit(10);
    auto s = WorkflowStore::Open(path);
    if (!s) ::_exit(11);
    auto w = (*s)->GetWorkflow("from-parent");
    if (!w || !*w || (*w)->origin != "parent") ::_exit(12);
    if (!(*s)->PutWorkflow(Workflow("from-child", 2, WorkflowState::kRunning)).ok()) ::_exit(13);
    say('2');
    if (!step('3')) ::_exit(14);  // the parent is inside a write transaction now
    auto all = (*s)->Workflows(false);
    if (!all || all->size() != 2) ::_exit(15);  // "uncommitted" not visible, not blocked
    say('4');
    ::_exit(0);
  }
  ::close(to_child[0]);
  ::close(to_parent[1]);
  auto say = [&](char v) { ASSERT_EQ(::write(to_child[1], &v, 1), 1); };
  auto hear = [&](char expect) {
    char c = 0;
    ASSERT_EQ(::read(to_parent[0], &c, 1), 1) << "the child exited early";
    ASSERT_EQ(c, expect);
  };
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  auto w = Workflow("from-parent", 1, WorkflowState::kRunning);
  w.origin = "parent";
  ASSERT_TRUE(s->PutWorkflow(w).ok());
  say('1');
  hear('2');
  auto got = s->GetWorkflow("from-child");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_TRUE(*got) << "the child's write is visible to the open store";
  Status st = s->Transaction([&] {
    AUGUR_RETURN_IF_ERROR(s->PutWorkflow(Workflow("uncommitted", 3, WorkflowState::kRunning)));
    say('3');
    hear('4');
    return Status::OK();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "child failed at step " << WEXITSTATUS(status);
  ::close(to_child[1]);
  ::close(to_parent[0]);
  EXPECT_EQ(s->Workflows(false)->size(), 3u);
}

// Lists the directory's names, to check that nothing was added beside a refused file.
std::vector<std::string> Names(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

void ExpectRefusedUntouched(const std::string& path, Status::Code code,
                            const std::string& says) {
  std::string before = ReadBytes(path);
  auto names = Names(fs::path(path).parent_path());
  for (int i = 0; i < 2; ++i) {  // and again: a refused file stays refused
    auto s = WorkflowStore::Open(path);
    ASSERT_FALSE(s) << path << " was accepted";
    EXPECT_EQ(s.error().code(), code) << s.error().ToString();
    EXPECT_THAT(s.error().message(), HasSubstr(path));
    EXPECT_THAT(s.error().message(), HasSubstr(says));
    EXPECT_THAT(s.error().message(), HasSubstr("left untouched"));
  }
  EXPECT_EQ(ReadBytes(path), before) << "the file was changed";
  EXPECT_EQ(Names(fs::path(path).parent_path()), names) << "files were added beside it";
}

TEST_F(StoreTest, AFileThatIsNotSqliteIsCorruptionAndLeftUntouched) {
  fs::create_directories(dir_);
  std::mt19937 rng(7);
  std::string bytes(8192, '\0');
  for (auto& b : bytes) b = static_cast<char>(rng());
  std::string random = (dir_ / "random.db").string();
  WriteBytes(random, bytes);
  ExpectRefusedUntouched(random, Status::Code::kCorruption, "file is not a database");
  std::string text = (dir_ / "notes.db").string();
  WriteBytes(text, "my notes, not a database\n");
  ExpectRefusedUntouched(text, Status::Code::kCorruption, "not a database");
}

TEST_F(StoreTest, AnotherSqliteDatabaseIsCorruptionAndLeftUntouched) {
  fs::create_directories(dir_);
  std::string other = (dir_ / "other.db").string();
  RawSql(other, "CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT);"
                "INSERT INTO photos (path) VALUES ('/a.jpg'), ('/b.jpg');");
  ExpectRefusedUntouched(other, Status::Code::kCorruption, "no augur_schema table");
  std::string no_row = (dir_ / "no_row.db").string();
  RawSql(no_row, "CREATE TABLE augur_schema (version INTEGER);");
  ExpectRefusedUntouched(no_row, Status::Code::kCorruption, "no version row");
}

TEST_F(StoreTest, ANewerSchemaIsFailedPreconditionAndLeftUntouched) {
  {
    auto s = OpenOk(db_);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutWorkflow(Workflow("w", 1, WorkflowState::kRunning)).ok());
  }
  RawSql(db_, "UPDATE augur_schema SET version = 99;"
              "PRAGMA wal_checkpoint(TRUNCATE);");
  ExpectRefusedUntouched(db_, Status::Code::kFailedPrecondition, "schema version 99");
}

// A tiny tmpfs (needs root; skipped with the reason otherwise), filled up beside the store.
TEST_F(StoreTest, AFullDiskIsIOErrorAndReadsStillWork) {
  fs::path mnt = dir_ / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m,mode=0700") != 0) {
    GTEST_SKIP() << "cannot mount a small tmpfs at " << mnt << ": " << std::strerror(errno)
                 << " (needs root / CAP_SYS_ADMIN)";
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  std::string path = (mnt / "workflows.db").string();
  auto s = OpenOk(path);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutWorkflow(Workflow("before", 1, WorkflowState::kRunning)).ok());
  // Fill what is left of the file system.
  std::string filler = (mnt / "filler").string();
  {
    FILE* f = std::fopen(filler.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::setvbuf(f, nullptr, _IONBF, 0);
    std::string block(4096, 'x');
    while (std::fwrite(block.data(), 1, block.size(), f) == block.size()) {
    }
    while (std::fwrite("x", 1, 1, f) == 1) {
    }
    std::fclose(f);
  }
  auto big = Workflow("big", 2, WorkflowState::kRunning);
  big.spec_yaml = std::string(256 * 1024, 'y');
  Status st = s->PutWorkflow(big);
  ASSERT_FALSE(st.ok()) << "the write fitted: the file system is not full";
  EXPECT_EQ(st.code(), Status::Code::kIOError) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr(path));
  EXPECT_THAT(st.message(), HasSubstr("saving workflow big"));
  EXPECT_THAT(st.message(), HasSubstr("full"));
  std::printf("full disk: %s\n", st.ToString().c_str());
  // Also inside a transaction (failing at the statement or at COMMIT).
  st = s->Transaction([&] { return s->PutWorkflow(big); });
  EXPECT_EQ(st.code(), Status::Code::kIOError) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("full"));
  // Reads still answer, with what was there.
  auto before = s->GetWorkflow("before");
  ASSERT_TRUE(before) << before.error().ToString();
  EXPECT_TRUE(*before);
  auto all = s->Workflows(false);
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_EQ(all->size(), 1u);
  // And writes work again once there is room.
  fs::remove(filler);
  st = s->PutWorkflow(big);
  EXPECT_TRUE(st.ok()) << st.ToString();
  s.reset();
}

// Schema 1 exactly as the first release wrote it: an old database to migrate.
constexpr const char* kSchemaV1 = R"sql(
PRAGMA journal_mode=WAL;
CREATE TABLE augur_schema (version INTEGER NOT NULL);
CREATE TABLE workflows (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, spec_yaml TEXT NOT NULL,
  origin TEXT NOT NULL, state TEXT NOT NULL, submitted_ns INTEGER NOT NULL,
  finished_ns INTEGER NOT NULL, deadline_ns INTEGER NOT NULL, boost REAL NOT NULL,
  boost_until_ns INTEGER NOT NULL, spent REAL NOT NULL, error TEXT NOT NULL);
CREATE INDEX workflows_by_submitted ON workflows (submitted_ns);
CREATE TABLE shards (workflow_id TEXT NOT NULL, stage TEXT NOT NULL, idx INTEGER NOT NULL,
  shard_id TEXT NOT NULL, range_begin INTEGER NOT NULL, range_end INTEGER NOT NULL,
  items TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL, want_cpu REAL NOT NULL,
  want_memory INTEGER NOT NULL, min_cpu REAL NOT NULL, min_memory INTEGER NOT NULL,
  not_before_ns INTEGER NOT NULL, winner TEXT NOT NULL, output_path TEXT NOT NULL,
  PRIMARY KEY (workflow_id, stage, idx));
CREATE TABLE attempts (attempt_id TEXT PRIMARY KEY NOT NULL, workflow_id TEXT NOT NULL,
  stage TEXT NOT NULL, shard_index INTEGER NOT NULL, attempt INTEGER NOT NULL,
  backend TEXT NOT NULL, instance TEXT NOT NULL, invocation TEXT NOT NULL,
  grant_cpu REAL NOT NULL, grant_memory INTEGER NOT NULL, state TEXT NOT NULL,
  started_ns INTEGER NOT NULL, finished_ns INTEGER NOT NULL, exit_code INTEGER NOT NULL,
  term_signal INTEGER NOT NULL, cpu_seconds REAL NOT NULL, peak_memory_bytes INTEGER NOT NULL,
  bytes_read INTEGER NOT NULL, bytes_written INTEGER NOT NULL, output_path TEXT NOT NULL,
  error TEXT NOT NULL);
CREATE INDEX attempts_by_workflow ON attempts (workflow_id);
CREATE TABLE stage_outputs (workflow_id TEXT NOT NULL, stage TEXT NOT NULL,
  output_path TEXT NOT NULL, PRIMARY KEY (workflow_id, stage));
CREATE TABLE history (attempt_id TEXT PRIMARY KEY NOT NULL, workflow_id TEXT NOT NULL,
  workflow_name TEXT NOT NULL, stage TEXT NOT NULL, shard_index INTEGER NOT NULL,
  range_begin INTEGER NOT NULL, range_end INTEGER NOT NULL, items INTEGER NOT NULL,
  state TEXT NOT NULL, exit_code INTEGER NOT NULL, started_ns INTEGER NOT NULL,
  wall_seconds REAL NOT NULL, cpu_seconds REAL NOT NULL, peak_memory_bytes INTEGER NOT NULL,
  bytes_read INTEGER NOT NULL, bytes_written INTEGER NOT NULL, grant_cpu REAL NOT NULL,
  grant_memory INTEGER NOT NULL);
CREATE INDEX history_by_workflow ON history (workflow_id, started_ns);
CREATE INDEX history_by_name ON history (workflow_name, started_ns);
CREATE INDEX history_by_started ON history (started_ns);
INSERT INTO augur_schema (version) VALUES (1);
)sql";

int64_t SqlInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  int64_t v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

TEST_F(StoreTest, ASchema1FileIsMigratedAndKeepsItsRows) {
  fs::create_directories(db_.substr(0, db_.rfind('/')));
  RawSql(db_, std::string(kSchemaV1) +
                  "INSERT INTO workflows VALUES ('old-1', 'old', 'workflow: old', '/o.yaml', "
                  "'succeeded', 10, 20, 0, 0, 0, 0.5, '');"
                  "INSERT INTO history VALUES ('old-1/s/0#1', 'old-1', 'old', 's', 0, 0, 10, 0, "
                  "'succeeded', 0, 11, 1.5, 1.25, 4096, 0, 7, 1, 1024);");
  {
    auto s = OpenOk(db_);
    ASSERT_TRUE(s);
    auto h = s->History(std::nullopt, 10);
    ASSERT_TRUE(h) << h.error().ToString();
    ASSERT_EQ(h->size(), 1u);
    EXPECT_EQ((*h)[0].wall_seconds, 1.5);
    EXPECT_EQ((*h)[0].bytes_written, 7u);
    EXPECT_EQ((*h)[0].cost, 0);  // the new column's default
    auto w = s->GetWorkflow("old-1");
    ASSERT_TRUE(w && *w);
    EXPECT_EQ((*w)->spent, 0.5);
    EXPECT_EQ((*h)[0].host, "");  // schema 3's column's default
    // What schemas 2 and 3 added works.
    HistoryRecord n = History("new-1/s/0#1", "new-1", "old", 12);
    n.cost = 2.5;
    n.host = "peer-7";
    ASSERT_TRUE(s->AppendHistory(n).ok());
    auto h2 = s->History(std::string("new-1"), 10);
    ASSERT_TRUE(h2 && h2->size() == 1u);
    EXPECT_EQ((*h2)[0].host, "peer-7");
    ASSERT_TRUE(s->PutEvent({"launch", "old", 40, 5'000'000, 5}).ok());
    auto latest = s->LatestNamed("old");
    ASSERT_TRUE(latest && *latest);
    EXPECT_EQ((*latest)->id, "old-1");
    // A v1 file keeps its vacuum mode (none): pruning there only reuses pages.
    auto r = s->PruneHistory(1'000'000, 1000);
    ASSERT_TRUE(r) << r.error().ToString();
    EXPECT_EQ(r->history_rows, 2u);
    EXPECT_EQ(r->workflows, 1u);
    EXPECT_EQ(r->pages_released, 0u);
  }
  EXPECT_EQ(SqlInt(db_, "SELECT max(version) FROM augur_schema"), 5);
  EXPECT_EQ(SqlInt(db_, "SELECT count(*) FROM augur_schema"), 1);
  EXPECT_EQ(SqlInt(db_, "SELECT count(*) FROM replicas"), 0);  // schema 4's table
  EXPECT_EQ(SqlInt(db_, "SELECT count(*) FROM leases"), 0);    // schema 5's
  // Opening again does not migrate again.
  auto again = OpenOk(db_);
  ASSERT_TRUE(again);
  auto ev = again->Events("");
  ASSERT_TRUE(ev);
  ASSERT_EQ(ev->size(), 1u);
}

TEST_F(StoreTest, ANewFileIsSchema5WithIncrementalVacuum) {
  { ASSERT_TRUE(OpenOk(db_)); }
  EXPECT_EQ(SqlInt(db_, "SELECT max(version) FROM augur_schema"), 5);
  EXPECT_EQ(SqlInt(db_, "PRAGMA auto_vacuum"), 2);  // incremental
}

// A schema 4 file (before leases were kept): its running attempt keeps its row, gains an empty
// lease id, and the leases table works.
TEST_F(StoreTest, ASchema4FileIsMigratedToLeases) {
  {
    auto s = OpenOk(db_);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutWorkflow(Workflow("wf-4", 10, WorkflowState::kRunning)).ok());
  }
  // Back to what schema 4 was: no lease column, no leases table.
  RawSql(db_, "DROP TABLE leases; ALTER TABLE attempts DROP COLUMN lease_id; "
              "UPDATE augur_schema SET version = 4;"
              "INSERT INTO attempts (attempt_id, workflow_id, stage, shard_index, attempt, "
              "backend, instance, invocation, grant_cpu, grant_memory, state, started_ns, "
              "finished_ns, exit_code, term_signal, cpu_seconds, peak_memory_bytes, bytes_read, "
              "bytes_written, output_path, error, resource_class, host) VALUES ('wf-4/s/0#1', "
              "'wf-4', 's', 0, 1, 'process', 'i', 'v', 0.5, 1024, 'running', 11, 0, 0, 0, 0, 0, "
              "0, 0, '/o', '', '', 'peer-2');");
  ASSERT_EQ(SqlInt(db_, "SELECT max(version) FROM augur_schema"), 4);
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  EXPECT_EQ(SqlInt(db_, "SELECT max(version) FROM augur_schema"), 5);
  auto attempts = s->Attempts("wf-4");
  ASSERT_TRUE(attempts) << attempts.error().ToString();
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].host, "peer-2");
  EXPECT_EQ((*attempts)[0].lease_id, "");
  EXPECT_EQ((*attempts)[0].invocation, "v");

  LeaseRecord l;
  l.lease_id = "host-a/wf/s/0#1@1";
  l.owner = "host-a";
  l.request_id = "wf/s/0#1@1";
  l.attempt_id = "wf/s/0#1";
  l.backend = "process";
  l.cost_class = "spot";
  l.want = {1, 2048};
  l.min = {0.5, 1024};
  l.grant = {0.75, 1536};
  l.score = 7.5;
  l.ttl_ns = 10'000'000'000;
  ASSERT_TRUE(s->PutLease(l).ok());
  // The executor's handles stay when the placer writes the lease again (started, its result).
  ASSERT_TRUE(s->SetLeaseHandles(l.lease_id, "inst-1", "inv-1").ok());
  l.started = true;
  l.dir = "/remote/abc";
  l.output_path = "/remote/abc/s/0.1.out";
  l.owner_output = "/work/wf/s/0.1.out";
  l.result = std::string("\x08\x01\x00 result", 10);
  ASSERT_TRUE(s->PutLease(l).ok());
  LeaseRecord other = l;
  other.lease_id = "host-b/x@1";
  ASSERT_TRUE(s->PutLease(other).ok());
  ASSERT_TRUE(s->DeleteLease(other.lease_id).ok());
  ASSERT_TRUE(s->DeleteLease("unknown").ok());
  auto leases = s->Leases();
  ASSERT_TRUE(leases) << leases.error().ToString();
  ASSERT_EQ(leases->size(), 1u);
  const LeaseRecord& r = (*leases)[0];
  EXPECT_EQ(r.lease_id, l.lease_id);
  EXPECT_EQ(r.owner, "host-a");
  EXPECT_EQ(r.request_id, l.request_id);
  EXPECT_EQ(r.attempt_id, l.attempt_id);
  EXPECT_EQ(r.backend, "process");
  EXPECT_EQ(r.cost_class, "spot");
  EXPECT_EQ(r.want, l.want);
  EXPECT_EQ(r.min, l.min);
  EXPECT_EQ(r.grant, l.grant);
  EXPECT_EQ(r.score, 7.5);
  EXPECT_EQ(r.ttl_ns, l.ttl_ns);
  EXPECT_TRUE(r.started);
  EXPECT_EQ(r.dir, l.dir);
  EXPECT_EQ(r.output_path, l.output_path);
  EXPECT_EQ(r.owner_output, l.owner_output);
  EXPECT_EQ(r.result, l.result);
  EXPECT_EQ(r.instance, "inst-1");
  EXPECT_EQ(r.invocation, "inv-1");
}

// Replicated workflows (schema 4): binary snapshots by replica id survive a reopen, and a
// workflow another host owns now is forgotten with its rows (its history stays).
TEST_F(StoreTest, ReplicaSnapshotsPersistAndAWorkflowCanBeForgotten) {
  const std::string snap("\x0a\x00\xff binary \x00 snapshot", 23);
  {
    auto s = OpenOk(db_);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->PutReplica("wf-1~0", snap).ok());
    ASSERT_TRUE(s->PutReplica("wf-2~3", "second").ok());
    ASSERT_TRUE(s->PutReplica("wf-2~3", "second, newer").ok());  // replaced
    ASSERT_TRUE(s->DeleteReplica("no-such~0").ok());
    ASSERT_TRUE(s->PutWorkflow(Workflow("wf-1", 10, WorkflowState::kRunning)).ok());
    ShardRecord sh;
    sh.workflow_id = "wf-1";
    sh.stage = "count";
    ASSERT_TRUE(s->PutShard(sh).ok());
    AttemptRecord a;
    a.attempt_id = "wf-1/count/0#1";
    a.workflow_id = "wf-1";
    a.stage = "count";
    ASSERT_TRUE(s->PutAttempt(a).ok());
    ASSERT_TRUE(s->PutStageOutput("wf-1", "count", "/x/count.out").ok());
    ASSERT_TRUE(s->AppendHistory(History("wf-1/count/0#1", "wf-1", "checksum", 11)).ok());
  }
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  auto rows = s->Replicas();
  ASSERT_TRUE(rows) << rows.error().ToString();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0], (std::pair<std::string, std::string>{"wf-1~0", snap}));
  EXPECT_EQ((*rows)[1].second, "second, newer");
  ASSERT_TRUE(s->DeleteReplica("wf-1~0").ok());
  EXPECT_EQ(s->Replicas()->size(), 1u);

  ASSERT_TRUE(s->DeleteWorkflow("wf-1").ok());
  EXPECT_FALSE(*s->GetWorkflow("wf-1"));
  EXPECT_TRUE(s->Shards("wf-1")->empty());
  EXPECT_TRUE(s->Attempts("wf-1")->empty());
  EXPECT_FALSE(*s->StageOutput("wf-1", "count"));
  EXPECT_EQ(s->History(std::string("wf-1"), 10)->size(), 1u);
  ASSERT_TRUE(s->DeleteWorkflow("wf-1").ok());  // again: nothing to do
}

TEST_F(StoreTest, SubmissionsNewestFirstSinceATimeAndTheNewestOfAName) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  for (auto [id, t] : {std::pair{"c", 30}, std::pair{"a", 10}, std::pair{"b", 20}}) {
    WorkflowRecord w = Workflow(id, t, WorkflowState::kSucceeded);
    w.name = std::string("n") + id;
    ASSERT_TRUE(s->PutWorkflow(w).ok());
  }
  WorkflowRecord again = Workflow("a2", 40, WorkflowState::kRunning);
  again.name = "na";
  ASSERT_TRUE(s->PutWorkflow(again).ok());
  auto subs = s->Submissions(15);
  ASSERT_TRUE(subs);
  ASSERT_EQ(subs->size(), 3u);
  EXPECT_EQ((*subs)[0].name, "na");
  EXPECT_EQ((*subs)[0].submitted_ns, 40);
  EXPECT_EQ((*subs)[0].id, "a2");
  EXPECT_EQ((*subs)[2].name, "nb");
  EXPECT_EQ((*subs)[2].submitted_ns, 20);
  auto newest = s->Submissions(0, 2);
  ASSERT_TRUE(newest);
  ASSERT_EQ(newest->size(), 2u);
  EXPECT_EQ((*newest)[1].id, "c");
  auto latest = s->LatestNamed("na");
  ASSERT_TRUE(latest && *latest);
  EXPECT_EQ((*latest)->id, "a2");
  EXPECT_FALSE(*s->LatestNamed("nobody"));
}

TEST_F(StoreTest, EventsRoundTripReplaceByNameAndSortByTime) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->PutEvent({"b-launch", "render", 50, 3000, 1}).ok());
  ASSERT_TRUE(s->PutEvent({"a-sale", "checksum", 12.5, 2000, 2}).ok());
  ASSERT_TRUE(s->PutEvent({"c-night", "render", 5, 1000, 3}).ok());
  ASSERT_TRUE(s->PutEvent({"b-launch", "render", 80, 4000, 4}).ok());  // replaces
  auto all = s->Events("");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "c-night");
  EXPECT_EQ((*all)[1].name, "a-sale");
  EXPECT_EQ((*all)[1].expected, 12.5);
  EXPECT_EQ((*all)[1].workflow, "checksum");
  EXPECT_EQ((*all)[2].name, "b-launch");
  EXPECT_EQ((*all)[2].expected, 80);
  EXPECT_EQ((*all)[2].at_ns, 4000);
  EXPECT_EQ((*all)[2].created_ns, 4);
  auto render = s->Events("render");
  ASSERT_TRUE(render);
  ASSERT_EQ(render->size(), 2u);
  EXPECT_EQ((*render)[0].name, "c-night");
}

TEST_F(StoreTest, PruneDeletesOnlyWhatIsOlderInBoundedBatches) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  constexpr int64_t kCut = 1'000'000;
  ASSERT_TRUE(s->Transaction([&]() -> Status {
                 for (int i = 0; i < 50; ++i) {
                   AUGUR_RETURN_IF_ERROR(
                       s->AppendHistory(History("old" + std::to_string(i), "w", "w", i)));
                   AUGUR_RETURN_IF_ERROR(
                       s->AppendHistory(History("new" + std::to_string(i), "w", "w", kCut + i)));
                 }
                 // An old finished workflow with 30 shards and attempts, an old one still running,
                 // a new finished one.
                 for (auto [id, state, finished] :
                      {std::tuple{"done-old", WorkflowState::kSucceeded, int64_t{500}},
                       std::tuple{"running-old", WorkflowState::kRunning, int64_t{0}},
                       std::tuple{"done-new", WorkflowState::kFailed, kCut + 5}}) {
                   WorkflowRecord w = Workflow(id, 1, state);
                   w.finished_ns = finished;
                   AUGUR_RETURN_IF_ERROR(s->PutWorkflow(w));
                   for (uint32_t k = 0; k < 30; ++k) {
                     ShardRecord sh;
                     sh.workflow_id = id;
                     sh.stage = "count";
                     sh.index = k;
                     AUGUR_RETURN_IF_ERROR(s->PutShard(sh));
                     AttemptRecord a;
                     a.attempt_id = fmt::format("{}/count/{}#1", id, k);
                     a.workflow_id = id;
                     a.stage = "count";
                     AUGUR_RETURN_IF_ERROR(s->PutAttempt(a));
                   }
                   AUGUR_RETURN_IF_ERROR(s->PutStageOutput(id, "count", "/out"));
                 }
                 AUGUR_RETURN_IF_ERROR(s->PutEvent({"past", "w", 1, 10, 1}));
                 AUGUR_RETURN_IF_ERROR(s->PutEvent({"future", "w", 1, kCut + 10, 1}));
                 return Status::OK();
               }).ok());
  // Batches of 20 rows: the 50 old history rows take three, then the old workflow's 61 rows
  // and its own over four more.
  size_t batches = 0, history_rows = 0, workflows = 0, other = 0;
  std::vector<std::string> ids;
  for (;;) {
    auto r = s->PruneHistory(kCut, 20);
    ASSERT_TRUE(r) << r.error().ToString();
    ++batches;
    EXPECT_LE(r->history_rows + r->other_rows + r->workflows, 20u);
    history_rows += r->history_rows;
    workflows += r->workflows;
    other += r->other_rows;
    ids.insert(ids.end(), r->workflow_ids.begin(), r->workflow_ids.end());
    if (!r->more) break;
    ASSERT_LT(batches, 20u);
  }
  EXPECT_GE(batches, 6u);
  EXPECT_EQ(history_rows, 50u);
  EXPECT_EQ(workflows, 1u);
  EXPECT_EQ(ids, std::vector<std::string>{"done-old"});
  EXPECT_EQ(other, 61u + 1u);  // 30 shards, 30 attempts, 1 output; 1 event
  auto h = s->History(std::nullopt, 0);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->size(), 50u);
  for (const HistoryRecord& r : *h) EXPECT_GE(r.started_ns, kCut);
  EXPECT_FALSE(*s->GetWorkflow("done-old"));
  EXPECT_TRUE(s->Shards("done-old")->empty());
  EXPECT_TRUE(s->Attempts("done-old")->empty());
  EXPECT_FALSE(*s->StageOutput("done-old", "count"));
  EXPECT_TRUE(*s->GetWorkflow("running-old"));
  EXPECT_EQ(s->Shards("running-old")->size(), 30u);
  EXPECT_TRUE(*s->GetWorkflow("done-new"));
  EXPECT_EQ(s->Attempts("done-new")->size(), 30u);
  auto ev = s->Events("");
  ASSERT_EQ(ev->size(), 1u);
  EXPECT_EQ((*ev)[0].name, "future");
  // Nothing left: a batch says so at once.
  auto r = s->PruneHistory(kCut, 20);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->more);
  EXPECT_EQ(r->history_rows + r->other_rows + r->workflows, 0u);
}

// A year of history for a busy host (500,000 finished attempts, ~1,400 a day, and their
// workflows), pruned to 180 days in bounded batches: each batch is short, the freed pages are
// given back, and another month of the same load with pruning as it goes does not grow the
// file.
TEST_F(StoreTest, AYearOfHistoryPrunedTo180DaysKeepsTheFileBounded) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  constexpr int64_t kDayNs = 24LL * 3600 * 1'000'000'000;
  constexpr int kRowsPerDay = 500'000 / 365;
  constexpr int kShards = 20;  // per workflow
  auto mib = [&] {
    double wal = fs::exists(db_ + "-wal") ? double(fs::file_size(db_ + "-wal")) : 0;
    return std::pair{double(fs::file_size(db_)) / (1 << 20), wal / (1 << 20)};
  };
  // One day of load: kRowsPerDay attempts of workflows of kShards shards, finished that day.
  int64_t seq = 0;
  auto day = [&](int d) -> Status {
    HistoryRecord h;
    h.stage = "count";
    h.grant = {2, 4ULL << 30};
    for (int i = 0; i < kRowsPerDay; ++i, ++seq) {
      const int64_t wf = seq / kShards;
      const std::string id = "checksum-" + std::to_string(wf);
      const int64_t t = d * kDayNs + kDayNs / kRowsPerDay * i;
      if (seq % kShards == 0) {
        WorkflowRecord w = Workflow(id, t, WorkflowState::kSucceeded);
        w.finished_ns = t + kDayNs / kRowsPerDay * kShards;
        AUGUR_RETURN_IF_ERROR(s->PutWorkflow(w));
        AUGUR_RETURN_IF_ERROR(s->PutStageOutput(id, "count", "/var/lib/augur/out/" + id));
      }
      h.workflow_id = id;
      h.workflow_name = wf % 2 ? "checksum" : "render";
      h.shard_index = uint32_t(seq % kShards);
      h.attempt_id = fmt::format("{}/count/{}#1", id, h.shard_index);
      h.started_ns = t;
      h.wall_seconds = 10 + double(seq % 50);
      h.cpu_seconds = 9 + double(seq % 40);
      h.peak_memory_bytes = (1ULL << 30) + uint64_t(seq);
      AUGUR_RETURN_IF_ERROR(s->AppendHistory(h));
      if (seq % 4 == 0) {  // a few shards and attempts kept per workflow
        ShardRecord sh;
        sh.workflow_id = id;
        sh.stage = "count";
        sh.index = h.shard_index;
        AUGUR_RETURN_IF_ERROR(s->PutShard(sh));
        AttemptRecord a;
        a.attempt_id = h.attempt_id;
        a.workflow_id = id;
        a.stage = "count";
        AUGUR_RETURN_IF_ERROR(s->PutAttempt(a));
      }
    }
    return Status::OK();
  };
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(s->Transaction([&]() -> Status {
                 for (int d = 0; d < 365; ++d) AUGUR_RETURN_IF_ERROR(day(d));
                 return Status::OK();
               }).ok());
  auto t1 = std::chrono::steady_clock::now();
  const auto [year_mib, year_wal] = mib();
  // Retention as the executor runs it: one batch of 1000 rows per call, until done.
  std::vector<double> ms;
  size_t pruned = 0, released = 0;
  auto prune = [&](int64_t cutoff) {
    for (;;) {
      auto b0 = std::chrono::steady_clock::now();
      auto r = s->PruneHistory(cutoff, 1000);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0).count());
      EXPECT_TRUE(r) << r.error().ToString();
      if (!r) return;
      pruned += r->history_rows;
      released += r->pages_released;
      if (!r->more) return;
    }
  };
  prune(365 * kDayNs - 180 * kDayNs);
  const size_t batches = ms.size();
  const size_t pruned_year = pruned;
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const auto [after_mib, after_wal] = mib();
  auto left = s->History(std::nullopt, 0);
  ASSERT_TRUE(left);
  EXPECT_EQ(left->size(), size_t(kRowsPerDay) * 180);
  EXPECT_EQ(pruned_year, size_t(kRowsPerDay) * 185);
  // Another 30 days of the same load, a day's rows per transaction, pruning after each.
  std::vector<double> month_mib;
  for (int d = 365; d < 395; ++d) {
    ASSERT_TRUE(s->Transaction([&] { return day(d); }).ok());
    prune((d + 1) * kDayNs - 180 * kDayNs);
    month_mib.push_back(mib().first);
  }
  const double month_max = *std::max_element(month_mib.begin(), month_mib.end());
  std::printf(
      "a year: %d history rows (+%lld workflows) inserted in %.1f s; file %.1f MiB "
      "(+wal %.1f)\n",
      kRowsPerDay * 365, static_cast<long long>(seq / kShards),
      std::chrono::duration<double>(t1 - t0).count(), year_mib, year_wal);
  std::printf(
      "pruned to 180 days: %zu rows in %zu batches of 1000, per batch median %.1f ms, "
      "p99 %.1f ms, max %.1f ms; %zu pages released; file %.1f MiB (+wal %.1f)\n",
      pruned_year, batches, sorted[sorted.size() / 2], sorted[sorted.size() * 99 / 100],
      sorted.back(), released, after_mib, after_wal);
  std::printf("a month more with pruning: file %.1f..%.1f MiB\n",
              *std::min_element(month_mib.begin(), month_mib.end()), month_max);
  // Half the rows went: the file gives back most of their pages.
  EXPECT_LT(after_mib, 0.7 * year_mib);
  // Steady state: freed pages are reused; the file does not grow past where it was.
  EXPECT_LT(month_max, after_mib * 1.1);
  // Each batch is short (a generous bound on a shared machine; the median is what matters).
  EXPECT_LT(sorted[sorted.size() / 2], 100);
  EXPECT_LT(sorted.back(), 1000);
}

// A year of history for a busy host: ~550 finished attempts a day.
TEST_F(StoreTest, AYearOfHistoryInOneTransaction) {
  auto s = OpenOk(db_);
  ASSERT_TRUE(s);
  constexpr int kRows = 200'000;
  constexpr int64_t kYearNs = 365LL * 24 * 3600 * 1'000'000'000;
  auto t0 = std::chrono::steady_clock::now();
  Status st = s->Transaction([&] {
    HistoryRecord h;
    h.stage = "count";
    h.grant = {2, 4ULL << 30};
    for (int i = 0; i < kRows; ++i) {
      int wf = i / 100;
      h.workflow_id = "checksum-" + std::to_string(wf);
      h.workflow_name = wf % 2 ? "checksum" : "render";
      h.attempt_id = h.workflow_id + "/count/" + std::to_string(i % 100) + "#1";
      h.shard_index = static_cast<uint32_t>(i % 100);
      h.started_ns = kYearNs / kRows * i;
      h.wall_seconds = 10 + i % 50;
      h.cpu_seconds = 9 + i % 40;
      h.peak_memory_bytes = (1ULL << 30) + static_cast<uint64_t>(i);
      AUGUR_RETURN_IF_ERROR(s->AppendHistory(h));
    }
    return Status::OK();
  });
  auto t1 = std::chrono::steady_clock::now();
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto newest = s->History(std::nullopt, 100);
  auto t2 = std::chrono::steady_clock::now();
  auto one = s->History("checksum-1999", 1000);
  auto t3 = std::chrono::steady_clock::now();
  auto by_name = s->History("checksum", 50);
  auto t4 = std::chrono::steady_clock::now();
  ASSERT_TRUE(newest && one && by_name);
  ASSERT_EQ(newest->size(), 100u);
  EXPECT_EQ(newest->front().attempt_id, "checksum-1999/count/99#1");
  EXPECT_EQ(one->size(), 100u);
  EXPECT_EQ(by_name->size(), 50u);
  EXPECT_EQ(by_name->front().workflow_name, "checksum");
  auto ms = [](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  std::printf("history: %d rows inserted in one transaction in %.0f ms; newest 100 in %.2f ms, "
              "one workflow in %.2f ms, by name (50) in %.2f ms; file %.1f MiB (+wal %.1f MiB)\n",
              kRows, ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4),
              static_cast<double>(fs::file_size(db_)) / (1 << 20),
              fs::exists(db_ + "-wal") ? static_cast<double>(fs::file_size(db_ + "-wal")) / (1 << 20)
                                       : 0.0);
}

}  // namespace
}  // namespace augur::workflow
