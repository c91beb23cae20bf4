// SystemdNotifier: what augurd tells systemd under a Type=notify unit (sd_notify(3) over
// $NOTIFY_SOCKET, through libsystemd): READY=1 once everything is up, RELOADING=1 ... READY=1
// around a SIGHUP reload, STOPPING=1 on the way out, STATUS= lines for `systemctl status`,
// and WATCHDOG=1 pings from the sampling loop when the unit sets WatchdogSec= (so a loop
// stuck in a collector gets the agent restarted). Without $NOTIFY_SOCKET (run by hand, in
// tests) every call does nothing.
//
// Thread safety: Ping() and the other calls may be made from one thread at a time; augurd
// makes them all from the sampling loop.
#ifndef AUGUR_AGENT_SYSTEMD_NOTIFY_H_
#define AUGUR_AGENT_SYSTEMD_NOTIFY_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace augur::agent {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET and the watchdog settings ($WATCHDOG_USEC, for this pid only) now.
  static SystemdNotifier FromEnvironment();
  // One that never sends (what FromEnvironment gives outside systemd).
  SystemdNotifier() = default;

  bool enabled() const { return enabled_; }
  // The interval WatchdogSec= set, in ns; 0 when the watchdog is off.
  int64_t watchdog_ns() const { return watchdog_ns_; }

  void Ready(std::string_view status);
  // Before re-reading the config; call Ready() when done.
  void Reloading(int64_t monotonic_ns);
  void Stopping(std::string_view status);
  void Status(std::string_view status);
  // Sends WATCHDOG=1 when half the watchdog interval has passed since the last ping (or
  // Ready()); otherwise nothing. `monotonic_ns` is CLOCK_MONOTONIC. True when it pinged.
  bool MaybePingWatchdog(int64_t monotonic_ns);

 private:
  void Send(const std::string& state);

  bool enabled_ = false;
  int64_t watchdog_ns_ = 0;
  int64_t last_ping_ns_ = INT64_MIN / 2;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_SYSTEMD_NOTIFY_H_
