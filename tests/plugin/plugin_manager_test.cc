#include "plugin/plugin_manager.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;

TEST(PluginManagerTest, LoadsWhatItCanAndReportsTheRest) {
  testing::TempDir state, runtime;
  PluginManagerOptions o;
  o.dir = std::string(AUGUR_BUILD_DIR) + "/plugins";
  o.enabled = {"example", "test_abi_major_2", "missing"};
  o.state_dir = state.path();
  o.host_path = testing::HostPath();
  o.runtime_parent = runtime.path();
  o.config["example"] = {{"cpu_cores", "3"}};
  std::string runtime_dir;
  {
    auto m = PluginManager::Start(o);
    ASSERT_TRUE(m) << m.error().ToString();
    runtime_dir = (*m)->runtime_dir();
    EXPECT_EQ(std::filesystem::status(runtime_dir).permissions(), std::filesystem::perms::owner_all);
    std::vector<BackendHealth> h = (*m)->Health();
    ASSERT_EQ(h.size(), 3u);
    EXPECT_EQ(h[0].name, "example");
    EXPECT_TRUE(h[0].up) << h[0].last_error;
    EXPECT_EQ(h[1].state, HostState::kRefused);
    EXPECT_THAT(h[1].last_error, HasSubstr("declares plugin ABI 2.3"));
    EXPECT_EQ(h[2].state, HostState::kRefused);
    EXPECT_THAT(h[2].last_error, HasSubstr("augur-missing.so): no such file"));

    Backend* example = (*m)->Find("example");
    ASSERT_NE(example, nullptr);
    auto info = example->Describe();
    ASSERT_TRUE(info) << info.error().ToString();
    EXPECT_EQ(info->capacity.cpu_cores, 3);  // plugins.config.example reached init()
    EXPECT_EQ((*m)->Find("test_abi_major_2"), nullptr);
    EXPECT_EQ((*m)->Find("nope"), nullptr);
  }
  EXPECT_FALSE(std::filesystem::exists(runtime_dir));
}

}  // namespace
}  // namespace augur::plugin
