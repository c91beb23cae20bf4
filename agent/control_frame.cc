#include "agent/control_frame.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

namespace augur::agent::control_frame {
namespace {

// Waits until `fd` is ready for `events`, the deadline passes or stop_fd is readable.
Io WaitFor(int fd, short events, Clock::time_point deadline, int stop_fd, int* err) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Io::kTimeout;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = ::poll(fds, stop_fd >= 0 ? 2 : 1, static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000)));
    if (n < 0) {
      if (errno == EINTR) continue;
      *err = errno;
      return Io::kError;
    }
    if (n == 0) continue;
    if (stop_fd >= 0 && (fds[1].revents & POLLIN)) return Io::kStopped;
    if (fds[0].revents != 0) return Io::kOk;  // readable, writable, or HUP/ERR: let I/O tell
  }
}

// Reads exactly n bytes. kEof only when the peer closed before the first byte.
Io ReadExact(int fd, char* buf, size_t n, Clock::time_point deadline, int stop_fd, int* err) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::recv(fd, buf + done, n - done, MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return done == 0 ? Io::kEof : Io::kTruncated;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      Io w = WaitFor(fd, POLLIN, deadline, stop_fd, err);
      if (w != Io::kOk) return w;
      continue;
    }
    if (errno == ECONNRESET) return done == 0 ? Io::kEof : Io::kTruncated;
    *err = errno;
    return Io::kError;
  }
  return Io::kOk;
}

}  // namespace

ReadOutcome ReadFrame(int fd, size_t max_bytes, Clock::time_point deadline, int stop_fd,
                      std::string* payload) {
  ReadOutcome out;
  unsigned char prefix[4];
  out.io = ReadExact(fd, reinterpret_cast<char*>(prefix), 4, deadline, stop_fd, &out.err);
  if (out.io != Io::kOk) return out;
  out.length = static_cast<uint32_t>(prefix[0]) | static_cast<uint32_t>(prefix[1]) << 8 |
               static_cast<uint32_t>(prefix[2]) << 16 | static_cast<uint32_t>(prefix[3]) << 24;
  if (out.length > max_bytes) {
    out.io = Io::kTooLarge;
    return out;
  }
  payload->resize(out.length);
  out.io = ReadExact(fd, payload->data(), out.length, deadline, stop_fd, &out.err);
  if (out.io == Io::kEof) out.io = Io::kTruncated;  // the prefix came, the body did not
  return out;
}

ReadOutcome WriteFrame(int fd, std::string_view payload, Clock::time_point deadline,
                       int stop_fd) {
  ReadOutcome out;
  if (payload.size() > std::numeric_limits<uint32_t>::max()) {
    out.io = Io::kTooLarge;
    return out;
  }
  out.length = static_cast<uint32_t>(payload.size());
  std::string frame(4 + payload.size(), '\0');
  for (int i = 0; i < 4; ++i) frame[i] = static_cast<char>((out.length >> (8 * i)) & 0xff);
  frame.replace(4, payload.size(), payload);
  size_t done = 0;
  while (done < frame.size()) {
    ssize_t w = ::send(fd, frame.data() + done, frame.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w >= 0) {
      done += static_cast<size_t>(w);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.io = WaitFor(fd, POLLOUT, deadline, stop_fd, &out.err);
      if (out.io != Io::kOk) return out;
      continue;
    }
    out.err = errno;
    out.io = Io::kError;
    return out;
  }
  return out;
}

}  // namespace augur::agent::control_frame
