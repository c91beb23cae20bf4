// The augurctl commands about the peer mesh that talk to augurd over the control socket:
// peers. Each returns the process exit code (0 OK, 1 an error augurd or the socket
// reported, printed to stderr).
#ifndef AUGUR_AGENT_MESH_COMMANDS_H_
#define AUGUR_AGENT_MESH_COMMANDS_H_

#include "agent/workflow_commands.h"

namespace augur::agent {

// The members this host knows: name, state, zone, last seen, incarnation and, where they
// gossip it, their headroom. --json prints augurd's JSON as it is.
int PeersCommand(const ControlTarget& t, bool json);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_MESH_COMMANDS_H_
