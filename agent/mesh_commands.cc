#include "agent/mesh_commands.h"

#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/control.pb.h"

namespace augur::agent {
namespace {

using nlohmann::json;

std::string Seen(const json& m) {
  if (m.value("self", false)) return "self";
  const double s = m.value("last_seen_s", -1.0);
  if (s < 0) return "never";
  return s < 10 ? fmt::format("{:.1f}s ago", s) : fmt::format("{}s ago", int(s));
}

// "2.5 cpu, 3.1Gi free (1m: 1.0 cpu, 2.0Gi)": the nearest horizon, then the tightest.
std::string Headroom(const json& m) {
  const json* h = m.contains("headroom") ? &m["headroom"] : nullptr;
  if (h == nullptr || !h->is_object() || !h->contains("horizons")) return "-";
  const json& hs = (*h)["horizons"];
  if (!hs.is_array() || hs.empty()) return "-";
  auto one = [](const json& x) {
    return fmt::format("{:.1f} cpu, {:.1f}Gi", x.value("cpu_lo", 0.0),
                       x.value("memory_lo", 0.0) / double(1ULL << 30));
  };
  std::string out = one(hs.front());
  if (hs.size() > 1) {
    out += fmt::format(" ({}s: {})", int(hs.back().value("ahead_s", 0.0)), one(hs.back()));
  }
  return out;
}

}  // namespace

int PeersCommand(const ControlTarget& t, bool as_json) {
  control::Request req;
  req.mutable_peers();
  auto reply = CallAugurd(t, req);
  if (!reply) return 1;
  const json peers = json::parse(reply->json(), nullptr, false);
  if (as_json) {
    std::printf("%s\n", peers.dump(2).c_str());
    return 0;
  }
  if (!peers.is_array()) {
    std::fprintf(stderr, "augurctl: augurd sent peers that are not a list\n");
    return 1;
  }
  std::printf("%-20s %-8s %-10s %-12s %11s  %s\n", "NAME", "STATE", "ZONE", "LAST SEEN",
              "INCARNATION", "HEADROOM (lower edge)");
  for (const json& m : peers) {
    std::printf("%-20s %-8s %-10s %-12s %11llu  %s\n", m.value("name", "?").c_str(),
                m.value("state", "?").c_str(),
                m.value("zone", "").empty() ? "-" : m.value("zone", "").c_str(), Seen(m).c_str(),
                static_cast<unsigned long long>(m.value("incarnation", uint64_t{0})),
                Headroom(m).c_str());
  }
  return 0;
}

}  // namespace augur::agent
