// Ensemble: combines one horizon's candidate forecasts by their recent accuracy.
//
// Each candidate's absolute error is tracked as an exponentially decayed mean (window about
// 1/decay steps). The forecast is a blend with weights exp(-sharpness * (e_c/e_best - 1)):
// the best candidate dominates, close runners-up share, and a candidate much worse than the
// best (a clever model on a series it does not fit) gets ~no weight, so the blend tracks the
// best of persistence and seasonal naive whenever nothing beats them. Candidates with fewer
// than `min_samples` scored forecasts are not used while any candidate has enough.
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_ENSEMBLE_H_
#define AUGUR_FORECAST_ENSEMBLE_H_

#include <array>

#include "forecast/binary_io.h"
#include "forecast/candidates.h"

namespace augur::forecast {

struct EnsembleOptions {
  double decay = 0.02;       // weight of the newest error in the decayed mean
  double sharpness = 20.0;   // how fast weight falls with relative error; large = pick best
  double min_samples = 20;   // scored forecasts a candidate needs before it is trusted
};

class Ensemble {
 public:
  explicit Ensemble(EnsembleOptions opts) : opts_(opts) { Reset(); }

  // Records candidate c's absolute error on a realised target.
  void Update(int c, double abs_err);
  // Blends the available candidates (NaN = unavailable). Writes each candidate's weight to
  // `weights` when not null. NaN when no candidate is available.
  double Combine(const std::array<double, kNumCandidates>& f,
                 std::array<double, kNumCandidates>* weights) const;

  double error(int c) const { return err_[c]; }
  double samples(int c) const { return n_[c]; }
  void Reset();

  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  EnsembleOptions opts_;
  std::array<double, kNumCandidates> err_{};  // decayed mean |error|
  std::array<double, kNumCandidates> n_{};    // scored forecasts (saturating count)
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_ENSEMBLE_H_
