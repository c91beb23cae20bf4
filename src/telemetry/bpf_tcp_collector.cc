// The bpf_tcp collector: loader and reader of bpf/tcp.bpf.c.
#include <linux/types.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "augur_tcp.skel.h"
#include "tcp.h"
#include "telemetry/bpf_cgroup_hierarchy.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/bpf_map_reader.h"
#include "telemetry/bpf_program_stats.h"
#include "telemetry/bpf_skeleton.h"
#include "telemetry/cgroup_counters.h"
#include "telemetry/kernel_btf.h"

namespace augur::telemetry {
namespace {

using TcpSkel = SkeletonPtr<augur_tcp>;

// How the byte counters hook in; see tcp.bpf.c.
enum class TcpHooks { kFentry, kSockTracepoints };

class BpfTcpCollector final : public Collector {
 public:
  BpfTcpCollector(TcpSkel skel, CgroupCounters cgroups)
      : skel_(std::move(skel)), cgroups_(std::move(cgroups)) {
    stats_.Track(skel_->obj);
  }

  std::string_view name() const override { return "bpf_tcp"; }

  Status Collect(int64_t ts_ns, PointSink& sink) override {
    AUGUR_RETURN_IF_ERROR(CollectBytes(ts_ns, sink));

    Result<std::vector<tcp_totals>> totals = ReadPerCpu<tcp_totals>(skel_->maps.tcp_totals, 0u);
    if (!totals) return totals.error();
    uint64_t retransmits = 0;
    for (const tcp_totals& t : *totals) retransmits += t.retransmits;
    retransmits_ = std::max(retransmits_, retransmits);
    sink.Emit(SeriesKey("tcp_retransmits_total", {{"source", "bpf"}}), ts_ns,
              static_cast<double>(retransmits_));

    stats_.Emit(ts_ns, sink);
    return Status::OK();
  }

 private:
  Status CollectBytes(int64_t ts_ns, PointSink& sink) {
    const struct bpf_map* map = skel_->maps.tcp_bytes;
    std::vector<CgroupCounters::Sample> samples;
    for (const __u64 id : ListKeys<__u64>(map)) {
      Result<std::vector<tcp_cgroup_bytes>> per_cpu = ReadPerCpu<tcp_cgroup_bytes>(map, id);
      if (!per_cpu) {
        if (per_cpu.error().IsNotFound()) continue;
        return per_cpu.error();
      }
      CgroupCounters::Sample s;
      s.id = id;
      for (const tcp_cgroup_bytes& b : *per_cpu) {
        s.values[0] += b.sent;
        s.values[1] += b.received;
      }
      samples.push_back(s);
    }
    for (const uint64_t id : cgroups_.Update(samples)) {
      const __u64 key = id;
      bpf_map__delete_elem(map, &key, sizeof key, 0);
    }
    cgroups_.ForEach([&](const std::string& path, const CgroupCounters::Values& v) {
      sink.Emit(SeriesKey("tcp_bytes_total",
                          {{"cgroup", path}, {"direction", "sent"}, {"source", "bpf"}}),
                ts_ns, static_cast<double>(v[0]));
      sink.Emit(SeriesKey("tcp_bytes_total",
                          {{"cgroup", path}, {"direction", "received"}, {"source", "bpf"}}),
                ts_ns, static_cast<double>(v[1]));
    });
    return Status::OK();
  }

  TcpSkel skel_;
  BpfProgramStats stats_;
  CgroupCounters cgroups_;
  uint64_t retransmits_ = 0;
};

Result<TcpSkel> LoadTcp(const BpfOptions& options, const BpfCgroupHierarchy& hierarchy,
                        TcpHooks hooks) {
  const SkeletonOps<augur_tcp> ops = {&augur_tcp__open_opts, &augur_tcp__load, &augur_tcp__attach,
                                      &augur_tcp__destroy};
  const bool fentry = hooks == TcpHooks::kFentry;
  return OpenLoadAttach<augur_tcp>(
      fentry ? "bpf_tcp (fentry)" : "bpf_tcp (sock tracepoints)", options, ops,
      [&](augur_tcp& s) -> Status {
        s.rodata->targ_cgroup_v1_subsys = hierarchy.v1_subsys;
        bpf_program__set_autoload(s.progs.tcp_sendmsg_exit, fentry);
        bpf_program__set_autoload(s.progs.tcp_cleanup_rbuf, fentry);
        bpf_program__set_autoload(s.progs.sock_send_length, !fentry);
        bpf_program__set_autoload(s.progs.sock_recv_length, !fentry);
        if (bpf_map__set_max_entries(s.maps.tcp_bytes, BpfCgroupMapEntries(options)) != 0) {
          return Status::Internal("cannot size tcp_bytes");
        }
        return Status::OK();
      });
}

}  // namespace

Result<std::unique_ptr<Collector>> MakeBpfTcpCollector(const BpfOptions& options,
                                                       const CgroupFs& cgroups) {
  constexpr std::string_view kWhat = "bpf_tcp";
  if (Status s = CheckBpfPrerequisites(options); !s.ok()) return Err(s.Annotate(kWhat));
  Result<KernelBtf> btf = KernelBtf::Load(options.btf_path);
  if (!btf) return Err(btf.error().Annotate(kWhat));
  Result<BpfCgroupHierarchy> hierarchy = SelectBpfCgroupHierarchy(cgroups, *btf);
  if (!hierarchy) return Err(hierarchy.error().Annotate(kWhat));

  // fentry/fexit first: TCP-only hooks, available since 5.5. Some kernels refuse every
  // trampoline program (EPERM even for root: lockdown, LSMs, hypervisor policy) or cannot
  // build one (ENOTSUPP); the sock_*_length tracepoints (6.3+) then do the same job.
  Result<TcpSkel> skel = LoadTcp(options, *hierarchy, TcpHooks::kFentry);
  if (!skel) {
    Status fentry_error = skel.error();
    if (btf->TracepointArgCount("sock_send_length") &&
        btf->TracepointArgCount("sock_recv_length")) {
      skel = LoadTcp(options, *hierarchy, TcpHooks::kSockTracepoints);
      if (!skel) {
        return Err(Status::Unavailable(fentry_error.message() + "; and " + skel.error().message()));
      }
    } else {
      return Err(Status::Unavailable(fentry_error.message() +
                                     "; no sock_send_length tracepoint to fall back to"));
    }
  }

  const __u64 overflow = AUGUR_TCP_OVERFLOW_ID;
  std::vector<tcp_cgroup_bytes> zeros(PossibleCpus(), tcp_cgroup_bytes{});
  if (bpf_map__update_elem((*skel)->maps.tcp_bytes, &overflow, sizeof overflow, zeros.data(),
                           zeros.size() * sizeof(tcp_cgroup_bytes), BPF_NOEXIST) != 0) {
    return Err(Status::FromErrno("bpf_tcp: inserting the overflow entry", errno));
  }

  return std::make_unique<BpfTcpCollector>(
      std::move(*skel), MakeBpfCgroupCounters(cgroups, hierarchy->mount, options));
}

}  // namespace augur::telemetry
