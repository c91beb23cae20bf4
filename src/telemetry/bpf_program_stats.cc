#include "telemetry/bpf_program_stats.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <utility>

namespace augur::telemetry {

BpfProgramStats::BpfProgramStats() : stats_fd_(bpf_enable_stats(BPF_STATS_RUN_TIME)) {}

BpfProgramStats::~BpfProgramStats() {
  if (stats_fd_ >= 0) ::close(stats_fd_);
}

BpfProgramStats::BpfProgramStats(BpfProgramStats&& other) noexcept
    : stats_fd_(std::exchange(other.stats_fd_, -1)), programs_(std::move(other.programs_)) {}

BpfProgramStats& BpfProgramStats::operator=(BpfProgramStats&& other) noexcept {
  if (this != &other) {
    if (stats_fd_ >= 0) ::close(stats_fd_);
    stats_fd_ = std::exchange(other.stats_fd_, -1);
    programs_ = std::move(other.programs_);
  }
  return *this;
}

void BpfProgramStats::Track(struct bpf_object* obj) {
  struct bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    const int fd = bpf_program__fd(prog);
    if (fd >= 0) programs_.push_back(Program{bpf_program__name(prog), fd});
  }
}

void BpfProgramStats::Emit(int64_t ts_ns, PointSink& sink) const {
  for (const Program& p : programs_) {
    struct bpf_prog_info info = {};
    __u32 len = sizeof info;
    if (bpf_obj_get_info_by_fd(p.fd, &info, &len) != 0) continue;
    const std::vector<Label> labels = {{"program", p.name}, {"source", "bpf"}};
    sink.Emit(SeriesKey("augur_bpf_program_runs_total", labels), ts_ns,
              static_cast<double>(info.run_cnt));
    sink.Emit(SeriesKey("augur_bpf_program_run_seconds_total", labels), ts_ns,
              static_cast<double>(info.run_time_ns) / 1e9);
    sink.Emit(SeriesKey("augur_bpf_program_recursion_misses_total", labels), ts_ns,
              static_cast<double>(info.recursion_misses));
  }
}

}  // namespace augur::telemetry
