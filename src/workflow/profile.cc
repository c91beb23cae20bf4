// ProfileBook (src/workflow/profile.h): weighted log-log fits per quantity, refitted from the
// profile's window after each sample, with online split-conformal intervals.
#include "workflow/profile.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <utility>

#include "workflow/conformal.h"

namespace augur::workflow {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr size_t kQ = kQuantityCount;

// Added before taking logs, so that a zero (a task that used no CPU, read nothing, cost
// nothing) is a value like any other rather than minus infinity. Small against what each
// quantity typically is.
constexpr std::array<double, kQ> kEps = {1e-3, 1e-3, 64.0 * 1024, 1024, 1024, 1e-6};
// The exponent a stage's size is assumed to have until its sizes vary: work (time, bytes,
// cost) grows with the input; memory mostly does not (tasks stream).
constexpr std::array<double, kQ> kPriorExponent = {1, 1, 0, 1, 1, 1};
// The prior's weight, in the units of the fit's weighted sum of squared log-size deviations:
// sizes spread by 2x either side over a handful of samples outweigh it.
constexpr double kPriorWeight = 1.0;
// Exponents outside this range are taken as noise.
constexpr double kMinExponent = -1, kMaxExponent = 3;
// Residuals needed before the conformal quantiles are used (a t interval below).
constexpr size_t kConformalMin = 20;
// How far an interval may be widened for a size far from those seen.
constexpr double kMaxWiden = 3;
// OOM floors kept per profile.
constexpr size_t kMaxOoms = 16;

constexpr std::array<std::string_view, kQ> kNames = {
    "wall_seconds", "cpu_seconds", "peak_memory_bytes", "bytes_read", "bytes_written", "cost"};

struct Sample {
  uint64_t seq = 0;
  double units = 0;  // as recorded
  double x = 0;      // log(units); 0 when unsized
  bool sized = false;
  int64_t started_ns = 0;
  std::array<double, kQ> y;      // log(value + eps); NaN: not measured
  std::array<double, kQ> resid;  // y - the centre predicted before it was learned; NaN: none
};

struct Oom {
  uint64_t seq = 0;
  double x = 0;
  bool sized = false;
  double log_grant = 0;  // log(grant + eps)
};

// The fit of one quantity over the window.
struct Fit {
  size_t n = 0;  // samples with a value
  double xbar = 0, ybar = 0;
  double b = 0;               // exponent
  double sxx = 0;             // weighted squared log-size deviations
  double n_eff = 0;           // effective sample count of the weights
  double q_lo = 0, q_hi = 0;  // residual quantiles: the interval around the fit
  SizeModel model = SizeModel::kNone;
};

struct Profile {
  std::deque<Sample> samples;
  std::deque<Oom> ooms;
  std::array<Fit, kQ> fit;
  std::array<size_t, kQ> checked{}, hits{};
  size_t learned = 0;
  uint64_t seq = 0;
  uint64_t used = 0;  // the book's use clock at the last Learn or Predict
};

// The centre of the fit at log-size x, in log space, and the widening of the interval there.
struct At {
  double centre = 0;
  double widen = 1;
  double x = 0;
};

At Locate(const Fit& f, double units) {
  At at;
  // Unsized profiles, and "a typical shard" (units 0), are predicted at the mean size.
  at.x = (f.model == SizeModel::kNone || !(units > 0)) ? f.xbar : std::log(units);
  const double dx = at.x - f.xbar;
  at.centre = f.ybar + f.b * dx;
  if (f.model != SizeModel::kNone && f.n_eff > 0) {
    // Prediction variance grows as 1 + 1/n + dx^2/Sxx; the residuals already carry the
    // average leverage (about 1/n), so widen by the ratio.
    const double n = std::max(f.n_eff, 1.0);
    const double w = std::sqrt((1 + 1 / n + dx * dx / (f.sxx + kPriorWeight)) / (1 + 2 / n));
    at.widen = std::clamp(w, 1.0, kMaxWiden);
  }
  return at;
}

}  // namespace

std::string_view QuantityName(Quantity q) {
  const auto i = static_cast<size_t>(q);
  return i < kQ ? kNames[i] : std::string_view("unknown");
}

std::string_view SizeModelName(SizeModel m) {
  switch (m) {
    case SizeModel::kNone:
      return "none";
    case SizeModel::kPrior:
      return "prior";
    case SizeModel::kFit:
      return "fit";
  }
  return "unknown";
}

double QuantityOf(const HistoryRecord& h, Quantity q) {
  switch (q) {
    case Quantity::kWall:
      return h.wall_seconds;
    case Quantity::kCpu:
      return h.cpu_seconds;
    case Quantity::kMemory:
      return double(h.peak_memory_bytes);
    case Quantity::kBytesRead:
      return double(h.bytes_read);
    case Quantity::kBytesWritten:
      return double(h.bytes_written);
    case Quantity::kCost:
      return h.cost;
  }
  return kNaN;
}

double ShardUnits(const HistoryRecord& h) {
  if (h.range_end > h.range_begin) return double(h.range_end - h.range_begin);
  return double(h.items);
}

double ShardUnits(const ShardRecord& s) {
  if (s.end > s.begin) return double(s.end - s.begin);
  return double(s.items.size());
}

struct ProfileBook::Impl {
  ProfileOptions o;
  std::map<std::string, Profile, std::less<>> stages;    // "workflow/stage"
  std::map<std::string, Profile, std::less<>> backends;  // start-up times
  uint64_t clock = 0;                                    // counts uses, for the LRU order
  std::vector<double> decay;  // decay[age] = 2^(-age / half_life), age < max_samples
  size_t residual_window = 0;

  static std::string Key(std::string_view workflow, std::string_view stage) {
    std::string k;
    k.reserve(workflow.size() + stage.size() + 1);
    k.append(workflow).append("/").append(stage);
    return k;
  }

  Profile& Get(std::map<std::string, Profile, std::less<>>& m, std::string key) {
    auto it = m.find(key);
    if (it == m.end()) {
      if (m.size() >= o.max_profiles) {
        auto lru = std::min_element(m.begin(), m.end(), [](const auto& a, const auto& b) {
          return a.second.used < b.second.used;
        });
        m.erase(lru);
      }
      it = m.emplace(std::move(key), Profile{}).first;
    }
    it->second.used = ++clock;
    return it->second;
  }

  // A use: recently predicted profiles are kept too. (The book's const methods reach this
  // through impl_; the stamp is not part of what the book predicts.)
  const Profile* Find(std::map<std::string, Profile, std::less<>>& m, std::string_view key) {
    auto it = m.find(key);
    if (it == m.end()) return nullptr;
    it->second.used = ++clock;
    return &it->second;
  }

  // Each sample's weight: halves every half_life newer samples.
  std::vector<double> Weights(const Profile& p) const {
    std::vector<double> w;
    w.reserve(p.samples.size());
    for (const Sample& s : p.samples)
      w.push_back(decay[std::min<uint64_t>(p.seq - s.seq, decay.size() - 1)]);
    return w;
  }

  void Refit(Profile& p, size_t q, const std::vector<double>& weight) const {
    Fit f;
    double sw = 0, sw2 = 0, sx = 0, sy = 0;
    bool sized = false;
    for (size_t i = 0; i < p.samples.size(); ++i) {
      const Sample& s = p.samples[i];
      if (std::isnan(s.y[q])) continue;
      const double w = weight[i];
      ++f.n;
      sw += w;
      sw2 += w * w;
      sx += w * s.x;
      sy += w * s.y[q];
      sized = sized || s.sized;
    }
    if (f.n == 0) {
      p.fit[q] = f;
      return;
    }
    f.xbar = sx / sw;
    f.ybar = sy / sw;
    f.n_eff = sw * sw / sw2;
    double sxy = 0;
    for (size_t i = 0; i < p.samples.size(); ++i) {
      const Sample& s = p.samples[i];
      if (std::isnan(s.y[q])) continue;
      const double w = weight[i];
      f.sxx += w * (s.x - f.xbar) * (s.x - f.xbar);
      sxy += w * (s.x - f.xbar) * (s.y[q] - f.ybar);
    }
    if (sized) {
      f.b = std::clamp((sxy + kPriorWeight * kPriorExponent[q]) / (f.sxx + kPriorWeight),
                       kMinExponent, kMaxExponent);
      f.model = f.sxx >= kPriorWeight ? SizeModel::kFit : SizeModel::kPrior;
    }
    // The residuals of the newest one-step-ahead predictions (the last two half-lives, so
    // that the intervals follow a change as fast as the point does). Until two exist: a
    // factor of two either way.
    std::vector<double> r;
    r.reserve(std::min(p.samples.size(), residual_window));
    for (auto it = p.samples.rbegin(); it != p.samples.rend() && r.size() < residual_window; ++it) {
      if (!std::isnan(it->resid[q])) r.push_back(it->resid[q]);
    }
    const ConformalBounds cb = Bounds(r, o.coverage, kConformalMin, std::log(2.0));
    f.q_lo = cb.lo;
    f.q_hi = cb.hi;
    p.fit[q] = f;
  }

  // The estimate of quantity q of profile p at `units`, in log space: (point, lo, hi). The
  // residuals need not straddle zero (after a change they lean one way until they leave the
  // window); the point stays the fit's, moved into the interval if it falls outside.
  struct LogEstimate {
    double point, lo, hi;
  };
  LogEstimate Log(const Fit& f, double units) const {
    const At at = Locate(f, units);
    const double lo = at.centre + f.q_lo * at.widen, hi = at.centre + f.q_hi * at.widen;
    return {std::clamp(at.centre, lo, hi), lo, hi};
  }

  std::optional<double> Floor(const Profile& p, double units) const {
    if (p.ooms.empty()) return std::nullopt;
    const Fit& f = p.fit[size_t(Quantity::kMemory)];
    const double b = f.n > 0 ? f.b : kPriorExponent[size_t(Quantity::kMemory)];
    double best = -std::numeric_limits<double>::infinity();
    for (const Oom& m : p.ooms) {
      double lg = m.log_grant;
      if (m.sized) {
        const double x = units > 0 ? std::log(units) : (f.n > 0 ? f.xbar : m.x);
        lg += b * (x - m.x);
      }
      best = std::max(best, lg);
    }
    return std::max(0.0, std::exp(best) - kEps[size_t(Quantity::kMemory)]);
  }

  std::optional<Estimate> Answer(const Profile& p, size_t q, double units) const {
    const Fit& f = p.fit[q];
    if (f.n < o.min_samples) return std::nullopt;
    const LogEstimate l = Log(f, units);
    Estimate e;
    // Back from log space; what is left of a zero after exp(log(eps)) - eps is rounding.
    auto back = [&](double v) {
      const double r = std::exp(v) - kEps[q];
      return r < kEps[q] * 1e-6 ? 0.0 : r;
    };
    e.value = back(l.point);
    e.lo = std::min(back(l.lo), e.value);
    e.hi = std::max(back(l.hi), e.value);
    e.samples = f.n;
    e.units = f.model == SizeModel::kNone ? 0 : units;
    e.size_model = f.model;
    e.exponent = f.model == SizeModel::kNone ? 0 : f.b;
    if (q == size_t(Quantity::kMemory)) {
      if (std::optional<double> fl = Floor(p, units)) {
        e.floor = *fl;
        e.value = std::max(e.value, *fl);
        e.lo = std::max(e.lo, *fl);
        e.hi = std::max(e.hi, e.value);
      }
    }
    return e;
  }

  void Add(Profile& p, Sample s) {
    s.seq = ++p.seq;
    for (size_t q = 0; q < kQ; ++q) {
      s.resid[q] = kNaN;
      if (std::isnan(s.y[q])) continue;
      const Fit& f = p.fit[q];
      if (f.n == 0) continue;
      // Predict before learning: the residual is what calibrates the intervals, and the
      // check is what `augurctl profile` reports as the observed coverage.
      const At at = Locate(f, s.units);
      s.resid[q] = s.y[q] - at.centre;
      if (f.n >= o.min_samples) {
        const LogEstimate l = Log(f, s.units);
        ++p.checked[q];
        // (With a tolerance: a quantity that never varies has an interval of zero width,
        // which its next value meets only up to rounding.)
        constexpr double kTol = 1e-9;
        if (s.y[q] >= l.lo - kTol && s.y[q] <= l.hi + kTol) ++p.hits[q];
      }
    }
    p.samples.push_back(s);
    while (p.samples.size() > o.max_samples) p.samples.pop_front();
    ++p.learned;
    const std::vector<double> w = Weights(p);
    for (size_t q = 0; q < kQ; ++q) Refit(p, q, w);
    while (!p.ooms.empty() && p.seq - p.ooms.front().seq > o.max_samples) p.ooms.pop_front();
  }
};

ProfileBook::ProfileBook(ProfileOptions options) : impl_(std::make_unique<Impl>()) {
  ProfileOptions& o = impl_->o;
  o = options;
  o.min_samples = std::max<size_t>(o.min_samples, 1);
  o.max_samples = std::max({o.max_samples, o.min_samples, size_t{2}});
  o.max_profiles = std::max<size_t>(o.max_profiles, 1);
  o.coverage = std::isfinite(o.coverage) ? std::clamp(o.coverage, 0.5, 0.99) : 0.8;
  o.half_life = std::isfinite(o.half_life) ? std::max(o.half_life, 1.0) : 25;
  for (size_t age = 0; age <= o.max_samples; ++age) {
    impl_->decay.push_back(std::exp2(-double(age) / o.half_life));
  }
  impl_->residual_window = std::max(kConformalMin, size_t(2 * o.half_life));
}
ProfileBook::ProfileBook(ProfileBook&&) noexcept = default;
ProfileBook& ProfileBook::operator=(ProfileBook&&) noexcept = default;
ProfileBook::~ProfileBook() = default;

const ProfileOptions& ProfileBook::options() const { return impl_->o; }
size_t ProfileBook::profiles() const { return impl_->stages.size(); }

bool ProfileBook::Learn(const HistoryRecord& h) {
  if (h.workflow_name.empty() || h.stage.empty()) return false;
  const double units = ShardUnits(h);
  if (h.state == AttemptState::kOom) {
    if (h.grant.memory == 0) return false;
    Profile& p = impl_->Get(impl_->stages, Impl::Key(h.workflow_name, h.stage));
    Oom m;
    m.seq = p.seq;
    m.sized = units > 0;
    m.x = m.sized ? std::log(units) : 0;
    m.log_grant = std::log(double(h.grant.memory) + kEps[size_t(Quantity::kMemory)]);
    p.ooms.push_back(m);
    while (p.ooms.size() > kMaxOoms) p.ooms.pop_front();
    return true;
  }
  if (h.state != AttemptState::kSucceeded) return false;
  Sample s;
  s.sized = units > 0;
  s.units = units;
  s.x = s.sized ? std::log(units) : 0;
  s.started_ns = h.started_ns;
  for (Quantity q : kAllQuantities) {
    const double v = QuantityOf(h, q);
    s.y[size_t(q)] = std::isfinite(v) && v >= 0 ? std::log(v + kEps[size_t(q)]) : kNaN;
  }
  impl_->Add(impl_->Get(impl_->stages, Impl::Key(h.workflow_name, h.stage)), s);
  return true;
}

void ProfileBook::LearnStartup(std::string_view backend, double seconds) {
  if (!std::isfinite(seconds) || seconds < 0 || backend.empty()) return;
  Sample s;
  s.y.fill(kNaN);
  s.y[size_t(Quantity::kWall)] = std::log(seconds + kEps[size_t(Quantity::kWall)]);
  impl_->Add(impl_->Get(impl_->backends, std::string(backend)), s);
}

std::optional<Estimate> ProfileBook::Predict(std::string_view workflow, std::string_view stage,
                                             Quantity q, double units) const {
  const Profile* p = impl_->Find(impl_->stages, Impl::Key(workflow, stage));
  if (p == nullptr || size_t(q) >= kQ) return std::nullopt;
  return impl_->Answer(*p, size_t(q), units);
}

ShardEstimate ProfileBook::Predict(std::string_view workflow, std::string_view stage,
                                   double units) const {
  ShardEstimate out;
  const Profile* p = impl_->Find(impl_->stages, Impl::Key(workflow, stage));
  if (p == nullptr) return out;
  for (size_t q = 0; q < kQ; ++q) out.q[q] = impl_->Answer(*p, q, units);
  return out;
}

std::optional<double> ProfileBook::MemoryFloor(std::string_view workflow, std::string_view stage,
                                               double units) const {
  const Profile* p = impl_->Find(impl_->stages, Impl::Key(workflow, stage));
  if (p == nullptr) return std::nullopt;
  return impl_->Floor(*p, units);
}

std::optional<Estimate> ProfileBook::PredictStartup(std::string_view backend) const {
  const Profile* p = impl_->Find(impl_->backends, backend);
  if (p == nullptr) return std::nullopt;
  return impl_->Answer(*p, size_t(Quantity::kWall), 0);
}

std::optional<ProfileView> ProfileBook::View(std::string_view workflow,
                                             std::string_view stage) const {
  const Profile* p = impl_->Find(impl_->stages, Impl::Key(workflow, stage));
  if (p == nullptr) return std::nullopt;
  ProfileView v;
  v.workflow = std::string(workflow);
  v.stage = std::string(stage);
  v.samples = p->samples.size();
  v.learned = p->learned;
  v.ooms = p->ooms.size();
  bool sized = false;
  for (const Sample& s : p->samples) {
    v.last_started_ns = std::max(v.last_started_ns, s.started_ns);
    if (!s.sized) continue;
    const double u = s.units;
    v.units_min = sized ? std::min(v.units_min, u) : u;
    v.units_max = sized ? std::max(v.units_max, u) : u;
    sized = true;
  }
  if (sized) {
    // (Clamped: exp(log(u)) need not give u back exactly when every shard had size u.)
    v.units_typical =
        std::clamp(std::exp(p->fit[size_t(Quantity::kWall)].xbar), v.units_min, v.units_max);
  }
  v.memory_floor = impl_->Floor(*p, 0);
  for (size_t q = 0; q < kQ; ++q) {
    QuantityView& qv = v.quantities[q];
    qv.typical = impl_->Answer(*p, q, 0);
    qv.checked = p->checked[q];
    qv.observed_coverage = qv.checked > 0 ? double(p->hits[q]) / double(qv.checked) : 0;
  }
  return v;
}

std::vector<std::string> ProfileBook::Stages(std::string_view workflow) const {
  std::vector<std::string> out;
  const std::string prefix = Impl::Key(workflow, "");
  for (auto it = impl_->stages.lower_bound(prefix);
       it != impl_->stages.end() && it->first.starts_with(prefix); ++it) {
    const std::string stage = it->first.substr(prefix.size());
    // "a/b" with workflow "a" is a stage "b"; a workflow "a/x" cannot exist (names have no
    // '/'), so the prefix is exact.
    out.push_back(stage);
  }
  return out;
}

std::vector<std::string> ProfileBook::Backends() const {
  std::vector<std::string> out;
  for (const auto& [name, p] : impl_->backends) out.push_back(name);
  return out;
}

}  // namespace augur::workflow
