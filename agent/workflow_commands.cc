#include "agent/workflow_commands.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "agent/control.pb.h"
#include "agent/control_client.h"
#include "common/yaml_reader.h"
#include "workflow/workflow_spec.h"

namespace augur::agent {
namespace {

using nlohmann::json;

// One round trip; prints the error and returns nullopt when there is no OK reply.
std::optional<control::Reply> Call(const ControlTarget& t, const control::Request& req) {
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

std::optional<json> StatusOf(const ControlTarget& t, const std::string& workflow, bool explain) {
  control::Request req;
  req.mutable_status()->set_workflow(workflow);
  req.mutable_status()->set_explain(explain);
  auto r = Call(t, req);
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
  auto r = Call(t, req);
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
  auto r = Call(t, req);
  if (!r) return 1;
  fwrite(r->output().data(), 1, r->output().size(), stdout);
  return 0;
}

int CancelCommand(const ControlTarget& t, const std::string& workflow) {
  control::Request req;
  req.mutable_cancel()->set_workflow(workflow);
  auto r = Call(t, req);
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
  auto r = Call(t, req);
  if (!r) return 1;
  std::printf("%s\n", r->message().c_str());
  return 0;
}

int HistoryCommand(const ControlTarget& t, const std::string& workflow, bool as_json,
                   int limit) {
  control::Request req;
  req.mutable_history()->set_workflow(workflow);
  req.mutable_history()->set_limit(static_cast<uint32_t>(limit));
  auto r = Call(t, req);
  if (!r) return 1;
  const json h = json::parse(r->json(), nullptr, false);
  if (as_json) {
    std::printf("%s\n", h.dump(2).c_str());
    return 0;
  }
  // BYTES IN / OUT: storage bytes read and written as the backend measured them.
  std::printf("%-48s %-10s %5s %8s %8s %10s %12s %12s\n", "ATTEMPT", "STATE", "EXIT", "WALL",
              "CPU", "PEAK MEM", "BYTES IN", "BYTES OUT");
  for (const json& r2 : h) {
    std::printf("%-48s %-10s %5d %7.2fs %7.2fs %9.1fM %12llu %12llu\n",
                r2["attempt"].get<std::string>().c_str(), r2["state"].get<std::string>().c_str(),
                r2["exit_code"].get<int>(), r2["wall_seconds"].get<double>(),
                r2["cpu_seconds"].get<double>(),
                double(r2["peak_memory_bytes"].get<uint64_t>()) / (1 << 20),
                static_cast<unsigned long long>(r2["bytes_read"].get<uint64_t>()),
                static_cast<unsigned long long>(r2["bytes_written"].get<uint64_t>()));
  }
  return 0;
}

}  // namespace augur::agent
