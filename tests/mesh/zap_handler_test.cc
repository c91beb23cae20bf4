#include "mesh/zap_handler.h"

#include <gtest/gtest.h>

#include <zmq.h>

#include "mesh/keys.h"

namespace augur::mesh {
namespace {

struct Fixture {
  KeyPair known, stranger;
  AuthorizedKeys keys;
};

Fixture Make() {
  Fixture f;
  f.known = *GenerateKeyPair();
  f.stranger = *GenerateKeyPair();
  f.keys = *AuthorizedKeys::Parse(f.known.public_z85 + " node-a\n", "ak");
  return f;
}

std::string Binary(const std::string& z85) {
  std::string out(kCurveKeyBytes, '\0');
  EXPECT_NE(zmq_z85_decode(reinterpret_cast<uint8_t*>(out.data()), z85.c_str()), nullptr);
  return out;
}

ZapRequest Curve(const std::string& public_z85) {
  return *ParseZapRequest({"1.0", "7", kZapDomain, "10.0.0.9", "", "CURVE", Binary(public_z85)});
}

TEST(ZapHandler, AcceptsAListedKeyAndNamesTheHost) {
  Fixture f = Make();
  ZapReply r = DecideZap(Curve(f.known.public_z85), f.keys);
  EXPECT_EQ(r.status_code, "200");
  EXPECT_EQ(r.user_id, "node-a");
  EXPECT_EQ(r.client_key, f.known.public_z85);
  EXPECT_EQ(r.metadata, EncodeZapMetadata(kKeyProperty, f.known.public_z85));
}

TEST(ZapHandler, RefusesEverythingElse) {
  Fixture f = Make();
  ZapReply stranger = DecideZap(Curve(f.stranger.public_z85), f.keys);
  EXPECT_EQ(stranger.status_code, "400");
  EXPECT_EQ(stranger.user_id, "");
  EXPECT_EQ(stranger.client_key, f.stranger.public_z85);
  EXPECT_NE(stranger.status_text.find("not in authorized_keys"), std::string::npos);

  ZapRequest plain = Curve(f.known.public_z85);
  plain.mechanism = "NULL";
  plain.credentials.clear();
  EXPECT_EQ(DecideZap(plain, f.keys).status_code, "400");

  ZapRequest other_domain = Curve(f.known.public_z85);
  other_domain.domain = "elsewhere";
  EXPECT_EQ(DecideZap(other_domain, f.keys).status_code, "400");

  ZapRequest short_key = Curve(f.known.public_z85);
  short_key.credentials[0].resize(31);
  EXPECT_EQ(DecideZap(short_key, f.keys).status_code, "400");

  ZapRequest version = Curve(f.known.public_z85);
  version.version = "2.0";
  EXPECT_EQ(DecideZap(version, f.keys).status_code, "500");

  EXPECT_FALSE(ParseZapRequest({"1.0", "7", "d"}).has_value());
}

TEST(ZapHandler, MetadataIsZmtpProperties) {
  const std::string m = EncodeZapMetadata("X-A", std::string(300, 'v'));
  ASSERT_EQ(m.size(), 1 + 3 + 4 + 300u);
  EXPECT_EQ(m[0], 3);
  EXPECT_EQ(m.substr(1, 3), "X-A");
  EXPECT_EQ(m.substr(4, 4), std::string("\0\0\x01\x2c", 4));  // 300, big-endian
}

}  // namespace
}  // namespace augur::mesh
