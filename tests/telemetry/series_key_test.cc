#include "telemetry/series_key.h"

#include <gtest/gtest.h>

namespace augur::telemetry {
namespace {

TEST(SeriesKeyTest, CanonicalFormSortsLabels) {
  SeriesKey a("disk_io_bytes_total", {{"direction", "read"}, {"device", "vda"}});
  SeriesKey b("disk_io_bytes_total", {{"device", "vda"}, {"direction", "read"}});
  EXPECT_EQ(a.ToString(), "disk_io_bytes_total{device=\"vda\",direction=\"read\"}");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.label("device"), "vda");
  EXPECT_EQ(a.label("missing"), "");
}

TEST(SeriesKeyTest, BareName) {
  SeriesKey k("augur_series", {});
  EXPECT_EQ(k.ToString(), "augur_series");
  auto p = SeriesKey::Parse("augur_series");
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(*p, k);
}

TEST(SeriesKeyTest, EscapesAndParsesBack) {
  SeriesKey k("cgroup_cpu_seconds_total", {{"cgroup", "/a \"b\"\\c\nd"}, {"source", "bpf"}});
  const std::string text = k.ToString();
  EXPECT_EQ(text, "cgroup_cpu_seconds_total{cgroup=\"/a \\\"b\\\"\\\\c\\nd\",source=\"bpf\"}");
  auto p = SeriesKey::Parse(text);
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(*p, k);
}

TEST(SeriesKeyTest, ParseAcceptsAnyLabelOrder) {
  auto p = SeriesKey::Parse("m{b=\"2\",a=\"1\"}");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->ToString(), "m{a=\"1\",b=\"2\"}");
}

TEST(SeriesKeyTest, ValidateRejectsBadNames) {
  EXPECT_FALSE(SeriesKey("1abc", {}).Validate().ok());
  EXPECT_FALSE(SeriesKey("a-b", {}).Validate().ok());
  EXPECT_TRUE(SeriesKey("ns:a_b1", {}).Validate().ok());
  EXPECT_FALSE(SeriesKey("m", {{"bad-label", "x"}}).Validate().ok());
  EXPECT_FALSE(SeriesKey("m", {{"__reserved", "x"}}).Validate().ok());
  EXPECT_FALSE(SeriesKey("m", {{"a", "1"}, {"a", "2"}}).Validate().ok());
  Status st = SeriesKey("m", {{"cgroup", std::string(300, 'x')}}).Validate();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("longer than the limit"), std::string::npos) << st.message();
}

TEST(SeriesKeyTest, ParseRejectsMalformedText) {
  for (const char* bad : {"m{a=\"1\"", "m{a=1}", "m{a=\"1\"b=\"2\"}", "m{a=\"unterminated}",
                          "m{=\"x\"}", "9m", "m{a=\"1\",a=\"2\"}"}) {
    auto p = SeriesKey::Parse(bad);
    EXPECT_FALSE(p) << bad;
    if (!p) {
      EXPECT_NE(p.error().message().find("series key"), std::string::npos) << bad;
    }
  }
}

}  // namespace
}  // namespace augur::telemetry
