#include "mesh/transfer.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "common/crc32c.h"
#include "mesh/checked_codec.h"

namespace augur::mesh {
namespace {

enum AckState : uint32_t { kInProgress = 0, kComplete = 1, kFailedState = 2 };

std::string Hex(uint32_t v) { return fmt::format("0x{:08x}", v); }

// The id as it appears in messages, quoted (ids are printable ASCII once checked).
std::string Q(std::string_view id) { return fmt::format("'{}'", id); }

bool PrintableAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string Clip(std::string s) {
  if (s.size() > kMaxTransferErrorBytes) s.resize(kMaxTransferErrorBytes);
  for (char& c : s) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return s;
}

Status CheckMessage(const wire::TransferMessage& m, size_t max_bytes) {
  using Body = wire::TransferMessage::BodyCase;
  switch (m.body_case()) {
    case Body::kChunk: {
      const wire::Chunk& c = m.chunk();
      if (!IsValidTransferId(c.transfer_id())) {
        return Status::Corruption("chunk: transfer id is not 1 to 200 printable characters");
      }
      if (c.data().size() > max_bytes) {
        return Status::Corruption(fmt::format("chunk of {}: {} bytes of data",
                                              Q(c.transfer_id()), c.data().size()));
      }
      if (c.offset() > c.total_size() || c.data().size() > c.total_size() - c.offset()) {
        return Status::Corruption(fmt::format("chunk of {}: bytes [{}, {}) lie outside its total of {}",
                                              Q(c.transfer_id()), c.offset(),
                                              c.offset() + c.data().size(), c.total_size()));
      }
      if (c.data().empty() && c.total_size() != 0) {
        return Status::Corruption(fmt::format("chunk of {}: no data", Q(c.transfer_id())));
      }
      return Status::OK();
    }
    case Body::kAck: {
      const wire::TransferAck& a = m.ack();
      if (!IsValidTransferId(a.transfer_id())) {
        return Status::Corruption("ack: transfer id is not 1 to 200 printable characters");
      }
      if (a.state() > kFailedState) {
        return Status::Corruption(fmt::format("ack of {}: unknown state {}", Q(a.transfer_id()), a.state()));
      }
      if (a.cumulative() > a.highest()) {
        return Status::Corruption(fmt::format("ack of {}: cumulative {} above highest {}",
                                              Q(a.transfer_id()), a.cumulative(), a.highest()));
      }
      if (size_t(a.missing_size()) > kMaxAckRanges) {
        return Status::Corruption(fmt::format("ack of {}: {} missing ranges (at most {})",
                                              Q(a.transfer_id()), a.missing_size(), kMaxAckRanges));
      }
      uint64_t at = a.cumulative();
      for (const wire::ByteRange& r : a.missing()) {
        if (r.begin() < at || r.begin() >= r.end() || r.end() > a.highest()) {
          return Status::Corruption(fmt::format(
              "ack of {}: missing range [{}, {}) is not sorted inside [{}, {}]", Q(a.transfer_id()),
              r.begin(), r.end(), a.cumulative(), a.highest()));
        }
        at = r.end();
      }
      if (a.error().size() > kMaxTransferErrorBytes || !PrintableAscii(a.error())) {
        return Status::Corruption(fmt::format("ack of {}: error is not up to {} printable characters",
                                              Q(a.transfer_id()), kMaxTransferErrorBytes));
      }
      return Status::OK();
    }
    case Body::kAbort: {
      const wire::TransferAbort& a = m.abort();
      if (!IsValidTransferId(a.transfer_id())) {
        return Status::Corruption("abort: transfer id is not 1 to 200 printable characters");
      }
      if (a.reason().size() > kMaxTransferErrorBytes || !PrintableAscii(a.reason())) {
        return Status::Corruption(fmt::format("abort of {}: reason is not up to {} printable characters",
                                              Q(a.transfer_id()), kMaxTransferErrorBytes));
      }
      return Status::OK();
    }
    case Body::BODY_NOT_SET:
      break;
  }
  return Status::Corruption("transfer message without a body");
}

}  // namespace

// --- Codec -----------------------------------------------------------------------------

bool IsValidTransferId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxTransferIdBytes &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c <= 0x7e; });
}

uint32_t ChunkChecksum(std::string_view transfer_id, uint64_t offset, uint64_t total,
                       std::string_view data) {
  char le[16];
  for (int i = 0; i < 8; ++i) {
    le[i] = char(offset >> (8 * i));
    le[8 + i] = char(total >> (8 * i));
  }
  uint32_t crc = Crc32cExtend(0, transfer_id);
  crc = Crc32cExtend(crc, std::string_view(le, sizeof le));
  return Crc32cExtend(crc, data);
}

Result<std::string> EncodeTransfer(wire::TransferMessage msg, size_t max_bytes) {
  return EncodeChecked(std::move(msg), kTransferVersion, max_bytes, "transfer message",
                       [&](const wire::TransferMessage& m) { return CheckMessage(m, max_bytes); });
}

Result<wire::TransferMessage> DecodeTransfer(std::string_view bytes, size_t max_bytes) {
  return DecodeChecked<wire::TransferMessage>(
      bytes, kTransferVersion, max_bytes, "transfer message",
      [&](const wire::TransferMessage& m) { return CheckMessage(m, max_bytes); });
}

bool ForTransferReceiver(const wire::TransferMessage& msg) {
  return msg.body_case() == wire::TransferMessage::kChunk ||
         msg.body_case() == wire::TransferMessage::kAbort;
}

namespace {

// Encodes a message this side made; they pass CheckMessage by construction.
void Emit(const std::string& to, wire::TransferMessage msg, size_t max_bytes, TransferOutput* out) {
  auto bytes = EncodeTransfer(std::move(msg), max_bytes);
  if (bytes) out->messages.push_back({to, std::move(*bytes)});
}

}  // namespace

// --- Sender ----------------------------------------------------------------------------

TransferSender::TransferSender(std::string self, TransferOptions options)
    : self_(std::move(self)), options_(options),
      chunk_bytes_(options.max_payload_bytes > kChunkOverheadBytes
                       ? options.max_payload_bytes - kChunkOverheadBytes
                       : 1) {
  options_.window_chunks = std::max<uint32_t>(1, options_.window_chunks);
}

Status TransferSender::Start(const std::string& to, const std::string& transfer_id,
                             uint64_t total_bytes, int64_t now_ns) {
  if (!IsValidTransferId(transfer_id)) {
    return Status::InvalidArgument(fmt::format(
        "transfer id {} is not 1 to {} printable characters", Q(Clip(transfer_id)), kMaxTransferIdBytes));
  }
  if (to.empty() || to == self_) {
    return Status::InvalidArgument(fmt::format("transfer {}: cannot send to host '{}'", Q(transfer_id), to));
  }
  if (transfers_.count(transfer_id)) {
    return Status::AlreadyExists(fmt::format("transfer {} is already in progress", Q(transfer_id)));
  }
  if (total_bytes > options_.max_blob_bytes) {
    return Status::ResourceExhausted(fmt::format("transfer {} to {}: {} bytes is over the limit of {} bytes",
                                                 Q(transfer_id), to, total_bytes, options_.max_blob_bytes));
  }
  Outbound& t = transfers_[transfer_id];
  t.to = to;
  t.id = transfer_id;
  t.total = total_bytes;
  t.rto_ns = options_.initial_rto_ns;
  t.progress_ns = now_ns;
  ++stats_.started;
  return Status::OK();
}

Status TransferSender::Send(const std::string& to, const std::string& transfer_id, std::string blob,
                            int64_t now_ns, TransferOutput* out) {
  AUGUR_RETURN_IF_ERROR(Start(to, transfer_id, blob.size(), now_ns));
  Outbound& t = transfers_.at(transfer_id);
  t.crc = Crc32c(blob);
  t.appended = blob.size();
  t.pending = std::move(blob);
  Pump(t, now_ns, out);
  return Status::OK();
}

Status TransferSender::Begin(const std::string& to, const std::string& transfer_id,
                             uint64_t total_bytes, int64_t now_ns, TransferOutput* out) {
  AUGUR_RETURN_IF_ERROR(Start(to, transfer_id, total_bytes, now_ns));
  Pump(transfers_.at(transfer_id), now_ns, out);  // a 0-byte blob goes at once
  return Status::OK();
}

Status TransferSender::Append(const std::string& transfer_id, std::string_view bytes, int64_t now_ns,
                              TransferOutput* out) {
  auto it = transfers_.find(transfer_id);
  if (it == transfers_.end()) {
    return Status::NotFound(fmt::format("no transfer {} in progress", Q(Clip(transfer_id))));
  }
  Outbound& t = it->second;
  if (bytes.size() > t.total - t.appended) {
    return Status::InvalidArgument(fmt::format("transfer {}: {} more bytes would pass its total of {} ({} given)",
                                               Q(transfer_id), bytes.size(), t.total, t.appended));
  }
  // Drop what was cut into chunks already before growing the buffer.
  if (t.pending_pos > 0) {
    t.pending.erase(0, t.pending_pos);
    t.pending_pos = 0;
  }
  t.pending.append(bytes);
  t.crc = Crc32cExtend(t.crc, bytes);
  t.appended += bytes.size();
  Pump(t, now_ns, out);
  return Status::OK();
}

uint64_t TransferSender::Room(const std::string& transfer_id) const {
  auto it = transfers_.find(transfer_id);
  if (it == transfers_.end()) return 0;
  const Outbound& t = it->second;
  // Everything up to the window's end past the cumulative acknowledgement.
  const uint64_t window_end = std::min<uint64_t>(
      t.total, t.acked + uint64_t(options_.window_chunks) * chunk_bytes_);
  return window_end > t.appended ? window_end - t.appended : 0;
}

// Cuts and sends new chunks while the window has room and the bytes are there.
void TransferSender::Pump(Outbound& t, int64_t now_ns, TransferOutput* out) {
  while (true) {
    const uint64_t first_unacked = t.acked / chunk_bytes_;
    if (t.next_chunk >= first_unacked + options_.window_chunks) return;
    const uint64_t offset = t.next_chunk * chunk_bytes_;
    if (offset > t.total || (offset == t.total && t.total != 0)) return;  // all cut
    const uint64_t len = std::min<uint64_t>(chunk_bytes_, t.total - offset);
    const uint64_t have = t.pending.size() - t.pending_pos;
    if (have < len) return;  // waits for Append
    if (t.flight.empty()) t.progress_ns = now_ns;  // the give-up clock runs while in flight
    InFlight& c = t.flight[t.next_chunk];
    c.data = t.pending.substr(t.pending_pos, size_t(len));
    t.pending_pos += size_t(len);
    if (t.pending_pos == t.pending.size()) {
      t.pending.clear();
      t.pending_pos = 0;
    }
    ++stats_.chunks_sent;
    SendChunk(t, t.next_chunk, c, now_ns, out);
    ++t.next_chunk;
    if (t.total == 0) return;
  }
}

void TransferSender::SendChunk(Outbound& t, uint64_t index, InFlight& c, int64_t now_ns,
                               TransferOutput* out) {
  const uint64_t offset = index * chunk_bytes_;
  wire::TransferMessage m;
  wire::Chunk* ch = m.mutable_chunk();
  ch->set_transfer_id(t.id);
  ch->set_offset(offset);
  ch->set_total_size(t.total);
  ch->set_data(c.data);
  ch->set_crc32c(ChunkChecksum(t.id, offset, t.total, c.data));
  if (offset + c.data.size() == t.total) ch->set_blob_crc32c(t.crc);
  c.sent_ns = now_ns;
  c.send_order = ++t.sends;
  ++c.sends;
  c.missing_reports = 0;
  stats_.bytes_sent += c.data.size();
  Emit(t.to, std::move(m), options_.max_payload_bytes, out);
}

void TransferSender::Sample(Outbound& t, int64_t rtt_ns) {
  // RFC 6298, section 2, with the clock granularity G taken as min_rto.
  if (t.srtt_ns == 0) {
    t.srtt_ns = rtt_ns;
    t.rttvar_ns = rtt_ns / 2;
  } else {
    const int64_t dev = t.srtt_ns > rtt_ns ? t.srtt_ns - rtt_ns : rtt_ns - t.srtt_ns;
    t.rttvar_ns = (3 * t.rttvar_ns + dev) / 4;
    t.srtt_ns = (7 * t.srtt_ns + rtt_ns) / 8;
  }
  t.rto_ns = std::clamp(t.srtt_ns + std::max(options_.min_rto_ns, 4 * t.rttvar_ns),
                        options_.min_rto_ns, options_.max_rto_ns);
}

void TransferSender::Handle(const std::string& from, const wire::TransferMessage& msg,
                            int64_t now_ns, TransferOutput* out) {
  if (msg.body_case() != wire::TransferMessage::kAck) return;
  const wire::TransferAck& a = msg.ack();
  auto it = transfers_.find(a.transfer_id());
  if (it == transfers_.end() || it->second.to != from) {
    ++stats_.stray_acks;
    return;
  }
  ++stats_.acks;
  Outbound& t = it->second;
  if (a.state() == kComplete) {
    if (t.appended < t.total || t.next_chunk * chunk_bytes_ < t.total) {
      // It cannot hold bytes this side has not sent: another blob under the same id (the
      // receiver remembers an earlier transfer of that id).
      Fail(t, fmt::format("transfer {} to {}: the receiver already finished a transfer of that id",
                          Q(t.id), t.to), false, now_ns, out);
      return;
    }
    ++stats_.completed;
    out->events.push_back({TransferEvent::Kind::kComplete, t.to, t.id, 0, {}, t.total, t.crc, {}});
    transfers_.erase(it);
    return;
  }
  if (a.state() == kFailedState) {
    Fail(t, fmt::format("transfer {} to {} failed there: {}", Q(t.id), t.to, a.error()), false,
         now_ns, out);
    return;
  }
  // Cumulative part: chunks wholly below it are done.
  const uint64_t cum = std::min<uint64_t>(a.cumulative(), t.next_chunk * chunk_bytes_);
  bool progress = false;
  int64_t rtt = -1;
  // The latest send among the chunks this ack newly covers: a chunk reported missing counts
  // toward fast retransmit only when something sent after it arrived, so acks of chunks sent
  // before its retransmission do not trigger another one.
  uint64_t newest = 0;
  auto covered = [&](const InFlight& c) {
    if (c.sends == 1 && !c.sacked) rtt = now_ns - c.sent_ns;  // Karn: only chunks sent once
    newest = std::max(newest, c.send_order);
  };
  if (cum > t.acked) {
    t.acked = cum;
    progress = true;
    for (auto c = t.flight.begin();
         c != t.flight.end() && c->first * chunk_bytes_ + c->second.data.size() <= cum;) {
      if (!c->second.sacked) covered(c->second);
      c = t.flight.erase(c);
    }
  }
  // Selective part: inside [cumulative, highest), everything but `missing` arrived.
  std::vector<std::pair<uint64_t, InFlight*>> missing;
  size_t r = 0;
  for (auto& [index, c] : t.flight) {
    const uint64_t begin = index * chunk_bytes_;
    const uint64_t end = begin + c.data.size();
    if (end > a.highest()) break;
    while (r < size_t(a.missing_size()) && a.missing(int(r)).end() <= begin) ++r;
    if (r < size_t(a.missing_size()) && a.missing(int(r)).begin() < end) {
      if (!c.sacked) missing.emplace_back(index, &c);
    } else if (!c.sacked) {
      covered(c);
      c.sacked = true;
      progress = true;
    }
  }
  for (auto& [index, c] : missing) {
    if (newest <= c->send_order || ++c->missing_reports < options_.fast_retransmit_after) continue;
    ++stats_.fast_retransmits;
    ++stats_.chunks_resent;
    SendChunk(t, index, *c, now_ns, out);
  }
  if (rtt >= 0) Sample(t, rtt);
  if (progress) t.progress_ns = now_ns;
  Pump(t, now_ns, out);
}

void TransferSender::Tick(int64_t now_ns, TransferOutput* out) {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    Outbound& t = (it++)->second;  // Fail erases t
    if (t.flight.empty()) continue;
    if (now_ns - t.progress_ns >= options_.give_up_ns) {
      Fail(t, fmt::format("transfer {} to {}: no progress for {} ms ({} of {} bytes acknowledged)",
                          Q(t.id), t.to, (now_ns - t.progress_ns) / 1'000'000, t.acked, t.total),
           true, now_ns, out);
      continue;
    }
    bool timed_out = false;
    for (auto& [index, c] : t.flight) {
      if (c.sacked || now_ns - c.sent_ns < t.rto_ns) continue;
      timed_out = true;
      ++stats_.chunks_resent;
      SendChunk(t, index, c, now_ns, out);
    }
    if (timed_out) {
      ++stats_.timeouts;
      t.rto_ns = std::min(options_.max_rto_ns, 2 * t.rto_ns);  // RFC 6298 (5.5)
    }
  }
}

std::optional<int64_t> TransferSender::NextDeadline() const {
  std::optional<int64_t> next;
  auto consider = [&](int64_t at) { if (!next || at < *next) next = at; };
  for (const auto& [id, t] : transfers_) {
    if (t.flight.empty()) continue;
    consider(t.progress_ns + options_.give_up_ns);
    for (const auto& [index, c] : t.flight) {
      if (!c.sacked) consider(c.sent_ns + t.rto_ns);
    }
  }
  return next;
}

Status TransferSender::Cancel(const std::string& transfer_id, std::string_view reason,
                              int64_t now_ns, TransferOutput* out) {
  auto it = transfers_.find(transfer_id);
  if (it == transfers_.end()) {
    return Status::NotFound(fmt::format("no transfer {} in progress", Q(Clip(transfer_id))));
  }
  wire::TransferMessage m;
  m.mutable_abort()->set_transfer_id(transfer_id);
  m.mutable_abort()->set_reason(Clip(std::string(reason)));
  Emit(it->second.to, std::move(m), options_.max_payload_bytes, out);
  transfers_.erase(it);
  (void)now_ns;
  return Status::OK();
}

void TransferSender::PeerDown(const std::string& host, int64_t now_ns, TransferOutput* out) {
  for (auto it = transfers_.begin(); it != transfers_.end();) {
    Outbound& t = (it++)->second;
    if (t.to == host) Fail(t, fmt::format("transfer {} to {}: the host is down", Q(t.id), host), false, now_ns, out);
  }
}

void TransferSender::Fail(Outbound& t, std::string error, bool tell, int64_t now_ns,
                          TransferOutput* out) {
  (void)now_ns;
  ++stats_.failed;
  if (tell) {
    wire::TransferMessage m;
    m.mutable_abort()->set_transfer_id(t.id);
    m.mutable_abort()->set_reason(Clip(error));
    Emit(t.to, std::move(m), options_.max_payload_bytes, out);
  }
  out->events.push_back({TransferEvent::Kind::kFailed, t.to, t.id, 0, {}, t.total, 0, std::move(error)});
  transfers_.erase(t.id);
}

// --- Receiver --------------------------------------------------------------------------

TransferReceiver::TransferReceiver(std::string self, TransferOptions options)
    : self_(std::move(self)), options_(options) {}

void TransferReceiver::Handle(const std::string& from, const wire::TransferMessage& msg,
                              int64_t now_ns, TransferOutput* out) {
  if (msg.body_case() == wire::TransferMessage::kChunk) {
    OnChunk(from, msg.chunk(), now_ns, out);
    return;
  }
  if (msg.body_case() != wire::TransferMessage::kAbort) return;
  const Key key{from, msg.abort().transfer_id()};
  if (!incoming_.count(key)) return;
  ++stats_.aborted;
  Finish(key, false,
         fmt::format("transfer {} from {}: the sender stopped it: {}", Q(key.second), from,
                     msg.abort().reason()),
         now_ns, out);
}

void TransferReceiver::OnChunk(const std::string& from, const wire::Chunk& c, int64_t now_ns,
                               TransferOutput* out) {
  const std::string& id = c.transfer_id();
  if (ChunkChecksum(id, c.offset(), c.total_size(), c.data()) != c.crc32c()) {
    ++stats_.bad_checksum;  // the sender retransmits what is never acknowledged
    return;
  }
  ++stats_.chunks;
  Key key{from, id};
  if (auto d = done_.find(key); d != done_.end()) {
    ++stats_.late_duplicates;
    if (d->second.ok && d->second.total != c.total_size()) {
      // A new blob under an id this host finished: refuse it rather than say complete.
      Done reused{false, c.total_size(),
                  fmt::format("transfer {} from {}: that id was used for a blob of {} bytes already",
                              Q(id), from, d->second.total),
                  0};
      AckDone(from, id, reused, out);
      return;
    }
    AckDone(from, id, d->second, out);
    return;
  }
  auto it = incoming_.find(key);
  if (it == incoming_.end()) {
    if (c.total_size() > options_.max_blob_bytes) {
      ++stats_.too_large;
      ++stats_.started;
      incoming_[key].total = c.total_size();
      Finish(key, false,
             fmt::format("transfer {} from {}: {} bytes is over the limit of {} bytes", Q(id), from,
                         c.total_size(), options_.max_blob_bytes),
             now_ns, out);
      return;
    }
    if (incoming_.size() >= options_.max_incoming) {
      ++stats_.busy;  // the sender retransmits; admitted when a slot frees
      return;
    }
    ++stats_.started;
    it = incoming_.emplace(key, Inbound{}).first;
    it->second.total = c.total_size();
  }
  Inbound& t = it->second;
  t.last_ns = now_ns;
  if (c.total_size() != t.total) {
    ++stats_.bad_chunks;
    return;
  }
  const uint64_t begin = c.offset();
  const uint64_t end = begin + c.data().size();
  if (end > t.cumulative + options_.receive_window_bytes) {
    ++stats_.beyond_window;
    Ack(from, id, t, out);
    return;
  }
  if (end == t.total) t.blob_crc = c.blob_crc32c();
  if ((end <= t.cumulative && t.total != 0) || (t.held.count(begin) && t.held[begin].size() >= c.data().size())) {
    ++stats_.duplicates;
  } else if (begin > t.cumulative) {
    std::string& slot = t.held[begin];
    t.held_bytes += c.data().size() - slot.size();
    slot = c.data();
  } else {
    // Overlaps the cumulative offset: hand over the new part, then whatever held became
    // contiguous.
    auto deliver = [&](std::string_view bytes, uint64_t at) {
      const std::string_view fresh = bytes.substr(size_t(t.cumulative - at));
      if (fresh.empty()) return;
      out->events.push_back({TransferEvent::Kind::kData, from, id, t.cumulative, std::string(fresh),
                             t.total, 0, {}});
      t.crc = Crc32cExtend(t.crc, fresh);
      t.cumulative += fresh.size();
    };
    deliver(c.data(), begin);
    for (auto h = t.held.begin(); h != t.held.end() && h->first <= t.cumulative;) {
      if (h->first + h->second.size() > t.cumulative) deliver(h->second, h->first);
      t.held_bytes -= h->second.size();
      h = t.held.erase(h);
    }
  }
  if (t.cumulative == t.total && t.blob_crc) {
    if (*t.blob_crc == t.crc) {
      Finish(key, true, {}, now_ns, out);
    } else {
      ++stats_.bad_blob_checksum;
      Finish(key, false,
             fmt::format("transfer {} from {}: the checksum of the whole {} bytes is {}, the "
                         "sender's is {}",
                         Q(id), from, t.total, Hex(t.crc), Hex(*t.blob_crc)),
             now_ns, out);
    }
    return;
  }
  Ack(from, id, t, out);
}

void TransferReceiver::Ack(const std::string& to, const std::string& id, const Inbound& t,
                           TransferOutput* out) {
  wire::TransferMessage m;
  wire::TransferAck* a = m.mutable_ack();
  a->set_transfer_id(id);
  a->set_state(kInProgress);
  a->set_cumulative(t.cumulative);
  uint64_t at = t.cumulative;  // end of the union of what is described so far
  uint64_t highest = t.cumulative;
  for (const auto& [offset, bytes] : t.held) {
    const uint64_t end = offset + bytes.size();
    if (offset > at) {
      if (size_t(a->missing_size()) == kMaxAckRanges) break;  // `highest` stops before the gap
      wire::ByteRange* r = a->add_missing();
      r->set_begin(at);
      r->set_end(offset);
    }
    at = std::max(at, end);
    highest = at;
  }
  a->set_highest(highest);
  ++stats_.acks;
  Emit(to, std::move(m), options_.max_payload_bytes, out);
}

void TransferReceiver::AckDone(const std::string& to, const std::string& id, const Done& d,
                               TransferOutput* out) {
  wire::TransferMessage m;
  wire::TransferAck* a = m.mutable_ack();
  a->set_transfer_id(id);
  a->set_state(d.ok ? kComplete : kFailedState);
  a->set_cumulative(d.ok ? d.total : 0);
  a->set_highest(d.ok ? d.total : 0);
  if (!d.ok) a->set_error(Clip(d.error));
  ++stats_.acks;
  Emit(to, std::move(m), options_.max_payload_bytes, out);
}

void TransferReceiver::Finish(const Key& key, bool ok, std::string error, int64_t now_ns,
                              TransferOutput* out) {
  auto it = incoming_.find(key);
  const Inbound& t = it->second;
  Done d{ok, t.total, error, now_ns + options_.remember_ns};
  if (ok) {
    ++stats_.completed;
    out->events.push_back({TransferEvent::Kind::kComplete, key.first, key.second, 0, {}, t.total, t.crc, {}});
  } else {
    ++stats_.failed;
    out->events.push_back({TransferEvent::Kind::kFailed, key.first, key.second, 0, {}, t.total, 0, std::move(error)});
  }
  incoming_.erase(it);
  AckDone(key.first, key.second, d, out);
  Remember(key, std::move(d));
}

void TransferReceiver::Remember(const Key& key, Done d) {
  done_order_.emplace_back(d.until_ns, key);
  done_[key] = std::move(d);
  while (done_.size() > options_.max_remembered && !done_order_.empty()) {
    auto [until, k] = done_order_.front();
    done_order_.pop_front();
    auto it = done_.find(k);
    if (it != done_.end() && it->second.until_ns == until) done_.erase(it);
  }
}

Status TransferReceiver::Reject(const std::string& from, const std::string& transfer_id,
                                std::string_view reason, int64_t now_ns, TransferOutput* out) {
  const Key key{from, transfer_id};
  if (!incoming_.count(key)) {
    return Status::NotFound(fmt::format("no transfer {} from {} in progress", Q(Clip(transfer_id)), from));
  }
  Finish(key, false, fmt::format("transfer {} from {}: refused by {}: {}", Q(transfer_id), from, self_, reason),
         now_ns, out);
  return Status::OK();
}

void TransferReceiver::Tick(int64_t now_ns, TransferOutput* out) {
  while (!done_order_.empty() && done_order_.front().first <= now_ns) {
    auto [until, k] = done_order_.front();
    done_order_.pop_front();
    auto it = done_.find(k);
    if (it != done_.end() && it->second.until_ns == until) done_.erase(it);
  }
  for (auto it = incoming_.begin(); it != incoming_.end();) {
    const Key key = (it++)->first;
    const Inbound& t = incoming_.at(key);
    if (now_ns - t.last_ns < options_.idle_timeout_ns) continue;
    ++stats_.idle_timeouts;
    Finish(key, false,
           fmt::format("transfer {} from {}: no chunk for {} ms ({} of {} bytes in order)", Q(key.second),
                       key.first, (now_ns - t.last_ns) / 1'000'000, t.cumulative, t.total),
           now_ns, out);
  }
}

std::optional<int64_t> TransferReceiver::NextDeadline() const {
  std::optional<int64_t> next;
  auto consider = [&](int64_t at) { if (!next || at < *next) next = at; };
  for (const auto& [key, t] : incoming_) consider(t.last_ns + options_.idle_timeout_ns);
  if (!done_order_.empty()) consider(done_order_.front().first);
  return next;
}

}  // namespace augur::mesh
