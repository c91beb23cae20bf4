// TopView: the text frame `augurctl top` draws from a shared-memory segment: host CPU,
// memory, PSI, run-queue latency, disk, network, a per-cgroup table and the agent's own
// cost. Counters become rates from each series' last two points.
//
// Thread safety: a pure function of the reader's current contents.
#ifndef AUGUR_AGENT_TOP_VIEW_H_
#define AUGUR_AGENT_TOP_VIEW_H_

#include <string>

#include "telemetry/shm_store.h"

namespace augur::agent {

struct TopOptions {
  int width = 100;        // columns available
  int max_cgroups = 15;   // rows of the cgroup table
  bool color = false;     // ANSI emphasis for headings
};

std::string RenderTop(const telemetry::ShmReader& reader, const TopOptions& options);

// Human-readable helpers, shared with the other augurctl views.
std::string FormatBytes(double bytes);        // "1.5 GiB"
std::string FormatDuration(double seconds);   // "340us", "1.2ms", "2.0s"

}  // namespace augur::agent

#endif  // AUGUR_AGENT_TOP_VIEW_H_
