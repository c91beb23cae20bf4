// LagRegression: one horizon's online linear regression (dlib::rls) from a feature vector
// built on the series' recent lags, smoothed levels and seasonal lags (see forecaster.cc for
// the features) to the change from the newest value to the target, both divided by the
// series' scale so the learned weights do not depend on units.
//
// The forget factor is applied to the regulariser too (dlib's apply_forget_factor_to_C), so
// an update costs O(d^2). That variant can wind up along directions the data never excites;
// Train() therefore skips (near-)zero feature vectors, the caller gives seasonal and
// non-seasonal feature sets separate models, and a model whose weights stop being finite
// or grow absurd is re-initialised (counted in resets()).
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_LAG_REGRESSION_H_
#define AUGUR_FORECAST_LAG_REGRESSION_H_

#include <dlib/matrix.h>
#include <dlib/svm/rls.h>

#include "augur/status.h"
#include "forecast/binary_io.h"

namespace augur::forecast {

using FeatureVec = dlib::matrix<double, 0, 1>;

class LagRegression {
 public:
  // REQUIRES: 0 < forget <= 1, c > 0.
  LagRegression(double forget, double c) : forget_(forget), c_(c), rls_(forget, c, true) {}

  // Prediction for x (0 before the first training sample).
  double Predict(const FeatureVec& x) const;
  // One update with sample weight `weight` (> 0), as weighted least squares.
  void Train(const FeatureVec& x, double target, double weight);

  uint64_t samples() const { return samples_; }
  uint64_t resets() const { return resets_; }
  size_t Bytes() const;

  void Save(StateWriter* w) const;
  Status Load(StateReader* r);

 private:
  double forget_, c_;
  dlib::rls rls_;
  uint64_t samples_ = 0;
  uint64_t resets_ = 0;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_LAG_REGRESSION_H_
