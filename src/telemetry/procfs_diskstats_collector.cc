#include "telemetry/procfs_diskstats_collector.h"

#include <array>
#include <optional>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// Columns after "major minor name" (Documentation/admin-guide/iostats.rst). Kernels since
// 2.6.25 print at least these eleven; 4.18 and 5.5 appended discard and flush columns.
enum Column : size_t {
  kReads = 0,
  kReadsMerged,
  kSectorsRead,
  kMsReading,
  kWrites,
  kWritesMerged,
  kSectorsWritten,
  kMsWriting,
  kInFlight,
  kMsDoingIo,
  kWeightedMs,
  kNumColumns,
};

bool IsVirtualDevice(std::string_view name) {
  return name.starts_with("loop") || name.starts_with("ram") || name.starts_with("zram");
}

}  // namespace

Status DiskstatsCollector::Collect(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/diskstats");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  std::map<std::string, Previous> current;
  for (std::string_view line : SplitLines(*text)) {
    std::vector<std::string_view> f = SplitFields(line);
    if (f.empty()) continue;
    if (f.size() < 3 + kNumColumns) {
      CountMalformed();
      continue;
    }
    std::array<uint64_t, kNumColumns> c{};
    if (!ParseU64Fields(f, 3, c)) {
      CountMalformed();
      continue;
    }
    std::string device(f[2]);
    // Device names with a '/' (cciss/c0d0) appear in sysfs with '!' instead.
    std::string sysfs_name = device;
    for (char& ch : sysfs_name) {
      if (ch == '/') ch = '!';
    }
    if (!IsDirectory(HostPath("/sys/block/" + sysfs_name))) continue;  // a partition
    const uint64_t ios = c[kReads] + c[kWrites];
    if (ios == 0 && IsVirtualDevice(device)) continue;

    Emit(sink, ts_ns, "disk_ios_total", {{"device", device}, {"direction", "read"}},
         static_cast<double>(c[kReads]));
    Emit(sink, ts_ns, "disk_ios_total", {{"device", device}, {"direction", "write"}},
         static_cast<double>(c[kWrites]));
    Emit(sink, ts_ns, "disk_io_bytes_total", {{"device", device}, {"direction", "read"}},
         static_cast<double>(c[kSectorsRead]) * 512.0);
    Emit(sink, ts_ns, "disk_io_bytes_total", {{"device", device}, {"direction", "write"}},
         static_cast<double>(c[kSectorsWritten]) * 512.0);
    Emit(sink, ts_ns, "disk_io_time_seconds_total", {{"device", device}},
         static_cast<double>(c[kMsDoingIo]) / 1000.0);

    Previous now{ios, c[kMsReading] + c[kMsWriting]};
    auto prev = previous_.find(device);
    // A decrease means the counters were reset (device removed and re-added under the same
    // name); the interval then has no meaningful delta, so skip it and start over.
    if (prev != previous_.end() && now.ios > prev->second.ios && now.io_ms >= prev->second.io_ms) {
      double mean_s = static_cast<double>(now.io_ms - prev->second.io_ms) / 1000.0 /
                      static_cast<double>(now.ios - prev->second.ios);
      Emit(sink, ts_ns, "disk_io_latency_seconds", {{"device", device}, {"stat", "mean"}}, mean_s);
    }
    current.emplace(std::move(device), now);
  }
  // Devices that disappeared are forgotten, so a hot-plugged one starts from a new baseline.
  previous_ = std::move(current);
  return Status::OK();
}

}  // namespace augur::telemetry
