#include "plugin/plugin_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "augur_paths.h"

namespace augur::plugin {
namespace {

constexpr std::string_view kRuntimePrefix = "augur-plugins.";

// The reason a describe() error (or the error a host was lost to) stands for. The messages
// come from HostedBackend: "no reply within" is its timeout, "ABI contract" its word for a
// reply the contract forbids (which it also returns as Corruption).
HealthReason Classify(const std::string& message, bool corruption) {
  if (message.find("no reply within") != std::string::npos) return HealthReason::kTimeout;
  if (corruption || message.find("ABI contract") != std::string::npos) {
    return HealthReason::kContract;
  }
  return HealthReason::kFailed;
}

std::string_view ReasonPhrase(HealthReason r) {
  switch (r) {
    case HealthReason::kTimeout: return "describe timed out";
    case HealthReason::kContract: return "describe broke the plugin contract";
    case HealthReason::kFailed: return "describe failed";
    case HealthReason::kPluginUnhealthy: return "plugin reports unhealthy";
    default: return "";
  }
}

// True unless `pid` is certainly not a live process (EPERM: alive, another user's). A
// zombie is dead: an agent killed with SIGKILL stays one until its parent reaps it, which
// may be after systemd has already started the next agent.
bool ProcessAlive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');  // the command name may hold spaces and parens
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace

int RemoveStaleRuntimeDirs(const std::string& parent) {
  int dfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return 0;
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    ::close(dfd);
    return 0;
  }
  std::vector<std::string> stale;
  while (const dirent* ent = ::readdir(d)) {
    std::string_view name(ent->d_name);
    if (!name.starts_with(kRuntimePrefix)) continue;
    // augur-plugins.<pid>.XXXXXX; the older augur-plugins.XXXXXX names no pid: left alone.
    std::string_view rest = name.substr(kRuntimePrefix.size());
    pid_t pid = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
    if (ec != std::errc() || pid <= 0 || ptr == rest.data() + rest.size() || *ptr != '.') continue;
    struct stat st {};
    // Not following symlinks: in a world-writable /tmp anyone can plant one by that name.
    if (::fstatat(dfd, ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (pid == ::getpid() || ProcessAlive(pid)) continue;
    stale.emplace_back(name);
  }
  ::closedir(d);  // closes dfd
  int removed = 0;
  for (const std::string& name : stale) {
    // remove_all does not follow symlinks, and the directory is ours and 0700 in a sticky
    // /tmp: no other user can swap it or anything in it between the check and here.
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(parent) / name, ec);
    if (ec) {
      spdlog::warn("cannot remove stale plugin socket directory {}/{}: {}", parent, name,
                   ec.message());
    } else {
      spdlog::info("removed plugin socket directory {}/{} left by a dead agent", parent, name);
      ++removed;
    }
  }
  return removed;
}

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
  // An agent killed with SIGKILL left its directory (its hosts died with it): the pid in
  // the name says whose it was.
  RemoveStaleRuntimeDirs(parent);
  // mkdtemp gives a fresh 0700 directory: no other user can connect to a host's socket.
  std::string tmpl = fmt::format("{}/{}{}.XXXXXX", parent, kRuntimePrefix, ::getpid());
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Err(Status::FromErrno("cannot create the plugin socket directory in " + parent, errno));
  }
  m->runtime_dir_ = tmpl;
  m->health_interval_ = options.health_interval;
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
    Entry e;
    e.name = name;
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
  // Started once entries_ is complete: the probers point into it.
  for (Entry& e : m->entries_) {
    if (e.backend) e.prober = std::thread([mp = m.get(), ep = &e] { mp->ProbeLoop(ep); });
  }
  return m;
}

void PluginManager::ProbeLoop(Entry* e) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    Probe p;
    p.checked = true;
    p.when = std::chrono::system_clock::now();
    // Blocks up to call_timeout; a hang or garbage makes the backend restart its host.
    Result<BackendInfo> info = e->backend->Describe();
    if (!info) {
      p.reason = Classify(info.error().message(), info.error().IsCorruption());
      p.detail = fmt::format("{}: {}", ReasonPhrase(p.reason), info.error().message());
    } else {
      p.capacity = info->capacity;
      p.available = info->available;
      if (info->healthy) {
        p.reason = HealthReason::kOk;
      } else {
        p.reason = HealthReason::kPluginUnhealthy;
        p.detail =
            fmt::format("{}: {}", ReasonPhrase(p.reason),
                        info->health_detail.empty() ? "(no detail given)" : info->health_detail);
      }
    }
    lock.lock();
    // Logged on change only: a probe every few seconds must not bury the journal.
    if (p.reason != e->probe.reason && (e->probe.checked || p.reason != HealthReason::kOk)) {
      if (p.reason == HealthReason::kOk) {
        spdlog::info("backend '{}' healthy again", e->name);
      } else {
        spdlog::warn("backend '{}' unhealthy: {}", e->name, p.detail);
      }
    }
    e->probe = std::move(p);
    cv_.wait_for(lock, health_interval_, [this] { return stopping_; });
  }
}

PluginManager::~PluginManager() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (Entry& e : entries_) {
    if (e.prober.joinable()) e.prober.join();
  }
  entries_.clear();  // stops the hosts before their sockets' directory goes
  std::error_code ec;
  std::filesystem::remove_all(runtime_dir_, ec);
}

std::vector<BackendHealth> PluginManager::Health() const {
  std::vector<BackendHealth> out;
  for (const Entry& e : entries_) {
    if (e.backend) {
      BackendHealth h = e.backend->Health();
      std::lock_guard<std::mutex> lock(mu_);
      const Probe& p = e.probe;
      h.last_check = p.when;
      h.capacity = p.capacity;
      h.available = p.available;
      if (!h.up) {
        // Down: why the last host was lost (a describe() timeout, garbage, a crash), as
        // HostedBackend::Health() says, classified like a probe's error.
        if (!h.last_error.empty() && h.state != HostState::kRefused) {
          HealthReason r = Classify(h.last_error, /*corruption=*/false);
          if (r != HealthReason::kFailed) {
            h.reason = r;
            h.health_detail = fmt::format("{}; {}", ReasonPhrase(r), h.health_detail);
          }
        }
      } else if (p.checked) {
        h.reason = p.reason;
        h.health_detail = p.detail;
        h.healthy = p.reason == HealthReason::kOk;
      }
      out.push_back(std::move(h));
    } else {
      BackendHealth h;
      h.name = e.name;
      h.state = HostState::kRefused;
      h.last_error = e.refusal;
      h.reason = HealthReason::kRefused;
      h.health_detail = "plugin refused: " + e.refusal;
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
