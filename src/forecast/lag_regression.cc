#include "forecast/lag_regression.h"

#include <cmath>

namespace augur::forecast {
namespace {
// Weights beyond this (on unit-free features) mean the model has wound up; start over.
constexpr double kMaxWeight = 1e3;
}  // namespace

double LagRegression::Predict(const FeatureVec& x) const {
  if (samples_ == 0 || rls_.get_w().size() != x.size()) return 0;
  const double p = rls_(x);
  return std::isfinite(p) ? p : 0;
}

void LagRegression::Train(const FeatureVec& x, double target, double weight) {
  if (!std::isfinite(target) || !(weight > 0)) return;
  // Skip a (near-)constant input: it carries no information beyond the bias and would only
  // inflate the inverse covariance along the other directions.
  double energy = 0;
  for (long i = 1; i < x.size(); ++i) energy += x(i) * x(i);
  if (energy < 1e-12) return;
  if (rls_.get_w().size() != 0 && rls_.get_w().size() != x.size()) {
    rls_ = dlib::rls(forget_, c_, true);
    samples_ = 0;
  }
  const double sw = std::sqrt(weight);
  rls_.train(sw * x, sw * target);
  ++samples_;
  const auto& w = rls_.get_w();
  bool bad = false;
  for (long i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w(i)) || std::fabs(w(i)) > kMaxWeight) bad = true;
  }
  if (bad) {
    rls_ = dlib::rls(forget_, c_, true);
    samples_ = 0;
    ++resets_;
  }
}

size_t LagRegression::Bytes() const {
  const size_t d = static_cast<size_t>(rls_.get_w().size());
  return sizeof(*this) + (d * d + 2 * d) * sizeof(double);
}

void LagRegression::Save(StateWriter* w) const {
  w->U64(samples_);
  w->U64(resets_);
  w->Bytes(DlibToBlob(rls_));
}

Status LagRegression::Load(StateReader* r) {
  samples_ = r->U64();
  resets_ = r->U64();
  const std::string blob = r->Bytes(1 << 20);
  AUGUR_RETURN_IF_ERROR(r->status());
  dlib::rls fresh(forget_, c_, true);
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(blob, &fresh, "lag regression"));
  const auto& w = fresh.get_w();
  for (long i = 0; i < w.size(); ++i) {
    if (!std::isfinite(w(i))) return Status::Corruption("lag regression: non-finite weight");
  }
  if (w.size() > 256) return Status::Corruption("lag regression: too many weights");
  rls_ = fresh;
  return Status::OK();
}

}  // namespace augur::forecast
