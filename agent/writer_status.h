// WriterStatus: how augurctl and /metrics say whether the agent writing a segment is alive,
// in words ("live", "STALE since 18:40:01: writer pid 812 is gone (killed or crashed)").
#ifndef AUGUR_AGENT_WRITER_STATUS_H_
#define AUGUR_AGENT_WRITER_STATUS_H_

#include <string>

#include "telemetry/shm_store.h"

namespace augur::agent {

// One phrase for a human, from a reader's SegmentInfo. Times are local, to the second;
// a time more than a day ago carries its date.
std::string DescribeWriter(const telemetry::SegmentInfo& info);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_WRITER_STATUS_H_
