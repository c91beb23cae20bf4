#include "telemetry/procfs_util.h"

#include <gtest/gtest.h>

#include <string>

#include "telemetry/temp_tree.h"

namespace augur::telemetry {
namespace {

TEST(ProcfsUtilTest, ParseU64IsStrict) {
  EXPECT_EQ(ParseU64("0"), 0u);
  EXPECT_EQ(ParseU64("18446744073709551615"), UINT64_MAX);
  EXPECT_FALSE(ParseU64("18446744073709551616"));  // overflow
  EXPECT_FALSE(ParseU64(""));
  EXPECT_FALSE(ParseU64("-1"));
  EXPECT_FALSE(ParseU64("+1"));
  EXPECT_FALSE(ParseU64("12x"));
  EXPECT_FALSE(ParseU64(" 12"));
}

TEST(ProcfsUtilTest, ParseI64AndDouble) {
  EXPECT_EQ(ParseI64("-1"), -1);
  EXPECT_EQ(ParseI64("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(ParseI64("9223372036854775808"));
  EXPECT_FALSE(ParseI64("+3"));
  EXPECT_FALSE(ParseI64("3.0"));
  EXPECT_EQ(ParseDouble("0.16"), 0.16);
  EXPECT_EQ(ParseDouble("12"), 12.0);
  EXPECT_FALSE(ParseDouble("nan"));
  EXPECT_FALSE(ParseDouble("inf"));
  EXPECT_FALSE(ParseDouble("1.5x"));
  EXPECT_FALSE(ParseDouble(""));
}

TEST(ProcfsUtilTest, SplitFieldsAndLines) {
  EXPECT_EQ(SplitFields("  a\tb   c "), (std::vector<std::string_view>{"a", "b", "c"}));
  EXPECT_TRUE(SplitFields(" \t ").empty());
  EXPECT_EQ(SplitLines("x\ny\n"), (std::vector<std::string_view>{"x", "y"}));
  EXPECT_EQ(SplitLines("x\n\nz"), (std::vector<std::string_view>{"x", "", "z"}));
  EXPECT_TRUE(SplitLines("").empty());
}

TEST(ProcfsUtilTest, ReadWholeFileReportsWhatFailed) {
  TempTree t;
  std::string big(100000, 'a');  // more than one read() buffer
  t.Write("/f", big);
  auto ok = ReadWholeFile(t.Path("/f"));
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, big);

  auto too_big = ReadWholeFile(t.Path("/f"), 1000);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_NE(too_big.error().message().find(t.Path("/f")), std::string::npos);

  auto missing = ReadWholeFile(t.Path("/nope"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find(t.Path("/nope")), std::string::npos);

  // A directory opens but cannot be read: an IOError, not a crash or an empty string.
  auto dir = ReadWholeFile(t.root());
  ASSERT_FALSE(dir.has_value());
  EXPECT_FALSE(dir.error().IsNotFound());

  // Pseudo-files report size 0 but have content.
  auto stat = ReadWholeFile("/proc/self/stat");
  ASSERT_TRUE(stat.has_value());
  EXPECT_FALSE(stat->empty());
  EXPECT_TRUE(IsDirectory(t.root()));
  EXPECT_FALSE(IsDirectory(t.Path("/f")));
}

}  // namespace
}  // namespace augur::telemetry
