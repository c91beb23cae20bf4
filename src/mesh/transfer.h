// Transfer: moving a blob (a shard's input or output file, or a stream read in pieces) from
// one host to another over the mesh's data channel (docs/MESH.md, "Moving shard data").
//
// The sender cuts the blob into chunks that each fit one transport message, each carrying
// the transfer id, its offset, the blob's total size and a CRC-32C (common/crc32c.h) over all
// of those; the last chunk also carries the CRC-32C of the whole blob. At most `window_chunks`
// chunks are beyond the receiver's cumulative acknowledgement at once (flow control).
//
// The receiver checks every chunk (a wrong checksum is dropped and counted; the sender will
// send it again), puts out-of-order and duplicated chunks in place, hands the bytes over in
// order as soon as they are contiguous (TransferEvent::kData), and answers every chunk with
// an acknowledgement: a cumulative offset plus the ranges still missing above it (selective).
// When the last byte is in, the whole-blob checksum decides: kComplete, or kFailed ("checksum
// of the whole blob is X, the sender's is Y"), and the sender hears which.
//
// The sender retransmits a chunk when its retransmission timeout passes (RFC 6298's
// estimator: smoothed RTT plus four deviations, from chunks sent once (Karn), doubled on each
// timeout) or at once when `fast_retransmit_after` acknowledgements in a row report it missing.
// It gives up after `give_up_ns` without progress.
//
// Limits: a total over `max_blob_bytes` is refused by both sides (the receiver's answer names
// the transfer, the size and the limit); a receiver assembles at most `max_incoming` transfers
// at once (chunks of further ones are dropped, counted, and admitted when a slot frees) and
// holds at most `receive_window_bytes` beyond its cumulative offset per transfer.
//
// Identity: a transfer is (sending host, transfer id). The caller chooses ids unique per
// sending host for a blob's content ("<attempt id>/output"). A receiver remembers a finished
// or failed transfer for `remember_ns`, so late duplicate chunks are answered (complete or
// failed) and ignored, never assembled again.
//
// The receiver hands bytes over before the whole checksum is known: write them to a
// temporary file and use it only on kComplete (discard it on kFailed).
//
// Pure: messages, blobs and a clock in; encoded messages and events out. No I/O, no threads.
// Thread safety: a TransferSender or TransferReceiver is used by one thread.
#ifndef AUGUR_MESH_TRANSFER_H_
#define AUGUR_MESH_TRANSFER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "augur/status.h"
#include "mesh/transfer.pb.h"

namespace augur::mesh {

inline constexpr uint32_t kTransferVersion = 1;
// Transfer ids: 1 to this many printable ASCII characters (0x21 to 0x7e).
inline constexpr size_t kMaxTransferIdBytes = 200;
inline constexpr size_t kMaxTransferErrorBytes = 512;  // errors and abort reasons
inline constexpr size_t kMaxAckRanges = 32;            // missing ranges in one ack
// What the transport's envelope (envelope.h) adds around a payload, at most: a 253-byte
// sender name and every number at its widest come to 297 bytes (tested).
inline constexpr size_t kEnvelopeOverheadBytes = 320;
// What a Chunk message adds around its data, at most: 245 bytes with a kMaxTransferIdBytes id
// and every number at its widest (tested).
inline constexpr size_t kChunkOverheadBytes = 256;
// The transport's default max_message_bytes (64 KiB) less the envelope.
inline constexpr size_t kDefaultMaxPayloadBytes = 64 * 1024 - kEnvelopeOverheadBytes;

struct TransferOptions {
  // Largest encoded message either side sends or accepts (the transport's max_message_bytes
  // less kEnvelopeOverheadBytes). A chunk carries this less kChunkOverheadBytes of data.
  // REQUIRES: > kChunkOverheadBytes.
  size_t max_payload_bytes = kDefaultMaxPayloadBytes;
  uint64_t max_blob_bytes = uint64_t{1} << 30;  // 1 GiB
  // Sender: chunks beyond the cumulative acknowledgement at once (W). REQUIRES: >= 1.
  uint32_t window_chunks = 16;
  // Sender: retransmission timeout before any RTT sample, and its bounds.
  int64_t initial_rto_ns = 200'000'000;
  int64_t min_rto_ns = 2'000'000;
  int64_t max_rto_ns = 5'000'000'000;
  // Sender: a chunk reported missing by this many acknowledgements since it was last sent is
  // sent again without waiting for its timeout.
  uint32_t fast_retransmit_after = 3;
  // Sender: a transfer with chunks in flight and no acknowledged progress for this long fails.
  int64_t give_up_ns = 30'000'000'000;
  // Receiver: an unfinished transfer with no chunk for this long fails.
  int64_t idle_timeout_ns = 60'000'000'000;
  // Receiver: finished and failed transfers are remembered this long (late duplicates), at
  // most max_remembered of them (the oldest forgotten first).
  int64_t remember_ns = 600'000'000'000;
  size_t max_remembered = 4096;
  // Receiver: transfers assembling at once, and out-of-order bytes held per transfer beyond
  // its cumulative offset (chunks past it are dropped and counted).
  size_t max_incoming = 64;
  uint64_t receive_window_bytes = 8 << 20;
};

// One encoded message for the transport to carry to host `to` on Channel::kData.
struct TransferOutgoing {
  std::string to;
  std::string payload;
};

struct TransferEvent {
  enum class Kind {
    kData,      // receiver: the next bytes of a transfer, in order (offset = bytes before)
    kComplete,  // both sides: every byte arrived and the whole checksum matched
    kFailed,    // both sides: the transfer is over without its blob; `error` says why
  };
  Kind kind = Kind::kData;
  std::string peer;         // receiver: the sending host; sender: the receiving host
  std::string transfer_id;
  uint64_t offset = 0;      // kData
  std::string data;         // kData
  uint64_t total_bytes = 0;
  uint32_t crc32c = 0;      // kComplete: the whole blob's
  std::string error;        // kFailed: names the transfer, the peer and what went wrong
};

struct TransferOutput {
  std::vector<TransferOutgoing> messages;
  std::vector<TransferEvent> events;
};

// --- Codec -----------------------------------------------------------------------------

// True for a printable-ASCII id of 1 to kMaxTransferIdBytes characters.
bool IsValidTransferId(std::string_view id);
// The CRC-32C a chunk carries: over the id, the offset and total as 8 little-endian bytes
// each, then the data, so a chunk moved to another transfer or offset fails it too.
uint32_t ChunkChecksum(std::string_view transfer_id, uint64_t offset, uint64_t total,
                       std::string_view data);
// Sets the version and serializes. InvalidArgument when the message would not pass
// DecodeTransfer on the other side.
Result<std::string> EncodeTransfer(wire::TransferMessage msg, size_t max_bytes);
// A message from a peer, checked: at most `max_bytes`, a TransferMessage of this version
// with a body, a valid id, a chunk inside its total, an ack with a known state and sorted
// missing ranges inside [cumulative, highest]. Errors: ResourceExhausted (too big),
// FailedPrecondition (another version), Corruption (anything else); each names what is wrong.
Result<wire::TransferMessage> DecodeTransfer(std::string_view bytes, size_t max_bytes);
// True for what a receiver acts on (Chunk, Abort), false for what a sender does (Ack).
bool ForTransferReceiver(const wire::TransferMessage& msg);

// --- Sender ----------------------------------------------------------------------------

struct TransferSenderStats {
  uint64_t started = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t chunks_sent = 0;        // first sends
  uint64_t chunks_resent = 0;      // retransmissions (timeouts and fast retransmits)
  uint64_t fast_retransmits = 0;
  uint64_t timeouts = 0;           // retransmission timeouts
  uint64_t bytes_sent = 0;         // chunk data, retransmissions included
  uint64_t acks = 0;
  uint64_t stray_acks = 0;         // for no current transfer, or from another host
};

class TransferSender {
 public:
  TransferSender(std::string self, TransferOptions options);

  // Sends `blob` to host `to` as transfer `transfer_id`. InvalidArgument for a bad id or a
  // host named "" or self; AlreadyExists for an id in progress; ResourceExhausted for a blob
  // over max_blob_bytes (naming id, size and limit).
  Status Send(const std::string& to, const std::string& transfer_id, std::string blob,
              int64_t now_ns, TransferOutput* out);
  // Starts a transfer of `total_bytes` whose bytes come through Append, in order (a file
  // read in pieces). Errors as Send's.
  Status Begin(const std::string& to, const std::string& transfer_id, uint64_t total_bytes,
               int64_t now_ns, TransferOutput* out);
  // The next bytes of a transfer begun with Begin. NotFound for an unknown id;
  // InvalidArgument for bytes past its total (nothing is taken).
  Status Append(const std::string& transfer_id, std::string_view bytes, int64_t now_ns,
                TransferOutput* out);
  // Bytes the transfer can take before it holds more than its window: what a streaming
  // caller reads next (0 for an unknown id or one given all its bytes).
  uint64_t Room(const std::string& transfer_id) const;
  // Stops a transfer and tells the receiver (one Abort, best effort). NotFound if unknown.
  Status Cancel(const std::string& transfer_id, std::string_view reason, int64_t now_ns,
                TransferOutput* out);
  // Membership declared `host` dead: its transfers fail (kFailed).
  void PeerDown(const std::string& host, int64_t now_ns, TransferOutput* out);

  // An acknowledgement from `from` (ForTransferReceiver(msg) is false; other bodies are
  // ignored).
  void Handle(const std::string& from, const wire::TransferMessage& msg, int64_t now_ns,
              TransferOutput* out);
  // Retransmits what timed out and fails what made no progress for give_up_ns.
  void Tick(int64_t now_ns, TransferOutput* out);
  // When Tick must next run (nullopt: nothing in flight).
  std::optional<int64_t> NextDeadline() const;

  // Data bytes per chunk: max_payload_bytes - kChunkOverheadBytes.
  size_t chunk_bytes() const { return chunk_bytes_; }
  size_t active() const { return transfers_.size(); }
  const TransferSenderStats& stats() const { return stats_; }

 private:
  struct InFlight {
    std::string data;
    int64_t sent_ns = 0;
    uint64_t send_order = 0;  // the transfer's send counter at its last send
    uint32_t sends = 0;
    uint32_t missing_reports = 0;
    bool sacked = false;  // selectively acknowledged
  };
  struct Outbound {
    std::string to;
    std::string id;
    uint64_t total = 0;
    uint64_t appended = 0;       // bytes given so far
    std::string pending;         // given, not yet cut into chunks: [pending_pos, end)
    size_t pending_pos = 0;
    uint32_t crc = 0;            // of the bytes given so far
    uint64_t acked = 0;          // cumulative acknowledgement (bytes)
    uint64_t next_chunk = 0;     // index of the next chunk to cut
    uint64_t sends = 0;          // chunks sent (first sends and retransmissions)
    std::map<uint64_t, InFlight> flight;  // chunk index -> chunk, beyond `acked`
    int64_t srtt_ns = 0, rttvar_ns = 0, rto_ns = 0;
    int64_t progress_ns = 0;     // last acknowledged progress (or start)
  };
  Status Start(const std::string& to, const std::string& transfer_id, uint64_t total_bytes,
               int64_t now_ns);
  void Pump(Outbound& t, int64_t now_ns, TransferOutput* out);
  void SendChunk(Outbound& t, uint64_t index, InFlight& c, int64_t now_ns, TransferOutput* out);
  void Fail(Outbound& t, std::string error, bool tell, int64_t now_ns, TransferOutput* out);
  void Sample(Outbound& t, int64_t rtt_ns);

  std::string self_;
  TransferOptions options_;
  size_t chunk_bytes_;
  std::map<std::string, Outbound> transfers_;  // by transfer id
  TransferSenderStats stats_;
};

// --- Receiver --------------------------------------------------------------------------

struct TransferReceiverStats {
  uint64_t started = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t chunks = 0;             // chunks that passed their checksum
  uint64_t bad_checksum = 0;       // chunks dropped for a wrong chunk checksum
  uint64_t bad_blob_checksum = 0;  // transfers failed for a wrong whole-blob checksum
  uint64_t bad_chunks = 0;         // dropped: a total that disagrees with the transfer's
  uint64_t duplicates = 0;         // chunks that brought nothing new
  uint64_t late_duplicates = 0;    // chunks of a finished or failed transfer
  uint64_t too_large = 0;          // transfers refused for their size
  uint64_t busy = 0;               // chunks of a new transfer dropped at max_incoming
  uint64_t beyond_window = 0;      // chunks past receive_window_bytes, dropped
  uint64_t idle_timeouts = 0;
  uint64_t aborted = 0;
  uint64_t acks = 0;
};

class TransferReceiver {
 public:
  TransferReceiver(std::string self, TransferOptions options);

  // A chunk or abort from `from` (ForTransferReceiver(msg) is true; acks are ignored).
  void Handle(const std::string& from, const wire::TransferMessage& msg, int64_t now_ns,
              TransferOutput* out);
  // Refuses a transfer in progress (the executor does not want it): kFailed with `reason`,
  // the sender told, late chunks answered failed. NotFound if not in progress.
  Status Reject(const std::string& from, const std::string& transfer_id, std::string_view reason,
                int64_t now_ns, TransferOutput* out);
  // Fails idle transfers and forgets old finished ones.
  void Tick(int64_t now_ns, TransferOutput* out);
  std::optional<int64_t> NextDeadline() const;

  size_t active() const { return incoming_.size(); }
  size_t remembered() const { return done_.size(); }
  const TransferReceiverStats& stats() const { return stats_; }

 private:
  using Key = std::pair<std::string, std::string>;  // (sender, transfer id)
  struct Inbound {
    uint64_t total = 0;
    uint64_t cumulative = 0;         // bytes handed over in order
    uint32_t crc = 0;                // of those bytes
    std::map<uint64_t, std::string> held;  // out of order, by offset, beyond `cumulative`
    uint64_t held_bytes = 0;
    std::optional<uint32_t> blob_crc;
    int64_t last_ns = 0;
  };
  struct Done {
    bool ok = false;
    uint64_t total = 0;
    std::string error;
    int64_t until_ns = 0;
  };
  void OnChunk(const std::string& from, const wire::Chunk& c, int64_t now_ns, TransferOutput* out);
  void Ack(const std::string& to, const std::string& id, const Inbound& t, TransferOutput* out);
  void AckDone(const std::string& to, const std::string& id, const Done& d, TransferOutput* out);
  void Finish(const Key& key, bool ok, std::string error, int64_t now_ns, TransferOutput* out);
  void Remember(const Key& key, Done d);

  std::string self_;
  TransferOptions options_;
  std::map<Key, Inbound> incoming_;
  std::map<Key, Done> done_;
  std::deque<std::pair<int64_t, Key>> done_order_;  // (until, key), oldest first
  TransferReceiverStats stats_;
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_TRANSFER_H_
