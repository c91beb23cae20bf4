// The engine's side of running shards on other hosts (docs/MESH.md, "Running shards on
// other hosts"), driven by hand: what does not fit here while a peer shows room is placed
// elsewhere without a local grant, an award records the host, a lost lease re-queues the
// shard as a new attempt, a late result of an ended attempt is ignored, and changes the
// engine makes to grants it does not own (mesh leases in its ledger) are handed out.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "workflow/engine.h"

namespace augur::workflow {
namespace {

constexpr uint64_t kMi = 1ULL << 20;
constexpr int64_t kSec = 1'000'000'000;

const char kFour[] = R"(workflow: four
stages:
  - name: work
    resources: {cpu: 1, memory: 64Mi}
    shards: {range: [0, 4], count: 4}
    canary: false
    run: [sh, -c, "echo {shard.index} > {output}"]
)";

std::vector<Action> Of(const std::vector<Action>& all, Action::Kind k) {
  std::vector<Action> out;
  for (const Action& a : all) {
    if (a.kind == k) out.push_back(a);
  }
  return out;
}

struct Fixture {
  Fixture() {
    EngineOptions o;
    o.work_root = "/tmp/augur-engine-remote-test";
    o.capacity = {1, 256 * kMi};  // one shard at a time here
    o.host_name = "here";
    e = std::make_unique<Engine>(o);
    auto spec = ParseWorkflow(kFour, "four.yaml");
    EXPECT_TRUE(spec) << spec.error().ToString();
    auto w = e->Submit(*spec, kFour, "four.yaml", 0);
    EXPECT_TRUE(w) << w.error().ToString();
    id = *w;
  }
  std::unique_ptr<Engine> e;
  std::string id;
};

TEST(EngineRemoteTest, WithoutPeerRoomShardsWaitHere) {
  Fixture f;
  std::vector<Action> a = f.e->Tick(kSec, {});
  EXPECT_EQ(Of(a, Action::Kind::kStart).size(), 1u);
  EXPECT_TRUE(Of(a, Action::Kind::kPlace).empty());
}

TEST(EngineRemoteTest, WhatDoesNotFitHereIsPlacedWhereAPeerShowsRoom) {
  Fixture f;
  // One peer with room for two shards.
  f.e->SetRemoteRoom({{2, 512 * kMi}});
  std::vector<Action> a = f.e->Tick(kSec, {});
  std::vector<Action> starts = Of(a, Action::Kind::kStart);
  std::vector<Action> places = Of(a, Action::Kind::kPlace);
  ASSERT_EQ(starts.size(), 1u);
  ASSERT_EQ(places.size(), 2u) << "a peer's room is used once per Tick";
  EXPECT_EQ(starts[0].attempt.host, "here");
  for (const Action& p : places) {
    EXPECT_EQ(p.attempt.host, "") << "no host until the award";
    EXPECT_EQ(p.attempt.grant, (Resources{1, 64 * kMi}));
    EXPECT_EQ(p.min, (Resources{1, 64 * kMi}));
    EXPECT_FALSE(p.argv.empty());
    EXPECT_TRUE(f.e->IsRemote(p.attempt.attempt_id));
    EXPECT_EQ(f.e->ledger().Find(p.attempt.attempt_id), nullptr) << "not charged here";
  }
  EXPECT_EQ(f.e->ledger().Granted(), (Resources{1, 64 * kMi}));

  // The award records where it runs; the result merges as a local one would.
  const std::string placed = places[0].attempt.attempt_id;
  ASSERT_TRUE(f.e->RemoteAwarded(placed, "peer-b", {0.5, 64 * kMi}, kSec + 1).ok());
  {
    auto status = f.e->StatusJson(f.id, /*explain=*/true);
    ASSERT_TRUE(status);
    nlohmann::json remote = nlohmann::json::parse(*status)[0]["remote"];
    ASSERT_EQ(remote.size(), 2u) << remote.dump();
    std::set<std::string> hosts;
    for (const auto& r : remote) hosts.insert(r["host"]);
    EXPECT_EQ(hosts, (std::set<std::string>{"", "peer-b"})) << "one runs there, one is placing";
  }
  EXPECT_FALSE(f.e->RemoteAwarded(starts[0].attempt.attempt_id, "x", {}, kSec).ok())
      << "a local attempt is not placed";
  (void)f.e->DrainChanges();
  EXPECT_EQ(f.e->AttemptEnded(placed, AttemptOutcome{}, 2 * kSec), MergeOutcome::kAccepted);
  Changes c = f.e->DrainChanges();
  ASSERT_EQ(c.history.size(), 1u);
  EXPECT_EQ(c.history[0].host, "peer-b");
  EXPECT_EQ(c.history[0].grant, (Resources{0.5, 64 * kMi}));
  // A late duplicate of its result is not merged again.
  EXPECT_EQ(f.e->AttemptEnded(placed, AttemptOutcome{}, 3 * kSec), MergeOutcome::kUnknown);

  // A lost lease: the shard waits its back-off and is then a new attempt, placed again.
  const std::string lost = places[1].attempt.attempt_id;
  AttemptOutcome l;
  l.state = AttemptState::kLost;
  l.error = "lease on peer-b lost";
  (void)f.e->AttemptEnded(lost, l, 3 * kSec);
  EXPECT_FALSE(f.e->IsRemote(lost));
  f.e->SetRemoteRoom({{2, 512 * kMi}});
  std::vector<Action> again = Of(f.e->Tick(4 * kSec, {}), Action::Kind::kPlace);
  ASSERT_EQ(again.size(), 2u) << "the re-queued shard and the one that had no room";
  int rerun = 0;
  for (const Action& p : again) {
    if (p.attempt.shard_index != places[1].attempt.shard_index) continue;
    ++rerun;
    EXPECT_NE(p.attempt.attempt_id, lost);
    EXPECT_EQ(p.attempt.attempt, 2u);
  }
  EXPECT_EQ(rerun, 1);
}

TEST(EngineRemoteTest, APlacedShardTakenBackStartsHereWithoutSpendingARetry) {
  Fixture f;
  f.e->SetRemoteRoom({{3, 512 * kMi}});
  std::vector<Action> a = f.e->Tick(kSec, {});
  std::vector<Action> places = Of(a, Action::Kind::kPlace);
  ASSERT_EQ(places.size(), 3u);
  const std::string awarded = places[0].attempt.attempt_id;
  const std::string back = places[1].attempt.attempt_id;
  ASSERT_TRUE(f.e->RemoteAwarded(awarded, "peer-b", {1, 64 * kMi}, kSec).ok());
  EXPECT_EQ(f.e->Unplace(awarded, kSec).code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(f.e->Unplace(Of(a, Action::Kind::kStart)[0].attempt.attempt_id, kSec).IsNotFound());
  ASSERT_TRUE(f.e->Unplace(back, kSec).ok());
  EXPECT_FALSE(f.e->IsRemote(back));
  // The local shard ends: the one taken back starts here at once (no back-off), and the
  // workflow (no retries allowed) is still running.
  f.e->SetRemoteRoom({});
  (void)f.e->AttemptEnded(Of(a, Action::Kind::kStart)[0].attempt.attempt_id, AttemptOutcome{},
                          2 * kSec);
  std::vector<Action> starts = Of(f.e->Tick(2 * kSec, {}), Action::Kind::kStart);
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].attempt.shard_index, places[1].attempt.shard_index);
  EXPECT_EQ(starts[0].attempt.host, "here");
  EXPECT_EQ(f.e->StateOf(f.id), "running");
}

TEST(EngineRemoteTest, AShardLostWithItsDeadHostIsPlacedAgainAtOnceOthersAfterABackoff) {
  Fixture f;
  f.e->SetRemoteRoom({{3, 512 * kMi}});
  std::vector<Action> places = Of(f.e->Tick(kSec, {}), Action::Kind::kPlace);
  ASSERT_EQ(places.size(), 3u);
  for (const Action& p : places) {
    ASSERT_TRUE(f.e->RemoteAwarded(p.attempt.attempt_id, "peer-b", {1, 64 * kMi}, kSec).ok());
  }
  // One lease lost because membership declared its host dead, one for another reason (the
  // host could not provision it): both at the same moment, with room still in view.
  AttemptOutcome dead;
  dead.state = AttemptState::kLost;
  dead.error = "lease on peer-b lost: host down";
  dead.host_down = true;
  AttemptOutcome lost;
  lost.state = AttemptState::kLost;
  lost.error = "peer-b could not run it";
  (void)f.e->AttemptEnded(places[0].attempt.attempt_id, dead, 2 * kSec);
  (void)f.e->AttemptEnded(places[1].attempt.attempt_id, lost, 2 * kSec);
  auto shards_of = [](const std::vector<Action>& a) {
    std::set<uint32_t> s;
    for (const Action& p : a) s.insert(p.attempt.shard_index);
    return s;
  };
  f.e->SetRemoteRoom({{3, 512 * kMi}});
  std::vector<Action> now = Of(f.e->Tick(2 * kSec, {}), Action::Kind::kPlace);
  EXPECT_EQ(shards_of(now), (std::set<uint32_t>{places[0].attempt.shard_index}))
      << "only the dead host's shard, with no back-off";
  f.e->SetRemoteRoom({{3, 512 * kMi}});
  EXPECT_TRUE(Of(f.e->Tick(2 * kSec + 499'000'000, {}), Action::Kind::kPlace).empty());
  f.e->SetRemoteRoom({{3, 512 * kMi}});
  std::vector<Action> later = Of(f.e->Tick(2 * kSec + 500'000'000, {}), Action::Kind::kPlace);
  EXPECT_EQ(shards_of(later), (std::set<uint32_t>{places[1].attempt.shard_index}))
      << "the other lost shard after its 0.5 s back-off";
}

TEST(EngineRemoteTest, ShrinkingAMeshLeaseForLocalWorkIsHandedOut) {
  EngineOptions o;
  o.work_root = "/tmp/augur-engine-remote-test";
  o.capacity = {2, 512 * kMi};
  Engine e(o);
  // A peer's lease in this host's ledger, of a lower score than any shard, shrinkable.
  ASSERT_TRUE(e.mutable_ledger()
                  .ApplyAdmission({"peer/x@1", {2, 128 * kMi}, {0.5, 64 * kMi}, -100},
                                  {{2, 128 * kMi}, {}})
                  .ok());
  auto spec = ParseWorkflow(kFour, "four.yaml");
  ASSERT_TRUE(spec);
  ASSERT_TRUE(e.Submit(*spec, kFour, "four.yaml", 0));
  std::vector<Action> a = e.Tick(kSec, {});
  EXPECT_EQ(Of(a, Action::Kind::kStart).size(), 1u);
  std::vector<GrantChange> foreign = e.DrainForeignChanges();
  ASSERT_EQ(foreign.size(), 1u);
  EXPECT_EQ(foreign[0].holder, "peer/x@1");
  EXPECT_EQ(foreign[0].kind, GrantChange::Kind::kShrink);
  EXPECT_TRUE(e.DrainForeignChanges().empty());
  // A change the bidder made to a local attempt becomes its resize.
  const std::string local = Of(a, Action::Kind::kStart)[0].attempt.attempt_id;
  GrantChange c{GrantChange::Kind::kShrink, local, {1, 64 * kMi}, {0.5, 64 * kMi}, "for peer"};
  auto act = e.LedgerChanged(c, 2 * kSec);
  ASSERT_TRUE(act);
  EXPECT_EQ(act->kind, Action::Kind::kResize);
  EXPECT_FALSE(e.LedgerChanged({GrantChange::Kind::kShrink, "peer/x@1", {}, {}, ""}, 2 * kSec));
}

}  // namespace
}  // namespace augur::workflow
