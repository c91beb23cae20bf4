#include "agent/writer_status.h"

#include <time.h>

#include <ctime>

#include <fmt/format.h>

namespace augur::agent {
namespace {

std::string LocalTime(int64_t ns) {
  const time_t t = static_cast<time_t>(ns / 1'000'000'000);
  const time_t now = ::time(nullptr);
  tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof(buf), now - t > 86'400 ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &local);
  return buf;
}

}  // namespace

std::string DescribeWriter(const telemetry::SegmentInfo& info) {
  using telemetry::WriterState;
  if (info.writer_state == WriterState::kLive) {
    return fmt::format("live, writer pid {}", info.writer_pid);
  }
  const std::string since =
      info.stale_since_ns > 0 ? " since " + LocalTime(info.stale_since_ns) : std::string();
  switch (info.writer_state) {
    case WriterState::kClosed:
      return fmt::format("STALE{}: augurd (pid {}) stopped", since, info.writer_pid);
    case WriterState::kDead:
      return fmt::format("STALE{}: writer pid {} is gone (killed or crashed)", since,
                         info.writer_pid);
    case WriterState::kStalled:
      return fmt::format("STALE{}: writer pid {} has stopped beating (hung or stopped)", since,
                         info.writer_pid);
    case WriterState::kLive:
      break;
  }
  return "unknown";
}

}  // namespace augur::agent
