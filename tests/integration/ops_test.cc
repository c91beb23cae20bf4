// Operating augur as a sysadmin does: docs/METRICS.md against what a real augurd exports (both
// ways), the Grafana dashboard against docs/METRICS.md, `augurctl doctor` and `backends`
// against a running augurd, the man pages (each builds and renders without a warning;
// augur.yaml(5) names every key the config parser accepts; augurctl(1) every command),
// `--help` and `--json` on the commands, and the bash completion file against what
// `augurctl completion bash` prints, and completing in a real bash.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/config.h"
#include "integration/subprocess.h"

namespace augur {
namespace {

using testing::BuildPath;
using testing::FreePort;
using testing::ReadFile;

using ::testing::HasSubstr;
using testing::Subprocess;
using testing::WaitFor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string SourcePath(const std::string& rel) { return std::string(AUGUR_SOURCE_DIR) + "/" + rel; }
const std::string kAugurctl = BuildPath("agent/augurctl");

// --- docs/METRICS.md -------------------------------------------------------------------

struct DocRow {
  std::string name;  // `SERIES:...` rows are patterns over forecast series
  std::string type;
  std::set<std::string> labels;
  std::string condition;
  bool pattern = false;
};

std::vector<DocRow> ReadMetricsDoc() {
  std::vector<DocRow> rows;
  std::istringstream in(ReadFile(SourcePath("docs/METRICS.md")));
  const std::regex label_re("`([a-z_]+)`");
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("| `")) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) {
      const size_t b = cell.find_first_not_of(' ');
      const size_t e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    EXPECT_EQ(cells.size(), 6u) << "a METRICS.md row needs 6 cells: " << line;
    if (cells.size() != 6) continue;
    DocRow r;
    r.name = cells[0].substr(1, cells[0].size() - 2);
    r.type = cells[1];
    for (auto it = std::sregex_iterator(cells[3].begin(), cells[3].end(), label_re);
         it != std::sregex_iterator(); ++it) {
      r.labels.insert((*it)[1]);
    }
    r.condition = cells[5];
    r.pattern = r.name.starts_with("SERIES:");
    EXPECT_TRUE(r.type == "counter" || r.type == "gauge" || r.type == "histogram") << line;
    EXPECT_EQ(r.type == "counter", r.name.ends_with("_total")) << "type of " << r.name;
    EXPECT_FALSE(cells[2].empty()) << "no unit for " << r.name;
    EXPECT_FALSE(cells[4].empty()) << "no source for " << r.name;
    EXPECT_FALSE(r.condition.empty()) << "no condition for " << r.name;
    rows.push_back(std::move(r));
  }
  return rows;
}

// The documented row a family belongs to, or nullptr.
const DocRow* FindRow(const std::vector<DocRow>& rows, const std::string& family) {
  for (const DocRow& r : rows) {
    if (!r.pattern && r.name == family) return &r;
  }
  // A histogram's samples, as a query names them.
  for (const DocRow& r : rows) {
    if (r.type != "histogram") continue;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (family == r.name + suffix) return &r;
    }
  }
  for (const DocRow& r : rows) {
    if (!r.pattern) continue;
    const std::regex re("[a-z_][a-z0-9_]*(:rate)?" + r.name.substr(6));
    if (std::regex_match(family, re)) return &r;
  }
  return nullptr;
}

struct Family {
  std::string type;
  std::set<std::string> labels;
  std::set<std::string> sources;
};

std::map<std::string, Family> ParseExposition(const std::string& text) {
  std::map<std::string, Family> out;
  std::istringstream in(text);
  const std::regex label_re("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# TYPE ")) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      out[name].type = type;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const size_t end = line.find_first_of("{ ");
    Family& f = out[line.substr(0, end)];
    if (end != std::string::npos && line[end] == '{') {
      const std::string labels = line.substr(end + 1, line.rfind('}') - end - 1);
      for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label_re);
           it != std::sregex_iterator(); ++it) {
        f.labels.insert((*it)[1]);
        if ((*it)[1] == "source") f.sources.insert((*it)[2]);
      }
    }
  }
  // A histogram NAME's samples (NAME_bucket, NAME_sum, NAME_count) are the family NAME.
  for (auto& [name, f] : out) {
    if (f.type != "histogram") continue;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      auto part = out.find(name + suffix);
      if (part == out.end() || !part->second.type.empty()) continue;
      f.labels.insert(part->second.labels.begin(), part->second.labels.end());
      f.sources.insert(part->second.sources.begin(), part->second.sources.end());
      out.erase(part);
    }
  }
  return out;
}

// Conditions the test's augurd meets (METRICS.md's condition column). eBPF rows count only
// when its eBPF collectors loaded (the scrape has source="bpf" series).
bool Required(const DocRow& r, bool bpf_loaded) {
  for (std::string_view c : {"always", "plugins.enabled", "the workflow engine runs",
                             "mesh.enabled", "forecast.series"}) {
    if (r.condition == c) return true;
  }
  return r.condition == "eBPF" && bpf_loaded;
}

class OpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = fmt::format("augur-ops-{}-{}", getpid(),
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    dir_ = fs::path("/tmp") / name_;
    fs::create_directories(dir_);
  }
  void TearDown() override {
    agent_.reset();
    shm_unlink(name_.c_str());
    unlink(("/dev/shm/" + name_ + ".lock").c_str());
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      std::error_code rm;
      fs::remove(e.path() / name_, rm);
    }
    fs::remove_all(dir_, ec);
  }

  // Starts augurd with every part on: eBPF (auto), the process backend, the workflow engine,
  // the mesh (alone, on loopback) and two forecast series (a counter and a gauge) stepping
  // every second.
  void StartFullAgent() {
    auto keys =
        testing::Run({kAugurctl, "keygen", "--out", (dir_ / "keys").string(), "--name", "ops-1"});
    ASSERT_EQ(keys.code, 0) << keys.err;
    fs::copy_file(dir_ / "keys/host.pub", dir_ / "authorized_keys");
    port_ = FreePort();
    config_ = (dir_ / "augur.yaml").string();
    std::ofstream(config_) << fmt::format(
        R"(telemetry: {{interval: 200ms, shm_name: {name}}}
metrics: {{listen: "127.0.0.1:{port}"}}
forecast:
  step: 1s
  horizons: [1, 2]
  state_dir: ""
  series: [cpu_busy_seconds_total, 'memory_bytes{{kind="available"}}']
plugins:
  dir: {build}/plugins
  enabled: [process]
  state_dir: {dir}/plugins
  config: {{process: {{cgroup_parent: {name}}}}}
workflows: {{state_dir: {dir}/wf}}
control: {{socket: {dir}/augur.sock, group: root}}
mesh:
  enabled: true
  name: ops-1
  listen: 127.0.0.1:{mesh_port}
  key_file: {dir}/keys/host.key
  authorized_keys: {dir}/authorized_keys
)",
        fmt::arg("name", name_), fmt::arg("port", port_), fmt::arg("build", AUGUR_BUILD_DIR),
        fmt::arg("dir", dir_.string()), fmt::arg("mesh_port", FreePort()));
    agent_ = std::make_unique<Subprocess>(
        std::vector<std::string>{BuildPath("agent/augurd"), "--config", config_});
  }

  std::string Scrape() {
    httplib::Client http("127.0.0.1", port_);
    auto res = http.Get("/metrics");
    return res && res->status == 200 ? res->body : "";
  }

  std::string name_;
  fs::path dir_;
  std::string config_;
  int port_ = 0;
  std::unique_ptr<Subprocess> agent_;
};

TEST_F(OpsTest, MetricsDocMatchesWhatAugurdExports) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the process backend makes cgroups";
  const std::vector<DocRow> rows = ReadMetricsDoc();
  ASSERT_GT(rows.size(), 50u);
  StartFullAgent();
  std::map<std::string, Family> exported;
  bool bpf = false;
  std::vector<std::string> missing;
  // Until every required family is there (forecasts need their first step to close).
  WaitFor(
      [&] {
        if (!agent_->running()) return true;
        exported = ParseExposition(Scrape());
        bpf = false;
        for (const auto& [name, f] : exported) bpf = bpf || f.sources.contains("bpf");
        missing.clear();
        for (const DocRow& r : rows) {
          if (!Required(r, bpf)) continue;
          bool found = false;
          for (const auto& [name, f] : exported) found = found || FindRow({r}, name) != nullptr;
          if (!found) missing.push_back(r.name);
        }
        return missing.empty();
      },
      60s);
  ASSERT_TRUE(agent_->running()) << agent_->err();
  EXPECT_THAT(missing, ::testing::IsEmpty()) << "documented, required, not exported";

  // Every exported family is documented, with its type and labels.
  for (const auto& [name, f] : exported) {
    const DocRow* r = FindRow(rows, name);
    if (r == nullptr) {
      ADD_FAILURE() << name << " is exported but not in docs/METRICS.md";
      continue;
    }
    EXPECT_EQ(f.type, r->type) << name;
    if (r->pattern) {
      if (r->labels.contains("horizon")) {
        EXPECT_TRUE(f.labels.contains("horizon")) << name;
      }
      continue;
    }
    for (const std::string& l : f.labels) {
      EXPECT_TRUE(r->labels.contains(l)) << name << " has label " << l << ", not documented";
    }
    if (Required(*r, bpf)) {
      for (const std::string& l : r->labels) {
        EXPECT_TRUE(f.labels.contains(l)) << name << " documents label " << l << ", not seen";
      }
    }
  }
  agent_->Signal(SIGTERM);
  EXPECT_EQ(agent_->Wait(20s), 0) << agent_->err();
}

// --- the dashboard ---------------------------------------------------------------------

// The metric names a PromQL expression reads: identifiers that are not functions,
// aggregation clauses, keywords, label names or Grafana variables.
std::set<std::string> MetricNames(std::string expr) {
  const auto strip = [&](const std::regex& re) { expr = std::regex_replace(expr, re, " "); };
  // label_values(METRIC, LABEL) in a variable's query reads METRIC only.
  expr = std::regex_replace(expr, std::regex("label_values\\(\\s*([^,]+),\\s*[a-zA-Z_]+\\s*\\)"),
                            "$1");
  strip(std::regex("\"(?:[^\"\\\\]|\\\\.)*\""));  // label values
  strip(std::regex("\\{[^}]*\\}"));               // label matchers
  strip(std::regex("\\[[^\\]]*\\]"));             // ranges
  strip(std::regex("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)"));
  strip(std::regex("\\$[A-Za-z_]+"));  // $__rate_interval, $instance
  std::set<std::string> out;
  const std::set<std::string> keywords = {"by",  "without", "on",     "ignoring", "bool",
                                          "and", "or",      "unless", "offset"};
  const std::regex ident("([a-zA-Z_:][a-zA-Z0-9_:]*)(\\s*\\()?");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), ident);
       it != std::sregex_iterator(); ++it) {
    if ((*it)[2].matched) continue;  // a function or aggregation
    const std::string word = (*it)[1];
    const size_t at = static_cast<size_t>(it->position(0));
    if (at > 0 && std::isdigit(static_cast<unsigned char>(expr[at - 1]))) continue;
    if (!keywords.contains(word)) out.insert(word);
  }
  return out;
}

void CollectExprs(const nlohmann::json& j, std::vector<std::string>* out) {
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if ((k == "expr" || k == "definition") && v.is_string()) out->push_back(v);
      CollectExprs(v, out);
    }
  } else if (j.is_array()) {
    for (const auto& v : j) CollectExprs(v, out);
  }
}

TEST(OpsDashboardTest, DashboardQueriesOnlyDocumentedSeries) {
  EXPECT_EQ(
      MetricNames(
          "sum by (instance, cgroup) (rate(a_total{x=\"y\",z=~\"$i\"}[$__rate_interval])) / b"),
      (std::set<std::string>{"a_total", "b"}));
  EXPECT_EQ(MetricNames("topk(10, m:rate:forecast_mean{h=\"15\"}) > 0"),
            (std::set<std::string>{"m:rate:forecast_mean"}));
  const nlohmann::json dash =
      nlohmann::json::parse(ReadFile(SourcePath("packaging/grafana/augur.json")), nullptr, false);
  ASSERT_TRUE(dash.is_object()) << "packaging/grafana/augur.json is not JSON";
  // Importable: a title and uid, panels with unique ids on the 24-column grid, each query
  // with a refId and the dashboard's data source variable.
  EXPECT_FALSE(dash.value("uid", "").empty());
  EXPECT_FALSE(dash.value("title", "").empty());
  std::set<int> ids;
  for (const nlohmann::json& p : dash["panels"]) {
    EXPECT_TRUE(ids.insert(p.value("id", -1)).second) << "panel id repeated: " << p.dump();
    const nlohmann::json& g = p["gridPos"];
    EXPECT_LE(g.value("x", 99) + g.value("w", 99), 24) << p.value("title", "");
    if (p.value("type", "") == "row") continue;
    ASSERT_TRUE(p.contains("targets")) << p.value("title", "");
    for (const nlohmann::json& t : p["targets"]) {
      EXPECT_FALSE(t.value("refId", "").empty()) << p.value("title", "");
      EXPECT_EQ(t["datasource"].value("uid", ""), "${datasource}") << p.value("title", "");
    }
  }
  std::vector<std::string> exprs;
  CollectExprs(dash, &exprs);
  ASSERT_GT(exprs.size(), 30u);
  const std::vector<DocRow> rows = ReadMetricsDoc();
  std::set<std::string> used;
  for (const std::string& e : exprs) {
    for (const std::string& name : MetricNames(e)) {
      used.insert(name);
      EXPECT_NE(FindRow(rows, name), nullptr)
          << name << " (in " << e << ") is not in docs/METRICS.md";
    }
  }
  // The dashboard covers each part: host, forecasts, backends, workflows, mesh, the agent.
  for (const char* name :
       {"cpu_busy_seconds_total", "memory_bytes:forecast_mean", "augur_backend_up",
        "augur_prewarm_hits_total", "augur_mesh_members", "augur_up"}) {
    EXPECT_TRUE(used.contains(name)) << name;
  }
}

// --- augurctl doctor and backends against a running augurd ------------------------------

TEST_F(OpsTest, DoctorAndBackendsAgainstARunningAgent) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the process backend makes cgroups";
  StartFullAgent();
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = testing::Run(
            {kAugurctl, "--socket", (dir_ / "augur.sock").string(), "backends", "--json"});
        auto j = nlohmann::json::parse(r.out, nullptr, false);
        return !agent_->running() ||
               (r.code == 0 && j.is_array() && !j.empty() && j[0].value("healthy", false));
      },
      30s))
      << agent_->err();
  ASSERT_TRUE(agent_->running()) << agent_->err();
  auto text = testing::Run({kAugurctl, "--socket", (dir_ / "augur.sock").string(), "backends"});
  EXPECT_EQ(text.code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("process"));
  EXPECT_THAT(text.out, HasSubstr("healthy"));

  auto doctor = testing::Run({kAugurctl, "doctor", "--config", config_, "--json"});
  const nlohmann::json j = nlohmann::json::parse(doctor.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << doctor.out << doctor.err;
  std::map<std::string, std::string> state;
  bool failed = false;
  for (const auto& c : j["checks"]) {
    state[c["name"]] = c["state"];
    failed = failed || c["state"] == "fail";
    if (c["state"] == "fail") {
      EXPECT_FALSE(c["fix"].get<std::string>().empty()) << c.dump();
    }
  }
  EXPECT_EQ(doctor.code, failed ? 1 : 0);
  EXPECT_EQ(j["ok"], !failed);
  for (const char* name : {"config", "shm", "plugins", "control", "database", "seeds", "keys"}) {
    EXPECT_EQ(state[name], "ok") << name << ": " << j.dump(2);
  }

  // The same agent seen through a socket with the wrong mode: named, with its fix.
  ASSERT_EQ(chmod((dir_ / "augur.sock").c_str(), 0666), 0);
  auto wide = testing::Run({kAugurctl, "doctor", "--config", config_});
  EXPECT_EQ(wide.code, 1);
  EXPECT_THAT(wide.out, HasSubstr("[FAIL] control"));
  EXPECT_THAT(wide.out, HasSubstr("mode is 0666, want 0660"));
  agent_->Signal(SIGTERM);
  EXPECT_EQ(agent_->Wait(20s), 0) << agent_->err();

  // Stopped: what needs the agent is said, not guessed.
  auto stopped = testing::Run({kAugurctl, "doctor", "--config", config_, "--json"});
  const nlohmann::json s = nlohmann::json::parse(stopped.out, nullptr, false);
  ASSERT_TRUE(s.is_object()) << stopped.out;
  EXPECT_EQ(stopped.code, 1);
  for (const auto& c : s["checks"]) {
    if (c["name"] == "shm") {
      EXPECT_EQ(c["state"], "fail");
    }
    if (c["name"] == "plugins") {
      EXPECT_EQ(c["state"], "skip") << c.dump();
    }
  }
}

// --- man pages -------------------------------------------------------------------------

std::vector<fs::path> ManSources() {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(SourcePath("docs/man"))) {
    if (e.path().extension() == ".md") out.push_back(e.path());
  }
  return out;
}

TEST(OpsManTest, EveryManPageBuildsAndRendersWithoutWarnings) {
  const std::vector<fs::path> sources = ManSources();
  // augurd(8), augurctl(1), augur.yaml(5), augur-plugin(7), augur-plugin-check(1).
  ASSERT_EQ(sources.size(), 5u);
  if (!fs::exists(BuildPath("man")))
    GTEST_SKIP() << "no go-md2man at configure time (apt-get install go-md2man)";
  for (const fs::path& src : sources) {
    const std::string page = BuildPath("man/" + src.stem().string());  // augurd.8
    ASSERT_TRUE(fs::exists(page)) << page << " was not built (cmake --build build -t man)";
    EXPECT_GT(fs::file_size(page), 1000u) << page;
    EXPECT_LT(fs::last_write_time(src), fs::last_write_time(page) + 1s)
        << page << " is older than its source";
    const std::string roff = ReadFile(page);
    EXPECT_THAT(roff, HasSubstr(".TH ")) << page;
    EXPECT_FALSE(std::regex_search(roff, std::regex("@[A-Z_]+@")))
        << page << ": a @VAR@ left unfilled";
    auto r = testing::Run({"/bin/sh", "-c", "groff -t -man -Tutf8 -ww -z '" + page + "' 2>&1"});
    EXPECT_EQ(r.code, 0) << page;
    EXPECT_EQ(r.out, "") << page << ": groff warnings";
  }
}

TEST(OpsManTest, ConfigManPageNamesEveryKeyTheParserAccepts) {
  const std::string md = ReadFile(SourcePath("docs/man/augur.yaml.5.md"));
  const std::vector<std::string> keys = agent::ConfigKeys();
  ASSERT_GT(keys.size(), 60u);
  for (const std::string& key : keys) {
    if (key.find('.') == std::string::npos) {
      // A section: its heading.
      std::string heading = "# " + key;
      for (char& c : heading) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      EXPECT_THAT(md, HasSubstr("\n" + heading + "\n")) << "section " << key;
      continue;
    }
    EXPECT_THAT(md, HasSubstr("**" + key + "**")) << key << " is not described in augur.yaml(5)";
  }
}

// The subcommands `augurctl --help` lists.
std::vector<std::string> AugurctlCommands() {
  auto r = testing::Run({kAugurctl, "--help"});
  std::vector<std::string> out;
  std::istringstream in(r.out);
  bool in_list = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("Subcommands:")) {
      in_list = true;
    } else if (in_list && line.starts_with("  ") && line[2] != ' ') {
      out.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return out;
}

TEST(OpsManTest, AugurctlManPageNamesEveryCommand) {
  const std::string md = ReadFile(SourcePath("docs/man/augurctl.1.md"));
  const std::vector<std::string> commands = AugurctlCommands();
  ASSERT_GT(commands.size(), 15u);
  for (const std::string& c : commands) {
    EXPECT_THAT(md, HasSubstr("\n**" + c + "**")) << c << " is not in augurctl(1)";
  }
}

// --- --help, --json and completion -----------------------------------------------------

TEST(OpsCliTest, EveryCommandHasHelpAndEveryListingTakesJson) {
  const std::vector<std::string> commands = AugurctlCommands();
  // The commands whose output is a list or a record a script would parse.
  const std::set<std::string> listing = {"series", "get",      "forecast", "validate", "submit",
                                         "status", "history",  "profile",  "event",    "events",
                                         "peers",  "backends", "doctor"};
  for (const std::string& c : listing) {
    EXPECT_NE(std::find(commands.begin(), commands.end(), c), commands.end()) << c;
  }
  for (const std::string& c : commands) {
    auto r = testing::Run({kAugurctl, c, "--help"});
    EXPECT_EQ(r.code, 0) << c << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("Usage:")) << c;
    EXPECT_THAT(r.out, HasSubstr("-h,--help")) << c;
    // A description line before "Usage:".
    EXPECT_GT(r.out.find("Usage:"), 10u) << c << " has no description";
    if (listing.contains(c)) {
      EXPECT_THAT(r.out, HasSubstr("--json")) << c << " lists without --json";
    }
  }
}

TEST(OpsCliTest, CompletionFileIsWhatAugurctlPrintsAndCompletes) {
  auto r = testing::Run({kAugurctl, "completion", "bash"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string file = SourcePath("packaging/completion/augurctl.bash");
  EXPECT_EQ(ReadFile(file), r.out)
      << "packaging/completion/augurctl.bash is out of date: build/agent/augurctl completion "
         "bash > packaging/completion/augurctl.bash";
  EXPECT_NE(testing::Run({kAugurctl, "completion", "zsh"}).code, 0);

  // What bash completes, word by word, with the script loaded as bash-completion would.
  const auto complete = [&](const std::string& words, int cword) {
    const std::string script = fmt::format(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _augurctl; for w in \"${{COMPREPLY[@]}}\"; "
        "do echo \"$w\"; done",
        file, words, cword);
    auto out = testing::Run({"/bin/bash", "--norc", "-c", script});
    EXPECT_EQ(out.code, 0) << out.err;
    std::vector<std::string> got;
    std::istringstream in(out.out);
    for (std::string line; std::getline(in, line);) got.push_back(line);
    return got;
  };
  using ::testing::Contains;
  using ::testing::ElementsAre;
  EXPECT_THAT(complete("augurctl do", 1), ElementsAre("doctor"));
  EXPECT_THAT(complete("augurctl --socket /tmp/x.sock bac", 3), ElementsAre("backends"));
  EXPECT_THAT(complete("augurctl doctor --j", 2), ElementsAre("--json"));
  EXPECT_THAT(complete("augurctl completion ''", 2), ElementsAre("bash"));
  EXPECT_THAT(complete("augurctl top -d ''", 3), ::testing::IsEmpty());  // a number
  EXPECT_THAT(complete(fmt::format("augurctl validate {}/examples/fano", AUGUR_SOURCE_DIR), 2),
              ElementsAre(std::string(AUGUR_SOURCE_DIR) + "/examples/fanout.yaml"));
  for (const std::string& c : AugurctlCommands()) {
    EXPECT_THAT(complete("augurctl " + c + " --", 2), Contains("--help")) << c;
  }
}

}  // namespace
}  // namespace augur
