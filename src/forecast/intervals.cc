#include "forecast/intervals.h"

#include <algorithm>
#include <cmath>

namespace augur::forecast {

IntervalTracker::IntervalTracker(IntervalOptions opts) : opts_(opts) {
  tau_lo_ = (1 - opts_.coverage) / 2;
  tau_hi_ = (1 + opts_.coverage) / 2;
  // Start from the Laplace quantiles in mean-absolute-error units (|e| has mean sigma):
  // P(e > q*sigma) = exp(-q)/2.
  q_hi_ = -std::log(2 * (1 - tau_hi_));
  q_lo_ = -q_hi_;
}

void IntervalTracker::Update(double y, double mean, double lo, double hi) {
  if (!std::isfinite(y) || !std::isfinite(mean)) return;
  const double e = std::fabs(y - mean);
  const double a = std::max(opts_.sigma_decay, 1.0 / static_cast<double>(n_ + 1));
  sigma_ += a * (e - sigma_);
  ++n_;
  if (std::isfinite(lo) && std::isfinite(hi)) {
    q_lo_ -= opts_.eta * ((y <= lo ? 1.0 : 0.0) - tau_lo_);
    q_hi_ -= opts_.eta * ((y <= hi ? 1.0 : 0.0) - tau_hi_);
    // Keep the trackers sane: an interval never inverts and never grows without bound.
    q_lo_ = std::clamp(q_lo_, -50.0, 0.0);
    q_hi_ = std::clamp(q_hi_, 0.0, 50.0);
  }
}

void IntervalTracker::Bounds(double mean, double fallback_sigma, double* lo, double* hi) const {
  const double s = n_ > 0 ? sigma_ : fallback_sigma;
  *lo = mean + q_lo_ * s;
  *hi = mean + q_hi_ * s;
}

void IntervalTracker::Save(StateWriter* w) const {
  w->F64(sigma_);
  w->F64(q_lo_);
  w->F64(q_hi_);
  w->U64(n_);
}

void IntervalTracker::Load(StateReader* r) {
  sigma_ = r->F64();
  q_lo_ = r->F64();
  q_hi_ = r->F64();
  n_ = r->U64();
  r->Check(std::isfinite(sigma_) && sigma_ >= 0 && std::isfinite(q_lo_) && std::isfinite(q_hi_),
           "intervals: bad state");
}

}  // namespace augur::forecast
