// Conformal: prediction intervals from the residuals of past one-step-ahead predictions
// (split-conformal prediction, online), shared by the workflow learners (profile.h,
// demand.h).
//
// Given residuals r_i = actual - predicted of predictions made before each actual was
// known, a new actual lies in predicted + [q_lo, q_hi] with probability `coverage`, whatever
// the residuals' distribution (if they are exchangeable), when q_lo and q_hi are the
// residuals' (1-c)/2 and (1+c)/2 quantiles with the finite-sample correction (ranks of n+1
// points, the next one at the far end). Callers keep a window of recent residuals so that
// the intervals follow changes. With few residuals the corrected rank is out of reach;
// Bounds then falls back to a Student-t interval on their mean and spread, which assumes
// roughly normal residuals but widens properly for small counts.
//
// Thread safety: functions of their arguments.
#ifndef AUGUR_WORKFLOW_CONFORMAL_H_
#define AUGUR_WORKFLOW_CONFORMAL_H_

#include <cstddef>
#include <utility>
#include <vector>

namespace augur::workflow {

// Standard normal quantile, p in (0, 1) (Acklam's approximation, relative error < 1.2e-9).
double NormalQuantile(double p);
// Student t quantile with `nu` >= 1 degrees of freedom (Cornish-Fisher: within 4 % at nu = 1,
// 0.5 % from nu = 2).
double TQuantile(double p, double nu);

struct ConformalBounds {
  double centre = 0;       // the residuals' median (t fallback: their mean)
  double lo = 0, hi = 0;   // residual bounds, lo <= centre <= hi
  bool conformal = false;  // false: the t fallback (or no residuals at all)
};

// Bounds at `coverage` from `residuals` (reordered in place; O(n)). At least `min_conformal`
// residuals use the conformal quantiles; 2 or more below that the t interval; fewer give
// centre 0 and [-fallback, +fallback].
ConformalBounds Bounds(std::vector<double>& residuals, double coverage, size_t min_conformal,
                       double fallback);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_CONFORMAL_H_
