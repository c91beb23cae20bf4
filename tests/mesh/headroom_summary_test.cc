#include "mesh/headroom_summary.h"

#include <random>

#include <gtest/gtest.h>

#include "mesh/headroom.pb.h"

namespace augur::mesh {
namespace {

using workflow::CostClass;
using workflow::Resources;

constexpr uint64_t kMiB = 1ULL << 20;
constexpr uint64_t kGiB = 1ULL << 30;

// A host with three backends, the most a summary is expected to carry comfortably.
HeadroomSummary Typical() {
  HeadroomSummary s;
  s.horizons = {{0, {5.3337, 12 * kGiB + 123}, {5.3337, 12 * kGiB + 123}},
                {60, {3.25, 9 * kGiB + 7}, {6.0, 14 * kGiB}},
                {600, {1.1, 2 * kGiB}, {7.9, 30 * kGiB + 5}}};
  s.backends = {{"process", {{"local", 0, 0, false}}},
                {"libvirt", {{"on-demand", 0.0416, 0.0052, false}, {"spot", 0.0125, 0.0016, true}}},
                {"gpu", {{"a100", 3.06, 0.01, false}}}};
  s.zone = "eu-west-1a";
  s.region = "eu-west-1";
  return s;
}

TEST(HeadroomSummary, TypicalSummaryFitsTheMembershipMeta) {
  Result<std::string> bytes = EncodeHeadroom(Typical());
  ASSERT_TRUE(bytes.has_value()) << bytes.error().ToString();
  EXPECT_LE(bytes->size(), kMaxHeadroomBytes);
  RecordProperty("typical_bytes", int(bytes->size()));
}

TEST(HeadroomSummary, RoundTripKeepsTheIntervalsInsideTheirRoundedEdges) {
  const HeadroomSummary in = Typical();
  Result<HeadroomSummary> out = DecodeHeadroom(EncodeHeadroom(in).value());
  ASSERT_TRUE(out.has_value()) << out.error().ToString();
  ASSERT_EQ(out->horizons.size(), in.horizons.size());
  for (size_t i = 0; i < in.horizons.size(); ++i) {
    const HorizonHeadroom& a = in.horizons[i];
    const HorizonHeadroom& b = out->horizons[i];
    EXPECT_EQ(a.ahead_s, b.ahead_s);
    // Lower edges never rise, upper edges never fall, by less than one quantum.
    EXPECT_TRUE(b.free_lo.FitsIn(a.free_lo));
    EXPECT_TRUE(a.free_hi.FitsIn(b.free_hi));
    EXPECT_LT(a.free_lo.cpu - b.free_lo.cpu, 0.001);
    EXPECT_LT(a.free_lo.memory - b.free_lo.memory, kMiB);
    EXPECT_LT(b.free_hi.cpu - a.free_hi.cpu, 0.001);
    EXPECT_LT(b.free_hi.memory - a.free_hi.memory, kMiB);
  }
  ASSERT_EQ(out->backends.size(), 3u);
  EXPECT_EQ(out->backends[1].name, "libvirt");
  ASSERT_EQ(out->backends[1].classes.size(), 2u);
  EXPECT_EQ(out->backends[1].classes[1].name, "spot");
  EXPECT_TRUE(out->backends[1].classes[1].preemptible);
  EXPECT_NEAR(out->backends[1].classes[0].per_core_hour, 0.0416, 0.0005);
  EXPECT_NEAR(out->backends[2].classes[0].per_core_hour, 3.06, 0.0005);
  EXPECT_EQ(out->zone, "eu-west-1a");
  EXPECT_EQ(out->region, "eu-west-1");
  // Quantized values are a fixed point: a second round trip changes nothing.
  EXPECT_EQ(DecodeHeadroom(EncodeHeadroom(*out).value()).value(), *out);
}

TEST(HeadroomSummary, TooLargeIsRefusedSayingByHowMuch) {
  HeadroomSummary s = Typical();
  for (int b = 0; b < 5; ++b) {
    BackendCosts be{"backend-number-" + std::to_string(b), {}};
    for (int c = 0; c < 4; ++c) be.classes.push_back({"class-" + std::to_string(c), 1.5, 0.25, c % 2 == 1});
    s.backends.push_back(be);
  }
  Result<std::string> r = EncodeHeadroom(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(r.error().message().find("more than the 200"), std::string::npos) << r.error().message();
}

TEST(HeadroomSummary, EncodeRefusesMalformedSummaries) {
  auto refused = [](HeadroomSummary s, const std::string& says) {
    Result<std::string> r = EncodeHeadroom(s);
    ASSERT_FALSE(r.has_value()) << says;
    EXPECT_TRUE(r.error().IsInvalidArgument()) << r.error().ToString();
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  };
  HeadroomSummary s = Typical();
  s.horizons[1].free_lo.cpu = 9;  // above its upper edge
  refused(s, "lower edge");
  s = Typical();
  std::swap(s.horizons[1], s.horizons[2]);
  refused(s, "not after the previous one");
  s = Typical();
  s.backends[0].name = "";
  refused(s, "backend 0: name");
  s = Typical();
  s.backends[1].classes[0].name = std::string(40, 'x');
  refused(s, "cost class 0: name");
  s = Typical();
  s.backends[1].classes[0].per_core_hour = -1;
  refused(s, "prices must be >= 0");
  s = Typical();
  s.zone = std::string(70, 'z');
  refused(s, "zone or region");
}

TEST(HeadroomSummary, DecodeRefusesWhatIsNotASummaryOfThisVersion) {
  auto corrupt = [](std::string_view bytes, const std::string& says) {
    Result<HeadroomSummary> r = DecodeHeadroom(bytes);
    ASSERT_FALSE(r.has_value()) << says;
    EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
    EXPECT_NE(r.error().message().find(says), std::string::npos) << r.error().message();
  };
  corrupt(std::string(300, 'a'), "more than 200");
  corrupt("\xff\xff\xff", "do not parse");
  corrupt("", "version 0");
  wire::HeadroomSummary w;
  w.set_version(2);
  corrupt(w.SerializeAsString(), "version 2, expected 1");
  w.set_version(kHeadroomVersion);
  w.add_horizons()->set_ahead_s(60);
  w.add_horizons()->set_ahead_s(60);
  corrupt(w.SerializeAsString(), "horizon 1: 60 s ahead is not after");
  w.clear_horizons();
  auto* h = w.add_horizons();
  h->set_cpu_lo_milli(UINT32_MAX);
  h->set_cpu_width_milli(1);
  corrupt(w.SerializeAsString(), "upper edge overflows");
  w.clear_horizons();
  w.add_backends();
  corrupt(w.SerializeAsString(), "backend 0: name must be 1 to 32 bytes, is 0");
}

TEST(HeadroomSummary, RandomBytesNeverCrashAndAreMostlyRefused) {
  std::mt19937_64 rng(12);
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string b(size_t(rng() % 220), '\0');
    for (char& c : b) c = char(rng());
    Result<HeadroomSummary> r = DecodeHeadroom(b);
    if (r) {
      ++accepted;
      // Whatever is accepted is a summary that encodes again within the limit.
      Result<std::string> again = EncodeHeadroom(*r);
      EXPECT_TRUE(again.has_value()) << again.error().ToString();
    }
  }
  EXPECT_LT(accepted, 200);
}

TEST(HeadroomSummary, FreeOverTakesTheLowestLowerEdgeUpToTheHorizon) {
  const HeadroomSummary s = Typical();
  EXPECT_EQ(s.FreeOver(0), s.horizons[0].free_lo);
  EXPECT_EQ(s.FreeOver(59), s.horizons[0].free_lo);
  EXPECT_EQ(s.FreeOver(60), s.horizons[1].free_lo);
  EXPECT_EQ(s.FreeOver(3600), s.horizons[2].free_lo);
  EXPECT_EQ(HeadroomSummary{}.FreeOver(10), Resources{});
  EXPECT_NE(s.FindBackend("libvirt"), nullptr);
  EXPECT_EQ(s.FindBackend("docker"), nullptr);
}

TEST(HeadroomSummary, CapByLedgerLimitsEachHorizonToWhatTheLedgerLeaves) {
  const std::vector<HorizonHeadroom> forecast = {{0, {8, 32 * kGiB}, {8, 32 * kGiB}},
                                                 {600, {1, 40 * kGiB}, {3, 48 * kGiB}}};
  const auto capped = CapByLedger({2, 16 * kGiB}, forecast);
  ASSERT_EQ(capped.size(), 2u);
  EXPECT_EQ(capped[0].free_lo, (Resources{2, 16 * kGiB}));
  EXPECT_EQ(capped[1].free_lo, (Resources{1, 16 * kGiB}));
  EXPECT_EQ(capped[1].free_hi, (Resources{2, 16 * kGiB}));
}

}  // namespace
}  // namespace augur::mesh
