// SnmpCollector: host TCP counters from /proc/net/snmp.
//
// Series (source="procfs"):
//   tcp_segments_total{direction}   counter; direction is received (InSegs) | sent (OutSegs)
//   tcp_retransmits_total           counter; RetransSegs
//   tcp_connections_active          gauge; CurrEstab, connections now ESTABLISHED or
//                                   CLOSE-WAIT (RFC 1213 tcpCurrEstab). Not ActiveOpens,
//                                   which is a counter of connect() attempts.
//
// Thread safety: as Collector.
#ifndef AUGUR_TELEMETRY_PROCFS_SNMP_COLLECTOR_H_
#define AUGUR_TELEMETRY_PROCFS_SNMP_COLLECTOR_H_

#include <string>
#include <string_view>

#include "telemetry/procfs_collector.h"

namespace augur::telemetry {

class SnmpCollector : public ProcfsCollector {
 public:
  // Reads <root_prefix>/proc/net/snmp.
  explicit SnmpCollector(std::string root_prefix = "") : ProcfsCollector(std::move(root_prefix)) {}

  std::string_view name() const override { return "procfs_snmp"; }
  // NotFound when the file is missing; Corruption when it has no usable Tcp: pair of lines.
  Status Collect(int64_t ts_ns, PointSink& sink) override;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_SNMP_COLLECTOR_H_
