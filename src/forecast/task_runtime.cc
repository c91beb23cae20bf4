#include "forecast/task_runtime.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "forecast/lag_regression.h"

namespace augur::forecast {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kDims = 5;
constexpr double kRidgeC = 1.0;      // strong ridge: categories have a few dozen tasks
constexpr double kErrDecay = 0.1;    // memory of the mean-vs-regression error race
constexpr double kMeanWindow = 50;   // running means average the last ~50 tasks

struct CategoryModel {
  explicit CategoryModel(double forget) : reg(forget, kRidgeC) {}
  LagRegression reg;
  double log_mean = 0;   // running mean of log value (host factor removed)
  double n = 0;
  double err_mean = 0;   // decayed |log error| of the mean alone
  double err_reg = 0;    // ... and of mean + regression
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
};

struct HostFactor {
  double offset = 0;  // mean log(value) - category mean, for tasks on this host
  double n = 0;
};

// Log-space features (the bias is the regression's own intercept on the residual).
FeatureVec Features(const TaskFeatures& t, double centre) {
  FeatureVec x(kDims);
  x(0) = 1.0;
  x(1) = t.input_bytes > 0 ? std::log1p(t.input_bytes / 1e6) : 0.0;
  x(2) = t.parent_runtime_mean > 0 ? std::log(t.parent_runtime_mean) - centre : 0.0;
  x(3) = t.parent_runtime_max > 0 ? std::log(t.parent_runtime_max) - centre : 0.0;
  x(4) = std::log1p(static_cast<double>(t.num_parents));
  return x;
}

}  // namespace

struct TaskRuntimePredictor::Impl {
  TaskPredictorOptions opts;
  std::map<std::string, CategoryModel, std::less<>> cats;
  std::map<std::string, HostFactor, std::less<>> hosts;
  CategoryModel global{1.0};

  double Host(const TaskFeatures& t) const {
    if (t.host.empty()) return 0;
    auto it = hosts.find(t.host);
    // Shrunk toward 0 while few tasks have been seen there.
    return it == hosts.end() ? 0 : it->second.offset * it->second.n / (it->second.n + 3);
  }
  // Log prediction of model `c` without clamping; sets *with_reg to the regression variant.
  double LogPredict(const CategoryModel& c, const TaskFeatures& t, double* with_reg) const {
    const double base = c.log_mean + Host(t);
    *with_reg = base;
    if (c.n >= opts.min_samples && c.reg.samples() > 0) {
      *with_reg = base + c.reg.Predict(Features(t, c.log_mean));
    }
    return base;
  }
};

TaskRuntimePredictor::TaskRuntimePredictor(TaskPredictorOptions opts)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = opts;
}
TaskRuntimePredictor::TaskRuntimePredictor(TaskRuntimePredictor&&) noexcept = default;
TaskRuntimePredictor& TaskRuntimePredictor::operator=(TaskRuntimePredictor&&) noexcept = default;
TaskRuntimePredictor::~TaskRuntimePredictor() = default;

size_t TaskRuntimePredictor::categories() const { return impl_->cats.size(); }

double TaskRuntimePredictor::Predict(const TaskFeatures& t) const {
  auto it = impl_->cats.find(t.category);
  const bool known = it != impl_->cats.end() && it->second.n > 0;
  const CategoryModel& c = known ? it->second : impl_->global;
  if (c.n == 0) return kNaN;
  double with_reg = 0;
  const double base = impl_->LogPredict(c, t, &with_reg);
  const bool use_reg = c.n >= impl_->opts.min_samples + 2 && c.err_reg < c.err_mean;
  const double p = use_reg ? with_reg : base;
  return std::exp(std::clamp(p, std::log(c.lo / 2), std::log(c.hi * 2)));
}

void TaskRuntimePredictor::Learn(const TaskFeatures& t, double value) {
  if (!(value > 0) || !std::isfinite(value)) return;
  Impl& m = *impl_;
  const double lv = std::log(value);
  const double host = m.Host(t);
  auto learn = [&](CategoryModel& c) {
    if (c.n > 0) {
      double with_reg = 0;
      const double base = m.LogPredict(c, t, &with_reg);
      const double a = std::max(kErrDecay, 1.0 / c.n);
      c.err_mean += a * (std::fabs(lv - base) - c.err_mean);
      c.err_reg += a * (std::fabs(lv - with_reg) - c.err_reg);
      // The regression explains what the mean and the host factor leave.
      c.reg.Train(Features(t, c.log_mean), lv - base, 1.0);
    }
    c.n += 1;
    c.log_mean += (lv - host - c.log_mean) / std::min(c.n, kMeanWindow);
    c.lo = std::min(c.lo, value);
    c.hi = std::max(c.hi, value);
  };
  auto it = m.cats.find(t.category);
  if (it == m.cats.end() && m.cats.size() < m.opts.max_categories) {
    it = m.cats.emplace(t.category, CategoryModel(m.opts.forget)).first;
  }
  if (it != m.cats.end()) {
    // The host factor learns from how far this task was from its category's mean.
    if (!t.host.empty() && it->second.n > 0) {
      HostFactor& h = m.hosts[t.host];
      h.n += 1;
      h.offset += (lv - it->second.log_mean - h.offset) / std::min(h.n, kMeanWindow);
    }
    learn(it->second);
  }
  learn(m.global);
}

}  // namespace augur::forecast
