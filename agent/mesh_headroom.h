// The headroom summary this host gossips to the mesh (src/mesh/headroom_summary.h), built
// from what the forecaster predicts the host's other load leaves free (HostHeadroom) capped
// by what the backends can still grant now, with the backends' cost classes and the host's
// zone and region. A pure function of those inputs; augurd refreshes it every few seconds.
#ifndef AUGUR_AGENT_MESH_HEADROOM_H_
#define AUGUR_AGENT_MESH_HEADROOM_H_

#include <string>
#include <vector>

#include "agent/host_headroom.h"
#include "mesh/headroom_summary.h"
#include "workflow/cost.h"
#include "workflow/resources.h"

namespace augur::agent {

// One backend as describe() last reported it.
struct BackendSnapshot {
  std::string name;
  workflow::Resources available;  // what it can still grant
  std::vector<workflow::CostClass> classes;
};

// Horizons: each forecast one, capped by the most any backend can grant now (backends are
// alternative ways to use the same host, so the largest, not the sum). Without a forecast:
// one horizon at 0 s of what the backends can grant. Backends beyond the summary's limits
// are left out (the first ones kept).
mesh::HeadroomSummary BuildHeadroomSummary(const std::vector<HostHeadroom::Interval>& forecast,
                                           const std::vector<BackendSnapshot>& backends,
                                           const std::string& zone, const std::string& region);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_MESH_HEADROOM_H_
