#include "agent/control_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "agent/control_frame.h"
#include "agent/control_server.h"

namespace augur::agent {

namespace cf = control_frame;

namespace {

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

Result<control::Reply> CallControl(const std::string& socket_path, const control::Request& request,
                                   std::chrono::milliseconds timeout) {
  const auto deadline = cf::Clock::now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return Err(Status::InvalidArgument(fmt::format(
        "control socket path '{}' is empty or longer than {} bytes", socket_path,
        sizeof(addr.sun_path) - 1)));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());

  control::Request req = request;
  if (req.version() == 0) req.set_version(kControlVersion);
  std::string bytes;
  if (!req.SerializeToString(&bytes)) {
    return Err(Status::Internal("cannot serialize the control request"));
  }
  if (bytes.size() > kDefaultControlMaxMessageBytes) {
    return Err(Status::InvalidArgument(fmt::format(
        "the request is {} bytes, over the control socket's limit of {} bytes", bytes.size(),
        kDefaultControlMaxMessageBytes)));
  }

  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Err(Status::FromErrno("socket(AF_UNIX)", errno));
  FdCloser closer{fd};
  for (;;) {
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == ENOENT || err == ENOTDIR) {
      return Err(Status::NotFound(fmt::format(
          "no control socket at {}: is augurd running? (systemctl status augurd)", socket_path)));
    }
    if (err == EACCES || err == EPERM) {
      return Err(Status::FailedPrecondition(fmt::format(
          "cannot connect to {}: permission denied (root or group augur)", socket_path)));
    }
    if (err == ECONNREFUSED) {
      return Err(Status::Unavailable(fmt::format(
          "nobody is answering on the control socket {}: augurd is not running or is "
          "restarting (systemctl status augurd)",
          socket_path)));
    }
    if (err == EAGAIN) {  // the listen backlog is full: augurd is busy
      if (cf::Clock::now() >= deadline) {
        return Err(Status::Unavailable(fmt::format(
            "augurd did not accept a connection on {} within {}ms (busy or hung?)", socket_path,
            timeout.count())));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    return Err(Status::FromErrno(fmt::format("cannot connect to {}", socket_path), err));
  }

  cf::ReadOutcome out = cf::WriteFrame(fd, bytes, deadline, -1);
  if (out.io == cf::Io::kTimeout) {
    return Err(Status::Unavailable(fmt::format(
        "augurd did not take the request on {} within {}ms (busy or hung?)", socket_path,
        timeout.count())));
  }
  // A write error (EPIPE) may come with a reply already sent (an error reply to a refused
  // request): read it before giving up.
  std::string payload;
  cf::ReadOutcome in = cf::ReadFrame(fd, kDefaultControlMaxMessageBytes, deadline, -1, &payload);
  switch (in.io) {
    case cf::Io::kOk:
      break;
    case cf::Io::kTimeout:
      return Err(Status::Unavailable(fmt::format(
          "no reply from augurd on {} within {}ms (busy or hung? journalctl -u augurd)",
          socket_path, timeout.count())));
    case cf::Io::kEof:
    case cf::Io::kTruncated:
      if (out.io == cf::Io::kError) {
        return Err(Status::FromErrno(fmt::format("cannot send the request to {}", socket_path),
                                     out.err));
      }
      return Err(Status::Unavailable(fmt::format(
          "augurd closed the connection on {} without a whole reply (journalctl -u augurd)",
          socket_path)));
    case cf::Io::kTooLarge:
      return Err(Status::InvalidArgument(fmt::format(
          "augurd's reply on {} is {} bytes, over the {}-byte limit", socket_path, in.length,
          kDefaultControlMaxMessageBytes)));
    case cf::Io::kError:
      return Err(Status::FromErrno(fmt::format("reading the reply on {}", socket_path), in.err));
    case cf::Io::kStopped:
      break;
  }
  control::Reply reply;
  if (!reply.ParseFromString(payload)) {
    return Err(Status::Corruption(fmt::format(
        "augurd's reply on {} ({} bytes) is not an augur.control.Reply", socket_path,
        payload.size())));
  }
  return reply;
}

}  // namespace augur::agent
