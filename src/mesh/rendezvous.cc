#include "mesh/rendezvous.h"

#include <algorithm>
#include <utility>

#include "common/hash.h"

namespace augur::mesh {
namespace {

// SplitMix64's finalizer (Steele, Lea and Flood, "Fast splittable pseudorandom number
// generators", OOPSLA 2014): a bijection with full avalanche.
uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t RendezvousScore(std::string_view key, std::string_view member) {
  return Mix64(Fnv1a64(key) ^ Mix64(Fnv1a64(member)));
}

std::vector<std::string> RendezvousOrder(std::string_view key,
                                         const std::vector<std::string>& members) {
  std::vector<std::pair<uint64_t, const std::string*>> scored;
  scored.reserve(members.size());
  for (const std::string& m : members) scored.emplace_back(RendezvousScore(key, m), &m);
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  });
  std::vector<std::string> out;
  out.reserve(scored.size());
  for (const auto& [score, m] : scored) {
    if (out.empty() || out.back() != *m) out.push_back(*m);
  }
  return out;
}

std::vector<std::string> ReplicaSet(std::string_view workflow_id,
                                    const std::vector<std::string>& members, size_t r) {
  std::vector<std::string> order = RendezvousOrder(workflow_id, members);
  if (order.size() > r + 1) order.resize(r + 1);
  return order;
}

}  // namespace augur::mesh
