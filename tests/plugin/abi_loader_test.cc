#include "plugin/abi_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "plugin_test_util.h"

namespace augur::plugin {
namespace {

using ::testing::HasSubstr;
using testing::PluginPath;

TEST(PluginNameFromPathTest, StripsPrefixAndSuffix) {
  EXPECT_EQ(PluginNameFromPath("/usr/lib/augur/plugins/augur-process.so"), "process");
  EXPECT_EQ(PluginNameFromPath("augur-libvirt.so"), "libvirt");
  EXPECT_EQ(PluginNameFromPath("/x/mine.so"), "mine");
  EXPECT_EQ(PluginNameFromPath("/x/plain"), "plain");
}

TEST(AbiLoaderTest, LoadsTheExamplePlugin) {
  auto p = LoadedPlugin::Load(PluginPath("example"), "example");
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ((*p)->api().abi_major, uint32_t{AUGUR_PLUGIN_ABI_MAJOR});
  EXPECT_EQ((*p)->api().struct_size, sizeof(augur_plugin_api));
  EXPECT_EQ((*p)->name(), "example");
}

TEST(AbiLoaderTest, RefusesAnotherMajorNamingPluginDeclaredAndSupported) {
  const std::string path = PluginPath("test_abi_major_2");
  auto p = LoadedPlugin::Load(path, "test_abi_major_2");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(p.error().message(),
            "plugin 'test_abi_major_2' (" + path +
                ") declares plugin ABI 2.3; this agent supports plugin ABI 1.1 (same major, "
                "minor at most 1)");
}

TEST(AbiLoaderTest, RefusesAPluginWithoutTheEntrySymbol) {
  const std::string path = PluginPath("test_no_entry_symbol");
  auto p = LoadedPlugin::Load(path, "test_no_entry_symbol");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(p.error().message(),
            "plugin 'test_no_entry_symbol' (" + path +
                "): does not export augur_plugin_entry() (declares no plugin ABI; build it with "
                "AUGUR_PLUGIN_EXPORT from augur/plugin.h); this agent supports plugin ABI 1.1 "
                "(same major, minor at most 1)");
}

TEST(AbiLoaderTest, MissingFileIsNotFound) {
  auto p = LoadedPlugin::Load("/nonexistent/augur-x.so", "x");
  ASSERT_FALSE(p);
  EXPECT_TRUE(p.error().IsNotFound());
  EXPECT_EQ(p.error().message(), "plugin 'x' (/nonexistent/augur-x.so): no such file");
}

TEST(AbiLoaderTest, NotASharedObjectIsRefusedWithDlerror) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/augur-text.so";
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("not an ELF file\n", f);
  fclose(f);
  auto p = LoadedPlugin::Load(path, "text");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(p.error().message(), HasSubstr("plugin 'text' (" + path + "): cannot load: "));
}

}  // namespace
}  // namespace augur::plugin
