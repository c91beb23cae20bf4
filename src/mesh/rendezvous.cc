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

namespace {

// The first `k` distinct names of the order (all of them when k >= |members|).
std::vector<std::string> Top(std::string_view key, const std::vector<std::string>& members,
                             size_t k) {
  std::vector<std::pair<uint64_t, const std::string*>> scored;
  scored.reserve(members.size());
  for (const std::string& m : members) scored.emplace_back(RendezvousScore(key, m), &m);
  auto better = [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : *a.second < *b.second;
  };
  // A name listed twice scores the same twice, so its copies sort side by side; sort past
  // them so that k distinct names are in front.
  size_t sorted = std::min(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + long(sorted), scored.end(), better);
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < k; ++i) {
    if (i == sorted) {
      std::partial_sort(scored.begin() + long(i),
                        scored.begin() + long(std::min(scored.size(), i + k)), scored.end(),
                        better);
      sorted = std::min(scored.size(), i + k);
    }
    if (out.empty() || out.back() != *scored[i].second) out.push_back(*scored[i].second);
  }
  return out;
}

}  // namespace

std::vector<std::string> RendezvousOrder(std::string_view key,
                                         const std::vector<std::string>& members) {
  return Top(key, members, members.size());
}

std::vector<std::string> ReplicaSet(std::string_view workflow_id,
                                    const std::vector<std::string>& members, size_t r) {
  return Top(workflow_id, members, r + 1);
}

}  // namespace augur::mesh
