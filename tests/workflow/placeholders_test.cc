#include "workflow/placeholders.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace augur::workflow {
namespace {

const PlaceholderValues kValues = {{"shard.begin", "0"},  {"shard.end", "100"},
                                   {"output", "/w/out"},  {"inputs.count", "/w/count"},
                                   {"shard.item", "{x}"}};

TEST(ExpandPlaceholdersTest, FillsKnownNames) {
  EXPECT_EQ(ExpandPlaceholders("seq {shard.begin} {shard.end} > {output}", kValues),
            "seq 0 100 > /w/out");
  EXPECT_EQ(ExpandPlaceholders("{inputs.count}", kValues), "/w/count");
  EXPECT_EQ(ExpandPlaceholders("", kValues), "");
}

TEST(ExpandPlaceholdersTest, ValuesAreNotExpandedAgain) {
  EXPECT_EQ(ExpandPlaceholders("{shard.item}", kValues), "{x}");
}

TEST(ExpandPlaceholdersTest, LeavesUnknownNamesAndOtherBracesAsWritten) {
  EXPECT_EQ(ExpandPlaceholders("awk '{s+=$1} END {print s}'", kValues),
            "awk '{s+=$1} END {print s}'");
  EXPECT_EQ(ExpandPlaceholders("{unknown} {HOME} {} { } {a.} {.a} {1x} {", kValues),
            "{unknown} {HOME} {} { } {a.} {.a} {1x} {");
  EXPECT_EQ(ExpandPlaceholders("{{output}", kValues), "{output}");  // not {/w/out}
  EXPECT_EQ(ExpandPlaceholders("{a{output}}", kValues), "{a/w/out}");
}

TEST(ExpandPlaceholdersTest, DoubledBracesAreLiteral) {
  EXPECT_EQ(ExpandPlaceholders("{{output}}", kValues), "{output}");
  EXPECT_EQ(ExpandPlaceholders("{{{output}}}", kValues), "{/w/out}");
  EXPECT_EQ(ExpandPlaceholders("if(x){{y}}}}", kValues), "if(x){y}}");
}

TEST(FindPlaceholdersTest, NamesAndOffsets) {
  std::vector<Placeholder> p = FindPlaceholders("a {shard.index} {{output}} {inputs.my-stage}");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].name, "shard.index");
  EXPECT_EQ(p[0].offset, 2u);
  EXPECT_EQ(p[1].name, "inputs.my-stage");
  EXPECT_EQ(p[1].offset, 27u);
}

TEST(IsPlaceholderNameTest, Shape) {
  for (const char* ok : {"a", "_x", "shard.index", "inputs.my-stage", "inputs.1st", "A.b.c"}) {
    EXPECT_TRUE(IsPlaceholderName(ok)) << ok;
  }
  for (const char* bad : {"", "1a", ".a", "a.", "a..b", "a b", "s+=$1", "-a", "a/b"}) {
    EXPECT_FALSE(IsPlaceholderName(bad)) << bad;
  }
}

}  // namespace
}  // namespace augur::workflow
