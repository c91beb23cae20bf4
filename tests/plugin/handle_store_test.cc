#include "plugin/handle_store.h"

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(HandleStoreTest, PersistsAcrossReopen) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/example.handles";
  {
    auto s = HandleStore::Open(path, "example");
    ASSERT_TRUE(s) << s.error().ToString();
    ASSERT_TRUE((*s)->AddInstance("i-a").ok());
    ASSERT_TRUE((*s)->AddInstance("i-b").ok());
    ASSERT_TRUE((*s)->AddInvocation("i-a", "run-1").ok());
    ASSERT_TRUE((*s)->AddInvocation("i-b", "run-2").ok());
    ASSERT_TRUE((*s)->RemoveInvocation("run-2").ok());
  }
  auto s = HandleStore::Open(path, "example");
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_THAT((*s)->Instances(), ElementsAre("i-a", "i-b"));
  EXPECT_THAT((*s)->Invocations(), ElementsAre("run-1"));
  ASSERT_TRUE((*s)->RemoveInstance("i-a").ok());
  EXPECT_THAT((*s)->Invocations(), ElementsAre());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(HandleStoreTest, RecoveryForgetsGoneInstances) {
  testing::TempDir dir;
  auto s = HandleStore::Open(dir.path() + "/x.handles", "x");
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->AddInvocation("i-a", "run-1").ok());
  ASSERT_TRUE((*s)->AddInstance("i-b").ok());
  RecoverResult r{{InstanceState::kGone, InstanceState::kReady}, {}};
  ASSERT_TRUE((*s)->ApplyRecovery({"i-a", "i-b"}, r).ok());
  EXPECT_THAT((*s)->Instances(), ElementsAre("i-b"));
  EXPECT_THAT((*s)->Invocations(), ElementsAre());
}

TEST(HandleStoreTest, GarbageFileIsCorruption) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/x.handles";
  std::ofstream(path) << "\xff\xff\xff\xff not protobuf";
  auto s = HandleStore::Open(path, "x");
  ASSERT_FALSE(s);
  EXPECT_TRUE(s.error().IsCorruption());
  EXPECT_THAT(s.error().message(), HasSubstr(path));
}

TEST(HandleStoreTest, AnotherBackendsFileIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/x.handles";
  {
    auto s = HandleStore::Open(path, "process");
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->AddInstance("i-a").ok());
  }
  auto s = HandleStore::Open(path, "libvirt");
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message(), HasSubstr("holds handles of backend 'process', not 'libvirt'"));
}

TEST(HandleStoreTest, EmptyPathKeepsHandlesInMemory) {
  auto s = HandleStore::Open("", "x");
  ASSERT_TRUE(s);
  ASSERT_TRUE((*s)->AddInstance("i-a").ok());
  EXPECT_THAT((*s)->Instances(), ElementsAre("i-a"));
}

}  // namespace
}  // namespace augur::plugin
