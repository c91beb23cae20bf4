#include "agent/ops_commands.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/config.h"
#include "agent/control.pb.h"
#include "agent/doctor.h"

namespace augur::agent {

int DoctorCommand(const DoctorCommandOptions& o) {
  DoctorOptions d;
  d.config = DefaultConfig();
  std::string path = o.config_path;
  struct stat st {};
  // As augurd does: the default file when present, else the built-in defaults.
  if (path.empty() && ::stat(AUGUR_DEFAULT_CONFIG, &st) == 0) path = AUGUR_DEFAULT_CONFIG;
  if (!path.empty()) {
    d.config_path = path;
    Result<Config> cfg = LoadConfigFile(path);
    if (cfg) {
      d.config = *cfg;
    } else {
      d.config_status = cfg.error();
    }
  }
  if (!o.socket.empty()) d.config.control.socket = o.socket;
  if (!o.shm.empty()) d.config.telemetry.shm_name = o.shm;
  const std::vector<DoctorCheck> checks = RunDoctor(d);
  if (o.json) {
    std::puts(DoctorJson(checks).dump(2).c_str());
  } else {
    std::fputs(RenderDoctorText(checks).c_str(), stdout);
  }
  return DoctorExitCode(checks);
}

int BackendsCommand(const ControlTarget& t, bool as_json) {
  control::Request req;
  req.mutable_backends();
  auto reply = CallAugurd(t, req);
  if (!reply) return 1;
  const nlohmann::json backends = nlohmann::json::parse(reply->json(), nullptr, false);
  if (!backends.is_array()) {
    std::fprintf(stderr, "augurctl: augurd sent backends that are not a list\n");
    return 1;
  }
  if (as_json) {
    std::printf("%s\n", backends.dump(2).c_str());
    return 0;
  }
  if (backends.empty()) {
    std::printf("no backends enabled (plugins.enabled)\n");
    return 0;
  }
  std::printf("%-16s %-9s %-8s %8s %8s %-6s  %s\n", "BACKEND", "HOST", "HEALTH", "PID", "RESTARTS",
              "ABI", "WHY");
  for (const nlohmann::json& b : backends) {
    const bool healthy = b.value("healthy", false);
    std::printf("%-16s %-9s %-8s %8d %8llu %-6s  %s\n", b.value("name", "?").c_str(),
                b.value("state", "?").c_str(), healthy ? "healthy" : "DOWN", b.value("host_pid", 0),
                static_cast<unsigned long long>(b.value("restarts", uint64_t{0})),
                b.value("abi", "?").c_str(),
                healthy
                    ? ""
                    : fmt::format("{}: {}", b.value("reason", "?"), b.value("detail", "")).c_str());
  }
  return 0;
}

}  // namespace augur::agent
