// HostedBackend: augurd's side of plugin isolation. A Backend whose every call goes, as a
// protobuf Request over a local ZeroMQ socket, to an augur-plugin-host process that runs the
// plugin; see plugin_host.h for the other side.
//
// Failure handling. When a call's reply does not come within plugins.call_timeout (plus the
// poll's own wait), when the host process dies (seen at once through a pidfd), or when the
// plugin returns garbage (a fault from the host, or a reply that fails validation here), the
// backend:
//   1. kills the host (SIGKILL) and reaps it, and logs why, with how the host ended;
//   2. returns an error to that caller (Unavailable, or Corruption for garbage) and marks
//      itself unhealthy; calls made while it is down fail fast with Unavailable;
//   3. restarts the host after a backoff that doubles from backoff_initial to backoff_max
//      (reset once a host has stayed up for backoff_max);
//   4. calls recover() with the handles it persisted (HandleStore), so instances and tasks
//      that outlived the host are re-attached.
// A plugin the host refuses to load (ABI mismatch, no entry symbol) is not restarted.
//
// Thread safety: all methods may be called concurrently; each call uses its own socket, and
// the host serves several calls at once.
#ifndef AUGUR_PLUGIN_PLUGIN_CLIENT_H_
#define AUGUR_PLUGIN_PLUGIN_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "augur/status.h"
#include "plugin/backend.h"

namespace augur::plugin {

struct PluginClientOptions {
  std::string name;         // the backend's name: plugins.enabled entry
  std::string plugin_path;  // <plugins.dir>/augur-<name>.so
  std::string host_path;    // the augur-plugin-host executable
  // Private directory (0700) for the ipc:// socket; the socket path must fit sun_path.
  std::string runtime_dir;
  // plugins.state_dir: <name>.handles is kept there and <name>/ is the plugin's own state
  // directory. Empty: handles in memory only and no plugin state dir (tests, the checker).
  std::string state_dir;
  KeyValues config;  // plugins.config.<name>
  std::chrono::milliseconds call_timeout{10'000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{30'000};
  int host_threads = 4;
};

enum class HostState {
  kStarting,    // first host not yet answering
  kUp,          // host loaded the plugin and recovered
  kRestarting,  // host lost; a new one starts after the backoff
  kRefused,     // the plugin cannot be loaded at all; not retried
  kStopped,
};
std::string_view HostStateName(HostState s);

// Why a backend is not healthy, as a word from a fixed set: short and bounded, so it can be a
// label value (augur_backend_health{backend,reason}) without making a series per message.
// NOTE: the names are part of the exported metrics; add, do not rename.
enum class HealthReason {
  kOk,               // "ok": healthy
  kUnchecked,        // "unchecked": host up, describe() not asked yet
  kHostDown,         // "host_down": host starting, restarting or stopped
  kRefused,          // "refused": the plugin cannot be loaded; not retried
  kTimeout,          // "describe_timeout": describe() did not answer within call_timeout
  kContract,         // "contract_violation": describe() answered something the ABI forbids
  kFailed,           // "describe_failed": describe() returned an error
  kPluginUnhealthy,  // "plugin_unhealthy": describe() answered healthy = 0
};
inline constexpr HealthReason kAllHealthReasons[] = {
    HealthReason::kOk,      HealthReason::kUnchecked,      HealthReason::kHostDown,
    HealthReason::kRefused, HealthReason::kTimeout,        HealthReason::kContract,
    HealthReason::kFailed,  HealthReason::kPluginUnhealthy};
std::string_view HealthReasonName(HealthReason r);

struct BackendHealth {
  std::string name;
  HostState state = HostState::kStarting;
  // The host process is up and has loaded the plugin (state == kUp). Says nothing about
  // whether the plugin answers: see `healthy`.
  bool up = false;
  uint64_t restarts = 0;        // hosts started after the first
  std::string last_error;       // why the last host was lost or refused ("" if never)
  std::chrono::milliseconds backoff{0};  // the wait before the pending/last restart
  int host_pid = 0;             // 0 when no host runs
  uint64_t recovered_instances = 0;  // from the last recover(): still there
  uint64_t lost_instances = 0;       // ... and gone
  // The plugin ABI the loaded plugin declares (from the host's hello); 0.0 before it loaded.
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;

  // End-to-end health, from PluginManager's periodic describe() (HostedBackend::Health()
  // alone leaves these at "unchecked"): true when the host is up AND the last describe()
  // answered in time with a valid reply AND the plugin said healthy. This is what
  // augur_backend_up exports.
  bool healthy = false;
  HealthReason reason = HealthReason::kUnchecked;
  std::string health_detail;  // why not healthy, for a human; "" when healthy
  // When describe() was last asked (system clock); the epoch when never.
  std::chrono::system_clock::time_point last_check{};
  // From the last describe() that answered; zero before one did.
  Resources capacity;
  Resources available;
};

class HostedBackend : public Backend {
 public:
  // Starts the first host and waits (up to call_timeout) for it to load the plugin and
  // recover persisted handles. Returns FailedPrecondition/NotFound when the plugin is
  // refused (the message names the plugin, what it declared and what this agent supports).
  // Any other start failure returns the backend anyway, unhealthy and restarting.
  static Result<std::unique_ptr<HostedBackend>> Start(PluginClientOptions options);
  // Asks the host to destroy() the plugin and exit; kills it after a grace period. Instances
  // are left running for the next agent to recover.
  ~HostedBackend() override;

  const std::string& name() const override;
  Result<BackendInfo> Describe() override;
  Result<Instance> Provision(const AllocRequest& req) override;
  Result<uint32_t> Prewarm(const AllocRequest& shape, uint32_t count) override;
  Result<Resources> Resize(const std::string& instance, const Resources& target) override;
  Result<std::string> Run(const std::string& instance, const Task& task) override;
  Result<TaskStatus> Poll(const std::string& invocation, std::chrono::milliseconds wait) override;
  Status Cancel(const std::string& invocation) override;
  Status Release(const std::string& instance) override;
  Result<RecoverResult> Recover(const std::vector<std::string>& instances,
                                const std::vector<std::string>& invocations) override;

  BackendHealth Health() const;
  // Waits until the host is up (true) or `timeout` passes or it is refused (false).
  bool WaitUntilUp(std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  explicit HostedBackend(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_PLUGIN_CLIENT_H_
