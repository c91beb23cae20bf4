#include "mesh/headroom_summary.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "mesh/headroom.pb.h"

namespace augur::mesh {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;
constexpr double kMaxU32 = double(std::numeric_limits<uint32_t>::max());

// Saturating conversions to the wire's uint32 fields.
uint32_t MilliDown(double cores) { return uint32_t(std::clamp(std::floor(cores * 1000 + 1e-9), 0.0, kMaxU32)); }
uint32_t MilliUp(double cores) { return uint32_t(std::clamp(std::ceil(cores * 1000 - 1e-9), 0.0, kMaxU32)); }
uint32_t MibDown(uint64_t bytes) { return uint32_t(std::min<uint64_t>(bytes / kMiB, UINT32_MAX)); }
uint32_t MibUp(uint64_t bytes) { return uint32_t(std::min<uint64_t>((bytes + kMiB - 1) / kMiB, UINT32_MAX)); }
uint32_t PriceMilli(double p) { return uint32_t(std::clamp(std::round(p * 1000), 0.0, kMaxU32)); }

// The limits both sides keep, on the wire form; the first one broken, or nullopt.
std::optional<std::string> Broken(const wire::HeadroomSummary& w) {
  if (w.horizons_size() > int(kMaxHeadroomHorizons)) {
    return fmt::format("{} horizons, at most {}", w.horizons_size(), kMaxHeadroomHorizons);
  }
  for (int i = 1; i < w.horizons_size(); ++i) {
    if (w.horizons(i).ahead_s() <= w.horizons(i - 1).ahead_s()) {
      return fmt::format("horizon {}: {} s ahead is not after the previous one ({} s)", i,
                         w.horizons(i).ahead_s(), w.horizons(i - 1).ahead_s());
    }
  }
  for (const auto& h : w.horizons()) {
    if (uint64_t(h.cpu_lo_milli()) + h.cpu_width_milli() > UINT32_MAX ||
        uint64_t(h.mem_lo_mib()) + h.mem_width_mib() > UINT32_MAX) {
      return fmt::format("horizon at {} s: upper edge overflows", h.ahead_s());
    }
  }
  if (w.backends_size() > int(kMaxHeadroomBackends)) {
    return fmt::format("{} backends, at most {}", w.backends_size(), kMaxHeadroomBackends);
  }
  auto bad_name = [](const std::string& n) { return n.empty() || n.size() > kMaxHeadroomNameBytes; };
  for (int b = 0; b < w.backends_size(); ++b) {
    const auto& be = w.backends(b);
    if (bad_name(be.name())) {
      return fmt::format("backend {}: name must be 1 to {} bytes, is {}", b,
                         kMaxHeadroomNameBytes, be.name().size());
    }
    if (be.classes_size() > int(kMaxHeadroomClasses)) {
      return fmt::format("backend {}: {} cost classes, at most {}", be.name(),
                         be.classes_size(), kMaxHeadroomClasses);
    }
    for (int c = 0; c < be.classes_size(); ++c) {
      if (bad_name(be.classes(c).name())) {
        return fmt::format("backend {}: cost class {}: name must be 1 to {} bytes, is {}",
                           be.name(), c, kMaxHeadroomNameBytes, be.classes(c).name().size());
      }
    }
  }
  if (w.zone().size() > kMaxHeadroomLabelBytes || w.region().size() > kMaxHeadroomLabelBytes) {
    return fmt::format("zone or region longer than {} bytes", kMaxHeadroomLabelBytes);
  }
  return std::nullopt;
}

}  // namespace

workflow::Resources HeadroomSummary::FreeOver(double seconds) const {
  if (horizons.empty()) return {};
  workflow::Resources least = horizons.front().free_lo;
  for (size_t i = 1; i < horizons.size() && horizons[i].ahead_s <= seconds; ++i) {
    least = workflow::Resources::Min(least, horizons[i].free_lo);
  }
  return least;
}

const BackendCosts* HeadroomSummary::FindBackend(std::string_view name) const {
  for (const BackendCosts& b : backends) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

std::vector<HorizonHeadroom> CapByLedger(const workflow::Resources& ledger_free,
                                         std::vector<HorizonHeadroom> forecast) {
  for (HorizonHeadroom& h : forecast) {
    h.free_lo = workflow::Resources::Min(h.free_lo, ledger_free);
    h.free_hi = workflow::Resources::Min(h.free_hi, ledger_free);
  }
  return forecast;
}

Result<std::string> EncodeHeadroom(const HeadroomSummary& s) {
  wire::HeadroomSummary w;
  w.set_version(kHeadroomVersion);
  for (const HorizonHeadroom& h : s.horizons) {
    if (!h.free_lo.FitsIn(h.free_hi)) {
      return Err(Status::InvalidArgument(fmt::format(
          "headroom summary: horizon at {} s: lower edge {} above upper edge {}", h.ahead_s,
          h.free_lo.ToString(), h.free_hi.ToString())));
    }
    auto* wh = w.add_horizons();
    wh->set_ahead_s(h.ahead_s);
    wh->set_cpu_lo_milli(MilliDown(h.free_lo.cpu));
    wh->set_cpu_width_milli(MilliUp(h.free_hi.cpu) - wh->cpu_lo_milli());
    wh->set_mem_lo_mib(MibDown(h.free_lo.memory));
    wh->set_mem_width_mib(MibUp(h.free_hi.memory) - wh->mem_lo_mib());
  }
  for (const BackendCosts& b : s.backends) {
    auto* wb = w.add_backends();
    wb->set_name(b.name);
    for (const workflow::CostClass& c : b.classes) {
      if (!(c.per_core_hour >= 0) || !(c.per_gib_hour >= 0)) {
        return Err(Status::InvalidArgument(fmt::format(
            "headroom summary: backend {}: cost class {}: prices must be >= 0", b.name, c.name)));
      }
      auto* wc = wb->add_classes();
      wc->set_name(c.name);
      wc->set_core_hour_milli(PriceMilli(c.per_core_hour));
      wc->set_gib_hour_milli(PriceMilli(c.per_gib_hour));
      wc->set_preemptible(c.preemptible);
    }
  }
  w.set_zone(s.zone);
  w.set_region(s.region);
  if (auto why = Broken(w)) {
    return Err(Status::InvalidArgument("headroom summary: " + *why));
  }
  std::string out;
  if (!w.SerializeToString(&out)) {
    return Err(Status::Internal("headroom summary: protobuf would not serialize"));
  }
  if (out.size() > kMaxHeadroomBytes) {
    return Err(Status::ResourceExhausted(fmt::format(
        "headroom summary is {} bytes, {} more than the {} the membership meta carries: "
        "fewer backends or cost classes, or shorter names",
        out.size(), out.size() - kMaxHeadroomBytes, kMaxHeadroomBytes)));
  }
  return out;
}

Result<HeadroomSummary> DecodeHeadroom(std::string_view bytes) {
  if (bytes.size() > kMaxHeadroomBytes) {
    return Err(Status::Corruption(fmt::format("headroom summary: {} bytes, more than {}",
                                              bytes.size(), kMaxHeadroomBytes)));
  }
  wire::HeadroomSummary w;
  if (!w.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return Err(Status::Corruption(
        fmt::format("headroom summary: {} bytes that do not parse as one", bytes.size())));
  }
  if (w.version() != kHeadroomVersion) {
    return Err(Status::Corruption(fmt::format("headroom summary: version {}, expected {}",
                                              w.version(), kHeadroomVersion)));
  }
  if (auto why = Broken(w)) return Err(Status::Corruption("headroom summary: " + *why));
  HeadroomSummary s;
  for (const auto& h : w.horizons()) {
    const uint32_t cpu_hi = h.cpu_lo_milli() + h.cpu_width_milli();
    const uint32_t mem_hi = h.mem_lo_mib() + h.mem_width_mib();
    s.horizons.push_back({h.ahead_s(),
                          {h.cpu_lo_milli() / 1000.0, uint64_t(h.mem_lo_mib()) * kMiB},
                          {cpu_hi / 1000.0, uint64_t(mem_hi) * kMiB}});
  }
  for (const auto& b : w.backends()) {
    BackendCosts bc{b.name(), {}};
    for (const auto& c : b.classes()) {
      bc.classes.push_back(
          {c.name(), c.core_hour_milli() / 1000.0, c.gib_hour_milli() / 1000.0, c.preemptible()});
    }
    s.backends.push_back(std::move(bc));
  }
  s.zone = w.zone();
  s.region = w.region();
  return s;
}

}  // namespace augur::mesh
