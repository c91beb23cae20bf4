// Rendezvous (highest random weight) hashing: which hosts own and replicate a workflow
// (docs/MESH.md, "Ownership and replicas").
//
// Every member gets a score for the workflow id; the members in descending score order are
// the workflow's succession: the first is its owner, the next r hold its replicated state.
// Each host computes the same order from the same member names, with nothing exchanged. The
// failover rule: the first LIVE name in the order owns the workflow. When the owner dies,
// the next live replica takes over, and no other workflow moves, because removing a name
// from the set does not change the relative order of the others (minimal disruption); a
// host that joins takes over only the workflows it now scores highest for.
//
// The score mixes FNV-1a (common/hash.h) of the two names through the SplitMix64 finalizer:
// FNV-1a alone leaves its high bits poorly mixed for names that differ only in their last
// characters ("host-7", "host-8"), which would bias who wins; the finalizer's avalanche
// makes each bit depend on every input bit. Ties (a 2^-64 chance) go to the smaller name.
// Not for anything an adversary chooses.
//
// Pure functions; thread safety: none needed.
#ifndef AUGUR_MESH_RENDEZVOUS_H_
#define AUGUR_MESH_RENDEZVOUS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace augur::mesh {

// The rendezvous score of `member` for `key`.
uint64_t RendezvousScore(std::string_view key, std::string_view member);

// All of `members` (duplicates once), best first: the succession for `key`.
std::vector<std::string> RendezvousOrder(std::string_view key, const std::vector<std::string>& members);

// The owner of `workflow_id` among the live `members`, then its r replicas: the first
// min(r + 1, |members|) names of RendezvousOrder.
std::vector<std::string> ReplicaSet(std::string_view workflow_id,
                                    const std::vector<std::string>& members, size_t r);

// Who owns `workflow_id`: the first name of its order among `members` (all known hosts,
// live or not) that `live` accepts. nullopt when none is live.
template <typename IsLive>
std::optional<std::string> OwnerOf(std::string_view workflow_id,
                                   const std::vector<std::string>& members, IsLive&& live) {
  for (std::string& m : RendezvousOrder(workflow_id, members)) {
    if (live(m)) return std::move(m);
  }
  return std::nullopt;
}

}  // namespace augur::mesh

#endif  // AUGUR_MESH_RENDEZVOUS_H_
