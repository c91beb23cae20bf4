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
  Engine taught(Options());
  for (double s : {4.0, 5.0, 100.0}) taught.LearnDuration("p", "b", s);
  taught.LearnDuration("p", "a", 2);
  EXPECT_DOUBLE_EQ(eta(taught), 2 + 5) << "medians of what past shards took";
}

}  // namespace
}  // namespace augur::workflow
