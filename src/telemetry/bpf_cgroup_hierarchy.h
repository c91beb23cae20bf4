// Which cgroup hierarchy the eBPF programs report cgroup ids in, and the matching tunable.
//
// CPU accounting belongs to the cpu controller, so ids come from the hierarchy holding it:
//   - a v1 (or hybrid) host mounts cpu (often together with cpuacct) as its own hierarchy;
//     the programs then read css_set::subsys[<index of cpu_cgrp_id>], the index coming from
//     the kernel's BTF enum cgroup_subsys_id because it depends on the kernel config;
//   - a v2 host (or a host with no v1 cpu hierarchy) uses the unified tree, css_set::dfl_cgrp
//     (tunable -1).
// The TCP collector uses the same hierarchy so its cgroup labels match the CPU collector's.
//
// Thread safety: pure function.
#ifndef AUGUR_TELEMETRY_BPF_CGROUP_HIERARCHY_H_
#define AUGUR_TELEMETRY_BPF_CGROUP_HIERARCHY_H_

#include <cstdint>
#include <optional>

#include "augur/status.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_counters.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/kernel_btf.h"

namespace augur::telemetry {

struct BpfCgroupHierarchy {
  // Where ids are walked back to paths; nullopt when the host mounts no cgroup hierarchy at
  // all, in which case every id is reported as "/other".
  std::optional<CgroupMount> mount;
  // Value for the programs' targ_cgroup_v1_subsys: css_set::subsys index, or -1 for v2.
  int v1_subsys = -1;
};

// Unavailable when a v1 cpu/cpuacct hierarchy is mounted but the kernel's BTF does not name
// its subsystem (the programs could not find the cgroup a task is in).
Result<BpfCgroupHierarchy> SelectBpfCgroupHierarchy(const CgroupFs& cgroups, const KernelBtf& btf);

// CgroupCounters for ids from `mount`, walking it through a copy of `cgroups` (deep enough
// to fold sub-cgroups into their ancestor at options.cgroup_depth) and capped at
// options.max_cgroups paths. Without a mount every id goes to "/other".
CgroupCounters MakeBpfCgroupCounters(const CgroupFs& cgroups,
                                     const std::optional<CgroupMount>& mount,
                                     const BpfOptions& options);

// max_entries for a per-cgroup-id kernel map. Ids of every depth land there (folding happens
// in user space), and idle ones are deleted after a while, so a few ids per reported path.
uint32_t BpfCgroupMapEntries(const BpfOptions& options);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BPF_CGROUP_HIERARCHY_H_
