// Frames of the control protocol (agent/control.proto) on a stream socket: a 4-byte
// little-endian length, then that many bytes of serialized message. Shared by
// ControlServer and CallControl. Every call is bounded by a deadline; the fd may be
// non-blocking (it is polled).
#ifndef AUGUR_AGENT_CONTROL_FRAME_H_
#define AUGUR_AGENT_CONTROL_FRAME_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace augur::agent::control_frame {

using Clock = std::chrono::steady_clock;

enum class Io {
  kOk,
  kEof,       // the peer closed before the first byte (a clean end between frames)
  kTruncated, // the peer closed in the middle of a frame
  kTimeout,   // the deadline passed
  kStopped,   // stop_fd became readable
  kTooLarge,  // the length prefix is over the limit (`*length` holds it)
  kError,     // a socket error (`*err` holds errno)
};

struct ReadOutcome {
  Io io = Io::kOk;
  uint32_t length = 0;  // the prefix, when it was read
  int err = 0;
};

// Reads one frame into *payload. `stop_fd` (-1 for none) ends the wait when readable.
ReadOutcome ReadFrame(int fd, size_t max_bytes, Clock::time_point deadline, int stop_fd,
                      std::string* payload);

// Writes one frame. kOk, kTimeout, kStopped, kTooLarge (payload over 4 GiB - 1) or kError.
ReadOutcome WriteFrame(int fd, std::string_view payload, Clock::time_point deadline,
                       int stop_fd);

}  // namespace augur::agent::control_frame

#endif  // AUGUR_AGENT_CONTROL_FRAME_H_
