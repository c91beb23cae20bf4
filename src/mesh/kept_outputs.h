// KeptOutputs: the index of the shard outputs this host keeps for a new owner after a
// takeover (docs/MESH.md, "Outputs after a takeover"), and the byte cap's decision over it
// (mesh.max_kept_bytes): when the kept files add up to more than the cap, the oldest go first
// until they fit again.
//
// Pure: no I/O and no clock. The placer lists its kept directory into it at start (so the cap
// holds across restarts), adds each output it keeps, removes what it deletes for other
// reasons (the owner's ForgetOutputs, the retention), and deletes the files Evict returns.
// Age is the time the file was kept (its modification time, which the placer sets when it
// keeps it); ties go by path, so the order is total and the decision deterministic.
//
// Thread safety: none; the placer's engine thread owns it.
#ifndef AUGUR_MESH_KEPT_OUTPUTS_H_
#define AUGUR_MESH_KEPT_OUTPUTS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace augur::mesh {

struct KeptFile {
  std::string path;
  uint64_t bytes = 0;
  int64_t kept_ns = 0;  // when it was kept; only the order matters

  friend bool operator==(const KeptFile&, const KeptFile&) = default;
};

class KeptOutputs {
 public:
  // max_bytes 0: no cap (Evict never returns anything).
  explicit KeptOutputs(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Adds a kept file, or replaces the one with the same path (a shard kept again).
  void Add(const KeptFile& f);
  // Forgets a file (deleted for another reason); false when it was not in the index.
  bool Remove(const std::string& path);
  // Forgets every file under directory `dir` (paths that start with dir + "/"); how many.
  size_t RemoveUnder(const std::string& dir);
  // The files to delete now so that the rest add up to at most max_bytes: the oldest first,
  // and no more than needed. They leave the index.
  std::vector<KeptFile> Evict();

  uint64_t bytes() const { return bytes_; }
  size_t files() const { return by_path_.size(); }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  using Age = std::pair<int64_t, std::string>;  // (kept_ns, path): oldest first
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  std::map<Age, uint64_t> by_age_;             // -> bytes
  std::map<std::string, int64_t> by_path_;     // -> kept_ns
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_KEPT_OUTPUTS_H_
