#include "augur/status.h"

#include <cstring>

namespace augur {
namespace {
const char* CodeName(Status::Code c) {
  switch (c) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NotFound";
    case Status::Code::kInvalidArgument: return "InvalidArgument";
    case Status::Code::kIOError: return "IOError";
    case Status::Code::kUnavailable: return "Unavailable";
    case Status::Code::kAlreadyExists: return "AlreadyExists";
    case Status::Code::kCorruption: return "Corruption";
    case Status::Code::kInternal: return "Internal";
    case Status::Code::kFailedPrecondition: return "FailedPrecondition";
    case Status::Code::kResourceExhausted: return "ResourceExhausted";
  }
  return "Unknown";
}
}  // namespace

Status Status::FromErrno(std::string_view what, int err) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(err);
  return IOError(msg);
}

const std::string& Status::message() const {
  static const std::string* const kEmpty = new std::string();
  return msg_ ? *msg_ : *kEmpty;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(CodeName(code_)) + ": " + message();
}

Status Status::Annotate(std::string_view prefix) const {
  if (ok()) return *this;
  std::string msg(prefix);
  msg += ": ";
  msg += message();
  return Status(code_, msg);
}

}  // namespace augur
