#include "agent/metrics_server.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "agent/config.h"
#include "agent/http_server.h"
#include "agent/prometheus_text.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

constexpr char kIndexPage[] =
    "<!DOCTYPE html>\n<html><head><title>augur</title></head><body>\n"
    "<h1>augur</h1>\n<p><a href=\"/metrics\">/metrics</a>: the latest value of every series "
    "this host's agent measures, in the Prometheus text format.</p>\n</body></html>\n";

}  // namespace

struct MetricsServer::Impl {
  std::string shm_name;
  std::unique_ptr<HttpServer> http;
  // Used on the HTTP server's one thread only.
  std::unique_ptr<telemetry::ShmReader> reader;  // null until a segment opens
  std::string last_problem;                      // to log each change once

  HttpResponse Handle(const HttpRequest& req);
  HttpResponse ServeMetrics();
  // Returns the reader, opened or re-attached as needed, or sets `problem`.
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

HttpResponse MetricsServer::Impl::ServeMetrics() {
  std::string problem;
  telemetry::ShmReader* r = AttachedReader(&problem);
  // Logged on change only: Prometheus scrapes every few seconds, and one line per scrape
  // would bury the journal while the agent is down.
  if (problem != last_problem) {
    if (!problem.empty()) spdlog::warn("/metrics: {}", problem);
    if (problem.empty()) spdlog::info("/metrics: reading segment '{}'", shm_name);
    last_problem = problem;
  }
  HttpResponse res;
  if (r == nullptr) {
    // 503, not 500 or an empty 200: Prometheus then records the target as down (up == 0)
    // rather than as a host with no series.
    res.status = 503;
    res.body = problem + "\n";
    return res;
  }
  res.content_type = kPrometheusContentType;
  res.body = RenderPrometheus(*r);
  return res;
}

HttpResponse MetricsServer::Impl::Handle(const HttpRequest& req) {
  if (req.path == "/metrics") return ServeMetrics();
  HttpResponse res;
  if (req.path == "/") {
    res.content_type = "text/html; charset=utf-8";
    res.body = kIndexPage;
    return res;
  }
  res.status = 404;
  res.body = fmt::format("404 not found: {} (try /metrics)\n", req.path);
  return res;
}

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

MetricsServer::~MetricsServer() { Stop(); }

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                            std::string shm_name,
                                                            const MetricsServerOptions& options) {
  Result<HostPort> hp = ParseHostPort(listen);
  if (!hp) return Err(hp.error());
  auto impl = std::make_unique<Impl>();
  impl->shm_name = std::move(shm_name);
  Impl* self = impl.get();  // outlives the HTTP thread: Stop() joins it before Impl dies
  HttpServerOptions ho;
  ho.max_connections = options.max_connections;
  ho.max_connections_per_client = options.max_connections_per_client;
  ho.header_timeout = options.header_timeout;
  auto http = HttpServer::Start(
      *hp, [self](const HttpRequest& req) { return self->Handle(req); }, ho);
  if (!http) return Err(http.error());
  impl->http = std::move(*http);
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(impl)));
}

void MetricsServer::Stop() {
  if (impl_->http) impl_->http->Stop();
}

int MetricsServer::port() const { return impl_->http->port(); }

uint64_t MetricsServer::evictions() const { return impl_->http->stats().evicted; }

}  // namespace augur::agent
