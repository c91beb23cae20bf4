#include "telemetry/kernel_btf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace augur::telemetry {
namespace {

// Reads the running kernel's BTF (world-readable, no privilege needed).
class KernelBtfTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(std::string(KernelBtf::kVmlinuxPath).c_str(), R_OK) != 0) {
      GTEST_SKIP() << "no " << KernelBtf::kVmlinuxPath << " on this kernel";
    }
    Result<KernelBtf> btf = KernelBtf::Load("");
    ASSERT_TRUE(btf.has_value()) << btf.error().ToString();
    btf_.emplace(std::move(*btf));
  }
  std::optional<KernelBtf> btf_;
};

TEST_F(KernelBtfTest, FindsCgroupSubsystemIndexes) {
  // The enum is generated from the configured controllers; cpuset, when built, is first.
  const std::optional<int64_t> cpu = btf_->EnumValue("cgroup_subsys_id", "cpu_cgrp_id");
  const std::optional<int64_t> count = btf_->EnumValue("cgroup_subsys_id", "CGROUP_SUBSYS_COUNT");
  ASSERT_TRUE(cpu.has_value());
  ASSERT_TRUE(count.has_value());
  EXPECT_GE(*cpu, 0);
  EXPECT_LT(*cpu, *count);
  EXPECT_FALSE(btf_->EnumValue("cgroup_subsys_id", "no_such_cgrp_id").has_value());
  EXPECT_FALSE(btf_->EnumValue("no_such_enum", "cpu_cgrp_id").has_value());
}

TEST_F(KernelBtfTest, CountsTracepointArguments) {
  // sched_switch(preempt, prev, next[, prev_state since 5.18]).
  const std::optional<int> sched_switch = btf_->TracepointArgCount("sched_switch");
  ASSERT_TRUE(sched_switch.has_value());
  EXPECT_TRUE(*sched_switch == 3 || *sched_switch == 4) << *sched_switch;
  // sched_wakeup(p) has been one argument forever.
  EXPECT_EQ(btf_->TracepointArgCount("sched_wakeup"), 1);
  EXPECT_FALSE(btf_->TracepointArgCount("no_such_tracepoint").has_value());
}

TEST(KernelBtfLoadTest, MissingFileIsUnavailableAndNamed) {
  Result<KernelBtf> btf = KernelBtf::Load("/nonexistent/vmlinux");
  ASSERT_FALSE(btf.has_value());
  EXPECT_TRUE(btf.error().IsUnavailable());
  EXPECT_NE(btf.error().message().find("no BTF at /nonexistent/vmlinux"), std::string::npos)
      << btf.error().ToString();
}

}  // namespace
}  // namespace augur::telemetry
