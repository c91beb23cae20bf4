#include "forecast/forecaster.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <limits>
#include <sstream>
#include <string>

#include "forecast/anomaly.h"
#include "forecast/binary_io.h"
#include "forecast/candidates.h"
#include "forecast/ensemble.h"
#include "forecast/history.h"
#include "forecast/intervals.h"
#include "forecast/lag_regression.h"
#include "forecast/seasonality.h"
#include "forecast/step_grid.h"

namespace augur::forecast {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr char kMagic[] = "AUGURFC\x01";  // 8 bytes incl. the \x01, no NUL
// Version 2: the anomaly detector keeps calibration quantiles and value windows (format 1
// state is refused with FailedPrecondition: the series starts fresh).
// Version 3: more candidates (daily naive, level), so pending forecasts and the stack's
// inputs are longer (format 2 state is refused the same way).
// Version 4: combination candidates (median, trimmed mean, hedge) and the hedge weights
// (format 3 state is refused the same way).
// Version 5: the seasonal-median candidate (one more model: pending forecasts, the stack's
// inputs and the hedge weights are longer; format 4 state is refused the same way). Also
// since 5: every candidate at every horizon, persistence not median-corrected.
// Version 6: the anomaly detector's routine-spike state (format 5 state is refused the
// same way).
constexpr uint32_t kFormatVersion = 6;
constexpr uint32_t kOldestReadableVersion = 6;
constexpr size_t kMaxPayload = 4u << 20;

// Feature layout of the lag regression. The non-seasonal model uses the first
// kPlainFeatures, the seasonal one all kSeasonalFeatures. All are (x - y_k)/scale except
// the bias. NOTE: changing this changes what saved regressions mean: bump kFormatVersion.
enum Feature : int {
  kBias = 0,
  kLag1,         // y[k-1]
  kLag2,         // y[k-2]
  kLag3,         // y[k-3]
  kMean12,       // mean of y[k-11..k]
  kFastLevel,    // SES level, alpha 0.3
  kSlowLevel,    // SES level, alpha 0.03
  kMidLevel,     // SES level, alpha 0.1
  kTrend,        // damped trend forecast
  kPlainFeatures,
  kSeasonalNaiveF = kPlainFeatures,  // y[k+h-P]
  kSeasonalMeanF,                    // seasonal mean at the target
  kSeasonalNow,                      // seasonal mean at step k
  kSeasonalPrev,                     // y[k-P]
  kGatedNaive,                       // seasonal naive, soft-thresholded
  kGatedChange,                      // y[k+h-P] - y[k-P], soft-thresholded
  kNaiveNeighbours,                  // mean of y[k+h-P-1], y[k+h-P+1]
  kNaive2,                           // y[k+h-2P]
  kSeasonalFeatures,
};

// Observed one-step changes needed before the scale (and so the regression) is trusted.
constexpr uint64_t kMinScaleSamples = 16;
// Soft threshold of the gated seasonal features (scale units).
constexpr double kGate = 3.0;
// Step of the per-candidate residual median tracker (scale units).
constexpr double kMedianStep = 0.01;
// Decay per step of the seasonal-mean candidate's current deviation.
constexpr double kDeviationDecay = 0.95;

// Short horizons track a changing series best with a short memory; long ones need more
// samples, as their targets are strongly autocorrelated: memory grows with sqrt(horizon),
// the tuning's forget factor being the one for 5 steps.
double HorizonForget(double forget, int h) {
  if (forget >= 1) return 1;
  const double memory = 1 / (1 - forget) * std::sqrt(h / 5.0);
  return 1 - 1 / std::max(memory, 20.0);
}

// One forecast waiting for its target.
struct Slot {
  int64_t step = std::numeric_limits<int64_t>::min();  // step it was issued at
  bool valid = false;      // issued at an observed step
  bool seasonal = false;   // which regression produced it
  double base = 0;         // y at issue
  double scale = 1;        // scale at issue
  FeatureVec x;            // regression input
  FeatureVec x2;           // stack input
  std::array<double, kNumCandidates> raw{};   // candidates as the models gave them
  std::array<double, kNumCandidates> cand{};  // after the median correction
  double mean = kNaN, lo = kNaN, hi = kNaN;
};

struct HorizonState {
  HorizonState(int h_, const ForecasterOptions& o)
      : h(h_),
        ensemble(EnsembleOptions{
            o.tuning.ensemble_decay,
            o.tuning.ensemble_sharpness * std::pow(static_cast<double>(h_),
                                                   -o.tuning.ensemble_sharpness_power),
            20}),
        interval(IntervalOptions{o.interval_coverage, 0.02, o.tuning.interval_eta}),
        plain(HorizonForget(o.tuning.rls_forget, h_), o.tuning.rls_c),
        seasonal(HorizonForget(o.tuning.rls_forget, h_), o.tuning.rls_c),
        stack(HorizonForget(o.tuning.rls_forget, h_), o.tuning.rls_c),
        slots(h_) {
    hedge.fill(1.0 / static_cast<double>(kNumBase));
  }
  int h;
  bool exported = true;   // in options.horizons (1 is always kept for anomaly scoring)
  Ensemble ensemble;
  IntervalTracker interval;
  LagRegression plain;
  LagRegression seasonal;
  LagRegression stack;
  double reg_mae = 0;     // regression's decayed |normalised residual|, for Huber weights
  uint64_t reg_n = 0;
  double stack_mae = 0;
  uint64_t stack_n = 0;
  std::array<double, kNumCandidates> weights{};
  // Per candidate, a running median of its residual in scale units, added back to its
  // forecasts: least-squares models forecast the mean, absolute error rewards the median,
  // and on skewed (spiky) series the two differ.
  std::array<double, kNumCandidates> bias{};
  // Exponentiated-gradient weights over the base candidates (the hedge combiner).
  std::array<double, kNumBase> hedge{};
  std::vector<Slot> slots;  // ring indexed by step mod h
};

int Mod(int64_t k, int h) {
  const int64_t m = k % h;
  return static_cast<int>(m < 0 ? m + h : m);
}

void SaveVec(StateWriter* w, const FeatureVec& x) {
  w->U32(static_cast<uint32_t>(x.size()));
  for (long i = 0; i < x.size(); ++i) w->F64(x(i));
}

void LoadVec(StateReader* r, FeatureVec* x) {
  const uint32_t n = r->U32();
  if (!r->Check(n <= 64, "slot: feature vector too long")) return;
  x->set_size(n);
  for (uint32_t i = 0; i < n; ++i) (*x)(i) = r->F64();
}

}  // namespace

Status ForecasterOptions::Validate() const {
  if (!(step_seconds > 0) || !std::isfinite(step_seconds)) {
    return Status::InvalidArgument("forecast: step_seconds must be > 0");
  }
  if (horizons.empty()) return Status::InvalidArgument("forecast: no horizons");
  for (int h : horizons) {
    if (h < 1 || h > kMaxHorizon) {
      return Status::InvalidArgument("forecast: horizon " + std::to_string(h) +
                                     " outside 1.." + std::to_string(kMaxHorizon));
    }
  }
  if (history_capacity < 64 || history_capacity > 16384) {
    return Status::InvalidArgument("forecast: history_capacity must be in 64..16384");
  }
  if (max_gap_fill < 0) return Status::InvalidArgument("forecast: max_gap_fill must be >= 0");
  if (!(interval_coverage > 0 && interval_coverage < 1)) {
    return Status::InvalidArgument("forecast: interval_coverage must be in (0, 1)");
  }
  if (!(anomaly_threshold > 0)) {
    return Status::InvalidArgument("forecast: anomaly_threshold must be > 0");
  }
  const ModelTuning& t = tuning;
  const struct {
    bool ok;
    const char* what;
  } checks[] = {
      {t.rls_forget > 0 && t.rls_forget <= 1, "rls_forget must be in (0, 1]"},
      {t.rls_c > 0, "rls_c must be > 0"},
      {t.ensemble_decay > 0 && t.ensemble_decay <= 1, "ensemble_decay must be in (0, 1]"},
      {t.ensemble_sharpness > 0, "ensemble_sharpness must be > 0"},
      {t.ensemble_sharpness_power >= 0 && t.ensemble_sharpness_power <= 2,
       "ensemble_sharpness_power must be in [0, 2]"},
      {t.seasonal_decay > 0 && t.seasonal_decay <= 1, "seasonal_decay must be in (0, 1]"},
      {t.seasonal_cycles >= 1, "seasonal_cycles must be >= 1"},
      {t.interval_eta > 0, "interval_eta must be > 0"},
      {t.hedge_eta > 0 && t.hedge_eta <= 10, "hedge_eta must be in (0, 10]"},
      {t.hedge_eta_power >= 0 && t.hedge_eta_power <= 2, "hedge_eta_power must be in [0, 2]"},
      {t.hedge_min_horizon >= 2, "hedge_min_horizon must be >= 2"},
      {t.seasonal_median_cycles >= 0 && t.seasonal_median_cycles <= 16,
       "seasonal_median_cycles must be in 0..16"},
      {t.seasonal_median_halfwidth >= 0 && t.seasonal_median_halfwidth <= 3,
       "seasonal_median_halfwidth must be in 0..3"},
  };
  for (const auto& c : checks) {
    if (!c.ok) return Status::InvalidArgument(std::string("forecast: model tuning: ") + c.what);
  }
  return Status::OK();
}

struct Forecaster::Impl {
  explicit Impl(const ForecasterOptions& o)
      : opts(o),
        grid(o.step_seconds, o.max_gap_fill > 0 ? o.max_gap_fill : o.history_capacity),
        hist(o.history_capacity),
        season(SeasonalityOptions{4, o.history_capacity / 2, o.tuning.seasonal_min_acf, 128, 512}),
        trend(0.3, 0.05, 0.9),
        fast(0.3),
        slow(0.03),
        mid(0.1),
        deviation(0.2),
        anomaly(AnomalyOptions{o.anomaly_threshold, 0.1, 12, 0.01, 500, 96, 3}) {
    std::sort(opts.horizons.begin(), opts.horizons.end());
    opts.horizons.erase(std::unique(opts.horizons.begin(), opts.horizons.end()),
                        opts.horizons.end());
    if (opts.horizons.front() != 1) hs.emplace_back(1, opts), hs.back().exported = false;
    for (int h : opts.horizons) hs.emplace_back(h, opts);
    current.horizons.resize(opts.horizons.size());
    const double d = 86400.0 / o.step_seconds;
    const long dr = std::lround(d);
    if (dr >= 2 && std::fabs(d - static_cast<double>(dr)) < 1e-6 && dr <= o.history_capacity / 2) {
      day_steps = static_cast<int>(dr);
    }
  }

  ForecasterOptions opts;
  StepGrid grid;
  History hist;
  SeasonalityDetector season;
  DampedTrend trend;
  Smoother fast, slow, mid;
  Smoother deviation;      // y - seasonal mean, for the seasonal-mean candidate
  int day_steps = 0;       // steps in one day when the step divides it (daily-naive candidate)
  double scale = 0;        // decayed mean |y[k] - y[k-1]| over observed pairs
  uint64_t scale_n = 0;
  int64_t last_step = std::numeric_limits<int64_t>::min();
  std::vector<HorizonState> hs;
  AnomalyDetector anomaly;
  ForecastSet current;
  std::optional<AnomalyEvent> last_event;
  double last_score = 0;
  std::vector<GridPoint> closed;  // scratch

  double Scale() const {
    const double floor = 1e-9 + 1e-6 * std::fabs(slow.value());
    return std::max(scale, floor);
  }

  void Break() {
    hist.Clear();
    trend.Reset();
    fast.Reset();
    slow.Reset();
    mid.Reset();
    deviation.Reset();
    for (auto& h : hs) {
      for (auto& s : h.slots) s.valid = false;
    }
  }

  ObserveResult Process(std::vector<GridPoint>& pts) {
    ObserveResult res;
    res.steps_closed = static_cast<int>(pts.size());
    for (const GridPoint& p : pts) {
      std::optional<AnomalyEvent> ev = Step(p);
      if (ev) res.event = ev;
    }
    res.anomaly_score = last_score;
    pts.clear();
    return res;
  }

  std::optional<AnomalyEvent> Step(const GridPoint& p);
  void TrainRobust(LagRegression& reg, const FeatureVec& x, double target, double* mae,
                   uint64_t* n) const;
  void BuildFeatures(int h, double y, double s, int period, FeatureVec* x) const;
  void Issue(int64_t k, bool observed);
  void UpdateHedge(HorizonState& h, const Slot& s, double y) const;
  void Combiners(HorizonState& h, Slot& slot) const;
  void SaveTo(StateWriter* w) const;
  Status LoadFrom(StateReader* r);
};

void Forecaster::Impl::BuildFeatures(int h, double y, double s, int period, FeatureVec* x) const {
  const int n = hist.size();
  const int d = period > 0 ? kSeasonalFeatures : kPlainFeatures;
  x->set_size(d);
  auto rel = [&](double v) { return std::isfinite(v) ? (v - y) / s : 0.0; };
  auto lag = [&](int l) { return l < n ? hist.Back(l) : hist.Back(n - 1); };
  (*x)(kBias) = 1.0;
  (*x)(kLag1) = rel(lag(1));
  (*x)(kLag2) = rel(lag(2));
  (*x)(kLag3) = rel(lag(3));
  double m = 0;
  const int w = std::min(12, n);
  for (int i = 0; i < w; ++i) m += hist.Back(i);
  (*x)(kMean12) = rel(m / w);
  (*x)(kFastLevel) = rel(fast.value());
  (*x)(kSlowLevel) = rel(slow.value());
  (*x)(kMidLevel) = rel(mid.value());
  (*x)(kTrend) = rel(trend.Forecast(h));
  if (period > 0) {
    const ModelTuning& t = opts.tuning;
    (*x)(kSeasonalNaiveF) = rel(SeasonalNaive(hist, period, h));
    (*x)(kSeasonalMeanF) =
        rel(SeasonalMean(hist, period, h, t.seasonal_cycles, t.seasonal_decay, opts.tuning.seasonal_halfwidth));
    (*x)(kSeasonalNow) =
        rel(SeasonalMean(hist, period, 0, t.seasonal_cycles, t.seasonal_decay, opts.tuning.seasonal_halfwidth));
    (*x)(kSeasonalPrev) = period < n ? rel(hist.Back(period)) : 0.0;
    // Soft thresholds let the linear model act on a large seasonal move (a daily job
    // starting) without importing the seasonal noise when nothing is happening.
    auto gate = [](double v) {
      return v > kGate ? v - kGate : (v < -kGate ? v + kGate : 0.0);
    };
    (*x)(kGatedNaive) = gate((*x)(kSeasonalNaiveF));
    (*x)(kGatedChange) = gate((*x)(kSeasonalNaiveF) - (*x)(kSeasonalPrev));
    const int cyc = (h + period - 1) / period;
    const int l1 = cyc * period - h;  // lag of y[k+h-P] behind the newest value
    (*x)(kNaiveNeighbours) =
        l1 + 1 < n ? rel(0.5 * (hist.Back(l1 + 1) + hist.Back(l1 > 0 ? l1 - 1 : l1))) : 0.0;
    (*x)(kNaive2) = l1 + period < n ? rel(hist.Back(l1 + period)) : 0.0;
  }
}

// One regression update, Huber-weighted: a residual beyond twice the model's recent mean
// absolute residual counts as that much, so a spike does not drag the weights.
void Forecaster::Impl::TrainRobust(LagRegression& reg, const FeatureVec& x, double target,
                                   double* mae, uint64_t* n) const {
  const double pred = reg.Predict(x);
  const double r = std::fabs(target - pred);
  double weight = 1;
  if (opts.tuning.rls_huber && *n > 20) {
    const double c = 2.0 * *mae;
    if (r > c && r > 0) weight = c / r;
  }
  reg.Train(x, target, weight);
  if (std::isfinite(r)) {
    const double a = std::max(0.01, 1.0 / static_cast<double>(*n + 1));
    *mae += a * (std::min(r, *n > 20 ? 5 * *mae : r) - *mae);
    ++*n;
  }
}

std::optional<AnomalyEvent> Forecaster::Impl::Step(const GridPoint& p) {
  if (p.after_break ||
      (last_step != std::numeric_limits<int64_t>::min() && p.step != last_step + 1)) {
    Break();
  }
  const int64_t k = p.step;
  const double y = p.value;
  const bool obs = p.observed;

  // 1. Score the forecasts whose target is this step and learn from them.
  double one_step = kNaN;
  for (HorizonState& h : hs) {
    Slot& s = h.slots[Mod(k, h.h)];
    if (!s.valid || s.step != k - h.h) continue;
    if (h.h == 1) one_step = s.mean;
    if (!obs) continue;
    for (int c = 0; c < kNumCandidates; ++c) {
      if (std::isfinite(s.cand[c])) h.ensemble.Update(c, std::fabs(y - s.cand[c]));
      if (std::isfinite(s.raw[c])) {
        const double e = (y - s.raw[c]) / s.scale;
        h.bias[c] += kMedianStep * (e > h.bias[c] ? 1.0 : (e < h.bias[c] ? -1.0 : 0.0));
      }
    }
    if (std::isfinite(s.cand[kHedge])) UpdateHedge(h, s, y);
    h.interval.Update(y, s.mean, s.lo, s.hi);
    if (s.x.size() == 0) continue;
    const double target = (y - s.base) / s.scale;
    TrainRobust(s.seasonal ? h.seasonal : h.plain, s.x, target, &h.reg_mae, &h.reg_n);
    if (s.x2.size() > 0) TrainRobust(h.stack, s.x2, target, &h.stack_mae, &h.stack_n);
  }

  // 2. Anomaly scoring of an observed step against the one-step forecast.
  std::optional<AnomalyEvent> event;
  if (obs && hist.size() >= 1 && std::isfinite(one_step) && scale_n >= kMinScaleSamples) {
    const double s = Scale();
    AnomalyInput in;
    in.value = y;
    in.scale = s;
    in.residual = (y - one_step) / s;
    in.level = (y - slow.value()) / s;
    in.change = (y - hist.Back(0)) / s;
    double vol = std::fabs(y - hist.Back(0));
    const int w = std::min(5, hist.size() - 1);
    for (int i = 0; i < w; ++i) vol += std::fabs(hist.Back(i) - hist.Back(i + 1));
    vol /= (w + 1);
    in.volatility = std::log((vol + 1e-3 * s) / s);
    in.unchanged = static_cast<float>(y) == static_cast<float>(hist.Back(0));
    const int period = season.period();
    if (period > 0 && period + 1 <= hist.size()) {
      in.seasonal_residual = (y - hist.Back(period - 1)) / s;
      in.seasonal_move = (hist.Back(period - 1) - hist.Back(period)) / s;
    }
    const AnomalyVerdict v = anomaly.Step(in);
    last_score = v.score;
    if (v.event_started) {
      event = AnomalyEvent{grid.TimeOf(k), y, one_step, v.score};
      last_event = event;
    }
  }

  // 3. Update the state with the new value.
  // Zero changes are skipped: a stuck or padded source (days of one repeated value occur in
  // real traces) would otherwise shrink the scale toward zero and blow up every feature
  // divided by it when the series moves again.
  // (Compared at the history's float precision, or rounding would look like change.)
  if (obs && hist.size() >= 1 && hist.ObservedBack(0) &&
      static_cast<float>(y) != static_cast<float>(hist.Back(0))) {
    const double d = std::fabs(y - hist.Back(0));
    const double a = std::max(0.01, 1.0 / static_cast<double>(scale_n + 1));
    // Winsorise so one spike does not inflate the scale for a hundred steps.
    const double lim = scale_n > 20 ? 8 * scale : d;
    scale += a * (std::min(d, lim) - scale);
    ++scale_n;
  }
  const int period_before = season.period();
  double seasonal_now = kNaN;
  if (period_before > 0) {
    const ModelTuning& t = opts.tuning;
    seasonal_now = SeasonalMean(hist, period_before, 1, t.seasonal_cycles, t.seasonal_decay,
                                opts.tuning.seasonal_halfwidth);
  }
  hist.Push(y, obs);
  last_step = k;
  trend.Update(y);
  fast.Update(y);
  slow.Update(y);
  mid.Update(y);
  if (std::isfinite(seasonal_now)) deviation.Update(y - seasonal_now);

  // 4. Re-check the period.
  if (season.OnStep(hist)) deviation.Reset();

  // 5. Issue the forecasts for every horizon from this step.
  Issue(k, obs);
  return event;
}

void Forecaster::Impl::Issue(int64_t k, bool observed) {
  const double y = hist.Back(0);
  const double s = Scale();
  const int period = season.period();
  const ModelTuning& t = opts.tuning;
  size_t out = 0;
  current.ready = true;
  current.issued_time = grid.TimeOf(k);
  for (HorizonState& h : hs) {
    Slot& slot = h.slots[Mod(k, h.h)];
    slot.step = k;
    slot.valid = observed;
    slot.base = y;
    slot.scale = s;
    slot.seasonal = period > 0;
    // The features are divided by the scale: until it is known they would be garbage.
    if (scale_n >= kMinScaleSamples) {
      BuildFeatures(h.h, y, s, period, &slot.x);
    } else {
      slot.x.set_size(0);
    }
    auto& c = slot.raw;
    c[kPersistence] = y;
    c[kSeasonalNaive] = SeasonalNaive(hist, period, h.h);
    c[kDampedTrend] = trend.ready() ? trend.Forecast(h.h) : kNaN;
    // Daily naive is offered even when the detected period is the day (it then equals
    // seasonal naive): when the detector changes its mind for a while, "yesterday at this
    // time" stays in the pool, which is what kept the maxima below 1.
    c[kDailyNaive] = day_steps > 0 ? SeasonalNaive(hist, day_steps, h.h) : kNaN;
    c[kLevel] = slow.ready() ? slow.value() : kNaN;
    c[kSeasonalMedian] =
        t.seasonal_median_cycles > 0
            ? SeasonalMedian(hist, period > 0 ? period : day_steps, h.h, t.seasonal_median_cycles,
                             3, t.seasonal_median_halfwidth)
            : kNaN;
    c[kSeasonalMean] = kNaN;
    if (period > 0 && deviation.ready()) {
      const double sm = SeasonalMean(hist, period, h.h, t.seasonal_cycles, t.seasonal_decay,
                                     opts.tuning.seasonal_halfwidth);
      c[kSeasonalMean] = sm + std::pow(kDeviationDecay, h.h) * deviation.value();
    }
    const LagRegression& reg = slot.seasonal ? h.seasonal : h.plain;
    c[kLagRegression] = reg.samples() > 0 && slot.x.size() > 0 ? y + s * reg.Predict(slot.x) : kNaN;
    // The stack: least squares over the other candidates (relative to y, in scale units).
    c[kStack] = kNaN;
    if (slot.x.size() > 0) {
      // Inputs: every candidate but persistence (always 0 here) and the stack itself.
      slot.x2.set_size(kNumBase - 1);
      slot.x2(0) = 1.0;
      int j = 1;
      for (int i = 1; i < kNumBase; ++i) {
        if (i == kStack) continue;
        slot.x2(j++) = std::isfinite(c[i]) ? (c[i] - y) / s : 0.0;
      }
      if (h.stack.samples() > 0) c[kStack] = y + s * h.stack.Predict(slot.x2);
    } else {
      slot.x2.set_size(0);
    }
    // Persistence stays as it is: its residual median is ~0 except on a steady trend (which
    // the trend and regression candidates model), so the shift would only add the tracker's
    // jitter, and the ensemble could no longer fall back on the exact baseline.
    for (int i = 0; i < kNumBase; ++i) {
      slot.cand[i] = t.median_correct && i != kPersistence ? c[i] + h.bias[i] * s : c[i];
    }
    Combiners(h, slot);
    for (int i = kNumBase; i < kNumCandidates; ++i) {
      slot.cand[i] = t.median_correct && std::isfinite(c[i]) ? c[i] + h.bias[i] * s : c[i];
    }
    double mean = h.ensemble.Combine(slot.cand, &h.weights);
    if (!std::isfinite(mean)) mean = y;
    slot.mean = mean;
    // Fallback width before any error is known: a random walk's spread.
    h.interval.Bounds(mean, s * std::sqrt(static_cast<double>(h.h)), &slot.lo, &slot.hi);
    if (h.exported) {
      HorizonForecast& f = current.horizons[out++];
      f.horizon = h.h;
      f.target_time = grid.TimeOf(k + h.h);
      f.mean = slot.mean;
      f.lo = slot.lo;
      f.hi = slot.hi;
    }
  }
}

// Combinations of the (median-corrected) model candidates, offered as candidates of their
// own. The ensemble still picks among all candidates by recent error, so a combination is
// used only where it forecasts better than the models it combines.
void Forecaster::Impl::Combiners(HorizonState& h, Slot& slot) const {
  const ModelTuning& t = opts.tuning;
  auto& c = slot.raw;
  c[kMedian] = c[kHedge] = kNaN;
  if (slot.x.size() == 0) return;
  if (t.median_candidate) {
    // Forecast-combination folklore that holds here: the plain median of the forecasts is
    // hard to beat at long horizons, and robust to one model going astray.
    std::array<double, kNumBase> v{};
    int n = 0;
    for (int i = 0; i < kNumBase; ++i) {
      if (std::isfinite(slot.cand[i])) v[n++] = slot.cand[i];
    }
    if (n >= 3) {
      // Insertion sort of at most kNumBase values (std::sort here trips GCC 12's
      // -Warray-bounds on its 16-element insertion-sort branch, unreachable for 8).
      for (int i = 1; i < n; ++i) {
        for (int j = i; j > 0 && v[j - 1] > v[j]; --j) std::swap(v[j - 1], v[j]);
      }
      c[kMedian] = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    }
  }
  if (t.hedge_candidate && h.h >= t.hedge_min_horizon) {
    double f = 0, wsum = 0;
    for (int i = 0; i < kNumBase; ++i) {
      if (!std::isfinite(slot.cand[i])) continue;
      f += h.hedge[i] * slot.cand[i];
      wsum += h.hedge[i];
    }
    if (wsum > 0) c[kHedge] = f / wsum;
  }
}

// Exponentiated gradient on the absolute loss of the hedge combination, gradients in
// scale units (clipped), learning rate falling with the horizon.
void Forecaster::Impl::UpdateHedge(HorizonState& h, const Slot& s, double y) const {
  const ModelTuning& t = opts.tuning;
  const double eta = t.hedge_eta * std::pow(5.0 / h.h, t.hedge_eta_power);
  const double f = s.raw[kHedge];
  const double sgn = y > f ? -1.0 : (y < f ? 1.0 : 0.0);
  double wsum = 0;
  for (int i = 0; i < kNumBase; ++i) {
    if (!std::isfinite(s.cand[i])) continue;
    const double g = std::clamp(sgn * (s.cand[i] - y) / s.scale, -5.0, 5.0);
    h.hedge[i] *= std::exp(-eta * g);
  }
  for (int i = 0; i < kNumBase; ++i) wsum += h.hedge[i];
  // Renormalise and keep every weight above a floor so a candidate can come back.
  for (int i = 0; i < kNumBase; ++i) h.hedge[i] = std::max(h.hedge[i] / wsum, 1e-4);
  wsum = 0;
  for (int i = 0; i < kNumBase; ++i) wsum += h.hedge[i];
  for (int i = 0; i < kNumBase; ++i) h.hedge[i] /= wsum;
}

void Forecaster::Impl::SaveTo(StateWriter* w) const {
  // Options fingerprint: state is only meaningful for the same grid and horizons.
  w->F64(opts.step_seconds);
  w->U32(static_cast<uint32_t>(hs.size()));
  for (const HorizonState& h : hs) w->U32(static_cast<uint32_t>(h.h));
  grid.Save(w);
  hist.Save(w);
  season.Save(w);
  trend.Save(w);
  fast.Save(w);
  slow.Save(w);
  mid.Save(w);
  deviation.Save(w);
  w->F64(scale);
  w->U64(scale_n);
  w->I64(last_step);
  for (const HorizonState& h : hs) {
    h.ensemble.Save(w);
    h.interval.Save(w);
    h.plain.Save(w);
    h.seasonal.Save(w);
    h.stack.Save(w);
    w->F64(h.reg_mae);
    w->U64(h.reg_n);
    w->F64(h.stack_mae);
    w->U64(h.stack_n);
    for (double b : h.bias) w->F64(b);
    for (double b : h.hedge) w->F64(b);
    for (const Slot& s : h.slots) {
      w->I64(s.step);
      w->Bool(s.valid);
      w->Bool(s.seasonal);
      w->F64(s.base);
      w->F64(s.scale);
      SaveVec(w, s.x);
      SaveVec(w, s.x2);
      for (double v : s.raw) w->F64(v);
      for (double v : s.cand) w->F64(v);
      w->F64(s.mean);
      w->F64(s.lo);
      w->F64(s.hi);
    }
  }
  anomaly.Save(w);
  w->Bool(current.ready);
  w->F64(current.issued_time);
  for (const HorizonForecast& f : current.horizons) {
    w->U32(static_cast<uint32_t>(f.horizon));
    w->F64(f.target_time);
    w->F64(f.mean);
    w->F64(f.lo);
    w->F64(f.hi);
  }
  w->Bool(last_event.has_value());
  if (last_event) {
    w->F64(last_event->time);
    w->F64(last_event->value);
    w->F64(last_event->expected);
    w->F64(last_event->score);
  }
  w->F64(last_score);
}

Status Forecaster::Impl::LoadFrom(StateReader* r) {
  const double step = r->F64();
  const uint32_t nh = r->U32();
  AUGUR_RETURN_IF_ERROR(r->status());
  if (nh > 4096) return Status::Corruption("forecast state: too many horizons");
  std::vector<int> saved_h(nh);
  for (auto& h : saved_h) h = static_cast<int>(r->U32());
  AUGUR_RETURN_IF_ERROR(r->status());
  std::vector<int> want;
  for (const HorizonState& h : hs) want.push_back(h.h);
  if (step != opts.step_seconds || saved_h != want) {
    return Status::FailedPrecondition(
        "forecast state was saved with another step or horizons (step " + std::to_string(step) +
        " s); starting fresh is required");
  }
  grid.Load(r);
  hist.Load(r);
  season.Load(r);
  trend.Load(r);
  fast.Load(r);
  slow.Load(r);
  mid.Load(r);
  deviation.Load(r);
  scale = r->F64();
  scale_n = r->U64();
  last_step = r->I64();
  AUGUR_RETURN_IF_ERROR(r->status());
  if (!std::isfinite(scale) || scale < 0) return Status::Corruption("forecast state: bad scale");
  if (season.period() > hist.capacity()) return Status::Corruption("forecast state: bad period");
  for (HorizonState& h : hs) {
    h.ensemble.Load(r);
    h.interval.Load(r);
    AUGUR_RETURN_IF_ERROR(r->status());
    AUGUR_RETURN_IF_ERROR(h.plain.Load(r));
    AUGUR_RETURN_IF_ERROR(h.seasonal.Load(r));
    AUGUR_RETURN_IF_ERROR(h.stack.Load(r));
    h.reg_mae = r->F64();
    h.reg_n = r->U64();
    h.stack_mae = r->F64();
    h.stack_n = r->U64();
    for (double& b : h.bias) {
      b = r->F64();
      if (!std::isfinite(b)) return Status::Corruption("forecast state: bad bias");
    }
    for (double& b : h.hedge) {
      b = r->F64();
      if (!std::isfinite(b) || b < 0) return Status::Corruption("forecast state: bad hedge");
    }
    for (Slot& s : h.slots) {
      s.step = r->I64();
      s.valid = r->Bool();
      s.seasonal = r->Bool();
      s.base = r->F64();
      s.scale = r->F64();
      LoadVec(r, &s.x);
      LoadVec(r, &s.x2);
      for (double& v : s.raw) v = r->F64();
      for (double& v : s.cand) v = r->F64();
      s.mean = r->F64();
      s.lo = r->F64();
      s.hi = r->F64();
      if (s.valid && (!std::isfinite(s.base) || !(s.scale > 0) || !std::isfinite(s.mean))) {
        return Status::Corruption("forecast state: bad pending forecast");
      }
    }
    AUGUR_RETURN_IF_ERROR(r->status());
  }
  AUGUR_RETURN_IF_ERROR(anomaly.Load(r));
  current.ready = r->Bool();
  current.issued_time = r->F64();
  for (HorizonForecast& f : current.horizons) {
    f.horizon = static_cast<int>(r->U32());
    f.target_time = r->F64();
    f.mean = r->F64();
    f.lo = r->F64();
    f.hi = r->F64();
  }
  if (r->Bool()) {
    AnomalyEvent e;
    e.time = r->F64();
    e.value = r->F64();
    e.expected = r->F64();
    e.score = r->F64();
    last_event = e;
  } else {
    last_event.reset();
  }
  last_score = r->F64();
  AUGUR_RETURN_IF_ERROR(r->status());
  if (!r->AtEnd()) return Status::Corruption("forecast state: trailing bytes");
  return Status::OK();
}

Forecaster::Forecaster(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Forecaster::Forecaster(Forecaster&&) noexcept = default;
Forecaster& Forecaster::operator=(Forecaster&&) noexcept = default;
Forecaster::~Forecaster() = default;

Result<Forecaster> Forecaster::Create(const ForecasterOptions& opts) {
  if (Status s = opts.Validate(); !s.ok()) return Err(std::move(s));
  try {
    return Forecaster(std::make_unique<Impl>(opts));
  } catch (const std::exception& e) {
    return Err(Status::Internal(std::string("forecast: ") + e.what()));
  }
}

ObserveResult Forecaster::Observe(double ts, double value) {
  try {
    const DropReason why = impl_->grid.Add(ts, value, &impl_->closed);
    ObserveResult res = impl_->Process(impl_->closed);
    res.dropped = why != DropReason::kNone;
    return res;
  } catch (const std::exception&) {
    // dlib only throws on invariant violations we guard against; never take the agent down
    // for one series. The sample is counted as dropped.
    impl_->closed.clear();
    ObserveResult res;
    res.dropped = true;
    return res;
  }
}

ObserveResult Forecaster::AdvanceTo(double now) {
  try {
    impl_->grid.AdvanceTo(now, &impl_->closed);
    return impl_->Process(impl_->closed);
  } catch (const std::exception&) {
    impl_->closed.clear();
    return ObserveResult{};
  }
}

const ForecastSet& Forecaster::Forecast() const { return impl_->current; }
double Forecaster::AnomalyScore() const { return impl_->last_score; }
std::optional<AnomalyEvent> Forecaster::last_event() const { return impl_->last_event; }
const ForecasterOptions& Forecaster::options() const { return impl_->opts; }

ForecasterStats Forecaster::stats() const {
  ForecasterStats st;
  const GridCounters& g = impl_->grid.counters();
  st.samples_accepted = g.accepted;
  st.dropped_nonfinite = g.dropped_nonfinite;
  st.dropped_out_of_order = g.dropped_out_of_order;
  st.steps_observed = g.closed_steps;
  st.steps_imputed = g.imputed_steps;
  st.breaks = g.breaks;
  st.anomaly_events = impl_->anomaly.events();
  for (const HorizonState& h : impl_->hs) {
    st.regression_resets += h.plain.resets() + h.seasonal.resets();
  }
  st.period = impl_->season.period();
  st.period_strength = impl_->season.strength();
  return st;
}

std::vector<CandidateInfo> Forecaster::Candidates(int horizon) const {
  std::vector<CandidateInfo> out;
  for (const HorizonState& h : impl_->hs) {
    if (h.h != horizon) continue;
    const Slot& newest = h.slots[Mod(impl_->last_step, h.h)];
    for (int c = 0; c < kNumCandidates; ++c) {
      const bool fresh = newest.step == impl_->last_step;
      out.push_back(CandidateInfo{CandidateName(c), h.ensemble.error(c), h.weights[c],
                                  fresh ? newest.cand[c] : kNaN});
    }
  }
  return out;
}

size_t Forecaster::StateBytes() const {
  const Impl& m = *impl_;
  size_t b = sizeof(Impl) + m.hist.Bytes() + m.anomaly.Bytes();
  for (const HorizonState& h : m.hs) {
    b += sizeof(HorizonState) + h.plain.Bytes() + h.seasonal.Bytes() + h.stack.Bytes();
    for (const Slot& s : h.slots) b += sizeof(Slot) + (s.x.size() + s.x2.size()) * sizeof(double);
  }
  b += m.current.horizons.capacity() * sizeof(HorizonForecast);
  return b;
}

Status Forecaster::Save(std::ostream& os) const {
  StateWriter w;
  impl_->SaveTo(&w);
  return WriteFramed(os, std::string_view(kMagic, 8), kFormatVersion, w.data());
}

Status Forecaster::Restore(std::istream& is) {
  try {
    uint32_t version = 0;
    Result<std::string> payload =
        ReadFramed(is, std::string_view(kMagic, 8), kFormatVersion, kMaxPayload, &version);
    if (!payload) return payload.error();
    if (version < kOldestReadableVersion) {
      return Status::FailedPrecondition("forecast state format version " +
                                        std::to_string(version) +
                                        " is no longer supported (this build reads " +
                                        std::to_string(kOldestReadableVersion) + ".." +
                                        std::to_string(kFormatVersion) + "); start fresh");
    }
    auto fresh = std::make_unique<Impl>(impl_->opts);
    StateReader r(*payload);
    AUGUR_RETURN_IF_ERROR(fresh->LoadFrom(&r));
    impl_ = std::move(fresh);
    return Status::OK();
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("forecast state: ") + e.what());
  }
}

}  // namespace augur::forecast
