// HeadroomSummary: the compact summary of its forecast headroom that each host gossips as
// its membership meta (docs/MESH.md, "Headroom gossip"), and its encoding.
//
// It says what the host predicts it can still grant over a few horizons (now, +1 min,
// +10 min: each an interval, lower and upper edge), which backends it has with their cost
// classes, and its labels (zone, region). Owners read it to choose whom to ask for bids
// (negotiator.h); it is a hint, never a promise: the bid answers from the ledger itself.
//
// On the wire (headroom.proto) amounts are quantized so that the summary of a host with a
// few backends stays under kMaxHeadroomBytes: CPU in millicores, memory in MiB, prices in
// thousandths. Lower edges are rounded down and upper edges up, so the interval after a
// round trip still contains the one before. Encode refuses what would not fit or is not
// well formed; Decode refuses, with a message naming what and where, anything that is not a
// summary of this version (a peer's meta is untrusted input).
//
// Pure functions and value types; thread safety: values.
#ifndef AUGUR_MESH_HEADROOM_SUMMARY_H_
#define AUGUR_MESH_HEADROOM_SUMMARY_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "workflow/cost.h"
#include "workflow/resources.h"

namespace augur::mesh {

inline constexpr uint32_t kHeadroomVersion = 1;
// The membership meta carries at most about this much per host.
inline constexpr size_t kMaxHeadroomBytes = 200;
// Structural limits a summary must keep (checked both ways).
inline constexpr size_t kMaxHeadroomHorizons = 8;
inline constexpr size_t kMaxHeadroomBackends = 8;
inline constexpr size_t kMaxHeadroomClasses = 8;  // per backend
inline constexpr size_t kMaxHeadroomNameBytes = 32;   // backend and class names
inline constexpr size_t kMaxHeadroomLabelBytes = 64;  // zone, region

// What the host predicts it can still grant `ahead_s` seconds from now: at least free_lo,
// at most free_hi.
struct HorizonHeadroom {
  uint32_t ahead_s = 0;
  workflow::Resources free_lo;
  workflow::Resources free_hi;  // >= free_lo in every dimension
  friend bool operator==(const HorizonHeadroom&, const HorizonHeadroom&) = default;
};

struct BackendCosts {
  std::string name;                          // the backend's name ("process", "libvirt")
  std::vector<workflow::CostClass> classes;  // empty: free
  friend bool operator==(const BackendCosts&, const BackendCosts&) = default;
};

struct HeadroomSummary {
  std::vector<HorizonHeadroom> horizons;  // ahead_s strictly ascending
  std::vector<BackendCosts> backends;
  std::string zone;
  std::string region;

  // The least free over the next `seconds`: per dimension, the lowest lower edge of the
  // horizons up to `seconds` ahead (the first horizon always counts). Zero without horizons.
  workflow::Resources FreeOver(double seconds) const;
  // The backend of that name, or nullptr.
  const BackendCosts* FindBackend(std::string_view name) const;

  friend bool operator==(const HeadroomSummary&, const HeadroomSummary&) = default;
};

// The horizons a host gossips: each forecast horizon (what the host's other load leaves
// free, from the forecaster) capped by what its ledger leaves free now, both edges. A host
// with no forecast yet passes one horizon at 0 with both edges at its capacity.
std::vector<HorizonHeadroom> CapByLedger(const workflow::Resources& ledger_free,
                                         std::vector<HorizonHeadroom> forecast);

// The wire form, at most kMaxHeadroomBytes. InvalidArgument for a summary that breaks the
// limits above (a name too long, horizons out of order, an interval upside down, a negative
// price); ResourceExhausted when it is well formed but too large, saying by how much.
Result<std::string> EncodeHeadroom(const HeadroomSummary& summary);

// The summary a peer gossiped. Corruption, naming what is wrong, for bytes that do not
// parse, are larger than kMaxHeadroomBytes, carry another version or break the limits.
Result<HeadroomSummary> DecodeHeadroom(std::string_view bytes);

}  // namespace augur::mesh

#endif  // AUGUR_MESH_HEADROOM_SUMMARY_H_
