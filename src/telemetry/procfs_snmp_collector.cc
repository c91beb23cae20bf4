#include "telemetry/procfs_snmp_collector.h"

#include <optional>
#include <vector>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

struct Wanted {
  std::string_view column;
  std::string_view metric;
  std::string_view direction;  // empty: no direction label
};
constexpr Wanted kWanted[] = {
    {"InSegs", "tcp_segments_total", "received"},
    {"OutSegs", "tcp_segments_total", "sent"},
    {"RetransSegs", "tcp_retransmits_total", ""},
    {"CurrEstab", "tcp_connections_active", ""},
};

}  // namespace

Status SnmpCollector::Collect(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/net/snmp");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  // Each protocol is two lines with the same "Proto:" prefix: column names, then values.
  std::vector<std::string_view> header;
  bool emitted = false;
  for (std::string_view line : SplitLines(*text)) {
    std::vector<std::string_view> f = SplitFields(line);
    if (f.empty() || f[0] != "Tcp:") continue;
    if (header.empty()) {
      header = std::move(f);
      continue;
    }
    std::vector<std::string_view> values = std::move(f);
    std::vector<std::string_view> names = std::move(header);
    header.clear();
    if (values.size() != names.size()) {
      CountMalformed();
      continue;
    }
    for (const Wanted& w : kWanted) {
      for (size_t i = 1; i < names.size(); ++i) {
        if (names[i] != w.column) continue;
        // The Tcp columns we read are unsigned; MaxConn (-1) is signed but not read.
        std::optional<uint64_t> v = ParseU64(values[i]);
        if (!v) {
          CountMalformed();
          break;
        }
        std::vector<Label> labels;
        if (!w.direction.empty()) labels.emplace_back("direction", std::string(w.direction));
        Emit(sink, ts_ns, w.metric, std::move(labels), static_cast<double>(*v));
        emitted = true;
        break;
      }
    }
  }
  if (!header.empty()) CountMalformed();  // a Tcp: header with no value line after it
  if (!emitted) return Status::Corruption(path + ": no usable Tcp: lines");
  return Status::OK();
}

}  // namespace augur::telemetry
