// The transport over real ZeroMQ sockets on 127.0.0.1 (port 0), with real CURVE keys written
// by keygen. Timeouts are generous and only bound a wait: every assertion is about what
// arrived and what was counted, never about how fast.
#include "mesh/transport.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>
#include <zmq.hpp>

#include "mesh/keys.h"
#include "telemetry/temp_tree.h"

namespace augur::mesh {
namespace {

using std::chrono::milliseconds;
using telemetry::TempTree;

constexpr auto kWait = std::chrono::seconds(15);  // upper bound on any wait; never reached
constexpr size_t kMaxBytes = 4096;

struct Host {
  std::string name;
  std::string dir;
  KeygenResult keys;
  std::string authorized_keys() const { return dir + "/authorized_keys"; }
};

class TransportTest : public ::testing::Test {
 protected:
  Host MakeHost(const std::string& name) {
    Host h{name, dir_.Path("/" + name), {}};
    auto k = WriteKeyFiles({h.dir, name, false});
    EXPECT_TRUE(k.has_value()) << k.error().ToString();
    h.keys = *k;
    return h;
  }

  // Writes `at`'s authorized_keys: the lines of `peers`, as an operator pastes host.pub files.
  void Authorize(const Host& at, std::initializer_list<const Host*> peers) {
    std::string text = "# test cluster\n";
    for (const Host* p : peers) text += p->keys.public_line + "\n";
    dir_.Write("/" + at.name + "/authorized_keys", text);
  }

  TransportOptions Options(const Host& h) {
    TransportOptions o;
    o.host_name = h.name;
    o.listen = "tcp://127.0.0.1:0";
    o.secret_key_file = h.keys.secret_path;
    o.authorized_keys_file = h.authorized_keys();
    o.max_message_bytes = kMaxBytes;
    o.reconnect_interval = milliseconds(20);
    o.reconnect_interval_max = milliseconds(200);
    o.relink_after_refusal = milliseconds(100);
    o.keys_check_interval = milliseconds(50);
    return o;
  }

  std::unique_ptr<Transport> Start(const TransportOptions& o) {
    auto t = Transport::Start(o);
    EXPECT_TRUE(t.has_value()) << t.error().ToString();
    return t ? std::move(*t) : nullptr;
  }
  std::unique_ptr<Transport> Start(const Host& h) { return Start(Options(h)); }

  // Sends until ZeroMQ takes the message (the first sends on a new link drop until its
  // handshake is done), then waits for it at `to`. Returns what `to` received first that came
  // from `from_name`, skipping nothing else: callers check it is the payload they sent.
  std::optional<Inbound> SendAndReceive(Transport& from, const std::string& to_name,
                                        Transport& to, const std::string& payload,
                                        Channel ch = Channel::kMembership) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < deadline) {
      Status s = from.Send(to_name, to.endpoint(), ch, payload);
      if (s.ok()) return to.Receive(std::chrono::duration_cast<milliseconds>(kWait));
      EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
      // Keep the receiving side's loop turning, as the mesh thread would.
      if (auto stray = to.Receive(milliseconds(10))) return stray;
    }
    return std::nullopt;
  }

  // Runs `step` until `done` holds or kWait passes; returns whether it held.
  template <typename Step, typename Done>
  bool Until(Step step, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      step();
    }
    return true;
  }

  // alpha and beta, each in the other's authorized_keys, both started.
  struct Pair {
    Host a, b;
    std::unique_ptr<Transport> ta, tb;
  };
  Pair StartAlphaBeta() {
    Pair p{MakeHost("alpha"), MakeHost("beta"), nullptr, nullptr};
    Authorize(p.a, {&p.b});
    Authorize(p.b, {&p.a});
    p.ta = Start(p.a);
    p.tb = Start(p.b);
    return p;
  }

  TempTree dir_;
};

TEST_F(TransportTest, TwoHostsExchangeBothWays) {
  auto [a, b, ta, tb] = StartAlphaBeta();
  ASSERT_TRUE(ta && tb);
  EXPECT_NE(ta->endpoint().find("tcp://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(ta->public_key(), a.keys.keys.public_z85);

  auto in = SendAndReceive(*ta, "beta", *tb, "ping from alpha", Channel::kMembership);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->from, "alpha");
  EXPECT_EQ(in->channel, Channel::kMembership);
  EXPECT_EQ(in->payload, "ping from alpha");

  auto back = SendAndReceive(*tb, "alpha", *ta, std::string("bid\0bytes", 9), Channel::kPlacement);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->from, "beta");
  EXPECT_EQ(back->channel, Channel::kPlacement);
  EXPECT_EQ(back->payload, std::string("bid\0bytes", 9));

  // Once linked, a burst arrives complete and in order, on every channel.
  for (int i = 0; i < 200; ++i) {
    const Channel ch = static_cast<Channel>(1 + i % 4);
    ASSERT_TRUE(ta->Send("beta", tb->endpoint(), ch, "m" + std::to_string(i)).ok()) << i;
  }
  for (int i = 0; i < 200; ++i) {
    auto m = tb->Receive(std::chrono::duration_cast<milliseconds>(kWait));
    ASSERT_TRUE(m.has_value()) << i;
    EXPECT_EQ(m->payload, "m" + std::to_string(i));
    EXPECT_EQ(m->channel, static_cast<Channel>(1 + i % 4));
  }

  const TransportStats sa = ta->stats(), sb = tb->stats();
  EXPECT_EQ(sb.received_messages, 201u);
  EXPECT_EQ(sa.received_messages, 1u);
  EXPECT_EQ(sa.sent_messages, 201u);
  EXPECT_GT(sa.sent_bytes, 201u * 10);
  EXPECT_EQ(sb.received_bytes, sa.sent_bytes);
  EXPECT_EQ(sa.links_opened, 1u);
  // Nothing was dropped but the sends before each link's handshake finished.
  EXPECT_EQ(sa.total_dropped(), sa.drops(DropReason::kNotConnected));
  EXPECT_EQ(sb.total_dropped(), sb.drops(DropReason::kNotConnected));
}

// Any thread may send (MeshNode sends on the caller's thread): four threads send to beta at
// once while another thread of alpha waits in Receive for beta's messages. Every message
// arrives once, each thread's in its order, and none is taken for a replay although the
// threads' sequence numbers reach the link out of order.
TEST_F(TransportTest, SendsFromSeveralThreadsWhileAnotherReceivesAllArriveOnce) {
  Host a = MakeHost("alpha"), b = MakeHost("beta");
  Authorize(a, {&b});
  Authorize(b, {&a});
  TransportOptions oa = Options(a);
  oa.send_hwm = 4096;  // the burst is not paced: no drop for a full queue
  auto ta = Start(oa);
  auto tb = Start(b);
  ASSERT_TRUE(ta && tb);
  ASSERT_TRUE(SendAndReceive(*ta, "beta", *tb, "hello").has_value());
  ASSERT_TRUE(SendAndReceive(*tb, "alpha", *ta, "hello").has_value());

  constexpr int kThreads = 4, kEach = 250, kBack = 100;
  std::atomic<int> from_beta{0};
  std::thread receiver([&] {
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (from_beta.load() < kBack && std::chrono::steady_clock::now() < deadline) {
      if (auto m = ta->Receive(milliseconds(100)); m && m->from == "beta") ++from_beta;
    }
  });
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        EXPECT_TRUE(ta->Send("beta", tb->endpoint(), Channel::kPlacement,
                             std::to_string(t) + ":" + std::to_string(i))
                        .ok());
      }
    });
  }
  for (int i = 0; i < kBack; ++i) {
    ASSERT_TRUE(tb->Send("alpha", ta->endpoint(), Channel::kPlacement, "back").ok()) << i;
  }
  std::vector<int> next(kThreads, 0);
  for (int got = 0; got < kThreads * kEach; ++got) {
    auto m = tb->Receive(std::chrono::duration_cast<milliseconds>(kWait));
    ASSERT_TRUE(m.has_value()) << "after " << got << " messages";
    const size_t colon = m->payload.find(':');
    ASSERT_NE(colon, std::string::npos) << m->payload;
    const int t = std::stoi(m->payload.substr(0, colon));
    ASSERT_TRUE(t >= 0 && t < kThreads) << m->payload;
    EXPECT_EQ(std::stoi(m->payload.substr(colon + 1)), next[t]) << "thread " << t;
    next[t] = std::stoi(m->payload.substr(colon + 1)) + 1;
  }
  for (std::thread& th : senders) th.join();
  receiver.join();
  EXPECT_EQ(from_beta.load(), kBack);
  EXPECT_EQ(next, std::vector<int>(kThreads, kEach));
  const TransportStats sa = ta->stats(), sb = tb->stats();
  EXPECT_EQ(sb.drops(DropReason::kReplayed), 0u);
  EXPECT_EQ(sb.total_dropped(), sb.drops(DropReason::kNotConnected));
  EXPECT_EQ(sa.total_dropped(), sa.drops(DropReason::kNotConnected));
  EXPECT_EQ(sb.received_messages, uint64_t(1 + kThreads * kEach));
}

// Wake() from another thread ends a long Receive at once, without a message; a wake before
// the Receive makes the next one return at once.
TEST_F(TransportTest, WakeEndsAWaitingReceive) {
  auto [a, b, ta, tb] = StartAlphaBeta();
  ASSERT_TRUE(ta && tb);
  auto t0 = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ta->Wake();
  });
  EXPECT_FALSE(ta->Receive(std::chrono::seconds(20)).has_value());
  waker.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  ta->Wake();
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ta->Receive(std::chrono::seconds(20)).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  // And messages still flow afterwards.
  EXPECT_TRUE(SendAndReceive(*tb, "alpha", *ta, "after", Channel::kData).has_value());
}

TEST_F(TransportTest, UnknownKeyIsRefusedThenAcceptedWhenAddedThenCutWhenRemoved) {
  Host a = MakeHost("alpha"), b = MakeHost("beta"), g = MakeHost("gamma");
  Authorize(a, {&b});         // alpha does not know gamma
  Authorize(b, {&a});
  Authorize(g, {&a});         // gamma knows alpha's key, so it can try
  auto ta = Start(a), tb = Start(b), tg = Start(g);
  ASSERT_TRUE(ta && tb && tg);

  // 1. Refused by alpha's ZAP handler, counted on both sides; nothing gets through.
  ASSERT_TRUE(Until(
      [&] {
        (void)tg->Send("alpha", ta->endpoint(), Channel::kMembership, "let me in");
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value()) << "got '" << m->payload << "' from " << m->from;
      },
      [&] {
        return ta->stats().drops(DropReason::kZapRefused) >= 1 &&
               tg->stats().drops(DropReason::kRefusedByPeer) >= 1;
      }));
  EXPECT_EQ(ta->stats().received_messages, 0u);

  // 2. Appended to alpha's authorized_keys while alpha runs: accepted, no restart.
  {
    std::ofstream out(a.authorized_keys(), std::ios::app);
    out << g.keys.public_line << "  # added at run time\n";
  }
  auto in = SendAndReceive(*tg, "alpha", *ta, "hello after the key was added");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->from, "gamma");
  EXPECT_EQ(in->payload, "hello after the key was added");
  EXPECT_GE(ta->stats().keys_reloads, 1u);
  ASSERT_TRUE(SendAndReceive(*ta, "gamma", *tg, "and back").has_value());

  // 3. Removed again: gamma's open connection is cut at the next message (its User-Id is no
  // longer authorized) and alpha's link to gamma closes. beta is unaffected.
  Authorize(a, {&b});
  std::this_thread::sleep_for(2 * Options(a).keys_check_interval);
  const uint64_t unauthorized_before = ta->stats().drops(DropReason::kUnauthorized);
  ASSERT_TRUE(Until(
      [&] {
        (void)tg->Send("alpha", ta->endpoint(), Channel::kMembership, "still here?");
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value()) << "got '" << m->payload << "' from " << m->from;
      },
      [&] { return ta->stats().drops(DropReason::kUnauthorized) > unauthorized_before; }));
  Status to_gamma = ta->Send("gamma", tg->endpoint(), Channel::kMembership, "x");
  EXPECT_TRUE(to_gamma.IsNotFound()) << to_gamma.ToString();
  EXPECT_GE(ta->stats().drops(DropReason::kUnknownPeer), 1u);
  auto from_beta = SendAndReceive(*tb, "alpha", *ta, "beta still welcome");
  ASSERT_TRUE(from_beta.has_value());
  EXPECT_EQ(from_beta->from, "beta");
  EXPECT_EQ(from_beta->payload, "beta still welcome");
}

TEST_F(TransportTest, BadEnvelopesAreDroppedAndCountedWhileGoodTrafficFlows) {
  auto [a, b, ta, tb] = StartAlphaBeta();
  ASSERT_TRUE(ta && tb);
  ASSERT_TRUE(SendAndReceive(*tb, "alpha", *ta, "link up").has_value());

  auto envelope = [&] {
    Envelope e;
    e.sender = "beta";
    e.boot_id = tb->boot_id();
    e.seq = tb->NextSeqForTest() + 100;  // ahead of beta's own, inside the replay window
    e.channel = Channel::kData;
    e.payload = "forged?";
    return e;
  };
  auto raw = [&](const std::string& bytes) {
    Status s = tb->SendRawForTest("alpha", ta->endpoint(), bytes);
    ASSERT_TRUE(s.ok()) << s.ToString();
  };
  raw(std::string("\xff\xff\xff\x01garbage", 11));           // malformed
  Envelope big = envelope();
  big.payload.assign(kMaxBytes, 'x');
  raw(EncodeEnvelope(big));                                   // oversized
  Envelope v2 = envelope();
  v2.version = 2;
  raw(EncodeEnvelope(v2));                                    // unknown version
  Envelope forged = envelope();
  forged.sender = "alpha";
  raw(EncodeEnvelope(forged));                                // sender mismatch
  Envelope once = envelope();
  once.payload = "delivered once";
  raw(EncodeEnvelope(once));                                  // accepted
  raw(EncodeEnvelope(once));                                  // replayed
  Envelope old_boot = envelope();
  old_boot.boot_id = tb->boot_id() - 1;
  raw(EncodeEnvelope(old_boot));                              // stale boot
  ASSERT_TRUE(tb->Send("alpha", ta->endpoint(), Channel::kPlacement, "good after bad").ok());

  // One link, in order: when the good message is in, every bad one was judged.
  auto first = ta->Receive(std::chrono::duration_cast<milliseconds>(kWait));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->payload, "delivered once");
  auto second = ta->Receive(std::chrono::duration_cast<milliseconds>(kWait));
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->payload, "good after bad");
  EXPECT_EQ(second->from, "beta");

  const TransportStats s = ta->stats();
  EXPECT_EQ(s.drops(DropReason::kMalformed), 1u);
  EXPECT_EQ(s.drops(DropReason::kOversized), 1u);
  EXPECT_EQ(s.drops(DropReason::kUnknownVersion), 1u);
  EXPECT_EQ(s.drops(DropReason::kSenderMismatch), 1u);
  EXPECT_EQ(s.drops(DropReason::kReplayed), 1u);
  EXPECT_EQ(s.drops(DropReason::kStaleBoot), 1u);
  EXPECT_EQ(s.drops(DropReason::kUnauthorized), 0u);
  EXPECT_EQ(s.received_messages, 3u);

  // And the link still works both ways.
  ASSERT_TRUE(SendAndReceive(*ta, "beta", *tb, "alpha is fine").has_value());
}

// A client with an authorized key that is not a Transport: ZeroMQ lets it send a message of
// several frames, which no Transport sends.
TEST_F(TransportTest, AMessageOfSeveralFramesIsMalformed) {
  auto [a, b, ta, tb] = StartAlphaBeta();
  ASSERT_TRUE(ta && tb);
  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::curve_serverkey, a.keys.keys.public_z85);
  raw.set(zmq::sockopt::curve_publickey, b.keys.keys.public_z85);
  raw.set(zmq::sockopt::curve_secretkey, b.keys.keys.secret_z85);
  raw.connect(ta->endpoint());
  Envelope e;
  e.sender = "beta";
  e.boot_id = tb->boot_id();
  e.seq = 1;
  e.payload = "first frame of two";
  const std::string bytes = EncodeEnvelope(e);
  ASSERT_TRUE(raw.send(zmq::buffer(bytes), zmq::send_flags::sndmore));
  ASSERT_TRUE(raw.send(zmq::str_buffer("second"), zmq::send_flags::none));
  ASSERT_TRUE(Until(
      [&] {
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value()) << "got '" << m->payload << "'";
      },
      [&] { return ta->stats().drops(DropReason::kMalformed) == 1; }));
  // The same envelope alone, on the same connection, is fine.
  ASSERT_TRUE(raw.send(zmq::buffer(bytes), zmq::send_flags::none));
  auto in = ta->Receive(std::chrono::duration_cast<milliseconds>(kWait));
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->from, "beta");
  EXPECT_EQ(in->payload, "first frame of two");
}

TEST_F(TransportTest, ARestartedHostIsNewerAndItsOldBootIsStale) {
  Host a = MakeHost("alpha"), b = MakeHost("beta");
  Authorize(a, {&b});
  Authorize(b, {&a});
  auto ta = Start(a);
  TransportOptions old_run = Options(b), new_run = Options(b);
  old_run.boot_id = 1000;
  new_run.boot_id = 2000;
  auto old_b = Start(old_run);
  ASSERT_TRUE(ta && old_b);
  ASSERT_TRUE(SendAndReceive(*old_b, "alpha", *ta, "old run").has_value());
  auto new_b = Start(new_run);  // same key and name, later boot: what a restart looks like
  ASSERT_TRUE(new_b);
  auto in = SendAndReceive(*new_b, "alpha", *ta, "new run");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->payload, "new run");
  ASSERT_TRUE(old_b->Send("alpha", ta->endpoint(), Channel::kMembership, "zombie").ok());
  ASSERT_TRUE(Until(
      [&] {
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value()) << "got '" << m->payload << "'";
      },
      [&] { return ta->stats().drops(DropReason::kStaleBoot) == 1; }));
}

TEST_F(TransportTest, AWrongServerKeyOrNoCurveFailsTheHandshakeAndIsCounted) {
  Host a = MakeHost("alpha"), b = MakeHost("beta"), g = MakeHost("gamma");
  Authorize(a, {&g});
  // gamma holds beta's key for alpha: its handshake with alpha cannot succeed.
  dir_.Write("/gamma/authorized_keys", b.keys.keys.public_z85 + " alpha\n");
  auto ta = Start(a), tg = Start(g);
  ASSERT_TRUE(ta && tg);
  ASSERT_TRUE(Until(
      [&] {
        Status s = tg->Send("alpha", ta->endpoint(), Channel::kMembership, "hi");
        EXPECT_FALSE(s.ok());
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value());
      },
      [&] {
        return ta->stats().drops(DropReason::kHandshakeFailed) >= 1 &&
               tg->stats().drops(DropReason::kPeerHandshakeFailed) >= 1;
      }));

  // A ZeroMQ client without CURVE at all.
  const uint64_t before = ta->stats().drops(DropReason::kHandshakeFailed);
  zmq::context_t ctx;
  zmq::socket_t plain(ctx, zmq::socket_type::dealer);
  plain.set(zmq::sockopt::linger, 0);
  plain.connect(ta->endpoint());
  (void)plain.send(zmq::str_buffer("not even an envelope"), zmq::send_flags::dontwait);
  ASSERT_TRUE(Until(
      [&] {
        auto m = ta->Receive(milliseconds(20));
        EXPECT_FALSE(m.has_value());
      },
      [&] { return ta->stats().drops(DropReason::kHandshakeFailed) > before; }));
  EXPECT_EQ(ta->stats().received_messages, 0u);
}

TEST_F(TransportTest, SendSideDropsAreCountedAndSaid) {
  auto [a, b, ta, tb] = StartAlphaBeta();
  ASSERT_TRUE(ta && tb);

  Status unknown = ta->Send("nobody", tb->endpoint(), Channel::kData, "x");
  EXPECT_TRUE(unknown.IsNotFound()) << unknown.ToString();
  EXPECT_NE(unknown.message().find("no key for host 'nobody'"), std::string::npos);
  EXPECT_EQ(ta->stats().drops(DropReason::kUnknownPeer), 1u);

  Status big = ta->Send("beta", tb->endpoint(), Channel::kData, std::string(kMaxBytes, 'x'));
  EXPECT_EQ(big.code(), Status::Code::kResourceExhausted) << big.ToString();
  EXPECT_EQ(ta->stats().drops(DropReason::kSendOversized), 1u);

  Status channel = ta->Send("beta", tb->endpoint(), static_cast<Channel>(9), "x");
  EXPECT_TRUE(channel.IsInvalidArgument()) << channel.ToString();
  Status endpoint = ta->Connect("beta", "nonsense://x");
  EXPECT_TRUE(endpoint.IsInvalidArgument()) << endpoint.ToString();
  EXPECT_EQ(ta->stats().drops(DropReason::kSendInvalid), 2u);

  // A peer that is not listening: the link never connects, sends drop without blocking.
  auto gone = Start(b);
  ASSERT_TRUE(gone);
  const std::string dead_endpoint = gone->endpoint();
  gone.reset();
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(ta->Send("beta", dead_endpoint, Channel::kData, "x").IsUnavailable());
  }
  EXPECT_GE(ta->stats().drops(DropReason::kNotConnected), 50u);

  // Connect ahead, then the first message after the handshake goes through.
  ASSERT_TRUE(ta->Connect("beta", tb->endpoint()).ok());
  auto in = SendAndReceive(*ta, "beta", *tb, "after connect");
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->payload, "after connect");
}

TEST_F(TransportTest, StartRefusesBadSetUpsSayingWhy) {
  Host a = MakeHost("alpha"), b = MakeHost("beta");
  Authorize(a, {&b});
  auto fails = [&](TransportOptions o, const std::string& expect) {
    auto t = Transport::Start(o);
    ASSERT_FALSE(t.has_value()) << expect;
    EXPECT_NE(t.error().message().find(expect), std::string::npos) << t.error().message();
  };
  TransportOptions o = Options(a);
  o.host_name = "bad name";
  fails(o, "mesh host name 'bad name' is not valid");
  o = Options(a);
  o.secret_key_file = a.dir + "/missing.key";
  fails(o, "augurctl keygen");
  o = Options(a);
  o.authorized_keys_file = a.dir + "/missing";
  fails(o, "missing");
  dir_.Write("/alpha/bad_keys", "oops\n");
  o = Options(a);
  o.authorized_keys_file = a.dir + "/bad_keys";
  fails(o, "bad_keys:1:");
  ::chmod(a.keys.secret_path.c_str(), 0640);
  fails(Options(a), "chmod 600");
  ::chmod(a.keys.secret_path.c_str(), 0600);

  auto first = Start(a);
  ASSERT_TRUE(first);
  o = Options(a);
  o.listen = first->endpoint();  // taken
  fails(o, "mesh.listen " + first->endpoint());
}

TEST(TransportStats, EveryReasonHasAName) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < kDropReasonCount; ++i) {
    const std::string_view n = DropReasonName(static_cast<DropReason>(i));
    EXPECT_NE(n, "unknown") << i;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kDropReasonCount);
}

}  // namespace
}  // namespace augur::mesh
