// BuildHeadroomSummary (agent/mesh_headroom.h): what this host gossips of its headroom.
#include "agent/mesh_headroom.h"

#include <gtest/gtest.h>

namespace augur::agent {
namespace {

constexpr uint64_t kGi = 1ULL << 30;

TEST(MeshHeadroomTest, ForecastCappedByWhatTheBackendsCanGrant) {
  const std::vector<HostHeadroom::Interval> forecast = {
      {60, {6, 20 * kGi}, {7, 22 * kGi}}, {900, {1, 4 * kGi}, {3, 8 * kGi}}};
  const std::vector<BackendSnapshot> backends = {
      {"process", {4, 16 * kGi}, {{"local", 1, 0.1, false}, {"spot", 0.25, 0.02, true}}},
      {"libvirt", {2, 30 * kGi}, {}}};
  mesh::HeadroomSummary s = BuildHeadroomSummary(forecast, backends, "eu-1a", "eu");
  ASSERT_EQ(s.horizons.size(), 2u);
  EXPECT_EQ(s.horizons[0].ahead_s, 60u);
  EXPECT_EQ(s.horizons[0].free_lo, workflow::Resources(4, 20 * kGi)) << "cpu capped by process";
  EXPECT_EQ(s.horizons[0].free_hi, workflow::Resources(4, 22 * kGi));
  EXPECT_EQ(s.horizons[1].free_lo, workflow::Resources(1, 4 * kGi));
  ASSERT_EQ(s.backends.size(), 2u);
  EXPECT_EQ(s.backends[0].classes.size(), 2u);
  EXPECT_TRUE(s.backends[0].classes[1].preemptible);
  EXPECT_EQ(s.zone, "eu-1a");
  auto wire = mesh::EncodeHeadroom(s);
  ASSERT_TRUE(wire) << wire.error().ToString();
  EXPECT_LE(wire->size(), mesh::kMaxHeadroomBytes);
  auto back = mesh::DecodeHeadroom(*wire);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->horizons.size(), 2u);
}

TEST(MeshHeadroomTest, WithoutAForecastTheBackendsAloneSayWhatIsFree) {
  mesh::HeadroomSummary s = BuildHeadroomSummary({}, {{"process", {1.5, 2 * kGi}, {}}}, "", "");
  ASSERT_EQ(s.horizons.size(), 1u);
  EXPECT_EQ(s.horizons[0].ahead_s, 0u);
  EXPECT_EQ(s.horizons[0].free_lo, workflow::Resources(1.5, 2 * kGi));
  EXPECT_TRUE(mesh::EncodeHeadroom(s));
}

}  // namespace
}  // namespace augur::agent
