// Fuzzes what the mesh's run channel takes from peers (src/mesh/remote_run_codec.h): the
// decoder of remote_run.proto messages (RunShard, ShardStatus, ShardResult).
//  - DecodeRemoteRun never crashes; what it refuses is a Corruption with a message; what it
//    accepts encodes again (EncodeRemoteRun) and decodes to the same message.
//  - What it accepts is safe to act on: a RunShard's output and every input path stay inside
//    the work directory once joined to a host's own directory (no absolute path, no "..",
//    no empty or "." part), every named transfer is a valid transfer id (transfer.h) named
//    once and without inline data, and a ShardResult's state is an attempt state; ids fit
//    their limits.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "mesh/remote_run_codec.h"
#include "mesh/transfer.h"
#include "workflow/store.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;

using augur::fuzz::Require;

// A relative path whose parts are all ordinary names.
bool StaysInside(std::string_view p) {
  if (p.empty() || p.front() == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t end = std::min(p.find('/', start), p.size());
    const std::string_view part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return p.find('\0') == std::string_view::npos;
}

void CheckAccepted(const wire::RemoteRunMessage& m) {
  // The kept-output bodies name an attempt or a workflow, not a lease.
  if (m.has_fetch() || m.has_fetch_refused() || m.has_forget()) {
    const std::string& id = m.has_fetch()           ? m.fetch().attempt_id()
                            : m.has_fetch_refused() ? m.fetch_refused().attempt_id()
                                                    : m.forget().workflow_id();
    Require(!id.empty() && id.size() <= kMaxRemoteRunIdBytes, "accepted an id out of bounds");
    Require(!m.has_fetch_refused() || m.fetch_refused().error().size() <= kMaxRemoteRunErrorBytes,
            "accepted a long refusal");
    return;
  }
  Require(!LeaseOf(m).empty() && LeaseOf(m).size() <= kMaxRemoteRunIdBytes,
          "accepted a lease id out of bounds");
  Require(RemoteRunBodyName(m) != "none", "accepted a message without a body");
  if (m.has_run()) {
    const wire::RunShard& r = m.run();
    Require(!r.attempt_id().empty() && r.attempt_id().size() <= kMaxRemoteRunIdBytes,
            "accepted a run with a bad attempt id");
    Require(r.argv_size() > 0 && !r.argv(0).empty(), "accepted a run without argv");
    Require(!r.workdir().empty() && r.workdir().front() == '/', "accepted a relative workdir");
    Require(r.output().size() > r.workdir().size() + 1 &&
                r.output().compare(0, r.workdir().size() + 1, r.workdir() + "/") == 0 &&
                StaysInside(std::string_view(r.output()).substr(r.workdir().size() + 1)),
            "accepted an output outside the work directory");
    std::set<std::string> transfers;
    for (const wire::RemoteFile& f : r.inputs()) {
      Require(StaysInside(f.path()), "accepted an input path that leaves the work directory");
      if (f.transfer_id().empty()) continue;
      Require(IsValidTransferId(f.transfer_id()), "accepted an invalid input transfer id");
      Require(f.data().empty(), "accepted an input both inline and by transfer");
      Require(transfers.insert(f.transfer_id()).second, "accepted a transfer named twice");
    }
    for (const std::string& e : r.env()) {
      Require(e.find('=') != std::string::npos && e.front() != '=', "accepted a bad env entry");
    }
  } else if (m.has_result()) {
    const wire::ShardResult& r = m.result();
    Require(augur::workflow::AttemptStateFromName(r.state()).has_value(),
            "accepted a result whose state is not one");
    Require(r.error().size() <= kMaxRemoteRunErrorBytes, "accepted a long error");
    Require(r.cpu_seconds() >= 0, "accepted negative cpu seconds");
    Require(r.output_transfer().empty() ||
                (IsValidTransferId(r.output_transfer()) && r.output().empty()),
            "accepted a bad output transfer");
  } else if (m.has_status()) {
    Require(m.status().error().size() <= kMaxRemoteRunErrorBytes, "accepted a long error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto m = DecodeRemoteRun(bytes);
  if (!m) {
    Require(m.error().IsCorruption(), "a refusal that is not a Corruption");
    Require(!m.error().message().empty(), "a refusal without a message");
    return 0;
  }
  CheckAccepted(*m);
  auto again = EncodeRemoteRun(*m);
  Require(again.has_value(), "an accepted message does not encode");
  auto back = DecodeRemoteRun(*again);
  Require(back.has_value() && back->SerializeAsString() == m->SerializeAsString(),
          "an accepted message does not round-trip");
  return 0;
}
