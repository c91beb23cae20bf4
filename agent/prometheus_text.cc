#include "agent/prometheus_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

namespace augur::agent {
namespace {

constexpr std::string_view kUpName = "augur_up";
constexpr std::string_view kStaleSinceName = "augur_stale_since_seconds";
constexpr std::string_view kBucket = "_bucket", kSum = "_sum", kCount = "_count";

// A bucket's `le` ("0.005", "+Inf") as a number; what does not parse sorts last.
double ParseLe(std::string_view le) {
  double v = std::numeric_limits<double>::infinity();
  if (le != "+Inf") std::from_chars(le.data(), le.data() + le.size(), v);
  return v;
}

void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    // to_chars' shortest form round-trips exactly and, unlike printf, ignores the locale.
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, end);
  }
}

void AppendInt(std::string& out, int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, end);
}

}  // namespace

std::string FormatPrometheusValue(double value) {
  std::string out;
  AppendValue(out, value);
  return out;
}

std::string RenderPrometheus(std::vector<PrometheusSample> samples, bool live,
                             int64_t stale_since_ns) {
  std::erase_if(samples, [](const PrometheusSample& s) {
    return s.key.name() == kUpName || s.key.name() == kStaleSinceName;
  });

  // The format wants each family's samples together under one TYPE line; the directory is in
  // creation order, so sort. Labels are rendered once here and reused as the sort key.
  // Histograms: the bases of NAME_bucket series with an `le` label.
  std::set<std::string_view> histograms;
  for (const PrometheusSample& s : samples) {
    const std::string& n = s.key.name();
    if (n.ends_with(kBucket) && !s.key.label("le").empty()) {
      histograms.insert(std::string_view(n).substr(0, n.size() - kBucket.size()));
    }
  }
  struct Row {
    const PrometheusSample* sample;
    std::string labels;
    std::string_view family;  // the name, or a histogram's base
    int part = 0;             // in a histogram: 0 buckets, 1 sum, 2 count
    double le = 0;            // a bucket's upper bound
  };
  std::vector<Row> rows;
  rows.reserve(samples.size());
  for (const PrometheusSample& s : samples) {
    Row r{&s, s.key.LabelsToString(), s.key.name()};
    for (auto [suffix, part] : {std::pair{kBucket, 0}, {kSum, 1}, {kCount, 2}}) {
      const std::string_view n = s.key.name();
      if (!n.ends_with(suffix)) continue;
      const std::string_view base = n.substr(0, n.size() - suffix.size());
      if (!histograms.contains(base)) continue;
      r.family = base;
      r.part = part;
      if (part == 0) r.le = ParseLe(s.key.label("le"));
    }
    rows.push_back(std::move(r));
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.family, a.part, a.le, a.labels) < std::tie(b.family, b.part, b.le, b.labels);
  });

  std::string out;
  out.reserve(160 + rows.size() * 96);
  out +=
      "# HELP augur_up 1 when the agent writing the store is running, 0 when its segment is "
      "stale.\n# TYPE augur_up gauge\naugur_up ";
  out += live ? "1\n" : "0\n";
  if (!live && stale_since_ns > 0) {
    out +=
        "# HELP augur_stale_since_seconds Unix time since which the agent writing the store "
        "has not been running.\n# TYPE augur_stale_since_seconds gauge\n"
        "augur_stale_since_seconds ";
    AppendValue(out, static_cast<double>(stale_since_ns) / 1e9);
    out += '\n';
  }
  std::string_view family;
  for (const Row& row : rows) {
    const std::string& name = row.sample->key.name();
    if (row.family != family) {
      out += "# TYPE ";
      out += row.family;
      out += row.family != name             ? " histogram\n"
             : row.family.ends_with("_total") ? " counter\n"
                                             : " gauge\n";
      family = row.family;
    }
    out += name;
    if (!row.labels.empty()) {
      out += '{';
      out += row.labels;  // values already escaped by LabelsToString
      out += '}';
    }
    out += ' ';
    AppendValue(out, row.sample->point.value);
    // A point without a real time (0 or before the epoch) is better without a timestamp
    // than with one Prometheus would reject as too old.
    if (row.sample->point.ts_ns > 0) {
      out += ' ';
      AppendInt(out, row.sample->point.ts_ns / 1'000'000);
    }
    out += '\n';
  }
  return out;
}

std::string RenderPrometheus(const telemetry::ShmReader& reader) {
  const telemetry::SegmentInfo info = reader.Info();
  std::vector<telemetry::SeriesEntry> entries = reader.List();
  std::vector<PrometheusSample> samples;
  samples.reserve(entries.size());
  for (telemetry::SeriesEntry& e : entries) {
    if (e.count == 0) continue;  // resolved but never written
    // nullopt also when the writer kept lapping the read; the next scrape will have it.
    std::optional<telemetry::Point> p = reader.Latest(e.id);
    if (!p) continue;
    samples.push_back(PrometheusSample{std::move(e.key), *p});
  }
  return RenderPrometheus(std::move(samples), !info.stale, info.stale_since_ns);
}

}  // namespace augur::agent
