// The bpf_cpu collector: loader and reader of bpf/cpu.bpf.c.
#include <linux/types.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "augur_cpu.skel.h"
#include "cpu.h"
#include "telemetry/bpf_cgroup_hierarchy.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/bpf_map_reader.h"
#include "telemetry/bpf_program_stats.h"
#include "telemetry/bpf_skeleton.h"
#include "telemetry/cgroup_counters.h"
#include "telemetry/kernel_btf.h"
#include "telemetry/log2_histogram.h"

namespace augur::telemetry {
namespace {

using CpuSkel = SkeletonPtr<augur_cpu>;

uint64_t MonotonicNowNs() {
  // bpf_ktime_get_ns() is CLOCK_MONOTONIC, so the programs' timestamps compare with this.
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

class BpfCpuCollector final : public Collector {
 public:
  BpfCpuCollector(CpuSkel skel, CgroupCounters cgroups)
      : skel_(std::move(skel)), cgroups_(std::move(cgroups)) {
    stats_.Track(skel_->obj);
  }

  std::string_view name() const override { return "bpf_cpu"; }

  Status Collect(int64_t ts_ns, PointSink& sink) override {
    Result<std::vector<cpu_state>> states = ReadPerCpu<cpu_state>(skel_->maps.cpu_states, 0u);
    if (!states) return states.error();
    const uint64_t now = MonotonicNowNs();

    EmitCpus(*states, now, ts_ns, sink);
    AUGUR_RETURN_IF_ERROR(CollectCgroups(*states, now, ts_ns, sink));
    AUGUR_RETURN_IF_ERROR(CollectRunQueue(*states, ts_ns, sink));
    stats_.Emit(ts_ns, sink);
    return Status::OK();
  }

 private:
  // The slice the task on `s`'s CPU has been running since its last switch: not yet in any
  // counter, and without it a task that never leaves its CPU would look idle. Wall time (user
  // space cannot read the task's run time): steal in it may be credited to the cgroup once,
  // where the switch would have left it out (the counters keep their high-water mark).
  static uint64_t RunningSliceNs(const cpu_state& s, uint64_t now) {
    if (s.cur_pid == 0 || s.switch_ts == 0 || now <= s.switch_ts) return 0;
    return now - s.switch_ts;
  }

  void EmitCpus(const std::vector<cpu_state>& states, uint64_t now, int64_t ts_ns,
                PointSink& sink) {
    if (busy_ns_.size() < states.size()) busy_ns_.resize(states.size(), 0);
    for (size_t cpu = 0; cpu < states.size(); ++cpu) {
      const cpu_state& s = states[cpu];
      if (s.switch_ts == 0) continue;  // offline or not yet switched since attach
      // The copy is not atomic against the program; a torn read can over-credit the running
      // slice once. Reporting the high-water mark keeps the counter monotonic.
      busy_ns_[cpu] = std::max<uint64_t>(busy_ns_[cpu], s.busy_ns + RunningSliceNs(s, now));
      sink.Emit(
          SeriesKey("cpu_busy_seconds_total", {{"cpu", std::to_string(cpu)}, {"source", "bpf"}}),
          ts_ns, static_cast<double>(busy_ns_[cpu]) / 1e9);
    }
  }

  Status CollectCgroups(const std::vector<cpu_state>& states, uint64_t now, int64_t ts_ns,
                        PointSink& sink) {
    const struct bpf_map* map = skel_->maps.cgroup_cpu_ns;
    std::vector<CgroupCounters::Sample> samples;
    for (const __u64 id : ListKeys<__u64>(map)) {
      Result<std::vector<__u64>> per_cpu = ReadPerCpu<__u64>(map, id);
      if (!per_cpu) {
        if (per_cpu.error().IsNotFound()) continue;  // deleted since listed
        return per_cpu.error();
      }
      CgroupCounters::Sample s;
      s.id = id;
      for (__u64 ns : *per_cpu) s.values[0] += ns;
      samples.push_back(s);
    }
    // Add what each CPU holds outside the map: time charged but not yet flushed (see
    // cpu.h), and the slice running now. Either may belong to a cgroup with no entry yet.
    const auto add = [&samples](uint64_t id, uint64_t ns) {
      if (ns == 0) return;
      auto it = std::find_if(samples.begin(), samples.end(),
                             [id](const CgroupCounters::Sample& x) { return x.id == id; });
      if (it == samples.end()) it = samples.insert(samples.end(), CgroupCounters::Sample{id, {}});
      it->values[0] += ns;
      it->pinned = true;
    };
    for (const cpu_state& s : states) {
      add(s.pending_cgroup_id, s.pending_ns);
      add(s.cur_cgroup_id, RunningSliceNs(s, now));
    }

    for (const uint64_t id : cgroups_.Update(samples)) {
      const __u64 key = id;
      bpf_map__delete_elem(map, &key, sizeof key, 0);  // ENOENT is fine: already gone
    }
    cgroups_.ForEach([&](const std::string& path, const CgroupCounters::Values& v) {
      sink.Emit(SeriesKey("cgroup_cpu_seconds_total", {{"cgroup", path}, {"source", "bpf"}}), ts_ns,
                static_cast<double>(v[0]) / 1e9);
    });
    return Status::OK();
  }

  Status CollectRunQueue(const std::vector<cpu_state>& states, int64_t ts_ns, PointSink& sink) {
    Result<std::vector<runq_hist>> hists = ReadPerCpu<runq_hist>(skel_->maps.runq_hists, 0u);
    if (!hists) return hists.error();
    std::array<uint64_t, AUGUR_LOG2_SLOTS> slots{};
    uint64_t count = 0, sum_ns = 0, wakeups = 0;
    for (const runq_hist& h : *hists) {
      for (size_t i = 0; i < slots.size(); ++i) slots[i] += h.slots[i];
      count += h.count;
      sum_ns += h.sum_ns;
    }
    for (const cpu_state& s : states) wakeups += s.wakeups;

    const std::vector<uint64_t> interval = Log2Delta(slots, prev_slots_);
    const uint64_t interval_count = count > prev_count_ ? count - prev_count_ : 0;
    const uint64_t interval_sum = sum_ns > prev_sum_ns_ ? sum_ns - prev_sum_ns_ : 0;
    if (interval_count > 0) {
      const auto emit = [&](const char* stat, double seconds) {
        sink.Emit(SeriesKey("runqueue_latency_seconds", {{"stat", stat}, {"source", "bpf"}}), ts_ns,
                  seconds);
      };
      if (auto p50 = Log2Quantile(interval, 0.50)) emit("p50", *p50 / 1e9);
      if (auto p99 = Log2Quantile(interval, 0.99)) emit("p99", *p99 / 1e9);
      emit("mean", static_cast<double>(interval_sum) / static_cast<double>(interval_count) / 1e9);
    }
    prev_slots_ = slots;
    prev_count_ = count;
    prev_sum_ns_ = sum_ns;

    wakeups_ = std::max(wakeups_, wakeups);
    sink.Emit(SeriesKey("runqueue_wakeups_total", {{"source", "bpf"}}), ts_ns,
              static_cast<double>(wakeups_));
    return Status::OK();
  }

  CpuSkel skel_;
  BpfProgramStats stats_;
  CgroupCounters cgroups_;
  std::vector<uint64_t> busy_ns_;  // per CPU, last value emitted
  std::array<uint64_t, AUGUR_LOG2_SLOTS> prev_slots_{};
  uint64_t prev_count_ = 0;
  uint64_t prev_sum_ns_ = 0;
  uint64_t wakeups_ = 0;
};

}  // namespace

Result<std::unique_ptr<Collector>> MakeBpfCpuCollector(const BpfOptions& options,
                                                       const CgroupFs& cgroups) {
  constexpr std::string_view kWhat = "bpf_cpu";
  if (Status s = CheckBpfPrerequisites(options); !s.ok()) return Err(s.Annotate(kWhat));
  Result<KernelBtf> btf = KernelBtf::Load(options.btf_path);
  if (!btf) return Err(btf.error().Annotate(kWhat));
  Result<BpfCgroupHierarchy> hierarchy = SelectBpfCgroupHierarchy(cgroups, *btf);
  if (!hierarchy) return Err(hierarchy.error().Annotate(kWhat));

  const SkeletonOps<augur_cpu> ops = {&augur_cpu__open_opts, &augur_cpu__load, &augur_cpu__attach,
                                      &augur_cpu__destroy};
  Result<CpuSkel> skel =
      OpenLoadAttach<augur_cpu>(kWhat, options, ops, [&](augur_cpu& s) -> Status {
        s.rodata->targ_cgroup_v1_subsys = hierarchy->v1_subsys;
        if (bpf_map__set_max_entries(s.maps.cgroup_cpu_ns, BpfCgroupMapEntries(options)) != 0) {
          return Status::Internal("cannot size cgroup_cpu_ns");
        }
        return Status::OK();
      });
  if (!skel) return Err(skel.error());

  // The entry the program charges when the map is full; it must exist before that happens.
  const __u64 overflow = AUGUR_CGROUP_OVERFLOW_ID;
  std::vector<__u64> zeros(PossibleCpus(), 0);
  if (bpf_map__update_elem((*skel)->maps.cgroup_cpu_ns, &overflow, sizeof overflow, zeros.data(),
                           zeros.size() * sizeof(__u64), BPF_NOEXIST) != 0) {
    return Err(Status::FromErrno("bpf_cpu: inserting the overflow entry", errno));
  }

  return std::make_unique<BpfCpuCollector>(
      std::move(*skel), MakeBpfCgroupCounters(cgroups, hierarchy->mount, options));
}

}  // namespace augur::telemetry
