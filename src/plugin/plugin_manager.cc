#include "plugin/plugin_manager.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "augur_paths.h"

namespace augur::plugin {

std::string DefaultPluginHostPath() {
  // Beside the executable in a build tree (build/agent/); the installed one lives in
  // libexec (cmake/AugurInstall.cmake), where people do not run it by hand.
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const std::string beside = (self.parent_path() / "augur-plugin-host").string();
    if (::access(beside.c_str(), X_OK) == 0) return beside;
  }
  return AUGUR_DEFAULT_PLUGIN_HOST;
}

Result<std::unique_ptr<PluginManager>> PluginManager::Start(const PluginManagerOptions& options) {
  std::unique_ptr<PluginManager> m(new PluginManager());
  std::string parent = options.runtime_parent;
  for (const char* var : {"RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"}) {
    if (!parent.empty()) break;
    if (const char* v = ::getenv(var); v != nullptr && v[0] == '/') parent = v;
  }
  if (parent.empty()) parent = "/tmp";
  // mkdtemp gives a fresh 0700 directory: no other user can connect to a host's socket.
  std::string tmpl = parent + "/augur-plugins.XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Err(Status::FromErrno("cannot create the plugin socket directory in " + parent, errno));
  }
  m->runtime_dir_ = tmpl;
  const std::string host_path =
      options.host_path.empty() ? DefaultPluginHostPath() : options.host_path;

  for (const std::string& name : options.enabled) {
    PluginClientOptions co;
    co.name = name;
    co.plugin_path = fmt::format("{}/augur-{}.so", options.dir, name);
    co.host_path = host_path;
    co.runtime_dir = m->runtime_dir_;
    co.state_dir = options.state_dir;
    if (auto it = options.config.find(name); it != options.config.end()) co.config = it->second;
    co.call_timeout = options.call_timeout;
    co.backoff_initial = options.backoff_initial;
    co.backoff_max = options.backoff_max;
    auto b = HostedBackend::Start(co);
    Entry e{name, nullptr, ""};
    if (!b) {
      // Logged by the backend already at error level; the agent goes on without it.
      e.refusal = b.error().message();
    } else {
      e.backend = std::move(*b);
      BackendHealth h = e.backend->Health();
      if (h.up) {
        spdlog::info("backend '{}' loaded from {}", name, co.plugin_path);
      } else {
        spdlog::warn("backend '{}' is not up yet ({}): {}", name, HostStateName(h.state),
                     h.last_error);
      }
    }
    m->entries_.push_back(std::move(e));
  }
  return m;
}

PluginManager::~PluginManager() {
  entries_.clear();  // stops the hosts before their sockets' directory goes
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir_, ec);
}

std::vector<BackendHealth> PluginManager::Health() const {
  std::vector<BackendHealth> out;
  for (const Entry& e : entries_) {
    if (e.backend) {
      out.push_back(e.backend->Health());
    } else {
      BackendHealth h;
      h.name = e.name;
      h.state = HostState::kRefused;
      h.last_error = e.refusal;
      out.push_back(std::move(h));
    }
  }
  return out;
}

Backend* PluginManager::Find(std::string_view name) const {
  for (const Entry& e : entries_) {
    if (e.name == name) return e.backend.get();
  }
  return nullptr;
}

}  // namespace augur::plugin
