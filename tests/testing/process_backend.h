// The process backend for in-process tests: the real plugin (build/plugins/augur-process.so)
// loaded with a cgroup parent of its own, the removal of that parent afterwards, and the
// options of an executor that runs on it. Used by tests that run real executors side by side
// in one process (tests/mesh/).
//
//   auto b = testing::LoadProcessBackend("augur-test-123-a", dir + "/plugin");
//   if (!b) GTEST_SKIP() << b.error().ToString();  // cgroups not usable here
//   ...
//   testing::RemoveCgroupParent("augur-test-123-a");  // after the backend is gone
//
// Thread-safety: plain functions; the backend is the plugin adapter's (plugin/abi_adapter.h).
#ifndef AUGUR_TESTS_TESTING_PROCESS_BACKEND_H_
#define AUGUR_TESTS_TESTING_PROCESS_BACKEND_H_

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "plugin/abi_adapter.h"
#include "plugin/abi_loader.h"
#include "workflow/executor.h"

namespace augur::testing {

// The cgroup hierarchies the process backend writes to (cgroup2, and v1's cpu and memory).
inline std::vector<std::string> CgroupMounts() {
  std::ifstream in("/proc/self/mountinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string f[5], fstype, src, opts;
    for (auto& x : f) pre >> x;
    post >> fstype >> src >> opts;
    if (fstype == "cgroup2" || (fstype == "cgroup" && (opts.find("cpu") != std::string::npos ||
                                                       opts.find("memory") != std::string::npos))) {
      out.push_back(f[4]);
    }
  }
  return out;
}

// The process plugin with cgroup parent `cgroup` and its state under `state_dir`. A plugin
// that does not load fails the test; an error otherwise means cgroups are not usable here.
inline Result<std::unique_ptr<plugin::AbiBackend>> LoadProcessBackend(const std::string& cgroup,
                                                                      const std::string& state_dir) {
  auto loaded = plugin::LoadedPlugin::Load(
      std::string(AUGUR_BUILD_DIR) + "/plugins/augur-process.so", "process");
  if (!loaded) {
    ADD_FAILURE() << loaded.error().ToString();
    return Err(loaded.error());
  }
  auto b = plugin::AbiBackend::Create(std::move(*loaded), {{{"cgroup_parent", cgroup}}, state_dir});
  if (!b) return Err(b.error().Annotate("cgroups not usable here"));
  return std::move(*b);
}

// Removes cgroup parent `cgroup` from every hierarchy: the directories its released instances
// left first, then the parent.
inline void RemoveCgroupParent(const std::string& cgroup) {
  for (const std::string& m : CgroupMounts()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(m + "/" + cgroup, ec)) {
      if (e.is_directory()) ::rmdir(e.path().c_str());
    }
    ::rmdir((m + "/" + cgroup).c_str());
  }
}

// Options of a test host's executor: its state directory, name and capacity, a 20 ms tick.
inline workflow::ExecutorOptions TestExecutorOptions(const std::string& state_dir,
                                                     const std::string& name,
                                                     const workflow::Resources& capacity) {
  workflow::ExecutorOptions o;
  o.state_dir = state_dir;
  o.host_name = name;
  o.engine.capacity = capacity;
  o.tick = std::chrono::milliseconds(20);
  return o;
}

// The backends of a test host: `backend` as "process", nothing else.
inline workflow::BackendLookup ProcessOnly(plugin::Backend* backend) {
  return [backend](const std::string& n) -> plugin::Backend* {
    return n == "process" ? backend : nullptr;
  };
}

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_PROCESS_BACKEND_H_
