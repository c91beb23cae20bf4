#include "mesh/transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "mesh/authorized_keys.h"
#include "mesh/keys.h"
#include "mesh/log_rate_limiter.h"
#include "mesh/replay_window.h"
#include "mesh/zap_handler.h"

namespace augur::mesh {

std::string_view DropReasonName(DropReason r) {
  switch (r) {
    case DropReason::kMalformed: return "malformed";
    case DropReason::kOversized: return "oversized";
    case DropReason::kUnknownVersion: return "unknown_version";
    case DropReason::kSenderMismatch: return "sender_mismatch";
    case DropReason::kUnauthorized: return "unauthorized";
    case DropReason::kReplayed: return "replayed";
    case DropReason::kStaleBoot: return "stale_boot";
    case DropReason::kZapRefused: return "zap_refused";
    case DropReason::kHandshakeFailed: return "handshake_failed";
    case DropReason::kUnknownPeer: return "unknown_peer";
    case DropReason::kNotConnected: return "not_connected";
    case DropReason::kQueueFull: return "queue_full";
    case DropReason::kSendOversized: return "send_oversized";
    case DropReason::kSendInvalid: return "send_invalid";
    case DropReason::kRefusedByPeer: return "refused_by_peer";
    case DropReason::kPeerHandshakeFailed: return "peer_handshake_failed";
  }
  return "unknown";
}

namespace {

// ZMQ_ZAP_ENFORCE_DOMAIN: in libzmq 4.3's draft section of zmq.h, but Debian's libzmq5 4.3.4
// honours it. Without it a CURVE server with no ZAP handler answering lets every client in;
// with it, if the ZAP thread ever died, every client would be refused instead.
constexpr int kZmqZapEnforceDomain = 93;

// Frames larger than this many times max_message_bytes are cut off by ZeroMQ (it closes the
// connection); the ones in between are read, counted as oversized and dropped.
constexpr size_t kHardLimitFactor = 4;

constexpr int kLinkEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                            ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
// A refusal by our own ZAP handler is counted there (kZapRefused); the monitor of the
// listening socket counts the handshakes that failed before ZAP.
constexpr int kListenEvents = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                              ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Send-side reasons that are routine (a peer down or starting) log at debug; the rest warn.
bool IsRoutine(DropReason r) {
  return r == DropReason::kNotConnected || r == DropReason::kQueueFull;
}

const char* Property(zmq::message_t& msg, const char* name) {
  return zmq_msg_gets(msg.handle(), name);  // null when absent
}

// One monitor event: what happened and its value (an errno, a ZMTP error or a status code).
struct MonitorEvent {
  uint16_t event = 0;
  uint32_t value = 0;
};

// Reads the next event of a monitor socket without waiting.
std::optional<MonitorEvent> NextEvent(zmq::socket_t& monitor) {
  zmq::message_t head;
  if (!monitor.recv(head, zmq::recv_flags::dontwait)) return std::nullopt;
  MonitorEvent ev;
  if (head.size() >= 6) {
    std::memcpy(&ev.event, head.data(), 2);
    std::memcpy(&ev.value, static_cast<const char*>(head.data()) + 2, 4);
  }
  while (head.more()) {  // the endpoint frame
    zmq::message_t rest;
    if (!monitor.recv(rest, zmq::recv_flags::none)) break;
    head = std::move(rest);
  }
  return ev;
}

std::string HandshakeError(uint32_t value) {
  if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
    return "cryptographic error (a CURVE key that does not match)";
  }
  if (value >= 0x10000000) return fmt::format("ZMTP protocol error {:#x}", value);
  return std::strerror(static_cast<int>(value));
}

}  // namespace

class Transport::Impl {
 public:
  explicit Impl(const TransportOptions& opts)
      : opts_(opts),
        boot_id_(opts.boot_id != 0 ? opts.boot_id : static_cast<uint64_t>(WallNs())),
        log_limiter_(std::chrono::nanoseconds(opts.log_interval).count()) {}

  ~Impl() {
    if (wake_fd_ >= 0) ::close(wake_fd_);
    // The ZAP thread first (it uses the context, the counters and the keys file), then every
    // socket, then the context: ZeroMQ's context waits for its sockets to close.
    zap_.reset();
    links_.clear();
    router_monitor_.close();
    router_.close();
    ctx_.close();
  }

  Status Init();

  Status Send(const std::string& peer, const std::string& endpoint, Channel ch,
              std::string_view payload) {
    const auto c = static_cast<uint32_t>(ch);
    if (c == 0 || c > kMaxChannel) {
      Drop(DropReason::kSendInvalid, fmt::format("to '{}': unknown channel {}", peer, c));
      return Status::InvalidArgument(fmt::format("mesh: unknown channel {}", c));
    }
    Envelope env;
    env.sender = opts_.host_name;
    env.boot_id = boot_id_;
    // Taken before the lock and encoded outside it: two threads' messages may reach the
    // link in the other order, which the receiver's replay window takes (kWindow).
    env.seq = next_seq_.fetch_add(1, std::memory_order_relaxed);
    env.channel = ch;
    env.payload.assign(payload);
    env.sent_unix_ns = WallNs();
    const std::string bytes = EncodeEnvelope(env);
    if (bytes.size() > opts_.max_message_bytes) {
      Drop(DropReason::kSendOversized,
           fmt::format("to '{}' on {}: envelope of {} bytes is over max_message_bytes {}", peer,
                       ChannelName(ch), bytes.size(), opts_.max_message_bytes));
      return Status::ResourceExhausted(
          fmt::format("mesh: message of {} bytes over the limit of {}", bytes.size(),
                      opts_.max_message_bytes));
    }
    std::lock_guard lock(mu_);
    return SendLocked(peer, endpoint, bytes);
  }

  Status Connect(const std::string& peer, const std::string& endpoint) {
    std::lock_guard lock(mu_);
    auto link = LinkFor(peer, endpoint);
    return link ? Status::OK() : link.error();
  }

  Status SendBytes(const std::string& peer, const std::string& endpoint, std::string_view bytes) {
    std::lock_guard lock(mu_);
    return SendLocked(peer, endpoint, bytes);
  }

  void ResetLink(const std::string& peer) {
    std::lock_guard lock(mu_);
    links_.erase(peer);
  }

  void Wake() {
    const uint64_t one = 1;
    if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
  }

  // Send's and SendBytes's body, under mu_.
  Status SendLocked(const std::string& peer, const std::string& endpoint, std::string_view bytes) {
    auto found = LinkFor(peer, endpoint);
    if (!found) return found.error();
    Link& link = **found;
    DrainLinkMonitor(peer, link);
    try {
      if (link.sock.send(zmq::buffer(bytes), zmq::send_flags::dontwait)) {
        counters_.Sent(bytes.size());
        return Status::OK();
      }
    } catch (const zmq::error_t& e) {
      Drop(DropReason::kQueueFull, fmt::format("to '{}' at {}: {}", peer, endpoint, e.what()));
      return Status::Unavailable(fmt::format("mesh: send to '{}': {}", peer, e.what()));
    }
    if (link.connected) {
      Drop(DropReason::kQueueFull,
           fmt::format("to '{}' at {}: {} messages queued already", peer, endpoint,
                       opts_.send_hwm));
      return Status::Unavailable(fmt::format("mesh: send queue to '{}' is full", peer));
    }
    Drop(DropReason::kNotConnected, fmt::format("to '{}' at {}: no completed handshake{}", peer,
                                                endpoint, link.refused ? " (it refused our key)" : ""));
    return Status::Unavailable(fmt::format("mesh: not connected to '{}' at {}", peer, endpoint));
  }

  std::optional<Inbound> Receive(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      try {
        bool took = false;
        if (auto in = TakeOne(&took)) return in;
        if (took) {  // one that failed a check: consumed and counted; look for the next
          if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
          continue;
        }
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= std::chrono::nanoseconds::zero()) return std::nullopt;
        // Unlocked: Send from other threads goes on meanwhile. Only this thread touches
        // the ROUTER, and the ZMQ_FD poll reads no socket state.
        zmq::pollitem_t items[2] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                                    {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
        zmq::poll(items, wake_fd_ >= 0 ? 2 : 1,
                  std::chrono::ceil<std::chrono::milliseconds>(left));
        if (wake_fd_ >= 0 && (items[1].revents & ZMQ_POLLIN) != 0) {
          uint64_t n;
          (void)!::read(wake_fd_, &n, sizeof n);
          if (!(items[0].revents & ZMQ_POLLIN)) return std::nullopt;
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        spdlog::error("mesh: receive: {}", e.what());
        return std::nullopt;
      }
    }
  }

  TransportStats Stats() const {
    TransportStats s = counters_.Snapshot();
    s.keys_reloads = keys_file_->reloads();
    s.keys_errors = keys_file_->errors();
    return s;
  }

  const std::string& endpoint() const { return endpoint_; }
  const std::string& public_key() const { return keys_.public_z85; }
  uint64_t boot_id() const { return boot_id_; }
  uint64_t next_seq() const { return next_seq_.load(std::memory_order_relaxed); }

 private:
  struct Link {
    std::string endpoint;
    std::string server_key;
    zmq::socket_t sock;
    zmq::socket_t monitor;
    bool connected = false;     // handshake done, not disconnected since
    bool refused = false;       // the peer's ZAP refused us: ZeroMQ will not retry
    int64_t refused_at_ns = 0;
  };

  // Counts a drop and logs it at the rate limit.
  void Drop(DropReason r, const std::string& detail) {
    counters_.Drop(r);
    uint64_t suppressed = 0;
    {
      std::lock_guard lock(log_mu_);  // Send's own checks drop outside mu_
      if (!log_limiter_.Allow(static_cast<uint32_t>(r), SteadyNs(), &suppressed)) return;
    }
    const std::string more =
        suppressed > 0 ? fmt::format(" [{} more {} not logged]", suppressed, DropReasonName(r))
                       : "";
    if (IsRoutine(r)) {
      spdlog::debug("mesh: dropped ({}) {}{}", DropReasonName(r), detail, more);
    } else {
      spdlog::warn("mesh: dropped ({}) {}{}", DropReasonName(r), detail, more);
    }
  }

  // Re-reads authorized_keys when it changed (a stat at most every keys_check_interval), and
  // closes the links to hosts whose key was removed or replaced: they are made again, with
  // the new key, on the next Send. The ZAP thread may have loaded a new set meanwhile, so the
  // set in force is compared on every call.
  void MaybeCheckKeys() {
    const int64_t now = SteadyNs();
    if (now - last_keys_check_ns_ >= std::chrono::nanoseconds(opts_.keys_check_interval).count()) {
      last_keys_check_ns_ = now;
      (void)keys_file_->ReloadIfChanged();  // logs its own errors, once per change of the file
    }
    auto current = keys_file_->Current();
    if (current == keys_seen_) return;
    for (auto it = links_.begin(); it != links_.end();) {
      const std::string* key = current->KeyForName(it->first);
      if (opts_.curve && (key == nullptr || *key != it->second.server_key)) {
        spdlog::info("mesh: closing the link to '{}': its key {} authorized_keys", it->first,
                     key == nullptr ? "left" : "changed in");
        it = links_.erase(it);
      } else {
        ++it;
      }
    }
    keys_seen_ = std::move(current);
  }

  Result<Link*> LinkFor(const std::string& peer, const std::string& endpoint) {
    MaybeCheckKeys();
    std::string server_key;
    if (opts_.curve) {
      const std::string* key = keys_seen_->KeyForName(peer);
      if (key == nullptr) {
        Drop(DropReason::kUnknownPeer,
             fmt::format("to '{}': no key for it in {}", peer, keys_file_->path()));
        return Err(Status::NotFound(fmt::format("mesh: no key for host '{}' in {}", peer,
                                                keys_file_->path())));
      }
      server_key = *key;
    }
    if (auto it = links_.find(peer); it != links_.end()) {
      Link& l = it->second;
      DrainLinkMonitor(peer, l);
      const bool relink =
          l.refused && SteadyNs() - l.refused_at_ns >=
                           std::chrono::nanoseconds(opts_.relink_after_refusal).count();
      if (l.endpoint == endpoint && !relink) return &l;
      links_.erase(it);
    }
    try {
      Link l;
      l.endpoint = endpoint;
      l.server_key = server_key;
      l.sock = zmq::socket_t(ctx_, zmq::socket_type::dealer);
      l.sock.set(zmq::sockopt::linger, 0);
      l.sock.set(zmq::sockopt::immediate, 1);
      l.sock.set(zmq::sockopt::sndhwm, opts_.send_hwm);
      // Nothing is ever sent back on this link; a small queue bounds a misbehaving peer.
      l.sock.set(zmq::sockopt::rcvhwm, 1);
      l.sock.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(opts_.max_message_bytes));
      SetLinkOptions(l.sock);
      if (opts_.curve) {
        l.sock.set(zmq::sockopt::curve_serverkey, server_key);
        l.sock.set(zmq::sockopt::curve_publickey, keys_.public_z85);
        l.sock.set(zmq::sockopt::curve_secretkey, keys_.secret_z85);
      }
      l.monitor = Monitor(l.sock, kLinkEvents);
      l.sock.connect(endpoint);
      counters_.LinkOpened();
      auto [it, inserted] = links_.insert_or_assign(peer, std::move(l));
      return &it->second;
    } catch (const zmq::error_t& e) {
      Drop(DropReason::kSendInvalid, fmt::format("to '{}': endpoint '{}': {}", peer, endpoint,
                                                 e.what()));
      return Err(Status::InvalidArgument(
          fmt::format("mesh: cannot connect to '{}' at '{}': {}", peer, endpoint, e.what())));
    }
  }

  // Heartbeats and reconnection, the same on both ends of every link.
  void SetLinkOptions(zmq::socket_t& s) {
    if (opts_.heartbeat_interval.count() > 0) {
      s.set(zmq::sockopt::heartbeat_ivl, static_cast<int>(opts_.heartbeat_interval.count()));
      s.set(zmq::sockopt::heartbeat_timeout, static_cast<int>(opts_.heartbeat_timeout.count()));
      s.set(zmq::sockopt::heartbeat_ttl, static_cast<int>(opts_.heartbeat_timeout.count()));
    }
    if (opts_.tcp_keepalive_idle.count() > 0) {
      s.set(zmq::sockopt::tcp_keepalive, 1);
      s.set(zmq::sockopt::tcp_keepalive_idle, static_cast<int>(opts_.tcp_keepalive_idle.count()));
      s.set(zmq::sockopt::tcp_keepalive_intvl, 10);
      s.set(zmq::sockopt::tcp_keepalive_cnt, 3);
    }
    s.set(zmq::sockopt::reconnect_ivl, static_cast<int>(opts_.reconnect_interval.count()));
    s.set(zmq::sockopt::reconnect_ivl_max,
          static_cast<int>(opts_.reconnect_interval_max.count()));
  }

  // A PAIR socket that receives `events` of `s`.
  zmq::socket_t Monitor(zmq::socket_t& s, int events) {
    const std::string addr = fmt::format("inproc://augur-mesh-monitor-{}", ++monitor_serial_);
    if (zmq_socket_monitor(s.handle(), addr.c_str(), events) != 0) throw zmq::error_t();
    zmq::socket_t m(ctx_, zmq::socket_type::pair);
    m.set(zmq::sockopt::linger, 0);
    m.connect(addr);
    return m;
  }

  void DrainLinkMonitor(const std::string& peer, Link& link) {
    while (auto ev = NextEvent(link.monitor)) {
      switch (ev->event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
          link.connected = true;
          break;
        case ZMQ_EVENT_DISCONNECTED:
          link.connected = false;
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          link.connected = false;
          link.refused = true;
          link.refused_at_ns = SteadyNs();
          Drop(DropReason::kRefusedByPeer,
               fmt::format("link to '{}' at {}: it refused our key {} (status {}); add the "
                           "line '{} {}' to its authorized_keys",
                           peer, link.endpoint, keys_.public_z85, ev->value, keys_.public_z85,
                           opts_.host_name));
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
          link.connected = false;
          Drop(DropReason::kPeerHandshakeFailed,
               fmt::format("link to '{}' at {}: handshake failed: {} (is {} its key?)", peer,
                           link.endpoint, HandshakeError(ev->value), link.server_key));
          break;
        default:
          break;
      }
    }
  }

  void DrainRouterMonitor() {
    while (auto ev = NextEvent(router_monitor_)) {
      Drop(DropReason::kHandshakeFailed,
           fmt::format("a connection to {}: handshake failed: {} (a peer without CURVE, or "
                       "one holding another public key for this host than {})",
                       endpoint_, HandshakeError(ev->value), keys_.public_z85));
    }
  }

  // The next message waiting on the ROUTER, if it passes Accept's checks; *took says whether
  // there was one at all. Under mu_: Accept reads the links' key set and may close links.
  std::optional<Inbound> TakeOne(bool* took) {
    std::lock_guard lock(mu_);
    DrainRouterMonitor();
    zmq::message_t id;
    *took = bool(router_.recv(id, zmq::recv_flags::dontwait));
    if (!*took) return std::nullopt;
    // A ROUTER delivers [peer identity][frames...] atomically: the rest is there.
    zmq::message_t body;
    bool extra = false;
    if (id.more()) {
      (void)router_.recv(body, zmq::recv_flags::none);
      zmq::message_t more;
      for (bool m = body.more(); m; m = more.more()) {
        (void)router_.recv(more, zmq::recv_flags::none);
        extra = true;
      }
    }
    return Accept(body, extra);
  }

  // The checks a message passes before Receive returns it, cheapest and most telling first.
  std::optional<Inbound> Accept(zmq::message_t& body, bool extra_frames) {
    const char* addr = Property(body, "Peer-Address");
    const std::string from_addr = addr != nullptr ? addr : "?";
    std::string user;
    if (opts_.curve) {
      const char* uid = Property(body, "User-Id");
      const char* key = Property(body, kKeyProperty);
      MaybeCheckKeys();
      auto keys = keys_file_->Current();
      const std::string* name = key != nullptr ? keys->NameForKey(key) : nullptr;
      if (uid == nullptr || name == nullptr || *name != uid) {
        Drop(DropReason::kUnauthorized,
             fmt::format("from '{}' ({}): key {} is no longer authorized for it in {}",
                         uid != nullptr ? uid : "?", from_addr, key != nullptr ? key : "-",
                         keys_file_->path()));
        return std::nullopt;
      }
      user = uid;
    }
    if (extra_frames) {
      Drop(DropReason::kMalformed,
           fmt::format("from '{}' ({}): a message of more than one frame", user, from_addr));
      return std::nullopt;
    }
    const std::string_view bytes(static_cast<const char*>(body.data()), body.size());
    auto env = DecodeEnvelope(bytes, opts_.max_message_bytes);
    if (!env) {
      DropReason r = DropReason::kMalformed;
      if (env.error().code() == Status::Code::kResourceExhausted) r = DropReason::kOversized;
      if (env.error().code() == Status::Code::kFailedPrecondition) r = DropReason::kUnknownVersion;
      Drop(r, fmt::format("from '{}' ({}): {}", user, from_addr, env.error().message()));
      return std::nullopt;
    }
    if (opts_.curve && env->sender != user) {
      Drop(DropReason::kSenderMismatch,
           fmt::format("from '{}' ({}): envelope claims to be from '{}'", user, from_addr,
                       env->sender));
      return std::nullopt;
    }
    switch (windows_[env->sender].Check(env->boot_id, env->seq)) {
      case ReplayWindow::Verdict::kAccept:
        break;
      case ReplayWindow::Verdict::kReplayed:
      case ReplayWindow::Verdict::kTooOld:
        Drop(DropReason::kReplayed, fmt::format("from '{}' ({}): boot {} seq {} seen before",
                                                env->sender, from_addr, env->boot_id, env->seq));
        return std::nullopt;
      case ReplayWindow::Verdict::kStaleBoot:
        Drop(DropReason::kStaleBoot,
             fmt::format("from '{}' ({}): boot {} is older than its boot {}", env->sender,
                         from_addr, env->boot_id, windows_[env->sender].boot_id()));
        return std::nullopt;
    }
    counters_.Received(bytes.size());
    return Inbound{std::move(env->sender), env->channel, std::move(env->payload),
                   env->sent_unix_ns};
  }

  const TransportOptions opts_;
  const uint64_t boot_id_;
  // Serializes Send, Connect, ResetLink and the reading side of Receive (not its wait), so
  // that any thread may send: the links, their ZeroMQ sockets (a socket may move between
  // threads behind a full barrier, which the lock is), the key set and the replay windows.
  mutable std::mutex mu_;
  std::atomic<uint64_t> next_seq_{1};
  KeyPair keys_;
  TransportCounters counters_;
  std::unique_ptr<AuthorizedKeysFile> keys_file_;
  std::shared_ptr<const AuthorizedKeys> keys_seen_;  // the set the links were made with
  int64_t last_keys_check_ns_ = 0;
  std::mutex log_mu_;
  LogRateLimiter log_limiter_;  // under log_mu_
  uint64_t monitor_serial_ = 0;

  // Written by Wake() from any thread; Receive polls it beside the ROUTER.
  int wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  zmq::context_t ctx_{1};
  std::unique_ptr<ZapHandler> zap_;
  zmq::socket_t router_;
  zmq::socket_t router_monitor_;
  std::string endpoint_;
  std::unordered_map<std::string, Link> links_;
  std::unordered_map<std::string, ReplayWindow> windows_;
};

Status Transport::Impl::Init() {
  if (!IsValidHostName(opts_.host_name)) {
    return Status::InvalidArgument(fmt::format(
        "mesh host name '{}' is not valid (1-{} of A-Z a-z 0-9 . _ -)", opts_.host_name,
        kMaxHostNameBytes));
  }
  if (opts_.listen.empty()) return Status::InvalidArgument("mesh.listen is empty");
  if (opts_.max_message_bytes < 256 || opts_.max_message_bytes > (64u << 20)) {
    return Status::InvalidArgument(fmt::format(
        "mesh max_message_bytes {} is out of range (256 to 64 MiB)", opts_.max_message_bytes));
  }
  if (opts_.curve) {
    auto keys = ReadSecretKeyFile(opts_.secret_key_file);
    if (!keys) return keys.error();
    keys_ = std::move(*keys);
  }
  auto file = AuthorizedKeysFile::Open(opts_.authorized_keys_file);
  if (!file) return file.error();
  keys_file_ = std::move(*file);
  keys_seen_ = keys_file_->Current();
  last_keys_check_ns_ = SteadyNs();
  try {
    if (opts_.curve) {
      auto zap = ZapHandler::Start(ctx_, *keys_file_, counters_, opts_.log_interval);
      if (!zap) return zap.error();
      zap_ = std::move(*zap);
    }
    router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::rcvhwm, opts_.receive_hwm);
    router_.set(zmq::sockopt::maxmsgsize,
                static_cast<int64_t>(opts_.max_message_bytes * kHardLimitFactor));
    SetLinkOptions(router_);
    if (opts_.curve) {
      router_.set(zmq::sockopt::curve_server, 1);
      router_.set(zmq::sockopt::curve_secretkey, keys_.secret_z85);
      router_.set(zmq::sockopt::zap_domain, kZapDomain);
      const int one = 1;
      if (zmq_setsockopt(router_.handle(), kZmqZapEnforceDomain, &one, sizeof(one)) != 0) {
        return Status::Unavailable(
            "mesh: this libzmq cannot enforce ZAP (ZMQ_ZAP_ENFORCE_DOMAIN); refusing to listen "
            "without authentication");
      }
    }
    router_monitor_ = Monitor(router_, kListenEvents);
  } catch (const zmq::error_t& e) {
    return Status::Internal(fmt::format("mesh: setting up the listening socket: {}", e.what()));
  }
  try {
    router_.bind(opts_.listen);
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Status::IOError(fmt::format("mesh.listen {}: {}", opts_.listen, e.what()));
  }
  spdlog::info("mesh: host {} listening on {} ({}, {} authorized keys in {})", opts_.host_name,
               endpoint_, opts_.curve ? "CURVE" : "PLAINTEXT, for benchmarks only",
               keys_seen_->size(), keys_file_->path());
  return Status::OK();
}

Transport::Transport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Transport::~Transport() = default;

Result<std::unique_ptr<Transport>> Transport::Start(const TransportOptions& opts) {
  auto impl = std::make_unique<Impl>(opts);
  if (Status s = impl->Init(); !s.ok()) return Err(s);
  return std::unique_ptr<Transport>(new Transport(std::move(impl)));
}

Status Transport::Send(const std::string& peer_name, const std::string& peer_endpoint,
                       Channel ch, std::string_view payload) {
  return impl_->Send(peer_name, peer_endpoint, ch, payload);
}

Status Transport::Connect(const std::string& peer_name, const std::string& peer_endpoint) {
  return impl_->Connect(peer_name, peer_endpoint);
}

std::optional<Inbound> Transport::Receive(std::chrono::milliseconds timeout) {
  return impl_->Receive(timeout);
}

void Transport::Wake() { impl_->Wake(); }

void Transport::ResetLink(const std::string& peer_name) { impl_->ResetLink(peer_name); }

TransportStats Transport::stats() const { return impl_->Stats(); }
std::string Transport::endpoint() const { return impl_->endpoint(); }
const std::string& Transport::public_key() const { return impl_->public_key(); }
uint64_t Transport::boot_id() const { return impl_->boot_id(); }

Status Transport::SendRawForTest(const std::string& peer_name, const std::string& peer_endpoint,
                                 std::string_view bytes) {
  return impl_->SendBytes(peer_name, peer_endpoint, bytes);
}

uint64_t Transport::NextSeqForTest() const { return impl_->next_seq(); }

}  // namespace augur::mesh
