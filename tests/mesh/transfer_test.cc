#include "mesh/transfer.h"

#include <functional>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "common/crc32c.h"
#include "mesh/envelope.h"
#include "mesh/sim_network.h"

namespace augur::mesh {
namespace {

constexpr int64_t kMs = 1'000'000;

std::string Blob(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = char(rng());
  return s;
}

// Host "a" sends to host "b" over a SimNetwork in virtual time (ns here, us on the network).
// `tamper`, when set, sees every chunk on its way to b (decoded) and may change it or drop it.
struct Pair {
  explicit Pair(uint64_t seed, SimLinkFaults faults = {}, TransferOptions opts = {})
      : net(seed, faults), options(opts), sender("a", opts), receiver("b", opts) {}

  void Out(TransferOutput& out) {
    for (auto& m : out.messages) {
      const std::string from = m.to == "b" ? "a" : "b";
      net.Send(now / 1000, from, m.to, std::move(m.payload));
    }
    for (auto& e : out.events) {
      if (e.peer == "a") {  // the receiver's events name the sender
        if (e.kind == TransferEvent::Kind::kData) {
          std::string& got = received[e.transfer_id];
          EXPECT_EQ(e.offset, got.size()) << "data out of order";
          got += e.data;
        } else {
          recv_end[e.transfer_id] = e;
        }
      } else {
        send_end[e.transfer_id] = e;
      }
    }
    out = {};
  }

  // Advances to the next delivery or timer, if it is due by `limit_ns`, and handles it.
  bool Step(int64_t limit_ns) {
    std::optional<int64_t> next;
    auto consider = [&](std::optional<int64_t> t) {
      if (t && (!next || *t < *next)) next = *t;
    };
    if (auto at = net.NextAt()) consider(*at * 1000);
    consider(sender.NextDeadline());
    consider(receiver.NextDeadline());
    if (!next || *next > limit_ns) return false;
    now = std::max(now, *next);
    TransferOutput out;
    while (auto d = net.Pop(now / 1000)) {
      auto msg = DecodeTransfer(d->bytes, options.max_payload_bytes);
      if (!msg) {
        ++decode_errors;
        continue;
      }
      if (d->to == "b") {
        if (tamper && msg->has_chunk() && !tamper(*msg->mutable_chunk())) continue;
        receiver.Handle(d->from, *msg, now, &out);
      } else {
        sender.Handle(d->from, *msg, now, &out);
      }
      Out(out);
    }
    sender.Tick(now, &out);
    receiver.Tick(now, &out);
    Out(out);
    return true;
  }

  // Runs until `done` or `limit_ns` of virtual time.
  void Run(const std::function<bool()>& done, int64_t limit_ns = 600'000 * kMs) {
    while (!done() && Step(limit_ns)) {
    }
  }

  bool Over(const std::string& id) const { return send_end.count(id) && recv_end.count(id); }

  SimNetwork net;
  TransferOptions options;
  TransferSender sender;
  TransferReceiver receiver;
  int64_t now = 0;
  std::function<bool(wire::Chunk&)> tamper;
  std::map<std::string, std::string> received;
  std::map<std::string, TransferEvent> send_end, recv_end;
  uint64_t decode_errors = 0;
};

TEST(TransferCodec, TheLargestChunkFitsOneTransportMessage) {
  TransferOptions o;
  TransferSender s("a", o);
  wire::TransferMessage m;
  wire::Chunk* c = m.mutable_chunk();
  const std::string id(kMaxTransferIdBytes, 'x');
  c->set_transfer_id(id);
  c->set_offset(~uint64_t{0} - s.chunk_bytes());
  c->set_total_size(~uint64_t{0});
  c->set_data(std::string(s.chunk_bytes(), '\xff'));
  c->set_crc32c(0xffffffff);
  c->set_blob_crc32c(0xffffffff);
  auto bytes = EncodeTransfer(m, o.max_payload_bytes);
  ASSERT_TRUE(bytes.has_value()) << bytes.error().ToString();
  EXPECT_LE(bytes->size(), o.max_payload_bytes);
  EXPECT_LE(bytes->size() - s.chunk_bytes(), kChunkOverheadBytes);

  Envelope env;
  env.sender = std::string(kMaxHostNameBytes, 'h');
  env.boot_id = env.seq = ~uint64_t{0};
  env.sent_unix_ns = -1;
  env.channel = Channel::kData;
  env.payload = *bytes;
  const std::string wire = EncodeEnvelope(env);
  EXPECT_LE(wire.size() - bytes->size(), kEnvelopeOverheadBytes);
  EXPECT_LE(wire.size(), size_t{64 * 1024});
  EXPECT_TRUE(DecodeEnvelope(wire, 64 * 1024).has_value());
}

TEST(TransferCodec, RefusesWhatIsNotAWellFormedMessage) {
  const size_t max = kDefaultMaxPayloadBytes;
  auto code = [&](const std::string& bytes) {
    auto m = DecodeTransfer(bytes, max);
    EXPECT_FALSE(m.has_value());
    if (m) return Status::Code::kOk;
    EXPECT_FALSE(m.error().message().empty());
    return m.error().code();
  };
  auto raw = [](wire::TransferMessage m, uint32_t version = kTransferVersion) {
    m.set_version(version);
    return m.SerializeAsString();
  };
  wire::TransferMessage good;
  good.mutable_chunk()->set_transfer_id("t1");
  good.mutable_chunk()->set_total_size(10);
  good.mutable_chunk()->set_offset(4);
  good.mutable_chunk()->set_data("abcdef");
  EXPECT_TRUE(DecodeTransfer(raw(good), max).has_value());

  EXPECT_EQ(code(std::string(max + 1, 'x')), Status::Code::kResourceExhausted);
  EXPECT_EQ(code("\xff\xff\xff garbage"), Status::Code::kCorruption);
  EXPECT_EQ(code(raw(good, 2)), Status::Code::kFailedPrecondition);
  EXPECT_EQ(code(raw(wire::TransferMessage())), Status::Code::kCorruption);  // no body

  wire::TransferMessage m = good;
  m.mutable_chunk()->set_transfer_id("has space");
  EXPECT_EQ(code(raw(m)), Status::Code::kCorruption);
  m = good;
  m.mutable_chunk()->set_offset(5);  // [5, 11) past a total of 10
  EXPECT_EQ(code(raw(m)), Status::Code::kCorruption);
  m = good;
  m.mutable_chunk()->set_offset(~uint64_t{0} - 2);  // offset + size overflows
  m.mutable_chunk()->set_total_size(~uint64_t{0});
  EXPECT_TRUE(DecodeTransfer(raw(m), max).has_value() == false);

  wire::TransferMessage ack;
  ack.mutable_ack()->set_transfer_id("t1");
  ack.mutable_ack()->set_cumulative(10);
  ack.mutable_ack()->set_highest(50);
  auto* r1 = ack.mutable_ack()->add_missing();
  r1->set_begin(20);
  r1->set_end(30);
  EXPECT_TRUE(DecodeTransfer(raw(ack), max).has_value());
  auto* r2 = ack.mutable_ack()->add_missing();
  r2->set_begin(25);  // overlaps the first
  r2->set_end(40);
  EXPECT_EQ(code(raw(ack)), Status::Code::kCorruption);
  ack.mutable_ack()->clear_missing();
  ack.mutable_ack()->set_state(7);
  EXPECT_EQ(code(raw(ack)), Status::Code::kCorruption);
  ack.mutable_ack()->set_state(0);
  ack.mutable_ack()->set_cumulative(60);  // above highest
  EXPECT_EQ(code(raw(ack)), Status::Code::kCorruption);

  // What the encoder would not put on the wire, it refuses too.
  m = good;
  m.mutable_chunk()->set_transfer_id("");
  EXPECT_FALSE(EncodeTransfer(m, max).has_value());
}

TEST(TransferCodec, ChunkChecksumCoversIdOffsetAndTotal) {
  const uint32_t c = ChunkChecksum("t", 0, 3, "abc");
  EXPECT_NE(c, ChunkChecksum("u", 0, 3, "abc"));
  EXPECT_NE(c, ChunkChecksum("t", 1, 3, "abc"));
  EXPECT_NE(c, ChunkChecksum("t", 0, 4, "abc"));
  EXPECT_NE(c, ChunkChecksum("t", 0, 3, "abd"));
  EXPECT_EQ(c, ChunkChecksum("t", 0, 3, "abc"));
}

// The property: over seeds, sizes (0, 1, around and at exact multiples of the chunk size,
// several MiB) and 10 % to 30 % loss with reordering and duplication, the receiver's bytes
// are the sender's, and both sides say complete with the blob's CRC-32C.
TEST(Transfer, ArrivesByteIdenticalOverALossyReorderingNetwork) {
  TransferOptions o;
  const size_t cs = TransferSender("a", o).chunk_bytes();
  const std::vector<size_t> sizes = {0, 1, cs - 1, cs, cs + 1, 3 * cs, 16 * cs, (5 << 20) + 7};
  int runs = 0;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    for (size_t size : sizes) {
      const double loss = 0.1 + 0.04 * double(seed - 1);  // 10 % .. 30 %
      Pair p(seed * 1000 + size, SimLinkFaults{loss, 0.05, 200, 5'000});
      const std::string blob = Blob(size, seed + size);
      TransferOutput out;
      ASSERT_TRUE(p.sender.Send("b", "blob", blob, 0, &out).ok());
      p.Out(out);
      p.Run([&] { return p.Over("blob"); });
      ASSERT_TRUE(p.Over("blob")) << "seed " << seed << " size " << size;
      EXPECT_EQ(p.send_end["blob"].kind, TransferEvent::Kind::kComplete) << p.send_end["blob"].error;
      EXPECT_EQ(p.recv_end["blob"].kind, TransferEvent::Kind::kComplete) << p.recv_end["blob"].error;
      EXPECT_EQ(p.recv_end["blob"].crc32c, Crc32c(blob));
      EXPECT_TRUE(p.received["blob"] == blob) << "seed " << seed << " size " << size;
      EXPECT_EQ(p.sender.active(), 0u);
      EXPECT_EQ(p.receiver.active(), 0u);
      ++runs;
    }
  }
  EXPECT_EQ(runs, 48);
}

TEST(Transfer, CorruptedChunksAreDroppedCountedAndSentAgain) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Pair p(seed, SimLinkFaults{0.1, 0.05, 200, 2'000});
    std::mt19937_64 rng(seed);
    p.tamper = [&](wire::Chunk& c) {  // one chunk in five has a byte flipped in its payload
      if (!c.data().empty() && rng() % 5 == 0) {
        std::string d = c.data();
        d[rng() % d.size()] ^= char(1 + rng() % 255);
        c.set_data(d);
      }
      return true;
    };
    const std::string blob = Blob(2 << 20, seed);
    TransferOutput out;
    ASSERT_TRUE(p.sender.Send("b", "x", blob, 0, &out).ok());
    p.Out(out);
    p.Run([&] { return p.Over("x"); });
    ASSERT_TRUE(p.Over("x"));
    EXPECT_EQ(p.recv_end["x"].kind, TransferEvent::Kind::kComplete);
    EXPECT_TRUE(p.received["x"] == blob);
    EXPECT_GT(p.receiver.stats().bad_checksum, 0u);
    EXPECT_GE(p.sender.stats().chunks_resent, p.receiver.stats().bad_checksum);
  }
}

// Corruption the chunk checksum cannot see (the sender's bytes went bad before it summed
// them): every chunk passes, and the whole-blob checksum fails the transfer on both sides.
TEST(Transfer, AWrongWholeChecksumFailsTheTransferWithTheReason) {
  Pair p(3, SimLinkFaults{0.1, 0.05, 200, 2'000});
  p.tamper = [](wire::Chunk& c) {
    if (c.offset() == 0 && !c.data().empty()) {
      std::string d = c.data();
      d[7] ^= 0x40;
      c.set_data(d);
      c.set_crc32c(ChunkChecksum(c.transfer_id(), c.offset(), c.total_size(), d));
    }
    return true;
  };
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "bad", Blob(300'000, 1), 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("bad"); });
  ASSERT_TRUE(p.Over("bad"));
  EXPECT_EQ(p.recv_end["bad"].kind, TransferEvent::Kind::kFailed);
  EXPECT_EQ(p.send_end["bad"].kind, TransferEvent::Kind::kFailed);
  EXPECT_NE(p.recv_end["bad"].error.find("checksum of the whole 300000 bytes"), std::string::npos)
      << p.recv_end["bad"].error;
  EXPECT_NE(p.send_end["bad"].error.find("checksum of the whole"), std::string::npos)
      << p.send_end["bad"].error;
  EXPECT_EQ(p.receiver.stats().bad_blob_checksum, 1u);
  EXPECT_EQ(p.receiver.stats().bad_checksum, 0u);
}

TEST(Transfer, ABlobOverTheLimitIsRefusedNamingIdSizeAndLimit) {
  TransferOptions small;
  small.max_blob_bytes = 100'000;
  Pair p(1);
  p.receiver = TransferReceiver("b", small);
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "big", Blob(150'000, 1), 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("big"); });
  ASSERT_TRUE(p.Over("big"));
  const std::string& e = p.recv_end["big"].error;
  EXPECT_NE(e.find("'big'"), std::string::npos) << e;
  EXPECT_NE(e.find("150000 bytes is over the limit of 100000 bytes"), std::string::npos) << e;
  EXPECT_EQ(p.send_end["big"].kind, TransferEvent::Kind::kFailed);
  EXPECT_NE(p.send_end["big"].error.find("over the limit"), std::string::npos);
  EXPECT_EQ(p.receiver.stats().too_large, 1u);
  EXPECT_TRUE(p.received["big"].empty());

  // The sender refuses what is over its own limit before sending anything.
  TransferSender s("a", small);
  Status st = s.Send("b", "big2", Blob(100'001, 1), 0, &out);
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted);
  EXPECT_NE(st.message().find("'big2' to b: 100001 bytes is over the limit of 100000"), std::string::npos)
      << st.message();
}

TEST(Transfer, LateDuplicatesOfAFinishedTransferAreAnsweredAndIgnored) {
  Pair p(2, SimLinkFaults{0.0, 0.0, 200, 800});
  std::vector<wire::Chunk> seen;
  p.tamper = [&](wire::Chunk& c) { seen.push_back(c); return true; };
  const std::string blob = Blob(200'000, 2);
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "t", blob, 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("t"); });
  ASSERT_EQ(p.recv_end["t"].kind, TransferEvent::Kind::kComplete);
  ASSERT_FALSE(seen.empty());
  const uint64_t late_before = p.receiver.stats().late_duplicates;
  for (const wire::Chunk& c : seen) {
    wire::TransferMessage m;
    *m.mutable_chunk() = c;
    p.receiver.Handle("a", m, p.now, &out);
  }
  EXPECT_EQ(p.receiver.stats().late_duplicates - late_before, seen.size());
  for (const auto& e : out.events) ADD_FAILURE() << "event for a late duplicate: " << e.transfer_id;
  ASSERT_EQ(out.messages.size(), seen.size());
  auto ack = DecodeTransfer(out.messages[0].payload, kDefaultMaxPayloadBytes);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->ack().state(), 1u);  // complete
  EXPECT_TRUE(p.received["t"] == blob);

  // The same id from the same sender with another size is refused, not taken as done.
  wire::TransferMessage other;
  other.mutable_chunk()->set_transfer_id("t");
  other.mutable_chunk()->set_total_size(3);
  other.mutable_chunk()->set_data("abc");
  other.mutable_chunk()->set_crc32c(ChunkChecksum("t", 0, 3, "abc"));
  other.mutable_chunk()->set_blob_crc32c(Crc32c("abc"));
  out = {};
  p.receiver.Handle("a", other, p.now, &out);
  ASSERT_EQ(out.messages.size(), 1u);
  ack = DecodeTransfer(out.messages[0].payload, kDefaultMaxPayloadBytes);
  EXPECT_EQ(ack->ack().state(), 2u);
  EXPECT_NE(ack->ack().error().find("used for a blob of 200000 bytes already"), std::string::npos);
  // Another sender may use the same id: transfers are (sender, id).
  out = {};
  p.receiver.Handle("c", other, p.now, &out);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[1].kind, TransferEvent::Kind::kComplete);
}

TEST(Transfer, AtMostWindowChunksAreInFlight) {
  TransferOptions o;
  o.window_chunks = 4;
  TransferSender s("a", o);
  TransferOutput out;
  ASSERT_TRUE(s.Send("b", "w", Blob(20 * s.chunk_bytes(), 1), 0, &out).ok());
  EXPECT_EQ(out.messages.size(), 4u);
  // Nothing acknowledged: a timeout resends those four, and nothing past them.
  out = {};
  s.Tick(o.initial_rto_ns, &out);
  ASSERT_EQ(out.messages.size(), 4u);
  for (const auto& m : out.messages) {
    auto d = DecodeTransfer(m.payload, o.max_payload_bytes);
    EXPECT_LT(d->chunk().offset(), 4 * s.chunk_bytes());
  }
  EXPECT_EQ(s.stats().timeouts, 1u);
  // The next timeout is twice as long (backoff).
  out = {};
  s.Tick(2 * o.initial_rto_ns, &out);
  EXPECT_TRUE(out.messages.empty());
  s.Tick(3 * o.initial_rto_ns, &out);
  EXPECT_EQ(out.messages.size(), 4u);

  // The whole run never has the receiver holding more than the window beyond its offset.
  Pair p(5, SimLinkFaults{0.2, 0.05, 200, 3'000}, o);
  size_t max_ahead = 0;
  p.tamper = [&](wire::Chunk& c) {
    max_ahead = std::max<size_t>(max_ahead, c.offset() + c.data().size());
    return true;
  };
  out = {};
  const std::string blob = Blob(40 * s.chunk_bytes(), 5);
  ASSERT_TRUE(p.sender.Send("b", "w", blob, 0, &out).ok());
  p.Out(out);
  uint64_t worst = 0;
  while (!p.Over("w") && p.Step(600'000 * kMs)) {
    const uint64_t in_order = p.received["w"].size();
    worst = std::max<uint64_t>(worst, max_ahead > in_order ? max_ahead - in_order : 0);
  }
  EXPECT_TRUE(p.received["w"] == blob);
  EXPECT_LE(worst, 4 * s.chunk_bytes() + s.chunk_bytes());
}

TEST(Transfer, AStreamAppendedInPiecesArrivesAsTheBlob) {
  Pair p(4, SimLinkFaults{0.15, 0.05, 200, 2'000});
  const std::string blob = Blob(3'000'001, 4);
  TransferOutput out;
  ASSERT_TRUE(p.sender.Begin("b", "s", blob.size(), 0, &out).ok());
  size_t given = 0;
  uint64_t max_held = 0;
  while (!p.Over("s") && p.now < 600'000 * kMs) {
    // Reads at most what the window has room for, in odd-sized pieces.
    const uint64_t room = p.sender.Room("s");
    const size_t n = std::min<size_t>({size_t(room), blob.size() - given, 77'777});
    if (n > 0) {
      ASSERT_TRUE(p.sender.Append("s", std::string_view(blob).substr(given, n), p.now, &out).ok());
      given += n;
    }
    max_held = std::max<uint64_t>(max_held, given - p.received["s"].size());
    p.Out(out);
    if (!p.Step(600'000 * kMs)) break;
  }
  ASSERT_TRUE(p.Over("s"));
  EXPECT_EQ(p.recv_end["s"].kind, TransferEvent::Kind::kComplete);
  EXPECT_TRUE(p.received["s"] == blob);
  EXPECT_EQ(p.sender.Room("s"), 0u);
  // Never more than the window (and one piece) read ahead of what arrived.
  EXPECT_LE(max_held, 16 * p.sender.chunk_bytes() + 77'777);
  EXPECT_EQ(p.sender.Append("s", "x", p.now, &out).code(), Status::Code::kNotFound);
}

TEST(Transfer, AppendPastTheTotalIsRefused) {
  TransferSender s("a", {});
  TransferOutput out;
  ASSERT_TRUE(s.Begin("b", "s", 5, 0, &out).ok());
  EXPECT_TRUE(s.Append("s", "abc", 0, &out).ok());
  EXPECT_EQ(s.Append("s", "abc", 0, &out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.Send("b", "s", "x", 0, &out).code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(s.Send("b", "bad id", "x", 0, &out).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.Send("a", "self", "x", 0, &out).code(), Status::Code::kInvalidArgument);
}

TEST(Transfer, ASilentPeerFailsTheTransferOnBothSides) {
  TransferOptions o;
  o.give_up_ns = 2'000 * kMs;
  o.idle_timeout_ns = 3'000 * kMs;
  Pair p(6, SimLinkFaults{0.0, 0.0, 200, 800}, o);
  int delivered = 0;
  p.tamper = [&](wire::Chunk&) { return ++delivered <= 3; };  // then the link goes dark
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "q", Blob(2 << 20, 6), 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("q"); });
  ASSERT_TRUE(p.Over("q"));
  EXPECT_NE(p.send_end["q"].error.find("no progress for 2"), std::string::npos) << p.send_end["q"].error;
  // The receiver heard the Abort only if the link carried it; dark, it times out itself.
  EXPECT_EQ(p.recv_end["q"].kind, TransferEvent::Kind::kFailed);
  EXPECT_EQ(p.receiver.stats().idle_timeouts + p.receiver.stats().aborted, 1u);
  EXPECT_EQ(p.sender.active() + p.receiver.active(), 0u);

  // Membership declaring the peer dead fails its transfers at once.
  TransferSender s("a", o);
  out = {};
  ASSERT_TRUE(s.Send("b", "r", "abc", 0, &out).ok());
  ASSERT_TRUE(s.Send("c", "r2", "abc", 0, &out).ok());
  out = {};
  s.PeerDown("b", 1, &out);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].transfer_id, "r");
  EXPECT_NE(out.events[0].error.find("down"), std::string::npos);
  EXPECT_EQ(s.active(), 1u);
}

TEST(Transfer, ABusyReceiverTakesTheNextTransferWhenASlotFrees) {
  TransferOptions o;
  o.max_incoming = 1;
  Pair p(7, SimLinkFaults{0.1, 0.0, 200, 1'000}, o);
  TransferOutput out;
  const std::string b1 = Blob(1 << 20, 1), b2 = Blob(1 << 20, 2);
  ASSERT_TRUE(p.sender.Send("b", "one", b1, 0, &out).ok());
  ASSERT_TRUE(p.sender.Send("b", "two", b2, 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("one") && p.Over("two"); });
  EXPECT_TRUE(p.received["one"] == b1);
  EXPECT_TRUE(p.received["two"] == b2);
  EXPECT_GT(p.receiver.stats().busy, 0u);
}

// One chunk lost on an otherwise clean link: the selective acks keep every other chunk from
// being sent again, and fast retransmit resends the lost one before its timeout.
TEST(Transfer, OneLostChunkIsTheOnlyOneSentAgain) {
  Pair p(8, SimLinkFaults{0.0, 0.0, 1'000, 1'000});
  bool dropped = false;
  p.tamper = [&](wire::Chunk& c) {
    if (!dropped && c.offset() == 3 * p.sender.chunk_bytes()) return !(dropped = true);
    return true;
  };
  const std::string blob = Blob(12 * p.sender.chunk_bytes(), 8);
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "one", blob, 0, &out).ok());
  p.Out(out);
  p.Run([&] { return p.Over("one"); });
  EXPECT_TRUE(p.received["one"] == blob);
  EXPECT_EQ(p.sender.stats().chunks_resent, 1u);
  EXPECT_EQ(p.sender.stats().fast_retransmits, 1u);
  EXPECT_EQ(p.sender.stats().timeouts, 0u);
  EXPECT_LT(p.now, 20 * kMs);  // far below the 200 ms initial timeout
}

TEST(Transfer, AnAbortedTransferIsForgottenAndItsLateChunksAnsweredFailed) {
  Pair p(9, SimLinkFaults{0.0, 0.0, 200, 200});
  int n = 0;
  p.tamper = [&](wire::Chunk&) { return ++n <= 2; };
  TransferOutput out;
  ASSERT_TRUE(p.sender.Send("b", "ab", Blob(1 << 20, 9), 0, &out).ok());
  p.Out(out);
  p.Run([&] { return n > 4; });
  ASSERT_TRUE(p.sender.Cancel("ab", "the shard was cancelled", p.now, &out).ok());
  p.Out(out);
  p.Run([&] { return p.recv_end.count("ab") > 0; });
  EXPECT_NE(p.recv_end["ab"].error.find("the sender stopped it: the shard was cancelled"), std::string::npos);
  EXPECT_EQ(p.receiver.active(), 0u);
  EXPECT_EQ(p.receiver.remembered(), 1u);
  // Forgotten after remember_ns.
  p.receiver.Tick(p.now + p.options.remember_ns, &out);
  EXPECT_EQ(p.receiver.remembered(), 0u);
}

}  // namespace
}  // namespace augur::mesh
