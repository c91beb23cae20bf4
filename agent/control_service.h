// ControlService: what augurd answers on its control socket (agent/control_server.h): each
// augurctl command mapped onto the workflow engine (workflow/executor.h).
//
//   submit  -> {"id": "..."}        status  -> the engine's status JSON
//   result  -> the stage's output   cancel, boost -> a one-line message
//   history -> the history JSON     profile -> what was learned (JSON)
//   event   -> a one-line message   events  -> the stored events (JSON)
// With the engine off, every command is answered with why (FailedPrecondition).
//
// Thread safety: Handle may be called from any control connection thread; the executor
// serialises onto its own thread.
#ifndef AUGUR_AGENT_CONTROL_SERVICE_H_
#define AUGUR_AGENT_CONTROL_SERVICE_H_

#include <string>

#include "agent/control.pb.h"
#include "agent/control_server.h"

namespace augur::workflow {
class Executor;
}

namespace augur::agent {

// `executor` may be null (the engine is off: `why_off` says why). Not owned; must outlive
// the server that calls this.
control::Reply HandleControl(workflow::Executor* executor, const std::string& why_off,
                             const control::Request& request, const PeerCredentials& peer);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONTROL_SERVICE_H_
