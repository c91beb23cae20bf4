// The bpf_blockio collector: loader and reader of bpf/blockio.bpf.c.
#include <linux/types.h>

#include <array>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "augur_blockio.skel.h"
#include "blockio.h"
#include "telemetry/block_device_names.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/bpf_map_reader.h"
#include "telemetry/bpf_program_stats.h"
#include "telemetry/bpf_skeleton.h"
#include "telemetry/kernel_btf.h"
#include "telemetry/log2_histogram.h"

namespace augur::telemetry {
namespace {

using BlockIoSkel = SkeletonPtr<augur_blockio>;
using Slots = std::array<uint64_t, AUGUR_LOG2_SLOTS>;

// One device's cumulative latency figures, both directions together.
struct Latency {
  Slots slots{};
  uint64_t ios = 0;
  uint64_t sum_ns = 0;
};

class BpfBlockIoCollector final : public Collector {
 public:
  explicit BpfBlockIoCollector(BlockIoSkel skel) : skel_(std::move(skel)) {
    stats_.Track(skel_->obj);
  }

  std::string_view name() const override { return "bpf_blockio"; }

  Status Collect(int64_t ts_ns, PointSink& sink) override {
    const struct bpf_map* map = skel_->maps.io_stats;
    std::map<__u32, Latency> latency;  // by kernel dev_t
    for (const blockio_key& key : ListKeys<blockio_key>(map)) {
      Result<std::vector<blockio_stats>> per_cpu = ReadPerCpu<blockio_stats>(map, key);
      if (!per_cpu) {
        if (per_cpu.error().IsNotFound()) continue;
        return per_cpu.error();
      }
      blockio_stats total = {};
      for (const blockio_stats& s : *per_cpu) {
        total.ios += s.ios;
        total.bytes += s.bytes;
        total.lat_sum_ns += s.lat_sum_ns;
        for (size_t i = 0; i < AUGUR_LOG2_SLOTS; ++i) total.lat_slots[i] += s.lat_slots[i];
      }
      const std::string device = names_.Name(AUGUR_KDEV_MAJOR(key.dev), AUGUR_KDEV_MINOR(key.dev));
      const char* direction = key.dir == BLOCKIO_READ ? "read" : "write";
      // Entries are never deleted, so the per-CPU sums only grow; the high-water mark
      // guards against a torn read of a value being updated.
      Counters& c = counters_[key.dev][key.dir == BLOCKIO_READ ? 0 : 1];
      c.ios = std::max<uint64_t>(c.ios, total.ios);
      c.bytes = std::max<uint64_t>(c.bytes, total.bytes);
      const std::vector<Label> labels = {
          {"device", device}, {"direction", direction}, {"source", "bpf"}};
      sink.Emit(SeriesKey("disk_ios_total", labels), ts_ns, static_cast<double>(c.ios));
      sink.Emit(SeriesKey("disk_io_bytes_total", labels), ts_ns, static_cast<double>(c.bytes));

      Latency& l = latency[key.dev];
      l.ios += total.ios;
      l.sum_ns += total.lat_sum_ns;
      for (size_t i = 0; i < AUGUR_LOG2_SLOTS; ++i) l.slots[i] += total.lat_slots[i];
    }

    for (const auto& [dev, now] : latency) {
      Latency& prev = prev_latency_[dev];
      const uint64_t ios = now.ios > prev.ios ? now.ios - prev.ios : 0;
      if (ios > 0) {
        const std::string device = names_.Name(AUGUR_KDEV_MAJOR(dev), AUGUR_KDEV_MINOR(dev));
        const auto emit = [&](const char* stat, double seconds) {
          sink.Emit(SeriesKey("disk_io_latency_seconds",
                              {{"device", device}, {"stat", stat}, {"source", "bpf"}}),
                    ts_ns, seconds);
        };
        const std::vector<uint64_t> interval = Log2Delta(now.slots, prev.slots);
        const uint64_t sum = now.sum_ns > prev.sum_ns ? now.sum_ns - prev.sum_ns : 0;
        emit("mean", static_cast<double>(sum) / static_cast<double>(ios) / 1e9);
        if (auto p50 = Log2Quantile(interval, 0.50)) emit("p50", *p50 / 1e9);
        if (auto p99 = Log2Quantile(interval, 0.99)) emit("p99", *p99 / 1e9);
      }
      prev = now;
    }
    stats_.Emit(ts_ns, sink);
    return Status::OK();
  }

 private:
  struct Counters {
    uint64_t ios = 0;
    uint64_t bytes = 0;
  };

  BlockIoSkel skel_;
  BpfProgramStats stats_;
  BlockDeviceNames names_;
  std::map<__u32, std::array<Counters, 2>> counters_;  // by dev_t, then read/write
  std::map<__u32, Latency> prev_latency_;
};

}  // namespace

Result<std::unique_ptr<Collector>> MakeBpfBlockIoCollector(const BpfOptions& options) {
  constexpr std::string_view kWhat = "bpf_blockio";
  if (Status s = CheckBpfPrerequisites(options); !s.ok()) return Err(s.Annotate(kWhat));
  Result<KernelBtf> btf = KernelBtf::Load(options.btf_path);
  if (!btf) return Err(btf.error().Annotate(kWhat));
  const std::optional<int> issue_args = btf->TracepointArgCount("block_rq_issue");
  if (!issue_args || !btf->TracepointArgCount("block_rq_complete")) {
    return Err(Status::Unavailable(
        "bpf_blockio: the kernel BTF has no block_rq_issue/block_rq_complete tracepoints"));
  }

  const SkeletonOps<augur_blockio> ops = {&augur_blockio__open_opts, &augur_blockio__load,
                                          &augur_blockio__attach, &augur_blockio__destroy};
  Result<BlockIoSkel> skel =
      OpenLoadAttach<augur_blockio>(kWhat, options, ops, [&](augur_blockio& s) -> Status {
        // (request_queue *, request *) before v5.11, (request *) since; see blockio.bpf.c.
        s.rodata->targ_rq_issue_has_queue_arg = *issue_args >= 2;
        return Status::OK();
      });
  if (!skel) return Err(skel.error());
  return std::make_unique<BpfBlockIoCollector>(std::move(*skel));
}

}  // namespace augur::telemetry
