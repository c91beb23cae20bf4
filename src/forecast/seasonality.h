// SeasonalityDetector: finds a series' dominant period (e.g. one day of steps) from its own
// history, by autocorrelation, and re-checks it as data arrives. Nothing is assumed: a
// series with no clear cycle has period 0 and the seasonal models stay off.
//
// Detection: the newest history is averaged into at most `coarse_len` blocks, the linear
// trend removed, and the autocorrelation computed at every lag that leaves at least two
// cycles in the buffer. Its local maxima above `min_acf` (after the first zero crossing)
// are the candidate periods; each is refined at full resolution, and the one whose
// seasonal-naive forecast (the value one period back) is most accurate on the buffer wins,
// the shortest within 5 % (so a multiple of the true period is not preferred).
// A learned period is sticky: another replaces it only when it cuts that error by 10 % in
// two checks in a row, and it is dropped only after four checks find nothing periodic.
//
// Cost: O(coarse_len^2 / 2) per check plus O(history) to refine; run every `recheck_steps`.
// Thread safety: none.
#ifndef AUGUR_FORECAST_SEASONALITY_H_
#define AUGUR_FORECAST_SEASONALITY_H_

#include "forecast/binary_io.h"
#include "forecast/history.h"

namespace augur::forecast {

struct SeasonalityOptions {
  int min_period = 4;        // shortest period considered (steps)
  int max_period = 2048;     // longest period considered (steps); also bounded by history/2
  double min_acf = 0.25;     // autocorrelation a period needs to be accepted
  int recheck_steps = 128;   // steps between checks
  int coarse_len = 512;      // blocks the history is averaged into for the coarse scan
};

struct PeriodEstimate {
  int period = 0;    // 0: none found
  double acf = 0;    // autocorrelation at `period`
  double err = 0;    // mean |y[t] - y[t-period]| over the buffer
};

struct Detection {
  PeriodEstimate best;     // the best candidate (period 0: none)
  double current_err = 0;  // the same error for the period passed in as `current`
  double tolerance = 0;    // error differences below this are rounding (1 % of a step's change)
};

// One detection over the newest values of `h` (stateless). `current` (0: none) is scored on
// the same window so a caller can compare.
Detection DetectPeriod(const History& h, const SeasonalityOptions& opts, int current);

class SeasonalityDetector {
 public:
  explicit SeasonalityDetector(SeasonalityOptions opts) : opts_(opts) {}

  // Call once per grid step; runs a check every recheck_steps. Returns true when the period
  // changed.
  bool OnStep(const History& h);

  int period() const { return period_; }
  double strength() const { return acf_; }

  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  SeasonalityOptions opts_;
  int period_ = 0;
  double acf_ = 0;
  int pending_ = -1;  // candidate seen once, waiting for a second agreeing check
  int since_check_ = 0;
  int misses_ = 0;    // consecutive checks that found no period
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_SEASONALITY_H_
