// The adapter in this process, without the host: conversions and the validation of every
// answer. (The same plugins through the host are in plugin_client_test.cc.)
#include "plugin/abi_adapter.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using std::chrono::milliseconds;

std::unique_ptr<AbiBackend> Make(const std::string& name, const std::string& state_dir) {
  auto loaded = LoadedPlugin::Load(testing::PluginPath(name), name);
  EXPECT_TRUE(loaded) << loaded.error().ToString();
  if (!loaded) return nullptr;
  auto b = AbiBackend::Create(std::move(*loaded), {{{"cpu_cores", "4"}}, state_dir});
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? std::move(*b) : nullptr;
}

// What plugins log through the host api (spdlog's default logger) while this lives.
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024)),
        previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string Text() const {
    std::string out;
    for (const std::string& line : sink_->last_formatted()) out += line;
    return out;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(AbiAdapterTest, ExampleLifecycle) {
  testing::TempDir dir;
  auto b = Make("example", dir.path());
  ASSERT_NE(b, nullptr);
  auto info = b->Describe();
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->name, "example");
  EXPECT_TRUE(info->healthy);
  EXPECT_EQ(info->capacity.cpu_cores, 4);  // from the config key
  EXPECT_EQ(info->available, info->capacity);

  auto inst = b->Provision({"job-1", {2, 1 << 20}, {1, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  EXPECT_EQ(inst->state, InstanceState::kReady);
  EXPECT_EQ(inst->granted.cpu_cores, 2);
  EXPECT_EQ(b->Describe()->available.cpu_cores, 2);

  const std::string out = dir.path() + "/out.txt";
  Task t;
  t.argv = {"/bin/sh", "-c", "echo hello $WHO; exit 3"};
  t.env = {"WHO=world"};
  t.stdout_path = out;
  auto inv = b->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();
  auto st = b->Poll(*inv, milliseconds(5000));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_GT(st->finished_ns, 0);
  EXPECT_EQ(st->bytes_read, 0u);  // the example cannot see I/O and says 0
  EXPECT_EQ(st->bytes_written, 0u);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "hello world");

  auto g = b->Resize(inst->handle, {1, 1 << 20});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->cpu_cores, 1);
  EXPECT_TRUE(b->Release(inst->handle).ok());
  Status again = b->Release(inst->handle);
  EXPECT_TRUE(again.IsNotFound()) << again.ToString();
  EXPECT_THAT(again.message(), HasSubstr("release: AUGUR_ERR_NOT_FOUND: no instance"));
}

// The task's metadata crosses the C boundary whole, origin host included: the example logs
// it through the host api.
TEST(AbiAdapterTest, TheOriginHostReachesThePlugin) {
  testing::TempDir dir;
  auto b = Make("example", dir.path());
  ASSERT_NE(b, nullptr);
  auto inst = b->Provision({"origin", {1, 1 << 20}, {1, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  Task t;
  t.argv = {"/bin/true"};
  t.meta = {"wf-9", "map", "shard-4", 0, 100, 2, 7, "owner-host.example"};
  LogCapture log;
  auto inv = b->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();
  EXPECT_THAT(log.Text(), HasSubstr(*inv + ": workflow 'wf-9' stage 'map' shard 'shard-4' "
                                           "attempt 2 from host 'owner-host.example'"));
  ASSERT_TRUE(b->Poll(*inv, milliseconds(5000)));
  EXPECT_TRUE(b->Release(inst->handle).ok());
}

// A plugin built against ABI 1.0 (the example, built declaring minor 0 and 1.0's struct
// sizes) still runs: it gets the 1.0-sized status it expects (it refuses a smaller one)
// and its answer carries no I/O counters.
TEST(AbiAdapterTest, APluginOfAbi1_0StillWorks) {
  testing::TempDir dir;
  auto b = Make("test_example_abi_1_0", dir.path());
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->plugin().api().abi_minor, 0u);
  auto inst = b->Provision({"old", {1, 1 << 20}, {1, 1 << 20}, "", "", {}});
  ASSERT_TRUE(inst) << inst.error().ToString();
  const std::string out = dir.path() + "/old.txt";
  Task t;
  t.argv = {"/bin/sh", "-c", "head -c 100000 /dev/zero > " + dir.path() + "/data; echo done"};
  t.stdout_path = out;
  t.meta.origin_host = "owner";  // beyond the 1.0 struct: ignored, harmless
  LogCapture log;
  auto inv = b->Run(inst->handle, t);
  ASSERT_TRUE(inv) << inv.error().ToString();
  EXPECT_THAT(log.Text(), Not(HasSubstr("from host")));
  auto st = b->Poll(*inv, milliseconds(5000));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_GT(st->finished_ns, st->started_ns);
  EXPECT_EQ(st->bytes_read, 0u);
  EXPECT_EQ(st->bytes_written, 0u);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "done");
  EXPECT_TRUE(b->Release(inst->handle).ok());
}

TEST(AbiAdapterTest, PluginErrorsCarryTheirCodeAndMessage) {
  testing::TempDir dir;
  auto b = Make("example", dir.path());
  ASSERT_NE(b, nullptr);
  auto r = b->Provision({"big", {1000, 1}, {999, 1}, "", "", {}});
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsUnavailable());
  EXPECT_THAT(r.error().message(), HasSubstr("provision: AUGUR_ERR_NO_CAPACITY: "));
  auto bad = b->Provision({"x", {1, 1}, {2, 1}, "", "", {}});
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().IsInvalidArgument());
}

// Each garbage answer becomes a Corruption naming what was wrong, never a value.
TEST(AbiAdapterTest, GarbageAnswersAreCorruption) {
  testing::TempDir dir;
  auto b = Make("test_garbage", dir.path());
  ASSERT_NE(b, nullptr);
  auto info = b->Describe();
  ASSERT_FALSE(info);
  EXPECT_TRUE(info.error().IsCorruption());
  EXPECT_EQ(info.error().message(), "describe: name is NULL");

  auto inst = b->Provision({"x", {1, 1}, {1, 1}, "", "", {}});
  ASSERT_FALSE(inst);
  EXPECT_EQ(inst.error().message(), "provision: instance handle has no NUL within 128 bytes");

  auto pre = b->Prewarm({"x", {1, 1}, {1, 1}, "", "", {}}, 2);
  ASSERT_FALSE(pre);
  EXPECT_EQ(pre.error().message(), "prewarm: prepared 7 instances when 2 were asked for");

  auto g = b->Resize("inst-1", {1, 1});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().message(), "resize: granted.cpu_cores is nan");

  Task t;
  t.argv = {"/bin/true"};
  auto inv = b->Run("inst-1", t);
  ASSERT_FALSE(inv);
  EXPECT_EQ(inv.error().message(), "run: invocation handle is empty");

  auto st = b->Poll("inv-1", milliseconds(0));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "poll: task state is 99, not an AUGUR_TASK_* value");
  st = b->Poll("inv-io-huge", milliseconds(0));
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().IsCorruption());
  EXPECT_EQ(st.error().message(),
            "poll: bytes_written is 18446744073709551615, more than 9223372036854775807 (a "
            "negative count cast to unsigned?)");
  st = b->Poll("inv-size-big", milliseconds(0));
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().IsCorruption());
  EXPECT_EQ(st.error().message(), "poll: out.struct_size is 4096, more than the " +
                                      std::to_string(sizeof(augur_task_status)) +
                                      " bytes the host allocated");
  // Not garbage: counters past the struct_size the plugin wrote back are not read.
  st = b->Poll("inv-io-short", milliseconds(0));
  ASSERT_TRUE(st) << st.error().ToString();
  EXPECT_EQ(st->state, TaskState::kExited);
  EXPECT_EQ(st->bytes_read, 0u);
  EXPECT_EQ(st->bytes_written, 0u);

  Status c = b->Cancel("inv-1");
  EXPECT_TRUE(c.IsCorruption());
  EXPECT_EQ(c.message(), "cancel: returned 12345, which is not an AUGUR_ERR_* code");

  Status r = b->Release("inst-1");
  EXPECT_TRUE(r.IsCorruption());
  EXPECT_EQ(r.message(),
            "release failed with AUGUR_ERR_IO: last_error() is longer than 4096 bytes "
            "(unterminated?)");

  auto rec = b->Recover({"inst-1"}, {});
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().message(), "recover: states_out[0] is -1, not an AUGUR_INSTANCE_* value");
}

}  // namespace
}  // namespace augur::plugin
