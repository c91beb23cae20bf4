// TempDir: a fresh directory under /tmp (mode 0755, so that children running as another
// user reach what is in it), removed with everything in it when the test ends.
#ifndef AUGUR_TESTS_AGENT_TEMP_DIR_H_
#define AUGUR_TESTS_AGENT_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <string_view>

namespace augur::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/augur-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    EXPECT_NE(p, nullptr);
    path_ = p ? p : "/tmp";
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_AGENT_TEMP_DIR_H_
