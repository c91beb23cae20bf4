#include "telemetry/procfs_netdev_collector.h"

#include <array>
#include <optional>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// After "iface:" come 8 receive columns (bytes packets errs drop fifo frame compressed
// multicast) then 8 transmit columns (bytes packets errs drop fifo colls carrier
// compressed); net/core/net-procfs.c has printed these 16 since 2.6.
constexpr size_t kColumns = 16;
constexpr size_t kTxBase = 8;
constexpr std::pair<std::string_view, size_t> kMetrics[] = {
    {"network_bytes_total", 0},
    {"network_packets_total", 1},
    {"network_errors_total", 2},
    {"network_drops_total", 3},
};

}  // namespace

Status NetDevCollector::Collect(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/net/dev");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  for (std::string_view line : SplitLines(*text)) {
    // The two header lines are the only ones with '|' and without ':'.
    if (line.find('|') != std::string_view::npos) continue;
    if (SplitFields(line).empty()) continue;
    // Interface names cannot contain ':' (dev_valid_name), so the first one ends the name.
    // Old kernels print no space after it ("eth0:1234"), hence no field splitting here.
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      CountMalformed();
      continue;
    }
    std::vector<std::string_view> name_fields = SplitFields(line.substr(0, colon));
    std::vector<std::string_view> f = SplitFields(line.substr(colon + 1));
    if (name_fields.size() != 1 || f.size() < kColumns) {
      CountMalformed();
      continue;
    }
    std::array<uint64_t, kColumns> c{};
    if (!ParseU64Fields(f, 0, c)) {
      CountMalformed();
      continue;
    }
    std::string iface(name_fields[0]);
    for (const auto& [metric, column] : kMetrics) {
      Emit(sink, ts_ns, metric, {{"interface", iface}, {"direction", "received"}},
           static_cast<double>(c[column]));
      Emit(sink, ts_ns, metric, {{"interface", iface}, {"direction", "transmitted"}},
           static_cast<double>(c[kTxBase + column]));
    }
  }
  return Status::OK();
}

}  // namespace augur::telemetry
