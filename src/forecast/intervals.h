// IntervalTracker: one horizon's central prediction interval, calibrated online.
//
// The interval is mean + sigma*[q_lo, q_hi], where sigma is the decayed mean absolute error
// of this horizon's forecasts (so the interval widens in volatile stretches) and q_lo, q_hi
// are quantile trackers on the intervals actually issued: after each realised target,
//   q <- q - eta * (1{y <= bound} - tau),  tau = (1-coverage)/2 or (1+coverage)/2.
// This is stochastic-approximation quantile tracking (as in adaptive conformal inference):
// whatever the residual distribution, the long-run share of targets below each bound
// converges to tau, so the long-run coverage converges to `coverage`.
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_INTERVALS_H_
#define AUGUR_FORECAST_INTERVALS_H_

#include "forecast/binary_io.h"

namespace augur::forecast {

struct IntervalOptions {
  double coverage = 0.8;     // central coverage wanted, in (0, 1)
  double sigma_decay = 0.02; // weight of the newest |error| in sigma
  double eta = 0.02;         // tracker step, in sigma units
};

class IntervalTracker {
 public:
  explicit IntervalTracker(IntervalOptions opts);

  // A realised target `y` for a forecast issued as (mean, lo, hi).
  void Update(double y, double mean, double lo, double hi);
  // Interval around `mean`. Before any error is known, `fallback_sigma` stands in for sigma.
  void Bounds(double mean, double fallback_sigma, double* lo, double* hi) const;

  double sigma() const { return sigma_; }
  uint64_t samples() const { return n_; }

  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  IntervalOptions opts_;
  double tau_lo_, tau_hi_;
  double sigma_ = 0;
  double q_lo_, q_hi_;
  uint64_t n_ = 0;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_INTERVALS_H_
