#include "plugin/plugin_protocol.h"

#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;

TEST(PluginProtocolTest, TextBoundsAndUtf8) {
  EXPECT_TRUE(CheckText("name", "process", kMaxNameBytes).ok());
  EXPECT_TRUE(CheckText("name", "zürich", kMaxNameBytes).ok());
  Status too_long = CheckText("name", std::string(kMaxNameBytes + 1, 'a'), kMaxNameBytes);
  EXPECT_TRUE(too_long.IsCorruption());
  EXPECT_EQ(too_long.message(), "name is longer than 256 bytes (unterminated?)");
  EXPECT_TRUE(CheckText("name", "\xff\xfe", kMaxNameBytes).IsCorruption());
  EXPECT_FALSE(IsValidUtf8(std::string("a\0b", 3)));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));        // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));    // surrogate
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));  // U+1F600
}

TEST(PluginProtocolTest, Handles) {
  EXPECT_TRUE(CheckHandle("h", "i-web-0123").ok());
  EXPECT_TRUE(CheckHandle("h", std::string(127, 'a')).ok());
  EXPECT_EQ(CheckHandle("h", std::string(128, 'a')).message(),
            "h is longer than 127 bytes (unterminated?)");
  EXPECT_EQ(CheckHandle("h", "").message(), "h is empty");
  EXPECT_EQ(CheckHandle("h", "a\nb").message(), "h has byte 0x0a; handles are printable ASCII");
}

TEST(PluginProtocolTest, ResultCodesMapToStatusCodes) {
  EXPECT_TRUE(StatusFromRc("provision", AUGUR_ERR_INVALID, "x").IsInvalidArgument());
  EXPECT_TRUE(StatusFromRc("release", AUGUR_ERR_NOT_FOUND, "x").IsNotFound());
  EXPECT_EQ(StatusFromRc("p", AUGUR_ERR_UNSUPPORTED, "x").code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(StatusFromRc("p", AUGUR_ERR_NO_CAPACITY, "x").IsUnavailable());
  EXPECT_TRUE(StatusFromRc("p", AUGUR_ERR_BUSY, "x").IsUnavailable());
  EXPECT_EQ(StatusFromRc("p", AUGUR_ERR_IO, "x").code(), Status::Code::kIOError);
  EXPECT_EQ(StatusFromRc("p", AUGUR_ERR_INTERNAL, "x").code(), Status::Code::kInternal);
  EXPECT_EQ(StatusFromRc("provision", AUGUR_ERR_NO_CAPACITY, "2 cores free").message(),
            "provision: AUGUR_ERR_NO_CAPACITY: 2 cores free");
  Status unknown = StatusFromRc("cancel", 12345, "x");
  EXPECT_TRUE(unknown.IsCorruption());
  EXPECT_EQ(unknown.message(), "cancel: returned 12345, which is not an AUGUR_ERR_* code");
}

TEST(PluginProtocolTest, StatusCodesRoundTrip) {
  for (Status s : {Status::NotFound("a"), Status::InvalidArgument("b"), Status::IOError("c"),
                   Status::Unavailable("d"), Status::Internal("e"),
                   Status::FailedPrecondition("f")}) {
    Status back = StatusFromCode(static_cast<int32_t>(s.code()), s.message());
    EXPECT_EQ(back.code(), s.code());
    EXPECT_EQ(back.message(), s.message());
  }
  EXPECT_TRUE(StatusFromCode(0, "").ok());
  EXPECT_TRUE(StatusFromCode(99, "x").IsCorruption());
}

TEST(PluginProtocolTest, EnumsOutsideTheAbiAreCorruption) {
  EXPECT_EQ(*TaskStateFromInt("s", AUGUR_TASK_OOM), TaskState::kOom);
  EXPECT_EQ(*TaskStateFromInt("s", AUGUR_TASK_RECLAIMED), TaskState::kReclaimed);
  EXPECT_FALSE(TaskStateFromInt("s", AUGUR_TASK_RECLAIMED + 1));
  EXPECT_EQ(TaskStateFromInt("task state", 99).error().message(),
            "task state is 99, not an AUGUR_TASK_* value");
  EXPECT_FALSE(TaskStateFromInt("s", -1));
  EXPECT_EQ(*InstanceStateFromInt("s", AUGUR_INSTANCE_GONE), InstanceState::kGone);
  EXPECT_FALSE(InstanceStateFromInt("s", 4));
}

TEST(PluginProtocolTest, BackendInfoRoundTripsAndIsValidated) {
  BackendInfo info{"process", "1.2.0", true, "", {8, 1 << 30}, {4, 1 << 29},
                   {{"local", 0.1, 0.01, false}, {"spot", 0.02, 0.002, true}},
                   {{"zone", "eu-1a"}}};
  wire::BackendInfo w;
  ToWire(info, &w);
  auto back = InfoFromWire(w);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(*back, info);

  w.set_name("");
  EXPECT_EQ(InfoFromWire(w).error().message(), "name is empty");
  ToWire(info, &w);
  w.mutable_capacity()->set_cpu_cores(std::nan(""));
  EXPECT_THAT(InfoFromWire(w).error().message(), HasSubstr("capacity.cpu_cores is nan"));
  ToWire(info, &w);
  w.mutable_costs(0)->set_per_core_hour(-1);
  EXPECT_THAT(InfoFromWire(w).error().message(), HasSubstr("costs[0]"));
}

TEST(PluginProtocolTest, TaskAndRequestRoundTrip) {
  Task t;
  t.argv = {"/bin/echo", "hi"};
  t.env = {"A=1"};
  t.workdir = "/tmp";
  t.stdout_path = "/tmp/o";
  t.meta = {"wf", "stage-1", "shard-3", 10, 20, 2, 9, "owner.example"};
  wire::Task w;
  ToWire(t, &w);
  Task back = FromWire(w);
  EXPECT_EQ(back.argv, t.argv);
  EXPECT_EQ(back.env, t.env);
  EXPECT_EQ(back.workdir, "/tmp");
  EXPECT_EQ(back.meta.shard_id, "shard-3");
  EXPECT_EQ(back.meta.range_end, 20u);
  EXPECT_EQ(back.meta.attempt, 2u);
  EXPECT_EQ(back.meta.priority, 9);
  EXPECT_EQ(back.meta.origin_host, "owner.example");
  // Through the bytes on the socket too, as the host parses them.
  wire::Task parsed;
  ASSERT_TRUE(parsed.ParseFromString(w.SerializeAsString()));
  EXPECT_EQ(FromWire(parsed).meta.origin_host, "owner.example");
  // A request from an agent that does not set it reads as "" (unknown).
  w.mutable_meta()->clear_origin_host();
  EXPECT_EQ(FromWire(w).meta.origin_host, "");

  AllocRequest r{"job", {2, 100}, {1, 50}, "img", "spot", {{"k", "v"}}};
  wire::AllocRequest wr;
  ToWire(r, &wr);
  AllocRequest rb = FromWire(wr);
  EXPECT_EQ(rb.name, "job");
  EXPECT_EQ(rb.want, r.want);
  EXPECT_EQ(rb.min, r.min);
  EXPECT_EQ(rb.labels, r.labels);
}

TEST(PluginProtocolTest, InstanceAndStatusFromWireValidate) {
  wire::Instance wi;
  wi.set_handle("i-1");
  wi.set_state(AUGUR_INSTANCE_READY);
  EXPECT_TRUE(InstanceFromWire(wi));
  wi.set_state(7);
  EXPECT_FALSE(InstanceFromWire(wi));
  wi.set_state(1);
  wi.set_handle(std::string(200, 'a'));
  EXPECT_FALSE(InstanceFromWire(wi));

  wire::TaskStatus ws;
  ws.set_state(AUGUR_TASK_EXITED);
  ws.set_exit_code(3);
  auto st = TaskStatusFromWire(ws);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->exit_code, 3);
  ws.set_cpu_seconds(-1);
  EXPECT_FALSE(TaskStatusFromWire(ws));
}

TEST(PluginProtocolTest, IoCountersRoundTripAndAreBounded) {
  TaskStatus st;
  st.state = TaskState::kExited;
  st.cpu_seconds = 1.5;
  st.bytes_read = 8ull << 20;
  st.bytes_written = kMaxIoBytes;  // the largest the history can store
  wire::TaskStatus w;
  ToWire(st, &w);
  wire::TaskStatus parsed;
  ASSERT_TRUE(parsed.ParseFromString(w.SerializeAsString()));
  auto back = TaskStatusFromWire(parsed);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->bytes_read, 8ull << 20);
  EXPECT_EQ(back->bytes_written, kMaxIoBytes);

  // A count past 2^63-1 is a negative number cast to unsigned: garbage, named.
  w.set_bytes_written(kMaxIoBytes + 1);
  auto bad = TaskStatusFromWire(w);
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().IsCorruption());
  EXPECT_EQ(bad.error().message(),
            "bytes_written is 9223372036854775808, more than 9223372036854775807 (a negative "
            "count cast to unsigned?)");
  w.set_bytes_written(0);
  w.set_bytes_read(~0ull);
  bad = TaskStatusFromWire(w);
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(), HasSubstr("bytes_read is 18446744073709551615"));
  // A reply from a host that does not send them (an ABI 1.0 plugin's) reads as 0.
  w.clear_bytes_read();
  auto none = TaskStatusFromWire(w);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->bytes_read, 0u);
  EXPECT_EQ(none->bytes_written, 0u);
}

}  // namespace
}  // namespace augur::plugin
