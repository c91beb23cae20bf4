// PluginManager: the provisioning backends augurd runs, one HostedBackend per name in
// plugins.enabled, loaded from <plugins.dir>/augur-<name>.so.
//
// A plugin that cannot be loaded (missing file, ABI mismatch, no entry symbol) is logged and
// reported by Health() as refused; the others run regardless. Start() itself fails only
// when nothing can run at all (no runtime directory for the sockets).
//
// Thread safety: Health() and Find() may be called from any thread.
#ifndef AUGUR_PLUGIN_PLUGIN_MANAGER_H_
#define AUGUR_PLUGIN_PLUGIN_MANAGER_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
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
  ~PluginManager();  // stops every host, then removes the socket directory

  // One entry per enabled plugin, in plugins.enabled order, refused ones included.
  std::vector<BackendHealth> Health() const;
  // The running backend of that name, or nullptr (unknown or refused). Owned by the manager.
  Backend* Find(std::string_view name) const;
  const std::string& runtime_dir() const { return runtime_dir_; }

 private:
  PluginManager() = default;
  struct Entry {
    std::string name;
    std::unique_ptr<HostedBackend> backend;  // null when refused
    std::string refusal;
  };
  std::vector<Entry> entries_;
  std::string runtime_dir_;
};

// The default augur-plugin-host path: beside /proc/self/exe when there is one there (a build
// tree), else the installed one (AUGUR_DEFAULT_PLUGIN_HOST).
std::string DefaultPluginHostPath();

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_PLUGIN_MANAGER_H_
