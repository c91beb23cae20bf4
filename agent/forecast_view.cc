#include "agent/forecast_view.h"

#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "agent/forecast_runner.h"

namespace augur::agent {
namespace {

using telemetry::SeriesKey;

std::optional<double> LatestOf(const telemetry::ShmReader& reader, const SeriesKey& key,
                               double* ts = nullptr) {
  auto id = reader.Find(key);
  if (!id) return std::nullopt;
  auto p = reader.Latest(*id);
  if (!p) return std::nullopt;
  if (ts) *ts = p->ts_ns / 1e9;
  return p->value;
}

std::string FormatValue(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  if (a != 0 && (a >= 1e7 || a < 1e-3)) return fmt::format("{:.3g}", v);
  return fmt::format("{:.4g}", v);
}

}  // namespace

Result<ForecastData> ReadForecast(const telemetry::ShmReader& reader, const SeriesKey& key,
                                  size_t max_points) {
  auto id = reader.Find(key);
  if (!id) {
    return Err(Status::NotFound("no series " + key.ToString() + " in segment " + reader.name()));
  }
  ForecastData d;
  d.key = key;
  d.rate = key.name().ends_with("_total");
  std::vector<telemetry::Point> raw = reader.Last(*id, max_points);
  if (d.rate) {
    for (size_t i = 1; i < raw.size(); ++i) {
      const double dt = (raw[i].ts_ns - raw[i - 1].ts_ns) / 1e9;
      const double dv = raw[i].value - raw[i - 1].value;
      if (dt > 0 && dv >= 0) d.history.push_back({raw[i].ts_ns, dv / dt});
    }
  } else {
    d.history = std::move(raw);
  }
  d.step_seconds = LatestOf(reader, SeriesKey("augur_forecast_step_seconds", {})).value_or(0);

  // The published forecasts are the derived series carrying this key's labels plus horizon.
  const std::string mean_name = DerivedName(key, "forecast_mean");
  std::map<int, ForecastPoint> by_h;
  for (const telemetry::SeriesEntry& e : reader.List()) {
    if (e.key.name() != mean_name) continue;
    std::vector<telemetry::Label> rest;
    int horizon = 0;
    for (const auto& [k, v] : e.key.labels()) {
      if (k == "horizon") {
        horizon = std::atoi(v.c_str());
      } else {
        rest.emplace_back(k, v);
      }
    }
    if (horizon <= 0 || SeriesKey(key.name(), rest) != key) continue;
    ForecastPoint fp;
    fp.horizon = horizon;
    double issued = 0;
    fp.mean = LatestOf(reader, e.key, &issued).value_or(NAN);
    std::vector<telemetry::Label> labels = e.key.labels();
    fp.lo = LatestOf(reader, SeriesKey(DerivedName(key, "forecast_lo80"), labels)).value_or(NAN);
    fp.hi = LatestOf(reader, SeriesKey(DerivedName(key, "forecast_hi80"), labels)).value_or(NAN);
    fp.target_ts = issued + horizon * d.step_seconds;
    d.issued_ts = std::max(d.issued_ts, issued);
    by_h[horizon] = fp;
  }
  for (auto& [h, fp] : by_h) d.forecast.push_back(fp);
  d.anomaly_score =
      LatestOf(reader, SeriesKey(DerivedName(key, "anomaly_score"), key.labels())).value_or(0);
  d.anomaly_events =
      LatestOf(reader, SeriesKey(DerivedName(key, "anomaly_events_total"), key.labels()))
          .value_or(0);
  return d;
}

std::string RenderForecast(const ForecastData& d, int width, int height) {
  std::string out = fmt::format("{}{}\n", d.key.ToString(), d.rate ? "  (per-second rate)" : "");
  if (d.history.empty()) return out + "no points yet\n";
  const int label_w = 11;
  const int plot_w = std::max(20, width - label_w - 1);
  height = std::max(6, height);

  // Time window: the forecast takes the right quarter, history the rest.
  const double t_last = d.history.back().ts_ns / 1e9;
  double t_end = t_last;
  for (const ForecastPoint& f : d.forecast) t_end = std::max(t_end, f.target_ts + d.step_seconds);
  double t_begin = d.history.front().ts_ns / 1e9;
  if (t_end > t_last) t_begin = std::max(t_begin, t_last - 3 * (t_end - t_last));
  if (t_end <= t_begin) t_end = t_begin + 1;
  const double col_s = (t_end - t_begin) / plot_w;

  // Per column: the mean of the history points in it, and the interpolated forecast.
  std::vector<double> hist(plot_w, NAN), fmean(plot_w, NAN), flo(plot_w, NAN), fhi(plot_w, NAN);
  std::vector<int> counts(plot_w, 0);
  for (const telemetry::Point& p : d.history) {
    const double t = p.ts_ns / 1e9;
    if (t < t_begin) continue;
    const int c = std::min(plot_w - 1, static_cast<int>((t - t_begin) / col_s));
    hist[c] = counts[c] == 0 ? p.value : hist[c] + p.value;
    ++counts[c];
  }
  for (int c = 0; c < plot_w; ++c) {
    if (counts[c] > 0) hist[c] /= counts[c];
  }
  if (!d.forecast.empty()) {
    // Anchor the band at the last observed value so it joins the history.
    std::vector<ForecastPoint> knots;
    knots.push_back({0, t_last, d.history.back().value, d.history.back().value,
                     d.history.back().value});
    for (const ForecastPoint& f : d.forecast) {
      ForecastPoint k = f;
      k.target_ts += d.step_seconds / 2;  // middle of the forecast step
      knots.push_back(k);
    }
    for (int c = 0; c < plot_w; ++c) {
      const double t = t_begin + (c + 0.5) * col_s;
      if (t <= t_last) continue;
      for (size_t k = 1; k < knots.size(); ++k) {
        if (t > knots[k].target_ts) continue;
        const double w = (t - knots[k - 1].target_ts) / (knots[k].target_ts - knots[k - 1].target_ts);
        fmean[c] = knots[k - 1].mean + w * (knots[k].mean - knots[k - 1].mean);
        flo[c] = knots[k - 1].lo + w * (knots[k].lo - knots[k - 1].lo);
        fhi[c] = knots[k - 1].hi + w * (knots[k].hi - knots[k - 1].hi);
        break;
      }
    }
  }

  double lo = INFINITY, hi = -INFINITY;
  for (const auto* v : {&hist, &fmean, &flo, &fhi}) {
    for (double x : *v) {
      if (std::isfinite(x)) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
  }
  if (hi - lo < 1e-12) {
    hi += std::max(1.0, std::fabs(hi) * 0.05);
    lo -= std::max(1.0, std::fabs(lo) * 0.05);
  }
  auto row_of = [&](double v) {
    const int r = static_cast<int>(std::lround((hi - v) / (hi - lo) * (height - 1)));
    return std::clamp(r, 0, height - 1);
  };

  std::vector<std::string> grid(height, std::string(plot_w, ' '));
  for (int c = 0; c < plot_w; ++c) {
    if (std::isfinite(flo[c]) && std::isfinite(fhi[c])) {
      for (int r = row_of(fhi[c]); r <= row_of(flo[c]); ++r) grid[r][c] = ':';
    }
    if (std::isfinite(fmean[c])) grid[row_of(fmean[c])][c] = 'o';
    if (std::isfinite(hist[c])) grid[row_of(hist[c])][c] = '*';
  }
  const int now_col = std::clamp(static_cast<int>((t_last - t_begin) / col_s), 0, plot_w - 1);
  for (int r = 0; r < height; ++r) {
    if (grid[r][now_col] == ' ') grid[r][now_col] = '|';
    const double v = hi - (hi - lo) * r / (height - 1);
    const bool labelled = r == 0 || r == height - 1 || r == height / 2;
    out += fmt::format("{:>{}} {}\n", labelled ? FormatValue(v) : "", label_w, grid[r]);
  }
  out += fmt::format("{:>{}} {:<{}}{}\n", "", label_w,
                     fmt::format("-{:.0f}s", t_last - t_begin), now_col, "now");
  out += fmt::format("{:>{}} * history  o forecast mean  : 80% interval\n\n", "", label_w);

  if (d.forecast.empty()) {
    out += "no forecast yet (is the series selected in forecast.series, and has one step passed?)\n";
  } else {
    out += fmt::format("step {:.0f}s  anomaly score {:.2f}  anomaly events {:.0f}\n",
                       d.step_seconds, d.anomaly_score, d.anomaly_events);
    out += fmt::format("{:>8} {:>10} {:>12} {:>12} {:>12}\n", "horizon", "ahead", "mean", "lo80",
                       "hi80");
    for (const ForecastPoint& f : d.forecast) {
      out += fmt::format("{:>8} {:>9.0f}s {:>12} {:>12} {:>12}\n", f.horizon,
                         f.horizon * d.step_seconds, FormatValue(f.mean), FormatValue(f.lo),
                         FormatValue(f.hi));
    }
  }
  return out;
}

}  // namespace augur::agent
