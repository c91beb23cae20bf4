// TempSegmentName: a shared-memory segment name unique to this test process and test, whose
// segment (and the store's lock and staging files) are removed before and after the test,
// so that a crashed earlier run cannot leak into this one.
#ifndef AUGUR_TESTS_AGENT_TEMP_SEGMENT_H_
#define AUGUR_TESTS_AGENT_TEMP_SEGMENT_H_

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

namespace augur::testing {

class TempSegmentName {
 public:
  TempSegmentName() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    name_ = "augur_test_" + std::to_string(getpid()) + "_" + info->test_suite_name() + "." +
            info->name();
    for (char& c : name_) {
      if (c == '/') c = '.';  // parameterised test names carry '/'
    }
    Remove(name_);
  }
  ~TempSegmentName() { Remove(name_); }

  TempSegmentName(const TempSegmentName&) = delete;
  TempSegmentName& operator=(const TempSegmentName&) = delete;

  const std::string& name() const { return name_; }

  // Removes the store's files per shm_store.h: the segment, "<name>.new" while one is being
  // made, and the writer lock "/dev/shm/<name>.lock". Also for tests whose agents they kill
  // (an agent removes its segment only when it stops cleanly).
  static void Remove(const std::string& name) {
    shm_unlink(name.c_str());
    shm_unlink((name + ".new").c_str());
    unlink(("/dev/shm/" + name + ".lock").c_str());
  }

 private:

  std::string name_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_AGENT_TEMP_SEGMENT_H_
