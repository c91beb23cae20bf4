// AnomalyDetector: per-series online anomaly scoring.
//
// One detector per kind of anomaly, each a non-negative statistic in scale units (the
// series' decayed mean |one-step change|), each divided by its own running 99th percentile
// (a quantile tracker per statistic, per series, learned online on steps outside events)
// and by a fixed multiplier: a ratio of 1 means "as far beyond this series' own 1-in-100
// value as an alarm needs". The score is kScoreUnit (8) times the largest ratio, so the
// default threshold 8 is "the calibrated alarm level" and a higher threshold is stricter.
// Calibrating each statistic to the series' own tail is what keeps spiky series from
// flooding alarms while quiet series stay sensitive.
//
//  - spike: |one-step forecast residual|. When the series made a large move at the same
//    phase one period ago (a daily job starting on time), the value must also be
//    unexplained by that phase (the smaller of the two ratios counts). Routine spikes:
//    would-be spike alarms that go half way back within four steps are counted with a
//    decay (memory kRoutineMemory steps; a level shift does not go back and does not
//    count); once kRoutineMin of them fall within it, the series spikes routinely (a job
//    that wakes at irregular times, several times a day) and a spike alarms only when it
//    is also larger than kRoutineMult times their typical size. The m = 2 shift window,
//    which a one-step spike fills too, is held below alarm while such a spike is in it;
//  - level shift / ramp: |mean of the newest m values - mean of the 24 values before them|
//    for m = 2, 4 (level shifts, confirmed in 1-3 steps: a natural spike goes back, a shift
//    stays) and m = 8 (ramps: a drift that no single step shows). Same seasonal exemption;
//  - flat-line: a run of L exactly repeated values, when the series repeats a value with
//    (decayed, Laplace-floored) probability p, has probability p^L; ratio =
//    L ln(1/p) / ln(1/1e-5);
//  - novelty: a dlib::kcentroid over (level vs slow mean, change, residual, log recent
//    volatility), its distance calibrated like the others but with a larger multiplier, so
//    that it adds what the specific detectors miss without dominating.
// An event starts when the score reaches `threshold` and ends after `quiet_steps` steps
// below threshold/2. Nothing learns from steps inside an event until it has lasted
// kAdoptAfter steps (then it is the new normal).
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_ANOMALY_H_
#define AUGUR_FORECAST_ANOMALY_H_

#include <array>
#include <limits>

#include <dlib/matrix.h>
#include <dlib/svm/kcentroid.h>
#include <dlib/svm/kernel.h>

#include "augur/status.h"
#include "forecast/binary_io.h"

namespace augur::forecast {

struct AnomalyOptions {
  double threshold = 8.0;     // score that starts an event (8 = calibrated alarm level)
  double kernel_gamma = 0.1;  // RBF kernel width on the (unit-free) features
  int dictionary = 12;        // kcentroid dictionary bound
  double learn_rate = 0.01;   // kcentroid exponential forgetting
  double halflife = 500;      // (unused since format 2; kept for option compatibility)
  int warmup = 96;            // steps scored before events may fire
  int quiet_steps = 3;        // steps below threshold/2 that end an event
};

// What the detector sees at one observed step (unit-free values are divided by `scale`).
struct AnomalyInput {
  double value = 0;      // y (raw units)
  double scale = 1;      // the series scale (raw units, > 0)
  double residual = 0;   // (y - one-step forecast) / scale
  double level = 0;      // (y - slow mean) / scale
  double change = 0;     // (y - previous y) / scale
  double volatility = 0; // log(recent mean |change| / scale)
  bool unchanged = false; // the value repeated the previous one exactly
  // (y - the value one period ago) / scale, and the change the series made at this phase
  // one period ago (scale units); NaN when the series has no period.
  double seasonal_residual = std::numeric_limits<double>::quiet_NaN();
  double seasonal_move = std::numeric_limits<double>::quiet_NaN();
};

struct AnomalyVerdict {
  double score = 0;          // kScoreUnit * the largest calibrated ratio
  double residual_z = 0;     // spike ratio (x kScoreUnit)
  double shift_z = 0;        // level-shift / ramp ratio (x kScoreUnit)
  double novelty_z = 0;      // kcentroid ratio (x kScoreUnit)
  double stuck_z = 0;        // flat-line ratio (x kScoreUnit)
  bool event_started = false;
  bool in_event = false;
};

// A running high quantile of a non-negative statistic (multiplicative stochastic
// approximation: log q moves up by eta*tau on an exceedance and down by eta*(1-tau)
// otherwise, so P(x > q) converges to 1 - tau).
class QuantileTracker {
 public:
  void Add(double x, double tau);
  double value() const { return q_; }
  bool ready() const { return n_ >= 30; }
  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  double q_ = 0;
  uint64_t n_ = 0;
};

class AnomalyDetector {
 public:
  static constexpr double kScoreUnit = 8.0;
  static constexpr int kWindows = 3;  // shift windows m = 2, 4, 8
  static constexpr int kBase = 24;    // baseline values before the window
  static constexpr int kRing = 32;    // >= 8 + kBase
  // Routine spikes: kRoutineMin spikes that went back, within the last ~kRoutineMemory
  // steps (two days at 300 s), make spikes routine; such a spike then alarms only above
  // kRoutineMult times their typical size. Chosen in session 3 over the eight traces and
  // fifteen held-out series (bench/RESULTS.md).
  static constexpr double kRoutineMemory = 576;
  static constexpr double kRoutineMin = 2;
  static constexpr double kRoutineMult = 2.0;

  explicit AnomalyDetector(AnomalyOptions opts);

  AnomalyVerdict Step(const AnomalyInput& in);
  double last_score() const { return last_score_; }
  uint64_t events() const { return events_; }
  bool in_event() const { return in_event_; }
  size_t Bytes() const;

  void Save(StateWriter* w) const;
  Status Load(StateReader* r);

 private:
  using Sample = dlib::matrix<double, 4, 1>;
  using Kernel = dlib::radial_basis_kernel<Sample>;

  double WindowStat(const std::array<double, kRing>& ring, int m, double scale,
                    bool detrend) const;

  AnomalyOptions opts_;
  QuantileTracker q_spike_, q_spike_seas_, q_nov_;
  std::array<QuantileTracker, kWindows> q_win_, q_win_seas_;
  dlib::kcentroid<Kernel> centroid_;
  std::array<double, kRing> ring_{};       // newest values (raw), ring_[head_] newest
  std::array<double, kRing> seas_ring_{};  // y - y[t-P] (raw), same indexing
  int head_ = 0;
  int filled_ = 0;       // values in ring_
  int seas_filled_ = 0;  // consecutive seasonal values in seas_ring_
  int since_move_ = 1 << 20;  // steps since a large seasonal move was expected
  double routine_n_ = 0;      // decayed count of would-be spike alarms that went back
  double routine_log_ = 0;    // their typical size: EW mean of log |residual| (scale units)
  int since_routine_ = 1 << 20;  // steps since a routine spike was let pass
  // The newest would-be spike alarm, until it goes back (then it counts) or 4 steps pass.
  int pending_age_ = -1;      // steps since it (-1: none)
  double pending_base_ = 0;   // the value before it (raw)
  double pending_peak_ = 0;   // its value (raw)
  double pending_log_ = 0;    // log of its |residual| (scale units)
  double p_unchanged_ = 0.0;  // decayed share of steps whose value repeated the previous one
  double p_run_start_ = 0.0;  // p_unchanged_ when the current run started
  int run_ = 0;               // current run of repeated values
  uint64_t steps_ = 0;
  uint64_t events_ = 0;
  bool in_event_ = false;
  int quiet_ = 0;
  int event_steps_ = 0;  // steps since the current event started
  double last_score_ = 0;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_ANOMALY_H_
