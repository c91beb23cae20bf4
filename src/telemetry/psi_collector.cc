#include "telemetry/psi_collector.h"

#include <optional>
#include <utility>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

constexpr std::string_view kResources[] = {"cpu", "memory", "io"};
constexpr std::pair<std::string_view, std::string_view> kWindows[] = {
    {"avg10", "10s"}, {"avg60", "60s"}, {"avg300", "300s"}};

}  // namespace

PsiCollector::PsiCollector(std::string root_prefix) : ProcfsCollector(std::move(root_prefix)) {
  const std::string dir = HostPath("/proc/pressure");
  if (!IsDirectory(dir)) {
    available_ =
        Status::Unavailable("pressure stall information: " + dir +
                            " does not exist (kernel without CONFIG_PSI, or booted with psi=0); "
                            "pressure_* series will be missing");
  }
}

Status PsiCollector::Collect(int64_t ts_ns, PointSink& sink) {
  if (!available_.ok()) return UnavailableOnce(available_);

  Status first_error;
  for (std::string_view resource : kResources) {
    const std::string path = HostPath("/proc/pressure/") + std::string(resource);
    auto text = ReadWholeFile(path);
    if (!text) {
      if (first_error.ok()) first_error = text.error();
      continue;
    }
    for (std::string_view line : SplitLines(*text)) {
      // "some avg10=0.12 avg60=0.05 avg300=0.01 total=123456"
      std::vector<std::string_view> f = SplitFields(line);
      if (f.empty()) continue;
      if ((f[0] != "some" && f[0] != "full") || f.size() != 5) {
        CountMalformed();
        continue;
      }
      std::optional<double> avg[3];
      std::optional<uint64_t> total_us;
      for (size_t i = 1; i < f.size(); ++i) {
        size_t eq = f[i].find('=');
        if (eq == std::string_view::npos) continue;
        std::string_view k = f[i].substr(0, eq);
        std::string_view v = f[i].substr(eq + 1);
        for (size_t w = 0; w < 3; ++w) {
          if (k == kWindows[w].first) avg[w] = ParseDouble(v);
        }
        if (k == "total") total_us = ParseU64(v);
      }
      if (!total_us || !avg[0] || !avg[1] || !avg[2]) {
        CountMalformed();
        continue;
      }
      const std::string kind(f[0]);
      const std::string res(resource);
      Emit(sink, ts_ns, "pressure_stall_seconds_total", {{"resource", res}, {"kind", kind}},
           static_cast<double>(*total_us) / 1e6);
      for (size_t w = 0; w < 3; ++w) {
        Emit(sink, ts_ns, "pressure_ratio",
             {{"resource", res}, {"kind", kind}, {"window", std::string(kWindows[w].second)}},
             *avg[w] / 100.0);
      }
    }
  }
  return first_error;
}

}  // namespace augur::telemetry
