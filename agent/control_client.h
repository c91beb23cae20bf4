// CallControl: augurctl's end of the control socket (agent/control_server.h).
#ifndef AUGUR_AGENT_CONTROL_CLIENT_H_
#define AUGUR_AGENT_CONTROL_CLIENT_H_

#include <chrono>
#include <string>

#include "agent/control.pb.h"
#include "augur/status.h"

namespace augur::agent {

// Connects to `socket_path`, sends `request` (its version set to kControlVersion when left
// 0) and returns augurd's reply, all within `timeout`. One connection per call.
//
// A Reply whose code is not 0 is still a value: augurd answered, and said no (including
// "permission denied" from the server's access check). The error side is for when no
// answer came, with messages meant for the person at the terminal:
//   NotFound            "no control socket at PATH: is augurd running? (systemctl status augurd)"
//   FailedPrecondition  "cannot connect to PATH: permission denied (root or group augur)"
//   Unavailable         nobody listens on PATH (stale socket), augurd closed without a
//                       reply, or a timeout ("no reply from augurd on PATH within 5000ms")
//   InvalidArgument     path too long; the request or reply is over the 4 MiB frame limit
//   Corruption          the reply does not parse
//   IOError             anything else, with strerror
Result<control::Reply> CallControl(const std::string& socket_path, const control::Request& request,
                                   std::chrono::milliseconds timeout);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONTROL_CLIENT_H_
