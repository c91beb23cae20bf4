#include "mesh/keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "mesh/envelope.h"
#include "telemetry/temp_tree.h"

namespace augur::mesh {
namespace {

using telemetry::TempTree;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(Keys, GeneratedPairsAreZ85AndMatch) {
  auto a = GenerateKeyPair();
  auto b = GenerateKeyPair();
  ASSERT_TRUE(a.has_value()) << a.error().ToString();
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(IsZ85Key(a->public_z85));
  EXPECT_TRUE(IsZ85Key(a->secret_z85));
  EXPECT_NE(a->secret_z85, b->secret_z85);
  auto pub = PublicKeyFromSecret(a->secret_z85);
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(*pub, a->public_z85);
}

TEST(Keys, Z85Checks) {
  auto a = GenerateKeyPair();
  ASSERT_TRUE(a.has_value());
  EXPECT_FALSE(IsZ85Key(a->public_z85.substr(1)));
  EXPECT_FALSE(IsZ85Key(a->public_z85 + "0"));
  std::string bad = a->public_z85;
  bad[3] = '~';  // not in the Z85 alphabet
  EXPECT_FALSE(IsZ85Key(bad));
  // Five characters worth more than 2^32: "#####" is 85^5 - 1.
  EXPECT_FALSE(IsZ85Key("#####" + a->public_z85.substr(5)));
  EXPECT_FALSE(PublicKeyFromSecret("short").has_value());
  EXPECT_EQ(Z85FromBinaryKey(std::string(32, '\0')).size(), kZ85KeyChars);
  EXPECT_EQ(Z85FromBinaryKey("too short"), "");
}

TEST(Keys, KeygenWritesPrivateKeyAndPublicLine) {
  TempTree dir;
  auto r = WriteKeyFiles({dir.Path("/etc/augur"), "node-1", false});
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  EXPECT_EQ(r->secret_path, dir.Path("/etc/augur/host.key"));
  EXPECT_EQ(r->public_path, dir.Path("/etc/augur/host.pub"));
  EXPECT_EQ(ModeOf(r->secret_path), 0600u);
  EXPECT_EQ(ModeOf(r->public_path), 0644u);
  EXPECT_EQ(ReadAll(r->public_path), r->keys.public_z85 + " node-1\n");
  EXPECT_EQ(r->public_line, r->keys.public_z85 + " node-1");
  EXPECT_NE(ReadAll(r->secret_path).find(r->keys.secret_z85), std::string::npos);
  auto back = ReadSecretKeyFile(r->secret_path);
  ASSERT_TRUE(back.has_value()) << back.error().ToString();
  EXPECT_EQ(back->public_z85, r->keys.public_z85);
  EXPECT_EQ(back->secret_z85, r->keys.secret_z85);
  // No temporary files left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.Path("/etc/augur")),
                          std::filesystem::directory_iterator()),
            2);
}

TEST(Keys, KeygenWithAUmaskStillWrites0600) {
  TempTree dir;
  const mode_t old = ::umask(0);
  auto r = WriteKeyFiles({dir.root(), "n", false});
  ::umask(old);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(ModeOf(r->secret_path), 0600u);
}

TEST(Keys, KeygenRefusesToOverwriteWithoutForce) {
  TempTree dir;
  auto first = WriteKeyFiles({dir.root(), "n", false});
  ASSERT_TRUE(first.has_value());
  const std::string key_before = ReadAll(first->secret_path);
  auto again = WriteKeyFiles({dir.root(), "n", false});
  ASSERT_FALSE(again.has_value());
  EXPECT_TRUE(again.error().IsAlreadyExists()) << again.error().ToString();
  EXPECT_NE(again.error().message().find("host.key exists"), std::string::npos);
  EXPECT_NE(again.error().message().find("--force"), std::string::npos);
  EXPECT_EQ(ReadAll(first->secret_path), key_before);

  // Only host.pub there: still refused, and host.key is not created.
  std::filesystem::remove(first->secret_path);
  auto pub_only = WriteKeyFiles({dir.root(), "n", false});
  ASSERT_FALSE(pub_only.has_value());
  EXPECT_NE(pub_only.error().message().find("host.pub exists"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(first->secret_path));

  auto forced = WriteKeyFiles({dir.root(), "m", true});
  ASSERT_TRUE(forced.has_value()) << forced.error().ToString();
  EXPECT_NE(forced->keys.secret_z85, first->keys.secret_z85);
  EXPECT_EQ(ModeOf(forced->secret_path), 0600u);
  EXPECT_EQ(ReadAll(forced->public_path), forced->keys.public_z85 + " m\n");
}

TEST(Keys, KeygenRefusesABadName) {
  TempTree dir;
  auto r = WriteKeyFiles({dir.root(), "has space", false});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("'has space' is not valid"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir.Path("/host.key")));
}

TEST(Keys, SecretKeyFileErrorsNameTheProblem) {
  TempTree dir;
  auto keys = GenerateKeyPair();
  ASSERT_TRUE(keys.has_value());
  auto read = [&](const std::string& content, mode_t mode) {
    dir.Write("/k", content);
    ::chmod(dir.Path("/k").c_str(), mode);
    return ReadSecretKeyFile(dir.Path("/k"));
  };
  EXPECT_TRUE(read("# c\n\n" + keys->secret_z85 + "\n", 0600).has_value());
  EXPECT_TRUE(read(keys->secret_z85, 0400).has_value());  // no newline, read-only

  auto open = read(keys->secret_z85 + "\n", 0644);
  ASSERT_FALSE(open.has_value());
  EXPECT_NE(open.error().message().find("mode 0644"), std::string::npos)
      << open.error().message();
  EXPECT_NE(open.error().message().find("chmod 600"), std::string::npos);

  auto empty = read("# nothing\n", 0600);
  ASSERT_FALSE(empty.has_value());
  EXPECT_NE(empty.error().message().find("no key line"), std::string::npos);

  auto bad = read("# c\nnot-a-key\n", 0600);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find(":2: not a Z85 key"), std::string::npos)
      << bad.error().message();

  auto two = read(keys->secret_z85 + "\n" + keys->secret_z85 + "\n", 0600);
  ASSERT_FALSE(two.has_value());
  EXPECT_NE(two.error().message().find(":2: a second key line"), std::string::npos);

  auto missing = ReadSecretKeyFile(dir.Path("/nope"));
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_NE(missing.error().message().find("augurctl keygen"), std::string::npos);
}

TEST(Keys, Defaults) {
  EXPECT_FALSE(DefaultKeyDir().empty());
  EXPECT_EQ(DefaultKeyDir().find("augur.yaml"), std::string::npos);
  // gethostname's answer, or "" when it is no valid host name.
  const std::string host = DefaultHostName();
  if (!host.empty()) {
    EXPECT_TRUE(IsValidHostName(host)) << host;
  }
}

}  // namespace
}  // namespace augur::mesh
