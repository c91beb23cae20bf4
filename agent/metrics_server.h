// MetricsServer: the HTTP endpoint Prometheus scrapes. It serves
//
//   GET /metrics  the latest point of every series in the shared-memory store, in the text
//                 format (see prometheus_text.h); 503 with a one-line reason while there is
//                 no segment to read
//   GET /         a short page pointing at /metrics
//   other paths   404; other methods 405 (HEAD is served like GET, without the body)
//
// It reads the store through its own ShmReader, opened at the first scrape and re-attached
// (ShmReader::Refresh) when the agent re-creates the segment, so it works the same inside
// augurd and in a separate process, and starts fine before the segment exists.
//
// Served by HttpServer (http_server.h): GET and HEAD, keep-alive, one thread.
//
// Thread safety: requests are served on the HTTP server's one thread, which alone uses the
// reader. Stop() and the destructor may be called from any one thread, not concurrently.
#ifndef AUGUR_AGENT_METRICS_SERVER_H_
#define AUGUR_AGENT_METRICS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "augur/status.h"

namespace augur::agent {

// The connection limits of the HTTP server (see http_server.h); the config's metrics.*.
struct MetricsServerOptions {
  size_t max_connections = 64;
  size_t max_connections_per_client = 8;
  std::chrono::milliseconds header_timeout{2000};
};

class MetricsServer {
 public:
  // Binds `listen` ("host:port" or "[v6addr]:port", see ParseHostPort) before returning, so
  // a bad address or a port in use is the returned Status (naming the address and the
  // reason), never a later surprise; then serves on a thread of its own. Port 0 binds a
  // free port: see port(). `shm_name` is the store's segment name.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                      std::string shm_name,
                                                      const MetricsServerOptions& options = {});
  // Stop()s.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Closes the listening socket and every connection and joins the thread: prompt, with or
  // without scrapers connected. Idempotent.
  void Stop();

  // The bound port (the chosen one when Start was given port 0).
  int port() const;

  // Waiting connections closed to make room for new ones since Start (a sign of clients
  // holding connections open without asking anything). Any thread.
  uint64_t evictions() const;

 private:
  struct Impl;
  explicit MetricsServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_METRICS_SERVER_H_
