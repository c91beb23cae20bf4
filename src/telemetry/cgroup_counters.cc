#include "telemetry/cgroup_counters.h"

#include <algorithm>
#include <utility>

namespace augur::telemetry {

CgroupCounters::CgroupCounters(WalkFn walk, Options options)
    : walk_(std::move(walk)), options_(options) {}

std::string CgroupCounters::AncestorAtDepth(std::string_view path, int depth) {
  if (depth <= 0) return "/";
  size_t pos = 0;
  for (int level = 0; level < depth; ++level) {
    pos = path.find('/', pos + 1);
    if (pos == std::string_view::npos) return std::string(path);
  }
  return std::string(path.substr(0, pos));
}

void CgroupCounters::Walk() {
  ++walks_;
  walked_.clear();
  for (const CgroupDir& dir : walk_()) {
    walked_[dir.id] =
        dir.depth <= options_.depth ? dir.path : AncestorAtDepth(dir.path, options_.depth);
  }
}

bool CgroupCounters::EvictIdlePath() {
  // The path idle the longest among those no live id refers to; "/other" is never evicted.
  auto victim = paths_.end();
  for (auto it = paths_.begin(); it != paths_.end(); ++it) {
    if (it->second.ids != 0 || it->first == kOther) continue;
    if (victim == paths_.end() || it->second.last_active < victim->second.last_active) {
      victim = it;
    }
  }
  if (victim == paths_.end()) return false;
  paths_.erase(victim);
  return true;
}

std::string CgroupCounters::PathFor(uint64_t id) {
  if (id == kOverflowId) return std::string(kOther);
  auto it = walked_.find(id);
  if (it == walked_.end()) return std::string(kOther);
  const std::string& path = it->second;
  if (paths_.contains(path)) return path;
  const size_t named = paths_.size() - (paths_.contains(kOther) ? 1 : 0);
  if (named < options_.max_series || EvictIdlePath()) return path;
  return std::string(kOther);
}

void CgroupCounters::DropId(std::unordered_map<uint64_t, IdState>::iterator it) {
  auto path = paths_.find(it->second.path);
  if (path != paths_.end() && path->second.ids > 0) --path->second.ids;
  ids_.erase(it);
}

std::vector<uint64_t> CgroupCounters::Update(std::span<const Sample> snapshot) {
  ++updates_;

  // One walk per update at most, and only for an id neither tracked nor known from the last
  // walk: ids that stay unknown are filed under "/other" once and do not walk again.
  const bool need_walk = std::any_of(snapshot.begin(), snapshot.end(), [&](const Sample& s) {
    return s.id != kOverflowId && !ids_.contains(s.id) && !walked_.contains(s.id);
  });
  if (need_walk) Walk();

  for (const Sample& s : snapshot) {
    auto it = ids_.find(s.id);
    if (it == ids_.end()) {
      IdState state;
      state.path = PathFor(s.id);
      ++paths_[state.path].ids;
      it = ids_.emplace(s.id, std::move(state)).first;
    }
    IdState& id = it->second;
    id.seen = updates_;
    id.pinned = s.pinned;
    PathState& path = paths_[id.path];
    bool moved = false;
    for (size_t i = 0; i < kWidth; ++i) {
      // A value below the last one is a torn or credited read (see the CPU collector's
      // running-slice credit); keep the high-water mark so the excess is not counted twice.
      if (s.values[i] > id.last[i]) {
        path.total[i] += s.values[i] - id.last[i];
        id.last[i] = s.values[i];
        moved = true;
      }
    }
    if (moved) {
      id.idle = 0;
      path.last_active = updates_;
    } else {
      ++id.idle;
    }
  }

  std::vector<uint64_t> forget;
  for (auto it = ids_.begin(); it != ids_.end();) {
    auto next = std::next(it);
    if (it->second.seen != updates_) {
      DropId(it);
    } else if (it->first != kOverflowId && !it->second.pinned &&
               it->second.idle >= options_.forget_after_idle) {
      forget.push_back(it->first);
      DropId(it);
    }
    it = next;
  }
  return forget;
}

void CgroupCounters::ForEach(
    const std::function<void(const std::string&, const Values&)>& fn) const {
  for (const auto& [path, state] : paths_) fn(path, state.total);
}

}  // namespace augur::telemetry
