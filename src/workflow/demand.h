// DemandModel: how many submissions of each workflow to expect in an hour, learned from
// past submissions (seed 003's demand forecasting), plus the demand events users announce
// (`augurctl event NAME --workflow WF --expect N --at TIME`).
//
// Model, per workflow name: submissions are counted per clock hour (local time, by
// `utc_offset_s`). When an hour is over (the next submission, or a prediction, comes later),
// its count updates two seasonal means: one per hour of the day, exponentially weighted over
// days (`day_alpha`), and one per hour of the week, over weeks (`week_alpha`); hours without
// submissions count as zero. Each closed hour is first predicted by both, and the one whose
// recent absolute error is lower (the hour-of-week one only once every hour of the week has
// been seen at least once) answers. A window's expected count is the sum over the hours it
// overlaps, in proportion. The count an event announced for an hour is taken out of that
// hour's count before it is learned, so that a one-off launch does not become a daily peak.
//
// Intervals: split-conformal on the closed hours' residuals, scaled by sqrt(predicted + 1)
// (counts vary about as a Poisson count does), at `coverage`; with fewer than 48 closed hours
// a Poisson-like normal interval. Events in the window are added to the expected count and
// both edges (an announcement is taken at its word).
//
// Bounded: at most `max_workflows` workflows (the one submitted least recently is dropped)
// and `max_events` events (the earliest dropped); the residual window is four weeks of hours.
//
// Pure: no I/O, no clock (every time comes in as an argument). Thread safety: none; the engine
// thread owns it.
#ifndef AUGUR_WORKFLOW_DEMAND_H_
#define AUGUR_WORKFLOW_DEMAND_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "workflow/store.h"

namespace augur::workflow {

struct DemandOptions {
  double day_alpha = 0.2;    // weight of the newest day in an hour-of-day mean (0..1]
  double week_alpha = 0.3;   // weight of the newest week in an hour-of-week mean (0..1]
  int64_t utc_offset_s = 0;  // hours of the day are counted in UTC + this
  double coverage = 0.8;     // of the intervals, 0.5..0.99
  size_t max_workflows = 1024;
  size_t max_events = 10000;
};

struct DemandForecast {
  int64_t from_ns = 0, to_ns = 0;
  double expected = 0;              // baseline + events
  double lo = 0, hi = 0;            // the `coverage` interval of the count, lo <= expected <= hi
  double baseline = 0;              // from the submission history
  double from_events = 0;           // announced by events in the window
  std::vector<EventRecord> events;  // those events, by time
  uint64_t hours_seen = 0;          // closed hours of history behind the baseline
  // "none" (no submissions), "current-hour" (no hour has ended yet: the current hour's count
  // stands for the rate), "hour-of-day", "hour-of-week".
  std::string_view model = "none";
};

class DemandModel {
 public:
  // Options out of range are clamped to the nearest valid value.
  explicit DemandModel(DemandOptions options = {});
  DemandModel(DemandModel&&) noexcept;
  DemandModel& operator=(DemandModel&&) noexcept;
  ~DemandModel();

  // A submission of `workflow` at `submitted_ns`. Submissions should come in time order (the
  // stored ones oldest first); one earlier than the hour being counted is counted in it.
  void Submitted(std::string_view workflow, int64_t submitted_ns);

  // Adds an event, or replaces the one of the same name. InvalidArgument for an empty name
  // or workflow, or an expected count that is not a finite number in 0..1e6.
  Status AddEvent(const EventRecord& e);
  // Drops events whose time is before `cutoff_ns` (retention).
  void ForgetEventsBefore(int64_t cutoff_ns);

  // The expected number of submissions of `workflow` in [from_ns, to_ns) (at most 31 days),
  // as known at `now_ns`: the hours up to now without submissions count as zero, those
  // after it are predicted.
  DemandForecast Predict(std::string_view workflow, int64_t now_ns, int64_t from_ns,
                         int64_t to_ns) const;
  // Predict(workflow, now_ns, now_ns, now_ns + 1 h).
  DemandForecast NextHour(std::string_view workflow, int64_t now_ns) const;

  // Events of `workflow` ("" for all) at or after `from_ns`, by time then name.
  std::vector<EventRecord> Events(std::string_view workflow, int64_t from_ns) const;
  size_t workflows() const;  // workflows with a history held
  const DemandOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_DEMAND_H_
