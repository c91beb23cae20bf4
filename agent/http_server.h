// HttpServer: the small HTTP/1.1 server behind augurd's read-only endpoints (/metrics).
//
// What it does: GET and HEAD, persistent connections (HTTP/1.1 keep-alive, pipelining),
// Content-Length responses. What it refuses, with a status and a closed connection: other
// methods (405, with Allow), malformed request lines (400), header blocks over
// `max_header_bytes` (431), more than `max_connections` clients (503). A request body is
// never read: a request that announces one is answered and its connection closed. No TLS,
// no chunked or compressed bodies: a scraper on the host or the LAN needs none of it, and
// leaving them out keeps OpenSSL, zlib and brotli out of a daemon that runs as root.
//
// One thread serves every connection from a poll() loop, so a slow client holds only its
// own connection (until `request_timeout`), never the others. Handlers run on that thread
// and must not block for long.
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
  // From a request's first byte to its last header line; also how long a response may take
  // to drain to a client that stopped reading.
  std::chrono::milliseconds request_timeout{5000};
  // An idle persistent connection is closed after this.
  std::chrono::milliseconds idle_timeout{5000};
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

// "[::1]:9464" for IPv6 hosts, "127.0.0.1:9464" otherwise: how users write it.
std::string FormatHostPort(const HostPort& hp);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_HTTP_SERVER_H_
