#include "workflow/feedback.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace augur::workflow {

FeedbackDecision DecideFeedback(const Resources& granted, const Resources& want,
                                const Resources& min, const Resources& capacity,
                                const Usage& u, const UsagePrediction& p,
                                const FeedbackOptions& o) {
  FeedbackDecision d;
  Resources next = want;
  std::string why;
  auto say = [&](std::string s) { why += (why.empty() ? "" : "; ") + s; };
  const bool settled = u.elapsed_s >= o.settle_s;

  // Memory.
  const double mem_granted = double(granted.memory);
  const double mem_hi = p.peak_memory_hi ? double(*p.peak_memory_hi) : 0;
  if (mem_granted > 0 && double(u.peak_memory) >= o.starve_share * mem_granted) {
    const double target = std::max(double(u.peak_memory) * o.grow_margin, mem_hi);
    const uint64_t to = std::min<uint64_t>(uint64_t(std::ceil(target)), capacity.memory);
    if (to > want.memory) {
      next.memory = to;
      say(fmt::format("peak memory {} is {:.0f}% of its grant {}", FormatMemory(u.peak_memory),
                      100 * double(u.peak_memory) / mem_granted, FormatMemory(granted.memory)));
    }
  } else if (settled && p.peak_memory_hi && mem_granted > 0 &&
             double(u.peak_memory) < o.spare_share * mem_granted &&
             mem_hi < o.spare_share * mem_granted) {
    const uint64_t to = std::max<uint64_t>(
        min.memory, uint64_t(std::ceil(std::max(double(u.peak_memory), mem_hi) * o.keep_margin)));
    if (to < want.memory) {
      next.memory = to;
      say(fmt::format("peak memory {} (predicted at most {}) of a {} grant",
                      FormatMemory(u.peak_memory), FormatMemory(*p.peak_memory_hi),
                      FormatMemory(granted.memory)));
    }
  }

  // CPU.
  if (granted.cpu > 0 && u.cores >= o.starve_share * granted.cpu) {
    const double target = p.cores_hi ? std::max(*p.cores_hi, want.cpu) : want.cpu;
    const double to = std::min(target, capacity.cpu);
    if (to > granted.cpu + Resources::kCpuEpsilon && to > want.cpu + Resources::kCpuEpsilon) {
      next.cpu = to;
      say(fmt::format("uses {:.2f} of its {:.2f} cores (predicted up to {:.2f})", u.cores,
                      granted.cpu, target));
    }
  } else if (settled && p.cores_hi && granted.cpu > 0 && u.cores < o.spare_share * granted.cpu &&
             *p.cores_hi < o.spare_share * granted.cpu) {
    const double to = std::max(min.cpu, std::max(u.cores, *p.cores_hi) * o.keep_margin);
    if (to + Resources::kCpuEpsilon < want.cpu) {
      next.cpu = to;
      say(fmt::format("uses {:.2f} of its {:.2f} cores (predicted at most {:.2f})", u.cores,
                      granted.cpu, *p.cores_hi));
    }
  }

  if (next == want) return d;
  d.want = next;
  d.reason = "feedback: " + why;
  return d;
}

}  // namespace augur::workflow
