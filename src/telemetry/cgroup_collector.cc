#include "telemetry/cgroup_collector.h"

#include <vector>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// v1 reports "no limit" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB
// pages, other values with other page sizes); every such value is above 2^62, and no real
// limit is.
constexpr uint64_t kV1Unlimited = uint64_t{1} << 62;
// Sentinel ReadNumber() returns for the literal "max" when allowed.
constexpr uint64_t kMax = UINT64_MAX;

std::string_view TrimNewline(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  return s;
}

}  // namespace

CgroupCollector::CgroupCollector(std::string root_prefix, int max_depth, size_t max_cgroups)
    : ProcfsCollector(std::move(root_prefix)),
      max_depth_(max_depth < 0 ? 0 : max_depth),
      max_cgroups_(max_cgroups == 0 ? 1 : max_cgroups) {}

Status CgroupCollector::Collect(int64_t ts_ns, PointSink& sink) {
  if (!fs_) {
    auto fs = CgroupFs::Discover(HostPath("/proc/self/mountinfo"), root_prefix());
    if (!fs) return fs.error();
    fs_ = std::move(*fs);
  }

  const CgroupMount* cpuacct = fs_->ForController("cpuacct");
  const CgroupMount* cpu = fs_->ForController("cpu");
  const CgroupMount* memory = fs_->ForController("memory");
  const CgroupMount* unified = fs_->Unified();

  std::vector<Plan> plans;
  auto plan_for = [&plans](const CgroupMount* m) -> Plan& {
    for (Plan& p : plans) {
      if (p.mount == m) return p;
    }
    plans.push_back(Plan{m});
    return plans.back();
  };
  if (cpuacct != nullptr && cpuacct->version == 1) {
    plan_for(cpuacct).cpuacct_usage = true;
  } else if (cpu != nullptr) {
    plan_for(cpu).cpu_stat_usage = true;
  } else if (unified != nullptr) {
    // cpu.stat's usage_usec is kept for every v2 cgroup whether or not the cpu controller
    // is enabled, so the unified tree serves CPU usage even without "cpu" listed.
    plan_for(unified).cpu_stat_usage = true;
  }
  if (cpu != nullptr) plan_for(cpu).cpu_stat_throttle = true;
  if (memory != nullptr) plan_for(memory).memory = true;
  if (plans.empty()) {
    return UnavailableOnce(Status::Unavailable(
        "cgroups: no hierarchy holds cpu, cpuacct or memory in " +
        HostPath("/proc/self/mountinfo") + "; cgroup_* series will be missing"));
  }

  Status first_error;
  for (const Plan& plan : plans) {
    std::vector<CgroupDir> dirs = fs_->Walk(*plan.mount, max_depth_, max_cgroups_);
    if (dirs.empty()) {
      // The hierarchy's root is gone (unmounted, or remounted elsewhere): rediscover on the
      // next Collect rather than keep reading a path that no longer exists.
      if (first_error.ok()) {
        first_error = Status::IOError(plan.mount->mount_point + ": cannot list cgroup root");
      }
      continue;
    }
    for (const CgroupDir& dir : dirs) CollectCgroup(plan, dir, ts_ns, sink);
  }
  if (!first_error.ok()) fs_.reset();  // `plans` points into fs_; not used past here
  return first_error;
}

void CgroupCollector::CollectCgroup(const Plan& plan, const CgroupDir& dir, int64_t ts_ns,
                                    PointSink& sink) {
  const CgroupMount& m = *plan.mount;
  const std::string base = dir.path == "/" ? m.mount_point : m.mount_point + dir.path;
  const bool v1 = m.version == 1;

  if (plan.cpuacct_usage) {
    if (auto ns = ReadNumber(base + "/cpuacct.usage", false)) {
      Emit(sink, ts_ns, "cgroup_cpu_seconds_total", {{"cgroup", dir.path}},
           static_cast<double>(*ns) / 1e9);
    }
  }

  if (plan.cpu_stat_usage || plan.cpu_stat_throttle) {
    if (auto text = ReadWholeFile(base + "/cpu.stat")) {
      for (std::string_view line : SplitLines(*text)) {
        std::vector<std::string_view> f = SplitFields(line);
        if (f.empty()) continue;
        double scale;
        std::string_view metric;
        if (plan.cpu_stat_usage && f[0] == "usage_usec") {
          metric = "cgroup_cpu_seconds_total";
          scale = 1e-6;
        } else if (plan.cpu_stat_throttle && f[0] == (v1 ? "throttled_time" : "throttled_usec")) {
          metric = "cgroup_cpu_throttled_seconds_total";
          scale = v1 ? 1e-9 : 1e-6;  // v1 throttled_time is in ns, v2 throttled_usec in us
        } else {
          continue;
        }
        std::optional<uint64_t> v = f.size() == 2 ? ParseU64(f[1]) : std::nullopt;
        if (!v) {
          CountMalformed();
          continue;
        }
        Emit(sink, ts_ns, metric, {{"cgroup", dir.path}}, static_cast<double>(*v) * scale);
      }
    }
  }

  if (plan.memory) {
    if (auto bytes =
            ReadNumber(base + (v1 ? "/memory.usage_in_bytes" : "/memory.current"), false)) {
      Emit(sink, ts_ns, "cgroup_memory_bytes", {{"cgroup", dir.path}}, static_cast<double>(*bytes));
    }
    auto limit = ReadNumber(base + (v1 ? "/memory.limit_in_bytes" : "/memory.max"), !v1);
    if (limit && *limit != kMax && !(v1 && *limit >= kV1Unlimited)) {
      Emit(sink, ts_ns, "cgroup_memory_limit_bytes", {{"cgroup", dir.path}},
           static_cast<double>(*limit));
    }
  }
}

std::optional<uint64_t> CgroupCollector::ReadNumber(const std::string& path, bool allow_max) {
  auto text = ReadWholeFile(path, 4096);
  if (!text) return std::nullopt;  // absent here (v2 root, controller off) or cgroup gone
  std::string_view s = TrimNewline(*text);
  if (allow_max && s == "max") return kMax;
  std::optional<uint64_t> v = ParseU64(s);
  if (!v) CountMalformed();
  return v;
}

}  // namespace augur::telemetry
