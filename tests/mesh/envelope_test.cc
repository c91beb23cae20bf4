#include "mesh/envelope.h"

#include <gtest/gtest.h>

#include <random>

#include "mesh/envelope.pb.h"

namespace augur::mesh {
namespace {

constexpr size_t kMax = 64 * 1024;

Envelope Good() {
  Envelope e;
  e.sender = "host-a.example";
  e.boot_id = 1'700'000'000'000'000'000ULL;
  e.seq = 42;
  e.channel = Channel::kPlacement;
  e.payload = std::string("bid\0with nul", 12);
  e.sent_unix_ns = 1'700'000'000'123'456'789LL;
  return e;
}

TEST(Envelope, RoundTripsEveryField) {
  const Envelope e = Good();
  auto d = DecodeEnvelope(EncodeEnvelope(e), kMax);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->version, kEnvelopeVersion);
  EXPECT_EQ(d->sender, e.sender);
  EXPECT_EQ(d->boot_id, e.boot_id);
  EXPECT_EQ(d->seq, e.seq);
  EXPECT_EQ(d->channel, e.channel);
  EXPECT_EQ(d->payload, e.payload);
  EXPECT_EQ(d->sent_unix_ns, e.sent_unix_ns);
}

TEST(Envelope, EveryChannelRoundTrips) {
  for (Channel ch : {Channel::kMembership, Channel::kPlacement, Channel::kReplication,
                     Channel::kData}) {
    Envelope e = Good();
    e.channel = ch;
    auto d = DecodeEnvelope(EncodeEnvelope(e), kMax);
    ASSERT_TRUE(d.has_value()) << ChannelName(ch);
    EXPECT_EQ(d->channel, ch);
  }
}

TEST(Envelope, OversizedIsRefusedBeforeParsing) {
  Envelope e = Good();
  e.payload.assign(2000, 'x');
  const std::string bytes = EncodeEnvelope(e);
  EXPECT_TRUE(DecodeEnvelope(bytes, bytes.size()).has_value());
  auto d = DecodeEnvelope(bytes, bytes.size() - 1);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(d.error().message().find("over the limit"), std::string::npos)
      << d.error().message();
  // Garbage that is too large is oversized, not malformed: size is checked first.
  EXPECT_EQ(DecodeEnvelope(std::string(100, '\xff'), 99).error().code(),
            Status::Code::kResourceExhausted);
}

TEST(Envelope, GarbageIsMalformed) {
  for (const std::string& bytes :
       {std::string("\xff\xff\xff\xff", 4), std::string("\x0a\x05" "ab", 4),
        std::string("\x08", 1)}) {
    auto d = DecodeEnvelope(bytes, kMax);
    ASSERT_FALSE(d.has_value());
    EXPECT_EQ(d.error().code(), Status::Code::kCorruption) << d.error().ToString();
    EXPECT_NE(d.error().message().find("not a protobuf Envelope"), std::string::npos);
  }
}

TEST(Envelope, UnknownVersionSaysBothVersions) {
  Envelope e = Good();
  e.version = 2;
  auto d = DecodeEnvelope(EncodeEnvelope(e), kMax);
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(d.error().message().find("version 2"), std::string::npos) << d.error().message();
  EXPECT_NE(d.error().message().find("speaks version 1"), std::string::npos);
  // No version at all (empty message) is version 0: unknown too.
  EXPECT_EQ(DecodeEnvelope("", kMax).error().code(), Status::Code::kFailedPrecondition);
}

TEST(Envelope, BadFieldsAreMalformedWithWhatIsWrong) {
  struct Case {
    const char* what;
    void (*mutate)(Envelope&);
    const char* expect;
  };
  const Case cases[] = {
      {"empty sender", [](Envelope& e) { e.sender = ""; }, "is not a host name"},
      {"sender with a space", [](Envelope& e) { e.sender = "a b"; }, "is not a host name"},
      {"sender starting with -", [](Envelope& e) { e.sender = "-a"; }, "is not a host name"},
      {"sender of bad UTF-8", [](Envelope& e) { e.sender = "h\xc3\x28"; }, "\\xc3"},
      {"long sender", [](Envelope& e) { e.sender = std::string(254, 'a'); }, "..."},
      {"channel 0", [](Envelope& e) { e.channel = static_cast<Channel>(0); }, "unknown channel 0"},
      {"channel 7", [](Envelope& e) { e.channel = static_cast<Channel>(7); }, "unknown channel 7"},
      {"boot 0", [](Envelope& e) { e.boot_id = 0; }, "boot_id 0"},
      {"seq 0", [](Envelope& e) { e.seq = 0; }, "seq 0"},
  };
  for (const Case& c : cases) {
    Envelope e = Good();
    c.mutate(e);
    auto d = DecodeEnvelope(EncodeEnvelope(e), kMax);
    ASSERT_FALSE(d.has_value()) << c.what;
    EXPECT_EQ(d.error().code(), Status::Code::kCorruption) << c.what;
    EXPECT_NE(d.error().message().find(c.expect), std::string::npos)
        << c.what << ": " << d.error().message();
  }
}

TEST(Envelope, UnknownFieldsOfTheSameVersionAreIgnored) {
  wire::Envelope w;
  ASSERT_TRUE(w.ParseFromString(EncodeEnvelope(Good())));
  std::string bytes = w.SerializeAsString();
  bytes += std::string("\xa0\x06\x07", 3);  // field 100, varint 7
  auto d = DecodeEnvelope(bytes, kMax);
  ASSERT_TRUE(d.has_value()) << d.error().ToString();
  EXPECT_EQ(d->payload, Good().payload);
}

TEST(Envelope, HostNames) {
  EXPECT_TRUE(IsValidHostName("a"));
  EXPECT_TRUE(IsValidHostName("node-7.rack_2.example"));
  EXPECT_TRUE(IsValidHostName("7"));
  EXPECT_TRUE(IsValidHostName(std::string(253, 'x')));
  EXPECT_FALSE(IsValidHostName(""));
  EXPECT_FALSE(IsValidHostName(std::string(254, 'x')));
  EXPECT_FALSE(IsValidHostName(".a"));
  EXPECT_FALSE(IsValidHostName("_a"));
  EXPECT_FALSE(IsValidHostName("a#b"));
  EXPECT_FALSE(IsValidHostName("a@b"));
  EXPECT_FALSE(IsValidHostName(std::string("a\0b", 3)));
}

// Seeded: every truncation and random byte flips of a good envelope decode to an error or to
// an envelope that passes the same checks again after re-encoding; nothing crashes.
TEST(Envelope, MutatedBytesNeverCrashAndWhatDecodesIsValid) {
  std::mt19937_64 rng(12);
  const std::string good = EncodeEnvelope(Good());
  for (size_t len = 0; len <= good.size(); ++len) {
    (void)DecodeEnvelope(good.substr(0, len), kMax);
  }
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) b[rng() % b.size()] = static_cast<char>(rng());
    auto d = DecodeEnvelope(b, kMax);
    if (!d) continue;
    ++decoded;
    EXPECT_TRUE(IsValidHostName(d->sender));
    EXPECT_GT(d->seq, 0u);
    EXPECT_GT(d->boot_id, 0u);
    auto again = DecodeEnvelope(EncodeEnvelope(*d), kMax);
    ASSERT_TRUE(again.has_value()) << again.error().ToString();
    EXPECT_EQ(again->payload, d->payload);
  }
  EXPECT_GT(decoded, 0);  // flips inside the payload still decode
}

}  // namespace
}  // namespace augur::mesh
