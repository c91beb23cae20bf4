#include "series_eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <unordered_map>

#include "forecast/step_grid.h"

namespace augur::eval {
namespace {

bool ParseLine(const std::string& line, std::vector<double>* out) {
  out->clear();
  const char* p = line.c_str();
  while (*p) {
    char* end = nullptr;
    const double v = std::strtod(p, &end);
    if (end == p) return false;
    out->push_back(v);
    p = end;
    while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
    if (*p == ',') {
      ++p;
    } else if (*p) {
      return false;
    }
  }
  return true;
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct GridValue {
  double value;
  bool observed;
};

// The series on the grid the forecaster uses (same StepGrid, same gap filling).
std::unordered_map<int64_t, GridValue> Grid(const std::vector<Sample>& samples, double step,
                                            int max_fill) {
  forecast::StepGrid grid(step, max_fill);
  std::vector<forecast::GridPoint> pts;
  for (const Sample& s : samples) grid.Add(s.ts, s.value, &pts);
  std::unordered_map<int64_t, GridValue> out;
  for (const auto& p : pts) out[p.step] = GridValue{p.value, p.observed};
  return out;
}

}  // namespace

Result<std::vector<Sample>> ReadSeriesCsv(const std::string& path, size_t* bad_lines) {
  std::ifstream in(path);
  if (!in) return Err(Status::IOError("cannot open " + path));
  std::vector<Sample> out;
  std::string line;
  std::vector<double> f;
  size_t lineno = 0;
  *bad_lines = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty() || line == "\r") continue;
    if (!ParseLine(line, &f) || f.size() != 2) {
      if (lineno > 1) ++*bad_lines;  // line 1 is the header
      continue;
    }
    out.push_back(Sample{f[0], f[1]});
  }
  return out;
}

Result<ReplayResult> Replay(const std::vector<Sample>& samples,
                            const forecast::ForecasterOptions& opts) {
  auto fr = forecast::Forecaster::Create(opts);
  if (!fr) return Err(fr.error());
  forecast::Forecaster& f = *fr;
  ReplayResult res;
  std::vector<double> times;
  times.reserve(samples.size());
  using Clock = std::chrono::steady_clock;
  for (const Sample& s : samples) {
    const auto t0 = Clock::now();
    const forecast::ObserveResult o = f.Observe(s.ts, s.value);
    const forecast::ForecastSet& fs = f.Forecast();
    const auto t1 = Clock::now();
    if (o.steps_closed > 0) {
      times.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() /
                      o.steps_closed);
      if (fs.ready) {
        for (const auto& h : fs.horizons) {
          ForecastRow row{fs.issued_time, h.horizon, h.target_time, h.mean, h.lo, h.hi, {}};
          for (const auto& c : f.Candidates(h.horizon)) row.cand.push_back(c.forecast);
          res.rows.push_back(std::move(row));
        }
      }
    }
    if (o.event) res.events.push_back(ReplayResult::Event{o.event->time, o.event->score});
  }
  res.stats = f.stats();
  if (!times.empty()) {
    double sum = 0;
    for (double t : times) sum += t;
    res.us_per_step_mean = sum / static_cast<double>(times.size());
    std::sort(times.begin(), times.end());
    res.us_per_step_p99 = times[static_cast<size_t>(0.99 * (times.size() - 1))];
    res.us_per_step_max = times.back();
  }
  res.state_bytes = f.StateBytes();
  std::ostringstream os;
  if (Status s = f.Save(os); !s.ok()) return Err(s);
  res.saved_bytes = os.str().size();
  return res;
}

Status WriteForecastCsv(const std::string& path, const std::vector<ForecastRow>& rows) {
  FILE* fp = std::fopen(path.c_str(), "w");
  if (!fp) return Status::FromErrno("cannot write " + path, errno);
  std::fprintf(fp, "timestamp,horizon,target_timestamp,mean,lo80,hi80\n");
  for (const ForecastRow& r : rows) {
    std::fprintf(fp, "%.17g,%d,%.17g,%.10g,%.10g,%.10g\n", r.issued, r.horizon, r.target, r.mean,
                 r.lo, r.hi);
  }
  if (std::fclose(fp) != 0) return Status::FromErrno("writing " + path, errno);
  return Status::OK();
}

Result<std::vector<ForecastRow>> ReadForecastCsv(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Err(Status::IOError("cannot open " + path));
  std::vector<ForecastRow> out;
  std::string line;
  std::vector<double> f;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno == 1 || line.empty()) continue;
    if (!ParseLine(line, &f) || f.size() != 6) {
      return Err(Status::InvalidArgument(path + ":" + std::to_string(lineno) + ": bad row"));
    }
    out.push_back(ForecastRow{f[0], static_cast<int>(f[1]), f[2], f[3], f[4], f[5], {}});
  }
  return out;
}

std::vector<HorizonScore> ScoreForecasts(const std::vector<Sample>& samples,
                                         const std::vector<ForecastRow>& rows,
                                         const std::vector<int>& horizons,
                                         const ScoreOptions& opts) {
  std::vector<HorizonScore> out;
  if (samples.empty()) return out;
  const auto grid = Grid(samples, opts.step, 1 << 30);
  double first = samples.front().ts;
  for (const Sample& s : samples) {
    if (std::isfinite(s.ts)) first = std::min(first, s.ts);
  }
  const double from = first + opts.warmup_days * 86400;
  const int64_t season = std::llround(opts.season_days * 86400 / opts.step);
  auto step_of = [&](double t) { return static_cast<int64_t>(std::floor(t / opts.step + 1e-9)); };

  // Scale for MASE: mean one-step change over observed consecutive steps in the window.
  double naive_sum = 0;
  size_t naive_n = 0;
  for (const auto& [k, g] : grid) {
    if (static_cast<double>(k) * opts.step < from || !g.observed) continue;
    auto it = grid.find(k - 1);
    if (it == grid.end() || !it->second.observed) continue;
    naive_sum += std::fabs(g.value - it->second.value);
    ++naive_n;
  }
  const double naive_scale = naive_n ? naive_sum / naive_n : std::nan("");

  for (int h : horizons) {
    HorizonScore hs;
    hs.horizon = h;
    double em = 0, ep = 0, es = 0;
    std::vector<double> ec;
    size_t covered = 0;
    for (const ForecastRow& r : rows) {
      if (r.horizon != h || r.issued < from) continue;
      const int64_t ki = step_of(r.issued);
      const int64_t kt = ki + h;
      auto t = grid.find(kt);
      if (t == grid.end() || !t->second.observed) continue;
      auto base = grid.find(ki);
      auto seas = grid.find(kt - season);
      if (base == grid.end() || seas == grid.end()) continue;
      const double y = t->second.value;
      em += std::fabs(y - r.mean);
      ep += std::fabs(y - base->second.value);
      es += std::fabs(y - seas->second.value);
      if (y >= r.lo && y <= r.hi) ++covered;
      if (ec.size() < r.cand.size()) ec.resize(r.cand.size(), 0.0);
      for (size_t c = 0; c < r.cand.size(); ++c) {
        // An unavailable candidate is scored as persistence (what the blend falls back on).
        ec[c] += std::fabs(y - (std::isfinite(r.cand[c]) ? r.cand[c] : base->second.value));
      }
      ++hs.n;
    }
    if (hs.n > 0) {
      const double n = static_cast<double>(hs.n);
      hs.mae = em / n;
      hs.mae_persistence = ep / n;
      hs.mae_seasonal = es / n;
      const double best = std::min(hs.mae_persistence, hs.mae_seasonal);
      hs.rel_mae = best > 0 ? hs.mae / best : std::nan("");
      hs.mase = hs.mae / naive_scale;
      hs.coverage = static_cast<double>(covered) / n;
      for (double e : ec) hs.cand_rel.push_back(e / n / best);
    }
    out.push_back(hs);
  }
  return out;
}

std::vector<Sample> InjectAnomalies(const std::vector<Sample>& clean, const ScoreOptions& so,
                                    const InjectOptions& io,
                                    std::vector<InjectedAnomaly>* truth) {
  truth->clear();
  std::vector<Sample> out = clean;
  if (clean.size() < 10) return out;
  // Sizes are in units of the series' own large moves: u = the 99th percentile of the
  // absolute one-step change of the gridded series (a 1-in-100 natural move). Anything
  // smaller is indistinguishable from what these heavy-tailed series do every day.
  const auto grid = Grid(clean, so.step, 1 << 30);
  std::vector<double> absd;
  double vmin = std::numeric_limits<double>::infinity();
  for (const auto& [k, g] : grid) {
    vmin = std::min(vmin, g.value);
    auto it = grid.find(k - 1);
    if (it != grid.end() && g.observed && it->second.observed) {
      absd.push_back(std::fabs(g.value - it->second.value));
    }
  }
  std::sort(absd.begin(), absd.end());
  double sd = absd.empty() ? 1.0 : absd[static_cast<size_t>(0.99 * (absd.size() - 1))];
  if (!(sd > 0)) sd = 1.0;
  // Utilisation cannot go below zero: a downward anomaly on a non-negative series is
  // clipped there, as it would be in reality.
  const bool nonneg = vmin >= 0;

  std::mt19937_64 rng(io.seed);
  const double first = clean.front().ts;
  const double last = clean.back().ts;
  const double step = so.step;
  double t = first + so.warmup_days * 86400 + io.every_steps * step * 0.5;
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  std::uniform_int_distribution<int> kind_dist(0, 3);
  std::bernoulli_distribution sign_dist(0.5);
  static const char* kKinds[] = {"spike", "level_shift", "ramp", "flat_line"};
  while (true) {
    const int kind = kind_dist(rng);
    double sign = sign_dist(rng) ? 1.0 : -1.0;
    int len = 1;
    if (kind == 1) len = io.shift_steps;
    if (kind == 2) len = io.ramp_steps;
    if (kind == 3) len = io.flat_steps;
    // Align to the grid so a window covers whole steps.
    const double start = std::floor(t / step) * step;
    const double end = start + len * step;
    if (end >= last) break;
    // On a non-negative series a downward spike, shift or ramp that would cross zero is
    // injected upward instead: clipping it at zero (as before 2026-11-24) left some with a
    // fraction of their nominal size (a -3u spike on a value of 0.7u is a 0.7u dip).
    if (nonneg && sign < 0 && kind != 3) {
      const double size = kind == 0 ? io.spike_sd : (kind == 1 ? io.shift_sd : io.ramp_sd);
      for (const Sample& s : out) {
        if (s.ts < start || s.ts >= end) continue;
        const double frac = kind == 2 ? (s.ts - start) / (end - start) : 1.0;
        if (s.value - size * sd * frac < 0) {
          sign = 1.0;
          break;
        }
      }
    }
    truth->push_back(InjectedAnomaly{kKinds[kind], start, end});
    double flat_value = std::nan("");
    for (Sample& s : out) {
      if (s.ts < start || s.ts >= end) continue;
      switch (kind) {
        case 0: s.value += sign * io.spike_sd * sd; break;
        case 1: s.value += sign * io.shift_sd * sd; break;
        case 2: s.value += sign * io.ramp_sd * sd * ((s.ts - start) / (end - start)); break;
        case 3:
          if (std::isnan(flat_value)) flat_value = s.value;
          s.value = flat_value;
          break;
      }
      if (nonneg) s.value = std::max(s.value, 0.0);
    }
    t = end + io.every_steps * step * jitter(rng);
  }
  // Effect of each anomaly on the gridded series (diagnostics only).
  const auto dirty = Grid(out, so.step, 1 << 30);
  for (InjectedAnomaly& a : *truth) {
    double eff = 0;
    for (int64_t k = static_cast<int64_t>(std::floor(a.start / step + 1e-9));
         static_cast<double>(k) * step < a.end; ++k) {
      auto c = grid.find(k);
      auto d = dirty.find(k);
      if (c != grid.end() && d != dirty.end()) eff = std::max(eff, std::fabs(d->second.value - c->second.value));
    }
    a.effect = eff / sd;
  }
  // A flat-line on a stretch that was already constant changes nothing: it is not an
  // anomaly of the data and is not counted (an alarm there is a false alarm).
  std::erase_if(*truth, [](const InjectedAnomaly& a) { return !(a.effect > 1e-9); });
  return out;
}

AnomalyScore ScoreAnomalies(const std::vector<ReplayResult::Event>& events,
                            const std::vector<InjectedAnomaly>& truth, double scored_from,
                            const ScoreOptions& so, const InjectOptions& io) {
  AnomalyScore sc;
  sc.injected = truth.size();
  const double tol = io.tolerance * so.step;
  std::vector<double> delays;
  std::map<std::string, std::pair<size_t, size_t>> kinds;
  std::map<std::string, std::vector<double>> kind_delays;
  for (const InjectedAnomaly& a : truth) {
    auto& k = kinds[a.kind];
    ++k.second;
    for (const auto& e : events) {
      if (e.time >= a.start && e.time < a.end + tol) {
        ++sc.detected;
        ++k.first;
        delays.push_back((e.time - a.start) / so.step);
        kind_delays[a.kind].push_back(delays.back());
        break;
      }
    }
  }
  for (const auto& e : events) {
    if (e.time < scored_from) continue;
    ++sc.alarms;
    for (const InjectedAnomaly& a : truth) {
      if (e.time >= a.start && e.time < a.end + tol) {
        ++sc.true_alarms;
        break;
      }
    }
  }
  sc.precision = sc.alarms ? static_cast<double>(sc.true_alarms) / sc.alarms : std::nan("");
  sc.recall = sc.injected ? static_cast<double>(sc.detected) / sc.injected : std::nan("");
  sc.median_delay = Median(delays);
  sc.delays = delays;
  for (const auto& [k, v] : kinds) sc.by_kind.push_back({k, v});
  for (const auto& [k, v] : kind_delays) sc.delay_by_kind.push_back({k, Median(v)});
  return sc;
}

}  // namespace augur::eval
