// HttpServer: the HTTP/1.1 server behind augurd's read-only endpoints (/metrics), on
// Boost.Beast and Boost.Asio (header-only, in libboost-dev: no OpenSSL, zlib or brotli in
// a daemon that runs as root and serves one plain GET).
//
// What it does: GET and HEAD, persistent connections (HTTP/1.1 keep-alive, pipelining).
// What it refuses, with a status and a closed connection: other methods (405, with Allow),
// malformed requests (400), request heads over `max_header_bytes` (431), bodies over
// `max_body_bytes` (413). A request with a body is answered and its connection closed.
//
// Connection limits, made so that a few misbehaving clients (slowloris: request heads sent
// slowly or never finished; idle keep-alive connections) cannot starve a well-behaved
// scraper. A connection is *waiting* while it has not sent a whole request head (since it
// was accepted or since its previous response) and *answering* while its request is being
// answered. A waiting connection is closed after `header_timeout`. When a new connection
// would exceed `max_connections`, or its peer address's `max_connections_per_client`, the
// new one is served and the waiting connection that has waited longest (of all, or of that
// address) is closed instead: an eviction. Connections that have sent nothing at all since
// they were accepted are evicted last, so that stalled connections reopened as fast as
// they are closed cannot push a newcomer out before it has sent its request. An answering
// connection is never evicted; only when no waiting one is left to close is the new
// connection refused (503). So at most `max_connections` are open, plus, briefly, one
// being told 503.
//
// One thread serves every connection asynchronously, so a slow client holds only its own
// connection, never the others. Handlers run on that thread and must not block for long.
//
// Thread safety: Start/Stop/port from any one thread; stats() from any thread; the handler
// runs on the server's.
#ifndef AUGUR_AGENT_HTTP_SERVER_H_
#define AUGUR_AGENT_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/config.h"
#include "augur/status.h"

namespace augur::agent {

struct HttpRequest {
  std::string method;  // "GET" or "HEAD" (others never reach the handler)
  std::string path;    // the request target up to '?', e.g. "/metrics"
  std::string query;   // after '?', without it; may be empty
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  // Connections open at once, and from one peer IP address. See the top of this file.
  size_t max_connections = 64;
  size_t max_connections_per_client = 8;
  size_t max_header_bytes = 8192;
  size_t max_body_bytes = 4096;
  // A connection is closed when it has not sent a whole request head within this, counted
  // from when it was accepted or from its previous response (so it is also the idle limit
  // of a persistent connection). A small body must follow within the same time.
  std::chrono::milliseconds header_timeout{2000};
  // A connection is closed when it has not taken a whole response within this.
  std::chrono::milliseconds write_timeout{5000};
};

// Counters since Start; read with HttpServer::stats().
struct HttpServerStats {
  uint64_t connections = 0;       // open now
  uint64_t peak_connections = 0;  // most open at once (after evictions)
  uint64_t accepted = 0;
  uint64_t evicted = 0;  // waiting connections closed to make room for a new one
  uint64_t refused = 0;  // new connections answered 503: everything open was answering
};

class HttpServer {
 public:
  // Binds and listens on `at` before returning (the error names the address and the
  // reason: "cannot listen on 127.0.0.1:9464: Address already in use"), then serves on a
  // thread of its own. Port 0 binds a free port: see port().
  static Result<std::unique_ptr<HttpServer>> Start(const HostPort& at, HttpHandler handler,
                                                   HttpServerOptions options = {});
  // Stop()s.
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Closes the listening socket and every connection (a response being written is cut
  // short) and joins the thread: prompt whatever the clients do. Idempotent.
  void Stop();

  // The bound port (the chosen one when Start was given port 0).
  int port() const;

  // A consistent-enough snapshot of the counters (each read atomically). Any thread.
  HttpServerStats stats() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_HTTP_SERVER_H_
