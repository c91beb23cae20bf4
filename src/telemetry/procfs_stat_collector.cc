#include "telemetry/procfs_stat_collector.h"

#include <unistd.h>

#include <array>
#include <optional>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// Column order of a cpu line after its name (Documentation/filesystems/proc.rst). The
// guest and guest_nice columns that may follow are already counted in user and nice.
constexpr std::array<std::string_view, 8> kModes = {"user",   "nice", "system",  "idle",
                                                    "iowait", "irq",  "softirq", "steal"};
constexpr bool kBusy[8] = {true, true, true, false, false, true, true, true};

}  // namespace

ProcStatCollector::ProcStatCollector(std::string root_prefix)
    : ProcfsCollector(std::move(root_prefix)) {
  long hz = ::sysconf(_SC_CLK_TCK);
  // USER_HZ is 100 on every Linux architecture but the ABI says to ask; fall back to 100
  // rather than divide by a failed sysconf's -1.
  ticks_per_second_ = hz > 0 ? static_cast<double>(hz) : 100.0;
}

Status ProcStatCollector::Collect(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/stat");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  bool saw_aggregate = false;
  for (std::string_view line : SplitLines(*text)) {
    std::vector<std::string_view> f = SplitFields(line);
    if (f.empty()) continue;
    std::string_view key = f[0];

    if (key.starts_with("cpu")) {
      std::string_view id = key.substr(3);
      std::string cpu;
      if (id.empty()) {
        cpu = "all";
      } else if (ParseU64(id)) {
        cpu = std::string(id);
      } else {
        CountMalformed();
        continue;
      }
      // Kernels since 2.6.11 print at least the eight modes; a shorter line is truncated.
      if (f.size() < 1 + kModes.size()) {
        CountMalformed();
        continue;
      }
      std::array<uint64_t, 8> ticks{};
      if (!ParseU64Fields(f, 1, ticks)) {
        CountMalformed();
        continue;
      }
      uint64_t busy = 0;
      for (size_t i = 0; i < kModes.size(); ++i) {
        if (kBusy[i]) busy += ticks[i];
        Emit(sink, ts_ns, "cpu_seconds_total", {{"cpu", cpu}, {"mode", std::string(kModes[i])}},
             static_cast<double>(ticks[i]) / ticks_per_second_);
      }
      Emit(sink, ts_ns, "cpu_busy_seconds_total", {{"cpu", cpu}},
           static_cast<double>(busy) / ticks_per_second_);
      if (cpu == "all") saw_aggregate = true;
      continue;
    }

    std::string_view metric;
    if (key == "ctxt") {
      metric = "context_switches_total";
    } else if (key == "procs_running") {
      metric = "processes_running";
    } else if (key == "procs_blocked") {
      metric = "processes_blocked";
    } else {
      continue;  // intr, btime, processes, softirq: not exported
    }
    std::optional<uint64_t> v = f.size() == 2 ? ParseU64(f[1]) : std::nullopt;
    if (!v) {
      CountMalformed();
      continue;
    }
    Emit(sink, ts_ns, metric, {}, static_cast<double>(*v));
  }
  if (!saw_aggregate) return Status::Corruption(path + ": no valid aggregate \"cpu\" line");
  return Status::OK();
}

}  // namespace augur::telemetry
