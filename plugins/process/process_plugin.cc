// augur-process.so: runs each task as a child process inside its instance's cgroup, with a
// CPU limit (CFS bandwidth) and a memory limit, on cgroup v2 where the controllers are and
// on v1 otherwise (see cgroup.h for how the hierarchies are chosen).
//
// Model:
//   - An instance is a cgroup "<cgroup_parent>/augur-<req.name>" in every hierarchy used;
//     its handle is the cgroup's name, "augur-<req.name>". The cgroup is the whole state:
//     after a restart, init() finds the augur-* cgroups under the parent again and reads
//     their limits back, so nothing needs to be kept in state_dir.
//   - An invocation is a child process that joined the cgroup before exec. Its handle is
//     "<instance>/<pid>/<starttime>", the start time (from /proc/PID/stat) making it immune to
//     pid reuse. Usage is the instance cgroup's, counted from the task's start: tasks running
//     side by side in one instance share it (the instance is the unit of accounting).
//   - Waiting uses a pidfd per task: poll() sleeps on it with the caller's timeout and reaps
//     with waitid(), so no reaper thread and no SIGCHLD handler is needed.
//   - I/O counters (ABI 1.1 bytes_read / bytes_written) are the kernel's storage I/O
//     accounting of the task's process, /proc/PID/io read_bytes and write_bytes. The kernel
//     adds a child's counters to its parent's when the parent reaps it, so the task's
//     process counts itself and every descendant reaped below it. The final figures are read
//     when the task has exited but is not reaped yet (waitid with WNOWAIT), then it is
//     reaped. What they count:
//       bytes_read     bytes the task caused to be read from a block device: page-cache
//                      misses, readahead and direct I/O. A read served from the page cache
//                      counts 0.
//       bytes_written  bytes the task sent toward a block device: page-cache pages it
//                      dirtied (counted when dirtied, whole pages, before any writeback, and
//                      still counted if the file is deleted before writeback) plus direct
//                      I/O. Writes to pipes, sockets, /dev/null and tmpfs count 0.
//     Not counted: descendants that are still running when the task exits or that were
//     re-parented away from it (daemons; their parent is init then), and I/O of a task
//     recovered after a restart once it exits (only its last sample while running is
//     known). Why not the blkio controller: on this backend's hybrid hosts the v1 blkio
//     counters (blkio.throttle.io_service_bytes*) stay 0 unless a throttle rule is set on
//     the device, and buffered writes reach the block layer only at writeback, charged to
//     the root cgroup on v1 (and on v2 possibly after the task has ended). docs/BACKENDS.md
//     has the measurements.
//
// Config keys (plugins.config.process):
//   cgroup_parent      parent cgroup, relative to each hierarchy's root (default "augur")
//   reserve_memory_mb  memory kept back from MemTotal for the host itself (default 512)
//   cost_per_core_hour, cost_per_gib_hour
//                      prices of this host's capacity, reported as one cost class (named by
//                      cost_class, default "local") so that workflow budgets apply here;
//                      unset: no cost class, shards are free
//   spot_per_core_hour, spot_per_gib_hour
//                      a second, preemptible class "spot" at these prices, for workflows
//                      whose deadline allows it
//   spot_max_runtime   seconds (> 0) a task on the spot class may run before the backend
//                      takes it back: it is killed and reported AUGUR_TASK_RECLAIMED, as a
//                      cloud's preemptible VM is after its maximum run time. Unset: spot
//                      tasks are never reclaimed. An instance found again after a restart of
//                      the plugin host has lost its class and is not reclaimed.
//
// Threading: one mutex guards the instance and invocation tables and the capacity ledger;
// each invocation has its own mutex for its status, so a poll() waiting on one task never
// blocks calls about others.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "augur/plugin.h"
#include "cgroup.h"
#include "plugin_shim.h"

namespace augur_process {
namespace {

using augur_shim::Fail;
using augur_shim::Str;

constexpr char kVersion[] = "0.1.0";
constexpr char kInstancePrefix[] = "augur-";
// "augur-" + name + "/" + pid (<= 7 digits) + "/" + starttime (<= 20 digits) must fit a
// handle; 64 leaves room.
constexpr size_t kMaxNameLen = 64;
// How long cancel() and release() wait for killed processes to go.
constexpr int kKillTimeoutMs = 5000;

int64_t NowNs(const augur_host_api* host) {
  if (host->now_ns != nullptr) return host->now_ns(host->host_ctx);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Fields of /proc/PID/stat the backend needs. Fields after the command (which may contain
// spaces and parentheses) are counted from the last ')'.
struct ProcStat {
  char state = '?';
  pid_t session = 0;
  uint64_t starttime = 0;  // clock ticks after boot
};

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  size_t paren = text->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream in(text->substr(paren + 1));
  ProcStat st;
  std::string skip;
  int ppid, pgrp;
  in >> st.state >> ppid >> pgrp >> st.session;
  // Fields 8..21 (tty_nr .. itrealvalue) come before starttime, field 22.
  for (int i = 0; i < 14; ++i) in >> skip;
  in >> st.starttime;
  if (!in) return std::nullopt;
  return st;
}

// Storage I/O of a process so far, itself and every child it has reaped (read_bytes and
// write_bytes of /proc/PID/io); nullopt when the file cannot be read.
struct IoCounts {
  uint64_t read = 0;
  uint64_t written = 0;
};

std::optional<IoCounts> ReadProcIo(pid_t pid) {
  auto text = ReadFile("/proc/" + std::to_string(pid) + "/io");
  if (!text) return std::nullopt;
  // "rchar: 1\nwchar: 2\n...read_bytes: 3\nwrite_bytes: 4\ncancelled_write_bytes: 5"
  std::istringstream in(*text);
  std::string key;
  uint64_t value;
  IoCounts out;
  int found = 0;
  while (in >> key >> value) {
    if (key == "read_bytes:") out.read = value, ++found;
    if (key == "write_bytes:") out.written = value, ++found;
  }
  if (found != 2) return std::nullopt;
  return out;
}

// A process identified by pid and start time still exists and has not exited.
bool ProcessAlive(pid_t pid, uint64_t starttime) {
  auto st = ReadProcStat(pid);
  return st && st->starttime == starttime && st->state != 'Z' && st->state != 'X';
}

// CLOCK_REALTIME of a process start, from boot time and its start ticks.
int64_t StartRealtimeNs(uint64_t starttime) {
  auto text = ReadFile("/proc/stat");
  if (!text) return 0;
  auto pos = text->find("btime ");
  if (pos == std::string::npos) return 0;
  int64_t btime = std::stoll(text->substr(pos + 6));
  int64_t ticks = sysconf(_SC_CLK_TCK);
  return btime * 1000000000 + static_cast<int64_t>(starttime) * (1000000000 / ticks);
}

uint64_t MemTotalBytes() {
  auto text = ReadFile("/proc/meminfo");
  if (!text) throw CgroupError("cannot read /proc/meminfo");
  auto pos = text->find("MemTotal:");
  if (pos == std::string::npos) throw CgroupError("/proc/meminfo has no MemTotal");
  return std::stoull(text->substr(pos + 9)) * 1024;
}

// "augur" or "augur/batch": relative, no empty, "." or ".." segments.
std::string CheckParent(const std::string& parent) {
  std::string p = parent;
  while (!p.empty() && p.front() == '/') p.erase(p.begin());
  while (!p.empty() && p.back() == '/') p.pop_back();
  if (p.empty()) Fail(AUGUR_ERR_INVALID, "cgroup_parent must name a cgroup below the root");
  std::istringstream in(p);
  std::string seg;
  while (std::getline(in, seg, '/')) {
    if (seg.empty() || seg == "." || seg == "..") {
      Fail(AUGUR_ERR_INVALID, "cgroup_parent '" + parent + "' has an empty, '.' or '..' part");
    }
  }
  return p;
}

// The program a task names: argv[0] itself when it has a '/', else the first executable
// match in the PATH of the task's own environment (or a conventional default), because the
// task runs with exactly the environment it was given, not the agent's.
std::string ResolveProgram(const std::string& argv0, const std::vector<std::string>& env) {
  if (argv0.find('/') != std::string::npos) return argv0;
  std::string path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  }
  std::istringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + argv0;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  Fail(AUGUR_ERR_INVALID, "program '" + argv0 + "' not found in PATH " + path);
}

struct Instance {
  Instance(std::string n, InstanceCgroup cg, augur_resources g)
      : name(std::move(n)), cgroup(std::move(cg)), granted(g) {}

  const std::string name;  // handle and cgroup directory name
  const InstanceCgroup cgroup;
  augur_resources granted{};  // guarded by ProcessBackend::mu_
  bool releasing = false;     // guarded by ProcessBackend::mu_
  bool spot = false;          // provisioned on the preemptible "spot" class
  // Held by run() from its check of `releasing` until the child is in the cgroup, so that
  // release() cannot kill and rmdir between the two and miss a task.
  std::mutex run_mu;
};

// Where a child failed between fork and exec, reported through the CLOEXEC pipe.
enum ChildStage : int32_t { kJoin = 1, kSetsid, kChdir, kStdin, kStdout, kStderr, kExec };

struct ChildFailure {
  int32_t stage;
  int32_t err;
};

struct Invocation {
  std::string handle;
  std::string instance;
  pid_t pid = 0;
  uint64_t starttime = 0;
  int pidfd = -1;
  bool is_child = false;  // we forked it in this process, so waitid() can reap it

  std::mutex mu;  // guards everything below
  bool finished = false;
  bool cancelled = false;
  bool reclaimed = false;      // killed because its spot run time was up
  int64_t reclaim_at_ns = 0;   // when a spot task is taken back (0: never)
  augur_task_status status{};
  uint64_t cpu_base_ns = 0;
  std::optional<uint64_t> oom_base;
  std::string lost_reason;  // set for FAILED

  ~Invocation() {
    if (pidfd >= 0) close(pidfd);
  }
};

}  // namespace

class ProcessBackend {
 public:
  explicit ProcessBackend(const augur_host_api* host) : host_(host) {
    // CBinding::Init has checked `host` (non-null, struct_size) before constructing us.
    augur_shim::RejectUnknownKeys(host, "process",
                                  {"cgroup_parent", "reserve_memory_mb", "cost_class",
                                   "cost_per_core_hour", "cost_per_gib_hour",
                                   "spot_per_core_hour", "spot_per_gib_hour",
                                   "spot_max_runtime"});
    ReadCost(host);
    const char* parent = augur_shim::ConfigValue(host, "cgroup_parent");
    parent_ = CheckParent(parent ? parent : "augur");
    uint64_t reserve_mb = 512;
    if (const char* r = augur_shim::ConfigValue(host, "reserve_memory_mb")) {
      char* end = nullptr;
      errno = 0;
      unsigned long long v = std::strtoull(r, &end, 10);
      if (errno != 0 || end == r || *end != '\0') {
        Fail(AUGUR_ERR_INVALID, std::string("reserve_memory_mb must be a whole number, got '") +
                                    r + "'");
      }
      reserve_mb = v;
    }
    layout_ = CgroupLayout::Discover();
    uint64_t total = MemTotalBytes();
    uint64_t reserve = reserve_mb * 1024 * 1024;
    capacity_.cpu_cores = static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
    capacity_.memory_bytes = total > reserve ? total - reserve : 0;
    summary_ = layout_.Summary();
    labels_storage_ = {{"cgroup", summary_}, {"cgroup_parent", parent_}};
    for (const auto& [k, v] : labels_storage_) labels_.push_back({k.c_str(), v.c_str()});
    Adopt();
  }

  augur_shim::ErrorSlot& errors() { return errors_; }

  // The cost class of cost_per_core_hour / cost_per_gib_hour, when either is set, and a
  // "spot" class of spot_per_core_hour / spot_per_gib_hour (preemptible) beside it.
  void ReadCost(const augur_host_api* host) {
    auto price = [&](const char* key, double* out, bool* set) {
      const char* v = augur_shim::ConfigValue(host, key);
      if (v == nullptr) return;
      char* end = nullptr;
      errno = 0;
      const double d = std::strtod(v, &end);
      if (errno != 0 || end == v || *end != '\0' || !(d >= 0) || !std::isfinite(d)) {
        Fail(AUGUR_ERR_INVALID,
             std::string(key) + " must be a number >= 0, got '" + v + "'");
      }
      *out = d;
      *set = true;
    };
    price("cost_per_core_hour", &costs_[0].per_core_hour, &cost_set_);
    price("cost_per_gib_hour", &costs_[0].per_gib_hour, &cost_set_);
    price("spot_per_core_hour", &costs_[1].per_core_hour, &spot_set_);
    price("spot_per_gib_hour", &costs_[1].per_gib_hour, &spot_set_);
    if (spot_set_ && !cost_set_) {
      Fail(AUGUR_ERR_INVALID, "a spot price needs cost_per_core_hour or cost_per_gib_hour too");
    }
    if (const char* c = augur_shim::ConfigValue(host, "cost_class")) {
      if (*c == '\0') Fail(AUGUR_ERR_INVALID, "cost_class must not be empty");
      cost_class_ = c;
    }
    if (const char* v = augur_shim::ConfigValue(host, "spot_max_runtime")) {
      char* end = nullptr;
      errno = 0;
      const double d = std::strtod(v, &end);
      if (errno != 0 || end == v || *end != '\0' || !(d > 0) || !std::isfinite(d)) {
        Fail(AUGUR_ERR_INVALID, std::string("spot_max_runtime must be seconds > 0, got '") + v + "'");
      }
      if (!spot_set_) Fail(AUGUR_ERR_INVALID, "spot_max_runtime needs a spot class (spot_per_core_hour or spot_per_gib_hour)");
      spot_max_runtime_ns_ = static_cast<int64_t>(d * 1e9);
    }
    if (cost_class_ == "spot") Fail(AUGUR_ERR_INVALID, "cost_class \"spot\" is the spot class's name");
    costs_[0].resource_class = cost_class_.c_str();
    costs_[0].preemptible = 0;
    costs_[1].resource_class = "spot";
    costs_[1].preemptible = 1;
  }

  void Describe(augur_backend_info* out) {
    std::lock_guard lock(mu_);
    out->name = "process";
    out->version = kVersion;
    out->healthy = capacity_.memory_bytes > 0 ? 1 : 0;
    out->health_detail =
        out->healthy ? "" : "reserve_memory_mb is not smaller than the host's memory";
    out->capacity = capacity_;
    out->available = AvailableLocked();
    out->costs = cost_set_ ? costs_ : nullptr;
    out->costs_len = cost_set_ ? (spot_set_ ? 2 : 1) : 0;
    out->labels = labels_.data();
    out->labels_len = static_cast<uint32_t>(labels_.size());
  }

  void Provision(const augur_alloc_request& req, augur_instance_info* out) {
    augur_shim::CheckName(req.name, kMaxNameLen);
    CheckShape(req);
    std::string name = kInstancePrefix + Str(req.name);
    std::lock_guard lock(mu_);
    if (auto it = instances_.find(name); it != instances_.end()) {
      FillInfo(*it->second, out);  // idempotent on the name
      return;
    }
    augur_resources avail = AvailableLocked();
    augur_resources grant{std::min(req.want.cpu_cores, avail.cpu_cores),
                          std::min(req.want.memory_bytes, avail.memory_bytes)};
    if (grant.cpu_cores < req.min.cpu_cores || grant.memory_bytes < req.min.memory_bytes) {
      Fail(AUGUR_ERR_NO_CAPACITY,
           "cannot grant the minimum of " + FormatRes(req.min) + "; available " +
               FormatRes(avail) + " of " + FormatRes(capacity_));
    }
    auto inst =
        std::make_shared<Instance>(name, InstanceCgroup(&layout_, parent_ + "/" + name), grant);
    try {
      inst->cgroup.Create(Limits{grant.cpu_cores, grant.memory_bytes});
    } catch (...) {
      try {
        inst->cgroup.Remove(0);
      } catch (...) {
        // Best effort: the original error is the one worth reporting.
      }
      throw;
    }
    inst->spot = Str(req.resource_class) == "spot";
    instances_[name] = inst;
    FillInfo(*inst, out);
  }

  uint32_t Prewarm(const augur_alloc_request& /*shape*/, uint32_t /*count*/) {
    errors_.Set(
        "the process backend has nothing to pre-warm: provisioning is a mkdir of a cgroup");
    return 0;
  }

  augur_resources Resize(const std::string& name, const augur_resources& target) {
    augur_shim::CheckResources(target, "target");
    if (!(target.cpu_cores > 0) || target.memory_bytes == 0) {
      Fail(AUGUR_ERR_INVALID, "resize target needs cpu_cores > 0 and memory_bytes > 0");
    }
    std::lock_guard lock(mu_);
    auto inst = FindInstanceLocked(name);
    augur_resources avail = AvailableLocked();
    augur_resources old = inst->granted;
    augur_resources grant{std::min(target.cpu_cores, old.cpu_cores + avail.cpu_cores),
                          std::min(target.memory_bytes, old.memory_bytes + avail.memory_bytes)};
    Limits old_limits{old.cpu_cores, old.memory_bytes};
    try {
      inst->cgroup.Apply(Limits{grant.cpu_cores, grant.memory_bytes}, old_limits);
    } catch (const CgroupError&) {
      // Put back what was there so the ledger and the cgroup agree; a v1 memory limit below
      // what the cgroup can reclaim is the usual cause.
      try {
        inst->cgroup.Apply(old_limits, Limits{grant.cpu_cores, grant.memory_bytes});
      } catch (...) {
      }
      throw;
    }
    inst->granted = grant;
    return grant;
  }

  std::string Run(const std::string& instance, const augur_task& task) {
    if (task.argc == 0 || task.argv == nullptr) Fail(AUGUR_ERR_INVALID, "task has no argv");
    if (task.envc > 0 && task.env == nullptr) Fail(AUGUR_ERR_INVALID, "task.env is NULL");
    std::vector<std::string> argv, env;
    for (uint32_t i = 0; i < task.argc; ++i) {
      if (task.argv[i] == nullptr) Fail(AUGUR_ERR_INVALID, "task.argv has a NULL entry");
      argv.emplace_back(task.argv[i]);
    }
    for (uint32_t i = 0; i < task.envc; ++i) {
      if (task.env[i] == nullptr) Fail(AUGUR_ERR_INVALID, "task.env has a NULL entry");
      env.emplace_back(task.env[i]);
    }
    if (argv[0].empty()) Fail(AUGUR_ERR_INVALID, "task.argv[0] is empty");
    std::string program = ResolveProgram(argv[0], env);
    std::string workdir = Str(task.workdir).empty() ? "/" : Str(task.workdir);
    std::string out_path = Str(task.stdout_path).empty() ? "/dev/null" : Str(task.stdout_path);
    std::string err_path = Str(task.stderr_path).empty() ? "/dev/null" : Str(task.stderr_path);

    std::shared_ptr<Instance> inst;
    bool others_running = false;
    {
      std::lock_guard lock(mu_);
      inst = FindInstanceLocked(instance);
      if (inst->releasing) Fail(AUGUR_ERR_BUSY, "instance " + instance + " is being released");
      for (const auto& [h, inv] : invocations_) {
        std::lock_guard inv_lock(inv->mu);
        if (inv->instance == instance && !inv->finished) others_running = true;
      }
    }
    std::unique_lock run_lock(inst->run_mu);
    {
      std::lock_guard lock(mu_);
      if (inst->releasing) Fail(AUGUR_ERR_BUSY, "instance " + instance + " is being released");
    }
    auto inv = std::make_shared<Invocation>();
    inv->instance = instance;
    // v1 keeps one high-water mark per cgroup; reset it so a task alone in its instance gets
    // its own peak rather than its predecessor's.
    if (!others_running) inst->cgroup.ResetPeak();
    inv->cpu_base_ns = inst->cgroup.CpuUsageNs();
    inv->oom_base = inst->cgroup.OomKills();

    // Everything the child touches is built here: between fork and exec only
    // async-signal-safe calls are allowed (the host is multi-threaded).
    std::vector<std::string> procs = inst->cgroup.ProcsFiles();
    std::vector<const char*> procs_c;
    for (const auto& p : procs) procs_c.push_back(p.c_str());
    std::vector<char*> argv_c, env_c;
    for (auto& a : argv) argv_c.push_back(a.data());
    argv_c.push_back(nullptr);
    for (auto& e : env) env_c.push_back(e.data());
    env_c.push_back(nullptr);

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
      Fail(AUGUR_ERR_IO, std::string("pipe2: ") + std::strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
      int err = errno;
      close(pipefd[0]);
      close(pipefd[1]);
      Fail(AUGUR_ERR_IO, std::string("fork: ") + std::strerror(err));
    }
    if (pid == 0) {
      close(pipefd[0]);
      ExecChild(pipefd[1], procs_c, program.c_str(), workdir.c_str(), out_path.c_str(),
                err_path.c_str(), argv_c.data(), env_c.data());
    }
    close(pipefd[1]);
    ChildFailure failure{};
    ssize_t n;
    do {
      n = read(pipefd[0], &failure, sizeof failure);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n > 0) {
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      ReportChildFailure(failure, program, workdir, out_path, err_path);
    }

    inv->pid = pid;
    inv->is_child = true;
    inv->pidfd = PidfdOpen(pid);
    auto st = ReadProcStat(pid);
    inv->starttime = st ? st->starttime : 0;
    inv->handle = instance + "/" + std::to_string(pid) + "/" + std::to_string(inv->starttime);
    inv->status.struct_size = sizeof(augur_task_status);
    inv->status.state = AUGUR_TASK_RUNNING;
    inv->status.started_ns = NowNs(host_);
    if (inst->spot && spot_max_runtime_ns_ > 0) {
      inv->reclaim_at_ns = inv->status.started_ns + spot_max_runtime_ns_;
    }
    std::lock_guard lock(mu_);
    invocations_[inv->handle] = inv;
    return inv->handle;
  }

  augur_task_status Poll(const std::string& handle, int32_t timeout_ms) {
    if (timeout_ms < 0) Fail(AUGUR_ERR_INVALID, "timeout_ms must be >= 0");
    auto inv = FindInvocation(handle);
    std::shared_ptr<Instance> inst = FindInstanceOrNull(inv->instance);
    if (ReclaimIfDue(inv, inst)) timeout_ms = 0;
    {
      std::lock_guard lock(inv->mu);
      Refresh(*inv, inst.get());
      if (inv->finished || timeout_ms == 0 || inv->pidfd < 0) return Status(*inv);
      if (inv->reclaim_at_ns > 0) {
        // Wake at the reclaim deadline rather than sleeping past it.
        const int64_t left_ms = (inv->reclaim_at_ns - NowNs(host_)) / 1000000 + 1;
        timeout_ms = static_cast<int32_t>(std::clamp<int64_t>(left_ms, 1, timeout_ms));
      }
    }
    // Sleep on the pidfd without holding any lock; it becomes readable when the process
    // exits (for children and, since 5.3, for any process).
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int remaining = timeout_ms; remaining > 0;) {
      pollfd pfd{inv->pidfd, POLLIN, 0};
      int r = ::poll(&pfd, 1, remaining);
      if (r > 0) break;
      if (r < 0 && errno != EINTR) break;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t elapsed =
          (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      remaining = timeout_ms - static_cast<int>(elapsed);
    }
    ReclaimIfDue(inv, inst);
    std::lock_guard lock(inv->mu);
    Refresh(*inv, inst.get());
    return Status(*inv);
  }

  // Takes a spot task back once its run time is up: killed like a cancel, reported
  // RECLAIMED. True when it did.
  bool ReclaimIfDue(const std::shared_ptr<Invocation>& inv, const std::shared_ptr<Instance>& inst) {
    {
      std::lock_guard lock(inv->mu);
      if (inv->finished || inv->reclaim_at_ns == 0 || NowNs(host_) < inv->reclaim_at_ns) {
        return false;
      }
      inv->reclaimed = true;
    }
    augur_shim::Log(host_, AUGUR_LOG_INFO,
                    "process: reclaiming spot task " + inv->handle + " (spot_max_runtime)");
    Kill(inv, inst);
    return true;
  }

  void Cancel(const std::string& handle) {
    auto inv = FindInvocation(handle);
    Kill(inv, FindInstanceOrNull(inv->instance));
  }

  // Kills a task and waits for it to exit (cancel, and a spot reclaim).
  void Kill(const std::shared_ptr<Invocation>& inv, const std::shared_ptr<Instance>& inst) {
    bool others_running = false;
    {
      std::lock_guard lock(mu_);
      for (const auto& [h, other] : invocations_) {
        if (other == inv || other->instance != inv->instance) continue;
        std::lock_guard inv_lock(other->mu);
        if (!other->finished) others_running = true;
      }
    }
    {
      std::lock_guard lock(inv->mu);
      Refresh(*inv, inst.get());
      if (inv->finished) return;  // cancelling a finished task is OK
      inv->cancelled = true;
    }
    if (inst && !others_running) {
      // The task is alone in its instance: kill the whole cgroup, which catches everything
      // it started, including processes that left its session.
      inst->cgroup.KillAll(kKillTimeoutMs);
    } else {
      KillSession(*inv, inst.get());
    }
    WaitExit(*inv, inst.get(), kKillTimeoutMs);
  }

  void Release(const std::string& name) {
    std::shared_ptr<Instance> inst;
    std::vector<std::shared_ptr<Invocation>> invs;
    {
      std::lock_guard lock(mu_);
      inst = FindInstanceLocked(name);
      if (inst->releasing) Fail(AUGUR_ERR_BUSY, "instance " + name + " is already being released");
      inst->releasing = true;
    }
    // Wait out a run() that is between its check and its child joining the cgroup.
    { std::lock_guard run_lock(inst->run_mu); }
    {
      std::lock_guard lock(mu_);
      for (const auto& [h, inv] : invocations_) {
        if (inv->instance == name) invs.push_back(inv);
      }
    }
    for (auto& inv : invs) {
      std::lock_guard lock(inv->mu);
      Refresh(*inv, inst.get());
      if (!inv->finished) inv->cancelled = true;
    }
    try {
      if (!inst->cgroup.KillAll(kKillTimeoutMs)) {
        Fail(AUGUR_ERR_IO, "instance " + name + ": processes still in the cgroup after SIGKILL");
      }
      // Reap our children while the cgroup (and its counters) still exist.
      for (auto& inv : invs) WaitExit(*inv, inst.get(), kKillTimeoutMs);
      inst->cgroup.Remove(kKillTimeoutMs);
    } catch (...) {
      std::lock_guard lock(mu_);
      inst->releasing = false;  // the instance is still there; a retry may succeed
      throw;
    }
    std::lock_guard lock(mu_);
    instances_.erase(name);
    for (auto it = invocations_.begin(); it != invocations_.end();) {
      it = it->second->instance == name ? invocations_.erase(it) : std::next(it);
    }
  }

  void Recover(const char* const* instances, uint32_t n_instances, int32_t* states_out,
               const char* const* invocations, uint32_t n_invocations,
               int32_t* task_states_out) {
    std::lock_guard lock(mu_);
    for (uint32_t i = 0; i < n_instances; ++i) {
      // init() adopted every augur-* cgroup still under the parent.
      bool found = instances[i] != nullptr && instances_.count(instances[i]) > 0;
      states_out[i] = found ? AUGUR_INSTANCE_READY : AUGUR_INSTANCE_GONE;
    }
    std::string lost;
    for (uint32_t j = 0; j < n_invocations; ++j) {
      std::string handle = Str(invocations[j]);
      if (auto it = invocations_.find(handle); it != invocations_.end()) {
        std::lock_guard inv_lock(it->second->mu);
        task_states_out[j] = it->second->status.state;
        continue;
      }
      auto inv = RecoverInvocationLocked(handle);
      task_states_out[j] = inv->status.state;
      if (inv->status.state == AUGUR_TASK_FAILED) {
        lost += (lost.empty() ? "" : "; ") + handle + ": " + inv->lost_reason;
      }
      invocations_[handle] = inv;
    }
    // The call succeeds; last_error explains the FAILED entries, as the ABI asks.
    if (!lost.empty()) errors_.Set(lost);
  }

 private:
  // --- instances ---------------------------------------------------------------------------

  // Finds the augur-* cgroups a previous incarnation left under the parent. A directory
  // present in only some hierarchies is the remains of a provision that crashed half way;
  // it is removed when empty, since nothing can have run in it.
  void Adopt() {
    std::set<std::string> names;
    for (const auto& h : layout_.hierarchies()) {
      DIR* d = opendir((h.mount + "/" + parent_).c_str());
      if (d == nullptr) continue;
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.rfind(kInstancePrefix, 0) == 0 && e->d_type == DT_DIR) names.insert(n);
      }
      closedir(d);
    }
    for (const auto& name : names) {
      InstanceCgroup cg(&layout_, parent_ + "/" + name);
      if (!cg.Exists()) {
        try {
          cg.Remove(0);
          augur_shim::Log(host_, AUGUR_LOG_WARN, "process: removed incomplete cgroup " + name);
        } catch (const std::exception& e) {
          augur_shim::Log(host_, AUGUR_LOG_WARN,
                          "process: incomplete cgroup " + name + " left alone: " + e.what());
        }
        continue;
      }
      Limits l = cg.ReadLimits();
      auto inst =
          std::make_shared<Instance>(name, cg, augur_resources{l.cpu_cores, l.memory_bytes});
      instances_[name] = inst;
      augur_shim::Log(host_, AUGUR_LOG_INFO, "process: found instance " + name);
    }
  }

  augur_resources AvailableLocked() const {
    augur_resources used{};
    for (const auto& [n, inst] : instances_) {
      used.cpu_cores += inst->granted.cpu_cores;
      used.memory_bytes += inst->granted.memory_bytes;
    }
    augur_resources out;
    // Tiny negative leftovers of floating-point sums are zero.
    out.cpu_cores = std::max(0.0, capacity_.cpu_cores - used.cpu_cores);
    out.memory_bytes =
        capacity_.memory_bytes > used.memory_bytes ? capacity_.memory_bytes - used.memory_bytes : 0;
    return out;
  }

  void CheckShape(const augur_alloc_request& req) const {
    augur_shim::CheckResources(req.want, "want");
    augur_shim::CheckResources(req.min, "min");
    if (!(req.want.cpu_cores > 0) || req.want.memory_bytes == 0) {
      Fail(AUGUR_ERR_INVALID, "want needs cpu_cores > 0 and memory_bytes > 0");
    }
    if (req.min.cpu_cores > req.want.cpu_cores || req.min.memory_bytes > req.want.memory_bytes) {
      Fail(AUGUR_ERR_INVALID, "min must not exceed want");
    }
    if (!Str(req.template_ref).empty()) {
      Fail(AUGUR_ERR_INVALID, "the process backend has no templates; template_ref must be \"\"");
    }
    std::string cls = Str(req.resource_class);
    if (!cls.empty() && cls != cost_class_ && !(spot_set_ && cls == "spot")) {
      Fail(AUGUR_ERR_INVALID, "the process backend offers only resource class \"" + cost_class_ +
                                  "\"" + (spot_set_ ? " and \"spot\"" : ""));
    }
  }

  static std::string FormatRes(const augur_resources& r) {
    char buf[96];
    snprintf(buf, sizeof buf, "%.2f cores / %llu MiB", r.cpu_cores,
             static_cast<unsigned long long>(r.memory_bytes >> 20));
    return buf;
  }

  static void FillInfo(const Instance& inst, augur_instance_info* out) {
    augur_shim::WriteHandle(out->handle, inst.name);
    out->granted = inst.granted;
    out->state = AUGUR_INSTANCE_READY;
  }

  std::shared_ptr<Instance> FindInstanceLocked(const std::string& name) {
    auto it = instances_.find(name);
    if (it == instances_.end()) Fail(AUGUR_ERR_NOT_FOUND, "no instance '" + name + "'");
    return it->second;
  }

  std::shared_ptr<Instance> FindInstanceOrNull(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = instances_.find(name);
    return it == instances_.end() ? nullptr : it->second;
  }

  // --- tasks -------------------------------------------------------------------------------

  std::shared_ptr<Invocation> FindInvocation(const std::string& handle) {
    std::lock_guard lock(mu_);
    auto it = invocations_.find(handle);
    if (it == invocations_.end()) Fail(AUGUR_ERR_NOT_FOUND, "no invocation '" + handle + "'");
    return it->second;
  }

  // The child between fork and exec: async-signal-safe calls only, no allocation.
  [[noreturn]] static void ExecChild(int errfd, const std::vector<const char*>& procs,
                                     const char* program, const char* workdir,
                                     const char* out_path, const char* err_path,
                                     char* const* argv, char* const* env) {
    auto fail = [errfd](ChildStage stage) {
      ChildFailure f{stage, errno};
      ssize_t ignored = write(errfd, &f, sizeof f);
      (void)ignored;
      _exit(127);
    };
    // The host's threads may block signals or ignore some; a task starts clean.
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction sa {};
      sa.sa_handler = SIG_DFL;
      sigaction(sig, &sa, nullptr);  // fails harmlessly for SIGKILL/SIGSTOP
    }
    // Join the cgroup before exec, so not one instruction of the task runs unlimited.
    // "0" means the writing process, on v1 and v2 alike.
    for (const char* path : procs) {
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, "0", 1) != 1) fail(kJoin);
      close(fd);
    }
    if (setsid() < 0) fail(kSetsid);  // own session: cancel can find what it started
    if (chdir(workdir) != 0) fail(kChdir);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0) fail(kStdin);
    int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || dup2(out, 1) < 0) fail(kStdout);
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (err < 0 || dup2(err, 2) < 0) fail(kStderr);
    // Nothing else of the host's leaks into the task.
    syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
    execve(program, argv, env);
    fail(kExec);
    _exit(127);
  }

  [[noreturn]] static void ReportChildFailure(const ChildFailure& f, const std::string& program,
                                              const std::string& workdir,
                                              const std::string& out_path,
                                              const std::string& err_path) {
    std::string what;
    augur_rc rc = AUGUR_ERR_INVALID;
    switch (f.stage) {
      case kJoin: what = "joining the instance cgroup"; rc = AUGUR_ERR_IO; break;
      case kSetsid: what = "setsid"; rc = AUGUR_ERR_IO; break;
      case kChdir: what = "chdir to " + workdir; break;
      case kStdin: what = "opening /dev/null"; rc = AUGUR_ERR_IO; break;
      case kStdout: what = "opening stdout " + out_path; break;
      case kStderr: what = "opening stderr " + err_path; break;
      default: what = "exec of " + program; break;
    }
    Fail(rc, "task could not start: " + what + ": " + std::strerror(f.err));
  }

  // Brings a status up to date: reaps the process if it has exited, else samples usage.
  // Caller holds inv.mu. `inst` is null once the instance is gone.
  void Refresh(Invocation& inv, Instance* inst) {
    if (inv.finished) return;
    siginfo_t si{};
    // WNOWAIT leaves an exited task a zombie, whose I/O counters (by now including every
    // child it reaped) are read before it is reaped.
    int r = waitid(P_PID, inv.pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && si.si_pid == inv.pid) {
      SampleIo(inv);
      siginfo_t reaped{};
      while (waitid(P_PID, inv.pid, &reaped, WEXITED | WNOHANG) < 0 && errno == EINTR) {
      }
      Finish(inv, inst, &si);
      return;
    }
    bool reapable = r == 0;  // our child, still running
    if (!reapable && !ProcessAlive(inv.pid, inv.starttime)) {
      // Not our child (recovered after a restart) or reaped by someone else: the process
      // is gone and so is its exit status.
      inv.lost_reason = inv.is_child
                            ? "the task's exit status was reaped by someone else"
                            : "the task exited while the agent was not watching; its exit "
                              "status was lost with the process that started it";
      Finish(inv, inst, nullptr);
      return;
    }
    Sample(inv, inst);
    SampleIo(inv);
  }

  // Reads the task process's I/O counters, if it is still ours to read (same start time,
  // not reaped). The figures only grow: a failed read keeps the last ones.
  void SampleIo(Invocation& inv) {
    auto io = ReadProcIo(inv.pid);
    // Checked after the read: had the task been reaped and its pid reused in between, the
    // start time would now differ.
    auto st = ReadProcStat(inv.pid);
    if (!io || !st || st->starttime != inv.starttime) return;
    inv.status.bytes_read = std::max(inv.status.bytes_read, io->read);
    inv.status.bytes_written = std::max(inv.status.bytes_written, io->written);
  }

  void Sample(Invocation& inv, Instance* inst) {
    if (inst == nullptr) return;
    try {
      uint64_t usage = inst->cgroup.CpuUsageNs();
      inv.status.cpu_seconds =
          static_cast<double>(usage > inv.cpu_base_ns ? usage - inv.cpu_base_ns : 0) / 1e9;
      inv.status.peak_memory_bytes =
          std::max(inv.status.peak_memory_bytes, inst->cgroup.MemoryPeakBytes());
    } catch (const CgroupError&) {
      // The cgroup is being removed under us; keep the last figures.
    }
  }

  void Finish(Invocation& inv, Instance* inst, const siginfo_t* si) {
    Sample(inv, inst);
    inv.finished = true;
    inv.status.finished_ns = NowNs(host_);
    if (si == nullptr) {
      if (inv.cancelled) {
        // Killed by us; only the exit status of a process we could not reap is missing.
        inv.status.state = AUGUR_TASK_KILLED;
        inv.status.term_signal = SIGKILL;
        inv.lost_reason.clear();
        return;
      }
      inv.status.state = AUGUR_TASK_FAILED;
      inv.status.exit_code = -1;
      return;
    }
    if (si->si_code == CLD_EXITED) {
      inv.status.state = AUGUR_TASK_EXITED;
      inv.status.exit_code = si->si_status;
      // A shell whose child the OOM killer took exits non-zero (sh gives 137) rather than
      // dying of SIGKILL itself: a failed exit while the cgroup's OOM-kill count grew is an
      // OOM of the task all the same, so that a retry with more memory is the right answer.
      if (si->si_status != 0 && !inv.cancelled && inst != nullptr && inv.oom_base) {
        auto now = inst->cgroup.OomKills();
        if (now && *now > *inv.oom_base) inv.status.state = AUGUR_TASK_OOM;
      }
      return;
    }
    inv.status.term_signal = si->si_status;
    inv.status.state = AUGUR_TASK_KILLED;
    // The OOM killer sends SIGKILL and counts it in the cgroup before the victim is gone, so
    // a SIGKILL we did not send plus a grown counter means the memory limit did it.
    if (!inv.cancelled && si->si_status == SIGKILL && inst != nullptr && inv.oom_base) {
      auto now = inst->cgroup.OomKills();
      if (now && *now > *inv.oom_base) inv.status.state = AUGUR_TASK_OOM;
    }
  }

  augur_task_status Status(Invocation& inv) {
    // A reclaimed task died of our SIGKILL: it was taken back, not failed or cancelled.
    if (inv.finished && inv.reclaimed) inv.status.state = AUGUR_TASK_RECLAIMED;
    if (inv.status.state == AUGUR_TASK_FAILED) errors_.Set(inv.handle + ": " + inv.lost_reason);
    return inv.status;
  }

  // SIGKILLs the processes of the task's session that are in its instance cgroup, until
  // none is left. Used when other tasks share the instance and must survive.
  void KillSession(Invocation& inv, Instance* inst) {
    for (int round = 0; round < 100; ++round) {
      bool any = false;
      std::vector<pid_t> pids = inst ? inst->cgroup.Pids() : std::vector<pid_t>{inv.pid};
      for (pid_t pid : pids) {
        auto st = ReadProcStat(pid);
        if (st && st->session == inv.pid && st->state != 'Z') {
          kill(pid, SIGKILL);
          any = true;
        }
      }
      if (!any) return;
      usleep(10000);
    }
  }

  void WaitExit(Invocation& inv, Instance* inst, int timeout_ms) {
    if (inv.pidfd >= 0) {
      pollfd pfd{inv.pidfd, POLLIN, 0};
      while (::poll(&pfd, 1, timeout_ms) < 0 && errno == EINTR) {
      }
    }
    std::lock_guard lock(inv.mu);
    Refresh(inv, inst);
  }

  std::shared_ptr<Invocation> RecoverInvocationLocked(const std::string& handle) {
    auto inv = std::make_shared<Invocation>();
    inv->handle = handle;
    inv->status.struct_size = sizeof(augur_task_status);
    inv->finished = true;
    inv->status.state = AUGUR_TASK_FAILED;
    inv->status.exit_code = -1;
    // "<instance>/<pid>/<starttime>"
    size_t a = handle.find('/');
    size_t b = a == std::string::npos ? a : handle.find('/', a + 1);
    if (b == std::string::npos) {
      inv->lost_reason = "not an invocation handle of the process backend";
      return inv;
    }
    inv->instance = handle.substr(0, a);
    try {
      inv->pid = static_cast<pid_t>(std::stol(handle.substr(a + 1, b - a - 1)));
      inv->starttime = std::stoull(handle.substr(b + 1));
    } catch (const std::exception&) {
      inv->lost_reason = "not an invocation handle of the process backend";
      return inv;
    }
    inv->status.started_ns = StartRealtimeNs(inv->starttime);
    auto it = instances_.find(inv->instance);
    if (it == instances_.end()) {
      inv->lost_reason = "its instance " + inv->instance + " no longer exists; the result was lost";
      return inv;
    }
    // Restarted inside the same process (as tests do): an exited task may be our zombie
    // child still, and then its real exit status is there to collect.
    auto st = ReadProcStat(inv->pid);
    if (st && st->starttime == inv->starttime && st->state == 'Z') {
      siginfo_t si{};
      if (waitid(P_PID, inv->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == inv->pid) {
        inv->is_child = true;
        inv->finished = false;
        Refresh(*inv, it->second.get());  // reads its I/O, reaps it, finishes it
        return inv;
      }
    }
    if (!ProcessAlive(inv->pid, inv->starttime) || !it->second->cgroup.Contains(inv->pid)) {
      inv->lost_reason = "the task finished while the agent was not running; its exit status "
                         "and result were lost";
      return inv;
    }
    // Still running. Usage is counted from the instance's creation: the base the previous
    // incarnation took at start was not persisted.
    inv->finished = false;
    inv->status.state = AUGUR_TASK_RUNNING;
    inv->pidfd = PidfdOpen(inv->pid);
    Sample(*inv, it->second.get());
    return inv;
  }

  const augur_host_api* host_;
  std::string parent_;
  CgroupLayout layout_;
  augur_resources capacity_{};
  std::string summary_;
  std::vector<std::pair<std::string, std::string>> labels_storage_;
  std::string cost_class_ = "local";
  augur_cost costs_[2] = {};  // [0] its class, [1] spot
  bool cost_set_ = false;
  bool spot_set_ = false;
  int64_t spot_max_runtime_ns_ = 0;
  std::vector<augur_kv> labels_;
  augur_shim::ErrorSlot errors_;

  std::mutex mu_;  // guards instances_ and invocations_
  std::map<std::string, std::shared_ptr<Instance>> instances_;
  std::map<std::string, std::shared_ptr<Invocation>> invocations_;
};

}  // namespace augur_process

// The opaque handle the host holds.
struct augur_plugin {
  augur_process::ProcessBackend backend;
};

// The C boundary (exception guard, argument checks, the function table) is shared with the
// other in-tree backends: plugins/common/plugin_shim.h.
extern "C" AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  return augur_shim::CBinding<augur_plugin>::Table();
}
