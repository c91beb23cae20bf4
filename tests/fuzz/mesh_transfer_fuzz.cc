// Fuzzes what the mesh's data and replication channels take from peers: the decoders of
// transfer.proto and replication.proto messages (src/mesh/transfer.h, replication.h) and the
// state machines behind them (TransferReceiver, TransferSender, Replicator) fed a stream of
// arbitrary messages.
//  - Decoders never crash; what they accept encodes again and decodes to the same message, and
//    a size limit below the input's size refuses it as oversized.
//  - The input is also read as frames [channel][from][time][len lo][len hi][payload]: each
//    payload decoded for its channel goes to the receiver, the sender or the replicator, as
//    from one of four peers, with virtual time advancing and timers run. Whatever the
//    messages, the receiver hands over bytes in order and says complete only with the CRC of
//    what it handed over; every workflow the replicator holds has a gapless log, committed
//    within it, an owner role only at its own epoch, and a snapshot that restores.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "common/crc32c.h"
#include "mesh/replication.h"
#include "mesh/transfer.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;

using augur::fuzz::Require;

constexpr size_t kMax = kDefaultMaxPayloadBytes;
const char* const kPeers[] = {"h1", "h2", "h3", "h0"};  // h0 is the host itself

void CheckDecoders(std::string_view bytes) {
  if (auto t = DecodeTransfer(bytes, kMax)) {
    auto again = EncodeTransfer(*t, kMax);
    Require(again.has_value(), "an accepted transfer message does not encode");
    auto back = DecodeTransfer(*again, kMax);
    Require(back.has_value() && back->SerializeAsString() == t->SerializeAsString(),
            "a transfer message does not round-trip");
  } else {
    Require(!t.error().message().empty(), "a transfer error without a message");
  }
  if (auto r = DecodeReplication(bytes, kMax)) {
    auto again = EncodeReplication(*r, kMax);
    Require(again.has_value(), "an accepted replication message does not encode");
    auto back = DecodeReplication(*again, kMax);
    Require(back.has_value() && back->SerializeAsString() == r->SerializeAsString(),
            "a replication message does not round-trip");
  } else {
    Require(!r.error().message().empty(), "a replication error without a message");
  }
  if (!bytes.empty()) {
    auto t = DecodeTransfer(bytes, bytes.size() - 1);
    Require(!t && t.error().code() == augur::Status::Code::kResourceExhausted,
            "a transfer message over the limit was not refused as oversized");
    auto r = DecodeReplication(bytes, bytes.size() - 1);
    Require(!r && r.error().code() == augur::Status::Code::kResourceExhausted,
            "a replication message over the limit was not refused as oversized");
  }
}

struct Machines {
  Machines() : sender("h0", Options()), receiver("h0", Options()), replicator("h0", ReplOptions()) {
    ReplicationOutput out;
    replicator.SetMembers({"h0", "h1", "h2", "h3"}, 0, &out);
    // A workflow this host owns, with a few records, so that replies have something to meet.
    if (replicator.Create("wf-own", MakeSubmitted("w", "spec"), 0, &out).ok()) {
      (void)replicator.Append("wf-own", MakeAttemptStarted("s", "1", "wf-own/s/1#1", "h2", "l"), 0, &out);
      (void)replicator.AppendResult("wf-own", MakeAttemptResult("s", "1", "wf-own/s/1#1", "h2", true, "d", "t", 3),
                                    0, &out);
    }
    TransferOutput tout;
    (void)sender.Send("h1", "out-1", std::string(3000, 'x'), 0, &tout);
  }
  static TransferOptions Options() {
    TransferOptions o;
    o.max_blob_bytes = 1 << 20;
    o.receive_window_bytes = 64 << 10;
    o.max_incoming = 4;
    o.max_remembered = 8;
    return o;
  }
  static ReplicationOptions ReplOptions() {
    ReplicationOptions o;
    o.max_workflows = 8;
    return o;
  }

  // The receiver's events only.
  void Events(const TransferOutput& out) {
    for (const TransferEvent& e : out.events) {
      auto key = std::make_pair(e.peer, e.transfer_id);
      if (e.kind == TransferEvent::Kind::kData) {
        auto& [size, crc] = delivered[key];
        Require(e.offset == size, "data handed over out of order");
        size += e.data.size();
        crc = augur::Crc32cExtend(crc, e.data);
        Require(size <= e.total_bytes, "more data than the transfer's total");
      } else {
        if (e.kind == TransferEvent::Kind::kComplete) {
          const auto [size, crc] = delivered[key];
          Require(size == e.total_bytes, "complete without the whole blob");
          Require(crc == e.crc32c, "complete with another CRC than the bytes handed over");
        }
        delivered.erase(key);
      }
    }
  }

  void CheckReplicator() {
    for (const std::string& id : replicator.Workflows()) {
      const WorkflowReplica* w = replicator.Find(id);
      Require(w != nullptr, "a listed workflow is not found");
      for (size_t i = 0; i < w->log.size(); ++i) Require(w->log[i].seq() == i + 1, "a log with a gap");
      Require(w->committed <= w->log.size(), "committed past the log");
      Require(w->role != Role::kOwner || w->epoch.owner == "h0", "owner at another host's epoch");
      auto snap = replicator.Snapshot(id);
      Require(snap.has_value(), "a held workflow has no snapshot");
      Replicator fresh("h0", ReplOptions());
      Require(fresh.Restore(*snap).ok(), "a snapshot does not restore");
      Require(fresh.Find(id)->log.size() == w->log.size(), "a restored log differs");
    }
  }

  TransferSender sender;
  TransferReceiver receiver;
  Replicator replicator;
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, uint32_t>> delivered;
  int64_t now = 0;
};

void RunFrames(std::string_view bytes) {
  Machines m;
  size_t i = 0;
  while (i + 5 <= bytes.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(bytes[i + k]); };
    const uint8_t channel = u(0);
    const uint8_t who = u(1);
    const std::string from = kPeers[who % 4];
    m.now += int64_t(u(2)) * 10'000'000;  // up to 2.55 s between frames
    const size_t len = std::min<size_t>(u(3) | (size_t(u(4)) << 8), bytes.size() - i - 5);
    const std::string_view payload = bytes.substr(i + 5, len);
    i += 5 + len;
    if (channel % 3 == 2) {
      ReplicationOutput out;
      if (channel & 0x80) {
        // Membership changes: a subset of the peers by the low bits of `from`'s byte.
        std::vector<std::string> live = {"h0"};
        for (int b = 0; b < 3; ++b) {
          if (who >> (b + 2) & 1) live.push_back(kPeers[b]);
        }
        m.replicator.SetMembers(live, m.now, &out);
      } else if (auto msg = DecodeReplication(payload, kMax)) {
        m.replicator.Handle(from, *msg, m.now, &out);
      }
      m.replicator.Tick(m.now, &out);
      for (const auto& o : out.messages) Require(DecodeReplication(o.payload, kMax).has_value(), "replicator sent a bad message");
      m.CheckReplicator();
      continue;
    }
    TransferOutput rout, sout;
    if (auto msg = DecodeTransfer(payload, kMax)) {
      if (ForTransferReceiver(*msg)) m.receiver.Handle(from, *msg, m.now, &rout);
      else m.sender.Handle(from, *msg, m.now, &sout);
    }
    m.receiver.Tick(m.now, &rout);
    m.sender.Tick(m.now, &sout);
    for (const TransferOutput* out : {&rout, &sout}) {
      for (const auto& o : out->messages) {
        Require(DecodeTransfer(o.payload, kMax).has_value(), "transfer side sent a bad message");
      }
    }
    m.Events(rout);
    Require(m.receiver.active() <= 4, "more incoming transfers than max_incoming");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckDecoders(bytes);
  RunFrames(bytes);
  return 0;
}
