#include "cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace augur_process {
namespace {

// CFS bandwidth period. 100 ms is the kernel default; a shorter one would make small quotas
// smoother but costs more scheduler work, and the default is what operators expect to see.
constexpr int64_t kCpuPeriodUs = 100000;
// The kernel refuses quotas under 1 ms.
constexpr int64_t kMinCpuQuotaUs = 1000;

std::string ErrnoText(int err) { return std::strerror(err); }

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, nullptr);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) {
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

// "key value" lines (cpu.stat, memory.events, memory.oom_control).
std::optional<uint64_t> KeyedValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return std::nullopt;
}

uint64_t ParseU64(const std::string& path, const std::string& text) {
  try {
    size_t used = 0;
    unsigned long long v = std::stoull(text, &used);
    return v;
  } catch (const std::exception&) {
    throw CgroupError(path + ": expected a number, read '" + text + "'");
  }
}

uint64_t ReadU64(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) throw CgroupError("cannot read " + path + ": " + ErrnoText(errno));
  return ParseU64(path, *text);
}

int64_t QuotaUs(double cores) {
  return std::max<int64_t>(kMinCpuQuotaUs, std::llround(cores * kCpuPeriodUs));
}

void MkdirP(const std::string& path) {
  std::string cur;
  for (const auto& part : Split(path, '/')) {
    cur += "/" + part;
    if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      throw CgroupError("cannot create cgroup " + cur + ": " + ErrnoText(errno));
    }
  }
}

}  // namespace

std::optional<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      errno = err;
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void WriteFile(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw CgroupError("cannot open " + path + ": " + ErrnoText(errno));
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    throw CgroupError("cannot write '" + value + "' to " + path + ": " + ErrnoText(err));
  }
}

bool PathExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool Hierarchy::Has(const std::string& controller) const {
  return std::find(controllers.begin(), controllers.end(), controller) != controllers.end();
}

CgroupLayout CgroupLayout::Discover(const std::string& mountinfo) {
  std::ifstream in(mountinfo);
  if (!in) throw CgroupError("cannot read " + mountinfo + ": " + ErrnoText(errno));
  std::vector<Hierarchy> all;
  std::string line;
  while (std::getline(in, line)) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:1 - cgroup cgroup rw,memory"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash));
    std::istringstream post(line.substr(dash + 3));
    std::string id, parent, devno, root, mount_point, fstype, source, super_opts;
    pre >> id >> parent >> devno >> root >> mount_point;
    post >> fstype >> source >> super_opts;
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    // A hierarchy mounted twice (bind mounts) is used through its first mount point.
    Hierarchy h;
    h.mount = mount_point;
    if (fstype == "cgroup2") {
      h.version = 2;
      h.controllers = Split(ReadFile(mount_point + "/cgroup.controllers").value_or(""), ' ');
    } else {
      h.version = 1;
      for (const auto& opt : Split(super_opts, ',')) {
        if (opt == "cpu" || opt == "cpuacct" || opt == "memory") h.controllers.push_back(opt);
      }
      if (h.controllers.empty()) continue;  // pids, devices, name=systemd, ...
    }
    bool dup = std::any_of(all.begin(), all.end(), [&](const Hierarchy& o) {
      return o.version == h.version && o.controllers == h.controllers;
    });
    if (!dup) all.push_back(std::move(h));
  }

  const Hierarchy* unified = nullptr;
  for (const auto& h : all) {
    if (h.version == 2) unified = &h;
  }
  auto find = [&](const std::string& controller) -> const Hierarchy* {
    if (unified && unified->Has(controller)) return unified;
    for (const auto& h : all) {
      if (h.version == 1 && h.Has(controller)) return &h;
    }
    return nullptr;
  };
  const Hierarchy* cpu = find("cpu");
  const Hierarchy* memory = find("memory");
  if (!cpu || !memory) {
    throw CgroupError(std::string("no cgroup hierarchy holds the ") +
                      (!cpu ? "cpu" : "memory") +
                      " controller (not mounted on v1, not enabled on v2); the process "
                      "backend cannot enforce limits");
  }
  const Hierarchy* usage = nullptr;
  if (cpu->version == 1) usage = find("cpuacct");
  if (!usage) usage = unified;
  if (!usage) {
    throw CgroupError("cpu is on cgroup v1 but no cpuacct hierarchy or v2 tree is mounted; "
                      "the process backend cannot measure CPU use");
  }
  const Hierarchy* procs = unified ? unified : memory;

  CgroupLayout layout;
  auto index = [&](const Hierarchy* h) {
    for (size_t i = 0; i < layout.used_.size(); ++i) {
      if (layout.used_[i].mount == h->mount) return i;
    }
    layout.used_.push_back(*h);
    return layout.used_.size() - 1;
  };
  layout.cpu_ = index(cpu);
  layout.memory_ = index(memory);
  layout.usage_ = index(usage);
  layout.procs_ = index(procs);
  return layout;
}

std::string CgroupLayout::Summary() const {
  auto v = [](const Hierarchy& h) { return h.version == 1 ? std::string("v1") : "v2"; };
  return "cpu=" + v(cpu()) + " memory=" + v(memory()) + " usage=" + v(usage()) +
         " procs=" + v(procs());
}

InstanceCgroup::InstanceCgroup(const CgroupLayout* layout, std::string relpath)
    : layout_(layout), relpath_(std::move(relpath)) {}

std::string InstanceCgroup::Dir(const Hierarchy& h) const { return h.mount + "/" + relpath_; }

bool InstanceCgroup::Exists() const {
  for (const auto& h : layout_->hierarchies()) {
    if (!PathExists(Dir(h))) return false;
  }
  return true;
}

void InstanceCgroup::Create(const Limits& limits) const {
  for (const auto& h : layout_->hierarchies()) {
    if (h.version == 2) {
      // v2 hands a controller to a child only when every ancestor lists it in
      // cgroup.subtree_control; enable what this tree is used for on the way down.
      std::string wanted;
      if (&h == &layout_->cpu()) wanted += " +cpu";
      if (&h == &layout_->memory()) wanted += " +memory";
      std::string cur = h.mount;
      for (const auto& part : Split(relpath_, '/')) {
        if (!wanted.empty()) {
          std::string enabled = ReadFile(cur + "/cgroup.subtree_control").value_or("");
          Hierarchy current{"", 2, Split(enabled, ' ')};
          for (const auto& c : Split(wanted, ' ')) {
            if (!current.Has(c.substr(1))) WriteFile(cur + "/cgroup.subtree_control", c);
          }
        }
        cur += "/" + part;
        if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
          throw CgroupError("cannot create cgroup " + cur + ": " + ErrnoText(errno));
        }
      }
    }
    MkdirP(Dir(h));
  }
  // A new cgroup starts unlimited, so this is a shrink as far as the memsw ordering goes.
  Apply(limits, Limits{0, UINT64_MAX});
  const Hierarchy& mem = layout_->memory();
  if (mem.version == 2) {
    // Swap would let a task slip past its memory limit; a group OOM kill takes the whole task
    // down at once instead of leaving half of it running. Both files are optional (no swap
    // accounting, older kernels).
    if (PathExists(Dir(mem) + "/memory.swap.max")) WriteFile(Dir(mem) + "/memory.swap.max", "0");
    if (PathExists(Dir(mem) + "/memory.oom.group")) WriteFile(Dir(mem) + "/memory.oom.group", "1");
  }
}

void InstanceCgroup::Apply(const Limits& limits, const Limits& previous) const {
  const Hierarchy& cpu = layout_->cpu();
  std::string quota = std::to_string(QuotaUs(limits.cpu_cores));
  if (cpu.version == 2) {
    WriteFile(Dir(cpu) + "/cpu.max", quota + " " + std::to_string(kCpuPeriodUs));
  } else {
    WriteFile(Dir(cpu) + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs));
    WriteFile(Dir(cpu) + "/cpu.cfs_quota_us", quota);
  }

  const Hierarchy& mem = layout_->memory();
  // Limits are whole pages; the kernel rounds down anyway, this keeps ReadLimits() equal.
  uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  std::string bytes = std::to_string((limits.memory_bytes + page - 1) / page * page);
  if (mem.version == 2) {
    WriteFile(Dir(mem) + "/memory.max", bytes);
    return;
  }
  // v1 refuses memory.memsw.limit_in_bytes < memory.limit_in_bytes, so the order depends on
  // the direction: raise memsw first when growing, lower the plain limit first when shrinking.
  // memsw == limit means no swap at all (memsw is memory + swap).
  std::string limit = Dir(mem) + "/memory.limit_in_bytes";
  std::string memsw = Dir(mem) + "/memory.memsw.limit_in_bytes";
  bool has_memsw = PathExists(memsw);
  if (limits.memory_bytes >= previous.memory_bytes) {
    if (has_memsw) WriteFile(memsw, bytes);
    WriteFile(limit, bytes);
  } else {
    WriteFile(limit, bytes);
    if (has_memsw) WriteFile(memsw, bytes);
  }
}

Limits InstanceCgroup::ReadLimits() const {
  Limits out;
  const Hierarchy& cpu = layout_->cpu();
  int64_t quota = -1, period = kCpuPeriodUs;
  if (cpu.version == 2) {
    auto text = ReadFile(Dir(cpu) + "/cpu.max");
    if (!text) throw CgroupError("cannot read " + Dir(cpu) + "/cpu.max");
    std::istringstream in(*text);
    std::string q;
    in >> q >> period;
    if (q != "max") quota = std::stoll(q);
  } else {
    auto q = ReadFile(Dir(cpu) + "/cpu.cfs_quota_us");
    if (!q) throw CgroupError("cannot read " + Dir(cpu) + "/cpu.cfs_quota_us");
    quota = std::stoll(*q);
    period = static_cast<int64_t>(ReadU64(Dir(cpu) + "/cpu.cfs_period_us"));
  }
  // An unlimited quota is not something this backend writes; report it as the whole host so
  // the capacity ledger stays conservative.
  out.cpu_cores = quota < 0 || period <= 0
                      ? static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN))
                      : static_cast<double>(quota) / static_cast<double>(period);
  const Hierarchy& mem = layout_->memory();
  if (mem.version == 2) {
    auto text = ReadFile(Dir(mem) + "/memory.max");
    if (!text) throw CgroupError("cannot read " + Dir(mem) + "/memory.max");
    out.memory_bytes = *text == "max" ? UINT64_MAX : ParseU64(Dir(mem), *text);
  } else {
    out.memory_bytes = ReadU64(Dir(mem) + "/memory.limit_in_bytes");
  }
  return out;
}

std::vector<std::string> InstanceCgroup::ProcsFiles() const {
  std::vector<std::string> out;
  for (const auto& h : layout_->hierarchies()) out.push_back(Dir(h) + "/cgroup.procs");
  return out;
}

std::vector<pid_t> InstanceCgroup::Pids() const {
  auto text = ReadFile(Dir(layout_->procs()) + "/cgroup.procs");
  std::vector<pid_t> out;
  if (!text) return out;
  std::istringstream in(*text);
  pid_t pid;
  while (in >> pid) out.push_back(pid);
  return out;
}

bool InstanceCgroup::Contains(pid_t pid) const {
  auto pids = Pids();
  return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

uint64_t InstanceCgroup::CpuUsageNs() const {
  const Hierarchy& h = layout_->usage();
  if (h.version == 1) return ReadU64(Dir(h) + "/cpuacct.usage");
  auto text = ReadFile(Dir(h) + "/cpu.stat");
  if (!text) throw CgroupError("cannot read " + Dir(h) + "/cpu.stat: " + ErrnoText(errno));
  auto usec = KeyedValue(*text, "usage_usec");
  if (!usec) throw CgroupError(Dir(h) + "/cpu.stat has no usage_usec");
  return *usec * 1000;
}

uint64_t InstanceCgroup::MemoryPeakBytes() const {
  const Hierarchy& h = layout_->memory();
  if (h.version == 1) return ReadU64(Dir(h) + "/memory.max_usage_in_bytes");
  if (PathExists(Dir(h) + "/memory.peak")) return ReadU64(Dir(h) + "/memory.peak");
  return ReadU64(Dir(h) + "/memory.current");
}

std::optional<uint64_t> InstanceCgroup::OomKills() const {
  const Hierarchy& h = layout_->memory();
  auto text = ReadFile(Dir(h) + (h.version == 1 ? "/memory.oom_control" : "/memory.events"));
  if (!text) return std::nullopt;
  return KeyedValue(*text, "oom_kill");
}

void InstanceCgroup::ResetPeak() const {
  const Hierarchy& h = layout_->memory();
  if (h.version == 1) WriteFile(Dir(h) + "/memory.max_usage_in_bytes", "0");
}

bool InstanceCgroup::KillAll(int timeout_ms) const {
  const Hierarchy& h = layout_->procs();
  std::string kill_file = Dir(h) + "/cgroup.kill";
  bool have_kill = h.version == 2 && PathExists(kill_file);
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    auto pids = Pids();
    if (pids.empty()) return true;
    // cgroup.kill is atomic against forks; without it, a task forking in a loop may add a
    // process between the read and the kill, hence the loop until the cgroup is empty.
    if (have_kill) {
      WriteFile(kill_file, "1");
    } else {
      for (pid_t pid : pids) kill(pid, SIGKILL);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t elapsed_ms =
        (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (elapsed_ms >= timeout_ms) return Pids().empty();
    SleepMs(5);
  }
}

void InstanceCgroup::Remove(int timeout_ms) const {
  for (const auto& h : layout_->hierarchies()) {
    std::string dir = Dir(h);
    for (int waited = 0;; waited += 10) {
      if (rmdir(dir.c_str()) == 0 || errno == ENOENT) break;
      // EBUSY: a process killed a moment ago may still be exiting.
      if (errno != EBUSY || waited >= timeout_ms) {
        throw CgroupError("cannot remove cgroup " + dir + ": " + ErrnoText(errno));
      }
      SleepMs(10);
    }
  }
}

}  // namespace augur_process
