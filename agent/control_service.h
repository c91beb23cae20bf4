// ControlService: what augurd answers on its control socket (agent/control_server.h): each
// augurctl command mapped onto the workflow engine (workflow/executor.h).
//
//   submit  -> {"id": "..."}        status  -> the engine's status JSON
//   result  -> the stage's output   cancel, boost -> a one-line message
//   history -> the history JSON     profile -> what was learned (JSON)
//   event   -> a one-line message   events  -> the stored events (JSON)
//   peers   -> the mesh's members (JSON)
//   backends -> every enabled backend's plugin host and health (JSON, BackendsJson)
// With the engine off, its commands are answered with why (FailedPrecondition); likewise
// `peers` with the mesh off. `backends` is answered with the engine off too ([] with no
// plugins enabled).
//
// Thread safety: Handle may be called from any control connection thread; the executor
// serialises onto its own thread.
#ifndef AUGUR_AGENT_CONTROL_SERVICE_H_
#define AUGUR_AGENT_CONTROL_SERVICE_H_

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/control.pb.h"
#include "agent/control_server.h"

namespace augur::workflow {
class Executor;
}
namespace augur::plugin {
struct BackendHealth;
}

namespace augur::agent {

// What the control socket reaches. Not owned; each must outlive the server that calls
// HandleControl.
struct ControlTargets {
  workflow::Executor* executor = nullptr;  // null: the engine is off, `workflows_off` says why
  std::string workflows_off;
  std::function<std::string()> peers_json;  // null: the mesh is off, `mesh_off` says why
  std::string mesh_off;
  // The plugin hosts' health (PluginManager::Health()); null: no plugins enabled.
  std::function<std::vector<plugin::BackendHealth>()> backends;
};

// The JSON `backends` answers: an array of {"name", "state" (the host's), "up", "healthy",
// "reason", "detail", "restarts", "host_pid", "last_error", "abi", "last_check_age_s"
// (-1: never asked)}, one per backend, in the order given. `now` is the system clock's.
std::string BackendsJson(const std::vector<plugin::BackendHealth>& backends,
                         std::chrono::system_clock::time_point now);

control::Reply HandleControl(const ControlTargets& targets, const control::Request& request,
                             const PeerCredentials& peer);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONTROL_SERVICE_H_
