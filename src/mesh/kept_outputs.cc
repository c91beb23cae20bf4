#include "mesh/kept_outputs.h"

namespace augur::mesh {

void KeptOutputs::Add(const KeptFile& f) {
  Remove(f.path);
  by_path_[f.path] = f.kept_ns;
  by_age_[{f.kept_ns, f.path}] = f.bytes;
  bytes_ += f.bytes;
}

bool KeptOutputs::Remove(const std::string& path) {
  auto it = by_path_.find(path);
  if (it == by_path_.end()) return false;
  auto age = by_age_.find({it->second, path});
  bytes_ -= age->second;
  by_age_.erase(age);
  by_path_.erase(it);
  return true;
}

size_t KeptOutputs::RemoveUnder(const std::string& dir) {
  const std::string prefix = dir + "/";
  size_t n = 0;
  for (auto it = by_path_.lower_bound(prefix);
       it != by_path_.end() && it->first.starts_with(prefix);) {
    auto age = by_age_.find({it->second, it->first});
    bytes_ -= age->second;
    by_age_.erase(age);
    it = by_path_.erase(it);
    ++n;
  }
  return n;
}

std::vector<KeptFile> KeptOutputs::Evict() {
  std::vector<KeptFile> out;
  if (max_bytes_ == 0) return out;
  while (bytes_ > max_bytes_) {
    auto oldest = by_age_.begin();
    out.push_back({oldest->first.second, oldest->second, oldest->first.first});
    bytes_ -= oldest->second;
    by_path_.erase(oldest->first.second);
    by_age_.erase(oldest);
  }
  return out;
}

}  // namespace augur::mesh
