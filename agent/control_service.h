// ControlService: what augurd answers on its control socket (agent/control_server.h): each
// augurctl command mapped onto the workflow engine (workflow/executor.h).
//
//   submit  -> {"id": "..."}        status  -> the engine's status JSON
//   result  -> the stage's output   cancel, boost -> a one-line message
//   history -> the history JSON     profile -> what was learned (JSON)
//   event   -> a one-line message   events  -> the stored events (JSON)
//   peers   -> the mesh's members (JSON)
// With the engine off, its commands are answered with why (FailedPrecondition); likewise
// `peers` with the mesh off.
//
// Thread safety: Handle may be called from any control connection thread; the executor
// serialises onto its own thread.
#ifndef AUGUR_AGENT_CONTROL_SERVICE_H_
#define AUGUR_AGENT_CONTROL_SERVICE_H_

#include <functional>
#include <string>

#include "agent/control.pb.h"
#include "agent/control_server.h"

namespace augur::workflow {
class Executor;
}

namespace augur::agent {

// What the control socket reaches. Not owned; each must outlive the server that calls
// HandleControl.
struct ControlTargets {
  workflow::Executor* executor = nullptr;  // null: the engine is off, `workflows_off` says why
  std::string workflows_off;
  std::function<std::string()> peers_json;  // null: the mesh is off, `mesh_off` says why
  std::string mesh_off;
};

control::Reply HandleControl(const ControlTargets& targets, const control::Request& request,
                             const PeerCredentials& peer);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONTROL_SERVICE_H_
