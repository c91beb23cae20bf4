#include "agent/mesh_headroom.h"

#include <algorithm>
#include <cmath>

namespace augur::agent {

mesh::HeadroomSummary BuildHeadroomSummary(const std::vector<HostHeadroom::Interval>& forecast,
                                           const std::vector<BackendSnapshot>& backends,
                                           const std::string& zone, const std::string& region) {
  mesh::HeadroomSummary s;
  s.zone = zone.substr(0, mesh::kMaxHeadroomLabelBytes);
  s.region = region.substr(0, mesh::kMaxHeadroomLabelBytes);
  workflow::Resources grantable;
  for (const BackendSnapshot& b : backends) {
    grantable.cpu = std::max(grantable.cpu, b.available.cpu);
    grantable.memory = std::max(grantable.memory, b.available.memory);
    if (s.backends.size() >= mesh::kMaxHeadroomBackends) continue;
    mesh::BackendCosts bc{b.name.substr(0, mesh::kMaxHeadroomNameBytes), {}};
    for (const workflow::CostClass& c : b.classes) {
      if (bc.classes.size() >= mesh::kMaxHeadroomClasses) break;
      workflow::CostClass k = c;
      k.name = k.name.substr(0, mesh::kMaxHeadroomNameBytes);
      bc.classes.push_back(std::move(k));
    }
    s.backends.push_back(std::move(bc));
  }
  std::vector<mesh::HorizonHeadroom> horizons;
  for (const HostHeadroom::Interval& i : forecast) {
    if (horizons.size() >= mesh::kMaxHeadroomHorizons) break;
    const auto ahead = static_cast<uint32_t>(std::lround(std::max(0.0, i.ahead_s)));
    if (!horizons.empty() && ahead <= horizons.back().ahead_s) continue;  // strictly ascending
    horizons.push_back({ahead, i.lo, i.hi});
  }
  if (horizons.empty()) horizons.push_back({0, grantable, grantable});
  s.horizons = mesh::CapByLedger(grantable, std::move(horizons));
  return s;
}

}  // namespace augur::agent
