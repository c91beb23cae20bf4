#include "telemetry/cgroup_fs.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <deque>
#include <map>
#include <utility>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// mountinfo escapes space, tab, newline and backslash in paths as \ooo octal (the kernel's
// seq_path with " \t\n\\"); decode every \ooo so a mount point like
// "/sys/fs/cgroup/my\040dir" becomes the real path. A backslash not followed by three octal
// digits is kept as is rather than rejected: it cannot come from the kernel, and keeping it
// loses nothing.
std::string UnescapeMountPath(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto is_oct = [](char c) { return c >= '0' && c <= '7'; };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && is_oct(s[i + 1]) && is_oct(s[i + 2]) &&
        is_oct(s[i + 3])) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    if (comma > start) out.emplace_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Super options of a v1 cgroup mount mix controller names with cgroup1 mount options
// (kernel/cgroup/cgroup-v1.c, cgroup1_parse_param). Everything that is not one of those
// options is a controller. "name=X" is kept: it names a controller-less hierarchy such as
// systemd's, and /proc/PID/cgroup prints it in the same "name=X" form, so keeping it lets
// CgroupOfPid() find those hierarchies too.
bool IsCgroup1Option(std::string_view opt) {
  static constexpr std::string_view kFlags[] = {
      "rw",
      "ro",
      "none",
      "all",
      "noprefix",
      "xattr",
      "clone_children",
      "cpuset_v2_mode",
      "favordynmods",
      "nofavordynmods",
  };
  if (std::find(std::begin(kFlags), std::end(kFlags), opt) != std::end(kFlags)) return true;
  return opt.starts_with("release_agent=");
}

std::string JoinUnder(const std::string& mount_point, std::string_view rel) {
  if (rel.empty() || rel == "/") return mount_point;
  std::string out = mount_point;
  if (!out.empty() && out.back() == '/') out.pop_back();
  if (rel.front() != '/') out += '/';
  out += rel;
  return out;
}

}  // namespace

Result<CgroupFs> CgroupFs::Discover(std::string_view mountinfo, std::string_view root_prefix) {
  auto text = ReadWholeFile(std::string(mountinfo));
  if (!text) return Err(text.error());

  CgroupFs fs;
  fs.root_prefix_ = std::string(root_prefix);
  // The same hierarchy can be mounted more than once (bind mounts, container runtimes
  // mounting a subtree). Keep one mount per hierarchy, preferring one that shows the whole
  // hierarchy (mountinfo root "/"), since paths from /proc/PID/cgroup and from Walk() are
  // relative to the hierarchy root.
  struct Seen {
    size_t index;
    bool whole;
  };
  std::map<std::string, Seen> by_hierarchy;

  for (std::string_view line : SplitLines(*text)) {
    std::vector<std::string_view> f = SplitFields(line);
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    auto dash = std::find(f.begin(), f.end(), std::string_view("-"));
    if (f.size() < 7 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 3) continue;
    std::string_view fstype = *(dash + 1);
    std::string_view super = (f.end() - dash >= 4) ? *(dash + 3) : std::string_view();
    int version;
    if (fstype == "cgroup") {
      version = 1;
    } else if (fstype == "cgroup2") {
      version = 2;
    } else {
      continue;
    }

    CgroupMount m;
    m.version = version;
    m.mount_point = fs.root_prefix_ + UnescapeMountPath(f[4]);
    std::string key;
    if (version == 1) {
      for (std::string& opt : SplitComma(super)) {
        if (!IsCgroup1Option(opt)) m.controllers.push_back(std::move(opt));
      }
      if (m.controllers.empty()) continue;  // not a hierarchy we could ever match
      std::vector<std::string> sorted = m.controllers;
      std::sort(sorted.begin(), sorted.end());
      key = "v1:";
      for (const std::string& c : sorted) key += c + ",";
    } else {
      // Which controllers the v2 tree offers is in its root's cgroup.controllers. An
      // unreadable file leaves the list empty: the mount is still usable for the core
      // files (cpu.stat usage, cgroup.procs) that exist without any controller enabled.
      auto ctl = ReadWholeFile(m.mount_point + "/cgroup.controllers");
      if (ctl) {
        for (std::string_view c : SplitFields(*ctl)) {
          while (!c.empty() && (c.back() == '\n' || c.back() == '\r')) c.remove_suffix(1);
          if (!c.empty()) m.controllers.emplace_back(c);
        }
      }
      key = "v2";
    }

    bool whole = UnescapeMountPath(f[3]) == "/";
    auto it = by_hierarchy.find(key);
    if (it == by_hierarchy.end()) {
      by_hierarchy.emplace(key, Seen{fs.mounts_.size(), whole});
      fs.mounts_.push_back(std::move(m));
    } else if (whole && !it->second.whole) {
      fs.mounts_[it->second.index] = std::move(m);
      it->second.whole = true;
    }
  }
  return fs;
}

const CgroupMount* CgroupFs::ForController(std::string_view controller) const {
  for (const CgroupMount& m : mounts_) {
    if (m.version == 1 &&
        std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end()) {
      return &m;
    }
  }
  // A controller bound to a v1 hierarchy cannot also be active in v2, so v1 wins.
  const CgroupMount* v2 = Unified();
  if (v2 != nullptr && std::find(v2->controllers.begin(), v2->controllers.end(), controller) !=
                           v2->controllers.end()) {
    return v2;
  }
  return nullptr;
}

const CgroupMount* CgroupFs::Unified() const {
  for (const CgroupMount& m : mounts_) {
    if (m.version == 2) return &m;
  }
  return nullptr;
}

std::vector<CgroupDir> CgroupFs::Walk(const CgroupMount& mount, int max_depth,
                                      size_t max_count) const {
  std::vector<CgroupDir> out;
  if (max_count == 0 || max_depth < 0) return out;
  struct stat st;
  if (::stat(mount.mount_point.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return out;
  out.push_back(CgroupDir{"/", static_cast<uint64_t>(st.st_ino), 0});

  // Breadth first so that, when max_count cuts the walk short, what is kept is the top of
  // the tree (slices, services) rather than one deep branch.
  std::deque<size_t> queue{0};
  while (!queue.empty() && out.size() < max_count) {
    size_t parent_index = queue.front();
    queue.pop_front();
    if (out[parent_index].depth >= max_depth) continue;
    const std::string parent_rel = out[parent_index].path;
    const int child_depth = out[parent_index].depth + 1;
    const std::string parent_abs = JoinUnder(mount.mount_point, parent_rel);

    DIR* dir = ::opendir(parent_abs.c_str());
    if (dir == nullptr) continue;  // removed between listing and now, or not permitted
    std::vector<std::pair<std::string, uint64_t>> children;
    while (dirent* e = ::readdir(dir)) {
      std::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
      // d_ino is the inode as the directory sees it; stat it anyway so a fixture on an
      // overlay filesystem and a real cgroupfs agree, and to resolve DT_UNKNOWN.
      std::string child_abs = parent_abs + "/" + std::string(name);
      struct stat cst;
      if (::lstat(child_abs.c_str(), &cst) != 0 || !S_ISDIR(cst.st_mode)) continue;
      children.emplace_back(std::string(name), static_cast<uint64_t>(cst.st_ino));
    }
    ::closedir(dir);
    // readdir order is arbitrary; sorting makes the kept subset stable across runs.
    std::sort(children.begin(), children.end());
    for (auto& [name, ino] : children) {
      if (out.size() >= max_count) break;
      std::string rel = parent_rel == "/" ? "/" + name : parent_rel + "/" + name;
      out.push_back(CgroupDir{std::move(rel), ino, child_depth});
      queue.push_back(out.size() - 1);
    }
  }
  return out;
}

Result<std::string> CgroupFs::CgroupOfPid(const CgroupMount& mount, int pid) const {
  const std::string file = root_prefix_ + "/proc/" + std::to_string(pid) + "/cgroup";
  auto text = ReadWholeFile(file);
  if (!text) return Err(text.error());
  for (std::string_view line : SplitLines(*text)) {
    // "hierarchy-id:controller-list:path"; the path may itself contain ':'.
    size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1);
    std::string_view ctl = line.substr(c1 + 1, c2 - c1 - 1);
    std::string_view path = line.substr(c2 + 1);
    if (path.empty()) continue;
    if (mount.version == 2) {
      if (id != "0" || !ctl.empty()) continue;
      // The kernel appends " (deleted)" to a v2 path whose cgroup has been removed
      // (proc_cgroup_show); the directory no longer exists either way, but the path is
      // what callers match on.
      constexpr std::string_view kDeleted = " (deleted)";
      if (path.ends_with(kDeleted)) path.remove_suffix(kDeleted.size());
      return std::string(path);
    }
    if (id == "0") continue;
    for (const std::string& c : SplitComma(ctl)) {
      if (std::find(mount.controllers.begin(), mount.controllers.end(), c) !=
          mount.controllers.end()) {
        return std::string(path);
      }
    }
  }
  return Err(
      Status::NotFound(file + ": no line for the hierarchy mounted at " + mount.mount_point));
}

}  // namespace augur::telemetry
