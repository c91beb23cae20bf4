// The engine's state machine (src/workflow/engine.h) driven by hand: submit, start, end,
// retry with more memory, merge, the next stage, cancel, restore after a crash.
#include "workflow/engine.h"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>
#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMi = 1ULL << 20;
constexpr int64_t kSec = 1'000'000'000;

const char kTwoStages[] = R"(workflow: sums
priority: 6
stages:
  - name: count
    resources: {cpu: 1, memory: 64Mi}
    shards: {range: [0, 100], count: 4}
    canary: false
    retries: {count: 1, backoff: 1s, grow_memory: 2}
    run: [sh, -c, "seq {shard.begin} {shard.end} > {output}"]
  - name: total
    needs: [count]
    resources: {cpu: 1, memory: 64Mi}
    run: [sh, -c, "awk '{s+=$1} END {print s}' {input}"]
)";

EngineOptions Options() {
  EngineOptions o;
  o.work_root = "/tmp/augur-engine-test";
  o.capacity = {2, 1024 * kMi};
  return o;
}

std::vector<Action> Of(const std::vector<Action>& all, Action::Kind k) {
  std::vector<Action> out;
  for (const Action& a : all) {
    if (a.kind == k) out.push_back(a);
  }
  return out;
}

AttemptOutcome Ok() { return AttemptOutcome{}; }

TEST(EngineTest, RunsAWorkflowThroughItsStagesAndRetriesWithMoreMemory) {
  auto spec = ParseWorkflow(kTwoStages, "sums.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  Engine e(Options());
  auto id = e.Submit(*spec, kTwoStages, "sums.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_FALSE(e.DrainChanges().empty()) << "the workflow and its shards are recorded";

  // Two cores: two of the four shards start, with their placeholders filled.
  std::vector<Action> a = e.Tick(kSec, {});
  std::vector<Action> starts = Of(a, Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/count/0#1");
  EXPECT_THAT(starts[0].argv[2], HasSubstr("seq 0 25 > /tmp/augur-engine-test/" + *id +
                                           "/count/0.1.out"));
  EXPECT_EQ(starts[0].priority, 6);
  Changes c = e.DrainChanges();
  ASSERT_EQ(c.attempts.size(), 2u) << "attempts are recorded before they start";

  // Shard 0 is OOM-killed: retried after its backoff with twice the memory.
  AttemptOutcome oom;
  oom.state = AttemptState::kOom;
  oom.term_signal = 9;
  e.AttemptEnded(starts[0].attempt.attempt_id, oom, 2 * kSec);
  e.AttemptEnded(starts[1].attempt.attempt_id, Ok(), 2 * kSec);
  starts = Of(e.Tick(2 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 2u) << "shards 2 and 3; shard 0 waits out its backoff";
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/count/2#1");
  for (const Action& s : starts) e.AttemptEnded(s.attempt.attempt_id, Ok(), 3 * kSec);
  starts = Of(e.Tick(3 * kSec + kSec / 2, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/count/0#2");
  EXPECT_EQ(starts[0].attempt.grant.memory, 128 * kMi);
  // A late duplicate of shard 1 is discarded; shard 0's retry completes the stage.
  e.AttemptEnded(starts[0].attempt.attempt_id, Ok(), 4 * kSec);
  std::vector<Action> merges = Of(e.Tick(4 * kSec, {}), Action::Kind::kMerge);
  ASSERT_EQ(merges.size(), 1u);
  EXPECT_EQ(merges[0].stage, "count");
  ASSERT_EQ(merges[0].inputs.size(), 4u);
  EXPECT_THAT(merges[0].inputs[0], HasSubstr("/count/0.2.out")) << "the winner of shard 0";
  EXPECT_TRUE(merges[0].argv.empty()) << "concat";

  e.MergeDone(*id, "count", true, "", 5 * kSec);
  starts = Of(e.Tick(5 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_THAT(starts[0].argv[2], HasSubstr("/" + *id + "/count.out")) << "{input}";
  e.AttemptEnded(starts[0].attempt.attempt_id, Ok(), 6 * kSec);
  merges = Of(e.Tick(6 * kSec, {}), Action::Kind::kMerge);
  ASSERT_EQ(merges.size(), 1u);
  e.MergeDone(*id, "total", true, "", 7 * kSec);
  EXPECT_TRUE(e.idle());
  auto status = e.StatusJson(*id, false);
  ASSERT_TRUE(status);
  EXPECT_THAT(*status, HasSubstr("\"state\": \"succeeded\""));
  c = e.DrainChanges();
  EXPECT_EQ(c.history.size(), 6u) << "every finished attempt is history, the OOM one too";
}

TEST(EngineTest, ARunningAttemptsHandlesStayInEveryLaterRecordOfIt) {
  auto spec = ParseWorkflow(kTwoStages, "sums.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  Engine e(Options());
  ASSERT_TRUE(e.Submit(*spec, kTwoStages, "sums.yaml", 0));
  std::vector<Action> starts = Of(e.Tick(kSec, {}), Action::Kind::kStart);
  ASSERT_FALSE(starts.empty());
  const std::string id = starts[0].attempt.attempt_id;
  (void)e.DrainChanges();
  ASSERT_TRUE(e.AttemptRunning(id, "wf-inst", "inv-7").ok());
  Changes c = e.DrainChanges();
  ASSERT_EQ(c.attempts.size(), 1u);
  EXPECT_EQ(c.attempts[0].instance, "wf-inst");
  EXPECT_EQ(c.attempts[0].invocation, "inv-7");
  EXPECT_EQ(c.attempts[0].state, AttemptState::kRunning);
  // A resize records the attempt again: with its handles (a restart re-attaches it).
  GrantChange shrink{GrantChange::Kind::kShrink, id, starts[0].attempt.grant,
                     {0.5, 64 * kMi}, "test"};
  auto resize = e.LedgerChanged(shrink, 2 * kSec);
  ASSERT_TRUE(resize);
  EXPECT_EQ(resize->kind, Action::Kind::kResize);
  c = e.DrainChanges();
  ASSERT_EQ(c.attempts.size(), 1u);
  EXPECT_EQ(c.attempts[0].instance, "wf-inst");
  EXPECT_EQ(c.attempts[0].invocation, "inv-7");
  EXPECT_TRUE(e.AttemptRunning("no-such#1", "i", "v").IsNotFound());
}

TEST(EngineTest, SpentRetriesFailTheWorkflowAndCancelTheRest) {
  auto spec = ParseWorkflow(kTwoStages, "sums.yaml");
  ASSERT_TRUE(spec);
  Engine e(Options());
  auto id = e.Submit(*spec, kTwoStages, "sums.yaml", 0);
  ASSERT_TRUE(id);
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 2u);
  AttemptOutcome failed;
  failed.state = AttemptState::kFailed;
  failed.exit_code = 3;
  e.AttemptEnded(starts[0].attempt.attempt_id, failed, kSec);
  // Shards that waited longer (2, 3) go before the retry of 0 (ready again at 2 s).
  starts = Of(e.Tick(3 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/count/2#1");
  e.AttemptEnded(*id + "/count/1#1", Ok(), 3 * kSec);
  e.AttemptEnded(*id + "/count/2#1", Ok(), 3 * kSec);
  starts = Of(e.Tick(4 * kSec, {}), Action::Kind::kStart);
  const std::string retry = *id + "/count/0#2";
  bool found = false;
  for (const Action& s : starts) found = found || s.attempt.attempt_id == retry;
  ASSERT_TRUE(found);
  e.AttemptEnded(retry, failed, 4 * kSec);
  std::vector<Action> cancels = Of(e.Tick(4 * kSec, {}), Action::Kind::kCancel);
  EXPECT_EQ(cancels.size(), e.running_attempts());
  EXPECT_GE(cancels.size(), 1u);
  auto status = e.StatusJson(*id, false);
  EXPECT_THAT(*status, HasSubstr("stage count shard 0 failed after 2 attempts: exited with "
                                 "status 3"));
}

TEST(EngineTest, ACancelledWorkflowStopsEveryRunningShard) {
  auto spec = ParseWorkflow(kTwoStages, "sums.yaml");
  Engine e(Options());
  auto id = e.Submit(*spec, kTwoStages, "sums.yaml", 0);
  ASSERT_EQ(Of(e.Tick(0, {}), Action::Kind::kStart).size(), 2u);
  ASSERT_TRUE(e.Cancel("sums", kSec).ok()) << "by name";
  EXPECT_EQ(Of(e.Tick(kSec, {}), Action::Kind::kCancel).size(), 2u);
  EXPECT_FALSE(e.Cancel(*id, kSec).ok()) << "already cancelled";
}

TEST(EngineTest, ARestoredEngineReattachesRunningAttemptsAndKeepsFinishedShards) {
  auto spec = ParseWorkflow(kTwoStages, "sums.yaml");
  Engine first(Options());
  auto id = first.Submit(*spec, kTwoStages, "sums.yaml", 0);
  std::vector<Action> starts = Of(first.Tick(0, {}), Action::Kind::kStart);
  first.AttemptEnded(starts[0].attempt.attempt_id, Ok(), kSec);
  // What the store would hold: the last version of each record.
  std::map<std::string, WorkflowRecord> ws;
  std::map<std::string, ShardRecord> shards;
  std::map<std::string, AttemptRecord> attempts;
  Changes c = first.DrainChanges();
  for (auto& w : c.workflows) ws[w.id] = w;
  for (auto& s : c.shards) shards[s.stage + std::to_string(s.index)] = s;
  for (auto& a : c.attempts) attempts[a.attempt_id] = a;
  std::vector<ShardRecord> sv;
  for (auto& [k, s] : shards) sv.push_back(s);
  std::vector<AttemptRecord> av;
  for (auto& [k, a] : attempts) {
    if (a.state == AttemptState::kStarting) a.state = AttemptState::kRunning;
    a.invocation = "inv-" + a.attempt_id;
    av.push_back(a);
  }

  Engine second(Options());
  std::vector<AttemptRecord> reattach;
  ASSERT_TRUE(second.Restore(ws.at(*id), sv, av, {}, &reattach).ok());
  ASSERT_EQ(reattach.size(), 1u) << "shard 1 was running";
  EXPECT_EQ(reattach[0].attempt_id, *id + "/count/1#1");
  // Shard 0 is not run again; shards 2 and 3 start beside the re-attached one (one core
  // left).
  starts = Of(second.Tick(2 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/count/2#1");
}

}  // namespace
}  // namespace augur::workflow

namespace augur::workflow {
namespace {

TEST(EngineTest, AWorkflowIsPlannedAtSubmission) {
  // Two cores: `wide` (four 10 s shards), and `long` (60 s) then `tail` (60 s). Every order
  // ends at 120 s (the long chain), so the plan keeps its first candidate, the scheduler
  // alone (least slack): `long` starts first. The status names the plan.
  const char yaml[] = R"(workflow: planned
stages:
  - name: wide
    expected: 10s
    shards: {range: [0, 4], count: 4}
    run: ["true"]
  - name: long
    expected: 60s
    run: ["true"]
  - name: tail
    needs: [long]
    expected: 60s
    run: ["true"]
)";
  auto spec = ParseWorkflow(yaml, "planned.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  Engine e(Options());
  auto id = e.Submit(*spec, yaml, "planned.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  auto j = nlohmann::json::parse(*e.StatusJson(*id, false));
  EXPECT_EQ(j[0]["plan"].get<std::string>(), "least slack");
  std::vector<Action> starts = Of(e.Tick(kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[0].attempt.stage, "long");

  // Off: no plan is made or shown.
  EngineOptions off = Options();
  off.plan = false;
  Engine e2(off);
  auto id2 = e2.Submit(*spec, yaml, "planned.yaml", 0);
  ASSERT_TRUE(id2);
  j = nlohmann::json::parse(*e2.StatusJson(*id2, false));
  EXPECT_EQ(j[0]["plan"].get<std::string>(), "");
}

TEST(EngineTest, PredictionsComeFromHistoryElseExpectedElseTheDefault) {
  const char yaml[] = R"(workflow: p
deadline: 1h
stages:
  - name: a
    expected: 30s
    run: ["true"]
  - name: b
    needs: [a]
    run: ["true"]
)";
  auto spec = ParseWorkflow(yaml, "p.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  auto eta = [&](Engine& e) {
    auto id = e.Submit(*spec, yaml, "p.yaml", 0);
    auto j = nlohmann::json::parse(*e.StatusJson(*id, false));
    return j[0]["eta_s"].get<double>();
  };
  Engine fresh(Options());
  EXPECT_DOUBLE_EQ(eta(fresh), 30 + 60) << "expected: for a, the default for b";
  auto past = [](const std::string& stage, double wall_s) {
    HistoryRecord h;
    h.workflow_name = "p";
    h.stage = stage;
    h.state = AttemptState::kSucceeded;
    h.wall_seconds = wall_s;
    h.cpu_seconds = wall_s / 2;
    h.peak_memory_bytes = 10 * kMi;
    return h;
  };
  Engine taught(Options());
  taught.Learn(past("a", 2));
  taught.Learn(past("b", 4));
  taught.Learn(past("b", 5));
  EXPECT_DOUBLE_EQ(eta(taught), 2 + 5) << "under 3 samples: (upper) medians of what they took";
  taught.Learn(past("b", 100));
  // From 3 samples on, b's profile answers: its log-space estimate, about the geometric mean
  // (4 x 5 x 100)^(1/3) = 12.6, newer samples weighing a little more.
  EXPECT_NEAR(eta(taught), 2 + 12.6, 1.0) << "the profile's estimate";
}


const char kBudgeted[] = R"(workflow: paid
budget: 0.5
stages:
  - name: work
    resources: {cpu: 1, memory: 1Gi}
    shards: {range: [0, 6], count: 6}
    canary: false
    expected: 1h
    run: [sh, -c, "true"]
)";

TEST(EngineTest, ShardsAreChargedForTheirGrantOverTimeAndTheBudgetHoldsBackTheRest) {
  auto spec = ParseWorkflow(kBudgeted, "paid.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 16384 * kMi};
  Engine e(o);
  // 0.1 per core-hour and 0.1 per GiB-hour: a shard costs 0.2 an hour, and is predicted to
  // run an hour. The budget of 0.5 admits two (0.4), not a third.
  e.SetBackendCosts("process", {{"local", 0.1, 0.1, false}});
  auto id = e.Submit(*spec, kBudgeted, "paid.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 2u) << "two fit the budget";

  // Half an hour in, one ends: it cost 0.1, and shards of the stage are now predicted to
  // take half an hour (0.1 each).
  e.AttemptEnded(starts[0].attempt.attempt_id, Ok(), 1800 * kSec);
  auto st = nlohmann::json::parse(*e.StatusJson(*id, false));
  EXPECT_NEAR(st[0]["spent"].get<double>(), 0.1, 1e-9) << "0.2/h for half an hour";
  EXPECT_EQ(st[0]["budget"].get<double>(), 0.5);

  // Spent 0.1, the live one is predicted at 0.1 in all: 0.3 left, enough for three of the
  // four waiting.
  starts = Of(e.Tick(1800 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 3u);
  auto w = nlohmann::json::parse(*e.StatusJson(*id, true));
  ASSERT_EQ(w[0]["waiting"].size(), 1u);
  EXPECT_THAT(w[0]["waiting"][0]["reason"].get<std::string>(), HasSubstr("budget"));
}

TEST(EngineTest, AWorkflowWhoseNextShardCannotFitItsBudgetFailsSayingSo) {
  auto spec = ParseWorkflow(kBudgeted, "paid.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  Engine e(Options());
  e.SetBackendCosts("process", {{"local", 1.0, 0, false}});  // 1 an hour a shard
  auto id = e.Submit(*spec, kBudgeted, "paid.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_TRUE(Of(e.Tick(0, {}), Action::Kind::kStart).empty());
  auto st = nlohmann::json::parse(*e.StatusJson(*id, false));
  EXPECT_EQ(st[0]["state"], "failed");
  EXPECT_THAT(st[0]["error"].get<std::string>(), HasSubstr("over budget"));
  EXPECT_TRUE(e.idle());
}

TEST(EngineTest, WithoutCostClassesShardsAreFree) {
  auto spec = ParseWorkflow(kBudgeted, "paid.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 16384 * kMi};
  Engine e(o);
  e.SetBackendCosts("process", {{"local", 1.0, 0, false}});
  e.SetBackendCosts("process", {});  // the backend stopped reporting a class
  auto id = e.Submit(*spec, kBudgeted, "paid.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(Of(e.Tick(0, {}), Action::Kind::kStart).size(), 6u);
}


const char kCanaried[] = R"(workflow: fresh
stages:
  - name: work
    resources: {cpu: 1, memory: 64Mi}
    shards: {range: [0, 40], count: 4}
    expected: 10s
    run: [sh, -c, "seq {shard.begin} {shard.end}"]
)";

// `yaml` with `key` added to its (first) stage, before its `expected:`.
std::string WithStageKey(std::string yaml, const std::string& key) {
  yaml.replace(yaml.find("    expected"), 0, "    " + key + "\n");
  return yaml;
}

TEST(EngineTest, AStageWithoutHistoryRunsOneCanaryShardFirstThenFansOut) {
  auto spec = ParseWorkflow(kCanaried, "fresh.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 1024 * kMi};
  Engine e(o);
  auto id = e.Submit(*spec, kCanaried, "fresh.yaml", 0);
  ASSERT_TRUE(id) << id.error().ToString();
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u) << "room for four, but the stage is new: one canary";
  EXPECT_EQ(starts[0].attempt.attempt_id, *id + "/work/0#1");
  auto st = nlohmann::json::parse(*e.StatusJson(*id, false));
  EXPECT_THAT(st[0]["stages"][0]["note"].get<std::string>(), HasSubstr("canary"));
  EXPECT_TRUE(Of(e.Tick(kSec, {}), Action::Kind::kStart).empty()) << "the rest wait for it";

  e.AttemptEnded(starts[0].attempt.attempt_id, Ok(), 2 * kSec);
  EXPECT_EQ(Of(e.Tick(2 * kSec, {}), Action::Kind::kStart).size(), 3u) << "learned: fan out";

  // The next run of the same workflow has history: no canary.
  auto id2 = e.Submit(*spec, kCanaried, "fresh.yaml", 3 * kSec);
  ASSERT_TRUE(id2);
  std::vector<Action> next = Of(e.Tick(3 * kSec, {}), Action::Kind::kStart);
  EXPECT_EQ(next.size(), 4u);
}

TEST(EngineTest, ACanaryCanBeTurnedOffPerStage) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 1024 * kMi};
  Engine e(o);
  ASSERT_TRUE(e.Submit(*spec, yaml, "fresh.yaml", 0));
  EXPECT_EQ(Of(e.Tick(0, {}), Action::Kind::kStart).size(), 4u);
}

TEST(EngineTest, AStragglerIsRerunInPiecesAndThePiecesOutputsStandForIt) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 1024 * kMi};
  Engine e(o);
  auto id = e.Submit(*spec, yaml, "fresh.yaml", 0);
  ASSERT_TRUE(id);
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 4u);
  for (int k = 0; k < 3; ++k) e.AttemptEnded(starts[k].attempt.attempt_id, Ok(), 10 * kSec);
  // Shard 3 ([30, 40)) is predicted at 10 s. At 15 s it is not yet a straggler.
  EXPECT_TRUE(Of(e.Tick(15 * kSec, {}), Action::Kind::kStart).empty());
  // At 25 s it is: its range re-runs as 4 pieces (room for them is free).
  std::vector<Action> pieces = Of(e.Tick(25 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(pieces.size(), 4u);
  EXPECT_EQ(pieces[0].attempt.attempt_id, *id + "/work/3~0#1");
  EXPECT_EQ(pieces[0].range_begin, 30u);
  EXPECT_EQ(pieces[0].range_end, 32u);
  EXPECT_EQ(pieces[3].range_end, 40u);
  EXPECT_THAT(pieces[1].argv[2], HasSubstr("seq 32 35")) << "{shard.begin} is the piece's";
  EXPECT_EQ(e.DrainNotes().size(), 1u) << "the split is said";
  // The pieces finish first: the straggler is cancelled, and the merge reads shards 0-2 and
  // then the four pieces in range order.
  for (const Action& p : pieces) e.AttemptEnded(p.attempt.attempt_id, Ok(), 27 * kSec);
  std::vector<Action> next = e.Tick(27 * kSec, {});
  std::vector<Action> cancels = Of(next, Action::Kind::kCancel);
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].attempt.attempt_id, starts[3].attempt.attempt_id);
  std::vector<Action> merges = Of(next, Action::Kind::kMerge);
  ASSERT_EQ(merges.size(), 1u);
  ASSERT_EQ(merges[0].inputs.size(), 7u);
  EXPECT_EQ(merges[0].inputs[2], starts[2].attempt.output_path);
  EXPECT_EQ(merges[0].inputs[3], pieces[0].attempt.output_path);
  EXPECT_EQ(merges[0].inputs[6], pieces[3].attempt.output_path);
  // The cancelled straggler's end changes nothing.
  AttemptOutcome killed;
  killed.state = AttemptState::kFailed;
  killed.term_signal = 9;
  EXPECT_EQ(e.AttemptEnded(starts[3].attempt.attempt_id, killed, 28 * kSec),
            MergeOutcome::kFailed);
  e.MergeDone(*id, "work", true, "", 28 * kSec);
  EXPECT_EQ(nlohmann::json::parse(*e.StatusJson(*id, false))[0]["state"], "succeeded");
}

TEST(EngineTest, AStragglerThatFinishesFirstWinsAndItsPiecesAreCancelled) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec);
  EngineOptions o = Options();
  o.capacity = {8, 1024 * kMi};
  Engine e(o);
  auto id = e.Submit(*spec, yaml, "fresh.yaml", 0);
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  for (int k = 0; k < 3; ++k) e.AttemptEnded(starts[k].attempt.attempt_id, Ok(), 10 * kSec);
  std::vector<Action> pieces = Of(e.Tick(25 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(pieces.size(), 4u);
  e.AttemptEnded(pieces[0].attempt.attempt_id, Ok(), 26 * kSec);
  EXPECT_EQ(e.AttemptEnded(starts[3].attempt.attempt_id, Ok(), 26 * kSec),
            MergeOutcome::kAccepted);
  std::vector<Action> next = e.Tick(26 * kSec, {});
  EXPECT_EQ(Of(next, Action::Kind::kCancel).size(), 3u) << "the three pieces still running";
  std::vector<Action> merges = Of(next, Action::Kind::kMerge);
  ASSERT_EQ(merges.size(), 1u);
  ASSERT_EQ(merges[0].inputs.size(), 4u);
  EXPECT_EQ(merges[0].inputs[3], starts[3].attempt.output_path);
  // A piece that succeeds after its shard won is a duplicate.
  EXPECT_EQ(e.AttemptEnded(pieces[1].attempt.attempt_id, Ok(), 27 * kSec),
            MergeOutcome::kDuplicate);
}

TEST(EngineTest, NoSpeculationWithoutFreeRoomOrWhenTurnedOff) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  for (const bool off : {false, true}) {
    std::string y = yaml;
    if (off) y = WithStageKey(y, "speculate: false");
    auto spec = ParseWorkflow(y, "fresh.yaml");
    ASSERT_TRUE(spec);
    EngineOptions o = Options();
    o.capacity = off ? Resources{8, 1024 * kMi} : Resources{4, 1024 * kMi};
    Engine e(o);
    ASSERT_TRUE(e.Submit(*spec, y, "fresh.yaml", 0));
    std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
    ASSERT_EQ(starts.size(), 4u);
    // With 4 cores: three finish, one runs on; four pieces at 1 core do not fit in the 3 free.
    for (int k = 0; k < 3; ++k) e.AttemptEnded(starts[k].attempt.attempt_id, Ok(), 10 * kSec);
    EXPECT_TRUE(Of(e.Tick(60 * kSec, {}), Action::Kind::kStart).empty()) << off;
  }
}


TEST(EngineTest, AnAnomalyOnAShardGrowsItsGrantOrReshardsItOrOnlyAlerts) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec);
  for (AnomalyAction action :
       {AnomalyAction::kAlert, AnomalyAction::kGrow, AnomalyAction::kReshard}) {
    EngineOptions o = Options();
    o.capacity = {8, 1024 * kMi};
    o.anomaly.action = action;
    Engine e(o);
    auto id = e.Submit(*spec, yaml, "fresh.yaml", 0);
    std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
    ASSERT_EQ(starts.size(), 4u);
    auto event = e.ShardAnomaly(starts[1].attempt.attempt_id, "cgroup_memory_bytes", kSec);
    ASSERT_TRUE(event) << event.error().ToString();
    EXPECT_THAT(*event, HasSubstr(starts[1].attempt.attempt_id));
    std::vector<Action> next = e.Tick(kSec, {});
    auto st = nlohmann::json::parse(*e.StatusJson(*id, false));
    ASSERT_EQ(st[0]["events"].size(), 1u);
    if (action == AnomalyAction::kAlert) {
      EXPECT_TRUE(next.empty());
    } else if (action == AnomalyAction::kGrow) {
      // 1 cpu, 64Mi wanted; raised by half, and grown at once into the free room.
      std::vector<Action> resizes = Of(next, Action::Kind::kResize);
      ASSERT_EQ(resizes.size(), 1u);
      EXPECT_EQ(resizes[0].attempt.attempt_id, starts[1].attempt.attempt_id);
      EXPECT_EQ(resizes[0].resize_to, (Resources{1.5, 96 * kMi}));
    } else {
      EXPECT_EQ(Of(next, Action::Kind::kStart).size(), 4u) << "its range in pieces";
    }
  }
  Engine e(Options());
  EXPECT_FALSE(e.ShardAnomaly("nobody/x/0#1", "cgroup_memory_bytes", 0));
}

TEST(EngineTest, AHostAnomalyMakesAdmissionCautiousForAWhile) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec);
  EngineOptions o = Options();
  o.capacity = {4, 1024 * kMi};
  o.anomaly.caution_s = 60;
  Engine e(o);
  EXPECT_THAT(e.HostAnomaly("psi_some_ratio", 0), HasSubstr("50%"));
  ASSERT_TRUE(e.Submit(*spec, yaml, "fresh.yaml", 0));
  // Four cores free, but only half may be handed out while cautious.
  EXPECT_EQ(Of(e.Tick(kSec, {}), Action::Kind::kStart).size(), 2u);
  EXPECT_EQ(Of(e.Tick(2 * kSec, {}), Action::Kind::kStart).size(), 1u) << "half of what is left";
  EXPECT_EQ(Of(e.Tick(61 * kSec, {}), Action::Kind::kStart).size(), 1u) << "caution over";
}


TEST(EngineTest, AShardNearItsMemoryLimitIsGrownLiveFromWhatItsBackendReports) {
  std::string yaml = WithStageKey(kCanaried, "canary: false");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec);
  EngineOptions o = Options();
  o.capacity = {8, 1024 * kMi};
  Engine e(o);
  ASSERT_TRUE(e.Submit(*spec, yaml, "fresh.yaml", 0));
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 4u);
  const std::string a = starts[2].attempt.attempt_id;
  e.ReportUsage(a, 0.1, 20 * kMi, kSec / 2);
  e.ReportUsage(a, 0.6, 62 * kMi, 2 * kSec);  // 0.33 cores; 62 of its 64Mi
  e.ReportUsage("gone/x/0#1", 1, 1, 2 * kSec);  // ignored
  std::vector<Action> resizes = Of(e.Tick(2 * kSec, {}), Action::Kind::kResize);
  ASSERT_EQ(resizes.size(), 1u);
  EXPECT_EQ(resizes[0].attempt.attempt_id, a);
  EXPECT_EQ(resizes[0].resize_to.memory, 93 * kMi);
  std::vector<std::pair<std::string, std::string>> notes = e.DrainNotes();
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0].second, HasSubstr("feedback: peak memory 62Mi"));
  // Not again within the interval.
  e.ReportUsage(a, 1.6, 92 * kMi, 4 * kSec);
  EXPECT_TRUE(Of(e.Tick(4 * kSec, {}), Action::Kind::kResize).empty());
}


TEST(EngineTest, ShardsRunOnTheCheapestClassThatMeetsTheirDeadlineAndASpotLossMovesThem) {
  const std::vector<CostClass> classes = {{"on-demand", 0.10, 0, false}, {"spot", 0.03, 0, true}};
  // Without a deadline, spot: nothing to miss if it is taken away.
  {
    auto spec = ParseWorkflow(kBudgeted, "paid.yaml");
    ASSERT_TRUE(spec);
    EngineOptions o = Options();
    o.capacity = {8, 16384 * kMi};
    Engine e(o);
    e.SetBackendCosts("process", classes);
    auto id = e.Submit(*spec, kBudgeted, "paid.yaml", 0);
    std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
    ASSERT_EQ(starts.size(), 6u);
    EXPECT_EQ(starts[0].resource_class, "spot");
    // The spot instance is taken away: the shard goes again, on on-demand, and it is not a
    // failure (no retries are configured).
    AttemptOutcome gone;
    gone.state = AttemptState::kReclaimed;
    e.AttemptEnded(starts[0].attempt.attempt_id, gone, 600 * kSec);
    std::vector<Action> again = Of(e.Tick(600 * kSec, {}), Action::Kind::kStart);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempt.attempt_id, *id + "/work/0#2");
    EXPECT_EQ(again[0].resource_class, "on-demand");
    // Six shards ran 600 s on one core of spot each (0.005 apiece); the new one has not
    // cost anything yet.
    EXPECT_NEAR(nlohmann::json::parse(*e.StatusJson(*id, false))[0]["spent"].get<double>(),
                0.03, 1e-9);
  }
  // A deadline the slack of which cannot absorb a re-run: on-demand.
  {
    std::string yaml = kBudgeted;
    yaml.replace(yaml.find("budget: 0.5"), 11, "budget: 5\ndeadline: 90m");
    auto spec = ParseWorkflow(yaml, "paid.yaml");
    ASSERT_TRUE(spec) << spec.error().ToString();
    EngineOptions o = Options();
    o.capacity = {8, 16384 * kMi};
    Engine e(o);
    e.SetBackendCosts("process", classes);
    ASSERT_TRUE(e.Submit(*spec, yaml, "paid.yaml", 0));
    std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
    ASSERT_FALSE(starts.empty());
    EXPECT_EQ(starts[0].resource_class, "on-demand") << "1h predicted, 30m of slack";
  }
}


TEST(EngineTest, AStageWithHistoryIsRightSizedWithinTheFilesBounds) {
  std::string yaml = kCanaried;
  const std::string declared = "    resources: {cpu: 1, memory: 64Mi}";
  yaml.replace(yaml.find(declared), declared.size(),
               "    resources: {cpu: 2, memory: 512Mi, min_cpu: 0.5, min_memory: 16Mi}");
  auto spec = ParseWorkflow(yaml, "fresh.yaml");
  ASSERT_TRUE(spec) << spec.error().ToString();
  EngineOptions o = Options();
  o.capacity = {8, 4096 * kMi};
  Engine e(o);
  // Ten past shards of 10 values: about 0.5 core (5 cpu-s over 10 s) and 40Mi at peak.
  for (int k = 0; k < 10; ++k) {
    HistoryRecord h;
    h.workflow_name = "fresh";
    h.stage = "work";
    h.state = AttemptState::kSucceeded;
    h.range_begin = 0;
    h.range_end = 10;
    h.wall_seconds = 10 + (k % 3);
    h.cpu_seconds = 5 + 0.2 * (k % 2);
    h.peak_memory_bytes = (40 + k % 3) * kMi;
    e.Learn(h);
  }
  auto id = e.Submit(*spec, yaml, "fresh.yaml", 0);
  ASSERT_TRUE(id);
  std::vector<Action> starts = Of(e.Tick(0, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 4u) << "history: no canary";
  const Resources g = starts[0].attempt.grant;
  EXPECT_GT(g.memory, 42 * kMi) << "above the learned peak";
  EXPECT_LT(g.memory, 80 * kMi) << "far below the declared 512Mi";
  EXPECT_GT(g.cpu, 0.5);
  EXPECT_LT(g.cpu, 1.0) << "about half a core used, x 1.25";
  auto st = nlohmann::json::parse(*e.StatusJson(*id, false));
  EXPECT_THAT(st[0]["stages"][0]["sizing"].get<std::string>(), HasSubstr("history (10 samples)"));
  // right_size: false: the declared resources, history or not.
  std::string off = yaml;
  off = WithStageKey(off, "right_size: false");
  auto spec_off = ParseWorkflow(off, "fresh.yaml");
  ASSERT_TRUE(spec_off) << spec_off.error().ToString();
  auto id2 = e.Submit(*spec_off, off, "fresh.yaml", kSec);
  ASSERT_TRUE(id2);
  auto st2 = nlohmann::json::parse(*e.StatusJson(*id2, false));
  EXPECT_EQ(st2[0]["stages"][0]["sizing"], "declared");
}

}  // namespace
}  // namespace augur::workflow
