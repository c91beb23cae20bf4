// BpfLoadLog without loading anything into the kernel: what libbpf prints while a load is
// attempted ends up in the Status, and libbpf's print callback is handed back afterwards.
#include "telemetry/bpf_skeleton.h"

#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdarg>
#include <string>

namespace augur::telemetry {
namespace {

int CountingPrint(enum libbpf_print_level, const char*, va_list) { return 0; }

TEST(BpfLoadLogTest, QuotesLibbpfAndRestoresThePreviousPrinter) {
  libbpf_print_fn_t original = libbpf_set_print(&CountingPrint);
  Status failure;
  {
    BpfLoadLog log;
    errno = 0;
    struct bpf_object* obj = bpf_object__open_file("/nonexistent/augur.bpf.o", nullptr);
    const int err = errno;
    ASSERT_EQ(obj, nullptr);
    failure = log.Failure("bpf_test", "open", -err);
  }
  EXPECT_EQ(libbpf_set_print(original), &CountingPrint);

  EXPECT_TRUE(failure.IsUnavailable());
  const std::string& msg = failure.message();
  EXPECT_EQ(msg.rfind("bpf_test: open failed: No such file or directory (-2)", 0), 0u) << msg;
  // libbpf's own words, without its "libbpf: " prefix on every line.
  EXPECT_NE(msg.find("; libbpf: "), std::string::npos) << msg;
  EXPECT_NE(msg.find("/nonexistent/augur.bpf.o"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("libbpf: libbpf:"), std::string::npos) << msg;
  // Nothing was handed to the kernel, so there is no verifier log to quote.
  EXPECT_EQ(msg.find("verifier"), std::string::npos) << msg;
}

TEST(BpfLoadLogTest, ExplainsPermissionErrors) {
  BpfLoadLog log;
  const Status s = log.Failure("bpf_test", "load", -EPERM);
  EXPECT_NE(s.message().find("needs CAP_BPF and CAP_PERFMON or CAP_SYS_ADMIN"), std::string::npos)
      << s.ToString();
}

}  // namespace
}  // namespace augur::telemetry
