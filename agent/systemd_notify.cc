#include "agent/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <cstdlib>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace augur::agent {

SystemdNotifier SystemdNotifier::FromEnvironment() {
  SystemdNotifier n;
  const char* socket = std::getenv("NOTIFY_SOCKET");
  n.enabled_ = socket != nullptr && socket[0] != '\0';
  if (!n.enabled_) return n;
  uint64_t usec = 0;
  // > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID (if set) is this process: the
  // plugin hosts inherit the variables but are not the ones systemd watches.
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0) {
    n.watchdog_ns_ = int64_t(usec) * 1000;
  }
  return n;
}

void SystemdNotifier::Send(const std::string& state) {
  if (!enabled_) return;
  // sd_notify does not retry; a lost message shows up as a start timeout or a watchdog
  // kill, both of which systemd reports. Logged at debug so the cause can be found.
  if (int rc = sd_notify(/*unset_environment=*/0, state.c_str()); rc < 0) {
    spdlog::debug("sd_notify({}) failed: {}", state, -rc);
  }
}

void SystemdNotifier::Ready(std::string_view status) {
  Send(fmt::format("READY=1\nSTATUS={}", status));
  last_ping_ns_ = INT64_MIN / 2;  // the next MaybePingWatchdog pings at once
}

void SystemdNotifier::Reloading(int64_t monotonic_ns) {
  // MONOTONIC_USEC is what Type=notify-reload (systemd >= 253) requires; older ones ignore it.
  Send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
                   monotonic_ns / 1000));
}

void SystemdNotifier::Stopping(std::string_view status) {
  Send(fmt::format("STOPPING=1\nSTATUS={}", status));
}

void SystemdNotifier::Status(std::string_view status) { Send(fmt::format("STATUS={}", status)); }

bool SystemdNotifier::MaybePingWatchdog(int64_t monotonic_ns) {
  if (!enabled_ || watchdog_ns_ <= 0) return false;
  // Half the interval, as sd_watchdog_enabled(3) advises: one late loop does not kill us.
  if (monotonic_ns - last_ping_ns_ < watchdog_ns_ / 2) return false;
  Send("WATCHDOG=1");
  last_ping_ns_ = monotonic_ns;
  return true;
}

}  // namespace augur::agent
