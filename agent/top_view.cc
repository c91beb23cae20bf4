#include "agent/top_view.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "agent/writer_status.h"

namespace augur::agent {
namespace {

using telemetry::SeriesEntry;
using telemetry::ShmReader;

// Index of the segment's series by metric name, built once per frame.
class Snapshot {
 public:
  explicit Snapshot(const ShmReader& reader) : reader_(reader) {
    for (SeriesEntry& e : reader.List()) by_name_[e.key.name()].push_back(std::move(e));
  }

  const std::vector<SeriesEntry>& Family(const std::string& name) const {
    static const std::vector<SeriesEntry> kNone;
    auto it = by_name_.find(name);
    return it == by_name_.end() ? kNone : it->second;
  }

  // Entries of `name` whose labels include all of `want`; when several sources report the
  // family, eBPF's are preferred.
  std::vector<const SeriesEntry*> Select(const std::string& name,
                                         const std::vector<telemetry::Label>& want) const {
    std::vector<const SeriesEntry*> out;
    for (const SeriesEntry& e : Family(name)) {
      bool ok = true;
      for (const auto& [k, v] : want) ok = ok && e.key.label(k) == v;
      if (ok) out.push_back(&e);
    }
    const bool any_bpf = std::any_of(out.begin(), out.end(), [](const SeriesEntry* e) {
      return e->key.label("source") == "bpf";
    });
    if (any_bpf) {
      std::erase_if(out, [](const SeriesEntry* e) { return e->key.label("source") != "bpf"; });
    }
    return out;
  }

  std::optional<double> Value(const SeriesEntry& e) const {
    auto p = reader_.Latest(e.id);
    if (!p) return std::nullopt;
    return p->value;
  }
  // Per-second rate of a counter over its last two points.
  std::optional<double> Rate(const SeriesEntry& e) const {
    auto pts = reader_.Last(e.id, 2);
    if (pts.size() < 2 || pts[1].ts_ns <= pts[0].ts_ns) return std::nullopt;
    const double dv = pts[1].value - pts[0].value;
    if (dv < 0) return std::nullopt;  // counter reset
    return dv / ((pts[1].ts_ns - pts[0].ts_ns) / 1e9);
  }
  std::optional<double> One(const std::string& name,
                            const std::vector<telemetry::Label>& want) const {
    auto sel = Select(name, want);
    if (sel.empty()) return std::nullopt;
    return Value(*sel.front());
  }
  std::optional<double> OneRate(const std::string& name,
                                const std::vector<telemetry::Label>& want) const {
    auto sel = Select(name, want);
    if (sel.empty()) return std::nullopt;
    return Rate(*sel.front());
  }
  std::string SourceOf(const std::string& name) const {
    auto sel = Select(name, {});
    return sel.empty() ? "-" : std::string(sel.front()->key.label("source"));
  }

 private:
  const ShmReader& reader_;
  std::map<std::string, std::vector<SeriesEntry>> by_name_;
};

std::string Pct(std::optional<double> ratio) {
  return ratio ? fmt::format("{:5.1f}%", *ratio * 100) : std::string("    -");
}

std::string Heading(const TopOptions& o, const char* text) {
  return o.color ? fmt::format("\x1b[1m{:<6}\x1b[0m", text) : fmt::format("{:<6}", text);
}

}  // namespace

std::string FormatBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.1f} {}", bytes, kUnits[u]);
}

std::string FormatDuration(double s) {
  if (!std::isfinite(s)) return "-";
  if (s < 1e-3) return fmt::format("{:.0f}us", s * 1e6);
  if (s < 1) return fmt::format("{:.1f}ms", s * 1e3);
  return fmt::format("{:.1f}s", s);
}

std::string RenderTop(const ShmReader& reader, const TopOptions& o) {
  const telemetry::SegmentInfo info = reader.Info();
  Snapshot snap(reader);
  std::string out;

  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof(when), "%H:%M:%S", std::localtime(&now));
  out += fmt::format("augur top - {} - {} - segment {} ({}, {} series)\n", host, when,
                     reader.name(), DescribeWriter(info), info.series_count);

  // CPU: busy ratio per CPU is the rate of busy seconds.
  auto all = snap.OneRate("cpu_busy_seconds_total", {{"cpu", "all"}});
  std::vector<std::pair<int, double>> per_cpu;
  double busy_sum = 0;
  for (const SeriesEntry* e : snap.Select("cpu_busy_seconds_total", {})) {
    std::string_view cpu = e->key.label("cpu");
    if (cpu == "all" || cpu.empty()) continue;
    if (auto r = snap.Rate(*e)) {
      per_cpu.emplace_back(std::atoi(std::string(cpu).c_str()), *r);
      busy_sum += *r;
    }
  }
  std::sort(per_cpu.begin(), per_cpu.end());
  if (!all && !per_cpu.empty()) all = busy_sum / per_cpu.size();
  std::string cpus;
  for (auto& [cpu, r] : per_cpu) cpus += fmt::format(" cpu{} {}", cpu, Pct(r));
  out += fmt::format("{} busy {} |{} | src {}\n", Heading(o, "CPU"), Pct(all), cpus,
                     snap.SourceOf("cpu_busy_seconds_total"));
  auto p50 = snap.One("runqueue_latency_seconds", {{"stat", "p50"}});
  auto p99 = snap.One("runqueue_latency_seconds", {{"stat", "p99"}});
  auto mean = snap.One("runqueue_latency_seconds", {{"stat", "mean"}});
  out += fmt::format("{} run-queue latency p50 {}  p99 {}  mean {} | src {}\n", Heading(o, "RUNQ"),
                     p50 ? FormatDuration(*p50) : "-", p99 ? FormatDuration(*p99) : "-",
                     mean ? FormatDuration(*mean) : "-",
                     snap.SourceOf("runqueue_latency_seconds"));

  auto total = snap.One("memory_bytes", {{"kind", "total"}});
  auto avail = snap.One("memory_bytes", {{"kind", "available"}});
  auto cached = snap.One("memory_bytes", {{"kind", "cached"}});
  if (total && avail) {
    out += fmt::format("{} used {} / {} ({})  available {}  cached {}\n", Heading(o, "MEM"),
                       FormatBytes(*total - *avail), FormatBytes(*total),
                       Pct((*total - *avail) / *total), FormatBytes(*avail),
                       cached ? FormatBytes(*cached) : "-");
  } else {
    out += fmt::format("{} -\n", Heading(o, "MEM"));
  }

  std::string psi;
  for (const char* res : {"cpu", "memory", "io"}) {
    auto some = snap.One("pressure_ratio", {{"resource", res}, {"kind", "some"}, {"window", "10s"}});
    auto full = snap.One("pressure_ratio", {{"resource", res}, {"kind", "full"}, {"window", "10s"}});
    psi += fmt::format("  {} some {} full {}", res, Pct(some), Pct(full));
  }
  out += fmt::format("{}{}  (avg10)\n", Heading(o, "PSI"), psi);

  // Disk: one line per device with read/write throughput and latency.
  std::map<std::string, std::string> disks;
  for (const SeriesEntry* e : snap.Select("disk_io_bytes_total", {})) {
    std::string dev(e->key.label("device"));
    if (disks.contains(dev)) continue;
    auto rd = snap.OneRate("disk_io_bytes_total", {{"device", dev}, {"direction", "read"}});
    auto wr = snap.OneRate("disk_io_bytes_total", {{"device", dev}, {"direction", "write"}});
    auto lat_mean = snap.One("disk_io_latency_seconds", {{"device", dev}, {"stat", "mean"}});
    auto lat_p99 = snap.One("disk_io_latency_seconds", {{"device", dev}, {"stat", "p99"}});
    disks[dev] = fmt::format("{:<8} read {:>10}/s  write {:>10}/s  latency mean {} p99 {}", dev,
                             rd ? FormatBytes(*rd) : "-", wr ? FormatBytes(*wr) : "-",
                             lat_mean ? FormatDuration(*lat_mean) : "-",
                             lat_p99 ? FormatDuration(*lat_p99) : "-");
  }
  if (disks.empty()) out += fmt::format("{} -\n", Heading(o, "DISK"));
  for (auto& [dev, line] : disks) out += fmt::format("{} {}\n", Heading(o, "DISK"), line);

  std::map<std::string, std::string> nets;
  for (const SeriesEntry* e : snap.Select("network_bytes_total", {})) {
    std::string ifname(e->key.label("interface"));
    if (nets.contains(ifname)) continue;
    auto rx = snap.OneRate("network_bytes_total", {{"interface", ifname}, {"direction", "received"}});
    auto tx = snap.OneRate("network_bytes_total",
                           {{"interface", ifname}, {"direction", "transmitted"}});
    nets[ifname] = fmt::format("{:<8} rx {:>10}/s  tx {:>10}/s", ifname,
                               rx ? FormatBytes(*rx) : "-", tx ? FormatBytes(*tx) : "-");
  }
  for (auto& [ifname, line] : nets) out += fmt::format("{} {}\n", Heading(o, "NET"), line);
  auto retrans = snap.OneRate("tcp_retransmits_total", {});
  out += fmt::format("{} retransmits {}/s | src {}\n", Heading(o, "TCP"),
                     retrans ? fmt::format("{:.1f}", *retrans) : "-",
                     snap.SourceOf("tcp_retransmits_total"));

  // Per-cgroup table, busiest first.
  struct Row {
    std::string cgroup;
    double cpu = -1;
    std::optional<double> mem, tx, rx;
  };
  std::map<std::string, Row> rows;
  for (const SeriesEntry* e : snap.Select("cgroup_cpu_seconds_total", {})) {
    Row& r = rows[std::string(e->key.label("cgroup"))];
    r.cgroup = e->key.label("cgroup");
    r.cpu = snap.Rate(*e).value_or(-1);
  }
  for (const SeriesEntry* e : snap.Select("cgroup_memory_bytes", {})) {
    auto it = rows.find(std::string(e->key.label("cgroup")));
    if (it != rows.end()) it->second.mem = snap.Value(*e);
  }
  for (const SeriesEntry* e : snap.Select("tcp_bytes_total", {})) {
    auto it = rows.find(std::string(e->key.label("cgroup")));
    if (it == rows.end()) continue;
    (e->key.label("direction") == "sent" ? it->second.tx : it->second.rx) = snap.Rate(*e);
  }
  std::vector<Row> sorted;
  for (auto& [_, r] : rows) sorted.push_back(r);
  std::sort(sorted.begin(), sorted.end(), [](const Row& a, const Row& b) { return a.cpu > b.cpu; });
  const int name_w = std::max(20, o.width - 50);
  out += fmt::format("\n{:<{}} {:>7} {:>11} {:>11} {:>11}   (src {})\n", "CGROUP", name_w, "CPU",
                     "MEM", "TCP tx/s", "TCP rx/s", snap.SourceOf("cgroup_cpu_seconds_total"));
  int shown = 0;
  for (const Row& r : sorted) {
    if (shown++ >= o.max_cgroups) break;
    std::string name = r.cgroup;
    if (int(name.size()) > name_w) name = "..." + name.substr(name.size() - name_w + 3);
    out += fmt::format("{:<{}} {:>7} {:>11} {:>11} {:>11}\n", name, name_w,
                       r.cpu >= 0 ? fmt::format("{:.1f}%", r.cpu * 100) : "-",
                       r.mem ? FormatBytes(*r.mem) : "-", r.tx ? FormatBytes(*r.tx) : "-",
                       r.rx ? FormatBytes(*r.rx) : "-");
  }
  if (sorted.size() > size_t(o.max_cgroups)) {
    out += fmt::format("... {} more cgroups\n", sorted.size() - o.max_cgroups);
  }

  // Provisioning backends (plugins), when any are enabled.
  std::string backends;
  for (const SeriesEntry& e : snap.Family("augur_backend_up")) {
    const std::string name(e.key.label("backend"));
    const auto up = snap.Value(e);
    const auto restarts = snap.One("augur_backend_restarts_total", {{"backend", name}});
    // The reason it is down: the augur_backend_health series that reads 1.
    std::string reason;
    for (const SeriesEntry& r : snap.Family("augur_backend_health")) {
      const auto v = snap.Value(r);
      if (r.key.label("backend") == name && v && *v > 0 && r.key.label("reason") != "ok") {
        reason = fmt::format(" [{}]", r.key.label("reason"));
      }
    }
    const bool is_up = up && *up > 0;
    backends +=
        fmt::format("  {} {}{}{}", name, is_up ? "up" : "DOWN", is_up ? "" : reason,
                    restarts && *restarts > 0 ? fmt::format(" ({:.0f} restarts)", *restarts) : "");
  }
  if (!backends.empty()) out += fmt::format("\n{}{}\n", Heading(o, "BACKEND"), backends);

  auto self_cpu = snap.OneRate("augur_process_cpu_seconds_total", {});
  auto self_rss = snap.One("augur_process_resident_memory_bytes", {});
  out += fmt::format("\n{} cpu {} of one core  rss {}  shm {} used of {} mapped\n",
                     Heading(o, "AGENT"), Pct(self_cpu), self_rss ? FormatBytes(*self_rss) : "-",
                     FormatBytes(double(info.bytes_used)), FormatBytes(double(info.bytes_total)));
  return out;
}

}  // namespace augur::agent
