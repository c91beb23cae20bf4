// Status and Result<T>: how augur's APIs report success or failure.
//
// A Status is either OK or carries a code and a message that says what went wrong and
// where ("config.yaml:12: telemetry.interval: bad duration 'fast'"). Result<T> is a value
// or a Status. Both are cheap to move; an OK Status holds no allocation.
//
// Thread safety: distinct objects may be used from distinct threads; a single object is
// not synchronised.
#ifndef AUGUR_STATUS_H_
#define AUGUR_STATUS_H_

#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace augur {

class [[nodiscard]] Status {
 public:
  // NOTE: values are logged and may be compared by tests; append only.
  enum class Code : int {
    kOk = 0,
    kNotFound = 1,
    kInvalidArgument = 2,
    kIOError = 3,
    kUnavailable = 4,      // something we depend on cannot be used here (no BTF, no privilege)
    kAlreadyExists = 5,    // e.g. another agent owns the segment
    kCorruption = 6,       // bad magic, bad version, malformed data
    kInternal = 7,
    kFailedPrecondition = 8,
    kResourceExhausted = 9,  // out of space, memory or slots (e.g. /dev/shm too small)
  };

  Status() = default;  // OK
  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status InvalidArgument(std::string_view msg) {
    return Status(Code::kInvalidArgument, msg);
  }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status Unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status AlreadyExists(std::string_view msg) { return Status(Code::kAlreadyExists, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status Internal(std::string_view msg) { return Status(Code::kInternal, msg); }
  static Status FailedPrecondition(std::string_view msg) {
    return Status(Code::kFailedPrecondition, msg);
  }
  static Status ResourceExhausted(std::string_view msg) {
    return Status(Code::kResourceExhausted, msg);
  }
  // An IOError whose message ends with strerror(err).
  static Status FromErrno(std::string_view what, int err);

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsAlreadyExists() const { return code_ == Code::kAlreadyExists; }

  // The message alone ("" when OK).
  const std::string& message() const;
  // "OK" or "<Code name>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>"; OK stays OK.
  Status Annotate(std::string_view prefix) const;

 private:
  Status(Code code, std::string_view msg)
      : code_(code), msg_(std::make_shared<const std::string>(msg)) {}
  Code code_ = Code::kOk;
  std::shared_ptr<const std::string> msg_;  // null when OK
};

// A value or the Status that says why there is none.
template <typename T>
using Result = std::expected<T, Status>;

// Shorthand for returning the error side of a Result: `return Err(Status::IOError(...));`
inline std::unexpected<Status> Err(Status s) { return std::unexpected<Status>(std::move(s)); }

}  // namespace augur

// Returns early from the enclosing function when `expr` (a Status) is not OK.
#define AUGUR_RETURN_IF_ERROR(expr)          \
  do {                                       \
    ::augur::Status _augur_st = (expr);      \
    if (!_augur_st.ok()) return _augur_st;   \
  } while (0)

#endif  // AUGUR_STATUS_H_
