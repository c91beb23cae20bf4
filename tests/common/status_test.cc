#include "augur/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace augur {
namespace {

TEST(StatusTest, OkHasNoMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrorsCarryCodeAndMessage) {
  Status s = Status::Corruption("segment 'x' has bad magic");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_FALSE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "Corruption: segment 'x' has bad magic");
}

TEST(StatusTest, AnnotatePrefixesAndKeepsCode) {
  Status s = Status::NotFound("no such file").Annotate("config");
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.message(), "config: no such file");
  EXPECT_TRUE(Status::OK().Annotate("x").ok());
}

TEST(StatusTest, FromErrnoAppendsStrerror) {
  Status s = Status::FromErrno("open /nope", ENOENT);
  EXPECT_EQ(s.message(), "open /nope: No such file or directory");
}

Result<int> Half(int x) {
  if (x % 2) return Err(Status::InvalidArgument("odd"));
  return x / 2;
}

TEST(StatusTest, ResultCarriesValueOrStatus) {
  EXPECT_EQ(*Half(4), 2);
  auto r = Half(3);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsInvalidArgument());
}

}  // namespace
}  // namespace augur
