// The adapter in this process, without the host: conversions and the validation of every
// answer. (The same plugins through the host are in plugin_client_test.cc.)
#include "plugin/abi_adapter.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;

std::unique_ptr<AbiBackend> Make(const std::string& name, const std::string& state_dir) {
  auto loaded = LoadedPlugin::Load(testing::PluginPath(name), name);
  EXPECT_TRUE(loaded) << loaded.error().ToString();
  if (!loaded) return nullptr;
  auto b = AbiBackend::Create(std::move(*loaded), {{{"cpu_cores", "4"}}, state_dir});
  EXPECT_TRUE(b) << b.error().ToString();
  return b ? std::move(*b) : nullptr;
}

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
