// ProcfsCollector: the common base of the procfs, PSI and cgroup-file collectors.
//
// These collectors are the fallback that is always there: they read kernel text files and
// cover every metric family when the eBPF programs cannot load (DESIGN.md, "eBPF first,
// fallback always"). Every point they emit carries the label source="procfs", so a reader
// can tell them from the eBPF series of the same name.
//
// Every file path is prefixed with a root prefix (default ""), so tests can point a
// collector at a fixture tree such as <tmp>/proc/stat instead of the live /proc.
//
// Robustness contract shared by all subclasses: a line that cannot be parsed is skipped and
// counted in malformed_lines(), never a crash or an exception; a file that is missing is a
// Status naming the file; a facility the kernel lacks (PSI, schedstats, cgroups) is reported
// as Unavailable on the first Collect() and the collector stays quiet (OK, no points) after.
//
// Thread safety: as Collector, one thread at a time.
#ifndef AUGUR_TELEMETRY_PROCFS_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_COLLECTOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "telemetry/collector.h"
#include "telemetry/series_key.h"

namespace augur::telemetry {

class ProcfsCollector : public Collector {
 public:
  // The value of the `source` label on every point these collectors emit.
  static constexpr std::string_view kSource = "procfs";

  // Lines (or per-cgroup values) skipped because they could not be parsed, since
  // construction. The agent may export it; tests use it to check that garbage was noticed.
  uint64_t malformed_lines() const { return malformed_; }
  // Series not emitted because their canonical key would exceed SeriesKey::kMaxKeyLength
  // (a very long cgroup path or device name), since construction.
  uint64_t oversized_keys() const { return oversized_; }
  const std::string& root_prefix() const { return root_prefix_; }

 protected:
  explicit ProcfsCollector(std::string root_prefix) : root_prefix_(std::move(root_prefix)) {}

  // `path` (absolute, e.g. "/proc/stat") under the root prefix.
  std::string HostPath(std::string_view path) const { return root_prefix_ + std::string(path); }

  // Emits name{labels..., source="procfs"} unless the key is too long for the store.
  void Emit(PointSink& sink, int64_t ts_ns, std::string_view name, std::vector<Label> labels,
            double value);

  void CountMalformed(uint64_t n = 1) { malformed_ += n; }

  // For facilities that may be missing on a host: returns `s` the first time it is called
  // and OK on every later call, so the agent logs the reason once instead of every interval.
  Status UnavailableOnce(const Status& s);

 private:
  std::string root_prefix_;
  uint64_t malformed_ = 0;
  uint64_t oversized_ = 0;
  bool unavailable_reported_ = false;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_COLLECTOR_H_
