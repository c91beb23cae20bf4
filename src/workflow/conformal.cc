#include "workflow/conformal.h"

#include <algorithm>
#include <cmath>

namespace augur::workflow {

double NormalQuantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  p = std::clamp(p, 1e-12, 1 - 1e-12);
  if (p < kLow) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) return -NormalQuantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

double TQuantile(double p, double nu) {
  nu = std::max(nu, 1.0);
  const double z = NormalQuantile(p);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * nu) + (5 * z5 + 16 * z3 + 3 * z) / (96 * nu * nu) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * nu * nu * nu);
}

ConformalBounds Bounds(std::vector<double>& r, double coverage, size_t min_conformal,
                       double fallback) {
  ConformalBounds b;
  const double level = (1 + coverage) / 2;
  const size_t n = r.size();
  if (n >= std::max<size_t>(min_conformal, 2)) {
    // Rank ceil(level * (n + 1)) of n + 1 points, the extra one at the far end; out of reach
    // (n too small for the level), the extreme residual.
    const size_t rank = size_t(std::ceil(level * double(n + 1)));
    const size_t hi = std::min(rank, n) - 1;  // 0-based, from the bottom
    const size_t lo = n - std::min(rank, n);  // symmetric, from the top
    auto at = [&](size_t k) {
      std::nth_element(r.begin(), r.begin() + k, r.end());
      return r[k];
    };
    b.hi = at(hi);
    b.lo = at(lo);
    b.centre = at(n / 2);
    b.conformal = true;
  } else if (n >= 2) {
    const double k = double(n);
    double m = 0;
    for (double v : r) m += v;
    m /= k;
    double ss = 0;
    for (double v : r) ss += (v - m) * (v - m);
    const double half = TQuantile(level, k - 1) * std::sqrt(ss / (k - 1)) * std::sqrt(1 + 1 / k);
    b.centre = m;
    b.lo = m - half;
    b.hi = m + half;
  } else {
    b.lo = -fallback;
    b.hi = fallback;
  }
  b.lo = std::min(b.lo, b.centre);
  b.hi = std::max(b.hi, b.centre);
  return b;
}

}  // namespace augur::workflow
