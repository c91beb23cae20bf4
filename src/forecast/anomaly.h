// AnomalyDetector: per-series online anomaly scoring.
//
// Three detectors, each giving a score in standard-deviation units; the anomaly score is the
// largest:
//  - the decayed z-score of the one-step forecast residual (dlib::running_stats_decayed over
//    residuals divided by the series scale), which catches spikes and level shifts. When
//    the series made a large move at the same phase one period ago, the value must also be
//    unexplained by that phase (the smaller of the two z-scores counts): a daily job
//    starting on time is a surprise to a one-step forecaster but not an anomaly;
//  - a dlib::kcentroid novelty detector (RBF kernel, bounded dictionary, exponentially
//    forgetting) over a small feature window: level (distance from the slow mean), change
//    (one-step difference), forecast residual and recent volatility (log of recent mean
//    |change| over the series scale). Its distance to the centroid, z-scored by its own
//    decayed statistics, catches what a residual alone misses (drifts away from the usual
//    range, odd volatility). Features are clipped so one wild value cannot wreck the
//    dictionary;
//  - a stuck-value check: a run of L exactly repeated values, when the series repeats a
//    value with (decayed) probability p, has probability p^L; the score is the normal
//    quantile of that, sqrt(2 L ln(1/p)). A flat-lined exporter is the commonest anomaly of
//    all and neither a residual nor a distance sees it early.
// The statistics learn from winsorised inputs; the centroid does not learn from anomalous
// steps until an event has lasted long enough to be the new normal (a level shift), so an
// anomaly does not teach the detector that it is normal.
//
// An event starts when the score reaches `threshold` and ends after `quiet_steps` steps
// below threshold/2. Thread safety: none.
#ifndef AUGUR_FORECAST_ANOMALY_H_
#define AUGUR_FORECAST_ANOMALY_H_

#include <limits>

#include <dlib/matrix.h>
#include <dlib/statistics/statistics.h>
#include <dlib/svm/kcentroid.h>
#include <dlib/svm/kernel.h>

#include "augur/status.h"
#include "forecast/binary_io.h"

namespace augur::forecast {

struct AnomalyOptions {
  double threshold = 8.0;     // score (sd units) that starts an event; lower = more sensitive
  double kernel_gamma = 0.1;  // RBF kernel width on the (unit-free) features
  int dictionary = 12;        // kcentroid dictionary bound
  double learn_rate = 0.01;   // kcentroid exponential forgetting
  double halflife = 500;      // decayed statistics' half-life (steps)
  int warmup = 96;            // steps scored before events may fire
  int quiet_steps = 3;        // steps below threshold/2 that end an event
};

// What the detector sees at one observed step (all unit-free: divided by the series scale).
struct AnomalyInput {
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
  double score = 0;          // max of the residual z-score and the novelty z-score
  double residual_z = 0;
  double novelty_z = 0;
  double stuck_z = 0;
  bool event_started = false;
  bool in_event = false;
};

class AnomalyDetector {
 public:
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

  AnomalyOptions opts_;
  dlib::running_stats_decayed<double> res_stats_;
  dlib::running_stats_decayed<double> dist_stats_;
  dlib::running_stats_decayed<double> seas_stats_;
  dlib::kcentroid<Kernel> centroid_;
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
