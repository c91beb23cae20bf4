// `cmake --install` into a scratch DESTDIR puts every part of the agent where its compiled-in
// defaults and its systemd unit look for it (issue 9: only four binaries were installed, in
// /usr/local/bin, while the unit ran /usr/bin/augurd and plugins.dir stayed empty).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <regex>
#include <string>

#include <gtest/gtest.h>

#include "augur_paths.h"
#include "integration/subprocess.h"

namespace augur {
namespace {

namespace fs = std::filesystem;
using testing::BuildPath;

// "key: value" lines, as `augurd --print-paths` prints them.
std::map<std::string, std::string> ParseLines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) out[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return out;
}

std::string UnitValue(const std::string& unit, const std::string& key) {
  std::istringstream in(unit);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + "=", 0) == 0) return line.substr(key.size() + 1);
  }
  return "";
}

bool Executable(const fs::path& p) { return ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p); }

class InstallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("augur-install-" + std::to_string(getpid()));
    fs::remove_all(root_);
    auto r = testing::Run({"/usr/bin/env", "DESTDIR=" + root_.string(), "cmake", "--install",
                           std::string(AUGUR_BUILD_DIR)},
                          std::chrono::seconds(120));
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    auto paths = testing::Run({BuildPath("agent/augurd"), "--print-paths"});
    ASSERT_EQ(paths.code, 0) << paths.err;
    paths_ = ParseLines(paths.out);
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path Installed(const std::string& abs) const { return root_ / fs::path(abs).relative_path(); }

  fs::path root_;
  std::map<std::string, std::string> paths_;
};

TEST_F(InstallTest, EverythingLandsWhereTheDefaultsAndTheUnitLook) {
  ASSERT_TRUE(paths_.contains("config") && paths_.contains("plugins.dir") &&
              paths_.contains("state_dir"));
  // The unit starts the installed augurd with the installed config.
  fs::path unit;
  for (const auto& e : fs::recursive_directory_iterator(root_)) {
    if (e.path().filename() == "augurd.service") unit = e.path();
  }
  ASSERT_FALSE(unit.empty()) << "no augurd.service installed";
  EXPECT_NE(unit.string().find("/lib/systemd/system/"), std::string::npos) << unit;
  const std::string text = testing::ReadFile(unit.string());
  const std::string exec = UnitValue(text, "ExecStart");
  const std::string augurd = exec.substr(0, exec.find(' '));
  EXPECT_TRUE(Executable(Installed(augurd))) << exec;
  EXPECT_NE(exec.find("--config " + paths_["config"]), std::string::npos) << exec;
  EXPECT_TRUE(Executable(Installed(fs::path(augurd).parent_path() / "augurctl")));
  EXPECT_TRUE(Executable(Installed(fs::path(augurd).parent_path() / "augur-plugin-check")));

  // The config the unit names is there and valid, and says what the defaults say.
  const fs::path config = Installed(paths_["config"]);
  ASSERT_TRUE(fs::exists(config)) << config;
  auto check = testing::Run({Installed(augurd).string(), "--check-config", config.string()});
  EXPECT_EQ(check.code, 0) << check.err;
  const std::string yaml = testing::ReadFile(config.string());
  EXPECT_NE(yaml.find("  dir: " + paths_["plugins.dir"] + "\n"), std::string::npos);
  std::smatch placeholder;
  EXPECT_FALSE(std::regex_search(yaml, placeholder, std::regex("@[A-Z_]+@")))
      << "unconfigured placeholder left: " << placeholder.str();

  // plugins.dir holds the in-tree backends (not the example or the test plugins).
  const fs::path plugins = Installed(paths_["plugins.dir"]);
  EXPECT_TRUE(fs::exists(plugins / "augur-process.so"));
  EXPECT_TRUE(fs::exists(plugins / "augur-libvirt.so"));
  EXPECT_FALSE(fs::exists(plugins / "augur-test-crash.so"));
  // The plugin host the installed augurd uses (none is beside it there), and not in bin.
  EXPECT_TRUE(Executable(Installed(AUGUR_DEFAULT_PLUGIN_HOST))) << AUGUR_DEFAULT_PLUGIN_HOST;
  EXPECT_FALSE(fs::exists(Installed(fs::path(augurd).parent_path() / "augur-plugin-host")));
  EXPECT_TRUE(fs::is_directory(Installed(paths_["state_dir"])));
  // Docs and the plugin author's header.
  bool readme = false, header = false;
  for (const auto& e : fs::recursive_directory_iterator(root_)) {
    readme = readme || (e.path().filename() == "PLUGINS.md" &&
                        e.path().string().find("/share/doc/augur/") != std::string::npos);
    header = header || e.path().string().ends_with("/include/augur/plugin.h");
  }
  EXPECT_TRUE(readme);
  EXPECT_TRUE(header);
}

}  // namespace
}  // namespace augur
