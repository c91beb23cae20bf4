// Daemon: augurd's wiring. It owns the shared-memory writer, the collectors (eBPF where they
// load, procfs always), the sampling loop and the /metrics server.
//
// Run() samples every telemetry.interval until Stop() is called or SIGINT/SIGTERM arrives
// (when HandleSignals() was used), then detaches the eBPF programs and marks the segment
// stale.
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

namespace augur::agent {

struct DaemonOptions {
  Config config;
  // Blocks SIGINT/SIGTERM in every thread and waits for them in Run(). Tests leave it off and
  // call Stop().
  bool handle_signals = false;
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

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_DAEMON_H_
