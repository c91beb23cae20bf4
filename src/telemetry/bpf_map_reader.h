// Reading eBPF maps from user space: per-CPU values summed or listed, and hash maps walked
// key by key.
//
// Per-CPU maps hand user space one copy of the value per *possible* CPU, each padded to 8
// bytes; the shared structs in bpf/*.h are multiples of 8 bytes, which is asserted here.
//
// Thread safety: reentrant; the kernel may update the map concurrently, so a multi-field
// value can be torn (fields from before and after an update). Callers treat counters as
// monotonic high-water marks.
#ifndef AUGUR_TELEMETRY_BPF_MAP_READER_H_
#define AUGUR_TELEMETRY_BPF_MAP_READER_H_

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "augur/status.h"

namespace augur::telemetry {

// Number of possible CPUs (the length of a per-CPU value array); at least 1.
inline int PossibleCpus() {
  static const int n = [] {
    int cpus = libbpf_num_possible_cpus();
    return cpus > 0 ? cpus : 1;
  }();
  return n;
}

// The per-CPU copies of `key` in per-CPU map `map`. NotFound when the key is absent.
template <typename Value, typename Key>
Result<std::vector<Value>> ReadPerCpu(const struct bpf_map* map, const Key& key) {
  static_assert(sizeof(Value) % 8 == 0, "per-CPU values are 8-byte padded by the kernel");
  static_assert(std::is_trivially_copyable_v<Value>);
  std::vector<Value> values(PossibleCpus());
  if (bpf_map__lookup_elem(map, &key, sizeof key, values.data(), sizeof(Value) * values.size(),
                           0) != 0) {
    const int err = errno;
    if (err == ENOENT) return Err(Status::NotFound(bpf_map__name(map)));
    return Err(Status::FromErrno(std::string("bpf map ") + bpf_map__name(map) + " lookup", err));
  }
  return values;
}

// Every key currently in hash map `map`, each once. Keys inserted or deleted during the walk
// may or may not be listed. (The kernel restarts the walk from the first bucket when the
// current key disappears, which could list a key twice; the result is de-duplicated.)
template <typename Key>
std::vector<Key> ListKeys(const struct bpf_map* map) {
  static_assert(std::is_trivially_copyable_v<Key>);
  static_assert(std::has_unique_object_representations_v<Key>, "keys are compared as bytes");
  std::vector<Key> keys;
  Key key{};
  Key next{};
  const void* prev = nullptr;  // NULL asks for the first key
  // Bounded by max_entries twice over, so a walk that keeps restarting still ends.
  const size_t limit = 2 * static_cast<size_t>(bpf_map__max_entries(map));
  while (keys.size() < limit && bpf_map__get_next_key(map, prev, &next, sizeof next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  const auto bytes_less = [](const Key& a, const Key& b) {
    return std::memcmp(&a, &b, sizeof(Key)) < 0;
  };
  const auto bytes_equal = [](const Key& a, const Key& b) {
    return std::memcmp(&a, &b, sizeof(Key)) == 0;
  };
  std::sort(keys.begin(), keys.end(), bytes_less);
  keys.erase(std::unique(keys.begin(), keys.end(), bytes_equal), keys.end());
  return keys;
}

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BPF_MAP_READER_H_
