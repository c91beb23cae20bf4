#include "mesh/remote_run_codec.h"

#include <cmath>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "mesh/transfer.h"
#include "workflow/store.h"

namespace augur::mesh {
namespace {

using wire::RemoteRunMessage;

// A path relative to the work directory that stays inside it.
bool InsideWorkdir(const std::string& p) {
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part(p.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// The kept-output bodies (fetch, fetch_refused, forget): no lease, an attempt or workflow id.
std::optional<std::string> BrokenKept(const RemoteRunMessage& m) {
  const std::string_view body = RemoteRunBodyName(m);
  const std::string* id = m.has_fetch()           ? &m.fetch().attempt_id()
                          : m.has_fetch_refused() ? &m.fetch_refused().attempt_id()
                          : m.has_forget()        ? &m.forget().workflow_id()
                                                  : nullptr;
  if (id == nullptr) return std::nullopt;
  if (id->empty() || id->size() > kMaxRemoteRunIdBytes) {
    return fmt::format("{}: id of {} bytes (1 to {})", body, id->size(), kMaxRemoteRunIdBytes);
  }
  if (m.has_fetch_refused() && m.fetch_refused().error().size() > kMaxRemoteRunErrorBytes) {
    return fmt::format("{} {}: error of {} bytes, at most {}", body, id->substr(0, 64),
                       m.fetch_refused().error().size(), kMaxRemoteRunErrorBytes);
  }
  return std::nullopt;
}

std::optional<std::string> Broken(const RemoteRunMessage& m) {
  if (m.version() != kRemoteRunVersion) {
    return fmt::format("version {}, expected {}", m.version(), kRemoteRunVersion);
  }
  if (m.body_case() == RemoteRunMessage::BODY_NOT_SET) return "no body";
  if (auto e = BrokenKept(m)) return e;
  if (m.has_fetch() || m.has_fetch_refused() || m.has_forget()) return std::nullopt;
  const std::string_view body = RemoteRunBodyName(m);
  const std::string& lease = LeaseOf(m);
  const std::string& attempt = m.has_run()      ? m.run().attempt_id()
                               : m.has_status() ? m.status().attempt_id()
                               : m.has_resume() ? m.resume().attempt_id()
                                                : m.result().attempt_id();
  if (lease.empty() || lease.size() > kMaxRemoteRunIdBytes) {
    return fmt::format("{}: lease id of {} bytes (1 to {})", body, lease.size(),
                       kMaxRemoteRunIdBytes);
  }
  if (attempt.empty() || attempt.size() > kMaxRemoteRunIdBytes) {
    return fmt::format("{} {}: attempt id of {} bytes (1 to {})", body, lease, attempt.size(),
                       kMaxRemoteRunIdBytes);
  }
  switch (m.body_case()) {
    case RemoteRunMessage::kRun: {
      const wire::RunShard& r = m.run();
      if (r.argv_size() == 0 || r.argv(0).empty()) return fmt::format("run {}: no argv", lease);
      if (r.workdir().empty() || r.workdir().front() != '/') {
        return fmt::format("run {}: workdir '{}' is not an absolute path", lease, r.workdir());
      }
      if (r.backend().empty() || r.backend().size() > kMaxRemoteRunIdBytes) {
        return fmt::format("run {}: backend name of {} bytes", lease, r.backend().size());
      }
      if (!r.output().starts_with(r.workdir() + "/") ||
          !InsideWorkdir(r.output().substr(r.workdir().size() + 1))) {
        return fmt::format("run {}: output '{}' is not inside the work directory", lease,
                           r.output().substr(0, 128));
      }
      for (const std::string& e : r.env()) {
        if (e.find('=') == std::string::npos || e.front() == '=') {
          return fmt::format("run {}: env entry '{}' is not KEY=VALUE", lease, e.substr(0, 64));
        }
      }
      std::set<std::string_view> transfers;
      for (const wire::RemoteFile& f : r.inputs()) {
        if (!InsideWorkdir(f.path())) {
          return fmt::format("run {}: input path '{}' is not inside the work directory", lease,
                             f.path().substr(0, 128));
        }
        if (f.transfer_id().empty()) continue;
        if (!IsValidTransferId(f.transfer_id()) || !f.data().empty() ||
            !transfers.insert(f.transfer_id()).second) {
          return fmt::format("run {}: input '{}' names transfer '{}' that is not a valid id, "
                             "comes with inline data too, or is named twice",
                             lease, f.path().substr(0, 128), f.transfer_id().substr(0, 64));
        }
      }
      return std::nullopt;
    }
    case RemoteRunMessage::kStatus:
      if (m.status().error().size() > kMaxRemoteRunErrorBytes) {
        return fmt::format("status {}: error of {} bytes, at most {}", lease,
                           m.status().error().size(), kMaxRemoteRunErrorBytes);
      }
      return std::nullopt;
    case RemoteRunMessage::kResult: {
      const wire::ShardResult& r = m.result();
      if (!workflow::AttemptStateFromName(r.state())) {
        return fmt::format("result {}: unknown state '{}'", lease, r.state().substr(0, 32));
      }
      if (r.error().size() > kMaxRemoteRunErrorBytes) {
        return fmt::format("result {}: error of {} bytes, at most {}", lease, r.error().size(),
                           kMaxRemoteRunErrorBytes);
      }
      if (!std::isfinite(r.cpu_seconds()) || r.cpu_seconds() < 0) {
        return fmt::format("result {}: cpu_seconds is not a finite number >= 0", lease);
      }
      if (!r.output_transfer().empty() &&
          (!IsValidTransferId(r.output_transfer()) || !r.output().empty())) {
        return fmt::format("result {}: output transfer '{}' is not a valid id or comes with "
                           "inline output too",
                           lease, r.output_transfer().substr(0, 64));
      }
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

std::string_view RemoteRunBodyName(const RemoteRunMessage& m) {
  switch (m.body_case()) {
    case RemoteRunMessage::kRun: return "run";
    case RemoteRunMessage::kStatus: return "status";
    case RemoteRunMessage::kResult: return "result";
    case RemoteRunMessage::kResume: return "resume";
    case RemoteRunMessage::kFetch:
      return "fetch";
    case RemoteRunMessage::kFetchRefused:
      return "fetch_refused";
    case RemoteRunMessage::kForget:
      return "forget";
    default: return "none";
  }
}

const std::string& LeaseOf(const RemoteRunMessage& m) {
  switch (m.body_case()) {
    case RemoteRunMessage::kRun: return m.run().lease_id();
    case RemoteRunMessage::kStatus: return m.status().lease_id();
    case RemoteRunMessage::kResult: return m.result().lease_id();
    case RemoteRunMessage::kResume: return m.resume().lease_id();
    default: return m.run().lease_id();  // the default instance's: ""
  }
}

Result<std::string> EncodeRemoteRun(RemoteRunMessage msg) {
  msg.set_version(kRemoteRunVersion);
  if (auto e = Broken(msg)) return Err(Status::InvalidArgument("remote run message: " + *e));
  std::string out;
  try {
    if (!msg.SerializeToString(&out)) {
      return Err(Status::InvalidArgument("remote run message: cannot serialize"));
    }
  } catch (const std::exception& e) {
    return Err(Status::InvalidArgument(std::string("remote run message: ") + e.what()));
  }
  if (out.size() > kMaxRemoteRunBytes) {
    return Err(Status::ResourceExhausted(
        fmt::format("remote run {} {}: {} bytes, more than one message carries ({})",
                    RemoteRunBodyName(msg), LeaseOf(msg), out.size(), kMaxRemoteRunBytes)));
  }
  return out;
}

Result<RemoteRunMessage> DecodeRemoteRun(std::string_view bytes) {
  if (bytes.size() > kMaxRemoteRunBytes) {
    return Err(Status::Corruption(fmt::format("remote run message of {} bytes, at most {}",
                                              bytes.size(), kMaxRemoteRunBytes)));
  }
  RemoteRunMessage m;
  try {
    if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return Err(Status::Corruption("remote run message: not a RemoteRunMessage"));
    }
  } catch (const std::exception& e) {
    return Err(Status::Corruption(std::string("remote run message: ") + e.what()));
  }
  if (auto e = Broken(m)) return Err(Status::Corruption("remote run message: " + *e));
  return m;
}

}  // namespace augur::mesh
