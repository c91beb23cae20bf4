// ForecasterBank: the agent's set of per-series forecasters, keyed by series name (the
// canonical SeriesKey text), with their state kept under `state_dir` so a restart does not
// forget what was learned. This is the object augurd's forecasting thread owns.
//
//   auto bank = ForecasterBank::Open(opts);          // Result<ForecasterBank>
//   bank->LoadAll();                                  // at startup; bad files set aside
//   bank->Observe("cpu_busy{cpu=\"0\"}", ts, v);      // every sample of every series
//   bank->AdvanceTo(now);                             // once per tick
//   bank->Find(key)->Forecast();                      // what the store/augurctl publish
//   bank->SaveAll();                                  // periodically and at shutdown
//
// Persistence: one file per series, `<state_dir>/<16 hex digits>.fcst` (FNV-1a of the key),
// holding the key and the Forecaster's versioned state; written to a temporary file and
// renamed, so a crash leaves the old or the new state, never half of one. A file that fails
// to load (corrupt, other options, unknown version) is renamed to `*.bad`, logged and
// counted, and its series starts fresh: bad state never stops the agent.
//
// Anomaly events are logged (spdlog, info), counted, kept in a bounded ring of recent
// events, and passed to an optional sink.
//
// Thread safety: none; one thread owns the bank. Movable.
#ifndef AUGUR_FORECAST_FORECASTER_BANK_H_
#define AUGUR_FORECAST_FORECASTER_BANK_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "forecast/forecaster.h"

namespace augur::forecast {

struct BankOptions {
  ForecasterOptions forecaster;   // used for every series
  std::string state_dir;          // "" = no persistence
  size_t max_series = 10000;      // series beyond this are not forecast (counted)
  size_t recent_events = 256;     // anomaly events kept for readers
};

struct SeriesAnomalyEvent {
  std::string series;
  AnomalyEvent event;
};

struct BankStats {
  size_t series = 0;
  uint64_t anomaly_events = 0;
  uint64_t refused_series = 0;    // samples for series beyond max_series
  uint64_t restored = 0;          // series restored by LoadAll
  uint64_t restore_failures = 0;  // state files set aside by LoadAll
  uint64_t save_failures = 0;
  size_t state_bytes = 0;         // sum of Forecaster::StateBytes()
};

class ForecasterBank {
 public:
  // Validates the options and creates state_dir (mode 0700) when it is missing.
  static Result<ForecasterBank> Open(BankOptions opts);

  // Restores every series saved under state_dir (existing series are replaced). Per-file
  // failures are logged, counted and the file renamed to *.bad; the result is an error only
  // when the directory cannot be read.
  Status LoadAll();
  // Saves every series; returns the first error (the others are still attempted).
  Status SaveAll();

  // Feeds a sample to the series' forecaster, creating it on first use.
  ObserveResult Observe(std::string_view series, double ts, double value);
  // Closes the open step of every series whose step has ended by `now`.
  void AdvanceTo(double now);

  // The series' forecaster, or null when the bank has none.
  const Forecaster* Find(std::string_view series) const;
  std::vector<std::string> SeriesNames() const;

  // Called for each anomaly event, after it is logged and counted.
  void SetEventSink(std::function<void(const SeriesAnomalyEvent&)> sink) {
    sink_ = std::move(sink);
  }
  const std::deque<SeriesAnomalyEvent>& recent_events() const { return recent_; }
  BankStats stats() const;

  // The state file a series is stored in (exposed for tests and tools).
  std::string PathFor(std::string_view series) const;

 private:
  explicit ForecasterBank(BankOptions opts) : opts_(std::move(opts)) {}
  void Record(std::string_view series, const AnomalyEvent& e);
  Status SaveOne(const std::string& series, const Forecaster& f) const;

  BankOptions opts_;
  std::map<std::string, Forecaster, std::less<>> series_;
  std::deque<SeriesAnomalyEvent> recent_;
  std::function<void(const SeriesAnomalyEvent&)> sink_;
  BankStats stats_;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_FORECASTER_BANK_H_
