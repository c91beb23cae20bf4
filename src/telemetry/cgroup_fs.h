// CgroupFs: where the cgroup hierarchies are mounted and which cgroups they hold.
//
// Hosts mount cgroups three ways: unified v2 only (most current distros), v1 only, or a
// hybrid (v1 controllers plus a v2 tree, as on Debian with systemd's hybrid mode). CgroupFs
// reads /proc/self/mountinfo once and answers, per controller ("cpu", "cpuacct", "memory"),
// which mount holds it and whether it is v1 or v2.
//
// A cgroup is named by its path relative to its hierarchy's mount ("/", "/augur/shard-1"),
// the same text on v1 and v2. Its id is the inode number of its directory, which is what the
// kernel's cgroup id (kernfs node id) is on 64-bit hosts; eBPF programs report that id and
// Walk() maps it back to a path.
//
// Thread safety: const methods may be called from any thread.
#ifndef AUGUR_TELEMETRY_CGROUP_FS_H_
#define AUGUR_TELEMETRY_CGROUP_FS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"

namespace augur::telemetry {

struct CgroupMount {
  std::string mount_point;               // e.g. /sys/fs/cgroup/cpu or /sys/fs/cgroup
  int version = 2;                       // 1 or 2
  std::vector<std::string> controllers;  // v1: from mount options; v2: cgroup.controllers
};

struct CgroupDir {
  std::string path;  // relative to the mount, "/" for the root
  uint64_t id = 0;   // inode number of the directory
  int depth = 0;     // 0 for the root
};

class CgroupFs {
 public:
  // Parses `mountinfo` (default /proc/self/mountinfo). Every mount point found is prefixed
  // with `root_prefix` (tests point it at a fixture tree). A host without any cgroup mount
  // gives an empty CgroupFs, not an error; an unreadable mountinfo is an IOError.
  static Result<CgroupFs> Discover(std::string_view mountinfo = "/proc/self/mountinfo",
                                   std::string_view root_prefix = "");

  const std::vector<CgroupMount>& mounts() const { return mounts_; }
  // The mount holding `controller`: a v1 mount naming it, else the v2 mount when its
  // cgroup.controllers lists it; nullptr when none does.
  const CgroupMount* ForController(std::string_view controller) const;
  // The unified (v2) mount, or nullptr.
  const CgroupMount* Unified() const;

  // Cgroups under `mount`, breadth first, down to `max_depth` (0 = only the root), at most
  // `max_count` of them.
  std::vector<CgroupDir> Walk(const CgroupMount& mount, int max_depth,
                              size_t max_count = 4096) const;

  // Path of the cgroup of process `pid` in the hierarchy of `mount` (from /proc/PID/cgroup).
  Result<std::string> CgroupOfPid(const CgroupMount& mount, int pid) const;

 private:
  std::vector<CgroupMount> mounts_;
  std::string root_prefix_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_CGROUP_FS_H_
