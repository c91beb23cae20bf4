#include "agent/doctor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <linux/bpf.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "agent/control.pb.h"
#include "agent/control_client.h"
#include "mesh/authorized_keys.h"
#include "mesh/keys.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/shm_layout.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

// Capability bit numbers (linux/capability.h), spelled out because glibc's headers do not
// all carry CAP_BPF and CAP_PERFMON (Linux 5.8).
constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

DoctorCheck Make(std::string name, CheckState state, std::string summary, std::string fix = "") {
  DoctorCheck c;
  c.name = std::move(name);
  c.state = state;
  c.summary = std::move(summary);
  c.fix = std::move(fix);
  return c;
}

// The severity of an eBPF prerequisite that is missing, by telemetry.ebpf.
CheckState EbpfSeverity(EbpfMode mode) {
  return mode == EbpfMode::kOn ? CheckState::kFail : CheckState::kWarn;
}

std::string StatusField(pid_t pid, std::string_view field) {
  const std::string path = pid == 0 ? "/proc/self/status" : fmt::format("/proc/{}/status", pid);
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field) && line.size() > field.size() && line[field.size()] == ':') {
      return line.substr(field.size() + 1);
    }
  }
  return {};
}

bool HasCap(uint64_t caps, int cap) { return (caps >> cap) & 1u; }
bool CanTrace(uint64_t caps) {
  return HasCap(caps, kCapSysAdmin) || (HasCap(caps, kCapBpf) && HasCap(caps, kCapPerfmon));
}

// Loads "r0 = 0; exit" as a tracepoint program and closes it: the same permission check
// (bpf_capable + perfmon_capable, lockdown) the eBPF collectors' programs meet.
Status TryLoadTrivialProgram() {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  static const char kLicense[] = "GPL";
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_TRACEPOINT;
  attr.insn_cnt = 2;
  attr.insns = reinterpret_cast<uint64_t>(insns);
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  const long fd = ::syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (fd < 0) return Status::FromErrno("bpf(BPF_PROG_LOAD)", errno);
  ::close(static_cast<int>(fd));
  return Status::OK();
}

std::string ModeText(mode_t mode) { return fmt::format("{:04o}", mode & 07777); }

std::string UserName(uid_t uid) {
  if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
  return std::to_string(uid);
}

std::string GroupName(gid_t gid) {
  if (const group* gr = ::getgrgid(gid)) return gr->gr_name;
  return std::to_string(gid);
}

bool InGroup(gid_t gid) {
  if (::getegid() == gid) return true;
  const int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  const int got = ::getgroups(n, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

// Connects to host:port within `timeout`. OK, or why not.
Status TcpConnect(const std::string& host, uint16_t port, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Status::NotFound(fmt::format("cannot resolve {}: {}", host, ::gai_strerror(rc)));
  }
  Status last = Status::Unavailable("no address");
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last = Status::FromErrno("socket", errno);
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc == 0) {
        ::close(fd);
        last = Status::Unavailable(fmt::format("no answer within {}ms", timeout.count()));
        continue;
      }
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    const int err = errno;
    ::close(fd);
    if (rc == 0) {
      ::freeaddrinfo(res);
      return Status::OK();
    }
    last = Status::Unavailable(std::strerror(err));
  }
  ::freeaddrinfo(res);
  return last;
}

}  // namespace

std::string_view CheckStateName(CheckState s) {
  switch (s) {
    case CheckState::kOk:
      return "ok";
    case CheckState::kWarn:
      return "warn";
    case CheckState::kFail:
      return "fail";
    case CheckState::kSkip:
      return "skip";
  }
  return "?";
}

Result<uint64_t> ReadEffectiveCaps(pid_t pid) {
  const std::string text = StatusField(pid, "CapEff");
  uint64_t caps = 0;
  std::istringstream in(text);
  if (text.empty() || !(in >> std::hex >> caps)) {
    return Err(Status::NotFound(
        fmt::format("no CapEff in /proc/{}/status", pid == 0 ? "self" : std::to_string(pid))));
  }
  return caps;
}

Result<uid_t> ReadEffectiveUid(pid_t pid) {
  // "Uid:\treal\teffective\tsaved\tfs"
  std::istringstream in(StatusField(pid, "Uid"));
  uid_t real = 0, effective = 0;
  if (!(in >> real >> effective)) {
    return Err(Status::NotFound(fmt::format("no Uid in /proc/{}/status", pid)));
  }
  return effective;
}

DoctorCheck CheckBtf(const std::string& btf_path, EbpfMode mode) {
  if (mode == EbpfMode::kOff) {
    return Make("btf", CheckState::kSkip, "telemetry.ebpf is off: eBPF is not used");
  }
  struct stat st {};
  if (::stat(btf_path.c_str(), &st) != 0) {
    return Make("btf", EbpfSeverity(mode),
                fmt::format("no kernel BTF at {} ({}): the eBPF collectors cannot load{}", btf_path,
                            std::strerror(errno),
                            mode == EbpfMode::kAuto ? ", augurd collects from procfs" : ""),
                "run a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's linux-image "
                "packages are), or set telemetry.ebpf: off to use procfs only");
  }
  if (::access(btf_path.c_str(), R_OK) != 0) {
    return Make("btf", EbpfSeverity(mode),
                fmt::format("{} exists but cannot be read: {}", btf_path, std::strerror(errno)),
                "run augurd (and this check) as root, or with CAP_BPF and CAP_PERFMON");
  }
  return Make("btf", CheckState::kOk,
              fmt::format("kernel BTF at {} ({} KiB)", btf_path, st.st_size / 1024));
}

DoctorCheck CheckBpfPrivilege(EbpfMode mode, const AgentProcess& agent, int agent_bpf_series) {
  if (mode == EbpfMode::kOff) {
    return Make("bpf", CheckState::kSkip, "telemetry.ebpf is off: eBPF is not used");
  }
  DoctorCheck c = Make("bpf", CheckState::kOk, "");
  const Status load = TryLoadTrivialProgram();
  Result<uint64_t> self = ReadEffectiveCaps(0);
  c.details.push_back(load.ok() ? "this process can load a tracing program"
                                : "this process cannot load a tracing program: " + load.message());
  if (agent.pid == 0) {
    if (load.ok()) {
      c.summary =
          "a trivial tracing program loads (augurd not running: its own "
          "capabilities not checked)";
      return c;
    }
    c.state = EbpfSeverity(mode);
    const bool lacking = self && !CanTrace(*self);
    c.summary = lacking ? "this process lacks CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN); run "
                          "doctor as root to check what augurd will get"
                        : "loading a trivial tracing program fails: " + load.message();
    c.fix = lacking ? "run `sudo augurctl doctor`; augurd needs CAP_BPF and CAP_PERFMON (or "
                      "root) for eBPF, else set telemetry.ebpf: off"
                    : "check kernel lockdown (/sys/kernel/security/lockdown) and "
                      "kernel.unprivileged_bpf_disabled; or set telemetry.ebpf: off";
    return c;
  }
  Result<uint64_t> caps = ReadEffectiveCaps(agent.pid);
  if (caps) {
    c.details.push_back(fmt::format("augurd (pid {}) {} CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN",
                                    agent.pid, CanTrace(*caps) ? "holds" : "lacks"));
  }
  if (agent_bpf_series >= 0) {
    c.details.push_back(fmt::format("augurd writes {} series from eBPF", agent_bpf_series));
  }
  if (caps && !CanTrace(*caps)) {
    c.state = EbpfSeverity(mode);
    c.summary = fmt::format(
        "augurd (pid {}) lacks CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): "
        "it collects from procfs",
        agent.pid);
    c.fix =
        "give the service AmbientCapabilities=CAP_BPF CAP_PERFMON (or run it as root), or "
        "set telemetry.ebpf: off";
    return c;
  }
  if (agent_bpf_series == 0) {
    c.state = EbpfSeverity(mode);
    c.summary =
        "augurd holds the capabilities but writes no eBPF series: its collectors did "
        "not load";
    c.fix = "read why in augurd's log (journalctl -u augurd | grep eBPF) at its start";
    return c;
  }
  c.summary = agent_bpf_series > 0
                  ? fmt::format("augurd runs eBPF collectors ({} series)", agent_bpf_series)
                  : "augurd holds the capabilities eBPF needs";
  return c;
}

DoctorCheck CheckCgroups(const std::string& mountinfo, const std::string& root_prefix) {
  auto fs = telemetry::CgroupFs::Discover(mountinfo, root_prefix);
  if (!fs) {
    return Make("cgroups", CheckState::kFail, "cannot read the mounts: " + fs.error().message(),
                "mount /proc (augurd reads /proc/self/mountinfo)");
  }
  bool v1 = false, v2 = false;
  DoctorCheck c = Make("cgroups", CheckState::kOk, "");
  for (const telemetry::CgroupMount& m : fs->mounts()) {
    (m.version == 1 ? v1 : v2) = true;
    c.details.push_back(fmt::format("v{} {}: {}", m.version, m.mount_point,
                                    m.controllers.empty()
                                        ? std::string("(no controllers)")
                                        : fmt::format("{}", fmt::join(m.controllers, " "))));
  }
  const std::string_view kind = v1 && v2 ? "hybrid (v1 controllers and a v2 tree)"
                                : v2     ? "v2 (unified)"
                                : v1     ? "v1"
                                         : "none";
  std::vector<std::string> where;
  std::vector<std::string> missing;
  for (std::string_view ctl : {"cpu", "memory"}) {
    const telemetry::CgroupMount* m = fs->ForController(ctl);
    if (m == nullptr) {
      missing.emplace_back(ctl);
    } else {
      where.push_back(fmt::format("{} on v{} {}", ctl, m->version, m->mount_point));
    }
  }
  if (!v1 && !v2) {
    c.state = CheckState::kFail;
    c.summary = "no cgroup hierarchy is mounted";
    c.fix = "mount cgroup2 on /sys/fs/cgroup (systemd does at boot)";
    return c;
  }
  if (!missing.empty()) {
    c.state = CheckState::kFail;
    c.summary = fmt::format("cgroups {}: no hierarchy offers {}", kind, fmt::join(missing, ", "));
    c.fix = v2 && !v1 ? "enable the controllers in the parent's cgroup.subtree_control (echo "
                        "+cpu +memory > /sys/fs/cgroup/cgroup.subtree_control)"
                      : "boot with the controllers enabled (cgroup_enable=memory on the kernel "
                        "command line)";
    return c;
  }
  c.summary = fmt::format("cgroups {}; {}", kind, fmt::join(where, ", "));
  return c;
}

DoctorCheck CheckShm(const std::string& shm_name, std::chrono::milliseconds interval) {
  auto reader = telemetry::ShmReader::Open(shm_name);
  if (!reader) {
    if (reader.error().IsNotFound()) {
      return Make("shm", CheckState::kFail,
                  fmt::format("no segment /dev/shm/{}: augurd is not running (or runs with "
                              "another telemetry.shm_name)",
                              shm_name),
                  "start it (systemctl start augurd) and read why it stopped: journalctl -u "
                  "augurd");
    }
    return Make("shm", CheckState::kFail,
                fmt::format("/dev/shm/{} is not a segment this build reads: {}", shm_name,
                            reader.error().message()),
                fmt::format("restart augurd so that it makes a new one (layout version {}); an "
                            "older augurctl or augurd left it",
                            telemetry::shm::kLayoutVersion));
  }
  const telemetry::SegmentInfo info = (*reader)->Info();
  DoctorCheck c = Make("shm", CheckState::kOk, "");
  c.details.push_back(fmt::format("layout version {}, generation {}, {} of {} series, {} points",
                                  info.layout_version, info.generation, info.series_count,
                                  info.max_series, info.points_written));
  if (info.stale) {
    c.state = CheckState::kFail;
    c.summary = fmt::format("/dev/shm/{}: writer pid {} is {}", shm_name, info.writer_pid,
                            telemetry::WriterStateName(info.writer_state));
    c.fix = info.writer_state == telemetry::WriterState::kStalled
                ? "augurd is alive but not sampling: look at journalctl -u augurd, then "
                  "systemctl restart augurd"
                : "start augurd (systemctl start augurd) and read why it stopped: journalctl "
                  "-u augurd";
    return c;
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const double age_s = info.heartbeat_ns > 0 ? (now - info.heartbeat_ns) / 1e9 : -1;
  const double limit_s = 3.0 * static_cast<double>(interval.count()) / 1000.0;
  if (age_s > limit_s) {
    c.state = CheckState::kFail;
    c.summary = fmt::format(
        "/dev/shm/{}: last heartbeat {:.1f}s ago, more than 3 x "
        "telemetry.interval",
        shm_name, age_s);
    c.fix =
        "augurd is alive but not sampling: look at journalctl -u augurd, then systemctl "
        "restart augurd";
    return c;
  }
  c.summary = fmt::format("/dev/shm/{}: written by pid {}, {} series, heartbeat {}", shm_name,
                          info.writer_pid, info.series_count,
                          age_s >= 0 ? fmt::format("{:.1f}s ago", age_s) : "not used");
  return c;
}

DoctorCheck EvaluateBackends(const std::vector<std::string>& enabled, std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) {
    return Make("plugins", CheckState::kFail, "augurd's answer about its backends is not a list",
                "augurctl and augurd are of different versions: restart augurd after upgrading");
  }
  DoctorCheck c = Make("plugins", CheckState::kOk, "");
  std::set<std::string> seen;
  std::vector<std::string> bad;
  for (const nlohmann::json& b : j) {
    if (!b.is_object()) continue;
    const std::string name = b.value("name", "?");
    seen.insert(name);
    const bool healthy = b.value("healthy", false);
    std::string line = fmt::format(
        "{}: {} (host {}, pid {}, {} restarts)", name, healthy ? "healthy" : b.value("reason", "?"),
        b.value("state", "?"), b.value("host_pid", 0), b.value("restarts", 0));
    if (!healthy && !b.value("detail", "").empty()) line += ": " + b.value("detail", "");
    if (!healthy && !b.value("last_error", "").empty()) {
      line += fmt::format(" (last error: {})", b.value("last_error", ""));
    }
    c.details.push_back(line);
    if (!healthy) bad.push_back(name);
  }
  for (const std::string& name : enabled) {
    if (!seen.contains(name)) {
      bad.push_back(name);
      c.details.push_back(name + ": enabled in the config but not run by augurd");
    }
  }
  if (!bad.empty()) {
    c.state = CheckState::kFail;
    c.summary = fmt::format("{} of {} backends not healthy: {}", bad.size(),
                            std::max(seen.size(), enabled.size()), fmt::join(bad, ", "));
    c.fix =
        "read the reason above and journalctl -u augurd; `augur-plugin-check "
        "PLUGIN.so` tells what a plugin gets wrong; a config change needs systemctl restart "
        "augurd";
    return c;
  }
  c.summary = seen.empty()
                  ? "no backends enabled (plugins.enabled is empty)"
                  : fmt::format("{} backends healthy: {}", seen.size(), fmt::join(seen, ", "));
  return c;
}

DoctorCheck CheckPlugins(const std::string& socket, const std::vector<std::string>& enabled,
                         std::chrono::milliseconds timeout) {
  if (enabled.empty()) {
    return Make("plugins", CheckState::kOk, "no backends enabled (plugins.enabled is empty)");
  }
  control::Request req;
  req.mutable_backends();
  auto reply = CallControl(socket, req, timeout);
  if (!reply) {
    return Make("plugins", CheckState::kSkip,
                "could not ask augurd about its plugin hosts: " + reply.error().message());
  }
  if (reply->code() != 0) {
    return Make("plugins", CheckState::kSkip,
                "augurd did not answer about its plugin hosts: " + reply->message() +
                    " (an older augurd?)");
  }
  return EvaluateBackends(enabled, reply->json());
}

DoctorCheck CheckControlSocket(const std::string& path, const std::string& group, uid_t owner_uid,
                               bool agent_running) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (!agent_running && errno == ENOENT) {
      return Make("control", CheckState::kSkip,
                  fmt::format("no control socket at {}: augurd is not running", path));
    }
    return Make("control", CheckState::kFail,
                fmt::format("no control socket at {} ({}): augurd is not running or uses "
                            "another control.socket",
                            path, std::strerror(errno)),
                "start augurd (systemctl start augurd), or pass --socket with its "
                "control.socket");
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Make("control", CheckState::kFail, fmt::format("{} is not a socket", path),
                "remove it and restart augurd, or point control.socket elsewhere");
  }
  DoctorCheck c = Make("control", CheckState::kOk, "");
  const std::string found = fmt::format("{} {}:{} mode {}", path, UserName(st.st_uid),
                                        GroupName(st.st_gid), ModeText(st.st_mode));
  const struct group* gr = ::getgrnam(group.c_str());
  std::vector<std::string> problems;
  std::string fix;
  if (gr == nullptr) {
    problems.push_back(
        fmt::format("the group '{}' does not exist, so only root may use it", group));
    fix = fmt::format(
        "groupadd --system {} (the package does), add the users who may run "
        "augurctl to it, then systemctl restart augurd",
        group);
  } else {
    if (st.st_gid != gr->gr_gid) {
      problems.push_back(fmt::format("group is {}, want {}", GroupName(st.st_gid), group));
    }
    if ((st.st_mode & 0777) != 0660) {
      problems.push_back(fmt::format("mode is {}, want 0660", ModeText(st.st_mode)));
    }
  }
  if (st.st_uid != owner_uid) {
    problems.push_back(fmt::format("owner is {}, want {} (augurd's user)", UserName(st.st_uid),
                                   UserName(owner_uid)));
  }
  if (!problems.empty()) {
    c.state = CheckState::kFail;
    c.summary = fmt::format("{}: {}", found, fmt::join(problems, "; "));
    if (fix.empty()) {
      fix = fmt::format(
          "systemctl restart augurd (it makes the socket {}:{} 0660); if that "
          "does not help, something else rewrites {}",
          UserName(owner_uid), group, path);
    }
    c.fix = fix;
    return c;
  }
  c.summary = found;
  if (::geteuid() != 0 && ::geteuid() != owner_uid && !InGroup(gr->gr_gid)) {
    c.state = CheckState::kWarn;
    c.summary += fmt::format("; you ({}) are not in group {}", UserName(::geteuid()), group);
    c.fix = fmt::format("usermod -aG {} {} and log in again, or use sudo", group,
                        UserName(::geteuid()));
  }
  return c;
}

DoctorCheck CheckDatabase(const std::string& path, const std::string& engine_off) {
  if (!engine_off.empty()) {
    return Make("database", CheckState::kSkip, "the workflow engine is off: " + engine_off);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return Make("database", CheckState::kOk,
                  fmt::format("no {} yet (augurd makes it when the engine first starts)", path));
    }
    return Make("database", CheckState::kFail,
                fmt::format("cannot stat {}: {}", path, std::strerror(errno)),
                "run doctor as root (sudo augurctl doctor)");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  std::string result;
  std::vector<std::string> rows;
  if (rc == SQLITE_OK) {
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt* stmt = nullptr;
    rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &stmt, nullptr);
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
      rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        const unsigned char* text = sqlite3_column_text(stmt, 0);
        if (text != nullptr && rows.size() < 5)
          rows.emplace_back(reinterpret_cast<const char*>(text));
      }
    }
    if (rc != SQLITE_DONE) result = sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
  } else {
    result = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  }
  sqlite3_close(db);
  const std::string kFix =
      "stop augurd, move the file aside (with its -wal and -shm files), try sqlite3 OLD "
      ".recover | sqlite3 NEW, or start with an empty store (history and workflows are lost)";
  if (!result.empty()) {
    return Make("database", CheckState::kFail, fmt::format("{}: cannot be read: {}", path, result),
                kFix);
  }
  if (rows.size() != 1 || rows[0] != "ok") {
    DoctorCheck c = Make("database", CheckState::kFail,
                         fmt::format("{}: PRAGMA quick_check found damage", path), kFix);
    c.details = rows;
    return c;
  }
  return Make("database", CheckState::kOk,
              fmt::format("{}: quick_check ok ({} KiB)", path, st.st_size / 1024));
}

DoctorCheck CheckSeeds(const MeshConfig& mesh, std::chrono::milliseconds timeout) {
  if (!mesh.enabled) return Make("seeds", CheckState::kSkip, "mesh.enabled is false");
  if (mesh.seeds.empty()) {
    return Make("seeds", CheckState::kOk, "no mesh.seeds: this host waits for others to join it");
  }
  Result<mesh::AuthorizedKeys> keys = Err(Status::NotFound(""));
  {
    std::ifstream in(mesh.authorized_keys);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      keys = mesh::AuthorizedKeys::Parse(ss.str(), mesh.authorized_keys);
    }
  }
  const std::string self = mesh.name.empty() ? mesh::DefaultHostName() : mesh.name;
  DoctorCheck c = Make("seeds", CheckState::kOk, "");
  std::vector<std::string> bad;
  size_t checked = 0;
  for (const std::string& text : mesh.seeds) {
    auto seed = ParseMeshSeed(text);
    if (!seed) {
      bad.push_back(text);
      c.details.push_back(fmt::format("{}: {}", text, seed.error().message()));
      continue;
    }
    if (seed->name == self) continue;
    ++checked;
    std::vector<std::string> why;
    if (keys && keys->KeyForName(seed->name) == nullptr) {
      why.push_back(fmt::format("no key for '{}' in {}", seed->name, mesh.authorized_keys));
    }
    const Status st = TcpConnect(seed->at.host, seed->at.port, timeout);
    if (!st.ok()) why.push_back("TCP connect: " + st.message());
    if (why.empty()) {
      c.details.push_back(fmt::format("{}: reachable", text));
    } else {
      bad.push_back(text);
      c.details.push_back(fmt::format("{}: {}", text, fmt::join(why, "; ")));
    }
  }
  if (!bad.empty()) {
    c.state = CheckState::kFail;
    c.summary =
        fmt::format("{} of {} seeds not usable: {}", bad.size(), checked, fmt::join(bad, ", "));
    c.fix =
        "check that augurd runs there with mesh.enabled and listens on that address (ss "
        "-ltn), that no firewall drops the port, and that each seed's host.pub line is in "
        "mesh.authorized_keys";
    return c;
  }
  c.summary = fmt::format("{} seeds reachable", checked);
  return c;
}

DoctorCheck CheckKeyFiles(const MeshConfig& mesh, uid_t owner_uid) {
  struct stat st {};
  const bool key_exists = ::stat(mesh.key_file.c_str(), &st) == 0;
  if (!mesh.enabled && !key_exists) {
    return Make("keys", CheckState::kSkip, "mesh.enabled is false and there is no key file");
  }
  DoctorCheck c = Make("keys", CheckState::kOk, "");
  std::vector<std::string> problems;
  std::vector<std::string> fixes;
  if (!key_exists) {
    problems.push_back(fmt::format("no key file {} ({})", mesh.key_file, std::strerror(errno)));
    fixes.push_back(fmt::format("augurctl keygen --out {} writes one",
                                mesh.key_file.substr(0, mesh.key_file.rfind('/'))));
  } else {
    c.details.push_back(fmt::format("{} {}:{} mode {}", mesh.key_file, UserName(st.st_uid),
                                    GroupName(st.st_gid), ModeText(st.st_mode)));
    if ((st.st_mode & 077) != 0) {
      problems.push_back(fmt::format("{} is mode {}: others may read the secret key", mesh.key_file,
                                     ModeText(st.st_mode)));
      fixes.push_back(
          fmt::format("chmod 600 {} (and make a new pair with augurctl keygen "
                      "--force if others could have read it)",
                      mesh.key_file));
    }
    if (st.st_uid != owner_uid) {
      problems.push_back(fmt::format("{} is owned by {}, not by {} (augurd's user)", mesh.key_file,
                                     UserName(st.st_uid), UserName(owner_uid)));
      fixes.push_back(fmt::format("chown {} {}", UserName(owner_uid), mesh.key_file));
    }
    if ((st.st_mode & 077) == 0) {
      // Only parsed when private: ReadSecretKeyFile refuses a readable key on its own terms.
      if (auto keys = mesh::ReadSecretKeyFile(mesh.key_file); !keys) {
        problems.push_back(keys.error().message());
        fixes.push_back(
            "augurctl keygen --force writes a new pair (peers then need the new "
            "host.pub line)");
      }
    }
  }
  struct stat ak {};
  if (::stat(mesh.authorized_keys.c_str(), &ak) != 0) {
    if (mesh.enabled) {
      problems.push_back(fmt::format("no authorized_keys file {} ({})", mesh.authorized_keys,
                                     std::strerror(errno)));
      fixes.push_back("put the host.pub line of every peer (this host's too) in it");
    }
  } else {
    c.details.push_back(fmt::format("{} {}:{} mode {}", mesh.authorized_keys, UserName(ak.st_uid),
                                    GroupName(ak.st_gid), ModeText(ak.st_mode)));
    if ((ak.st_mode & 022) != 0) {
      problems.push_back(fmt::format("{} is mode {}: others may add a key and join the mesh",
                                     mesh.authorized_keys, ModeText(ak.st_mode)));
      fixes.push_back(fmt::format("chmod 644 {}", mesh.authorized_keys));
    }
  }
  if (!problems.empty()) {
    c.state = CheckState::kFail;
    c.summary = fmt::format("{}", fmt::join(problems, "; "));
    c.fix = fmt::format("{}", fmt::join(fixes, "; "));
    return c;
  }
  c.summary = fmt::format("{} is private to {}; {} is not writable by others", mesh.key_file,
                          UserName(owner_uid), mesh.authorized_keys);
  return c;
}

std::vector<DoctorCheck> RunDoctor(const DoctorOptions& o) {
  std::vector<DoctorCheck> out;
  const Config& cfg = o.config;
  const std::string where = o.config_path.empty() ? "built-in defaults" : o.config_path;
  if (o.config_status.ok()) {
    out.push_back(Make("config", CheckState::kOk, fmt::format("configuration: {}", where)));
  } else {
    DoctorCheck c = Make("config", CheckState::kFail,
                         fmt::format("{} does not load; the checks below use the defaults", where),
                         "fix each line named above (augurd --check-config FILE checks it "
                         "again)");
    std::istringstream lines(o.config_status.message());
    for (std::string line; std::getline(lines, line);) c.details.push_back(line);
    out.push_back(std::move(c));
  }

  // The running augurd, as its segment names it; its uid owns the files checked below.
  AgentProcess agent;
  int bpf_series = -1;
  if (auto reader = telemetry::ShmReader::Open(cfg.telemetry.shm_name); reader) {
    const telemetry::SegmentInfo info = (*reader)->Info();
    if (!info.stale && info.writer_pid > 0) {
      agent.pid = info.writer_pid;
      if (auto uid = ReadEffectiveUid(agent.pid)) agent.uid = *uid;
      bpf_series = 0;
      for (const telemetry::SeriesEntry& e : (*reader)->List()) {
        if (e.key.label("source") == "bpf") ++bpf_series;
      }
    }
  }
  const uid_t owner = agent.pid != 0 ? agent.uid : 0;

  out.push_back(CheckBtf(o.btf_path, cfg.telemetry.ebpf));
  out.push_back(CheckBpfPrivilege(cfg.telemetry.ebpf, agent, bpf_series));
  out.push_back(CheckCgroups(o.mountinfo));
  out.push_back(CheckShm(cfg.telemetry.shm_name, cfg.telemetry.interval));
  out.push_back(CheckPlugins(cfg.control.socket, cfg.plugins.enabled, o.control_timeout));
  out.push_back(CheckControlSocket(cfg.control.socket, cfg.control.group, owner, agent.pid != 0));
  // The engine runs only with the process backend (agent/daemon.cc).
  std::string engine_off;
  if (!cfg.workflows.enabled) {
    engine_off = "workflows.enabled is false";
  } else if (std::find(cfg.plugins.enabled.begin(), cfg.plugins.enabled.end(), "process") ==
             cfg.plugins.enabled.end()) {
    engine_off = "it needs the process backend (plugins.enabled: [process])";
  }
  out.push_back(CheckDatabase(cfg.workflows.state_dir + "/workflows.db", engine_off));
  out.push_back(CheckSeeds(cfg.mesh, o.connect_timeout));
  out.push_back(CheckKeyFiles(cfg.mesh, owner));
  return out;
}

std::string RenderDoctorText(const std::vector<DoctorCheck>& checks) {
  std::string out;
  std::map<CheckState, int> count;
  for (const DoctorCheck& c : checks) {
    ++count[c.state];
    const std::string_view tag = c.state == CheckState::kOk     ? "[ ok ]"
                                 : c.state == CheckState::kWarn ? "[warn]"
                                 : c.state == CheckState::kFail ? "[FAIL]"
                                                                : "[skip]";
    out += fmt::format("{} {:<9} {}\n", tag, c.name, c.summary);
    for (const std::string& d : c.details) out += fmt::format("{:17}{}\n", "", d);
    if (!c.fix.empty()) out += fmt::format("{:17}fix: {}\n", "", c.fix);
  }
  out += fmt::format("{} ok, {} warnings, {} failed, {} not checked\n", count[CheckState::kOk],
                     count[CheckState::kWarn], count[CheckState::kFail], count[CheckState::kSkip]);
  return out;
}

nlohmann::json DoctorJson(const std::vector<DoctorCheck>& checks) {
  nlohmann::json arr = nlohmann::json::array();
  for (const DoctorCheck& c : checks) {
    arr.push_back({{"name", c.name},
                   {"state", std::string(CheckStateName(c.state))},
                   {"summary", c.summary},
                   {"details", c.details},
                   {"fix", c.fix}});
  }
  return {{"ok", DoctorExitCode(checks) == 0}, {"checks", std::move(arr)}};
}

int DoctorExitCode(const std::vector<DoctorCheck>& checks) {
  return std::any_of(checks.begin(), checks.end(),
                     [](const DoctorCheck& c) { return c.state == CheckState::kFail; })
             ? 1
             : 0;
}

}  // namespace augur::agent
