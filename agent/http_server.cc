#include "agent/http_server.h"

#include <fmt/format.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <list>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace augur::agent {
namespace {

using Clock = std::chrono::steady_clock;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool ContainsToken(std::string_view list, std::string_view token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view item = list.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    start = end + 1;
  }
  return false;
}

// One parsed request head, or the status to refuse it with.
struct ParsedHead {
  int error = 0;  // 0, or the status to answer (400, 405)
  HttpRequest request;
  bool keep_alive = false;
  bool has_body = false;  // announced a body we will not read: close after answering
};

ParsedHead ParseHead(std::string_view head) {
  ParsedHead p;
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    p.error = 400;
    return p;
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.empty() || !version.starts_with("HTTP/1.") || version.size() != 8) {
    p.error = 400;
    return p;
  }
  const bool http11 = version == "HTTP/1.1";
  p.keep_alive = http11;
  // Header fields: only the framing ones matter here.
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view field = head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      p.error = 400;
      return p;
    }
    std::string_view name = field.substr(0, colon);
    std::string_view value = field.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    if (EqualsIgnoreCase(name, "Connection")) {
      if (ContainsToken(value, "close")) p.keep_alive = false;
      if (!http11 && ContainsToken(value, "keep-alive")) p.keep_alive = true;
    } else if (EqualsIgnoreCase(name, "Content-Length")) {
      p.has_body |= value != "0";
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      p.has_body = true;
    }
  }
  if (p.has_body) p.keep_alive = false;
  if (method != "GET" && method != "HEAD") {
    p.error = 405;
    return p;
  }
  p.request.method = std::string(method);
  size_t q = target.find('?');
  p.request.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) p.request.query = std::string(target.substr(q + 1));
  return p;
}

std::string Serialize(const HttpResponse& r, bool head_only, bool keep_alive,
                      std::string_view extra_headers = {}) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n{}\r\n",
      r.status, Reason(r.status), r.content_type, r.body.size(),
      keep_alive ? "keep-alive" : "close", extra_headers);
  if (!head_only) out += r.body;
  return out;
}

std::string ErrorResponse(int status, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.body = fmt::format("{} {}: {}\n", status, Reason(status), detail);
  return Serialize(r, false, false, status == 405 ? "Allow: GET, HEAD\r\n" : "");
}

struct Connection {
  int fd = -1;
  std::string in;
  std::string out;
  size_t out_sent = 0;
  bool close_after_write = false;
  Clock::time_point deadline;
};

}  // namespace

std::string FormatHostPort(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", hp.host, hp.port);
  return fmt::format("{}:{}", hp.host, hp.port);
}

struct HttpServer::Impl {
  HttpHandler handler;
  HttpServerOptions options;
  int listen_fd = -1;
  int wake_fd = -1;  // eventfd: Stop() writes it to end the loop
  int port = 0;
  std::thread thread;
  std::list<Connection> conns;

  ~Impl() {
    for (Connection& c : conns) close(c.fd);
    if (listen_fd >= 0) close(listen_fd);
    if (wake_fd >= 0) close(wake_fd);
  }

  void Run();
  void Accept();
  // Reads what is there; answers complete requests. Returns false to drop the connection.
  bool OnReadable(Connection& c);
  // Answers every complete request in c.in (pipelining), until one closes the connection.
  void AnswerBuffered(Connection& c);
  // Writes what it can. Returns false to drop the connection.
  bool OnWritable(Connection& c);
};

void HttpServer::Impl::Run() {
  std::vector<pollfd> fds;
  std::vector<std::list<Connection>::iterator> index;
  while (true) {
    fds.clear();
    index.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    Clock::time_point next = Clock::time_point::max();
    for (auto it = conns.begin(); it != conns.end(); ++it) {
      const bool writing = it->out_sent < it->out.size();
      fds.push_back({it->fd, static_cast<short>(writing ? POLLOUT : POLLIN), 0});
      index.push_back(it);
      next = std::min(next, it->deadline);
    }
    int timeout = -1;
    if (next != Clock::time_point::max()) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
      timeout = static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
    }
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) return;  // nothing sane to do; Stop() still joins
    if (fds[0].revents != 0) return;
    if (fds[1].revents & POLLIN) Accept();
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < index.size(); ++i) {
      auto it = index[i];
      const short ev = fds[i + 2].revents;
      bool keep = true;
      if (ev & (POLLERR | POLLNVAL)) {
        keep = false;
      } else if (ev & POLLOUT) {
        keep = OnWritable(*it);
      } else if (ev & (POLLIN | POLLHUP)) {
        keep = OnReadable(*it);
      } else if (now >= it->deadline) {
        keep = false;  // idle, stuck mid-request, or not reading its response
      }
      if (!keep) {
        close(it->fd);
        conns.erase(it);
      }
    }
  }
}

void HttpServer::Impl::Accept() {
  while (true) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that went away before we took it
    if (conns.size() >= options.max_connections) {
      const std::string r = ErrorResponse(503, "too many connections");
      (void)!send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    Connection c;
    c.fd = fd;
    c.deadline = Clock::now() + options.idle_timeout;
    conns.push_back(std::move(c));
  }
}

bool HttpServer::Impl::OnReadable(Connection& c) {
  char buf[4096];
  while (true) {
    ssize_t got = recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
    if (got > 0) {
      if (c.in.empty()) c.deadline = Clock::now() + options.request_timeout;
      c.in.append(buf, static_cast<size_t>(got));
      if (c.in.size() > options.max_header_bytes + 4 + sizeof buf) break;
      continue;
    }
    if (got == 0) return false;  // the client closed
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return false;
  }
  AnswerBuffered(c);
  return c.out_sent < c.out.size() ? OnWritable(c) : !c.close_after_write;
}

void HttpServer::Impl::AnswerBuffered(Connection& c) {
  while (!c.close_after_write) {
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c.in.size() > options.max_header_bytes) {
        c.out += ErrorResponse(431, fmt::format("request head over {} bytes",
                                                options.max_header_bytes));
        c.close_after_write = true;
      }
      return;
    }
    if (end + 4 > options.max_header_bytes) {
      c.out += ErrorResponse(431, fmt::format("request head over {} bytes",
                                              options.max_header_bytes));
      c.close_after_write = true;
      return;
    }
    ParsedHead p = ParseHead(std::string_view(c.in).substr(0, end + 2));
    c.in.erase(0, end + 4);
    if (p.error == 400) {
      c.out += ErrorResponse(400, "malformed request line or header");
      c.close_after_write = true;
      return;
    }
    if (p.error == 405) {
      c.out += ErrorResponse(405, "only GET and HEAD are served");
      c.close_after_write = true;
      return;
    }
    HttpResponse r = handler(p.request);
    c.out += Serialize(r, p.request.method == "HEAD", p.keep_alive);
    if (!p.keep_alive) c.close_after_write = true;
  }
}

bool HttpServer::Impl::OnWritable(Connection& c) {
  while (c.out_sent < c.out.size()) {
    ssize_t put = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (put > 0) {
      c.out_sent += static_cast<size_t>(put);
      c.deadline = Clock::now() + options.request_timeout;
      continue;
    }
    if (put < 0 && errno == EINTR) continue;
    if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    return false;
  }
  c.out.clear();
  c.out_sent = 0;
  if (c.close_after_write) return false;
  c.deadline = Clock::now() + (c.in.empty() ? options.idle_timeout : options.request_timeout);
  // Requests that arrived while the response was being written (pipelining).
  if (!c.in.empty()) {
    AnswerBuffered(c);
    if (!c.out.empty()) return OnWritable(c);
    return !c.close_after_write;
  }
  return true;
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HostPort& at, HttpHandler handler,
                                                      HttpServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->options = options;
  const std::string where = FormatHostPort(at);

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  const std::string service = std::to_string(at.port);
  if (int rc = getaddrinfo(at.host.c_str(), service.c_str(), &hints, &result); rc != 0) {
    return Err(Status::IOError(
        fmt::format("cannot listen on {}: cannot resolve '{}': {}", where, at.host,
                    gai_strerror(rc))));
  }
  std::string reason = "no address to bind";
  for (addrinfo* ai = result; ai != nullptr && impl->listen_fd < 0; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    // SO_REUSEADDR lets a restarted agent bind while old connections sit in TIME_WAIT.
    // Not SO_REUSEPORT: with it a second agent would bind the same port without error and
    // the kernel would split the scrapes between the two.
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      reason = std::strerror(errno);
      close(fd);
      continue;
    }
    impl->listen_fd = fd;
  }
  freeaddrinfo(result);
  if (impl->listen_fd < 0) {
    return Err(Status::IOError(fmt::format("cannot listen on {}: {}", where, reason)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  if (getsockname(impl->listen_fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
    return Err(Status::IOError(fmt::format("cannot listen on {}: getsockname: {}", where,
                                           std::strerror(errno))));
  }
  impl->port = ntohs(bound.ss_family == AF_INET6
                         ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                         : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->wake_fd < 0) {
    return Err(Status::IOError(fmt::format("HTTP server on {}: eventfd: {}", where,
                                           std::strerror(errno))));
  }
  Impl* self = impl.get();  // outlives the thread: Stop() joins before Impl dies
  impl->thread = std::thread([self] { self->Run(); });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  const uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof one);
  impl_->thread.join();
  for (Connection& c : impl_->conns) close(c.fd);
  impl_->conns.clear();
  close(impl_->listen_fd);
  impl_->listen_fd = -1;
}

int HttpServer::port() const { return impl_->port; }

}  // namespace augur::agent
