#include "forecast/anomaly.h"

#include <algorithm>
#include <cmath>

namespace augur::forecast {
namespace {
constexpr double kClip = 12.0;         // kcentroid feature clip (unit-free)
constexpr double kMaxResidual = 1e3;   // residual clip before anything else (scale units)
constexpr double kTau = 0.99;          // calibration quantile of every statistic
constexpr double kEta = 0.03;          // its step (log units) once warm
constexpr double kMinQ = 0.05;         // floor of a calibration quantile (scale units)
constexpr double kRepeatRate = 0.002;  // memory of the repeat share (~500 steps)
constexpr double kMove = 3.0;          // a "large" seasonal move, in scale units
constexpr int kAdoptAfter = 24;        // steps into an event after which it becomes normal
constexpr double kRoutineRate = 0.3;   // EW rate of the routine spike size
constexpr double kRoutineHold = 0.99;  // ratio a routine spike is held to (just below alarm)
constexpr int kRoutineReturn = 4;      // steps a spike has to go (half) back to count as routine
constexpr int kWindow[AnomalyDetector::kWindows] = {2, 4, 8};
// Shift windows compare against the baseline's trend; the ramp window against its mean
// (a ramp *is* a trend: extrapolating the baseline would absorb it).
constexpr bool kDetrend[AnomalyDetector::kWindows] = {true, true, false};

// Alarm multipliers over each statistic's own 99th percentile (a ratio of 1 = alarm).
// Chosen on the eight public traces at 300 s (bench/RESULTS.md), checked at 600/900 s.
// Tuned on four of them (alibaba, azure-vm618849, bitbrains-vm407-cpu, vm411-memory) and
// five injection seeds; the other four are the held-out check.
struct Multipliers {
  double spike = 2.6;
  double win[AnomalyDetector::kWindows] = {2.3, 2.3, 2.3};
  double novelty = 3.0;
  double flat_log_alpha = std::log(1e5);  // a run with probability <= 1e-5 is an alarm
};

const Multipliers& Mult() {
  static const Multipliers m;
  return m;
}

double Clip(double v, double lim) { return std::clamp(std::isfinite(v) ? v : 0.0, -lim, lim); }
}  // namespace

void QuantileTracker::Add(double x, double tau) {
  if (!std::isfinite(x) || x < 0) return;
  if (n_ == 0 || !(q_ > 0)) {
    q_ = std::max(x, kMinQ);
  } else {
    const double eta = std::max(kEta, 3.0 / static_cast<double>(n_ + 3));
    q_ *= std::exp(x > q_ ? eta * tau : -eta * (1 - tau));
    q_ = std::clamp(q_, kMinQ, 1e9);
  }
  ++n_;
}

void QuantileTracker::Save(StateWriter* w) const {
  w->F64(q_);
  w->U64(n_);
}

void QuantileTracker::Load(StateReader* r) {
  q_ = r->F64();
  n_ = r->U64();
  r->Check(std::isfinite(q_) && q_ >= 0, "anomaly: bad quantile");
}

AnomalyDetector::AnomalyDetector(AnomalyOptions opts)
    : opts_(opts),
      centroid_(Kernel(opts.kernel_gamma), 0.01, static_cast<unsigned long>(opts.dictionary)) {}

// |mean of the newest m values - the kBase values before them, extrapolated| / scale.
double AnomalyDetector::WindowStat(const std::array<double, kRing>& ring, int m,
                                   double scale, bool detrend) const {
  double a = 0, b = 0;
  for (int i = 0; i < m; ++i) a += ring[(head_ - i + kRing) % kRing];
  for (int i = m; i < m + kBase; ++i) b += ring[(head_ - i + kRing) % kRing];
  if (!detrend) return std::fabs(a / m - b / kBase) / scale;
  // The baseline is extrapolated linearly (least squares over its lags) to the window's
  // centre, so a steady trend (the daily rise of a cluster's load) is not a shift.
  const double lbar = m + (kBase - 1) / 2.0;
  double sxy = 0, sxx = 0;
  for (int i = m; i < m + kBase; ++i) {
    const double d = i - lbar;
    sxy += d * ring[(head_ - i + kRing) % kRing];
    sxx += d * d;
  }
  const double slope = sxy / sxx;
  const double pred = b / kBase + slope * ((m - 1) / 2.0 - lbar);
  return std::fabs(a / m - pred) / scale;
}

AnomalyVerdict AnomalyDetector::Step(const AnomalyInput& in) {
  const Multipliers& mult = Mult();
  AnomalyVerdict v;
  ++steps_;
  const double scale = in.scale > 0 && std::isfinite(in.scale) ? in.scale : 1.0;
  const bool has_seas = std::isfinite(in.seasonal_residual);
  const bool expected_move =
      std::isfinite(in.seasonal_move) && std::fabs(in.seasonal_move) >= kMove;
  since_move_ = expected_move ? 0 : std::min(since_move_ + 1, 1 << 20);

  head_ = (head_ + 1) % kRing;
  ring_[head_] = in.value;
  filled_ = std::min(filled_ + 1, kRing);
  seas_ring_[head_] = has_seas ? in.seasonal_residual * scale : 0.0;
  seas_filled_ = has_seas ? std::min(seas_filled_ + 1, kRing) : 0;

  // Spike: the one-step residual against its own tail.
  const double r = std::fabs(Clip(in.residual, kMaxResidual));
  const double rs = has_seas ? std::fabs(Clip(in.seasonal_residual, kMaxResidual)) : 0.0;
  double spike = q_spike_.ready() ? r / (mult.spike * q_spike_.value()) : 0.0;
  if (expected_move && has_seas && q_spike_seas_.ready()) {
    spike = std::min(spike, rs / (mult.spike * q_spike_seas_.value()));
  }
  // Routine spikes: judged against the spikes seen before this one, then counted.
  routine_n_ *= 1.0 - 1.0 / kRoutineMemory;
  since_routine_ = std::min(since_routine_ + 1, 1 << 20);
  if (pending_age_ >= 0) {
    ++pending_age_;
    if (std::fabs(in.value - pending_base_) <= 0.5 * std::fabs(pending_peak_ - pending_base_)) {
      routine_log_ = routine_n_ < 0.5 ? pending_log_
                                      : routine_log_ + kRoutineRate * (pending_log_ - routine_log_);
      routine_n_ += 1.0;
      pending_age_ = -1;
    } else if (pending_age_ >= kRoutineReturn) {
      pending_age_ = -1;
    }
  }
  if (spike >= 1.0) {
    if (routine_n_ >= kRoutineMin && r < kRoutineMult * std::exp(routine_log_)) {
      spike = std::min(spike, kRoutineHold);
      since_routine_ = 0;
    }
    if (filled_ >= 2 && pending_age_ < 0) {
      pending_age_ = 0;
      pending_base_ = ring_[(head_ - 1 + kRing) % kRing];
      pending_peak_ = in.value;
      pending_log_ = std::log(std::max(r, kMinQ));
    }
  }

  // Level shift / ramp: windowed mean against the baseline before it.
  double win_stat[kWindows] = {0, 0, 0}, win_seas[kWindows] = {0, 0, 0};
  double shift = 0;
  for (int j = 0; j < kWindows; ++j) {
    const int m = kWindow[j];
    if (filled_ < m + kBase) continue;
    win_stat[j] = WindowStat(ring_, m, scale, kDetrend[j]);
    double ratio = q_win_[j].ready() ? win_stat[j] / (mult.win[j] * q_win_[j].value()) : 0.0;
    if (seas_filled_ >= m + kBase) {
      win_seas[j] = WindowStat(seas_ring_, m, scale, kDetrend[j]);
      if (since_move_ < m + kBase && q_win_seas_[j].ready()) {
        ratio = std::min(ratio, win_seas[j] / (mult.win[j] * q_win_seas_[j].value()));
      }
    }
    // A routine spike in the 2-value window moves its mean by half its size: not a shift.
    if (m == 2 && since_routine_ < m) ratio = std::min(ratio, kRoutineHold);
    shift = std::max(shift, ratio);
  }

  // Novelty.
  Sample x;
  x(0) = Clip(in.level, kClip);
  x(1) = Clip(in.change, kClip);
  x(2) = Clip(in.residual, kClip);
  x(3) = Clip(in.volatility, kClip);
  const bool kc_ready = centroid_.dictionary_size() > 0;
  const double dist = kc_ready ? centroid_(x) : 0.0;
  const double novelty = kc_ready && q_nov_.ready() ? dist / (mult.novelty * q_nov_.value()) : 0.0;

  // Flat-line: the run so far is scored against the repeat share seen before it started,
  // so a long run does not make itself look normal. The share is floored at 1/(memory),
  // the smallest rate ~500 steps can tell apart from zero.
  if (in.unchanged && run_ == 0) p_run_start_ = p_unchanged_;
  run_ = in.unchanged ? run_ + 1 : 0;
  double flat = 0;
  if (run_ >= 2) {
    const double floor = std::max(kRepeatRate, 1.0 / static_cast<double>(steps_ + 1));
    const double p = std::clamp(p_run_start_, floor, 0.999);
    flat = run_ * std::log(1.0 / p) / mult.flat_log_alpha;
  }

  v.residual_z = kScoreUnit * spike;
  v.shift_z = kScoreUnit * shift;
  v.novelty_z = kScoreUnit * novelty;
  v.stuck_z = kScoreUnit * flat;
  const bool warm = steps_ > static_cast<uint64_t>(opts_.warmup);
  v.score = warm ? std::max({v.residual_z, v.shift_z, v.novelty_z, v.stuck_z}) : 0.0;
  if (!std::isfinite(v.score)) v.score = 0;
  const bool anomalous = v.score >= opts_.threshold;

  // Learning: the calibration quantiles and the centroid learn from steps outside events
  // (and from a long event, which is then the new normal). A repeat run already judged
  // anomalous does not teach the detector that repeats are common.
  const bool learn = (!in_event_ && !anomalous) || event_steps_ >= kAdoptAfter;
  if (learn) {
    q_spike_.Add(r, kTau);
    if (has_seas) q_spike_seas_.Add(rs, kTau);
    for (int j = 0; j < kWindows; ++j) {
      if (filled_ >= kWindow[j] + kBase) q_win_[j].Add(win_stat[j], kTau);
      if (seas_filled_ >= kWindow[j] + kBase) q_win_seas_[j].Add(win_seas[j], kTau);
    }
    if (kc_ready) q_nov_.Add(dist, kTau);
    centroid_.train(x, 1 - opts_.learn_rate, opts_.learn_rate);
  }
  if (v.stuck_z < opts_.threshold) {
    const double rate = std::max(kRepeatRate, 1.0 / static_cast<double>(steps_ + 1));
    p_unchanged_ += rate * ((in.unchanged ? 1.0 : 0.0) - p_unchanged_);
  }

  if (anomalous) {
    quiet_ = 0;
    ++event_steps_;
    if (!in_event_) {
      in_event_ = true;
      v.event_started = true;
      ++events_;
    }
  } else if (in_event_) {
    ++event_steps_;
    if (v.score < opts_.threshold / 2) {
      if (++quiet_ >= opts_.quiet_steps) {
        in_event_ = false;
        event_steps_ = 0;
      }
    } else {
      quiet_ = 0;
    }
  }
  v.in_event = in_event_;
  last_score_ = v.score;
  return v;
}

size_t AnomalyDetector::Bytes() const {
  const size_t m = centroid_.dictionary_size();
  return sizeof(*this) + m * (sizeof(Sample) + 8) + 2 * m * m * sizeof(double);
}

void AnomalyDetector::Save(StateWriter* w) const {
  w->U64(steps_);
  w->U64(events_);
  w->Bool(in_event_);
  w->U32(static_cast<uint32_t>(quiet_));
  w->U32(static_cast<uint32_t>(event_steps_));
  w->F64(p_unchanged_);
  w->F64(p_run_start_);
  w->U32(static_cast<uint32_t>(run_));
  w->F64(last_score_);
  w->U32(static_cast<uint32_t>(head_));
  w->U32(static_cast<uint32_t>(filled_));
  w->U32(static_cast<uint32_t>(seas_filled_));
  w->U32(static_cast<uint32_t>(since_move_));
  w->F64(routine_n_);
  w->F64(routine_log_);
  w->U32(static_cast<uint32_t>(since_routine_));
  w->U32(static_cast<uint32_t>(pending_age_ + 1));
  w->F64(pending_base_);
  w->F64(pending_peak_);
  w->F64(pending_log_);
  for (double d : ring_) w->F64(d);
  for (double d : seas_ring_) w->F64(d);
  q_spike_.Save(w);
  q_spike_seas_.Save(w);
  q_nov_.Save(w);
  for (const auto& q : q_win_) q.Save(w);
  for (const auto& q : q_win_seas_) q.Save(w);
  w->Bytes(DlibToBlob(centroid_));
}

Status AnomalyDetector::Load(StateReader* r) {
  steps_ = r->U64();
  events_ = r->U64();
  in_event_ = r->Bool();
  quiet_ = static_cast<int>(r->U32());
  event_steps_ = static_cast<int>(r->U32());
  p_unchanged_ = r->F64();
  p_run_start_ = r->F64();
  run_ = static_cast<int>(r->U32());
  if (!(p_unchanged_ >= 0 && p_unchanged_ <= 1)) return Status::Corruption("anomaly: bad repeat share");
  last_score_ = r->F64();
  head_ = static_cast<int>(r->U32());
  filled_ = static_cast<int>(r->U32());
  seas_filled_ = static_cast<int>(r->U32());
  since_move_ = static_cast<int>(r->U32());
  routine_n_ = r->F64();
  routine_log_ = r->F64();
  since_routine_ = static_cast<int>(r->U32());
  pending_age_ = static_cast<int>(r->U32()) - 1;
  pending_base_ = r->F64();
  pending_peak_ = r->F64();
  pending_log_ = r->F64();
  for (double& d : ring_) d = r->F64();
  for (double& d : seas_ring_) d = r->F64();
  AUGUR_RETURN_IF_ERROR(r->status());
  if (head_ < 0 || head_ >= kRing || filled_ < 0 || filled_ > kRing || seas_filled_ < 0 ||
      seas_filled_ > kRing || since_move_ < 0 || quiet_ < 0 || event_steps_ < 0 || run_ < 0 ||
      since_routine_ < 0 || !(routine_n_ >= 0 && routine_n_ < 1e6) ||
      !std::isfinite(routine_log_) || pending_age_ < -1 || pending_age_ > kRoutineReturn ||
      !std::isfinite(pending_base_) || !std::isfinite(pending_peak_) ||
      !std::isfinite(pending_log_)) {
    return Status::Corruption("anomaly: bad window state");
  }
  for (double d : ring_) {
    if (!std::isfinite(d)) return Status::Corruption("anomaly: non-finite window");
  }
  for (double d : seas_ring_) {
    if (!std::isfinite(d)) return Status::Corruption("anomaly: non-finite window");
  }
  q_spike_.Load(r);
  q_spike_seas_.Load(r);
  q_nov_.Load(r);
  for (auto& q : q_win_) q.Load(r);
  for (auto& q : q_win_seas_) q.Load(r);
  const std::string b3 = r->Bytes(1 << 20);
  AUGUR_RETURN_IF_ERROR(r->status());
  dlib::kcentroid<Kernel> kc(Kernel(opts_.kernel_gamma), 0.01,
                             static_cast<unsigned long>(opts_.dictionary));
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(b3, &kc, "anomaly centroid"));
  if (kc.dictionary_size() > static_cast<unsigned long>(opts_.dictionary) + 1) {
    return Status::Corruption("anomaly centroid: dictionary larger than configured");
  }
  centroid_ = kc;
  return Status::OK();
}

}  // namespace augur::forecast
