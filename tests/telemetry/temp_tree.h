// TempTree: a throw-away directory tree for fixture-based tests of the procfs and cgroup
// readers. Files are written by the test itself, so each test shows the exact kernel text
// it feeds the parser, and a tree can hold what git cannot (empty directories standing for
// /sys/block entries or cgroups).
//
// Thread safety: none.
#ifndef AUGUR_TESTS_TELEMETRY_TEMP_TREE_H_
#define AUGUR_TESTS_TELEMETRY_TEMP_TREE_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace augur::telemetry {

class TempTree {
 public:
  TempTree() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "augur-procfs-XXXXXX").string();
    char* dir = ::mkdtemp(tmpl.data());
    EXPECT_NE(dir, nullptr) << "mkdtemp " << tmpl;
    root_ = tmpl;
  }
  ~TempTree() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  // The tree's root; pass it as a collector's root_prefix.
  const std::string& root() const { return root_; }
  // `rel` ("/proc/stat") under the root.
  std::string Path(std::string_view rel) const { return root_ + std::string(rel); }

  // Writes `content` to `rel`, creating parent directories.
  void Write(std::string_view rel, std::string_view content) const {
    std::filesystem::path p = Path(rel);
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "writing " << p;
  }
  void MkDir(std::string_view rel) const { std::filesystem::create_directories(Path(rel)); }
  void Remove(std::string_view rel) const { std::filesystem::remove_all(Path(rel)); }

 private:
  std::string root_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TESTS_TELEMETRY_TEMP_TREE_H_
