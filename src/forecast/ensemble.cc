#include "forecast/ensemble.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace augur::forecast {

void Ensemble::Reset() {
  err_.fill(0);
  n_.fill(0);
}

void Ensemble::Update(int c, double abs_err) {
  if (!std::isfinite(abs_err)) return;
  // Average plainly until the window is full, then decay.
  const double a = std::max(opts_.decay, 1.0 / (n_[c] + 1));
  err_[c] += a * (abs_err - err_[c]);
  n_[c] += 1;
}

double Ensemble::Combine(const std::array<double, kNumCandidates>& f,
                         std::array<double, kNumCandidates>* weights) const {
  bool any_trusted = false;
  for (int c = 0; c < kNumCandidates; ++c) {
    if (std::isfinite(f[c]) && n_[c] >= opts_.min_samples) any_trusted = true;
  }
  auto usable = [&](int c) {
    return std::isfinite(f[c]) && (!any_trusted || n_[c] >= opts_.min_samples);
  };
  double best = std::numeric_limits<double>::infinity();
  for (int c = 0; c < kNumCandidates; ++c) {
    if (usable(c)) best = std::min(best, err_[c]);
  }
  std::array<double, kNumCandidates> w{};
  double wsum = 0;
  for (int c = 0; c < kNumCandidates; ++c) {
    if (!usable(c)) continue;
    double rel = 0;
    if (best > 0) rel = err_[c] / best - 1;
    else if (err_[c] > 0) rel = 1e9;  // best is exact: it alone
    w[c] = std::exp(-opts_.sharpness * rel);
    wsum += w[c];
  }
  if (weights) weights->fill(0);
  if (!(wsum > 0)) return std::numeric_limits<double>::quiet_NaN();
  double out = 0;
  for (int c = 0; c < kNumCandidates; ++c) {
    if (w[c] == 0) continue;
    w[c] /= wsum;
    out += w[c] * f[c];
    if (weights) (*weights)[c] = w[c];
  }
  return out;
}

void Ensemble::Save(StateWriter* w) const {
  w->U32(kNumCandidates);
  for (int c = 0; c < kNumCandidates; ++c) {
    w->F64(err_[c]);
    w->F64(n_[c]);
  }
}

void Ensemble::Load(StateReader* r) {
  const uint32_t n = r->U32();
  if (!r->Check(n <= 64, "ensemble: too many candidates")) return;
  Reset();
  for (uint32_t c = 0; c < n; ++c) {
    const double e = r->F64();
    const double k = r->F64();
    if (!r->Check(std::isfinite(e) && e >= 0 && std::isfinite(k) && k >= 0,
                  "ensemble: bad error state")) {
      return;
    }
    // Candidates this build does not know are ignored; new ones start untrained.
    if (c < static_cast<uint32_t>(kNumCandidates)) {
      err_[c] = e;
      n_[c] = k;
    }
  }
}

}  // namespace augur::forecast
