// augur-plugin-host: runs one provisioning-backend plugin on behalf of augurd, which starts
// it, talks to it over --endpoint, and kills it if the plugin crashes, hangs or returns
// garbage. Not meant to be started by hand; see docs/PLUGINS.md ("Isolation").
#include <signal.h>

#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "plugin/plugin_host.h"

int main(int argc, char** argv) {
  CLI::App app{"augur-plugin-host: runs one augur backend plugin for augurd"};
  augur::plugin::PluginHostOptions options;
  std::string name = "?";
  app.add_option("--endpoint", options.endpoint, "ZeroMQ endpoint to bind (ipc://...)")
      ->required();
  app.add_option("--threads", options.threads, "calls served at once")->check(CLI::Range(1, 64));
  app.add_option("--name", name, "backend name, for log lines");
  CLI11_PARSE(app, argc, argv);

  // A plugin writing to a closed pipe must get EPIPE, not kill the host.
  ::signal(SIGPIPE, SIG_IGN);
  // Lines go to stderr, which is augurd's (journald under systemd), tagged with the backend.
  auto logger = spdlog::stderr_logger_mt("plugin-host");
  logger->set_pattern("augur-plugin-host[" + name + "] %l: %v");
  spdlog::set_default_logger(logger);
  return augur::plugin::RunPluginHost(options);
}
