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
