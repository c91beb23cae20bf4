// The remote-run messages on the wire (src/mesh/remote_run_codec.h): what is sent decodes to
// the same message, and every malformed message from a peer is a Corruption naming what is
// wrong, never a crash.
#include "mesh/remote_run_codec.h"

#include <functional>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

using ::testing::HasSubstr;

wire::RemoteRunMessage RunMsg() {
  wire::RemoteRunMessage m;
  wire::RunShard* r = m.mutable_run();
  r->set_lease_id("owner/wf/s/0#1@1");
  r->set_attempt_id("wf/s/0#1");
  r->add_argv("sh");
  r->add_argv("-c");
  r->add_argv("cat /w/wf/in.txt > /w/wf/s/0.1.out");
  r->add_env("A=b");
  r->set_workdir("/w/wf");
  r->set_output("/w/wf/s/0.1.out");
  r->set_backend("process");
  wire::RemoteFile* f = r->add_inputs();
  f->set_path("in.txt");
  f->set_data(std::string("\0\1binary", 8));
  return m;
}

wire::RemoteRunMessage ResultMsg() {
  wire::RemoteRunMessage m;
  wire::ShardResult* r = m.mutable_result();
  r->set_lease_id("owner/wf/s/0#1@1");
  r->set_attempt_id("wf/s/0#1");
  r->set_state("succeeded");
  r->set_cpu_seconds(0.5);
  r->set_output("3\n");
  return m;
}

TEST(RemoteRunCodecTest, RoundTrips) {
  for (const wire::RemoteRunMessage& m : {RunMsg(), ResultMsg()}) {
    auto bytes = EncodeRemoteRun(m);
    ASSERT_TRUE(bytes) << bytes.error().ToString();
    auto back = DecodeRemoteRun(*bytes);
    ASSERT_TRUE(back) << back.error().ToString();
    EXPECT_EQ(back->version(), kRemoteRunVersion);
    EXPECT_EQ(back->SerializeAsString(), *bytes);
    EXPECT_EQ(LeaseOf(*back), "owner/wf/s/0#1@1");
  }
  wire::RemoteRunMessage st;
  st.mutable_status()->set_lease_id("l");
  st.mutable_status()->set_attempt_id("a");
  auto bytes = EncodeRemoteRun(st);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(RemoteRunBodyName(*DecodeRemoteRun(*bytes)), "status");
  // A restarted owner's question about a lease: its ids are checked as any message's.
  wire::RemoteRunMessage resume;
  resume.mutable_resume()->set_lease_id("owner/wf/s/0#1@1");
  resume.mutable_resume()->set_attempt_id("wf/s/0#1");
  auto rb = EncodeRemoteRun(resume);
  ASSERT_TRUE(rb) << rb.error().ToString();
  auto rback = DecodeRemoteRun(*rb);
  ASSERT_TRUE(rback) << rback.error().ToString();
  EXPECT_EQ(RemoteRunBodyName(*rback), "resume");
  EXPECT_EQ(LeaseOf(*rback), "owner/wf/s/0#1@1");
  resume.mutable_resume()->clear_attempt_id();
  auto bad = EncodeRemoteRun(resume);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("resume owner/wf/s/0#1@1: attempt id of 0 bytes"),
            std::string::npos)
      << bad.error().message();
}

TEST(RemoteRunCodecTest, MalformedMessagesAreCorruptionNamingWhatIsWrong) {
  struct Case {
    const char* name;
    std::function<void(wire::RemoteRunMessage&)> mutate;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"no body", [](auto& m) { m.clear_body(); }, "no body"},
      {"no lease", [](auto& m) { m.mutable_run()->clear_lease_id(); }, "lease id of 0 bytes"},
      {"long lease", [](auto& m) { m.mutable_run()->set_lease_id(std::string(300, 'l')); },
       "lease id of 300 bytes"},
      {"no attempt", [](auto& m) { m.mutable_run()->clear_attempt_id(); }, "attempt id of 0"},
      {"no argv", [](auto& m) { m.mutable_run()->clear_argv(); }, "no argv"},
      {"relative workdir", [](auto& m) { m.mutable_run()->set_workdir("w"); }, "not an absolute"},
      {"output outside", [](auto& m) { m.mutable_run()->set_output("/etc/passwd"); },
       "output '/etc/passwd' is not inside"},
      {"output escapes", [](auto& m) { m.mutable_run()->set_output("/w/wf/../x"); },
       "is not inside"},
      {"input escapes", [](auto& m) { m.mutable_run()->mutable_inputs(0)->set_path("../x"); },
       "input path '../x' is not inside"},
      {"absolute input", [](auto& m) { m.mutable_run()->mutable_inputs(0)->set_path("/x"); },
       "input path '/x'"},
      {"bad env", [](auto& m) { m.mutable_run()->add_env("NOEQUALS"); }, "not KEY=VALUE"},
      {"no backend", [](auto& m) { m.mutable_run()->clear_backend(); }, "backend name of 0"},
  };
  for (const Case& c : cases) {
    wire::RemoteRunMessage m = RunMsg();
    m.set_version(kRemoteRunVersion);
    c.mutate(m);
    EXPECT_FALSE(EncodeRemoteRun(m)) << c.name << ": refused before it leaves the host";
    auto d = DecodeRemoteRun(m.SerializeAsString());
    ASSERT_FALSE(d) << c.name;
    EXPECT_TRUE(d.error().IsCorruption()) << c.name;
    EXPECT_THAT(d.error().message(), HasSubstr(c.says)) << c.name;
  }
  wire::RemoteRunMessage r = ResultMsg();
  r.set_version(kRemoteRunVersion);
  r.mutable_result()->set_state("exploded");
  EXPECT_THAT(DecodeRemoteRun(r.SerializeAsString()).error().message(),
              HasSubstr("unknown state 'exploded'"));
  r = ResultMsg();
  r.set_version(kRemoteRunVersion);
  r.mutable_result()->set_cpu_seconds(-1);
  EXPECT_THAT(DecodeRemoteRun(r.SerializeAsString()).error().message(), HasSubstr("cpu_seconds"));
  r = ResultMsg();
  r.set_version(2);
  EXPECT_THAT(DecodeRemoteRun(r.SerializeAsString()).error().message(), HasSubstr("version 2"));
  EXPECT_THAT(DecodeRemoteRun(std::string(kMaxRemoteRunBytes + 1, 'x')).error().message(),
              HasSubstr("at most"));
}

// Kept outputs after a takeover (docs/MESH.md, "Outputs after a takeover"): no lease, an id.
TEST(RemoteRunCodecTest, KeptOutputMessagesRoundTripAndNeedTheirId) {
  wire::RemoteRunMessage f;
  f.mutable_fetch()->set_attempt_id("wf/work/0#1");
  f.mutable_fetch()->set_nonce(42);
  auto bytes = EncodeRemoteRun(f);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto back = DecodeRemoteRun(*bytes);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->fetch().attempt_id(), "wf/work/0#1");
  EXPECT_EQ(back->fetch().nonce(), 42u);
  EXPECT_EQ(RemoteRunBodyName(*back), "fetch");
  EXPECT_EQ(LeaseOf(*back), "");
  wire::RemoteRunMessage g;
  g.mutable_forget()->set_workflow_id("wf");
  ASSERT_TRUE(EncodeRemoteRun(g));

  wire::RemoteRunMessage bad;
  bad.set_version(kRemoteRunVersion);
  bad.mutable_fetch()->set_nonce(1);
  EXPECT_THAT(DecodeRemoteRun(bad.SerializeAsString()).error().message(),
              HasSubstr("fetch: id of 0 bytes"));
  bad.mutable_fetch_refused()->set_attempt_id("wf/work/0#1");
  bad.mutable_fetch_refused()->set_error(std::string(2000, 'e'));
  EXPECT_THAT(DecodeRemoteRun(bad.SerializeAsString()).error().message(),
              HasSubstr("error of 2000 bytes"));
  bad.mutable_forget()->set_workflow_id(std::string(300, 'w'));
  EXPECT_THAT(DecodeRemoteRun(bad.SerializeAsString()).error().message(),
              HasSubstr("forget: id of 300 bytes"));
}

TEST(RemoteRunCodecTest, AnOutputTooLargeForOneMessageIsRefusedWithItsSize) {
  wire::RemoteRunMessage m = ResultMsg();
  m.mutable_result()->set_output(std::string(kMaxRemoteRunBytes, 'o'));
  auto bytes = EncodeRemoteRun(m);
  ASSERT_FALSE(bytes);
  EXPECT_EQ(bytes.error().code(), Status::Code::kResourceExhausted);
  EXPECT_THAT(bytes.error().message(), HasSubstr("more than one message carries"));
}

TEST(RemoteRunCodecTest, RandomBytesAndFlippedBytesNeverCrash) {
  std::mt19937_64 rng(41);
  const std::string good = *EncodeRemoteRun(RunMsg());
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    if (i % 2 == 0) {
      b.resize(rng() % 200);
      for (char& c : b) c = char(rng());
    } else {
      for (int k = 0; k < 3; ++k) b[rng() % b.size()] = char(rng());
    }
    auto d = DecodeRemoteRun(b);
    if (d) {
      ++accepted;
      // Whatever passes is a message that would be sent as it is.
      EXPECT_TRUE(EncodeRemoteRun(*d));
    } else {
      EXPECT_TRUE(d.error().IsCorruption());
    }
  }
  EXPECT_LT(accepted, 20000);
}

// Inputs and outputs named by transfer (docs/MESH.md, "Moving shard data").
TEST(RemoteRunCodecTest, TransferredInputsAndOutputsAreChecked) {
  wire::RemoteRunMessage run = RunMsg();
  wire::RemoteFile* f = run.mutable_run()->add_inputs();
  f->set_path("big.txt");
  f->set_transfer_id("00ff00ff00ff00ff.in.1");
  f->set_size(5u << 20);
  auto bytes = EncodeRemoteRun(run);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  auto back = DecodeRemoteRun(*bytes);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->run().inputs(1).size(), 5u << 20);
  wire::RemoteRunMessage result = ResultMsg();
  result.mutable_result()->clear_output();
  result.mutable_result()->set_output_transfer("00ff00ff00ff00ff.out");
  result.mutable_result()->set_output_size(7u << 20);
  ASSERT_TRUE(DecodeRemoteRun(*EncodeRemoteRun(result)));

  const std::vector<std::pair<std::function<void(wire::RemoteRunMessage&)>, const char*>> bad = {
      {[](auto& m) { m.mutable_run()->mutable_inputs(1)->set_transfer_id("has space"); },
       "input 'big.txt' names transfer 'has space' that is not a valid id"},
      {[](auto& m) { m.mutable_run()->mutable_inputs(1)->set_data("x"); },
       "comes with inline data too"},
      {[](auto& m) { *m.mutable_run()->add_inputs() = m.run().inputs(1); }, "is named twice"},
  };
  for (const auto& [mutate, says] : bad) {
    wire::RemoteRunMessage m = run;
    m.set_version(kRemoteRunVersion);
    mutate(m);
    EXPECT_FALSE(EncodeRemoteRun(m)) << says;
    auto d = DecodeRemoteRun(m.SerializeAsString());
    ASSERT_FALSE(d) << says;
    EXPECT_TRUE(d.error().IsCorruption());
    EXPECT_THAT(d.error().message(), HasSubstr(says));
  }
  wire::RemoteRunMessage both = result;
  both.set_version(kRemoteRunVersion);
  both.mutable_result()->set_output("inline");
  auto d = DecodeRemoteRun(both.SerializeAsString());
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().message(), HasSubstr("comes with inline output too"));
}

}  // namespace
}  // namespace augur::mesh
