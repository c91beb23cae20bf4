// PluginManager: the provisioning backends augurd runs, one HostedBackend per name in
// plugins.enabled, loaded from <plugins.dir>/augur-<name>.so.
//
// A plugin that cannot be loaded (missing file, ABI mismatch, no entry symbol) is logged and
// reported by Health() as refused; the others run regardless. Start() itself fails only
// when nothing can run at all (no runtime directory for the sockets).
//
// Health probing. A host that is up is not a backend that works: one prober thread per
// running backend asks describe() at once and then every `health_interval`, with the usual
// call_timeout. A describe() that hangs or answers garbage makes HostedBackend kill and
// restart the host under its backoff, as any call would; a plugin that answers healthy = 0
// is reported down with its health_detail, its host left alone. Health() returns the last
// results and never calls a plugin, so it is cheap enough for the sampling loop.
//
// Socket directory. Each manager makes <parent>/augur-plugins.<pid>.XXXXXX (0700) and
// removes it when destroyed. An agent killed with SIGKILL cannot, so Start() first removes
// the directories of that form, under the same parent, left by dead processes of this uid.
//
// Thread safety: Health() and Find() may be called from any thread.
#ifndef AUGUR_PLUGIN_PLUGIN_MANAGER_H_
#define AUGUR_PLUGIN_PLUGIN_MANAGER_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "augur/status.h"
#include "plugin/backend.h"
#include "plugin/plugin_client.h"

namespace augur::plugin {

struct PluginManagerOptions {
  std::string dir;                    // plugins.dir
  std::vector<std::string> enabled;   // plugins.enabled
  std::string state_dir;              // plugins.state_dir
  std::chrono::milliseconds call_timeout{10'000};
  std::chrono::milliseconds health_interval{10'000};  // plugins.health_interval
  std::map<std::string, KeyValues> config;  // plugins.config
  // augur-plugin-host; empty: DefaultPluginHostPath().
  std::string host_path;
  // Parent of the private socket directory; empty: $RUNTIME_DIRECTORY (systemd's
  // RuntimeDirectory=), else $XDG_RUNTIME_DIR, else /tmp.
  std::string runtime_parent;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{30'000};
};

class PluginManager {
 public:
  static Result<std::unique_ptr<PluginManager>> Start(const PluginManagerOptions& options);
  // Stops the probers (waiting, at worst, for a describe() in flight: call_timeout), then
  // every host, then removes the socket directory.
  ~PluginManager();

  // One entry per enabled plugin, in plugins.enabled order, refused ones included, with the
  // last probe's verdict (BackendHealth::healthy and what goes with it). Does not block on
  // any plugin.
  std::vector<BackendHealth> Health() const;
  // The running backend of that name, or nullptr (unknown or refused). Owned by the manager.
  Backend* Find(std::string_view name) const;
  const std::string& runtime_dir() const { return runtime_dir_; }

 private:
  PluginManager() = default;
  // The last describe() of one backend.
  struct Probe {
    bool checked = false;
    HealthReason reason = HealthReason::kUnchecked;
    std::string detail;
    std::chrono::system_clock::time_point when{};
    Resources capacity;
    Resources available;
  };
  struct Entry {
    std::string name;
    std::unique_ptr<HostedBackend> backend;  // null when refused
    std::string refusal;
    Probe probe;  // guarded by mu_
    std::thread prober;
  };
  void ProbeLoop(Entry* e);

  // Not resized after Start(): the probers hold pointers into it.
  std::vector<Entry> entries_;
  std::string runtime_dir_;
  std::chrono::milliseconds health_interval_{10'000};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
};

// Removes <parent>/augur-plugins.<pid>.* directories owned by this uid whose <pid> is not a
// live process; returns how many. Never follows a symlink (parent may be /tmp). Exposed for
// tests; Start() calls it.
int RemoveStaleRuntimeDirs(const std::string& parent);

// The default augur-plugin-host path: beside /proc/self/exe when there is one there (a build
// tree), else the installed one (AUGUR_DEFAULT_PLUGIN_HOST).
std::string DefaultPluginHostPath();

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_PLUGIN_MANAGER_H_
