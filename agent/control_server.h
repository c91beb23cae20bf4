// ControlServer: augurd's end of the local control socket that augurctl talks to
// (protocol: agent/control.proto; frames: agent/control_frame.h).
//
// An AF_UNIX stream socket. Each connection carries any number of request/reply pairs,
// one frame each way. Access is checked per connection from SO_PEERCRED: root, the uid
// augurd itself runs as, and any process whose primary or supplementary group (read from
// /proc/<pid>/status) is `group` may use it; anyone else gets one permission-denied reply
// per request and the handler never sees the request. Malformed input (an oversize frame,
// bytes that are not a Request, no command) gets an error reply naming what was wrong and
// that connection is closed; a request of another protocol version gets an error reply
// naming both versions.
//
// The socket file is 0660 owned by root:<group> when the group exists, else 0600 (only
// root, logged once). Its directory is created (0755) when missing. A stale socket file
// (nobody answers on it) is replaced; a live one is refused, so a second augurd cannot
// steal the first's socket.
//
// Threads: one accepts; each connection is served on a thread of its own (at most
// max_connections; past that a new connection gets a "busy" reply and is closed), so a
// slow client or a long handler (Submit with wait) holds up only its own connection. A
// client gets `io_timeout` to send a whole request (and to be idle between requests) and
// to take a whole reply.
//
// Thread safety: the handler is called concurrently from connection threads. Stop() and
// the destructor may be called from any one thread.
#ifndef AUGUR_AGENT_CONTROL_SERVER_H_
#define AUGUR_AGENT_CONTROL_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/control.pb.h"
#include "augur/status.h"

namespace augur::agent {

// The protocol version this build speaks (Request.version / Reply.version).
inline constexpr uint32_t kControlVersion = 1;
inline constexpr char kDefaultControlSocket[] = "/run/augur/augur.sock";
inline constexpr char kDefaultControlGroup[] = "augur";
// The largest frame either side accepts by default.
inline constexpr size_t kDefaultControlMaxMessageBytes = 4u << 20;

struct ControlServerOptions {
  std::string socket_path = kDefaultControlSocket;  // the config's control.socket
  std::string group = kDefaultControlGroup;         // the config's control.group
  size_t max_message_bytes = kDefaultControlMaxMessageBytes;  // each way
  std::chrono::milliseconds io_timeout{5000};       // see above
  size_t max_connections = 32;
};

// Who is on the other end of a connection, as the kernel reports it at connect time.
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups; empty when /proc could not tell
};

// Answers one request. Reply.version is filled in by the server; code is an
// augur::Status::Code value (0 = OK). Exceptions become an Internal error reply.
using ControlHandler =
    std::function<control::Reply(const control::Request&, const PeerCredentials&)>;

class ControlServer {
 public:
  // Creates, binds and listens on the socket before returning, so a bad path, a live
  // server on it or a permission problem is the returned Status; then serves.
  //   AlreadyExists       another server answers on socket_path
  //   FailedPrecondition  socket_path exists and is not a socket
  //   InvalidArgument     socket_path too long (> 107 bytes) or empty
  //   IOError             mkdir/bind/listen/chmod failed (with strerror)
  static Result<std::unique_ptr<ControlServer>> Start(const ControlServerOptions& options,
                                                      ControlHandler handler);
  ~ControlServer();  // Stop()s

  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Stops accepting, closes every connection, joins all threads and unlinks the socket
  // file (if it is still the one this server created). A handler call in progress is
  // waited for: a handler that blocks (Submit with wait) must be released by its owner
  // before Stop(). Idempotent.
  void Stop();

  const std::string& socket_path() const;
  // Whether the socket was given to the group (0660), else it is root-only (0600).
  bool group_access() const;
  // Requests refused for lack of permission since Start. Any thread.
  uint64_t denied() const;

  struct State;

 private:
  explicit ControlServer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The access rule, exposed for tests: root, `self_uid`, or a member (primary or
// supplementary) of `group_gid` (nullopt-like: pass group_known = false when the group
// does not exist).
bool ControlPeerAllowed(const PeerCredentials& peer, uid_t self_uid, bool group_known,
                        gid_t group_gid);

// Reads the supplementary groups of `pid` from /proc/<pid>/status ("Groups:").
Result<std::vector<gid_t>> ReadProcGroups(pid_t pid);

// A Reply with the given code and message (and version kControlVersion).
control::Reply ControlErrorReply(Status::Code code, std::string message);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CONTROL_SERVER_H_
