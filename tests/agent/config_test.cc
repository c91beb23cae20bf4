#include "agent/config.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "testing/corpus_files.h"
#include "augur_paths.h"

namespace augur::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

const fs::path kCorpus = fs::path(AUGUR_SOURCE_DIR) / "tests/agent/config_corpus";

using testing::SplitLines;
std::string ReadFile(const fs::path& path) { return testing::ReadWholeFile(path); }
std::vector<fs::path> CorpusFiles(const std::string& dir) { return testing::YamlFilesIn(kCorpus / dir); }

// ---- ParseDuration ---------------------------------------------------------------------

TEST(ParseDurationTest, AcceptsOneNumberAndOneUnit) {
  const std::pair<const char*, int64_t> cases[] = {
      {"500ms", 500},       {"1s", 1000},
      {"1.5s", 1500},       {"2m", 120'000},
      {"1h", 3600'000},     {"0ms", 0},
      {"0.25s", 250},       {"1.5ms", -1},
      {"007s", 7000},       {"0.001s", 1},
      {"1.000s", 1000},     {"24h", 86'400'000},
      {"1d", 86'400'000},   {"180d", 180LL * 86'400'000},
      {"0.5d", 43'200'000},
  };
  for (const auto& [text, want_ms] : cases) {
    SCOPED_TRACE(text);
    Result<milliseconds> d = ParseDuration(text);
    if (want_ms < 0) {
      ASSERT_FALSE(d);
      EXPECT_THAT(d.error().message(), HasSubstr("not a whole number of milliseconds"));
      continue;
    }
    ASSERT_TRUE(d) << d.error().ToString();
    EXPECT_EQ(d->count(), want_ms);
  }
}

TEST(ParseDurationTest, BareNumberAsksForAUnit) {
  Result<milliseconds> d = ParseDuration("30");
  ASSERT_FALSE(d);
  EXPECT_TRUE(d.error().IsInvalidArgument());
  EXPECT_EQ(d.error().message(),
            "bad duration '30': add a unit (30s for seconds, 30ms for milliseconds)");
}

TEST(ParseDurationTest, RejectsEverythingElse) {
  for (const char* text : {"", "s", "fast", "-1s", "1 s", " 1s", "1s ", "1S", "1sec", "1us", "1w",
                           "1.s", ".5s", "1..5s", "1m30s", "+1s", "1e3ms", "0x10s"}) {
    SCOPED_TRACE(text);
    Result<milliseconds> d = ParseDuration(text);
    ASSERT_FALSE(d) << d->count();
    EXPECT_TRUE(d.error().IsInvalidArgument());
    EXPECT_THAT(d.error().message(), HasSubstr("bad duration '" + std::string(text) + "'"));
  }
}

TEST(ParseDurationTest, OverflowIsAnErrorNotAWrap) {
  EXPECT_FALSE(ParseDuration("9999999999999999h"));          // fits int64 digits, not in ms
  EXPECT_FALSE(ParseDuration("99999999999999999999999ms"));  // too many digits
  Result<milliseconds> big = ParseDuration("2562047h");      // ~ 2^63 ns; fine in ms
  ASSERT_TRUE(big);
  EXPECT_EQ(big->count(), 2562047LL * 3600'000);
}

// ---- ParseHostPort ---------------------------------------------------------------------

TEST(ParseHostPortTest, AcceptsNamesIpv4AndBracketedIpv6) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:9464", "127.0.0.1", 9464}, Case{"0.0.0.0:0", "0.0.0.0", 0},
        Case{"localhost:65535", "localhost", 65535}, Case{"[::1]:9100", "::1", 9100},
        Case{"[::]:80", "::", 80}, Case{"[fe80::1%eth0]:1", "fe80::1%eth0", 1}}) {
    SCOPED_TRACE(c.text);
    Result<HostPort> hp = ParseHostPort(c.text);
    ASSERT_TRUE(hp) << hp.error().ToString();
    EXPECT_EQ(hp->host, c.host);
    EXPECT_EQ(hp->port, c.port);
  }
}

TEST(ParseHostPortTest, SaysWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"127.0.0.1", "has no port"},
      {"127.0.0.1:", "port '' in '127.0.0.1:' is not a number in 0..65535"},
      {"127.0.0.1:65536", "not a number in 0..65535"},
      {"127.0.0.1:-1", "not a number in 0..65535"},
      {"127.0.0.1:http", "not a number in 0..65535"},
      {"127.0.0.1:009464", "not a number in 0..65535"},
      {":9464", "has no host (use 0.0.0.0:9464 for every interface)"},
      {"::1:9464", "an IPv6 address goes in brackets, e.g. [::1]:9464"},
      {"[::1:9464", "has no closing ']'"},
      {"[::1]9464", "has no ':port' after ']'"},
      {"[localhost]:80", "'localhost' in '[localhost]:80' is not an IPv6 address"},
      {"[]:80", "is not an IPv6 address"},
      {"bad host:80", "'bad host' is not a host name or IPv4 address"},
      {"-x:80", "is not a host name"},
      {"", "has no port"},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    Result<HostPort> hp = ParseHostPort(text);
    ASSERT_FALSE(hp) << hp->host << " " << hp->port;
    EXPECT_TRUE(hp.error().IsInvalidArgument());
    EXPECT_THAT(hp.error().message(), HasSubstr(want));
  }
}

// ---- ParseConfig -----------------------------------------------------------------------

TEST(ParseConfigTest, EmptyInputMeansDefaults) {
  for (const char* text : {"", "\n", "# just a comment\n", "---\n", "---\n...\n"}) {
    SCOPED_TRACE(text);
    Result<Config> c = ParseConfig(text);
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(*c, DefaultConfig());
  }
}

TEST(ParseConfigTest, DefaultsAreTheDocumentedOnes) {
  // The header and packaging/augur.yaml promise these; a change must be deliberate.
  Config d = DefaultConfig();
  EXPECT_EQ(d.telemetry.interval, milliseconds(1000));
  EXPECT_EQ(d.telemetry.ebpf, EbpfMode::kAuto);
  EXPECT_EQ(d.telemetry.shm_name, "augur");
  EXPECT_EQ(d.telemetry.capacity, 3600u);
  EXPECT_EQ(d.telemetry.max_series, 2048u);
  EXPECT_EQ(d.telemetry.cgroup_depth, 3);
  EXPECT_EQ(d.telemetry.max_cgroups, 256u);
  EXPECT_TRUE(d.metrics.enabled);
  EXPECT_EQ(d.metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(d.metrics.max_connections, 64u);
  EXPECT_EQ(d.metrics.max_connections_per_client, 8u);
  EXPECT_EQ(d.metrics.header_timeout, milliseconds(2000));
  EXPECT_EQ(d.log.level, "info");
  // The install layout's (cmake/AugurInstall.cmake): /usr/lib/augur/plugins and
  // /var/lib/augur/plugins with the Debian prefix /usr.
  EXPECT_EQ(d.plugins.dir, AUGUR_DEFAULT_PLUGIN_DIR);
  EXPECT_TRUE(d.plugins.enabled.empty());
  EXPECT_EQ(d.plugins.state_dir, std::string(AUGUR_DEFAULT_STATE_DIR) + "/plugins");
  EXPECT_EQ(d.forecast.state_dir, std::string(AUGUR_DEFAULT_STATE_DIR) + "/forecast");
  EXPECT_EQ(d.plugins.call_timeout, milliseconds(10'000));
  EXPECT_EQ(d.plugins.health_interval, milliseconds(10'000));
  EXPECT_TRUE(d.plugins.config.empty());
}

// Regression (issue 9): an agent on "x.lock" could take over another agent's lock file.
TEST(ParseConfigTest, SegmentNamesEndingLikeTheFilesBesideASegmentAreRefused) {
  for (const char* name : {"x.lock", "augur.new"}) {
    Result<Config> c = ParseConfig(std::string("telemetry:\n  shm_name: ") + name + "\n", "a.yaml");
    ASSERT_FALSE(c) << name;
    EXPECT_THAT(c.error().message(), HasSubstr("a.yaml:2:3: telemetry.shm_name"));
    EXPECT_THAT(c.error().message(), HasSubstr("lock or temporary file of another segment"));
  }
  EXPECT_TRUE(ParseConfig("telemetry:\n  shm_name: x.locked\n"));
}

TEST(ChangedKeysTest, NamesEachChangedKeyInFileOrder) {
  Config a = DefaultConfig();
  Config b = a;
  EXPECT_TRUE(ChangedKeys(a, b).empty());
  b.telemetry.interval = milliseconds(500);
  b.forecast.horizons = {1, 2};
  b.plugins.config["process"] = {{"cgroup_parent", "x"}};
  EXPECT_THAT(ChangedKeys(a, b), ::testing::ElementsAre("telemetry.interval",
                                                        "forecast.horizons",
                                                        "plugins.config.process"));
  b = a;
  b.log.level = "debug";
  EXPECT_THAT(ChangedKeys(a, b), ::testing::ElementsAre("log.level"));
}

TEST(ControlConfigTest, DefaultsAndStrictValues) {
  Config d = DefaultConfig();
  EXPECT_EQ(d.control.socket, "/run/augur/augur.sock");
  EXPECT_EQ(d.control.group, "augur");
  Result<Config> c = ParseConfig("control: {socket: /tmp/x/augur.sock, group: ops_team-1}");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->control.socket, "/tmp/x/augur.sock");
  EXPECT_EQ(c->control.group, "ops_team-1");
  EXPECT_TRUE(ParseConfig("control:\n"));
  EXPECT_FALSE(ParseConfig("control: {socket: relative.sock}"));
  EXPECT_FALSE(ParseConfig("control: {socket: [a]}"));
  EXPECT_FALSE(ParseConfig("control: {socket: /" + std::string(107, 'a') + "}"));
  EXPECT_TRUE(ParseConfig("control: {socket: /" + std::string(106, 'a') + "}"));
  EXPECT_FALSE(ParseConfig("control: {group: ''}"));
  EXPECT_FALSE(ParseConfig("control: {group: 1abc}"));
  EXPECT_FALSE(ParseConfig("control: {group: 'a b'}"));
  EXPECT_FALSE(ParseConfig("control: {group: " + std::string(33, 'a') + "}"));
  Result<Config> bad = ParseConfig("control:\n  sockets: /x\n", "augur.yaml");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              ::testing::StartsWith("augur.yaml:2:3: unknown key 'control.sockets'"));
  Result<Config> rel = ParseConfig("control:\n  socket: x.sock\n", "augur.yaml");
  ASSERT_FALSE(rel);
  EXPECT_THAT(rel.error().message(), ::testing::StartsWith("augur.yaml:2:3: control.socket: "));
  Config b = d;
  b.control.group = "wheel";
  EXPECT_THAT(ChangedKeys(d, b), ::testing::ElementsAre("control.group"));
  b.control.socket = "/tmp/s";
  EXPECT_THAT(ChangedKeys(d, b), ::testing::ElementsAre("control.socket", "control.group"));
}

TEST(CheckConfigFitsHostTest, ASegmentLargerThanDevShmNamesBothNumbersAndTheKeys) {
  Config c = DefaultConfig();
  EXPECT_TRUE(CheckConfigFitsHost(c).ok());
  c.telemetry.capacity = 10'000'000;
  c.telemetry.max_series = 1'000'000;
  Status st = CheckConfigFitsHost(c);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("telemetry.capacity x telemetry.max_series"));
  EXPECT_THAT(st.message(), HasSubstr("free"));
  EXPECT_THAT(st.message(), HasSubstr("160000"));  // 1.6e14 bytes, give or take the directory
}

TEST(ParseConfigTest, PluginConfigValuesArePassedAsWritten) {
  Result<Config> c = ParseConfig(
      "plugins:\n  enabled: [a, b_2]\n  config:\n    a: {n: 007, flag: yes, s: 'x y'}\n"
      "    b_2:\n");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->plugins.enabled, (std::vector<std::string>{"a", "b_2"}));
  const std::map<std::string, std::string> want = {{"n", "007"}, {"flag", "yes"}, {"s", "x y"}};
  EXPECT_EQ(c->plugins.config.at("a"), want);
  EXPECT_TRUE(c->plugins.config.at("b_2").empty());
}

TEST(ParseConfigTest, PluginCallTimeoutBounds) {
  EXPECT_TRUE(ParseConfig("plugins: {call_timeout: 100ms}"));
  EXPECT_TRUE(ParseConfig("plugins: {call_timeout: 10m}"));
  EXPECT_FALSE(ParseConfig("plugins: {call_timeout: 99ms}"));
  EXPECT_FALSE(ParseConfig("plugins: {call_timeout: 601s}"));
  EXPECT_FALSE(ParseConfig("plugins: {call_timeout: 5}"));
}

TEST(ParseConfigTest, PluginHealthIntervalBounds) {
  Result<Config> c = ParseConfig("plugins: {health_interval: 2s}");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->plugins.health_interval, milliseconds(2000));
  EXPECT_TRUE(ParseConfig("plugins: {health_interval: 100ms}"));
  EXPECT_TRUE(ParseConfig("plugins: {health_interval: 1h}"));
  EXPECT_FALSE(ParseConfig("plugins: {health_interval: 99ms}"));
  EXPECT_FALSE(ParseConfig("plugins: {health_interval: 61m}"));
  EXPECT_FALSE(ParseConfig("plugins: {health_interval: 10}"));
}

TEST(ParseConfigTest, MetricsConnectionLimits) {
  Result<Config> c = ParseConfig(
      "metrics: {max_connections: 10, max_connections_per_client: 2, header_timeout: 1.5s}");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->metrics.max_connections, 10u);
  EXPECT_EQ(c->metrics.max_connections_per_client, 2u);
  EXPECT_EQ(c->metrics.header_timeout, milliseconds(1500));
  EXPECT_FALSE(ParseConfig("metrics: {max_connections: 0}"));
  EXPECT_FALSE(ParseConfig("metrics: {max_connections: 100001}"));
  EXPECT_FALSE(ParseConfig("metrics: {max_connections: -1}"));
  EXPECT_FALSE(ParseConfig("metrics: {max_connections_per_client: 0}"));
  EXPECT_FALSE(ParseConfig("metrics: {max_connections_per_client: many}"));
  EXPECT_FALSE(ParseConfig("metrics: {header_timeout: 99ms}"));
  EXPECT_FALSE(ParseConfig("metrics: {header_timeout: 601s}"));
  EXPECT_FALSE(ParseConfig("metrics: {header_timeout: 2}"));
  Result<Config> bad = ParseConfig("metrics:\n  header_timeout: soon\n", "augur.yaml");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message(),
              ::testing::StartsWith("augur.yaml:2:3: metrics.header_timeout: "));
}

TEST(ParseConfigTest, PluginNamesAreSafeForFileNames) {
  EXPECT_TRUE(ParseConfig("plugins: {enabled: [" + std::string(64, 'a') + "]}"));
  for (const char* bad : {"''", "'a.b'", "'a/b'", "'a b'", "[x]", "{x: 1}"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseConfig(std::string("plugins: {enabled: [") + bad + "]}"));
  }
  EXPECT_FALSE(ParseConfig("plugins: {enabled: [" + std::string(65, 'a') + "]}"));
}

TEST(ParseConfigTest, OriginDefaultsToString) {
  Result<Config> c = ParseConfig("bogus: 1\n");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("<string>:1:1: unknown key 'bogus'"));
}

// Found by tests/fuzz/config_fuzz.cc (corpus/config/regress_loadall_hang.yaml): yaml-cpp's
// LoadAll looped forever on a token that cannot start a document.
TEST(ParseConfigTest, StrayTokenAfterADocumentIsAnErrorNotAHang) {
  for (const auto& [yaml, where] : {std::pair{"{ve}, 0l; Berror}}\n", "x.yaml:1:5: "},
                                    std::pair{"{a}, b}", "x.yaml:1:4: "},
                                    std::pair{", a\n", "x.yaml:1:1: "}}) {
    Result<Config> c = ParseConfig(yaml, "x.yaml");
    ASSERT_FALSE(c) << yaml;
    EXPECT_THAT(c.error().message(),
                HasSubstr(std::string(where) + "YAML syntax error: ',' cannot start or continue"))
        << yaml;
  }
}

TEST(ParseConfigTest, BoundsAreInclusive) {
  Result<Config> lo = ParseConfig(
      "telemetry: {interval: 10ms, capacity: 16, max_series: 16, cgroup_depth: 0, "
      "max_cgroups: 0}\nmetrics: {listen: '127.0.0.1:0'}\n");
  ASSERT_TRUE(lo) << lo.error().ToString();
  EXPECT_EQ(lo->telemetry.interval, milliseconds(10));
  Result<Config> hi = ParseConfig(
      "telemetry: {interval: 60m, capacity: 10000000, max_series: 1000000, cgroup_depth: 16, "
      "max_cgroups: 100000}\nmetrics: {listen: '127.0.0.1:65535'}\n");
  ASSERT_TRUE(hi) << hi.error().ToString();
  EXPECT_EQ(hi->telemetry.interval, milliseconds(3600'000));
  EXPECT_EQ(hi->telemetry.capacity, 10'000'000u);
  EXPECT_EQ(hi->telemetry.max_cgroups, 100'000u);

  for (const char* text :
       {"telemetry: {interval: 9ms}", "telemetry: {interval: 3601s}", "telemetry: {capacity: 15}",
        "telemetry: {max_series: 1000001}", "telemetry: {cgroup_depth: 17}",
        "telemetry: {max_cgroups: 100001}", "telemetry: {cgroup_depth: -1}",
        "telemetry: {capacity: 99999999999999999999}"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(ParseConfig(text));
  }
}

TEST(ParseConfigTest, ShmNameRules) {
  EXPECT_TRUE(ParseConfig("telemetry: {shm_name: " + std::string(200, 'a') + "}"));
  EXPECT_FALSE(ParseConfig("telemetry: {shm_name: " + std::string(201, 'a') + "}"));
  for (const char* bad : {"''", "'.'", "'a b'", "'a:b'", "'über'", "'a/b'"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseConfig(std::string("telemetry: {shm_name: ") + bad + "}"));
  }
  Result<Config> ok = ParseConfig("telemetry: {shm_name: .hidden-name_2}");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->telemetry.shm_name, ".hidden-name_2");
}

TEST(ParseConfigTest, EbpfModes) {
  const std::pair<const char*, EbpfMode> cases[] = {
      {"auto", EbpfMode::kAuto}, {"on", EbpfMode::kOn},     {"off", EbpfMode::kOff},
      {"true", EbpfMode::kOn},   {"false", EbpfMode::kOff}, {"'on'", EbpfMode::kOn}};
  for (const auto& [word, mode] : cases) {
    SCOPED_TRACE(word);
    Result<Config> c = ParseConfig(std::string("telemetry: {ebpf: ") + word + "}");
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(c->telemetry.ebpf, mode);
  }
  EXPECT_EQ(EbpfModeName(EbpfMode::kAuto), "auto");
  EXPECT_EQ(EbpfModeName(EbpfMode::kOn), "on");
  EXPECT_EQ(EbpfModeName(EbpfMode::kOff), "off");
  // Near misses are errors, with a suggestion when one is close.
  Result<Config> c = ParseConfig("telemetry: {ebpf: atuo}");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("got 'atuo' (did you mean 'auto'?)"));
  EXPECT_FALSE(ParseConfig("telemetry: {ebpf: On}"));
  EXPECT_FALSE(ParseConfig("telemetry: {ebpf: yes}"));
}

TEST(ParseConfigTest, LogLevels) {
  for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
    Result<Config> c = ParseConfig(std::string("log: {level: ") + level + "}");
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(c->log.level, level);
  }
  EXPECT_FALSE(ParseConfig("log: {level: critical}"));
  EXPECT_FALSE(ParseConfig("log: {level: INFO}"));
}

TEST(ParseConfigTest, LongScalarIsShortenedInTheMessage) {
  Result<Config> c = ParseConfig("log:\n  level: " + std::string(500, 'x') + "\n");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("got '" + std::string(40, 'x') + "...'"));
  EXPECT_LT(c.error().message().size(), 200u);
}

TEST(ParseConfigTest, UnknownKeyWithoutCloseMatchListsTheKnownOnes) {
  Result<Config> c = ParseConfig("metrics:\n  colour: blue\n", "x.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(),
            "x.yaml:2:3: unknown key 'metrics.colour' (known: enabled, listen, "
            "max_connections, max_connections_per_client, header_timeout)");
}

// ---- Corpus ----------------------------------------------------------------------------

// A bad file says what its error must contain in leading comments:
//   # expect: <substring of the message>     (one or more; positions are FILE:LINE:COLUMN)
//   # errors: <n>                            (lines in the message; 1 when absent)
// Every substring starts with the file name and line where it can, so the position is tested
// along with the text.
class BadConfigCorpusTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(BadConfigCorpusTest, FailsWithTheExpectedMessage) {
  const fs::path& path = GetParam();
  std::string text = ReadFile(path);
  std::vector<std::string> expects;
  size_t want_lines = 1;
  for (const std::string& line : SplitLines(text)) {
    if (line.starts_with("# expect: ")) expects.push_back(line.substr(10));
    if (line.starts_with("# errors: ")) want_lines = std::stoul(line.substr(10));
  }
  ASSERT_FALSE(expects.empty()) << path << " has no '# expect: ' line";

  Result<Config> c = ParseConfig(text, path.filename().string());
  ASSERT_FALSE(c) << path << " parsed";
  EXPECT_TRUE(c.error().IsInvalidArgument()) << c.error().ToString();
  const std::string& msg = c.error().message();
  for (const std::string& e : expects) EXPECT_THAT(msg, HasSubstr(e));
  EXPECT_EQ(SplitLines(msg).size(), want_lines) << msg;
}

std::string CorpusTestName(const ::testing::TestParamInfo<fs::path>& info) {
  std::string name = info.param.stem().string();
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return "f" + name;  // gtest names may not start with a digit
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadConfigCorpusTest, ::testing::ValuesIn(CorpusFiles("bad")),
                         CorpusTestName);

TEST(BadConfigCorpusSizeTest, HasEnoughCases) { EXPECT_GE(CorpusFiles("bad").size(), 15u); }

// What each file in good/ must parse to. A file without an entry fails the test, so the
// corpus cannot grow unchecked.
std::map<std::string, Config> GoodExpectations() {
  std::map<std::string, Config> want;
  Config d = DefaultConfig();
  want["empty.yaml"] = d;
  want["comments_only.yaml"] = d;
  want["empty_sections.yaml"] = d;

  Config full;
  full.telemetry = {.interval = milliseconds(250),
                    .ebpf = EbpfMode::kOff,
                    .shm_name = "augur-test_1.0",
                    .capacity = 16,
                    .max_series = 1'000'000,
                    .cgroup_depth = 0,
                    .max_cgroups = 0};
  full.metrics = {.enabled = false,
                  .listen = "0.0.0.0:0",
                  .max_connections = 1,
                  .max_connections_per_client = 100'000,
                  .header_timeout = milliseconds(100)};
  full.log = {.level = "trace"};
  want["full.yaml"] = full;

  Config partial = d;
  partial.telemetry.interval = milliseconds(1500);
  partial.telemetry.ebpf = EbpfMode::kOn;
  partial.metrics.listen = "[::1]:9100";
  want["partial.yaml"] = partial;

  Config booleans = d;
  booleans.telemetry.ebpf = EbpfMode::kOff;
  booleans.metrics.enabled = false;
  want["yaml_booleans.yaml"] = booleans;

  Config flow = d;
  flow.telemetry.interval = milliseconds(120'000);
  flow.telemetry.capacity = 10'000'000;
  flow.log.level = "error";
  want["flow_style.yaml"] = flow;

  Config windows = d;
  windows.telemetry.interval = milliseconds(3600'000);
  windows.telemetry.max_series = 16;
  want["utf8_bom_and_crlf.yaml"] = windows;

  Config plugins = d;
  plugins.plugins.dir = "/opt/augur/plugins";
  plugins.plugins.enabled = {"process", "libvirt"};
  plugins.plugins.state_dir = "/srv/augur/state";
  plugins.plugins.call_timeout = milliseconds(2500);
  plugins.plugins.config["process"] = {{"cgroup_root", "augur.slice"}, {"max_tasks", "64"}};
  plugins.plugins.config["libvirt"] = {{"uri", "test:///default"}, {"autostart", "true"}};
  want["plugins.yaml"] = plugins;
  want["plugins_empty_lists.yaml"] = d;
  Config history = d;
  history.telemetry.capacity = 100;
  history.forecast.history = 100;  // up to telemetry.capacity, inclusive
  want["forecast_history.yaml"] = history;
  Config retention = d;
  retention.workflows.history_retention = milliseconds(30LL * 86'400'000);
  want["workflows_retention.yaml"] = retention;
  Config keep = d;
  keep.workflows.history_retention = milliseconds(0);
  want["workflows_retention_off.yaml"] = keep;
  Config prewarm = d;
  prewarm.workflows.prewarm = {.enabled = false,
                               .lead = milliseconds(2000),
                               .idle_timeout = milliseconds(30'000),
                               .max_instances = 3,
                               .probe = {"sh", "-c", "test -d /tmp"},
                               .probe_timeout = milliseconds(2500),
                               .follow_window = milliseconds(0),
                               .demand_per_hour = 0.5};
  want["workflows_prewarm.yaml"] = prewarm;
  return want;
}

TEST(GoodConfigCorpusTest, EachFileParsesToItsExpectedConfig) {
  std::map<std::string, Config> want = GoodExpectations();
  std::vector<fs::path> files = CorpusFiles("good");
  ASSERT_EQ(files.size(), want.size());
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.string());
    auto it = want.find(path.filename().string());
    ASSERT_NE(it, want.end()) << "no expectation for " << path;
    Result<Config> c = LoadConfigFile(path.string());
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(*c, it->second);
  }
}

// ---- LoadConfigFile --------------------------------------------------------------------

TEST(LoadConfigFileTest, MissingFileIsNotFound) {
  Result<Config> c = LoadConfigFile("/nonexistent/augur.yaml");
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().IsNotFound());
  EXPECT_THAT(c.error().message(), HasSubstr("/nonexistent/augur.yaml"));
}

TEST(LoadConfigFileTest, ErrorsNameTheFullPath) {
  fs::path path = kCorpus / "bad" / "04_bad_duration.yaml";
  Result<Config> c = LoadConfigFile(path.string());
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr(path.string() + ":3:3: telemetry.interval"));
}

TEST(LoadConfigFileTest, DirectoryIsAnError) {
  Result<Config> c = LoadConfigFile(kCorpus.string());
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("is a directory"));
}

TEST(LoadConfigFileTest, OtherOpenFailuresAreIOErrors) {
  // ENOTDIR: a path through a regular file. Unlike a permission test, this holds as root.
  std::string path = (kCorpus / "good" / "full.yaml" / "augur.yaml").string();
  Result<Config> c = LoadConfigFile(path);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), Status::Code::kIOError);
  EXPECT_THAT(c.error().message(), HasSubstr("cannot open config " + path + ": Not a directory"));
}

TEST(LoadConfigFileTest, HugeFileIsRefused) {
  Result<Config> c = LoadConfigFile("/dev/zero");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message(), HasSubstr("/dev/zero: larger than"));
}

// ---- mesh ------------------------------------------------------------------------------

TEST(MeshConfigTest, ReadsTheSection) {
  Result<Config> c = ParseConfig(R"(mesh:
  enabled: true
  name: web-1
  listen: 198.18.0.1:7946
  seeds: [web-2@198.18.0.2:7946, "db@[fd00::1]:7000"]
  key_file: /etc/k/host.key
  authorized_keys: /etc/k/authorized
  zone: eu-1a
  max_message: 1Mi
  replicas: 3
)");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->mesh.replicas, 3u);
  EXPECT_TRUE(c->mesh.enabled);
  EXPECT_EQ(c->mesh.name, "web-1");
  EXPECT_EQ(c->mesh.seeds.size(), 2u);
  EXPECT_EQ(c->mesh.zone, "eu-1a");
  EXPECT_EQ(c->mesh.max_message, 1u << 20);
  auto seed = ParseMeshSeed("db@[fd00::1]:7000");
  ASSERT_TRUE(seed);
  EXPECT_EQ(seed->name, "db");
  EXPECT_EQ(seed->at.port, 7000);
}

TEST(MeshConfigTest, SaysWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"mesh: {seeds: [10.0.0.1:7946]}", "mesh.seeds[0]: '10.0.0.1:7946' has no host name"},
      {"mesh: {seeds: [a@10.0.0.1:0]}", "a seed needs a port"},
      {"mesh: {seeds: [\"a b@h:1\"]}", "the name before @"},
      {"mesh: {enabled: true}", "set mesh.advertise"},
      {"mesh: {name: \"x/y\"}", "mesh.name: expected up to 64"},
      {"mesh: {max_message: 10}", "mesh.max_message: expected a size in 1Ki..16Mi"},
      {"mesh: {replicas: 17}", "mesh.replicas"},
      {"mesh: {replicas: -1}", "mesh.replicas"},
      {"mesh: {key_file: relative}", "mesh.key_file"},
      {"mesh: {seed: []}", "did you mean 'seeds'"},
  };
  for (const auto& [yaml, want] : cases) {
    Result<Config> c = ParseConfig(yaml);
    ASSERT_FALSE(c) << yaml;
    EXPECT_THAT(c.error().message(), HasSubstr(want)) << yaml;
  }
  EXPECT_TRUE(ParseConfig("mesh: {enabled: true, advertise: 198.18.0.1:7946}"));
}

// ---- packaging/augur.yaml --------------------------------------------------------------

// As configured for this build's install prefix from packaging/augur.yaml.in.
const fs::path kShippedConfig = fs::path(AUGUR_BUILD_DIR) / "packaging/augur.yaml";

TEST(ShippedConfigTest, ParsesToTheDefaults) {
  Result<Config> c = LoadConfigFile(kShippedConfig.string());
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(*c, DefaultConfig());
}

TEST(ShippedConfigTest, SetsEveryKeyExplicitly) {
  // Parsing to the defaults would also pass for an empty file; the file's job is to show
  // every key, so check that each one is written out.
  YAML::Node root = YAML::LoadFile(kShippedConfig.string());
  const std::map<std::string, std::vector<std::string>> keys = {
      {"telemetry",
       {"interval", "ebpf", "shm_name", "capacity", "max_series", "cgroup_depth", "max_cgroups"}},
      {"metrics",
       {"enabled", "listen", "max_connections", "max_connections_per_client", "header_timeout"}},
      {"log", {"level"}},
      {"plugins", {"dir", "enabled", "state_dir", "call_timeout", "health_interval", "config"}},
      {"forecast",
       {"enabled", "step", "horizons", "series", "state_dir", "anomaly_threshold", "max_series",
        "history"}},
      {"control", {"socket", "group"}},
      {"workflows",
       {"enabled", "state_dir", "max_output", "preemption", "aging_after", "max_cpu",
        "max_memory", "anomaly_action", "anomaly_caution", "history_retention", "start_threads",
        "prewarm"}},
      {"workflows.prewarm",
       {"enabled", "lead", "idle_timeout", "max_instances", "probe", "probe_timeout",
        "follow_window", "demand_per_hour"}},
      {"mesh",
       {"enabled", "name", "listen", "advertise", "seeds", "key_file", "authorized_keys", "zone",
        "region", "max_message", "max_transfer_bytes", "max_kept_bytes", "replicas"}},
  };
  // Values that are a list or a map; every other value is a scalar.
  const std::set<std::string> lists = {"plugins.enabled", "forecast.horizons", "forecast.series",
                                       "workflows.prewarm.probe", "mesh.seeds"};
  const std::set<std::string> maps = {"plugins.config", "workflows.prewarm"};
  size_t sections = 0;
  for (const auto& [section, names] : keys) {
    // "a.b" is the map b inside section a.
    YAML::Node node = root;
    for (size_t from = 0, dot; from <= section.size(); from = dot + 1) {
      dot = std::min(section.find('.', from), section.size());
      node.reset(node[section.substr(from, dot - from)]);
    }
    sections += section.find('.') == std::string::npos;
    ASSERT_TRUE(node.IsMap()) << section;
    EXPECT_EQ(node.size(), names.size()) << section;
    for (const std::string& name : names) {
      const YAML::Node v = node[name];
      const bool is_list = lists.contains(section + "." + name);
      const bool is_map = maps.contains(section + "." + name);
      EXPECT_TRUE(is_list ? v.IsSequence() : is_map ? v.IsMap() : v.IsScalar())
          << section << "." << name;
    }
  }
  EXPECT_EQ(root.size(), sections);
}

// mesh.max_transfer_bytes (docs/MESH.md, "Moving shard data").
TEST(MeshConfigTest, ReadsTheTransferLimit) {
  EXPECT_EQ(DefaultConfig().mesh.max_transfer_bytes, 1ULL << 30);
  Result<Config> c = ParseConfig("mesh: {max_transfer_bytes: 8Mi}\n");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->mesh.max_transfer_bytes, 8u << 20);
  for (const char* bad : {"mesh: {max_transfer_bytes: 10}\n", "mesh: {max_transfer_bytes: 2Ti}\n",
                          "mesh: {max_transfer_bytes: lots}\n"}) {
    Result<Config> e = ParseConfig(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_NE(e.error().message().find("mesh.max_transfer_bytes: expected a size in 1Ki..1Ti"),
              std::string::npos)
        << e.error().message();
  }
}

// workflows.start_threads (docs/WORKFLOWS.md, "Starting tasks"): 2 unless set, 1..64, and an
// error that names the key and the value.
TEST(WorkflowsConfigTest, ReadsTheStartThreads) {
  EXPECT_EQ(DefaultConfig().workflows.start_threads, 2u);
  for (uint32_t n : {1u, 8u, 64u}) {
    Result<Config> c = ParseConfig(fmt::format("workflows: {{start_threads: {}}}\n", n));
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_EQ(c->workflows.start_threads, n);
  }
  for (const char* bad : {"0", "65", "-1", "two", "1.5"}) {
    Result<Config> e = ParseConfig(fmt::format("workflows: {{start_threads: {}}}\n", bad));
    ASSERT_FALSE(e) << bad;
    EXPECT_THAT(e.error().message(),
                HasSubstr(fmt::format("workflows.start_threads: expected an integer in 1..64, "
                                      "got '{}'",
                                      bad)))
        << bad;
  }
}

// mesh.max_kept_bytes (docs/MESH.md, "Outputs after a takeover"): 10 GiB unless set; 0 is no
// cap.
TEST(MeshConfigTest, ReadsTheKeptOutputsCap) {
  EXPECT_EQ(DefaultConfig().mesh.max_kept_bytes, 10ULL << 30);
  Result<Config> c = ParseConfig("mesh: {max_kept_bytes: 500Mi}\n");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->mesh.max_kept_bytes, 500ULL << 20);
  c = ParseConfig("mesh: {max_kept_bytes: 0}\n");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->mesh.max_kept_bytes, 0u);
  for (const char* bad : {"mesh: {max_kept_bytes: 10}\n", "mesh: {max_kept_bytes: 2000Ti}\n",
                          "mesh: {max_kept_bytes: -1}\n"}) {
    Result<Config> e = ParseConfig(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_THAT(e.error().message(), HasSubstr("mesh.max_kept_bytes: expected a size in "
                                               "1Ki..1024Ti, or 0 for no cap"))
        << bad;
  }
}

}  // namespace
}  // namespace augur::agent
