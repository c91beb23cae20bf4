// The workflow engine's records as a replicated log, and back (mesh/workflow_log.h).
#include "mesh/workflow_log.h"

#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mesh/rendezvous.h"
#include "mesh/replication.h"
#include "mesh/workflow_replication.h"

namespace augur::mesh {
namespace {

using workflow::AttemptRecord;
using workflow::AttemptState;
using workflow::ShardRecord;
using workflow::ShardState;
using workflow::WorkflowRecord;
using workflow::WorkflowState;

// The log as an owner's replicator would number it.
struct LogBuilder {
  std::vector<wire::StateRecord> log;
  void Add(wire::StateRecord r) {
    r.set_seq(log.size() + 1);
    r.mutable_epoch()->set_number(1);
    r.mutable_epoch()->set_owner("h1");
    r.set_at_ns(1000 + int64_t(log.size()));
    ASSERT_TRUE(CheckRecord(r, true).ok()) << CheckRecord(r, true).ToString();
    ASSERT_LE(r.ByteSizeLong(), kMaxRecordBytes);
    log.push_back(std::move(r));
  }
};

WorkflowRecord Workflow() {
  WorkflowRecord w;
  w.id = "wf-abc";
  w.name = "wf";
  w.spec_yaml = "workflow: wf\nstages: []\n";
  w.origin = "/tmp/wf.yaml";
  w.submitted_ns = 777;
  w.deadline_ns = 999;
  return w;
}

ShardRecord Shard(const std::string& stage, uint32_t i) {
  ShardRecord s;
  s.workflow_id = "wf-abc";
  s.stage = stage;
  s.index = i;
  s.shard_id = std::to_string(i);
  s.begin = i * 10;
  s.end = i * 10 + 10;
  s.want = {0.5, 64ULL << 20};
  s.min = {0.25, 32ULL << 20};
  return s;
}

AttemptRecord Attempt(const std::string& stage, uint32_t i, uint32_t n, AttemptState st) {
  AttemptRecord a;
  a.attempt_id = fmt::format("wf-abc/{}/{}#{}", stage, i, n);
  a.workflow_id = "wf-abc";
  a.stage = stage;
  a.shard_index = i;
  a.attempt = n;
  a.host = "h2";
  a.state = st;
  return a;
}

TEST(WorkflowLog, AReplicaIdPutsTheSubmittingHostFirstAndGivesBackTheEngineId) {
  const std::vector<std::string> live = {"h1", "h2", "h3", "h4", "h5"};
  for (int k = 0; k < 50; ++k) {
    const std::string id = fmt::format("wf-{}", k);
    for (const std::string& self : live) {
      const std::string rid = ChooseReplicaId(id, self, live);
      EXPECT_EQ(ReplicaSet(rid, live, 0).front(), self) << rid;
      EXPECT_EQ(EngineIdOf(rid), id);
    }
  }
  EXPECT_EQ(EngineIdOf("no-tilde"), "");
  EXPECT_EQ(EngineIdOf("~3"), "");
}

TEST(WorkflowLog, RebuildKeepsCarriedResultsAndMergesAndRerunsTheRest) {
  LogBuilder b;
  b.Add(SubmittedRecord(Workflow()));
  std::vector<ShardRecord> shards;
  for (uint32_t i = 0; i < 70; ++i) shards.push_back(Shard("a", i));
  shards.push_back(Shard("b", 0));
  const auto planned = ShardsPlannedRecords(shards);
  ASSERT_EQ(planned.size(), 3u);  // 64 + 6 of a, then b
  for (const auto& r : planned) b.Add(r);
  const std::string small = "line 0\n", big(kMaxInlineOutputBytes + 1, 'x');
  b.Add(AttemptStartedRecord(Attempt("a", 0, 1, AttemptState::kRunning), "h1"));
  b.Add(AttemptResultRecord(Attempt("a", 0, 1, AttemptState::kFailed), "h1", nullptr, 0));
  b.Add(AttemptResultRecord(Attempt("a", 0, 2, AttemptState::kSucceeded), "h1", &small, small.size()));
  b.Add(AttemptResultRecord(Attempt("a", 1, 1, AttemptState::kSucceeded), "h1", &big, big.size()));
  b.Add(AttemptStartedRecord(Attempt("a", 2, 3, AttemptState::kRunning), "h1"));  // no result
  // A later success of a shard that has one is not its winner.
  const std::string other = "other\n";
  b.Add(AttemptResultRecord(Attempt("a", 0, 3, AttemptState::kSucceeded), "h1", &other, other.size()));
  // A result whose output does not match its digest is not carried.
  wire::StateRecord bad = AttemptResultRecord(Attempt("a", 3, 1, AttemptState::kSucceeded), "h1", &small, small.size());
  bad.set_output("tampered");
  b.Add(bad);
  b.Add(AttemptResultRecord(Attempt("b", 0, 1, AttemptState::kSucceeded), "h1", nullptr, 123));
  const std::string merged = "merged b\n";
  b.Add(StageMergedRecord("b", &merged, merged.size()));

  auto a = Rebuild("wf-abc", b.log, "/work");
  ASSERT_TRUE(a) << a.error().ToString();
  EXPECT_EQ(a->workflow.id, "wf-abc");
  EXPECT_EQ(a->workflow.name, "wf");
  EXPECT_EQ(a->workflow.origin, "/tmp/wf.yaml");
  EXPECT_EQ(a->workflow.submitted_ns, 777);
  EXPECT_EQ(a->workflow.deadline_ns, 999);
  EXPECT_EQ(a->workflow.state, WorkflowState::kRunning);
  ASSERT_EQ(a->shards.size(), 71u);
  auto find = [&](const std::string& stage, uint32_t i) -> const ShardRecord& {
    for (const ShardRecord& s : a->shards) {
      if (s.stage == stage && s.index == i) return s;
    }
    ADD_FAILURE() << stage << "/" << i;
    return a->shards[0];
  };
  const ShardRecord& a0 = find("a", 0);
  EXPECT_EQ(a0.state, ShardState::kSucceeded);
  EXPECT_EQ(a0.winner, "wf-abc/a/0#2");
  EXPECT_EQ(a0.output_path, "/work/wf-abc/a/0.2.out");
  EXPECT_EQ(a0.attempts, 3u);
  EXPECT_EQ(a0.begin, 0u);
  EXPECT_EQ(a0.want, (workflow::Resources{0.5, 64ULL << 20}));
  EXPECT_EQ(find("a", 1).state, ShardState::kPending);  // too big to carry: runs again
  EXPECT_EQ(find("a", 1).attempts, 1u);
  EXPECT_EQ(find("a", 2).state, ShardState::kPending);  // no result: runs again
  EXPECT_EQ(find("a", 2).attempts, 3u);                 // with a new attempt number
  EXPECT_EQ(find("a", 3).state, ShardState::kPending);
  EXPECT_EQ(find("a", 69).end, 700u);
  EXPECT_EQ(find("b", 0).state, ShardState::kSucceeded);  // its stage's merge came along
  ASSERT_EQ(a->stage_outputs.size(), 1u);
  EXPECT_EQ(a->stage_outputs.at("b"), "/work/wf-abc/b.out");
  ASSERT_EQ(a->files.size(), 2u);
  EXPECT_EQ(a->files[0], (std::pair<std::string, std::string>{"/work/wf-abc/a/0.2.out", small}));
  EXPECT_EQ(a->files[1], (std::pair<std::string, std::string>{"/work/wf-abc/b.out", merged}));

  WorkflowRecord done = Workflow();
  done.state = WorkflowState::kCancelled;
  done.error = "cancelled";
  b.Add(WorkflowFinishedRecord(done));
  a = Rebuild("wf-abc", b.log, "/work");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->workflow.state, WorkflowState::kCancelled);
  EXPECT_EQ(a->workflow.error, "cancelled");
  EXPECT_EQ(a->workflow.finished_ns, b.log.back().at_ns());
}

TEST(WorkflowLog, RebuildRefusesALogItCannotRead) {
  LogBuilder b;
  auto r = Rebuild("wf-abc", b.log, "/w");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), Status::Code::kCorruption);
  b.Add(MakeShardsPlanned("a", "[]"));
  r = Rebuild("wf-abc", b.log, "/w");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("does not begin with a submitted record"), std::string::npos);

  LogBuilder c;
  c.Add(SubmittedRecord(Workflow()));
  c.Add(MakeShardsPlanned("a", "{not json"));
  r = Rebuild("wf-abc", c.log, "/w");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("record 2 (shards_planned)"), std::string::npos) << r.error().ToString();

  LogBuilder d;
  d.Add(SubmittedRecord(Workflow()));
  d.Add(MakeShardsPlanned("a", R"([{"i": 0, "id": "0"}])"));
  r = Rebuild("wf-abc", d.log, "/w");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("a shard"), std::string::npos) << r.error().ToString();
}

// The log comes from a peer, and the host that takes the workflow over writes its carried
// outputs under work_root/<id>/: no id, stage or shard id in it may lead out of there.
TEST(WorkflowLog, RebuildRefusesNamesThatWouldWriteOutsideTheWorkflowsDirectory) {
  const std::string out = "x\n";
  auto refused = [](const std::string& id, const std::vector<wire::StateRecord>& log,
                    const char* what) {
    auto r = Rebuild(id, log, "/w");
    ASSERT_FALSE(r) << what << ": files at " << (r->files.empty() ? "" : r->files[0].first);
    EXPECT_EQ(r.error().code(), Status::Code::kCorruption) << what;
    EXPECT_NE(r.error().message().find("cannot name a"), std::string::npos) << r.error().ToString();
  };
  LogBuilder ok;
  ok.Add(SubmittedRecord(Workflow()));
  refused("../../etc", ok.log, "a workflow id with ..");
  refused("a/b", ok.log, "a workflow id with a slash");

  for (const char* stage : {"..", "../../../tmp/x", "a/b"}) {
    LogBuilder merged = ok;
    merged.Add(StageMergedRecord(stage, &out, out.size()));
    refused("wf-abc", merged.log, stage);
    LogBuilder planned = ok;
    ShardRecord s = Shard(stage, 0);
    for (auto& r : ShardsPlannedRecords({s})) planned.Add(std::move(r));
    refused("wf-abc", planned.log, stage);
  }
  for (const char* shard_id : {"..", "../../x", "0/1"}) {
    LogBuilder b = ok;
    ShardRecord s = Shard("a", 0);
    s.shard_id = shard_id;
    for (auto& r : ShardsPlannedRecords({s})) b.Add(std::move(r));
    b.Add(AttemptResultRecord(Attempt("a", 0, 1, AttemptState::kSucceeded), "h1", &out, out.size()));
    refused("wf-abc", b.log, shard_id);
  }
  // What the engine makes of names passes: pieces of a split shard, dots in workflow names.
  LogBuilder b = ok;
  ShardRecord piece = Shard("count_2-x", 0);
  piece.shard_id = "0.1~2";
  for (auto& r : ShardsPlannedRecords({piece})) b.Add(std::move(r));
  b.Add(AttemptResultRecord(Attempt("count_2-x", 0, 1, AttemptState::kSucceeded), "h1", &out, out.size()));
  auto a = Rebuild("my.flow-1a2b3c", b.log, "/w");
  ASSERT_TRUE(a) << a.error().ToString();
  ASSERT_EQ(a->files.size(), 1u);
  EXPECT_EQ(a->files[0].first, "/w/my.flow-1a2b3c/count_2-x/0.1~2.1.out");
}

// Seeded: whatever shards a stage is planned with (ranges, items, pieces), every one comes
// back from the log as it was, in records each within the limit.
TEST(WorkflowLog, PropertyPlannedShardsComeBackAsTheyWere) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<ShardRecord> shards;
    const int stages = 1 + int(rng() % 3);
    for (int st = 0; st < stages; ++st) {
      const uint32_t n = 1 + uint32_t(rng() % 200);
      for (uint32_t i = 0; i < n; ++i) {
        ShardRecord s = Shard("s" + std::to_string(st), i);
        if (rng() % 4 == 0) s.shard_id = fmt::format("{}~{}", i, rng() % 4);
        for (uint64_t k = rng() % 5; k > 0; --k) s.items.push_back(std::string(1 + rng() % 200, 'i'));
        s.want = {double(rng() % 400) / 100.0, rng() % (8ULL << 30)};
        shards.push_back(s);
      }
    }
    LogBuilder b;
    b.Add(SubmittedRecord(Workflow()));
    for (auto& r : ShardsPlannedRecords(shards)) b.Add(std::move(r));
    if (testing::Test::HasFatalFailure()) return;
    auto a = Rebuild("wf-abc", b.log, "/w");
    ASSERT_TRUE(a) << "seed " << seed << ": " << a.error().ToString();
    ASSERT_EQ(a->shards.size(), shards.size()) << "seed " << seed;
    std::set<std::tuple<std::string, uint32_t, std::string, uint64_t, size_t, double>> want, got;
    for (const auto& s : shards) want.insert({s.stage, s.index, s.shard_id, s.end, s.items.size(), s.want.cpu});
    for (const auto& s : a->shards) got.insert({s.stage, s.index, s.shard_id, s.end, s.items.size(), s.want.cpu});
    EXPECT_EQ(want, got) << "seed " << seed;
  }
}

// The status channel's messages: what a peer may send is checked before use.
TEST(StatusMessage, RoundTripsAndRefusesWhatIsMalformed) {
  wire::StatusMessage q;
  q.mutable_query()->set_query_id(7);
  q.mutable_query()->set_workflow("wf-abc");
  auto bytes = EncodeStatusMessage(q, 1024);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto back = DecodeStatusMessage(*bytes, 1024);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->query().query_id(), 7u);
  EXPECT_EQ(back->query().workflow(), "wf-abc");

  auto refused = [](wire::StatusMessage m, uint32_t version, Status::Code code, const char* what) {
    m.set_version(version);
    auto d = DecodeStatusMessage(m.SerializeAsString(), 1024);
    ASSERT_FALSE(d) << what;
    EXPECT_EQ(d.error().code(), code) << what << ": " << d.error().ToString();
    EXPECT_NE(d.error().message().find(what), std::string::npos) << d.error().ToString();
  };
  refused(wire::StatusMessage(), kStatusVersion, Status::Code::kCorruption, "without a body");
  refused(q, kStatusVersion + 1, Status::Code::kFailedPrecondition, "version");
  wire::StatusMessage bad = q;
  bad.mutable_query()->set_workflow("has space");
  refused(bad, kStatusVersion, Status::Code::kCorruption, "printable");
  bad.mutable_query()->set_workflow(std::string(300, 'w'));
  refused(bad, kStatusVersion, Status::Code::kCorruption, "printable");
  wire::StatusMessage r;
  r.mutable_reply()->set_found(true);
  refused(r, kStatusVersion, Status::Code::kCorruption, "found without an answer");
  wire::StatusMessage unknown = q;
  unknown.mutable_query()->set_kind(3);  // status, result, history: 0..2
  refused(unknown, kStatusVersion, Status::Code::kCorruption, "unknown kind 3");
  r.mutable_reply()->set_json("[]");
  r.mutable_reply()->set_owner("-bad");
  refused(r, kStatusVersion, Status::Code::kCorruption, "not a host name");
  auto big = DecodeStatusMessage(std::string(2000, 'x'), 1024);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), Status::Code::kResourceExhausted);
  auto junk = DecodeStatusMessage("\xff\xff\xff", 1024);
  ASSERT_FALSE(junk);
  EXPECT_EQ(junk.error().code(), Status::Code::kCorruption);
}

// An answer too big for one message: its reply announces a transfer, whose messages travel
// inside StatusMessages; the wrapper fits in kStatusTransferOverheadBytes.
TEST(StatusMessage, AnAnswerByTransferIsAnnouncedAndItsChunksFitOneMessage) {
  wire::StatusMessage r;
  r.mutable_reply()->set_query_id(3);
  r.mutable_reply()->set_found(true);
  r.mutable_reply()->set_owner("h1");
  r.mutable_reply()->set_answer_bytes(kMaxRemoteAnswerBytes);
  r.mutable_reply()->set_answer_transfer("answer.3.17");
  auto bytes = EncodeStatusMessage(r, 1024);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto back = DecodeStatusMessage(*bytes, 1024);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->reply().answer_bytes(), kMaxRemoteAnswerBytes);
  EXPECT_EQ(back->reply().answer_transfer(), "answer.3.17");
  auto refused = [](const wire::StatusMessage& m, const char* what) {
    wire::StatusMessage v = m;
    v.set_version(kStatusVersion);
    auto d = DecodeStatusMessage(v.SerializeAsString(), 1024);
    ASSERT_FALSE(d) << what;
    EXPECT_EQ(d.error().code(), Status::Code::kCorruption) << what;
    EXPECT_NE(d.error().message().find(what), std::string::npos) << d.error().ToString();
  };
  wire::StatusMessage bad = r;
  bad.mutable_reply()->set_answer_bytes(kMaxRemoteAnswerBytes + 1);
  refused(bad, "over 4194304");
  bad = r;
  bad.mutable_reply()->set_answer_transfer("has space");
  refused(bad, "a transfer id");
  bad = r;
  bad.mutable_reply()->set_json("[]");
  refused(bad, "nothing else");
  bad = r;
  bad.mutable_reply()->set_found(false);
  refused(bad, "needs found");
  wire::StatusMessage empty;
  empty.set_transfer("");
  refused(empty, "an empty transfer");

  // A chunk as large as the answer's transfer options allow, with the widest id and numbers,
  // wrapped: within the status channel's payload limit.
  TransferOptions t;
  t.max_payload_bytes = kDefaultMaxPayloadBytes - kStatusTransferOverheadBytes;
  t.max_blob_bytes = kMaxRemoteAnswerBytes;
  TransferSender sender("h1", t);
  TransferOutput out;
  ASSERT_TRUE(sender
                  .Send("h2", std::string(kMaxTransferIdBytes, 'i'),
                        std::string(kMaxRemoteAnswerBytes, 'x'), 0, &out)
                  .ok());
  ASSERT_FALSE(out.messages.empty());
  for (TransferOutgoing& o : out.messages) {
    wire::StatusMessage m;
    m.set_transfer(o.payload);
    auto wrapped = EncodeStatusMessage(m, kDefaultMaxPayloadBytes);
    ASSERT_TRUE(wrapped) << wrapped.error().ToString();
    EXPECT_LE(wrapped->size(), o.payload.size() + kStatusTransferOverheadBytes);
  }
}

}  // namespace
}  // namespace augur::mesh
