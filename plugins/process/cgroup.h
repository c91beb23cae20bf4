// The process backend's own small cgroup layer.
//
// A plugin may include only include/augur/plugin.h and system headers (plugins/CMakeLists.txt
// links nothing of augur into it), so this is a separate, deliberately narrow piece of code
// from src/telemetry/cgroup_fs.h: it knows the handful of files the backend writes and reads.
//
// Hosts mount cgroups three ways: v2 only (most current distros), v1 only, or hybrid (v1
// controllers plus a v2 tree that holds few or no controllers, as on Debian with systemd's
// hybrid mode). CgroupLayout picks, per controller, where it lives:
//   - cpu and memory: the v2 tree when its cgroup.controllers lists them, else the v1
//     hierarchy mounted with them.
//   - CPU usage: cpuacct.usage on v1 when cpu itself is on v1, else cpu.stat usage_usec on
//     v2 (which every v2 cgroup has, controller or not).
//   - membership and kill: the v2 tree when one is mounted at all (cgroup.kill, and a
//     cgroup.procs that sees every process of the task), else the v1 memory hierarchy.
// An instance is then one directory with the same relative path in each hierarchy used.
//
// Errors are thrown as CgroupError, which the plugin's C shim reports as AUGUR_ERR_IO.
#ifndef AUGUR_PLUGINS_PROCESS_CGROUP_H_
#define AUGUR_PLUGINS_PROCESS_CGROUP_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "plugin_shim.h"

namespace augur_process {

// A failure of the system under the backend; the host sees AUGUR_ERR_IO.
class CgroupError : public augur_shim::PluginError {
 public:
  explicit CgroupError(const std::string& message)
      : augur_shim::PluginError(AUGUR_ERR_IO, message) {}
};

struct Hierarchy {
  std::string mount;  // e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup
  int version = 2;    // 1 or 2
  std::vector<std::string> controllers;  // v1: mount options; v2: cgroup.controllers
  bool Has(const std::string& controller) const;
};

// Where each controller lives on this host. Built once at plugin init.
class CgroupLayout {
 public:
  // Parses `mountinfo`. Throws CgroupError when it is unreadable or when no hierarchy holds
  // the cpu or memory controller (the backend cannot enforce limits without both).
  static CgroupLayout Discover(const std::string& mountinfo = "/proc/self/mountinfo");

  // Indexes into hierarchies().
  const std::vector<Hierarchy>& hierarchies() const { return used_; }
  const Hierarchy& cpu() const { return used_[cpu_]; }
  const Hierarchy& memory() const { return used_[memory_]; }
  const Hierarchy& usage() const { return used_[usage_]; }
  const Hierarchy& procs() const { return used_[procs_]; }
  // "cpu=v1 memory=v1 usage=v1 procs=v2" for labels and logs.
  std::string Summary() const;

 private:
  std::vector<Hierarchy> used_;  // only the hierarchies the backend writes to
  size_t cpu_ = 0, memory_ = 0, usage_ = 0, procs_ = 0;
};

// The limits an instance cgroup enforces.
struct Limits {
  double cpu_cores = 0;
  uint64_t memory_bytes = 0;
};

// One instance's cgroup: the directory `relpath` (e.g. "augur/augur-shard-1") in every
// hierarchy of a layout. Cheap to copy; holds no file descriptors.
class InstanceCgroup {
 public:
  InstanceCgroup(const CgroupLayout* layout, std::string relpath);

  const std::string& relpath() const { return relpath_; }
  // True when the directory exists in every hierarchy.
  bool Exists() const;
  // Creates the directory in every hierarchy (parents too, enabling the v2 controllers on
  // the way down) and applies `limits`. An existing directory is reused.
  void Create(const Limits& limits) const;
  // Changes the limits of the live cgroup. Throws when the kernel refuses (e.g. a v1 memory
  // limit below what the cgroup cannot reclaim).
  void Apply(const Limits& limits, const Limits& previous) const;
  // Reads the limits back (recovery after a restart).
  Limits ReadLimits() const;

  // Paths of the cgroup.procs files a new process must write itself into, one per hierarchy.
  std::vector<std::string> ProcsFiles() const;
  // Pids in the cgroup (from the membership hierarchy).
  std::vector<pid_t> Pids() const;
  bool Contains(pid_t pid) const;

  // Total CPU time of everything that ever ran in the cgroup, in nanoseconds.
  uint64_t CpuUsageNs() const;
  // Memory high-water mark; on v2 without memory.peak, the current usage (the caller keeps
  // the maximum of what it has seen).
  uint64_t MemoryPeakBytes() const;
  // How many processes the kernel's OOM killer has killed in the cgroup so far; nullopt
  // when the kernel does not count them.
  std::optional<uint64_t> OomKills() const;
  // v1 only: resets memory.max_usage_in_bytes so the next peak is the next task's.
  void ResetPeak() const;

  // SIGKILLs everything in the cgroup (cgroup.kill where the kernel has it) and waits up to
  // `timeout_ms` for it to be empty. Returns whether it emptied.
  bool KillAll(int timeout_ms) const;
  // Removes the directory from every hierarchy; missing directories are fine. Retries
  // briefly on EBUSY (a killed process may still be leaving). Throws when it cannot.
  void Remove(int timeout_ms) const;

 private:
  std::string Dir(const Hierarchy& h) const;

  const CgroupLayout* layout_;
  std::string relpath_;
};

// Small file helpers, shared with the backend.
std::optional<std::string> ReadFile(const std::string& path);
// Throws CgroupError naming the file and errno.
void WriteFile(const std::string& path, const std::string& value);
bool PathExists(const std::string& path);

}  // namespace augur_process

#endif  // AUGUR_PLUGINS_PROCESS_CGROUP_H_
