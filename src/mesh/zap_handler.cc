#include "mesh/zap_handler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mesh/keys.h"
#include "mesh/log_rate_limiter.h"

namespace augur::mesh {
namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
constexpr char kStopEndpoint[] = "inproc://augur-mesh-zap-stop";

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames) {
  if (frames.size() < 6) {
    return Err(Status::Corruption(
        fmt::format("ZAP request of {} frames (at least 6 expected)", frames.size())));
  }
  ZapRequest r;
  r.version = frames[0];
  r.request_id = frames[1];
  r.domain = frames[2];
  r.address = frames[3];
  r.identity = frames[4];
  r.mechanism = frames[5];
  r.credentials.assign(frames.begin() + 6, frames.end());
  return r;
}

std::string EncodeZapMetadata(std::string_view name, std::string_view value) {
  std::string out;
  out += static_cast<char>(name.size());
  out += name;
  const uint32_t n = static_cast<uint32_t>(value.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out += value;
  return out;
}

ZapReply DecideZap(const ZapRequest& req, const AuthorizedKeys& keys) {
  ZapReply reply;
  if (req.version != "1.0") {
    reply.status_code = "500";
    reply.status_text = fmt::format("ZAP version '{}' (1.0 expected)", req.version.substr(0, 16));
    return reply;
  }
  reply.status_code = "400";
  if (req.domain != kZapDomain) {
    reply.status_text = fmt::format("ZAP domain '{}' is not the mesh's", req.domain.substr(0, 64));
    return reply;
  }
  if (req.mechanism != "CURVE") {
    reply.status_text = fmt::format("mechanism {} (only CURVE is accepted)",
                                    req.mechanism.substr(0, 16));
    return reply;
  }
  if (req.credentials.size() != 1 || req.credentials[0].size() != kCurveKeyBytes) {
    reply.status_text = "CURVE request without a 32-byte client key";
    return reply;
  }
  reply.client_key = Z85FromBinaryKey(req.credentials[0]);
  const std::string* name = keys.NameForKey(reply.client_key);
  if (name == nullptr) {
    reply.status_text = "key not in authorized_keys";
    return reply;
  }
  reply.status_code = "200";
  reply.status_text = "OK";
  reply.user_id = *name;
  reply.metadata = EncodeZapMetadata(kKeyProperty, reply.client_key);
  return reply;
}

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(zmq::context_t& ctx,
                                                      AuthorizedKeysFile& keys,
                                                      TransportCounters& counters,
                                                      std::chrono::nanoseconds log_interval) {
  try {
    zmq::socket_t rep(ctx, zmq::socket_type::rep);
    rep.set(zmq::sockopt::linger, 0);
    rep.bind(kZapEndpoint);
    zmq::socket_t stop_rx(ctx, zmq::socket_type::pair);
    stop_rx.set(zmq::sockopt::linger, 0);
    stop_rx.bind(kStopEndpoint);
    zmq::socket_t stop_tx(ctx, zmq::socket_type::pair);
    stop_tx.set(zmq::sockopt::linger, 0);
    stop_tx.connect(kStopEndpoint);
    // The sockets move to the thread that the constructor starts: thread creation is the full
    // memory barrier ZeroMQ asks for when a socket changes threads.
    return std::unique_ptr<ZapHandler>(new ZapHandler(std::move(rep), std::move(stop_rx),
                                                      std::move(stop_tx), keys, counters,
                                                      log_interval));
  } catch (const zmq::error_t& e) {
    return Err(Status::Internal(fmt::format("mesh ZAP handler: {}", e.what())));
  }
}

ZapHandler::ZapHandler(zmq::socket_t rep, zmq::socket_t stop_rx, zmq::socket_t stop_tx,
                       AuthorizedKeysFile& keys, TransportCounters& counters,
                       std::chrono::nanoseconds log_interval)
    : rep_(std::move(rep)),
      stop_rx_(std::move(stop_rx)),
      stop_tx_(std::move(stop_tx)),
      keys_(keys),
      counters_(counters),
      log_interval_(log_interval) {
  thread_ = std::thread([this] { Run(); });
}

ZapHandler::~ZapHandler() {
  try {
    stop_tx_.send(zmq::str_buffer("stop"), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    // The context is being torn down: the thread sees ETERM and stops on its own.
    spdlog::debug("mesh: ZAP stop: {}", e.what());
  }
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::Run() {
  LogRateLimiter limiter(log_interval_.count());
  try {
    while (true) {
      zmq::pollitem_t items[2] = {{rep_.handle(), 0, ZMQ_POLLIN, 0},
                                  {stop_rx_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;  // a signal for the process, not for us
        throw;
      }
      if (items[1].revents & ZMQ_POLLIN) break;
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<std::string> frames;
      do {
        zmq::message_t m;
        if (!rep_.recv(m, zmq::recv_flags::none)) break;
        frames.push_back(m.to_string());
      } while (rep_.get(zmq::sockopt::rcvmore));

      ZapReply reply;
      std::string request_id = frames.size() > 1 ? frames[1] : "";
      std::string address;
      if (auto req = ParseZapRequest(frames); !req) {
        reply.status_code = "500";
        reply.status_text = req.error().message();
      } else {
        address = req->address;
        // A change to the file takes effect at the next handshake; one stat per handshake.
        (void)keys_.ReloadIfChanged();
        reply = DecideZap(*req, *keys_.Current());
      }
      if (reply.status_code != "200") {
        counters_.Drop(DropReason::kZapRefused);
        uint64_t suppressed = 0;
        if (limiter.Allow(0, SteadyNs(), &suppressed)) {
          spdlog::warn("mesh: refused a connection from {} with key {}: {} ({}){}",
                       address.empty() ? "?" : address,
                       reply.client_key.empty() ? "-" : reply.client_key, reply.status_text,
                       keys_.path(),
                       suppressed > 0 ? fmt::format(" [{} more refusals not logged]", suppressed)
                                      : "");
        }
      }
      rep_.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
      rep_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
      rep_.send(zmq::buffer(reply.status_code), zmq::send_flags::sndmore);
      rep_.send(zmq::buffer(reply.status_text), zmq::send_flags::sndmore);
      rep_.send(zmq::buffer(reply.user_id), zmq::send_flags::sndmore);
      rep_.send(zmq::buffer(reply.metadata), zmq::send_flags::none);
    }
  } catch (const zmq::error_t& e) {
    // The listening socket enforces the ZAP domain, so without this thread every handshake
    // is refused: the mesh fails closed, never open.
    if (e.num() != ETERM) {
      spdlog::error("mesh: ZAP handler stopped ({}): no peer can connect until augurd restarts",
                    e.what());
    }
  }
  rep_.close();
  stop_rx_.close();
}

}  // namespace augur::mesh
