// HttpServer over raw sockets: the framing cases a well-behaved client library never sends.
#include "agent/http_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace augur::agent {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using namespace std::chrono_literals;

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    auto server = HttpServer::Start(
        HostPort{"127.0.0.1", 0},
        [this](const HttpRequest& req) {
          ++handled_;
          HttpResponse r;
          if (req.path == "/big") {
            r.body.assign(1 << 20, 'x');
          } else {
            r.body = req.method + " " + req.path + " ?" + req.query;
          }
          return r;
        },
        options);
    ASSERT_TRUE(server) << server.error().ToString();
    server_ = std::move(*server);
  }

  // A connected client socket, or -1.
  int Connect() const {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(server_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  static void Send(int fd, const std::string& s) {
    ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  // Reads until the peer closes or `wait` passes without data. `closed` says which.
  static std::string ReadAll(int fd, std::chrono::milliseconds wait, bool* closed = nullptr) {
    std::string out;
    char buf[65536];
    while (true) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) {
        if (closed) *closed = false;
        return out;
      }
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

  // Reads `n` whole responses (head plus Content-Length bytes) from a connection that stays
  // open, waiting up to 5 s for them: no idle gap is taken for the end.
  static std::string ReadResponses(int fd, int n, bool head_only = false) {
    std::string out;
    size_t at = 0;  // start of the response being read
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (n > 0) {
      const size_t end = out.find("\r\n\r\n", at);
      if (end != std::string::npos) {
        const size_t cl = out.find("Content-Length: ", at);
        const size_t len = head_only || cl == std::string::npos || cl > end
                               ? 0
                               : std::stoul(out.substr(cl + 16));
        if (out.size() >= end + 4 + len) {
          at = end + 4 + len;
          --n;
          continue;
        }
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t got = recv(fd, buf, sizeof buf, 0);
      if (got <= 0) break;
      out.append(buf, static_cast<size_t>(got));
    }
    return out;
  }

  std::unique_ptr<HttpServer> server_;
  std::atomic<int> handled_{0};
};

TEST_F(HttpServerTest, GetAndHeadWithQuery) {
  StartServer();
  int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "GET /metrics?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string r = ReadResponses(fd, 1);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 17\r\n"));
  EXPECT_THAT(r, Not(HasSubstr("Connection: close")));  // HTTP/1.1: kept open
  EXPECT_THAT(r, EndsWith("\r\n\r\nGET /metrics ?x=1"));
  // HEAD: the same headers, no body.
  Send(fd, "HEAD /metrics HTTP/1.1\r\n\r\n");
  r = ReadResponses(fd, 1, /*head_only=*/true);
  EXPECT_THAT(r, HasSubstr("Content-Length: 15\r\n"));  // "HEAD /metrics ?"
  EXPECT_THAT(r, EndsWith("\r\n\r\n"));
  close(fd);
}

TEST_F(HttpServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(
      fd,
      "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n");
  bool closed = false;
  std::string r = ReadAll(fd, 2000ms, &closed);
  EXPECT_TRUE(closed) << "Connection: close was not honoured";
  const size_t a = r.find("GET /a ?"), b = r.find("GET /b ?"), c = r.find("GET /c ?");
  ASSERT_NE(a, std::string::npos) << r;
  ASSERT_NE(b, std::string::npos) << r;
  ASSERT_NE(c, std::string::npos) << r;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_THAT(r, HasSubstr("Connection: close\r\n"));
  close(fd);
}

TEST_F(HttpServerTest, Http10ClosesUnlessKeepAliveIsAsked) {
  StartServer();
  int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.0\r\n\r\n");
  bool closed = false;
  std::string r = ReadAll(fd, 2000ms, &closed);
  EXPECT_TRUE(closed);  // HTTP/1.0 closes by default: no header needed to say so
  EXPECT_THAT(r, StartsWith("HTTP/1.0 200 OK\r\n"));
  close(fd);

  fd = Connect();
  Send(fd, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
  r = ReadResponses(fd, 1);
  EXPECT_THAT(r, HasSubstr("Connection: keep-alive\r\n"));
  ReadAll(fd, 100ms, &closed);
  EXPECT_FALSE(closed) << "a keep-alive HTTP/1.0 connection was closed";
  close(fd);
}

TEST_F(HttpServerTest, BadRequestsGetAStatusAndAClosedConnection) {
  StartServer();
  struct Case {
    std::string request;
    std::string status_line;
  };
  const Case cases[] = {
      {"garbage\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET /\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET / HTTP/2.0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"GET / HTTP/1.1\r\nno colon here\r\n\r\n", "HTTP/1.1 400 Bad Request"},
      {"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", "HTTP/1.1 405 Method Not Allowed"},
      {"GET / HTTP/1.1\r\nX: " + std::string(10000, 'a') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large"},
      {"GET / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + std::string(5000, 'b'),
       "HTTP/1.1 413 Payload Too Large"},
  };
  for (const Case& c : cases) {
    int fd = Connect();
    ASSERT_GE(fd, 0);
    Send(fd, c.request);
    bool closed = false;
    std::string r = ReadAll(fd, 2000ms, &closed);
    EXPECT_THAT(r, StartsWith(c.status_line + "\r\n")) << c.request.substr(0, 40);
    EXPECT_TRUE(closed) << c.request.substr(0, 40);
    close(fd);
  }
  EXPECT_EQ(handled_, 0);
  int fd = Connect();
  Send(fd, "DELETE / HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadAll(fd, 2000ms), HasSubstr("Allow: GET, HEAD\r\n"));
  close(fd);
}

TEST_F(HttpServerTest, ASmallRequestBodyIsReadAndIgnored) {
  StartServer();
  int fd = Connect();
  ASSERT_GE(fd, 0);
  // The body is consumed, so the next request on the connection parses cleanly.
  Send(fd, "GET /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n");
  std::string r = ReadResponses(fd, 2);
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("GET /a ?"));
  EXPECT_THAT(r, EndsWith("GET /b ?"));
  close(fd);
}

TEST_F(HttpServerTest, ASlowClientNeitherBlocksOthersNorStaysForever) {
  HttpServerOptions o;
  o.timeout = 300ms;
  StartServer(o);
  int slow = Connect();
  ASSERT_GE(slow, 0);
  Send(slow, "GET / HT");  // and nothing more
  int fast = Connect();
  ASSERT_GE(fast, 0);
  Send(fast, "GET /fast HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadResponses(fast, 1), EndsWith("GET /fast ?"));
  bool closed = false;
  ReadAll(slow, 3000ms, &closed);
  EXPECT_TRUE(closed) << "a stuck request kept its connection past the timeout";
  close(slow);
  close(fast);
}

TEST_F(HttpServerTest, IdleConnectionsAreClosed) {
  HttpServerOptions o;
  o.timeout = 200ms;
  StartServer(o);
  int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "GET / HTTP/1.1\r\n\r\n");
  bool closed = false;
  const auto t0 = std::chrono::steady_clock::now();
  std::string r = ReadAll(fd, 3000ms, &closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_THAT(r, EndsWith("GET / ?"));
  close(fd);
}

TEST_F(HttpServerTest, ConnectionsOverTheCapGet503) {
  HttpServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  int a = Connect(), b = Connect();
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  Send(a, "GET /a HTTP/1.1\r\n\r\n");  // both are being served...
  Send(b, "GET /b HTTP/1.1\r\n\r\n");
  EXPECT_THAT(ReadResponses(a, 1), EndsWith("GET /a ?"));
  EXPECT_THAT(ReadResponses(b, 1), EndsWith("GET /b ?"));
  int c = Connect();  // ...so a third is refused
  ASSERT_GE(c, 0);
  bool closed = false;
  EXPECT_THAT(ReadAll(c, 2000ms, &closed), StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_TRUE(closed);
  close(a);
  close(b);
  close(c);
}

TEST_F(HttpServerTest, ALargeResponseReachesALateReaderWhole) {
  StartServer();
  int fd = Connect();
  ASSERT_GE(fd, 0);
  Send(fd, "GET /big HTTP/1.1\r\nConnection: close\r\n\r\n");
  // 1 MiB is more than the loopback socket buffers hold: the server fills them, waits for
  // POLLOUT and goes on as the reader drains them.
  std::this_thread::sleep_for(100ms);
  bool closed = false;
  std::string r = ReadAll(fd, 2000ms, &closed);
  EXPECT_TRUE(closed);
  const size_t body = r.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(r.size() - body - 4, size_t{1} << 20);
  close(fd);
}

TEST_F(HttpServerTest, StopIsPromptWithClientsConnected) {
  StartServer();
  int idle = Connect();
  int partial = Connect();
  ASSERT_GE(idle, 0);
  ASSERT_GE(partial, 0);
  Send(partial, "GET / HTTP/1.1\r\n");
  std::this_thread::sleep_for(50ms);
  const auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  bool closed = false;
  ReadAll(idle, 1000ms, &closed);
  EXPECT_TRUE(closed);
  server_->Stop();  // idempotent
  close(idle);
  close(partial);
}

TEST(HttpServerStartTest, BindErrorsNameTheAddressAndTheReason) {
  auto first = HttpServer::Start(HostPort{"127.0.0.1", 0},
                                 [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_TRUE(first);
  const HostPort taken{"127.0.0.1", static_cast<uint16_t>((*first)->port())};
  auto second = HttpServer::Start(taken, [](const HttpRequest&) { return HttpResponse{}; });
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "cannot listen on 127.0.0.1:" + std::to_string(taken.port) +
                                          ": Address already in use");
}

}  // namespace
}  // namespace augur::agent
