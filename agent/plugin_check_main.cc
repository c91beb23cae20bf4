// augur-plugin-check PATH.so: runs the conformance suite (plugin/conformance.h) against a
// backend plugin through a real augur-plugin-host, prints "PASS name", "FAIL name: why" or
// "SKIP name: why" per check and a summary, and exits 1 if any check failed.
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "plugin/abi_loader.h"
#include "plugin/conformance.h"
#include "plugin/plugin_manager.h"

namespace {

// A private directory for the host's socket and the plugin's state, removed at exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = std::filesystem::temp_directory_path().string() + "/augur-plugin-check.XXXXXX";
    if (::mkdtemp(t.data()) != nullptr) path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"augur-plugin-check: conformance checks for an augur backend plugin"};
  std::string path;
  std::string host = augur::plugin::DefaultPluginHostPath();
  std::string template_ref;
  std::vector<std::string> config;
  int timeout_ms = 10'000;
  bool verbose = false;
  std::vector<std::string> o_skip;
  app.add_option("plugin", path, "the plugin shared object (augur-<name>.so)")->required();
  app.add_option("--host", host, "augur-plugin-host to run it in");
  app.add_option("--config", config, "KEY=VALUE handed to the plugin's init(); repeatable");
  app.add_option("--template", template_ref, "template/image reference for provision");
  app.add_option("--timeout-ms", timeout_ms, "per-call timeout")->check(CLI::Range(100, 600'000));
  app.add_option("--skip", o_skip, "a check not to run (reported as SKIP); repeatable");
  app.add_flag("-v,--verbose", verbose, "log what the agent side sees (restarts, recovery)");
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_logger_mt("check");
  logger->set_pattern("  [%l] %v");
  spdlog::set_default_logger(logger);
  // The recover check kills the host on purpose; its error lines would only alarm.
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::off);

  ScratchDir scratch;
  if (scratch.path().empty()) {
    std::fprintf(stderr, "augur-plugin-check: cannot create a temporary directory\n");
    return 2;
  }
  augur::plugin::ConformanceOptions o;
  o.client.name = augur::plugin::PluginNameFromPath(path);
  o.client.plugin_path = std::filesystem::absolute(path).string();
  o.client.host_path = host;
  o.client.runtime_dir = scratch.path();
  o.client.state_dir = scratch.path() + "/state";
  o.client.call_timeout = std::chrono::milliseconds(timeout_ms);
  // A plugin that crashes in every check should still get through the suite quickly.
  o.client.backoff_max = std::chrono::milliseconds(1000);
  for (const std::string& kv : config) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "augur-plugin-check: --config %s: expected KEY=VALUE\n", kv.c_str());
      return 2;
    }
    o.client.config.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  o.template_ref = template_ref;
  o.skip = o_skip;
  int passed = 0, failed = 0, skipped = 0;
  o.on_result = [&](const augur::plugin::CheckResult& r) {
    using Outcome = augur::plugin::CheckResult::Outcome;
    switch (r.outcome) {
      case Outcome::kPass:
        ++passed;
        std::printf("PASS %s%s%s\n", r.name.c_str(), r.detail.empty() ? "" : ": ", r.detail.c_str());
        break;
      case Outcome::kFail:
        ++failed;
        std::printf("FAIL %s: %s\n", r.name.c_str(), r.detail.c_str());
        break;
      case Outcome::kSkip:
        ++skipped;
        std::printf("SKIP %s: %s\n", r.name.c_str(), r.detail.c_str());
        break;
    }
    std::fflush(stdout);
  };
  std::printf("augur-plugin-check %s (backend '%s')\n", o.client.plugin_path.c_str(),
              o.client.name.c_str());
  augur::plugin::RunConformance(o);
  std::printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}
