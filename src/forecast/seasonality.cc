#include "forecast/seasonality.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <vector>

namespace augur::forecast {
namespace {

// Removes the least-squares line from x (in place); returns the residual sum of squares.
double Detrend(std::vector<double>* x) {
  const size_t n = x->size();
  if (n < 2) return 0;
  double st = 0, sy = 0, stt = 0, sty = 0;
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i);
    st += t;
    sy += (*x)[i];
    stt += t * t;
    sty += t * (*x)[i];
  }
  const double dn = static_cast<double>(n);
  const double den = dn * stt - st * st;
  const double b = den != 0 ? (dn * sty - st * sy) / den : 0;
  const double a = (sy - b * st) / dn;
  double ss = 0;
  for (size_t i = 0; i < n; ++i) {
    (*x)[i] -= a + b * static_cast<double>(i);
    ss += (*x)[i] * (*x)[i];
  }
  return ss;
}

// Autocorrelation at `lag` with the unbiased (per-pair) normalisation.
double Acf(const std::vector<double>& x, double var, int lag) {
  const size_t n = x.size();
  if (lag <= 0 || static_cast<size_t>(lag) >= n || var <= 0) return 0;
  double s = 0;
  for (size_t i = 0; i + lag < n; ++i) s += x[i] * x[i + lag];
  return s / static_cast<double>(n - lag) / var;
}

// How far a peak must rise above the first minimum of the autocorrelation.
constexpr double kMinRise = 0.1;
// Candidate periods examined per check.
constexpr size_t kMaxPeaks = 8;
// A new period must cut the seasonal-naive error on the buffer by this factor to replace
// the current one.
constexpr double kSwitchGain = 0.9;
constexpr double kSwitchGainLonger = 0.8;
// ... and replaces it without waiting for a second check when it cuts the error this much.
constexpr double kSwitchNow = 0.6;

}  // namespace

Detection DetectPeriod(const History& h, const SeasonalityOptions& opts, int current) {
  Detection out;
  const int m = h.size();
  const int max_period = std::min(opts.max_period, m / 2);
  if (max_period < opts.min_period || m < 4 * opts.min_period) return out;

  std::vector<double> full;
  h.CopyNewest(m, &full);
  const std::vector<double> raw = full;
  const int a = std::max(1, (m + opts.coarse_len - 1) / opts.coarse_len);
  const int n = m / a;
  std::vector<double> coarse(n);
  const int skip = m - n * a;  // drop the oldest remainder
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < a; ++j) s += full[skip + i * a + j];
    coarse[i] = s / a;
  }
  const double css = Detrend(&coarse);
  const double cvar = css / n;
  if (!(cvar > 0) || !std::isfinite(cvar)) return out;

  const int min_lag = std::max(2, opts.min_period / a);
  const int max_lag = max_period / a;
  if (max_lag <= min_lag + 1) return out;
  std::vector<double> r(max_lag + 2, 0.0);
  for (int lag = 1; lag <= max_lag + 1; ++lag) r[lag] = Acf(coarse, cvar, lag);

  // Skip the initial decay: start at the first local minimum of the correlation (a cycle
  // shows as a rise after it; long memory alone only decays).
  int start = -1;
  for (int lag = 1; lag <= max_lag; ++lag) {
    if (r[lag] <= r[lag - 1 < 1 ? 1 : lag - 1] && r[lag] <= r[lag + 1] && lag > 1) {
      start = lag;
      break;
    }
  }
  if (start < 0) return out;
  const double floor = r[start];
  start = std::max(start, min_lag);
  // Candidate periods: the strongest local maxima of the coarse autocorrelation that rise
  // clearly above that minimum.
  std::vector<std::pair<double, int>> peaks;  // (acf, coarse lag)
  for (int lag = start; lag <= max_lag; ++lag) {
    if (r[lag] >= opts.min_acf && r[lag] >= floor + kMinRise && r[lag] >= r[lag - 1] &&
        r[lag] >= r[lag + 1]) {
      peaks.push_back({r[lag], lag});
    }
  }
  if (peaks.empty()) return out;
  std::sort(peaks.begin(), peaks.end(), std::greater<>());
  if (peaks.size() > kMaxPeaks) peaks.resize(kMaxPeaks);

  // Refine each at full resolution, then pick the one whose seasonal-naive forecast (the
  // value one period back) is most accurate on the buffer: autocorrelation finds cycles,
  // but what the models need is the lag that predicts best (a sharp daily job is better
  // predicted by the day than by a 2-hour ripple with a similar autocorrelation). Errors
  // are compared on the same window, the newest (m - longest lag) values.
  int longest = current > 0 && current <= max_period ? current : 0;
  for (const auto& [acf, coarse_lag] : peaks) {
    longest = std::max(longest, std::min(max_period, (coarse_lag + 1) * a));
  }
  // Gap-filled values are left out: interpolation repeats whatever the gaps repeat.
  std::vector<uint8_t> seen(m);
  for (int t = 0; t < m; ++t) seen[t] = h.ObservedBack(m - 1 - t);
  auto seasonal_err = [&](int lag) {
    double e = 0;
    int n = 0;
    for (int t = longest; t < m; ++t) {
      if (!seen[t] || !seen[t - lag]) continue;
      e += std::fabs(raw[t] - raw[t - lag]);
      ++n;
    }
    return n > 0 ? e / n : std::numeric_limits<double>::infinity();
  };
  const double fss = Detrend(&full);
  const double fvar = fss / m;
  std::vector<PeriodEstimate> cands;
  for (const auto& [acf, coarse_lag] : peaks) {
    const int lo = std::max(opts.min_period, (coarse_lag - 1) * a);
    const int hi = std::min(max_period, (coarse_lag + 1) * a);
    PeriodEstimate est;
    est.err = std::numeric_limits<double>::infinity();
    for (int lag = lo; lag <= hi; ++lag) {
      const double e = seasonal_err(lag);
      if (e < est.err) {
        est.err = e;
        est.period = lag;
      }
    }
    if (est.period == 0 || !std::isfinite(est.err)) continue;
    est.acf = Acf(full, fvar, est.period);
    if (est.acf >= opts.min_acf * 0.8) cands.push_back(est);
  }
  if (cands.empty()) return out;
  // Errors this small next to the one-step change are rounding, not signal.
  out.tolerance = 0.01 * seasonal_err(1);
  if (!std::isfinite(out.tolerance)) out.tolerance = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (const PeriodEstimate& c : cands) best_err = std::min(best_err, c.err);
  for (const PeriodEstimate& c : cands) {
    // Within 5 % of the best, the shorter period wins (not a multiple of the true one).
    if (c.err <= best_err * 1.05 + out.tolerance &&
        (out.best.period == 0 || c.period < out.best.period)) {
      out.best = c;
    }
  }
  if (current > 0 && current <= max_period) out.current_err = seasonal_err(current);
  return out;
}

bool SeasonalityDetector::OnStep(const History& h) {
  ++since_check_;
  if (since_check_ < opts_.recheck_steps) return false;
  since_check_ = 0;
  const Detection d = DetectPeriod(h, opts_, period_);
  const PeriodEstimate& est = d.best;
  auto near = [](int a, int b) { return a > 0 && b > 0 && std::abs(a - b) <= std::max(1, b / 50); };
  if (est.period == 0) {
    // Nothing periodic in this window. Keep a learned period through a few such checks (a
    // holiday, an incident) before dropping it.
    pending_ = -1;
    if (period_ > 0 && ++misses_ >= 4) {
      period_ = 0;
      acf_ = 0;
      misses_ = 0;
      return true;
    }
    return false;
  }
  misses_ = 0;
  if (period_ == 0) {
    period_ = est.period;
    acf_ = est.acf;
    pending_ = -1;
    return true;
  }
  // A longer period must win by more than a shorter one: it has fewer cycles in the buffer
  // behind its score, and a lucky alignment (a job that moved by a few steps one day) can
  // make an odd long lag look good for a while.
  const double gain = est.period > period_ ? kSwitchGainLonger : kSwitchGain;
  if (near(est.period, period_)) {
    // The same cycle, measured more precisely: adopt the better lag without calling it a
    // change (the models keep what they learned).
    if (est.err + d.tolerance < d.current_err) {
      period_ = est.period;
      acf_ = est.acf;
    }
    pending_ = -1;
    return false;
  }
  if (!(est.err + d.tolerance < gain * d.current_err)) {
    // The current period is as good as anything found: keep it.
    pending_ = -1;
    return false;
  }
  // Clearly better: switch at once when much better; otherwise when a second check agrees
  // and, for a longer period, when the buffer holds at least three of its cycles.
  const bool enough_cycles = est.period < period_ || 3 * est.period <= h.size();
  if (est.err + d.tolerance < kSwitchNow * d.current_err ||
      (near(est.period, pending_) && enough_cycles)) {
    period_ = est.period;
    acf_ = est.acf;
    pending_ = -1;
    return true;
  }
  pending_ = est.period;
  return false;
}

void SeasonalityDetector::Save(StateWriter* w) const {
  w->U32(static_cast<uint32_t>(period_));
  w->F64(acf_);
  w->I64(pending_);
  w->U32(static_cast<uint32_t>(since_check_));
  w->U32(static_cast<uint32_t>(misses_));
}

void SeasonalityDetector::Load(StateReader* r) {
  period_ = static_cast<int>(r->U32());
  acf_ = r->F64();
  pending_ = static_cast<int>(r->I64());
  since_check_ = static_cast<int>(r->U32());
  misses_ = static_cast<int>(r->U32());
  r->Check(period_ >= 0 && period_ <= (1 << 20), "seasonality: bad period");
  r->Check(since_check_ >= 0 && since_check_ <= (1 << 20), "seasonality: bad counter");
  r->Check(misses_ >= 0 && misses_ <= 64, "seasonality: bad counter");
}

}  // namespace augur::forecast
