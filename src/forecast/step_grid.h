// StepGrid: puts an irregular stream of (timestamp, value) samples onto a regular grid of
// `step` seconds, the grid the forecaster's models work on.
//
// Step k covers [k*step, (k+1)*step) (epoch-aligned, so the grid survives restarts) and its
// value is the mean of the samples that fell in it. A step closes when a sample for a later
// step arrives, or when AdvanceTo() is told the wall clock has passed its end. Steps with no
// sample between two closed steps are filled by linear interpolation and marked not
// observed, up to `max_fill` of them; a longer gap is reported as a break (the caller should
// forget short-term context). Non-finite values or timestamps, and samples whose timestamp is
// not after the last accepted one (or that belong to an already closed step), are dropped and
// counted: bad input is never fatal.
//
// Thread safety: none; one object per series, used by one thread.
#ifndef AUGUR_FORECAST_STEP_GRID_H_
#define AUGUR_FORECAST_STEP_GRID_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "forecast/binary_io.h"

namespace augur::forecast {

// One closed step of the grid.
struct GridPoint {
  int64_t step = 0;      // grid index: the step covers [step*step_s, (step+1)*step_s)
  double value = 0;      // mean of the samples, or interpolated when !observed
  bool observed = true;  // false: gap-filled
  bool after_break = false;  // true on the first point after a gap longer than max_fill
};

// Why a sample was dropped. NOTE: persisted in counters and logs; append only.
enum class DropReason : uint8_t { kNone = 0, kNonFinite = 1, kOutOfOrder = 2 };

struct GridCounters {
  uint64_t accepted = 0;              // samples that went into a step
  uint64_t dropped_nonfinite = 0;     // NaN/Inf value or timestamp
  uint64_t dropped_out_of_order = 0;  // timestamp <= last accepted, or for a closed step
  uint64_t closed_steps = 0;          // observed steps closed
  uint64_t imputed_steps = 0;         // gap steps filled by interpolation
  uint64_t breaks = 0;                // gaps longer than max_fill
};

class StepGrid {
 public:
  // REQUIRES: step_seconds > 0, max_fill >= 0.
  StepGrid(double step_seconds, int max_fill);

  // Adds one sample; appends the steps it closed (oldest first) to *closed.
  DropReason Add(double ts, double value, std::vector<GridPoint>* closed);
  // Closes the open step if `now` is at or past its end.
  void AdvanceTo(double now, std::vector<GridPoint>* closed);

  int64_t StepOf(double ts) const;
  double TimeOf(int64_t step) const { return static_cast<double>(step) * step_; }
  double step_seconds() const { return step_; }
  bool has_closed() const { return last_closed_ != kNone; }
  int64_t last_closed_step() const { return last_closed_; }
  const GridCounters& counters() const { return counters_; }

  void Save(StateWriter* w) const;
  void Load(StateReader* r);

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();
  void CloseOpen(std::vector<GridPoint>* closed);

  double step_;
  int max_fill_;
  int64_t open_step_ = kNone;
  double open_sum_ = 0;
  uint32_t open_n_ = 0;
  int64_t last_closed_ = kNone;
  double last_closed_value_ = 0;
  double last_ts_ = -std::numeric_limits<double>::infinity();
  GridCounters counters_;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_STEP_GRID_H_
