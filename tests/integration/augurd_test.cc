// Starts the real augurd and reads what it writes: the shared-memory segment (directly and
// through augurctl) and /metrics over HTTP.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "integration/subprocess.h"
#include "telemetry/shm_store.h"

namespace augur {
namespace {

using testing::BuildPath;
using testing::FreePort;
using testing::Subprocess;
using testing::WaitFor;
using namespace std::chrono_literals;


// The metric families every configuration must produce (eBPF or not).
const std::vector<std::string> kFamilies = {
    "cpu_busy_seconds_total", "cpu_seconds_total",         "memory_bytes",
    "pressure_ratio",         "pressure_stall_seconds_total", "runqueue_latency_seconds",
    "disk_io_bytes_total",    "disk_ios_total",            "network_bytes_total",
    "tcp_retransmits_total",  "cgroup_cpu_seconds_total",  "cgroup_memory_bytes",
    "augur_points_written_total", "augur_collector_duration_seconds",
    "augur_process_cpu_seconds_total", "augur_shm_bytes_used"};

class AugurdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shm_ = "augur-it-" + std::to_string(getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    port_ = FreePort();
    config_path_ = "/tmp/" + shm_ + ".yaml";
  }
  void TearDown() override {
    unlink(config_path_.c_str());
    shm_unlink(shm_.c_str());
    unlink(("/dev/shm/" + shm_ + ".lock").c_str());
  }

  void WriteConfig(const std::string& ebpf, const std::string& extra = "") {
    std::ofstream f(config_path_);
    f << "telemetry:\n  interval: 200ms\n  ebpf: " << ebpf << "\n  shm_name: " << shm_
      << "\nmetrics:\n  listen: 127.0.0.1:" << port_
      << "\nforecast:\n  state_dir: \"\"\n" << ControlSection() << extra;
  }

  // Every agent a test starts has a control socket of its own: tests run side by side.
  std::string ControlSection() const { return "control:\n  socket: /tmp/" + shm_ + ".sock\n"; }

  std::unique_ptr<Subprocess> StartAgent() {
    return std::make_unique<Subprocess>(
        std::vector<std::string>{BuildPath("agent/augurd"), "--config", config_path_});
  }

  // Waits until every family has a series with at least two points.
  std::set<std::string> WaitForFamilies(Subprocess& agent) {
    std::set<std::string> seen;
    WaitFor([&] {
      if (!agent.running()) return true;
      auto reader = telemetry::ShmReader::Open(shm_);
      if (!reader) return false;
      seen.clear();
      for (const auto& e : (*reader)->List()) {
        if (e.count >= 2) seen.insert(e.key.name());
      }
      for (const auto& f : kFamilies) {
        if (!seen.contains(f)) return false;
      }
      return true;
    }, 20s);
    return seen;
  }

  std::string shm_;
  int port_ = 0;
  std::string config_path_;
};

TEST_F(AugurdTest, WritesEveryFamilyServesMetricsAndStopsCleanly) {
  WriteConfig("auto");
  auto agent = StartAgent();
  auto seen = WaitForFamilies(*agent);
  ASSERT_TRUE(agent->running()) << agent->err();
  for (const auto& f : kFamilies) EXPECT_TRUE(seen.contains(f)) << "missing family " << f;

  // /metrics over HTTP, from the same segment.
  httplib::Client http("127.0.0.1", port_);
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << "GET /metrics failed";
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("# TYPE cpu_busy_seconds_total counter"), std::string::npos);
  EXPECT_NE(res->body.find("memory_bytes{kind=\"total\",source=\"procfs\"}"), std::string::npos);
  EXPECT_NE(res->body.find("augur_up 1"), std::string::npos);

  // augurctl reads the segment directly.
  auto series = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "series", "--json"});
  ASSERT_EQ(series.code, 0) << series.err;
  auto arr = nlohmann::json::parse(series.out);
  ASSERT_TRUE(arr.is_array());
  EXPECT_GT(arr.size(), 20u);
  EXPECT_EQ(arr[0]["capacity"], 3600) << "the ring size telemetry.capacity gives";
  auto get = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "get",
                           "memory_bytes{kind=\"total\",source=\"procfs\"}", "--last", "3",
                           "--json"});
  ASSERT_EQ(get.code, 0) << get.err;
  auto pts = nlohmann::json::parse(get.out)["points"];
  ASSERT_GE(pts.size(), 2u);
  EXPECT_GT(pts[0]["value"].get<double>(), 0);
  auto top = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "top", "--once"});
  ASSERT_EQ(top.code, 0) << top.err;
  EXPECT_NE(top.out.find("CPU"), std::string::npos);
  EXPECT_NE(top.out.find("CGROUP"), std::string::npos);
  EXPECT_NE(top.out.find("live"), std::string::npos);

  auto reader = telemetry::ShmReader::Open(shm_);
  ASSERT_TRUE(reader);
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
  EXPECT_NE(agent->err().find("stopped cleanly"), std::string::npos) << agent->err();
  // A reader that had the segment mapped sees it closed; nothing is left in /dev/shm.
  EXPECT_EQ((*reader)->Info().writer_state, telemetry::WriterState::kClosed);
  struct stat st;
  EXPECT_NE(stat(("/dev/shm/" + shm_).c_str(), &st), 0) << "segment left behind";
  EXPECT_NE(stat(("/dev/shm/" + shm_ + ".lock").c_str(), &st), 0) << "lock left behind";
}

// Regression (issue 9): SIGHUP, SIGUSR1, SIGUSR2 and SIGPIPE each killed augurd at once with
// no log line, leaving the segment "live".
TEST_F(AugurdTest, SignalsThatAreNotStopsLeaveItRunningAndOthersStopItCleanly) {
  WriteConfig("off");
  auto agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] { return telemetry::ShmReader::Open(shm_).has_value(); }, 10s))
      << agent->err();
  for (int sig : {SIGHUP, SIGUSR1, SIGUSR2, SIGPIPE}) {
    agent->Signal(sig);
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(agent->running()) << "killed by signal " << sig << "\n" << agent->err();
  }
  EXPECT_TRUE(WaitFor([&] {
    const std::string err = agent->err();
    return err.find("reloaded, nothing changed") != std::string::npos &&
           err.find("status: ") != std::string::npos &&
           err.find("received SIGUSR2: ignored") != std::string::npos;
  }, 5s)) << agent->err();
  agent->Signal(SIGQUIT);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
  EXPECT_NE(agent->err().find("received SIGQUIT, stopping"), std::string::npos) << agent->err();
  EXPECT_FALSE(telemetry::ShmReader::Open(shm_).has_value()) << "stopped cleanly: removed";
}

TEST_F(AugurdTest, SighupAppliesWhatItCanAndNamesWhatNeedsARestart) {
  WriteConfig("off");
  auto agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] { return telemetry::ShmReader::Open(shm_).has_value(); }, 10s))
      << agent->err();
  WriteConfig("off", "log:\n  level: debug\n");
  // Also a key that needs a restart.
  std::string text = testing::ReadFile(config_path_);
  text.replace(text.find("interval: 200ms"), 15, "interval: 300ms");
  std::ofstream(config_path_) << text;
  agent->Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] {
    return agent->err().find("applied: log.level info -> debug") != std::string::npos &&
           agent->err().find("after a restart (systemctl restart augurd): telemetry.interval") !=
               std::string::npos;
  }, 5s)) << agent->err();
  // A broken file is reported line by line and the agent runs on what it had.
  std::ofstream(config_path_) << "telemetry:\n  intervall: 1s\n";
  agent->Signal(SIGHUP);
  EXPECT_TRUE(WaitFor([&] {
    return agent->err().find("not reloaded, keeping the running configuration") !=
               std::string::npos &&
           agent->err().find(":2:3: unknown key 'telemetry.intervall'") != std::string::npos;
  }, 5s)) << agent->err();
  EXPECT_TRUE(agent->running());
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
}

TEST_F(AugurdTest, ACrashSignalIsLoggedAndMarksTheSegmentStaleBeforeDying) {
  WriteConfig("off");
  auto agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] { return telemetry::ShmReader::Open(shm_).has_value(); }, 10s))
      << agent->err();
  auto reader = telemetry::ShmReader::Open(shm_);
  ASSERT_TRUE(reader);
  agent->Signal(SIGSEGV);
  EXPECT_EQ(agent->Wait(10s), -SIGSEGV) << agent->err();
  EXPECT_NE(agent->err().find("augurd: fatal signal SIGSEGV, segment marked stale"),
            std::string::npos)
      << agent->err();
  EXPECT_EQ((*reader)->Info().writer_state, telemetry::WriterState::kClosed);
}

// Regression (issue 9): after kill -9, `augurctl top` kept printing "live, writer pid N".
TEST_F(AugurdTest, AKilledAgentIsReportedStaleByItsReaders) {
  WriteConfig("off");
  auto agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] {
    auto r = telemetry::ShmReader::Open(shm_);
    return r && (*r)->Info().series_count > 10;
  }, 10s)) << agent->err();
  const int pid = agent->pid();
  agent->Signal(SIGKILL);
  ASSERT_EQ(agent->Wait(10s), -SIGKILL);
  auto reader = telemetry::ShmReader::Open(shm_);
  ASSERT_TRUE(reader) << "a killed agent cannot remove its segment";
  EXPECT_EQ((*reader)->Info().writer_state, telemetry::WriterState::kDead);
  EXPECT_GT((*reader)->Info().stale_since_ns, 0);
  auto top = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "top", "--once"});
  EXPECT_EQ(top.code, 0) << top.err;
  EXPECT_NE(top.out.find("STALE since"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("writer pid " + std::to_string(pid) + " is gone"), std::string::npos)
      << top.out;
  EXPECT_EQ(top.out.find("live, writer pid"), std::string::npos) << top.out;
  auto series = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "series"});
  EXPECT_NE(series.err.find("is gone"), std::string::npos) << series.err;
  // A new agent takes the name over at once.
  agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] {
    auto r = telemetry::ShmReader::Open(shm_);
    return r && (*r)->Info().writer_state == telemetry::WriterState::kLive;
  }, 10s)) << agent->err();
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
}

TEST_F(AugurdTest, EbpfOffStillGivesEveryFamilyFromProcfs) {
  WriteConfig("off");
  auto agent = StartAgent();
  auto seen = WaitForFamilies(*agent);
  ASSERT_TRUE(agent->running()) << agent->err();
  for (const auto& f : kFamilies) EXPECT_TRUE(seen.contains(f)) << "missing family " << f;
  auto reader = telemetry::ShmReader::Open(shm_);
  ASSERT_TRUE(reader);
  for (const auto& e : (*reader)->List()) {
    EXPECT_NE(e.key.label("source"), "bpf") << e.key.ToString();
  }
  agent->Signal(SIGINT);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
}

TEST_F(AugurdTest, SecondAgentOnSameSegmentRefuses) {
  WriteConfig("off");
  auto first = StartAgent();
  ASSERT_TRUE(WaitFor([&] { return telemetry::ShmReader::Open(shm_).has_value(); }, 10s))
      << first->err();
  // Another port so that the refusal can only come from the segment.
  const int other_port = FreePort();
  std::ofstream(config_path_ + ".2") << "telemetry:\n  ebpf: off\n  shm_name: " << shm_
                                     << "\nmetrics:\n  listen: 127.0.0.1:" << other_port
                                     << "\nforecast:\n  state_dir: \"\"\n";
  auto second = testing::Run({BuildPath("agent/augurd"), "--config", config_path_ + ".2"});
  unlink((config_path_ + ".2").c_str());
  EXPECT_NE(second.code, 0);
  EXPECT_NE(second.err.find("another augurd"), std::string::npos) << second.err;
  EXPECT_TRUE(first->running()) << "the first agent must be unaffected";
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(10s), 0);
}

TEST_F(AugurdTest, ReaderReattachesAfterAgentRestart) {
  WriteConfig("off");
  auto agent = StartAgent();
  ASSERT_TRUE(WaitFor([&] { return telemetry::ShmReader::Open(shm_).has_value(); }, 10s));
  auto reader = std::move(*telemetry::ShmReader::Open(shm_));
  const uint64_t gen1 = reader->Info().generation;
  agent->Signal(SIGTERM);
  ASSERT_EQ(agent->Wait(10s), 0);
  EXPECT_TRUE(reader->Info().stale);
  EXPECT_EQ(reader->Info().writer_state, telemetry::WriterState::kClosed);
  agent = StartAgent();
  bool reattached = false;
  ASSERT_TRUE(WaitFor([&] {
    auto r = reader->Refresh();
    reattached = reattached || (r && *r);
    return reattached && !reader->Info().stale && reader->Info().series_count > 0;
  }, 10s)) << agent->err();
  EXPECT_NE(reader->Info().generation, gen1);
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0);
}

TEST_F(AugurdTest, BadConfigExitsBeforeTouchingAnything) {
  {
    std::ofstream f(config_path_);
    f << "telemetry:\n  shm_name: " << shm_ << "\n  intervall: 1s\n";
  }
  auto r = testing::Run({BuildPath("agent/augurd"), "--config", config_path_});
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(":3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("intervall"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(stat(("/dev/shm/" + shm_).c_str(), &st), 0) << "segment must not be created";

  auto check = testing::Run({BuildPath("agent/augurd"), "--check-config", config_path_});
  EXPECT_EQ(check.code, 1);
  EXPECT_NE(check.err.find("intervall"), std::string::npos) << check.err;
  WriteConfig("auto");
  check = testing::Run({BuildPath("agent/augurd"), "--check-config", config_path_});
  EXPECT_EQ(check.code, 0) << check.err;
  check = testing::Run({BuildPath("agent/augurd"), "--check-config",
                        std::string(AUGUR_BUILD_DIR) + "/packaging/augur.yaml"});
  EXPECT_EQ(check.code, 0) << check.err;
}

TEST_F(AugurdTest, ForecastsAppearInTheStoreAndAugurctlPlotsThem) {
  {
    std::ofstream f(config_path_);
    f << "telemetry:\n  interval: 200ms\n  ebpf: off\n  shm_name: " << shm_
      << "\nmetrics:\n  enabled: false\nforecast:\n  state_dir: \"\"\n  step: 1s\n"
      << "  horizons: [1, 3]\n  series: ['memory_bytes{kind=\"available\"}']\n"
      << "  history: 50\n" << ControlSection();
  }
  auto agent = StartAgent();
  const telemetry::SeriesKey derived(
      "memory_bytes:forecast_mean",
      {{"horizon", "3"}, {"kind", "available"}, {"source", "procfs"}});
  ASSERT_TRUE(WaitFor([&] {
    auto reader = telemetry::ShmReader::Open(shm_);
    return reader && (*reader)->Find(derived).has_value();
  }, 20s)) << agent->err();
  auto reader = std::move(*telemetry::ShmReader::Open(shm_));
  auto latest = reader->Latest(*reader->Find(derived));
  ASSERT_TRUE(latest);
  EXPECT_GT(latest->value, 0) << "available memory forecast";
  EXPECT_TRUE(reader->Find(telemetry::SeriesKey("memory_bytes:anomaly_score",
                                                {{"kind", "available"}, {"source", "procfs"}})));
  // Derived series keep forecast.history points; collected ones telemetry.capacity.
  for (const telemetry::SeriesEntry& e : reader->List()) {
    const bool is_derived = e.key.name().find(':') != std::string::npos;
    EXPECT_EQ(e.capacity, is_derived ? 50u : reader->Info().capacity) << e.key.ToString();
  }

  const std::string series = "memory_bytes{kind=\"available\",source=\"procfs\"}";
  auto plot = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "forecast", series});
  ASSERT_EQ(plot.code, 0) << plot.err;
  EXPECT_NE(plot.out.find("o forecast mean"), std::string::npos) << plot.out;
  EXPECT_NE(plot.out.find("horizon"), std::string::npos) << plot.out;
  // The forecast appears once the first step closes; the history grows every 200 ms after.
  nlohmann::json j;
  ASSERT_TRUE(WaitFor([&] {
    auto json = testing::Run(
        {BuildPath("agent/augurctl"), "--shm", shm_, "forecast", series, "--json"});
    if (json.code != 0) return false;
    j = nlohmann::json::parse(json.out);
    return j["history"].size() > 2u;
  }, 20s)) << j.dump();
  ASSERT_EQ(j["forecast"].size(), 2u);
  EXPECT_EQ(j["forecast"][1]["horizon"], 3);
  EXPECT_LE(j["forecast"][1]["lo80"].get<double>(), j["forecast"][1]["hi80"].get<double>());
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
}

// Backends are loaded in their own plugin hosts: a refused plugin is reported down and
// logged with what it declared, while the agent and the good backend carry on.
TEST_F(AugurdTest, ReportsBackendHealthAndSurvivesABadPlugin) {
  const std::string state_dir = "/tmp/" + shm_ + "-plugins";
  {
    std::ofstream f(config_path_);
    f << "telemetry:\n  interval: 200ms\n  ebpf: off\n  shm_name: " << shm_
      << "\nmetrics:\n  enabled: false\nforecast:\n  enabled: false\n"
      << "plugins:\n  dir: " << BuildPath("plugins") << "\n  enabled: [example, test_abi_major_2]"
      << "\n  state_dir: " << state_dir << "\n  call_timeout: 2s\n" << ControlSection();
  }
  auto agent = StartAgent();
  const telemetry::SeriesKey good("augur_backend_up", {{"backend", "example"}});
  const telemetry::SeriesKey bad("augur_backend_up", {{"backend", "test_abi_major_2"}});
  std::optional<telemetry::Point> good_up, bad_up;
  WaitFor([&] {
    auto reader = telemetry::ShmReader::Open(shm_);
    if (!reader) return false;
    auto g = (*reader)->Find(good);
    auto b = (*reader)->Find(bad);
    if (g) good_up = (*reader)->Latest(*g);
    if (b) bad_up = (*reader)->Latest(*b);
    return good_up && bad_up && good_up->value == 1.0;
  }, 20s);
  ASSERT_TRUE(agent->running()) << agent->err();
  ASSERT_TRUE(good_up && bad_up) << agent->err();
  EXPECT_EQ(good_up->value, 1.0);
  EXPECT_EQ(bad_up->value, 0.0);
  const std::string log = agent->err();
  EXPECT_NE(log.find("test_abi_major_2"), std::string::npos) << log;
  EXPECT_NE(log.find("ABI"), std::string::npos) << log;
  auto top = testing::Run({BuildPath("agent/augurctl"), "--shm", shm_, "top", "--once"});
  EXPECT_NE(top.out.find("example up"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("test_abi_major_2 DOWN"), std::string::npos) << top.out;
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(15s), 0) << agent->err();
  std::filesystem::remove_all(state_dir);
}

// Runs the agent as `nobody`, who may not load BPF: `auto` must fall back to procfs and say
// why once per collector; `on` must refuse to start.
TEST_F(AugurdTest, UnprivilegedAgentFallsBackToProcfsOrRefusesWithEbpfOn) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start the agent as nobody";
  constexpr int kNobody = 65534;
  WriteConfig("auto");
  chmod(config_path_.c_str(), 0644);
  auto agent = std::make_unique<Subprocess>(
      std::vector<std::string>{BuildPath("agent/augurd"), "--config", config_path_}, kNobody);
  auto seen = WaitForFamilies(*agent);
  ASSERT_TRUE(agent->running()) << agent->err();
  for (const auto& f : kFamilies) EXPECT_TRUE(seen.contains(f)) << "missing family " << f;
  const std::string log = agent->err();
  for (const char* c : {"cpu", "blockio", "tcp"}) {
    const std::string needle = std::string("eBPF collector ") + c + " unavailable";
    const size_t first = log.find(needle);
    EXPECT_NE(first, std::string::npos) << log;
    EXPECT_EQ(log.find(needle, first + 1), std::string::npos) << "said more than once: " << log;
  }
  agent->Signal(SIGTERM);
  EXPECT_EQ(agent->Wait(10s), 0) << agent->err();
  shm_unlink(shm_.c_str());
  unlink(("/dev/shm/" + shm_ + ".lock").c_str());

  WriteConfig("on");
  auto strict = std::make_unique<Subprocess>(
      std::vector<std::string>{BuildPath("agent/augurd"), "--config", config_path_}, kNobody);
  EXPECT_NE(strict->Wait(20s), 0);
  EXPECT_NE(strict->err().find("telemetry.ebpf is 'on'"), std::string::npos) << strict->err();
}

TEST_F(AugurdTest, EbpfOnFailsClearlyWhenBpfCannotLoad) {
  // Only meaningful where eBPF cannot load; where it can, 'on' must start normally.
  WriteConfig("on");
  auto agent = StartAgent();
  WaitFor([&] { return !agent->running() || telemetry::ShmReader::Open(shm_).has_value(); }, 20s);
  if (agent->running()) {
    auto reader = telemetry::ShmReader::Open(shm_);
    ASSERT_TRUE(reader);
    WaitFor([&] {
      for (const auto& e : (*reader)->List()) {
        if (e.key.label("source") == "bpf") return true;
      }
      return false;
    }, 10s);
    bool any_bpf = false;
    for (const auto& e : (*reader)->List()) any_bpf = any_bpf || e.key.label("source") == "bpf";
    EXPECT_TRUE(any_bpf) << "ebpf: on started but no bpf series";
    agent->Signal(SIGTERM);
    EXPECT_EQ(agent->Wait(10s), 0);
  } else {
    EXPECT_NE(agent->Wait(1s), 0);
    EXPECT_NE(agent->err().find("telemetry.ebpf is 'on'"), std::string::npos) << agent->err();
  }
}

}  // namespace
}  // namespace augur
