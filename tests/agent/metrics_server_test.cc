#include "agent/metrics_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "agent/prometheus_text.h"
#include "agent/temp_segment.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

using telemetry::SeriesKey;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

constexpr int64_t kTs = 1'700'000'000'000'000'000;

class MetricsServerTest : public ::testing::Test {
 protected:
  // Starts a server for this test's segment on a free loopback port.
  std::unique_ptr<MetricsServer> StartServer(const MetricsServerOptions& options = {}) {
    auto server = MetricsServer::Start("127.0.0.1:0", segment_.name(), options);
    EXPECT_TRUE(server) << server.error().ToString();
    if (!server) return nullptr;
    EXPECT_GT((*server)->port(), 0);
    return std::move(*server);
  }

  std::unique_ptr<telemetry::ShmWriter> CreateWriter() {
    telemetry::StoreOptions o;
    o.name = segment_.name();
    o.capacity = 16;
    o.max_series = 64;
    auto writer = telemetry::ShmWriter::Create(o);
    EXPECT_TRUE(writer) << writer.error().ToString();
    return writer ? std::move(*writer) : nullptr;
  }

  static void Write(telemetry::ShmWriter& w, const SeriesKey& key, double value) {
    auto id = w.Resolve(key);
    ASSERT_TRUE(id) << id.error().ToString();
    w.Append(*id, kTs, value);
  }

  static httplib::Result Get(int port, const std::string& path) {
    httplib::Client client("127.0.0.1", port);
    client.set_connection_timeout(5s);
    client.set_read_timeout(5s);
    return client.Get(path.c_str());
  }

  augur::testing::TempSegmentName segment_;
};

TEST_F(MetricsServerTest, ServesTheStoreInPrometheusFormat) {
  auto writer = CreateWriter();
  ASSERT_NE(writer, nullptr);
  Write(*writer, SeriesKey("cpu_busy_seconds_total", {{"cpu", "0"}}), 12.5);
  Write(*writer, SeriesKey("memory_bytes", {{"kind", "total"}}), 1024);
  auto server = StartServer();
  ASSERT_NE(server, nullptr);

  auto res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), kPrometheusContentType);
  EXPECT_THAT(res->body, HasSubstr("\naugur_up 1\n"));
  EXPECT_THAT(res->body, HasSubstr("# TYPE cpu_busy_seconds_total counter\n"
                                   "cpu_busy_seconds_total{cpu=\"0\"} 12.5 1700000000000\n"));
  EXPECT_THAT(res->body, HasSubstr("# TYPE memory_bytes gauge\n"
                                   "memory_bytes{kind=\"total\"} 1024 1700000000000\n"));
}

TEST_F(MetricsServerTest, NoSegmentIs503ThenServesOnceTheAgentStarts) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 503);
  EXPECT_THAT(res->body, HasSubstr(segment_.name()));
  EXPECT_THAT(res->body, HasSubstr("no telemetry yet: "));

  auto writer = CreateWriter();
  ASSERT_NE(writer, nullptr);
  Write(*writer, SeriesKey("load1", {}), 0.5);
  res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("\nload1 0.5 1700000000000\n"));
}

TEST_F(MetricsServerTest, FollowsTheAgentAcrossARestart) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto writer = CreateWriter();
  ASSERT_NE(writer, nullptr);
  Write(*writer, SeriesKey("before_restart", {}), 1);
  auto res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("\nbefore_restart 1 "));

  // The agent stops: the segment stays, stale.
  writer->Close();
  res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->body, HasSubstr("\naugur_up 0\n"));
  EXPECT_THAT(res->body, HasSubstr("\nbefore_restart 1 "));

  // A new agent makes a new segment under the same name: the server re-attaches.
  writer.reset();
  writer = CreateWriter();
  ASSERT_NE(writer, nullptr);
  Write(*writer, SeriesKey("after_restart", {}), 2);
  res = Get(server->port(), "/metrics");
  ASSERT_TRUE(res);
  EXPECT_THAT(res->body, HasSubstr("\naugur_up 1\n"));
  EXPECT_THAT(res->body, HasSubstr("\nafter_restart 2 "));
  EXPECT_THAT(res->body, Not(HasSubstr("before_restart")));
}

// The metrics.* connection limits reach the HTTP server: with room for one connection, an
// idle one is evicted for a scrape, and a stalled one is cut at header_timeout.
TEST_F(MetricsServerTest, ConnectionLimitsFromTheOptionsApply) {
  MetricsServerOptions o;
  o.max_connections = 1;
  o.header_timeout = 300ms;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(server->port()));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::this_thread::sleep_for(50ms);  // accepted before the scrape's connection
  auto res = Get(server->port(), "/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(server->evictions(), 1u);
  close(idle);

  int stalled = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(connect(stalled, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(send(stalled, "GET / HT", 8, MSG_NOSIGNAL), 8);
  pollfd p{stalled, POLLIN, 0};
  char c;
  // Closed (EOF) at header_timeout; the 4 s wait is only a bound for a loaded machine.
  ASSERT_EQ(poll(&p, 1, 4000), 1) << "a stalled head outlived header_timeout";
  EXPECT_EQ(recv(stalled, &c, 1, 0), 0);
  close(stalled);
}

TEST_F(MetricsServerTest, IndexPageAndNotFound) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto index = Get(server->port(), "/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_THAT(index->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(index->body, HasSubstr("<a href=\"/metrics\">"));

  auto missing = Get(server->port(), "/metricz");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->body, "404 not found: /metricz (try /metrics)\n");

  httplib::Client client("127.0.0.1", server->port());
  auto post = client.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);  // only GET and HEAD are served
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
}

TEST_F(MetricsServerTest, PortInUseIsAClearError) {
  auto first = StartServer();
  ASSERT_NE(first, nullptr);
  const std::string address = "127.0.0.1:" + std::to_string(first->port());
  auto second = MetricsServer::Start(address, segment_.name());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), Status::Code::kIOError);
  EXPECT_EQ(second.error().message(), "cannot listen on " + address + ": Address already in use");
  // The first server is unaffected.
  auto res = Get(first->port(), "/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(MetricsServerTest, AddressNotOnThisHostIsAClearError) {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
  auto server = MetricsServer::Start("192.0.2.1:0", segment_.name());
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().message(),
            "cannot listen on 192.0.2.1:0: Cannot assign requested address");
}

TEST_F(MetricsServerTest, MalformedListenAddressIsInvalidArgument) {
  auto server = MetricsServer::Start("localhost", segment_.name());
  ASSERT_FALSE(server);
  EXPECT_TRUE(server.error().IsInvalidArgument());
  EXPECT_THAT(server.error().message(), HasSubstr("'localhost' has no port"));
}

TEST_F(MetricsServerTest, ServesOnIpv6Loopback) {
  auto server = MetricsServer::Start("[::1]:0", segment_.name());
  if (!server) GTEST_SKIP() << "no IPv6 loopback here: " << server.error().message();
  httplib::Client client("::1", (*server)->port());
  client.set_connection_timeout(5s);
  auto res = client.Get("/");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

TEST_F(MetricsServerTest, StopIsPromptIdempotentAndClosesThePort) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  const int port = server->port();
  // A keep-alive client holds a connection open, as Prometheus does between scrapes.
  httplib::Client keep("127.0.0.1", port);
  keep.set_keep_alive(true);
  auto res = keep.Get("/");
  ASSERT_TRUE(res);

  auto t0 = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  server->Stop();

  auto after = Get(port, "/");
  EXPECT_FALSE(after) << "still answering with status " << after->status;
  server.reset();  // the destructor after Stop() is fine too
}

TEST_F(MetricsServerTest, ConcurrentScrapesWhileTheAgentWrites) {
  auto writer = CreateWriter();
  ASSERT_NE(writer, nullptr);
  auto id = writer->Resolve(SeriesKey("counter_total", {}));
  ASSERT_TRUE(id);
  auto server = StartServer();
  ASSERT_NE(server, nullptr);

  // A first point before any scrape: otherwise a scrape can come before the writer thread's
  // first append and rightly find no point to show.
  writer->Append(*id, kTs, 0.0);
  std::atomic<bool> stop{false};
  std::thread agent([&] {
    for (int64_t i = 1; !stop; ++i) writer->Append(*id, kTs + i * 1'000'000, double(i));
  });
  std::atomic<int> ok{0};
  std::vector<std::thread> scrapers;
  for (int t = 0; t < 4; ++t) {
    scrapers.emplace_back([&] {
      httplib::Client client("127.0.0.1", server->port());
      client.set_keep_alive(true);
      for (int i = 0; i < 25; ++i) {
        auto res = client.Get("/metrics");
        if (res && res->status == 200 && res->body.find("\ncounter_total ") != std::string::npos) {
          ++ok;
        }
      }
    });
  }
  for (auto& t : scrapers) t.join();
  stop = true;
  agent.join();
  EXPECT_EQ(ok, 100);
}

}  // namespace
}  // namespace augur::agent
