#include "mesh/authorized_keys.h"

#include <gtest/gtest.h>

#include "mesh/keys.h"
#include "telemetry/temp_tree.h"

namespace augur::mesh {
namespace {

using telemetry::TempTree;

std::string Key() {
  auto k = GenerateKeyPair();
  EXPECT_TRUE(k.has_value());
  return k->public_z85;
}

TEST(AuthorizedKeys, ParsesLinesCommentsAndBlanks) {
  const std::string a = Key(), b = Key();
  auto keys = AuthorizedKeys::Parse("# the cluster\n\n  " + a + "  node-a\n" + b +
                                        "\tnode-b   # rack 2\r\n   # indented comment\n",
                                    "ak");
  ASSERT_TRUE(keys.has_value()) << keys.error().ToString();
  EXPECT_EQ(keys->size(), 2u);
  ASSERT_NE(keys->NameForKey(a), nullptr);
  EXPECT_EQ(*keys->NameForKey(a), "node-a");
  EXPECT_EQ(*keys->NameForKey(b), "node-b");
  EXPECT_EQ(*keys->KeyForName("node-b"), b);
  EXPECT_EQ(keys->KeyForName("node-c"), nullptr);
  EXPECT_EQ(keys->NameForKey(Key()), nullptr);
  auto empty = AuthorizedKeys::Parse("", "ak");
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->size(), 0u);
}

TEST(AuthorizedKeys, ABadLineRefusesTheFileAndNamesTheLine) {
  const std::string a = Key(), b = Key();
  struct Case {
    std::string text;
    std::string expect;
  };
  const Case cases[] = {
      {a + "\n", "ak:1: expected '<z85 public key> <host-name>"},
      {"# c\nnot-a-key host\n", "ak:2: 'not-a-key' is not a Z85 public key"},
      {a + " bad/name\n", "ak:1: 'bad/name' is not a host name"},
      {a + " host extra\n", "ak:1: unexpected 'extra' after the host name"},
      {a + " x\n" + a + " y\n", "ak:2: this key is already listed for host 'x' at line 1"},
      {a + " x\n\n" + b + " x\n", "ak:3: host 'x' already has a key at line 1"},
  };
  for (const Case& c : cases) {
    auto keys = AuthorizedKeys::Parse(c.text, "ak");
    ASSERT_FALSE(keys.has_value()) << c.text;
    EXPECT_NE(keys.error().message().find(c.expect), std::string::npos)
        << keys.error().message();
  }
}

TEST(AuthorizedKeysFile, ReloadsWhenTheFileChangesAndKeepsTheOldSetOnError) {
  TempTree dir;
  const std::string a = Key(), b = Key();
  dir.Write("/ak", a + " a\n");
  auto file = AuthorizedKeysFile::Open(dir.Path("/ak"));
  ASSERT_TRUE(file.has_value()) << file.error().ToString();
  auto& f = **file;
  auto first = f.Current();
  EXPECT_EQ(first->size(), 1u);
  auto same = f.ReloadIfChanged();
  ASSERT_TRUE(same.has_value());
  EXPECT_FALSE(*same);
  EXPECT_EQ(f.Current(), first);  // not re-read: the same set

  dir.Write("/ak", a + " a\n" + b + " b\n");
  auto grown = f.ReloadIfChanged();
  ASSERT_TRUE(grown.has_value());
  EXPECT_TRUE(*grown);
  EXPECT_EQ(f.Current()->size(), 2u);
  EXPECT_EQ(first->size(), 1u);  // a set handed out earlier does not change
  EXPECT_EQ(f.reloads(), 1u);

  dir.Write("/ak", a + " a\n" + "garbage\n");
  auto bad = f.ReloadIfChanged();
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find(":2:"), std::string::npos) << bad.error().message();
  EXPECT_EQ(f.Current()->size(), 2u);
  EXPECT_EQ(f.errors(), 1u);
  auto again = f.ReloadIfChanged();  // the same bad file is not read (or logged) again
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
  EXPECT_EQ(f.errors(), 1u);

  std::filesystem::remove(dir.Path("/ak"));
  EXPECT_FALSE(f.ReloadIfChanged().has_value());
  EXPECT_EQ(f.Current()->size(), 2u);

  dir.Write("/ak", "");  // an empty file is valid: nobody is authorized
  auto emptied = f.ReloadIfChanged();
  ASSERT_TRUE(emptied.has_value());
  EXPECT_TRUE(*emptied);
  EXPECT_EQ(f.Current()->size(), 0u);
}

TEST(AuthorizedKeysFile, ReplacedByRenameIsSeen) {
  TempTree dir;
  const std::string a = Key(), b = Key();
  dir.Write("/ak", a + " a\n");
  auto file = AuthorizedKeysFile::Open(dir.Path("/ak"));
  ASSERT_TRUE(file.has_value());
  // Same size, new inode: what an editor that writes a copy and renames it does.
  dir.Write("/ak.new", b + " a\n");
  std::filesystem::rename(dir.Path("/ak.new"), dir.Path("/ak"));
  auto r = (*file)->ReloadIfChanged();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(*r);
  EXPECT_EQ(*(*file)->Current()->KeyForName("a"), b);
}

TEST(AuthorizedKeysFile, OpenFailsOnAMissingOrBadFile) {
  TempTree dir;
  auto missing = AuthorizedKeysFile::Open(dir.Path("/none"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find("/none"), std::string::npos);
  dir.Write("/bad", "x y z\n");
  auto bad = AuthorizedKeysFile::Open(dir.Path("/bad"));
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("/bad:1:"), std::string::npos);
}

}  // namespace
}  // namespace augur::mesh
