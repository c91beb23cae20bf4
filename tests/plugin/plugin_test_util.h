// Paths and temporary directories shared by the plugin tests.
#ifndef AUGUR_TESTS_PLUGIN_PLUGIN_TEST_UTIL_H_
#define AUGUR_TESTS_PLUGIN_PLUGIN_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "plugin/plugin_client.h"

namespace augur::plugin::testing {

inline std::string PluginPath(const std::string& name) {
  return std::string(AUGUR_BUILD_DIR) + "/plugins/augur-" + name + ".so";
}
inline std::string HostPath() { return std::string(AUGUR_BUILD_DIR) + "/agent/augur-plugin-host"; }

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string t = "/tmp/augur-plugin-test.XXXXXX";
    path_ = ::mkdtemp(t.data()) ? t : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Options for a hosted backend with short timeouts, so failure tests run in well under a
// second each.
inline PluginClientOptions TestOptions(const std::string& name, const TempDir& runtime,
                                       const std::string& state_dir) {
  PluginClientOptions o;
  o.name = name;
  o.plugin_path = PluginPath(name);
  o.host_path = HostPath();
  o.runtime_dir = runtime.path();
  o.state_dir = state_dir;
  o.call_timeout = std::chrono::milliseconds(2000);
  o.backoff_initial = std::chrono::milliseconds(100);
  o.backoff_max = std::chrono::milliseconds(1600);
  return o;
}

}  // namespace augur::plugin::testing

#endif  // AUGUR_TESTS_PLUGIN_PLUGIN_TEST_UTIL_H_
