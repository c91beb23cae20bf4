#include "telemetry/procfs_schedstat_collector.h"

#include <dirent.h>

#include <vector>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// Numeric entries of a /proc-style directory (PIDs or TIDs).
std::vector<int> NumericEntries(const std::string& dir_path, size_t limit) {
  std::vector<int> out;
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    if (out.size() >= limit) break;
    std::optional<uint64_t> id = ParseU64(e->d_name);
    if (id && *id > 0 && *id <= static_cast<uint64_t>(INT32_MAX)) {
      out.push_back(static_cast<int>(*id));
    }
  }
  ::closedir(dir);
  return out;
}

}  // namespace

Status SchedstatCollector::Collect(int64_t ts_ns, PointSink& sink) {
  if (mode_ == Mode::kUndecided) {
    auto probe = ReadWholeFile(HostPath("/proc/schedstat"));
    if (probe) {
      mode_ = Mode::kKernel;
    } else if (IsDirectory(HostPath("/proc/1/task")) || IsDirectory(HostPath("/proc/self/task"))) {
      mode_ = Mode::kPerTask;
    } else {
      mode_ = Mode::kUnavailable;
    }
  }
  switch (mode_) {
    case Mode::kKernel:
      return CollectKernel(ts_ns, sink);
    case Mode::kPerTask:
      return CollectPerTask(ts_ns, sink);
    case Mode::kUndecided:
    case Mode::kUnavailable:
      break;
  }
  return UnavailableOnce(Status::Unavailable(
      "run-queue wait: neither " + HostPath("/proc/schedstat") +
      " (CONFIG_SCHEDSTATS) nor per-task schedstat files (CONFIG_SCHED_INFO) exist"));
}

Status SchedstatCollector::CollectKernel(int64_t ts_ns, PointSink& sink) {
  const std::string path = HostPath("/proc/schedstat");
  auto text = ReadWholeFile(path);
  if (!text) return text.error();

  Totals all;
  bool saw_version = false;
  bool saw_cpu = false;
  for (std::string_view line : SplitLines(*text)) {
    std::vector<std::string_view> f = SplitFields(line);
    if (f.empty()) continue;
    if (f[0] == "version") {
      std::optional<uint64_t> v = f.size() == 2 ? ParseU64(f[1]) : std::nullopt;
      if (!v) {
        CountMalformed();
        continue;
      }
      // Version 15 (2.6.33) made run_delay nanoseconds and fixed the cpu line layout;
      // 16 and 17 only changed the domain lines. Older layouts would be misread.
      if (*v < 15) {
        mode_ = Mode::kUnavailable;
        return UnavailableOnce(Status::Unavailable(path + ": schedstat version " +
                                                   std::to_string(*v) + " is older than 15"));
      }
      saw_version = true;
      continue;
    }
    if (!f[0].starts_with("cpu")) continue;  // timestamp and domain lines
    // cpuN yld_count legacy sched_count sched_goidle ttwu_count ttwu_local rq_cpu_time
    //      run_delay pcount
    std::string_view id = f[0].substr(3);
    if (f.size() < 10 || id.empty() || !ParseU64(id)) {
      CountMalformed();
      continue;
    }
    std::optional<uint64_t> delay = ParseU64(f[8]);
    std::optional<uint64_t> slices = ParseU64(f[9]);
    if (!delay || !slices) {
      CountMalformed();
      continue;
    }
    Emit(sink, ts_ns, "runqueue_wait_seconds_total", {{"cpu", std::string(id)}},
         static_cast<double>(*delay) / 1e9);
    all.run_delay_ns += *delay;
    all.timeslices += *slices;
    saw_cpu = true;
  }
  if (!saw_version) return Status::Corruption(path + ": no version line");
  if (!saw_cpu) return Status::Corruption(path + ": no valid cpu lines");
  Emit(sink, ts_ns, "runqueue_wait_seconds_total", {{"cpu", "all"}},
       static_cast<double>(all.run_delay_ns) / 1e9);
  EmitMean(ts_ns, sink, all);
  return Status::OK();
}

Status SchedstatCollector::CollectPerTask(int64_t ts_ns, PointSink& sink) {
  std::unordered_map<int, Totals> seen;
  seen.reserve(tasks_.size() + 64);
  const std::string proc = HostPath("/proc");
  for (int pid : NumericEntries(proc, kMaxTasks)) {
    const std::string task_dir = proc + "/" + std::to_string(pid) + "/task";
    for (int tid : NumericEntries(task_dir, kMaxTasks - seen.size())) {
      if (seen.size() >= kMaxTasks) break;
      // Tasks exit between listing and reading all the time; a missing file is not news.
      auto text = ReadWholeFile(task_dir + "/" + std::to_string(tid) + "/schedstat");
      if (!text) continue;
      // "sum_exec_runtime_ns run_delay_ns pcount"
      std::string_view first_line = *text;
      first_line = first_line.substr(0, first_line.find('\n'));
      std::vector<std::string_view> f = SplitFields(first_line);
      std::optional<uint64_t> delay;
      std::optional<uint64_t> slices;
      if (f.size() == 3) {
        delay = ParseU64(f[1]);
        slices = ParseU64(f[2]);
      }
      if (!delay || !slices) {
        CountMalformed();
        continue;
      }
      Totals now{*delay, *slices};
      auto prev = tasks_.find(tid);
      if (prev != tasks_.end() && now.run_delay_ns >= prev->second.run_delay_ns &&
          now.timeslices >= prev->second.timeslices) {
        per_task_total_.run_delay_ns += now.run_delay_ns - prev->second.run_delay_ns;
        per_task_total_.timeslices += now.timeslices - prev->second.timeslices;
      } else {
        // A task not seen before (or a TID reused by a new task, whose counters restarted
        // from zero): everything it has accumulated happened since it was created.
        per_task_total_.run_delay_ns += now.run_delay_ns;
        per_task_total_.timeslices += now.timeslices;
      }
      seen.emplace(tid, now);
    }
    if (seen.size() >= kMaxTasks) break;
  }
  if (seen.empty()) {
    mode_ = Mode::kUnavailable;
    return UnavailableOnce(
        Status::Unavailable("run-queue wait: no readable per-task schedstat under " + proc));
  }
  tasks_ = std::move(seen);
  Emit(sink, ts_ns, "runqueue_wait_seconds_total", {{"cpu", "all"}},
       static_cast<double>(per_task_total_.run_delay_ns) / 1e9);
  EmitMean(ts_ns, sink, per_task_total_);
  return Status::OK();
}

void SchedstatCollector::EmitMean(int64_t ts_ns, PointSink& sink, const Totals& now) {
  if (previous_ && now.timeslices > previous_->timeslices &&
      now.run_delay_ns >= previous_->run_delay_ns) {
    double mean_s = static_cast<double>(now.run_delay_ns - previous_->run_delay_ns) / 1e9 /
                    static_cast<double>(now.timeslices - previous_->timeslices);
    Emit(sink, ts_ns, "runqueue_latency_seconds", {{"stat", "mean"}}, mean_s);
  }
  previous_ = now;
}

}  // namespace augur::telemetry
