// DiskstatsCollector: block-device IO from /proc/diskstats.
//
// Series (source="procfs"; device is the kernel name, e.g. "vda", "nvme0n1"):
//   disk_ios_total{device,direction}        counter; direction is read|write (completed IOs)
//   disk_io_bytes_total{device,direction}   counter; sectors * 512 (diskstats always counts
//                                           512-byte sectors, whatever the device's size)
//   disk_io_time_seconds_total{device}      counter; time the device had IO in flight
//   disk_io_latency_seconds{device,stat="mean"}
//                                           gauge; mean time per completed IO over the last
//                                           interval: delta(ms reading + ms writing) /
//                                           delta(reads + writes). Absent on the first
//                                           Collect, in intervals without IO, and after a
//                                           counter reset. diskstats holds only sums, so
//                                           quantiles need the eBPF collector.
//
// Only whole disks are kept, i.e. names with a <root_prefix>/sys/block/<name> entry, which
// drops partitions (their IO is already in the disk's). loop, ram and zram devices that have
// never done IO are dropped too: a stock host has dozens of them and they carry no signal.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_DISKSTATS_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_DISKSTATS_COLLECTOR_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class DiskstatsCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/diskstats and checks <root_prefix>/sys/block.
  explicit DiskstatsCollector(std::string root_prefix = "")
      : ProcfsCollector(std::move(root_prefix)) {}

  std::string_view name() const override { return "procfs_diskstats"; }
  // NotFound when the file is missing.
  Status Collect(int64_t ts_ns, PointSink& sink) override;

 private:
  struct Previous {
    uint64_t ios = 0;    // reads + writes completed
    uint64_t io_ms = 0;  // ms spent reading + ms spent writing
  };
  std::map<std::string, Previous> previous_;  // by device, as of the last Collect
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_DISKSTATS_COLLECTOR_H_
