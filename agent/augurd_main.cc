// augurd: the augur host agent. See README.md and `augurd --help`.
#include <sys/stat.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/journald_sink.h"
#include "augur_paths.h"
#include "plugin/plugin_manager.h"

namespace {
constexpr char kDefaultConfigPath[] = AUGUR_DEFAULT_CONFIG;  // /etc/augur/augur.yaml in the package

void SetUpLogging(const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (augur::agent::StderrIsJournal()) {
    // Under systemd: structured entries with a priority per level and the workflow, stage
    // and shard as fields (agent/journald_sink.h); journald adds the timestamps.
    logger = std::make_shared<spdlog::logger>(
        "augurd", std::make_shared<augur::agent::JournaldSink>("augurd"));
    logger->set_pattern("%v");
    spdlog::register_logger(logger);
  } else {
    logger = spdlog::stderr_color_mt("augurd");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"augurd: measures this host with eBPF into shared memory (see augurd(8))"};
  std::string config_path;
  std::string check_path;
  app.add_option("-c,--config", config_path,
                 std::string("configuration file (default ") + kDefaultConfigPath +
                     ", built-in defaults when absent)");
  app.add_option("--check-config", check_path, "validate FILE, print what is wrong, exit 0 or 1");
  bool print_paths = false;
  app.add_flag("--print-paths", print_paths,
               "print where this build looks for its config, plugins, plugin host and state");
  app.set_version_flag("--version", "augurd " AUGUR_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (print_paths) {
    std::printf("config: %s\nplugins.dir: %s\nplugin_host: %s\nstate_dir: %s\n",
                kDefaultConfigPath, AUGUR_DEFAULT_PLUGIN_DIR,
                augur::plugin::DefaultPluginHostPath().c_str(), AUGUR_DEFAULT_STATE_DIR);
    return 0;
  }

  using augur::agent::Config;
  if (!check_path.empty()) {
    auto cfg = augur::agent::LoadConfigFile(check_path);
    if (!cfg) {
      std::fprintf(stderr, "%s\n", cfg.error().message().c_str());
      return 1;
    }
    // The file is valid; would this host run it?
    if (augur::Status fits = augur::agent::CheckConfigFitsHost(*cfg); !fits.ok()) {
      std::fprintf(stderr, "%s: %s\n", check_path.c_str(), fits.message().c_str());
      return 1;
    }
    std::printf("%s: OK\n", check_path.c_str());
    return 0;
  }

  Config config = augur::agent::DefaultConfig();
  std::string origin = "built-in defaults";
  std::string options_path;  // re-read on SIGHUP
  if (!config_path.empty()) {
    auto cfg = augur::agent::LoadConfigFile(config_path);
    if (!cfg) {
      std::fprintf(stderr, "augurd: %s\n", cfg.error().message().c_str());
      return 1;
    }
    config = *cfg;
    origin = config_path;
    options_path = config_path;
  } else {
    struct stat st;
    if (stat(kDefaultConfigPath, &st) == 0) {
      auto cfg = augur::agent::LoadConfigFile(kDefaultConfigPath);
      if (!cfg) {
        std::fprintf(stderr, "augurd: %s\n", cfg.error().message().c_str());
        return 1;
      }
      config = *cfg;
      origin = kDefaultConfigPath;
      options_path = kDefaultConfigPath;
    }
  }

  SetUpLogging(config.log.level);
  spdlog::info("augurd " AUGUR_VERSION " starting, config from {}", origin);
  augur::agent::DaemonOptions options;
  options.config = config;
  options.handle_signals = true;
  options.config_path = options_path;
  options.notify_systemd = true;
  auto daemon = augur::agent::Daemon::Start(options);
  if (!daemon) {
    spdlog::error("cannot start: {}", daemon.error().message());
    return 1;
  }
  augur::Status st = (*daemon)->Run();
  daemon->reset();  // detach eBPF, mark the segment stale, before saying we stopped
  if (!st.ok()) {
    spdlog::error("stopped with error: {}", st.message());
    return 1;
  }
  spdlog::info("stopped cleanly");
  return 0;
}
