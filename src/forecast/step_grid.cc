#include "forecast/step_grid.h"

#include <cmath>

namespace augur::forecast {

StepGrid::StepGrid(double step_seconds, int max_fill) : step_(step_seconds), max_fill_(max_fill) {}

int64_t StepGrid::StepOf(double ts) const {
  return static_cast<int64_t>(std::floor(ts / step_));
}

DropReason StepGrid::Add(double ts, double value, std::vector<GridPoint>* closed) {
  // Timestamps beyond ~2^62 steps cannot be put on the grid; treat them as garbage.
  if (!std::isfinite(ts) || !std::isfinite(value) || std::fabs(ts / step_) > 4.0e18) {
    ++counters_.dropped_nonfinite;
    return DropReason::kNonFinite;
  }
  if (ts <= last_ts_) {
    ++counters_.dropped_out_of_order;
    return DropReason::kOutOfOrder;
  }
  const int64_t k = StepOf(ts);
  if (last_closed_ != kNone && k <= last_closed_) {
    // A late sample for a step AdvanceTo() already closed.
    ++counters_.dropped_out_of_order;
    return DropReason::kOutOfOrder;
  }
  if (open_step_ != kNone && k != open_step_) CloseOpen(closed);
  if (open_step_ == kNone) {
    open_step_ = k;
    open_sum_ = 0;
    open_n_ = 0;
  }
  open_sum_ += value;
  ++open_n_;
  last_ts_ = ts;
  ++counters_.accepted;
  return DropReason::kNone;
}

void StepGrid::AdvanceTo(double now, std::vector<GridPoint>* closed) {
  if (open_step_ == kNone || !std::isfinite(now)) return;
  if (now >= TimeOf(open_step_ + 1)) CloseOpen(closed);
}

void StepGrid::CloseOpen(std::vector<GridPoint>* closed) {
  const int64_t k = open_step_;
  const double v = open_sum_ / open_n_;
  open_step_ = kNone;
  bool after_break = false;
  if (last_closed_ != kNone) {
    const int64_t missing = k - last_closed_ - 1;
    if (missing > max_fill_) {
      ++counters_.breaks;
      after_break = true;
    } else if (missing > 0) {
      const double v0 = last_closed_value_;
      for (int64_t j = 1; j <= missing; ++j) {
        const double f = static_cast<double>(j) / static_cast<double>(missing + 1);
        closed->push_back(GridPoint{last_closed_ + j, v0 + f * (v - v0), false, false});
        ++counters_.imputed_steps;
      }
    }
  }
  closed->push_back(GridPoint{k, v, true, after_break});
  ++counters_.closed_steps;
  last_closed_ = k;
  last_closed_value_ = v;
}

void StepGrid::Save(StateWriter* w) const {
  w->I64(open_step_);
  w->F64(open_sum_);
  w->U32(open_n_);
  w->I64(last_closed_);
  w->F64(last_closed_value_);
  w->F64(last_ts_);
  w->U64(counters_.accepted);
  w->U64(counters_.dropped_nonfinite);
  w->U64(counters_.dropped_out_of_order);
  w->U64(counters_.closed_steps);
  w->U64(counters_.imputed_steps);
  w->U64(counters_.breaks);
}

void StepGrid::Load(StateReader* r) {
  open_step_ = r->I64();
  open_sum_ = r->F64();
  open_n_ = r->U32();
  last_closed_ = r->I64();
  last_closed_value_ = r->F64();
  last_ts_ = r->F64();
  counters_.accepted = r->U64();
  counters_.dropped_nonfinite = r->U64();
  counters_.dropped_out_of_order = r->U64();
  counters_.closed_steps = r->U64();
  counters_.imputed_steps = r->U64();
  counters_.breaks = r->U64();
  r->Check(open_step_ == kNone || open_n_ > 0, "grid: open step without samples");
  r->Check(std::isfinite(open_sum_) && std::isfinite(last_closed_value_), "grid: non-finite value");
  r->Check(!std::isnan(last_ts_), "grid: NaN timestamp");
  r->Check(open_step_ == kNone || last_closed_ == kNone || open_step_ > last_closed_,
           "grid: open step not after last closed step");
}

}  // namespace augur::forecast
