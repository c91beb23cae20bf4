#include "agent/http_server.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <list>
#include <optional>
#include <thread>
#include <utility>

namespace augur::agent {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// "[::1]:9464" for IPv6 hosts, "127.0.0.1:9464" otherwise: how users write it.
std::string FormatHostPort(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", hp.host, hp.port);
  return fmt::format("{}:{}", hp.host, hp.port);
}

class HttpSession;

// What the sessions share with the server.
struct Shared {
  HttpHandler handler;
  HttpServerOptions options;
  // Live sessions, open or closing, oldest first; server thread only.
  std::list<HttpSession*> sessions;
  // Written on the server thread, read by stats() on any.
  std::atomic<uint64_t> open{0};
  std::atomic<uint64_t> peak{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> evicted{0};
  std::atomic<uint64_t> refused{0};
};

// One connection: read a request, answer it, and again while the client keeps it open.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Shared& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {
    beast::error_code ec;
    peer_ = stream_.socket().remote_endpoint(ec).address();  // unspecified if it left already
    self_ = server_.sessions.insert(server_.sessions.end(), this);
    server_.open.fetch_add(1, std::memory_order_relaxed);
  }
  ~HttpSession() {
    MarkClosed();
    server_.sessions.erase(self_);
  }

  void Start() { Read(); }

  // Open: its socket is not closed yet. Waiting: open and without a whole request head yet
  // (since it was accepted or since its previous response), so it may be evicted.
  bool open() const { return open_; }
  bool waiting() const { return open_ && waiting_; }
  Clock::time_point waiting_since() const { return waiting_since_; }
  const asio::ip::address& peer() const { return peer_; }
  // Has sent anything since it was accepted: a request before, or part of one now.
  bool heard_from() const {
    return requests_ > 0 || buffer_.size() > 0 || (parser_ && parser_->got_some());
  }

  // Closes a waiting connection to make room for a new one. The client gets no answer: it
  // has not asked anything yet, and an idle keep-alive client expects the close anyway.
  void Evict() {
    server_.evicted.fetch_add(1, std::memory_order_relaxed);
    Close();
  }

  // Answers `status` without reading a request, then closes (the connection cap).
  void Refuse(int status, std::string_view detail) {
    Reply(MakeError(status, detail, 11), /*close=*/true);
  }

  // Cancels whatever is pending; its handler then ends the session.
  void Cancel() {
    beast::error_code ec;
    stream_.socket().close(ec);
    MarkClosed();
  }

 private:
  using Response = http::response<http::string_body>;

  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(server_.options.max_body_bytes);
    waiting_ = true;
    waiting_since_ = Clock::now();
    // One deadline for the whole head (and small body), not per read: a client that
    // trickles a byte at a time is cut when it runs out, however often it sends.
    stream_.expires_after(server_.options.header_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    const HttpServerOptions& o = server_.options;
    if (ec == http::error::header_limit) {
      const std::string why = fmt::format("request head over {} bytes", o.max_header_bytes);
      return Reply(MakeError(431, why, 11), /*close=*/true);
    }
    if (ec == http::error::body_limit) {
      const std::string why = fmt::format("request body over {} bytes", o.max_body_bytes);
      return Reply(MakeError(413, why, 11), /*close=*/true);
    }
    // Beast's parse errors share one category (bad_method's); of those, end_of_stream and
    // partial_message mean the client went away, not that it sent garbage.
    const bool parse_error =
        ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message;
    if (parse_error) {
      return Reply(MakeError(400, "malformed request: " + ec.message(), 11), /*close=*/true);
    }
    if (ec) return Close();  // the client left, timed out, was evicted, or the server stops
    waiting_ = false;        // being answered from here on: never evicted
    ++requests_;
    const http::request<http::string_body>& req = parser_->get();
    const unsigned version = req.version();  // 10 or 11: Beast's parser takes only HTTP/1.x
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
      Response res = MakeError(405, "only GET and HEAD are served", version);
      res.set(http::field::allow, "GET, HEAD");
      return Reply(std::move(res), /*close=*/true);
    }
    HttpRequest request;
    request.method = req.method() == http::verb::head ? "HEAD" : "GET";
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
    HttpResponse answer = server_.handler(request);

    Response res{static_cast<http::status>(answer.status), version};
    res.set(http::field::content_type, answer.content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(answer.body);
    res.prepare_payload();
    if (request.method == "HEAD") res.body().clear();  // Content-Length stays the GET's
    Reply(std::move(res), /*close=*/!req.keep_alive());
  }

  static Response MakeError(int status, std::string_view detail, unsigned version) {
    Response res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.keep_alive(false);
    res.body() = fmt::format("{} {}: {}\n", status,
                             std::string_view(http::obsolete_reason(res.result())), detail);
    res.prepare_payload();
    return res;
  }

  void Reply(Response res, bool close) {
    waiting_ = false;
    response_ = std::move(res);
    stream_.expires_after(server_.options.write_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this(), close](beast::error_code ec, size_t) {
                        if (ec || close) return self->Close();
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
    MarkClosed();
  }

  void MarkClosed() {
    if (!open_) return;
    open_ = false;
    server_.open.fetch_sub(1, std::memory_order_relaxed);
  }

  Shared& server_;
  asio::ip::address peer_;
  bool open_ = true;
  bool waiting_ = false;
  uint64_t requests_ = 0;
  Clock::time_point waiting_since_ = Clock::now();
  std::list<HttpSession*>::iterator self_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Response response_;
};

}  // namespace

struct HttpServer::Impl {
  // Declared before `ioc`: still there when destroying the io_context destroys the
  // sessions its pending handlers hold.
  Shared shared;
  int port = 0;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  asio::steady_timer retry{ioc};  // after a failed accept (out of descriptors, ...)
  std::thread thread;

  void Accept();
  // Makes room for `fresh` (just accepted) under the caps by evicting, or returns false
  // when only answering connections stand in the way.
  bool MakeRoom(const HttpSession& fresh);
};

bool HttpServer::Impl::MakeRoom(const HttpSession& fresh) {
  const HttpServerOptions& o = shared.options;
  // Whether `a` should be evicted before `b`: the one waiting longer, except that a
  // connection that has sent nothing at all since it was accepted goes after those that
  // have (a stalled head, an idle keep-alive). Without that exception, clients reopening
  // stalled connections as fast as they are closed (each one evicting the oldest) would
  // push a newcomer out in the moment between its connect and its request.
  auto before = [](const HttpSession* a, const HttpSession* b) {
    if (a->heard_from() != b->heard_from()) return a->heard_from();
    return a->waiting_since() < b->waiting_since();
  };
  // The open connections other than `fresh`, optionally only those from its address, and
  // the waiting one of them to evict first (null if none waits).
  auto scan = [&](bool same_peer, size_t* count) {
    HttpSession* victim = nullptr;
    *count = 0;
    for (HttpSession* s : shared.sessions) {
      if (s == &fresh || !s->open() || (same_peer && s->peer() != fresh.peer())) continue;
      ++*count;
      if (s->waiting() && (victim == nullptr || before(s, victim))) victim = s;
    }
    return victim;
  };
  size_t count = 0;
  HttpSession* victim = scan(/*same_peer=*/true, &count);
  if (count >= o.max_connections_per_client) {
    if (victim == nullptr) return false;
    victim->Evict();
  }
  victim = scan(/*same_peer=*/false, &count);
  if (count >= o.max_connections) {
    if (victim == nullptr) return false;
    victim->Evict();
  }
  return true;
}

void HttpServer::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;  // stopping
    if (ec) {
      // Out of descriptors or memory: accepting again at once would spin on the same
      // error. The pending connection waits in the backlog meanwhile.
      retry.expires_after(std::chrono::milliseconds(100));
      retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor.is_open()) Accept();
      });
      return;
    }
    auto session = std::make_shared<HttpSession>(shared, std::move(socket));
    shared.accepted.fetch_add(1, std::memory_order_relaxed);
    if (!MakeRoom(*session)) {
      shared.refused.fetch_add(1, std::memory_order_relaxed);
      session->Refuse(503, "too many connections, all of them being answered");
    } else {
      const uint64_t now_open = shared.open.load(std::memory_order_relaxed);
      if (now_open > shared.peak.load(std::memory_order_relaxed)) {
        shared.peak.store(now_open, std::memory_order_relaxed);
      }
      session->Start();
    }
    Accept();
  });
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HostPort& at, HttpHandler handler,
                                                      HttpServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->shared.handler = std::move(handler);
  impl->shared.options = options;
  const std::string where = FormatHostPort(at);

  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  auto endpoints = resolver.resolve(at.host, std::to_string(at.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) {
    return Err(Status::IOError(
        fmt::format("cannot listen on {}: cannot resolve '{}': {}", where, at.host, ec.message())));
  }
  std::string reason = "no address to bind";
  for (const auto& entry : endpoints) {
    tcp::acceptor& a = impl->acceptor;
    a.open(entry.endpoint().protocol(), ec);
    // SO_REUSEADDR lets a restarted agent bind while old connections sit in TIME_WAIT. Not
    // SO_REUSEPORT: with it a second agent would bind the same port without error and the
    // kernel would split the scrapes between the two.
    if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(entry.endpoint(), ec);
    if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) break;
    reason = ec.message();
    beast::error_code ignored;
    a.close(ignored);
  }
  if (!impl->acceptor.is_open()) {
    return Err(Status::IOError(fmt::format("cannot listen on {}: {}", where, reason)));
  }
  impl->port = impl->acceptor.local_endpoint(ec).port();
  if (ec) {
    return Err(Status::IOError(fmt::format("cannot listen on {}: {}", where, ec.message())));
  }
  impl->Accept();
  Impl* self = impl.get();  // outlives the thread: Stop() joins before Impl dies
  impl->thread = std::thread([self] { self->ioc.run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  asio::post(m.ioc, [&m] {
    beast::error_code ec;
    m.acceptor.close(ec);
    m.retry.cancel();
    for (HttpSession* s : m.shared.sessions) s->Cancel();
  });
  // Whatever the cancelled handlers have not finished by then is destroyed with the
  // io_context; nothing waits on a client.
  asio::post(m.ioc, [&m] { m.ioc.stop(); });
  m.thread.join();
}

int HttpServer::port() const { return impl_->port; }

HttpServerStats HttpServer::stats() const {
  const Shared& s = impl_->shared;
  HttpServerStats out;
  out.connections = s.open.load(std::memory_order_relaxed);
  out.peak_connections = s.peak.load(std::memory_order_relaxed);
  out.accepted = s.accepted.load(std::memory_order_relaxed);
  out.evicted = s.evicted.load(std::memory_order_relaxed);
  out.refused = s.refused.load(std::memory_order_relaxed);
  return out;
}

}  // namespace augur::agent
