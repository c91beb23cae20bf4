#include "telemetry/procfs_meminfo_collector.h"

#include <optional>
#include <utility>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

constexpr std::pair<std::string_view, std::string_view> kFields[] = {
    {"MemTotal", "total"},     {"MemFree", "free"},  {"MemAvailable", "available"},
    {"Buffers", "buffers"},    {"Cached", "cached"}, {"SwapTotal", "swap_total"},
    {"SwapFree", "swap_free"}, {"Dirty", "dirty"},   {"AnonPages", "anon"},
    {"Shmem", "shmem"},
};

std::string_view KindOf(std::string_view field) {
  for (const auto& [name, kind] : kFields) {
    if (name == field) return kind;
  }
  return {};
}

}  // namespace

Status MeminfoCollector::Collect(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/meminfo");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  bool saw_total = false;
  for (std::string_view line : SplitLines(*text)) {
    if (line.empty()) continue;
    // "Name:   12345 kB"; HugePages_* lines are counts without a unit.
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      CountMalformed();
      continue;
    }
    std::string_view kind = KindOf(line.substr(0, colon));
    if (kind.empty()) continue;  // a field we do not export; not parsed, so not judged
    std::vector<std::string_view> f = SplitFields(line.substr(colon + 1));
    std::optional<uint64_t> v = f.empty() ? std::nullopt : ParseU64(f[0]);
    if (!v || f.size() > 2 || (f.size() == 2 && f[1] != "kB")) {
      CountMalformed();
      continue;
    }
    // Every field we export is printed in kB (KiB), whatever the page size.
    double bytes = static_cast<double>(*v) * (f.size() == 2 ? 1024.0 : 1.0);
    Emit(sink, ts_ns, "memory_bytes", {{"kind", std::string(kind)}}, bytes);
    if (kind == "total") saw_total = true;
  }
  if (!saw_total) return Status::Corruption(path + ": no valid MemTotal line");
  return Status::OK();
}

}  // namespace augur::telemetry
