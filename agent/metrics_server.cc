#include "agent/metrics_server.h"

#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "agent/config.h"
#include "agent/prometheus_text.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

// "[::1]:9464" for IPv6 hosts, "127.0.0.1:9464" otherwise: how users wrote it.
std::string FormatAddress(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) return fmt::format("[{}]:{}", hp.host, hp.port);
  return fmt::format("{}:{}", hp.host, hp.port);
}

// httplib reports a failed bind as `false` and nothing else. Redo the bind with a socket of
// our own to learn why (the port is taken, the address is not on this host, ...): the
// failure is a startup error an operator has to act on, so the reason matters. The probe
// mirrors httplib (getaddrinfo with AI_PASSIVE, SO_REUSEADDR) so it fails the same way.
std::string BindFailureReason(const HostPort& hp) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* result = nullptr;
  std::string service = std::to_string(hp.port);
  if (int rc = getaddrinfo(hp.host.c_str(), service.c_str(), &hints, &result); rc != 0) {
    return fmt::format("cannot resolve '{}': {}", hp.host, gai_strerror(rc));
  }
  std::string reason = "the HTTP library could not bind it";
  for (addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    int rc = bind(fd, ai->ai_addr, ai->ai_addrlen);
    int err = errno;
    close(fd);
    if (rc != 0) {
      reason = std::strerror(err);
      break;
    }
  }
  freeaddrinfo(result);
  return reason;
}

constexpr char kIndexPage[] =
    "<!DOCTYPE html>\n<html><head><title>augur</title></head><body>\n"
    "<h1>augur</h1>\n<p><a href=\"/metrics\">/metrics</a>: the latest value of every series "
    "this host's agent measures, in the Prometheus text format.</p>\n</body></html>\n";

}  // namespace

struct MetricsServer::Impl {
  std::string shm_name;
  httplib::Server http;
  std::thread thread;
  std::atomic<bool> listen_returned{false};  // set by `thread` as it ends
  int port = 0;

  std::mutex mu;
  std::unique_ptr<telemetry::ShmReader> reader;  // GUARDED_BY(mu); null until a segment opens
  std::string last_problem;                      // GUARDED_BY(mu); to log each change once

  // Fills `res` for GET /metrics.
  void ServeMetrics(httplib::Response& res);
  // Returns the reader, opened or re-attached as needed, or sets `problem`. REQUIRES: mu held.
  telemetry::ShmReader* AttachedReader(std::string* problem);
};

telemetry::ShmReader* MetricsServer::Impl::AttachedReader(std::string* problem) {
  if (reader) {
    // Re-attaches when augurd restarted and made a new segment under the same name. An
    // error means the old mapping can no longer be trusted: drop it and open afresh.
    Result<bool> refreshed = reader->Refresh();
    if (refreshed) return reader.get();
    reader.reset();
  }
  Result<std::unique_ptr<telemetry::ShmReader>> opened = telemetry::ShmReader::Open(shm_name);
  if (!opened) {
    // The store's NotFound already names the segment and suggests checking on augurd.
    *problem = opened.error().IsNotFound() ? "no telemetry yet: " + opened.error().message()
                                           : opened.error().message();
    return nullptr;
  }
  reader = std::move(*opened);
  return reader.get();
}

void MetricsServer::Impl::ServeMetrics(httplib::Response& res) {
  std::lock_guard<std::mutex> lock(mu);
  std::string problem;
  telemetry::ShmReader* r = AttachedReader(&problem);
  // Logged on change only: Prometheus scrapes every few seconds, and one line per scrape
  // would bury the journal while the agent is down.
  if (problem != last_problem) {
    if (!problem.empty()) spdlog::warn("/metrics: {}", problem);
    if (problem.empty()) spdlog::info("/metrics: reading segment '{}'", shm_name);
    last_problem = problem;
  }
  if (r == nullptr) {
    // 503, not 500 or an empty 200: Prometheus then records the target as down (up == 0)
    // rather than as a host with no series.
    res.status = 503;
    res.set_content(problem + "\n", "text/plain; charset=utf-8");
    return;
  }
  res.status = 200;
  res.set_content(RenderPrometheus(*r), kPrometheusContentType);
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() { Stop(); }

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                            std::string shm_name) {
  Result<HostPort> hp = ParseHostPort(listen);
  if (!hp) return Err(hp.error());

  auto impl = std::make_unique<Impl>();
  impl->shm_name = std::move(shm_name);
  Impl* self = impl.get();  // outlives the server thread: Stop() joins before Impl dies
  impl->http.Get("/metrics", [self](const httplib::Request&, httplib::Response& res) {
    self->ServeMetrics(res);
  });
  impl->http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kIndexPage, "text/html; charset=utf-8");
  });
  // httplib answers unrouted paths with a bare 404; give it (and any other error without a
  // body) a line of text saying what to ask for instead.
  impl->http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      res.set_content(fmt::format("404 not found: {} (try /metrics)\n", req.path),
                      "text/plain; charset=utf-8");
    }
  });

  // httplib's default sets SO_REUSEPORT, with which a second agent (or anything else) binds
  // the same port without error and the kernel splits the scrapes between the two. Plain
  // SO_REUSEADDR still allows a restart while old connections sit in TIME_WAIT.
  impl->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // An idle keep-alive connection holds a worker until this timeout, and httplib's stop()
  // waits for the workers; the 5 s default would make every shutdown wait that long while
  // Prometheus is connected. Scrapes are seconds apart, so reconnecting each time costs
  // nothing.
  impl->http.set_keep_alive_timeout(1);

  // Bind here, on the caller's thread, so that failure is this call's result.
  if (hp->port == 0) {
    impl->port = impl->http.bind_to_any_port(hp->host);
    if (impl->port <= 0) impl->port = 0;
  } else if (impl->http.bind_to_port(hp->host, hp->port)) {
    impl->port = hp->port;
  }
  if (impl->port == 0) {
    return Err(Status::IOError(
        fmt::format("cannot listen on {}: {}", FormatAddress(*hp), BindFailureReason(*hp))));
  }

  impl->thread = std::thread([self] {
    self->http.listen_after_bind();
    self->listen_returned = true;
  });
  // httplib's stop() does nothing until listen_after_bind() has marked the server running,
  // so a Stop() that came too early would leave the thread accepting forever. Wait for it;
  // this takes microseconds.
  while (!impl->http.is_running() && !impl->listen_returned) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  if (impl->listen_returned) {
    impl->thread.join();
    return Err(Status::Internal(
        fmt::format("HTTP server on {} stopped as it started", FormatAddress(*hp))));
  }
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

void MetricsServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->http.stop();
  impl_->thread.join();
}

int MetricsServer::port() const { return impl_->port; }

}  // namespace augur::agent
