#include "forecast/candidates.h"

#include <algorithm>
#include <array>
#include <limits>

namespace augur::forecast {

const char* CandidateName(int id) {
  switch (id) {
    case kPersistence: return "persistence";
    case kSeasonalNaive: return "seasonal_naive";
    case kDampedTrend: return "damped_trend";
    case kSeasonalMean: return "seasonal_mean";
    case kLagRegression: return "lag_regression";
    case kStack: return "stack";
    case kDailyNaive: return "daily_naive";
    case kLevel: return "level";
    case kSeasonalMedian: return "seasonal_median";
    case kMedian: return "median";
    case kHedge: return "hedge";
    default: return "unknown";
  }
}

double SeasonalNaive(const History& h, int period, int ahead) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (period <= 0) return kNaN;
  const int cycles = (ahead + period - 1) / period;  // smallest j with j*period >= ahead
  const int lag = cycles * period - ahead;
  if (lag >= h.size()) return kNaN;
  return h.Back(lag);
}

double SeasonalMean(const History& h, int period, int ahead, int max_cycles, double decay,
                    int halfwidth) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  if (period <= 0) return kNaN;
  const int first = (ahead + period - 1) / period;
  double sum = 0, wsum = 0, w = 1;
  for (int j = first; j < first + max_cycles; ++j, w *= decay) {
    const int lag = j * period - ahead;
    if (lag + halfwidth >= h.size()) break;
    double s = 0;
    int n = 0;
    for (int d = -halfwidth; d <= halfwidth; ++d) {
      if (lag + d < 0) continue;
      s += h.Back(lag + d);
      ++n;
    }
    sum += w * s / n;
    wsum += w;
  }
  return wsum > 0 ? sum / wsum : kNaN;
}

namespace {
// Median of v[0..n), n >= 1 (reorders v).
template <size_t N>
double MedianOf(std::array<double, N>& v, int n) {
  std::nth_element(v.begin(), v.begin() + n / 2, v.begin() + n);
  const double hi = v[n / 2];
  if (n % 2) return hi;
  return 0.5 * (hi + *std::max_element(v.begin(), v.begin() + n / 2));
}
}  // namespace

double SeasonalMedian(const History& h, int period, int ahead, int cycles, int min_cycles,
                      int halfwidth) {
  if (period <= 0) return std::numeric_limits<double>::quiet_NaN();
  constexpr int kMaxCycles = 16, kMaxHalfwidth = 3;
  std::array<double, kMaxCycles * (2 * kMaxHalfwidth + 1)> v{};
  halfwidth = std::clamp(halfwidth, 0, kMaxHalfwidth);
  const int first = (ahead + period - 1) / period;  // smallest j with j*period >= ahead
  int n = 0, got = 0;
  for (int j = first; j < first + std::min(cycles, kMaxCycles); ++j) {
    const int lag = j * period - ahead;
    if (lag + halfwidth >= h.size()) break;
    ++got;
    for (int d = -halfwidth; d <= halfwidth; ++d) {
      if (lag + d >= 0) v[n++] = h.Back(lag + d);
    }
  }
  if (got < min_cycles) return std::numeric_limits<double>::quiet_NaN();
  return MedianOf(v, n);
}

void DampedTrend::Update(double y) {
  if (n_ == 0) {
    level_ = y;
    trend_ = 0;
  } else {
    const double prev = level_;
    level_ = alpha_ * y + (1 - alpha_) * (level_ + phi_ * trend_);
    trend_ = beta_ * (level_ - prev) + (1 - beta_) * phi_ * trend_;
  }
  if (n_ < 0xffffffffu) ++n_;
}

double DampedTrend::Forecast(int h) const {
  double damp = 0, p = 1;
  for (int i = 0; i < h; ++i) {
    p *= phi_;
    damp += p;
  }
  return level_ + damp * trend_;
}

void DampedTrend::Save(StateWriter* w) const {
  w->F64(level_);
  w->F64(trend_);
  w->U32(n_);
}

void DampedTrend::Load(StateReader* r) {
  level_ = r->F64();
  trend_ = r->F64();
  n_ = r->U32();
  r->Check(std::isfinite(level_) && std::isfinite(trend_), "damped trend: non-finite state");
}

}  // namespace augur::forecast
