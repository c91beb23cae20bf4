#include "agent/workflow_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <ctime>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/control.pb.h"
#include "agent/control_client.h"
#include "common/yaml_reader.h"
#include "workflow/resources.h"
#include "workflow/workflow_spec.h"

namespace augur::agent {

std::optional<control::Reply> CallAugurd(const ControlTarget& t, const control::Request& req) {
  auto reply = CallControl(t.socket, req, t.timeout);
  if (!reply) {
    std::fprintf(stderr, "augurctl: %s\n", reply.error().message().c_str());
    return std::nullopt;
  }
  if (reply->code() != 0) {
    std::fprintf(stderr, "augurctl: %s\n", reply->message().c_str());
    return std::nullopt;
  }
  return *reply;
}

namespace {

using nlohmann::json;

std::optional<json> StatusOf(const ControlTarget& t, const std::string& workflow, bool explain) {
  control::Request req;
  req.mutable_status()->set_workflow(workflow);
  req.mutable_status()->set_explain(explain);
  auto r = CallAugurd(t, req);
  if (!r) return std::nullopt;
  return json::parse(r->json(), nullptr, false);
}

std::string StageLine(const json& st) {
  const json& c = st["counts"];
  return fmt::format("  {:<16} {:<8} {:>4} shards: {} done, {} running, {} queued, {} failed{}",
                     st["name"].get<std::string>(), st["state"].get<std::string>(),
                     st["shards"].get<int>(), c.value("succeeded", 0), c.value("running", 0),
                     c.value("pending", 0), c.value("failed", 0),
                     st.value("note", "").empty() ? "" : "  (" + st.value("note", "") + ")");
}

void PrintWorkflow(const json& w, bool explain) {
  std::string line = fmt::format("{}  {}  priority {}", w["id"].get<std::string>(),
                                 w["state"].get<std::string>(), w["priority"].get<int>());
  if (w.value("boost", 0.0) != 0) line += fmt::format(" (boost {:g})", w["boost"].get<double>());
  if (w["state"] == "running") line += "  ETA " + FormatSeconds(w.value("eta_s", 0.0));
  if (w.contains("budget") && w["budget"].is_number()) {
    line += fmt::format("  cost {:.4f} of {:.4f}", w.value("spent", 0.0), w["budget"].get<double>());
  } else if (w.value("spent", 0.0) > 0) {
    line += fmt::format("  cost {:.4f}", w.value("spent", 0.0));
  }
  if (!w.value("error", "").empty()) line += "  " + w["error"].get<std::string>();
  std::printf("%s\n", line.c_str());
  for (const json& st : w["stages"]) std::printf("%s\n", StageLine(st).c_str());
  if (!explain) return;
  for (const json& st : w["stages"]) {
    if (!st.contains("count_candidates")) continue;
    std::string line = "  count: auto for " + st["name"].get<std::string>() + ":";
    for (const json& c : st["count_candidates"]) {
      line += fmt::format(" {}->{:.1f}s{}", c["count"].get<int>(), c["predicted_s"].get<double>(),
                          c.value("over_budget", false) ? "(over budget)" : "");
    }
    std::printf("%s\n", line.c_str());
  }
  for (const json& g : w.value("grants", json::array())) {
    std::printf("  granted  %-40s %s (wants %s, at least %s)\n",
                g["attempt"].get<std::string>().c_str(), g["granted"].get<std::string>().c_str(),
                g["want"].get<std::string>().c_str(), g["min"].get<std::string>().c_str());
  }
  for (const json& p : w.value("waiting", json::array())) {
    const json& s = p["score"];
    std::printf("  waiting  %-40s score %.2f = priority %.0f + boost %.1f + urgency %.2f + "
                "aging %.2f + fit %.2f - cost %.2f; %s\n",
                p["attempt"].get<std::string>().c_str(), s["total"].get<double>(),
                s["priority"].get<double>(), s["boost"].get<double>(), s["urgency"].get<double>(),
                s["aging"].get<double>(), s["fit"].get<double>(), s["cost"].get<double>(),
                p["reason"].get<std::string>().c_str());
  }
}

}  // namespace

std::string FormatSeconds(double s) {
  if (!std::isfinite(s) || s < 0) return "-";
  const long t = std::lround(s);
  if (t < 60) return fmt::format("{}s", t);
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
}

int SubmitCommand(const ControlTarget& t, const std::string& file, bool wait, bool as_json) {
  std::string yaml;
  if (file == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    yaml = ss.str();
  } else {
    auto text = yaml::ReadFileCapped(file, workflow::kMaxWorkflowFileBytes, "workflow");
    if (!text) {
      std::fprintf(stderr, "augurctl: %s\n", text.error().message().c_str());
      return 1;
    }
    yaml = std::move(*text);
  }
  control::Request req;
  req.mutable_submit()->set_yaml(yaml);
  req.mutable_submit()->set_origin(file == "-" ? "<stdin>" : file);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  const std::string id = json::parse(r->json(), nullptr, false).value("id", "");
  if (!wait) {
    if (as_json) {
      std::printf("%s\n", r->json().c_str());
    } else {
      std::printf("%s\n", id.c_str());
    }
    return 0;
  }
  const bool tty = isatty(STDERR_FILENO) != 0;
  std::string last;
  for (;;) {
    auto st = StatusOf(t, id, false);
    if (!st || !st->is_array() || st->empty()) return 1;
    const json& w = (*st)[0];
    std::string frame = fmt::format("{}  {}  ETA {}\n", id, w["state"].get<std::string>(),
                                    FormatSeconds(w.value("eta_s", 0.0)));
    for (const json& s : w["stages"]) frame += StageLine(s) + "\n";
    if (frame != last) {
      // Progress goes to stderr, so that stdout is the result alone.
      if (tty && !last.empty()) {
        const int lines = int(std::count(last.begin(), last.end(), '\n'));
        std::fprintf(stderr, "\x1b[%dA\x1b[J", lines);
      }
      std::fputs(frame.c_str(), stderr);
      last = frame;
    }
    if (w["state"] != "running") {
      if (w["state"] != "succeeded") {
        std::fprintf(stderr, "augurctl: %s %s: %s\n", id.c_str(),
                     w["state"].get<std::string>().c_str(), w.value("error", "").c_str());
        return 1;
      }
      return ResultCommand(t, id, "");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int StatusCommand(const ControlTarget& t, const std::string& workflow, bool as_json,
                  bool explain) {
  auto st = StatusOf(t, workflow, explain);
  if (!st) return 1;
  if (as_json) {
    std::printf("%s\n", st->dump(2).c_str());
    return 0;
  }
  if (st->empty()) std::printf("no workflows\n");
  for (const json& w : *st) PrintWorkflow(w, explain);
  return 0;
}

int ResultCommand(const ControlTarget& t, const std::string& workflow, const std::string& stage) {
  control::Request req;
  req.mutable_result()->set_workflow(workflow);
  req.mutable_result()->set_stage(stage);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  if (!r->message().empty()) std::fprintf(stderr, "%s\n", r->message().c_str());
  fwrite(r->output().data(), 1, r->output().size(), stdout);
  return 0;
}

int CancelCommand(const ControlTarget& t, const std::string& workflow) {
  control::Request req;
  req.mutable_cancel()->set_workflow(workflow);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  std::printf("%s\n", r->message().c_str());
  return 0;
}

int BoostCommand(const ControlTarget& t, const std::string& workflow, double points,
                 std::chrono::milliseconds duration) {
  control::Request req;
  req.mutable_boost()->set_workflow(workflow);
  req.mutable_boost()->set_points(points);
  req.mutable_boost()->set_for_ms(duration.count());
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  std::printf("%s\n", r->message().c_str());
  return 0;
}

int HistoryCommand(const ControlTarget& t, const std::string& workflow, bool as_json,
                   int limit) {
  control::Request req;
  req.mutable_history()->set_workflow(workflow);
  req.mutable_history()->set_limit(static_cast<uint32_t>(limit));
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  const json h = json::parse(r->json(), nullptr, false);
  if (as_json) {
    std::printf("%s\n", h.dump(2).c_str());
    return 0;
  }
  if (!h.is_array()) return 0;
  // Asked of another host (this one neither runs nor ran the workflow): said on stderr. A
  // replica's rows have the results only.
  if (!h.empty() && h[0].contains("answered_by")) {
    std::fprintf(stderr, "answered by %s (%sowner %s)\n", h[0].value("answered_by", "").c_str(),
                 h[0].value("source", "") == "replica" ? "a replica; " : "",
                 h[0].value("owner", "").c_str());
  }
  // BYTES IN / OUT: storage bytes read and written as the backend measured them.
  std::printf("%-48s %-10s %5s %8s %8s %10s %12s %12s\n", "ATTEMPT", "STATE", "EXIT", "WALL",
              "CPU", "PEAK MEM", "BYTES IN", "BYTES OUT");
  for (const json& r2 : h) {
    std::printf("%-48s %-10s %5d %7.2fs %7.2fs %9.1fM %12llu %12llu\n",
                r2.value("attempt", "").c_str(), r2.value("state", "").c_str(),
                r2.value("exit_code", 0), r2.value("wall_seconds", 0.0),
                r2.value("cpu_seconds", 0.0),
                double(r2.value("peak_memory_bytes", uint64_t{0})) / (1 << 20),
                static_cast<unsigned long long>(r2.value("bytes_read", uint64_t{0})),
                static_cast<unsigned long long>(r2.value("bytes_written", uint64_t{0})));
  }
  return 0;
}

namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A learned quantity as people read it: times in seconds, sizes in binary units.
std::string Amount(std::string_view quantity, double v) {
  if (!std::isfinite(v)) return "-";
  if (quantity == "wall_seconds" || quantity == "cpu_seconds") {
    return v < 60 ? fmt::format("{:.{}f}s", v, v < 10 ? 2 : 1) : FormatSeconds(v);
  }
  if (quantity == "cost") return fmt::format("{:.4g}", v);
  return workflow::FormatMemory(uint64_t(std::llround(std::max(0.0, v))));
}

std::string_view Label(std::string_view quantity) {
  if (quantity == "wall_seconds") return "wall time";
  if (quantity == "cpu_seconds") return "cpu time";
  if (quantity == "peak_memory_bytes") return "peak memory";
  if (quantity == "bytes_read") return "bytes read";
  if (quantity == "bytes_written") return "bytes written";
  return quantity;
}

// "2026-12-06 14:30 (in 28m)", in local time.
std::string When(int64_t at_ns, int64_t now_ns) {
  const time_t t = time_t(at_ns / 1'000'000'000);
  struct tm tm {};
  char buf[64] = "?";
  if (localtime_r(&t, &tm) != nullptr) std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M %Z", &tm);
  const double d = double(at_ns - now_ns) / 1e9;
  return d >= 0 ? fmt::format("{} (in {})", buf, FormatSeconds(d))
                : fmt::format("{} ({} ago)", buf, FormatSeconds(-d));
}

std::string EventLine(const json& e, int64_t now) {
  return fmt::format("{} {:g} at {}", e.value("name", ""), e.value("expected", 0.0),
                     When(e.value("at_ns", int64_t{0}), now));
}

void PrintStage(const json& st, size_t min_samples) {
  const std::string source = st["quantities"]["wall_seconds"].value("source", "none");
  const size_t samples = st.value("samples", size_t{0});
  std::string head =
      fmt::format("stage {}: {} sample{}", st.value("stage", ""), samples, samples == 1 ? "" : "s");
  if (st.value("learned", size_t{0}) > samples) {
    head += fmt::format(" (of {} learned)", st.value("learned", size_t{0}));
  }
  if (st.contains("units") && st["units"].is_object()) {
    const json& u = st["units"];
    head += u["min"] == u["max"] ? fmt::format(", shards of {:g} units", u["min"].get<double>())
                                 : fmt::format(", shards of {:g}..{:g} units",
                                               u["min"].get<double>(), u["max"].get<double>());
  }
  if (st.value("ooms", 0) > 0) head += fmt::format(", {} OOM kill(s) held", st["ooms"].get<int>());
  if (source != "history") {
    // Not enough history: say what applies instead.
    std::string fallback;
    const json& wall = st["quantities"]["wall_seconds"];
    if (source == "expected") {
      fallback = "its declared expected: " + Amount("wall_seconds", wall.value("value", 0.0));
    } else {
      fallback = "the default run time " + Amount("wall_seconds", wall.value("value", 0.0));
    }
    const json& mem = st["quantities"]["peak_memory_bytes"];
    if (mem.value("source", "") == "declared") {
      fallback += ", declared memory " + Amount("peak_memory_bytes", mem.value("value", 0.0));
    }
    std::printf("%s; fewer than %zu: %s apply\n", head.c_str(), min_samples, fallback.c_str());
    if (!st["memory_floor"].is_null()) {
      std::printf("  an OOM kill showed its peak memory is above %s\n",
                  Amount("peak_memory_bytes", st["memory_floor"].get<double>()).c_str());
    }
    return;
  }
  std::printf("%s\n", head.c_str());
  std::printf("  %-14s %10s  %-23s %7s  %-20s %s\n", "QUANTITY", "ESTIMATE", "80 % INTERVAL",
              "SAMPLES", "SIZE MODEL", "CHECKED");
  for (const char* name : {"wall_seconds", "cpu_seconds", "peak_memory_bytes", "bytes_read",
                           "bytes_written", "cost"}) {
    const json& e = st["quantities"].value(name, json::object());
    if (e.value("source", "") != "history") {
      std::printf("  %-14s %10s\n", std::string(Label(name)).c_str(), "-");
      continue;
    }
    const std::string model = e.value("size_model", "none");
    const std::string size =
        model == "none" ? "none"
                        : fmt::format("units^{:.2f} ({})", e.value("exponent", 0.0), model);
    const size_t checked = e.value("checked", size_t{0});
    const std::string cov = checked == 0
                                ? "-"
                                : fmt::format("{:.0f} % of {} inside",
                                              100 * e.value("observed_coverage", 0.0), checked);
    std::printf(
        "  %-14s %10s  %-23s %7zu  %-20s %s\n", std::string(Label(name)).c_str(),
        Amount(name, e.value("value", 0.0)).c_str(),
        (Amount(name, e.value("lo", 0.0)) + " .. " + Amount(name, e.value("hi", 0.0))).c_str(),
        e.value("samples", size_t{0}), size.c_str(), cov.c_str());
  }
  if (!st["memory_floor"].is_null()) {
    std::printf("  an OOM kill showed its peak memory is above %s\n",
                Amount("peak_memory_bytes", st["memory_floor"].get<double>()).c_str());
  }
}

}  // namespace

Result<int64_t> ParseEventTime(const std::string& at, int64_t now_ns) {
  // A date starts with four digits and a dash; nothing else in a duration does.
  if (at.size() > 4 && at[4] == '-') {
    std::optional<int64_t> ns = workflow::ParseRfc3339(at);
    if (!ns) {
      return Err(Status::InvalidArgument(
          fmt::format("bad time '{}' (use RFC 3339 with an offset, e.g. 2026-12-04T18:00:00Z, or a "
                      "duration from now such as 30m or 2h)",
                      at)));
    }
    return *ns;
  }
  auto d = yaml::ParseDurationText(at);
  if (!d) {
    return Err(Status::InvalidArgument(
        fmt::format("{} (or an RFC 3339 time such as 2026-12-04T18:00:00Z)", d.error().message())));
  }
  return now_ns + int64_t(d->count()) * 1'000'000;
}

int ProfileCommand(const ControlTarget& t, const std::string& workflow, const std::string& stage,
                   bool as_json) {
  control::Request req;
  req.mutable_profile()->set_workflow(workflow);
  req.mutable_profile()->set_stage(stage);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  const json p = json::parse(r->json(), nullptr, false);
  if (as_json) {
    std::printf("%s\n", p.dump(2).c_str());
    return 0;
  }
  if (!p.is_object()) {
    std::fprintf(stderr, "augurctl: augurd sent a profile that is not JSON\n");
    return 1;
  }
  const int64_t now = p.value("now_ns", NowNs());
  const json& d = p["demand"];
  std::string line = fmt::format("{}: next hour {:.1f} submission{} expected (80 %: {:.0f}..{:.0f}",
                                 p.value("workflow", ""), d.value("expected", 0.0),
                                 d.value("expected", 0.0) == 1 ? "" : "s",
                                 std::floor(d.value("lo", 0.0)), std::ceil(d.value("hi", 0.0)));
  if (d.value("model", "none") == "none") {
    line += "; no submissions seen)";
  } else if (d.value("model", "") == "current-hour") {
    line += "; no whole hour seen yet: this hour's count so far)";
  } else {
    line +=
        fmt::format("; {} model, {} hours seen)", d.value("model", ""), d.value("hours_seen", 0));
  }
  std::printf("%s\n", line.c_str());
  if (d.value("from_events", 0.0) > 0) {
    std::printf("  of which announced by events: %g\n", d["from_events"].get<double>());
  }
  for (const json& e : p.value("upcoming_events", json::array())) {
    std::printf("  event %s\n", EventLine(e, now).c_str());
  }
  const size_t min_samples = p.value("min_samples", size_t{3});
  for (const json& st : p.value("stages", json::array())) {
    std::printf("\n");
    PrintStage(st, min_samples);
  }
  const json& startup = p.value("startup", json::array());
  if (!startup.empty()) std::printf("\n");
  for (const json& b : startup) {
    std::printf("start-up on %s: %s (80 %%: %s .. %s, %zu samples)\n",
                b.value("backend", "").c_str(),
                Amount("wall_seconds", b.value("value", 0.0)).c_str(),
                Amount("wall_seconds", b.value("lo", 0.0)).c_str(),
                Amount("wall_seconds", b.value("hi", 0.0)).c_str(), b.value("samples", size_t{0}));
  }
  return 0;
}

int EventCommand(const ControlTarget& t, const std::string& name, const std::string& workflow,
                 double expected, const std::string& at, bool as_json) {
  auto when = ParseEventTime(at, NowNs());
  if (!when) {
    std::fprintf(stderr, "augurctl: --at: %s\n", when.error().message().c_str());
    return 2;
  }
  control::Request req;
  control::Event* e = req.mutable_event();
  e->set_name(name);
  e->set_workflow(workflow);
  e->set_expected(expected);
  e->set_at_ns(*when);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  if (as_json) {
    std::printf(
        "%s\n",
        json{{"name", name}, {"workflow", workflow}, {"expected", expected}, {"at_ns", *when}}
            .dump(2)
            .c_str());
    return 0;
  }
  std::printf("%s at %s\n", r->message().c_str(), When(*when, NowNs()).c_str());
  return 0;
}

int EventsCommand(const ControlTarget& t, const std::string& workflow, bool as_json) {
  control::Request req;
  req.mutable_events()->set_workflow(workflow);
  auto r = CallAugurd(t, req);
  if (!r) return 1;
  const json ev = json::parse(r->json(), nullptr, false);
  if (as_json) {
    std::printf("%s\n", ev.dump(2).c_str());
    return 0;
  }
  if (!ev.is_array() || ev.empty()) {
    std::printf("no events\n");
    return 0;
  }
  const int64_t now = NowNs();
  std::printf("%-24s %-24s %9s  %s\n", "EVENT", "WORKFLOW", "EXPECTED", "AT");
  for (const json& e : ev) {
    std::printf("%-24s %-24s %9g  %s\n", e.value("name", "").c_str(),
                e.value("workflow", "").c_str(), e.value("expected", 0.0),
                When(e.value("at_ns", int64_t{0}), now).c_str());
  }
  return 0;
}

}  // namespace augur::agent
