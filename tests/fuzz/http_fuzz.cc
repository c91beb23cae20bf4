// Fuzzes the request path of augur::agent::HttpServer (agent/http_server.cc, Boost.Beast)
// through a real server on a loopback port: each input is sent as the bytes of one
// connection, the write side is shut, and the response is read until the server closes.
// A server that neither answers nor closes within the time limit is a hang (abort); any
// answer must be an HTTP/1.x response.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "agent/http_server.h"

namespace {

using augur::agent::HttpServer;

HttpServer* g_server = nullptr;

// The real handler's shape (agent/metrics_server.cc): /metrics and / answer, the rest 404.
augur::agent::HttpResponse Handle(const augur::agent::HttpRequest& req) {
  augur::agent::HttpResponse r;
  if (req.path == "/metrics") {
    r.body = "# TYPE up gauge\nup 1\n";
  } else if (req.path == "/") {
    r.content_type = "text/html";
    r.body = "<a href=\"/metrics\">metrics</a>\n";
  } else {
    r.status = 404;
    r.body = "not found: " + req.path + (req.query.empty() ? "" : "?" + req.query) + "\n";
  }
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  augur::agent::HttpServerOptions opts;
  opts.header_timeout = std::chrono::milliseconds(2000);
  opts.write_timeout = std::chrono::milliseconds(2000);
  auto s = HttpServer::Start({"127.0.0.1", 0}, Handle, opts);
  if (!s) {
    std::fprintf(stderr, "http_fuzz: %s\n", s.error().ToString().c_str());
    std::abort();
  }
  g_server = s->release();  // lives until exit: the fuzzer never returns to tear it down
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(g_server->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // A refused or interrupted connect is the client's problem (say, ephemeral ports in
  // TIME_WAIT after thousands of inputs), not the server's: retry a few times.
  int rc = -1;
  for (int attempt = 0; attempt < 50 && rc != 0; ++attempt) {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (rc != 0) usleep(10'000);
  }
  if (rc != 0) {
    std::fprintf(stderr, "http_fuzz: cannot connect to the server: %s\n", std::strerror(errno));
    std::abort();
  }
  // Longer than the server's own 2 s timeout: only a server that ignores it trips this.
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  size_t sent = 0;
  while (sent < size) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server answered early (e.g. 431) and closed: fine
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string got;
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      std::fprintf(stderr, "http_fuzz: no answer and no close within 5 s\n");
      std::abort();
    }
    break;  // closed (or reset after an early answer)
  }
  close(fd);
  if (!got.empty() && got.compare(0, 7, "HTTP/1.") != 0) {
    std::fprintf(stderr, "http_fuzz: answer is not an HTTP/1.x response: %.40s\n", got.c_str());
    std::abort();
  }
  return 0;
}
