// CgroupCounters: turns per-cgroup-id counters read from an eBPF map into per-cgroup-path
// counters fit for series labels.
//
// The eBPF programs key their maps by cgroup id (the inode of the cgroup's directory, see
// cgroup_fs.h) and keep cumulative values. This class maps ids to paths with a walk of the
// hierarchy, folds cgroups deeper than `depth` into their ancestor at that depth, caps the
// number of distinct paths, and keeps cumulative totals per path. Totals are built from
// per-id deltas, so a path's counter never goes backwards when a cgroup below it is
// removed, its map entry is deleted, or an id moves to "/other".
//
// Ids it cannot place go to "/other": ids the walk did not find (the cgroup is gone, or lies
// beyond the walk's limit), the eBPF map's overflow id 0, and paths beyond `max_series`.
// A new id that the last walk did not know triggers one re-walk per Update, no more.
//
// Memory stays bounded under cgroup churn: an id whose values have not moved for
// `forget_after_idle` updates is dropped and handed back to the caller to delete from the
// kernel map (if that cgroup runs again, the program re-creates the entry from zero and it
// is picked up as new, continuing the same path's total). A path no id refers to any more
// keeps its total (so it does not reset) until a new path needs its slot under the cap.
//
// Thread safety: none; one collector owns one instance.
#ifndef AUGUR_TELEMETRY_CGROUP_COUNTERS_H_
#define AUGUR_TELEMETRY_CGROUP_COUNTERS_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "telemetry/cgroup_fs.h"

namespace augur::telemetry {

class CgroupCounters {
 public:
  // Counters per id: the CPU collector uses one (ns on CPU), the TCP one two (sent, received).
  static constexpr size_t kWidth = 2;
  using Values = std::array<uint64_t, kWidth>;

  struct Sample {
    uint64_t id = 0;
    Values values{};  // cumulative since the id's map entry was created
    // Part of `values` is held outside the kernel map (the CPU collector's unflushed and
    // running time). Such an id is never forgotten: forgetting it and seeing that part
    // again would count it twice.
    bool pinned = false;
  };

  // Lists the hierarchy; called at most once per Update. In the agent this is
  // CgroupFs::Walk() over the mount the eBPF programs report ids of.
  using WalkFn = std::function<std::vector<CgroupDir>()>;

  struct Options {
    int depth = 2;                // paths deeper than this are reported as their ancestor
    size_t max_series = 256;      // distinct paths besides "/other"
    int forget_after_idle = 120;  // updates without change before an id is dropped
  };

  // The id eBPF programs use for "could not file it anywhere" (map full, NULL cgroup).
  static constexpr uint64_t kOverflowId = 0;
  static constexpr std::string_view kOther = "/other";

  CgroupCounters(WalkFn walk, Options options);

  // Feeds one snapshot: every id the kernel map holds now with its cumulative values (ids
  // may appear in any order, each at most once). Returns the ids idle long enough to be
  // forgotten; the caller deletes them from the kernel map. An id absent from the snapshot
  // is forgotten too (someone deleted its entry).
  std::vector<uint64_t> Update(std::span<const Sample> snapshot);

  // Calls `fn(path, totals)` for every path, in path order.
  void ForEach(const std::function<void(const std::string&, const Values&)>& fn) const;

  // How many times the hierarchy was walked (for tests and debugging).
  size_t walks() const { return walks_; }

  // `path` cut to its first `depth` components: ("/a/b/c", 1) -> "/a"; depth 0 -> "/".
  static std::string AncestorAtDepth(std::string_view path, int depth);

 private:
  struct IdState {
    Values last{};
    std::string path;
    int idle = 0;
    bool pinned = false;
    uint64_t seen = 0;  // update number that last listed this id
  };
  struct PathState {
    Values total{};
    size_t ids = 0;            // ids currently attributed here
    uint64_t last_active = 0;  // update number of the last non-zero delta
  };

  void Walk();
  std::string PathFor(uint64_t id);
  bool EvictIdlePath();
  void DropId(std::unordered_map<uint64_t, IdState>::iterator it);

  WalkFn walk_;
  Options options_;
  std::unordered_map<uint64_t, std::string> walked_;  // id -> path at depth, from last walk
  std::unordered_map<uint64_t, IdState> ids_;
  std::map<std::string, PathState, std::less<>> paths_;
  uint64_t updates_ = 0;
  size_t walks_ = 0;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_CGROUP_COUNTERS_H_
