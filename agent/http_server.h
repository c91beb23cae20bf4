// HttpServer: the HTTP/1.1 server behind augurd's read-only endpoints (/metrics), on
// Boost.Beast and Boost.Asio (header-only, in libboost-dev: no OpenSSL, zlib or brotli in
// a daemon that runs as root and serves one plain GET).
//
// What it does: GET and HEAD, persistent connections (HTTP/1.1 keep-alive, pipelining).
// What it refuses, with a status and a closed connection: other methods (405, with Allow),
// malformed requests (400), request heads over `max_header_bytes` (431), bodies over
// `max_body_bytes` (413), more than `max_connections` clients at once (503). A request with
// a body is answered and its connection closed.
//
// One thread serves every connection asynchronously, so a slow client holds only its own
// connection (until `timeout`), never the others. Handlers run on that thread and must not
// block for long.
//
// Thread safety: Start/Stop/port from any one thread; the handler runs on the server's.
#ifndef AUGUR_AGENT_HTTP_SERVER_H_
#define AUGUR_AGENT_HTTP_SERVER_H_

#include <chrono>
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
  size_t max_connections = 32;
  size_t max_header_bytes = 8192;
  size_t max_body_bytes = 4096;
  // A connection is closed when it has not sent a whole request within this (counted from
  // the previous response, so it is also the idle limit of a persistent connection), or
  // has not taken a response within it.
  std::chrono::milliseconds timeout{5000};
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

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_HTTP_SERVER_H_
