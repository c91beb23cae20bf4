#include "telemetry/bpf_cgroup_hierarchy.h"

#include <algorithm>
#include <string>

namespace augur::telemetry {

Result<BpfCgroupHierarchy> SelectBpfCgroupHierarchy(const CgroupFs& cgroups, const KernelBtf& btf) {
  BpfCgroupHierarchy out;
  for (const char* controller : {"cpu", "cpuacct"}) {
    const CgroupMount* mount = cgroups.ForController(controller);
    if (mount == nullptr) continue;
    out.mount = *mount;
    if (mount->version == 2) return out;  // dfl_cgrp, v1_subsys stays -1
    const std::string enumerator = std::string(controller) + "_cgrp_id";
    std::optional<int64_t> index = btf.EnumValue("cgroup_subsys_id", enumerator);
    if (!index || *index < 0) {
      return Err(Status::Unavailable("the " + std::string(controller) +
                                     " controller is mounted as cgroup v1 at " +
                                     mount->mount_point + " but the kernel BTF has no " +
                                     enumerator + " in enum cgroup_subsys_id"));
    }
    out.v1_subsys = static_cast<int>(*index);
    return out;
  }
  if (const CgroupMount* unified = cgroups.Unified()) out.mount = *unified;
  return out;
}

CgroupCounters MakeBpfCgroupCounters(const CgroupFs& cgroups,
                                     const std::optional<CgroupMount>& mount,
                                     const BpfOptions& options) {
  // Deeper than cgroup_depth on purpose: ids of deeper cgroups must be found to be folded
  // into their ancestor. The walk is bounded by count, breadth first, so a huge tree costs
  // at most that many stat() calls, and only when an unknown id shows up.
  constexpr int kWalkDepth = 64;
  const size_t walk_limit = std::max<size_t>(4096, 16 * options.max_cgroups);
  CgroupCounters::Options counter_options;
  counter_options.depth = std::max(0, options.cgroup_depth);
  counter_options.max_series = options.max_cgroups;
  return CgroupCounters(
      [cgroups, mount, walk_limit] {
        return mount ? cgroups.Walk(*mount, kWalkDepth, walk_limit) : std::vector<CgroupDir>{};
      },
      counter_options);
}

uint32_t BpfCgroupMapEntries(const BpfOptions& options) {
  return static_cast<uint32_t>(std::clamp<size_t>(8 * options.max_cgroups, 1024, 65536));
}

}  // namespace augur::telemetry
