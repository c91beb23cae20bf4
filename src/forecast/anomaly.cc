#include "forecast/anomaly.h"

#include <algorithm>
#include <cmath>

namespace augur::forecast {
namespace {
constexpr double kClip = 12.0;         // feature clip (unit-free)
constexpr double kMaxResidual = 1e3;   // residual clip before anything else (scale units)
constexpr double kMinSd = 1e-3;        // floor of the standard deviations z-scores divide by
constexpr double kWinsor = 3.0;        // statistics learn values clipped at mean +- 3 sd
constexpr double kRepeatRate = 0.002;  // memory of the repeat share (~500 steps)
constexpr double kMove = 3.0;          // a "large" seasonal move, in scale units
constexpr int kAdoptAfter = 24;        // steps into an event after which it becomes normal
double Clip(double v, double lim) { return std::clamp(std::isfinite(v) ? v : 0.0, -lim, lim); }
}  // namespace

AnomalyDetector::AnomalyDetector(AnomalyOptions opts)
    : opts_(opts),
      res_stats_(opts.halflife),
      dist_stats_(opts.halflife),
      seas_stats_(opts.halflife),
      centroid_(Kernel(opts.kernel_gamma), 0.01, static_cast<unsigned long>(opts.dictionary)) {}

AnomalyVerdict AnomalyDetector::Step(const AnomalyInput& in) {
  AnomalyVerdict v;
  ++steps_;
  const double r = Clip(in.residual, kMaxResidual);
  const bool res_ready = res_stats_.current_n() > 10;
  const double res_mean = res_ready ? res_stats_.mean() : 0.0;
  const double res_sd = res_ready ? std::max(res_stats_.stddev(), kMinSd) : 1.0;
  if (res_ready) v.residual_z = (r - res_mean) / res_sd;
  // The seasonal check: the same z-score against the value one period ago.
  const bool has_seas = std::isfinite(in.seasonal_residual);
  const double rs = has_seas ? Clip(in.seasonal_residual, kMaxResidual) : 0.0;
  const bool seas_ready = has_seas && seas_stats_.current_n() > 10;
  const double seas_mean = seas_ready ? seas_stats_.mean() : 0.0;
  const double seas_sd = seas_ready ? std::max(seas_stats_.stddev(), kMinSd) : 1.0;
  const bool expected_move = std::isfinite(in.seasonal_move) && std::fabs(in.seasonal_move) >= kMove;
  if (seas_ready && expected_move &&
      std::fabs((rs - seas_mean) / seas_sd) < std::fabs(v.residual_z)) {
    v.residual_z = (rs - seas_mean) / seas_sd;
  }

  Sample x;
  x(0) = Clip(in.level, kClip);
  x(1) = Clip(in.change, kClip);
  x(2) = Clip(in.residual, kClip);
  x(3) = Clip(in.volatility, kClip);
  const bool kc_ready = centroid_.dictionary_size() > 0;
  const double dist = kc_ready ? centroid_(x) : 0.0;
  const bool dist_ready = dist_stats_.current_n() > 10;
  const double dist_mean = dist_ready ? dist_stats_.mean() : 0.0;
  const double dist_sd = dist_ready ? std::max(dist_stats_.stddev(), kMinSd) : 1.0;
  if (dist_ready) v.novelty_z = (dist - dist_mean) / dist_sd;

  // Stuck values: the run so far is scored against the share of repeats seen before it.
  // The run is scored against the repeat share seen before it started, so a long run does
  // not make itself look normal.
  if (in.unchanged && run_ == 0) p_run_start_ = p_unchanged_;
  run_ = in.unchanged ? run_ + 1 : 0;
  if (run_ >= 2) {
    const double p = std::clamp(p_run_start_, 1e-6, 0.999);
    v.stuck_z = std::sqrt(2.0 * run_ * std::log(1.0 / p));
  }
  // Plain average over the first steps, then decayed; a run already judged anomalous does
  // not teach the detector that repeats are common.
  if (v.stuck_z < opts_.threshold) {
    const double rate = std::max(kRepeatRate, 1.0 / static_cast<double>(steps_ + 1));
    p_unchanged_ += rate * ((in.unchanged ? 1.0 : 0.0) - p_unchanged_);
  }

  const bool warm = steps_ > static_cast<uint64_t>(opts_.warmup);
  v.score = warm ? std::max({std::fabs(v.residual_z), v.novelty_z, v.stuck_z}) : 0.0;
  if (!std::isfinite(v.score)) v.score = 0;
  const bool anomalous = v.score >= opts_.threshold;

  // Statistics always learn, from winsorised values, so that they track a changing series
  // but a spike moves them by at most a few standard deviations' worth.
  res_stats_.add(res_ready ? std::clamp(r, res_mean - kWinsor * res_sd, res_mean + kWinsor * res_sd)
                           : Clip(r, kWinsor));
  if (has_seas) {
    seas_stats_.add(seas_ready ? std::clamp(rs, seas_mean - kWinsor * seas_sd,
                                            seas_mean + kWinsor * seas_sd)
                               : Clip(rs, kWinsor));
  }
  if (kc_ready) {
    dist_stats_.add(dist_ready ? std::min(dist, dist_mean + kWinsor * dist_sd) : dist);
  }
  // The centroid learns what normal looks like: not from anomalous steps, unless the
  // anomaly has lasted long enough to be the new normal (a level shift).
  if (!anomalous || event_steps_ >= kAdoptAfter) {
    centroid_.train(x, 1 - opts_.learn_rate, opts_.learn_rate);
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
  w->Bytes(DlibToBlob(res_stats_));
  w->Bytes(DlibToBlob(dist_stats_));
  w->Bytes(DlibToBlob(seas_stats_));
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
  const std::string b1 = r->Bytes(1 << 16);
  const std::string b2 = r->Bytes(1 << 16);
  const std::string b4 = r->Bytes(1 << 16);
  const std::string b3 = r->Bytes(1 << 20);
  AUGUR_RETURN_IF_ERROR(r->status());
  dlib::running_stats_decayed<double> s1(opts_.halflife), s2(opts_.halflife),
      s4(opts_.halflife);
  dlib::kcentroid<Kernel> kc(Kernel(opts_.kernel_gamma), 0.01,
                             static_cast<unsigned long>(opts_.dictionary));
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(b1, &s1, "anomaly residual stats"));
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(b2, &s2, "anomaly distance stats"));
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(b4, &s4, "anomaly seasonal stats"));
  AUGUR_RETURN_IF_ERROR(DlibFromBlob(b3, &kc, "anomaly centroid"));
  if (kc.dictionary_size() > static_cast<unsigned long>(opts_.dictionary) + 1) {
    return Status::Corruption("anomaly centroid: dictionary larger than configured");
  }
  if (!std::isfinite(s1.mean()) || !std::isfinite(s2.mean())) {
    return Status::Corruption("anomaly: non-finite statistics");
  }
  res_stats_ = s1;
  dist_stats_ = s2;
  seas_stats_ = s4;
  centroid_ = kc;
  return Status::OK();
}

}  // namespace augur::forecast
