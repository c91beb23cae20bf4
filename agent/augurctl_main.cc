// augurctl: reads augurd's shared-memory segment and checks workflow files. See README.md and
// `augurctl --help`.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/forecast_view.h"
#include "agent/top_view.h"
#include "agent/mesh_commands.h"
#include "agent/cli_completion.h"
#include "agent/ops_commands.h"
#include "augur_paths.h"
#include "agent/workflow_commands.h"
#include "common/yaml_reader.h"
#include "agent/writer_status.h"
#include "mesh/keys.h"
#include "telemetry/shm_store.h"
#include "workflow/workflow_spec.h"

namespace {

using augur::telemetry::SeriesKey;
using augur::telemetry::ShmReader;

std::unique_ptr<ShmReader> OpenOrExit(const std::string& shm) {
  auto reader = ShmReader::Open(shm);
  if (!reader) {
    std::fprintf(stderr, "augurctl: %s\n", reader.error().message().c_str());
    if (reader.error().IsNotFound()) {
      std::fprintf(stderr, "augurctl: is augurd running? (systemctl status augurd)\n");
    }
    std::exit(1);
  }
  // Data from a dead or stopped agent is said so, on stderr so that pipes stay clean.
  const augur::telemetry::SegmentInfo info = (*reader)->Info();
  if (info.stale) {
    std::fprintf(stderr, "augurctl: segment %s is %s\n", shm.c_str(),
                 augur::agent::DescribeWriter(info).c_str());
  }
  return std::move(*reader);
}

nlohmann::json LabelsJson(const SeriesKey& key) {
  nlohmann::json labels = nlohmann::json::object();
  for (const auto& [k, v] : key.labels()) labels[k] = v;
  return labels;
}

volatile std::sig_atomic_t g_stop = 0;

int Top(const std::string& shm, bool once, double interval_s) {
  augur::agent::TopOptions opts;
  opts.color = !once && isatty(STDOUT_FILENO);
  if (const char* cols = std::getenv("COLUMNS")) opts.width = std::max(60, std::atoi(cols));
  if (once) {
    auto reader = OpenOrExit(shm);
    std::fputs(augur::agent::RenderTop(*reader, opts).c_str(), stdout);
    return 0;
  }
  std::signal(SIGINT, [](int) { g_stop = 1; });
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::unique_ptr<ShmReader> reader;
  while (!g_stop) {
    std::string frame;
    if (!reader) {
      auto r = ShmReader::Open(shm);
      if (r) {
        reader = std::move(*r);
      } else {
        frame = fmt::format("augur top: waiting for augurd ({})\n", r.error().message());
      }
    } else if (auto re = reader->Refresh(); !re) {
      frame = fmt::format("augur top: {}\n", re.error().message());
      reader.reset();
    }
    if (reader) frame = augur::agent::RenderTop(*reader, opts);
    // Home the cursor and clear, then draw: one write per frame so it doesn't flicker.
    std::string out = "\x1b[H\x1b[2J" + frame;
    fwrite(out.data(), 1, out.size(), stdout);
    fflush(stdout);
    for (int i = 0; i < int(interval_s * 10) && !g_stop; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::fputs("\n", stdout);
  return 0;
}

int Series(const std::string& shm, bool json) {
  auto reader = OpenOrExit(shm);
  auto entries = reader->List();
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& e : entries) {
      nlohmann::json j{{"series", e.key.ToString()}, {"name", e.key.name()},
                       {"labels", LabelsJson(e.key)}, {"points", e.count},
                       {"capacity", e.capacity}};
      if (auto p = reader->Latest(e.id)) {
        j["latest"] = {{"timestamp_ns", p->ts_ns}, {"value", p->value}};
      }
      arr.push_back(std::move(j));
    }
    std::puts(arr.dump(2).c_str());
    return 0;
  }
  for (const auto& e : entries) {
    auto p = reader->Latest(e.id);
    std::printf("%-90s %s\n", e.key.ToString().c_str(),
                p ? fmt::format("{:g}", p->value).c_str() : "-");
  }
  return 0;
}

int Get(const std::string& shm, const std::string& series, size_t last, bool json) {
  auto key = SeriesKey::Parse(series);
  if (!key) {
    std::fprintf(stderr, "augurctl: %s\n", key.error().message().c_str());
    return 2;
  }
  auto reader = OpenOrExit(shm);
  auto id = reader->Find(*key);
  if (!id) {
    std::fprintf(stderr, "augurctl: no series %s in segment %s (augurctl series lists them)\n",
                 key->ToString().c_str(), shm.c_str());
    return 1;
  }
  auto points = reader->Last(*id, last);
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& p : points) arr.push_back({{"timestamp_ns", p.ts_ns}, {"value", p.value}});
    nlohmann::json j{{"series", key->ToString()}, {"points", std::move(arr)}};
    std::puts(j.dump(2).c_str());
    return 0;
  }
  for (const auto& p : points) {
    std::printf("%lld.%09lld %s\n", static_cast<long long>(p.ts_ns / 1'000'000'000),
                static_cast<long long>(p.ts_ns % 1'000'000'000), fmt::format("{:g}", p.value).c_str());
  }
  return 0;
}

int Forecast(const std::string& shm, const std::string& series, bool json, int width) {
  auto key = SeriesKey::Parse(series);
  if (!key) {
    std::fprintf(stderr, "augurctl: %s\n", key.error().message().c_str());
    return 2;
  }
  auto reader = OpenOrExit(shm);
  auto data = augur::agent::ReadForecast(*reader, *key);
  if (!data) {
    std::fprintf(stderr, "augurctl: %s (augurctl series lists them)\n",
                 data.error().message().c_str());
    return 1;
  }
  if (json) {
    nlohmann::json hist = nlohmann::json::array();
    for (const auto& p : data->history) hist.push_back({{"timestamp_ns", p.ts_ns}, {"value", p.value}});
    nlohmann::json fc = nlohmann::json::array();
    for (const auto& f : data->forecast) {
      fc.push_back({{"horizon", f.horizon}, {"target_timestamp", f.target_ts}, {"mean", f.mean},
                    {"lo80", f.lo}, {"hi80", f.hi}});
    }
    nlohmann::json j{{"series", key->ToString()},  {"rate", data->rate},
                     {"step_seconds", data->step_seconds}, {"issued_timestamp", data->issued_ts},
                     {"anomaly_score", data->anomaly_score},
                     {"anomaly_events", data->anomaly_events},
                     {"history", std::move(hist)}, {"forecast", std::move(fc)}};
    std::puts(j.dump(2).c_str());
    return 0;
  }
  std::fputs(augur::agent::RenderForecast(*data, width).c_str(), stdout);
  return 0;
}

// Checks a workflow file as the engine will read it. Errors go to stderr, one per line, so
// that editors can jump to FILE:LINE:COLUMN; the summary goes to stdout.
// With --json the errors (one string per line) or the counts go to stdout as one object.
int Validate(const std::string& path, bool json) {
  auto spec = augur::workflow::LoadWorkflowFile(path);
  if (!spec) {
    if (json) {
      nlohmann::json errors = nlohmann::json::array();
      std::istringstream lines(spec.error().message());
      for (std::string line; std::getline(lines, line);) errors.push_back(line);
      nlohmann::json j{{"file", path}, {"ok", false}, {"errors", std::move(errors)}};
      std::puts(j.dump(2).c_str());
      return 1;
    }
    std::fprintf(stderr, "%s\n", spec.error().message().c_str());
    return 1;
  }
  uint64_t shards = 0;
  size_t automatic = 0;  // stages whose shard count the planner picks
  for (const auto& stage : spec->stages) {
    if (stage.shards.count == 0) {
      ++automatic;
    } else {
      shards += stage.shards.count;
    }
  }
  std::string counted = fmt::format("{} stage{}, {} shard{}", spec->stages.size(),
                                    spec->stages.size() == 1 ? "" : "s", shards,
                                    shards == 1 ? "" : "s");
  if (automatic > 0) {
    counted += fmt::format(" + count: auto in {} stage{}", automatic, automatic == 1 ? "" : "s");
  }
  if (json) {
    nlohmann::json j{{"file", path},        {"ok", true},
                     {"stages", spec->stages.size()}, {"shards", shards},
                     {"auto_count_stages", automatic}, {"errors", nlohmann::json::array()}};
    std::puts(j.dump(2).c_str());
    return 0;
  }
  std::printf("%s: OK (%s)\n", path.c_str(), counted.c_str());
  return 0;
}

// augurctl keygen: the mesh host key pair (docs/MESH.md); the logic is in src/mesh/keys.cc.
int Keygen(const augur::mesh::KeygenOptions& opts) {
  auto r = augur::mesh::WriteKeyFiles(opts);
  if (!r) {
    std::fprintf(stderr, "augurctl keygen: %s\n", r.error().message().c_str());
    if (opts.name.empty()) std::fprintf(stderr, "augurctl keygen: --name gives the host name\n");
    return 1;
  }
  std::printf("wrote %s (secret, mode 0600) and %s\n", r->secret_path.c_str(),
              r->public_path.c_str());
  std::printf("add this line to the mesh authorized_keys file of every peer:\n%s\n",
              r->public_line.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"augurctl: reads what augurd measures (shared memory, no daemon round trip)"};
  app.require_subcommand(1);
  std::string shm = "augur";
  app.add_option("--shm", shm, "shared-memory segment name (telemetry.shm_name)")->capture_default_str();
  app.set_version_flag("--version", "augurctl 0.1.0");

  bool once = false;
  double interval = 1.0;
  auto* top = app.add_subcommand("top", "live view of the host, refreshing like top");
  top->add_flag("--once", once, "print one frame and exit (for scripts)");
  top->add_option("-d,--delay", interval, "seconds between frames")->check(CLI::Range(0.1, 3600.0));

  bool json = false;
  auto* series = app.add_subcommand("series", "list every series with its latest value");
  series->add_flag("--json", json, "machine-readable output");

  std::string name;
  size_t last = 10;
  auto* get = app.add_subcommand("get", "print the points of one series");
  get->add_option("SERIES", name, "series key, e.g. 'memory_bytes{kind=\"total\",source=\"procfs\"}'")
      ->required();
  get->add_option("--last", last, "how many recent points")->check(CLI::Range(1, 100000000));
  get->add_flag("--json", json, "machine-readable output");

  std::string forecast_series;
  auto* forecast = app.add_subcommand("forecast", "history and forecast of one series, plotted");
  forecast->add_option("SERIES", forecast_series, "series key, as `augurctl series` prints it")
      ->required();
  forecast->add_flag("--json", json, "machine-readable output");

  std::string workflow_file;
  auto* validate = app.add_subcommand(
      "validate", "check a workflow file: print every error, or a summary (exit 1 on errors)");
  validate->add_option("FILE", workflow_file, "workflow file (YAML, docs/WORKFLOWS.md)")
      ->required();
  validate->add_flag("--json", json, "machine-readable output: {file, ok, errors, stages, shards}");

  augur::agent::ControlTarget target;
  app.add_option("--socket", target.socket, "augurd's control socket (control.socket)")
      ->capture_default_str();
  bool wait = false, explain = false;
  std::string wf, stage, for_text;
  double points = 0;
  int limit = 100;
  auto* submit = app.add_subcommand("submit", "run a workflow file (- reads stdin); prints its id");
  submit->add_option("FILE", workflow_file, "workflow file (YAML, docs/WORKFLOWS.md)")->required();
  submit->add_flag("--wait", wait, "show progress per stage until it ends, then print the result");
  submit->add_flag("--json", json, "machine-readable output");
  auto* status = app.add_subcommand("status", "workflows, their stages and shards");
  status->add_option("WORKFLOW", wf, "a workflow id or name (default: all)");
  status->add_flag("--json", json, "machine-readable output");
  status->add_flag("--explain", explain, "each waiting shard's score, and every grant");
  auto* result = app.add_subcommand("result", "print a stage's merged output");
  result->add_option("WORKFLOW", wf, "a workflow id or name")->required();
  result->add_option("STAGE", stage, "a stage (default: the last in the file)");
  auto* cancel = app.add_subcommand("cancel", "stop every running shard and release its grant");
  cancel->add_option("WORKFLOW", wf, "a workflow id or name")->required();
  auto* boost = app.add_subcommand("boost", "raise a workflow's priority for a while");
  boost->add_option("WORKFLOW", wf, "a workflow id or name")->required();
  boost->add_option("POINTS", points, "priority points to add")->required();
  boost->add_option("--for", for_text, "how long, e.g. 10m (default: until it ends)");
  auto* history = app.add_subcommand("history", "finished shard attempts: time, CPU, memory");
  history->add_option("WORKFLOW", wf, "a workflow id or name (default: all)");
  history->add_flag("--json", json, "machine-readable output");
  history->add_option("--limit", limit, "newest this many")->check(CLI::Range(1, 1000000));

  auto* profile = app.add_subcommand(
      "profile",
      "what augurd learned about a workflow from its history: per stage run time, CPU, peak "
      "memory, bytes and cost with 80 % intervals and sample counts, how they grow with the "
      "shard's size, and the next hour's predicted submissions (with upcoming events)");
  profile->add_option("WORKFLOW", wf, "a workflow name (or the id of one)")->required();
  profile->add_option("STAGE", stage, "one stage (default: every stage)");
  profile->add_flag("--json", json, "machine-readable output");
  std::string event_name, at_text;
  double expect = 0;
  auto* event = app.add_subcommand(
      "event",
      "announce demand: about N submissions of a workflow are coming at a time; the demand "
      "forecast (augurctl profile) adds it at once. The same name again replaces the event");
  event->add_option("NAME", event_name, "the event's name (1-64 of A-Z a-z 0-9 _ - .)")->required();
  event->add_option("--workflow", wf, "the workflow name the submissions will have")->required();
  event->add_option("--expect", expect, "how many submissions (1..1000000)")
      ->required()
      ->check(CLI::Range(1.0, 1e6));
  event
      ->add_option("--at", at_text,
                   "when: an RFC 3339 time (2026-12-04T18:00:00Z) or a duration from now "
                   "(30m, 2h, 1d)")
      ->required();
  event->add_flag("--json", json, "machine-readable output");
  auto* peers = app.add_subcommand(
      "peers", "the mesh's members: state, zone, last seen, incarnation, headroom");
  peers->add_flag("--json", json, "machine-readable output");
  auto* events = app.add_subcommand("events", "the stored demand events, by time");
  events->add_option("--workflow", wf, "only those of this workflow name");
  events->add_flag("--json", json, "machine-readable output");

  augur::mesh::KeygenOptions keygen_opts{augur::mesh::DefaultKeyDir(),
                                          augur::mesh::DefaultHostName(), false};
  auto* keygen = app.add_subcommand(
      "keygen",
      "write this host's mesh key pair: DIR/host.key (the secret, mode 0600) and DIR/host.pub "
      "(the line to add to every peer's authorized_keys)");
  keygen->add_option("--out", keygen_opts.dir, "directory DIR (created if missing)")
      ->capture_default_str();
  keygen->add_option("--name", keygen_opts.name, "the host name peers know this key by")
      ->capture_default_str();
  keygen->add_flag("--force", keygen_opts.force, "replace existing key files");

  // --- Operating augurd (agent/ops_commands.h): doctor, backends. ---
  augur::agent::DoctorCommandOptions doctor_opts;
  auto* doctor = app.add_subcommand(
      "doctor",
      "check what augurd needs (BTF, BPF privilege, cgroups, the shm segment, plugin hosts, "
      "the control socket, the workflow database, mesh seeds, key files) and say how to fix "
      "each problem; exit 1 when a check fails");
  doctor->add_option("--config", doctor_opts.config_path,
                     "augurd's config file (default: " AUGUR_DEFAULT_CONFIG
                     " when present, else the built-in defaults)");
  doctor->add_flag("--json", doctor_opts.json, "machine-readable output");
  auto* backends = app.add_subcommand(
      "backends", "the provisioning backends: plugin host state, pid, restarts and health");
  backends->add_flag("--json", json, "machine-readable output");
  std::string completion_shell;
  auto* completion = app.add_subcommand(
      "completion", "print the shell completion script (bash), generated from these commands");
  completion->add_option("SHELL", completion_shell, "the shell: bash")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  // --- end of the operating block ---

  CLI11_PARSE(app, argc, argv);
  if (*doctor) {
    // --socket and --shm, when given, override the config's control.socket and shm_name.
    if (app.get_option("--socket")->count() > 0) doctor_opts.socket = target.socket;
    if (app.get_option("--shm")->count() > 0) doctor_opts.shm = shm;
    return augur::agent::DoctorCommand(doctor_opts);
  }
  if (*backends) return augur::agent::BackendsCommand(target, json);
  if (*completion) {
    std::fputs(augur::agent::BashCompletion(app, "augurctl", {{"completion SHELL", {"bash"}}})
                   .c_str(),
               stdout);
    return 0;
  }
  if (*keygen) return Keygen(keygen_opts);
  if (*profile) return augur::agent::ProfileCommand(target, wf, stage, json);
  if (*event) {
    return augur::agent::EventCommand(target, event_name, wf, expect, at_text, json);
  }
  if (*events) return augur::agent::EventsCommand(target, wf, json);
  if (*peers) return augur::agent::PeersCommand(target, json);
  if (*validate) return Validate(workflow_file, json);
  if (*submit) return augur::agent::SubmitCommand(target, workflow_file, wait, json);
  if (*status) return augur::agent::StatusCommand(target, wf, json, explain);
  if (*result) return augur::agent::ResultCommand(target, wf, stage);
  if (*cancel) return augur::agent::CancelCommand(target, wf);
  if (*history) return augur::agent::HistoryCommand(target, wf, json, limit);
  if (*boost) {
    std::chrono::milliseconds duration{0};
    if (!for_text.empty()) {
      auto d = augur::yaml::ParseDurationText(for_text);
      if (!d) {
        std::fprintf(stderr, "augurctl: --for: %s\n", d.error().message().c_str());
        return 2;
      }
      duration = *d;
    }
    return augur::agent::BoostCommand(target, wf, points, duration);
  }
  if (*top) return Top(shm, once, interval);
  if (*series) return Series(shm, json);
  if (*get) return Get(shm, name, last, json);
  if (*forecast) {
    int width = 100;
    if (const char* cols = std::getenv("COLUMNS")) width = std::max(60, std::atoi(cols));
    return Forecast(shm, forecast_series, json, width);
  }
  return 2;
}
