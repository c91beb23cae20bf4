// The cheap candidate models every series keeps, besides the lag regression and the
// stack (lag_regression.h): persistence, seasonal naive, a damped-trend smoother (Holt with a
// damped trend), a seasonal mean (the decayed average of the same phase in earlier
// cycles plus the current deviation from it, decaying with the horizon) and a seasonal
// median (the median of the same phase in the last cycles). Persistence, seasonal naive and
// the seasonal median are functions of the history and hold no state.
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_CANDIDATES_H_
#define AUGUR_FORECAST_CANDIDATES_H_

#include <cmath>

#include "forecast/binary_io.h"
#include "forecast/history.h"

namespace augur::forecast {

// Candidate identities. NOTE: persisted in saved state (ensemble errors are stored in this
// order) and reported by name; append only.
enum CandidateId : int {
  kPersistence = 0,
  kSeasonalNaive = 1,
  kDampedTrend = 2,
  kSeasonalMean = 3,
  kLagRegression = 4,
  kStack = 5,            // online least squares over the other candidates' forecasts
  kDailyNaive = 6,       // y[k+h-D], D = one day of steps (when the step divides a day)
  kLevel = 7,            // exponentially smoothed level (alpha 0.03)
  kSeasonalMedian = 8,   // median of the target's phase in the last cycles
  kMedian = 9,           // median of the candidates above
  kHedge = 10,           // exponentiated-gradient convex combination of them (long h)
  kNumBase = 9,          // candidates 0..kNumBase-1 are models; the rest combine them
  kNumCandidates = 11,
};
const char* CandidateName(int id);

// Seasonal naive: the value one period before the target (the whole cycles needed to reach
// back past the newest value). NaN when the period is 0 or the history is too short.
// `ahead` is the horizon in steps (target = newest + ahead).
double SeasonalNaive(const History& h, int period, int ahead);

// Decayed mean of the values at the target's phase in up to `max_cycles` earlier cycles,
// weights decay^0, decay^1, ...; each cycle's value is averaged with its +-`halfwidth`
// neighbours. NaN when no cycle is available.
double SeasonalMean(const History& h, int period, int ahead, int max_cycles, double decay,
                    int halfwidth);

// Median of the values at the target's phase, y[target - j*period] and its +-`halfwidth`
// neighbours, over the up to `cycles` (<= 16) newest whole cycles before the target. NaN
// when fewer than `min_cycles` cycles are in the history or the period is 0. Robust where
// the seasonal mean is not: one unusual day does not move it.
double SeasonalMedian(const History& h, int period, int ahead, int cycles, int min_cycles,
                      int halfwidth);

// Holt's linear method with a damped trend:
//   level' = a*y + (1-a)*(level + phi*trend); trend' = b*(level'-level) + (1-b)*phi*trend
//   forecast(h) = level + (phi + ... + phi^h)*trend
class DampedTrend {
 public:
  DampedTrend(double alpha, double beta, double phi) : alpha_(alpha), beta_(beta), phi_(phi) {}
  void Update(double y);
  double Forecast(int h) const;
  bool ready() const { return n_ >= 2; }
  double level() const { return level_; }
  void Reset() { n_ = 0; level_ = trend_ = 0; }
  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  double alpha_, beta_, phi_;
  double level_ = 0, trend_ = 0;
  uint32_t n_ = 0;
};

// Exponential smoothing of a level (also used for deviations).
class Smoother {
 public:
  explicit Smoother(double alpha) : alpha_(alpha) {}
  void Update(double y) {
    level_ = n_ == 0 ? y : level_ + alpha_ * (y - level_);
    if (n_ < 0xffffffffu) ++n_;
  }
  double value() const { return level_; }
  bool ready() const { return n_ > 0; }
  void Reset() { n_ = 0; level_ = 0; }
  void Save(StateWriter* w) const { w->F64(level_); w->U32(n_); }
  void Load(StateReader* r) {
    level_ = r->F64();
    n_ = r->U32();
    r->Check(std::isfinite(level_), "smoother: non-finite level");
  }

 private:
  double alpha_;
  double level_ = 0;
  uint32_t n_ = 0;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_CANDIDATES_H_
