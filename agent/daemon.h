// Daemon: augurd's wiring. It owns the shared-memory writer, the collectors (eBPF where they
// load, procfs always), the sampling loop and the /metrics server.
//
// With plugins.enabled set it also runs the provisioning backends (plugin/plugin_manager.h)
// and writes augur_backend_up{backend} (1 when the backend works end to end: its last
// describe() answered healthy), augur_backend_health{backend,reason} and
// augur_backend_restarts_total{backend} each sample.
//
// Run() samples every telemetry.interval until Stop() is called or a stop signal arrives
// (with DaemonOptions::handle_signals), then detaches the eBPF programs, marks the segment
// stale and removes it from /dev/shm.
//
// Signals (with handle_signals): SIGTERM, SIGINT, SIGQUIT and every other signal whose
// default would end the process stop it cleanly, logging which one; SIGHUP re-reads the
// config file, applies what can change live (log.level) and names the changed keys that
// need a restart; SIGUSR1 logs a status line; SIGUSR2 is logged and ignored; SIGPIPE and
// SIGXFSZ are ignored. A crash signal (SIGSEGV, SIGABRT, ...) is logged and marks the
// segment stale before the process dies with it. Readers tell a SIGKILLed agent from a live
// one by its heartbeat and pid (telemetry/shm_store.h).
//
// Thread safety: Stop() may be called from any thread; everything else from one thread.
#ifndef AUGUR_AGENT_DAEMON_H_
#define AUGUR_AGENT_DAEMON_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "agent/config.h"
#include "augur/status.h"

namespace augur::plugin {
class PluginManager;
}

namespace augur::agent {

struct DaemonOptions {
  Config config;
  // Installs SIGINT/SIGTERM handlers that make Run() stop cleanly. Tests leave it off and
  // call Stop().
  bool handle_signals = false;
  // augur-plugin-host to start for each plugin; empty: the one beside this executable.
  std::string plugin_host_path;
  // The file `config` came from, re-read on SIGHUP; empty: built-in defaults.
  std::string config_path;
  // Tell systemd when Run() is ready, reloading and stopping, and ping its watchdog from
  // the sampling loop (agent/systemd_notify.h); a no-op without $NOTIFY_SOCKET.
  bool notify_systemd = false;
};

class Daemon {
 public:
  // Creates the segment (AlreadyExists when another agent holds it), loads collectors
  // (eBPF per telemetry.ebpf: `auto` falls back to procfs and logs the reason once, `on`
  // makes any eBPF failure an error here), starts /metrics. Startup errors are returned.
  static Result<std::unique_ptr<Daemon>> Start(const DaemonOptions& options);
  ~Daemon();

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Samples until stopped. Returns OK on a clean stop.
  Status Run();
  // Asks Run() to return after the current sample.
  void Stop();

  // One sampling pass (Run() calls it every interval). Public for tests and benchmarks.
  void SampleOnce();

  // "bpf" or "procfs" per collector, for logs and tests.
  std::vector<std::string> CollectorNames() const;
  int metrics_port() const;
  // The provisioning backends (plugins.enabled), or nullptr when none are enabled or the
  // manager could not start.
  const plugin::PluginManager* plugins() const;

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_DAEMON_H_
