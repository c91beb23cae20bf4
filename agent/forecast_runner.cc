#include "agent/forecast_runner.h"

#include <cmath>

#include <spdlog/spdlog.h>

#include "forecast/forecaster_bank.h"

namespace augur::agent {
namespace {

using telemetry::SeriesKey;

bool IsCounter(const std::string& name) { return name.ends_with("_total"); }

bool Matches(const SeriesKey& selector, const SeriesKey& key) {
  if (selector.name() != key.name()) return false;
  for (const auto& [k, v] : selector.labels()) {
    if (key.label(k) != v) return false;
  }
  return true;
}

}  // namespace

std::string DerivedName(const SeriesKey& key, std::string_view suffix) {
  std::string name = key.name();
  if (IsCounter(name)) name += ":rate";
  name += ':';
  name += suffix;
  return name;
}

struct ForecastRunner::Impl {
  struct Tracked {
    SeriesKey key;
    std::string bank_key;  // canonical text of `key`
    bool counter = false;
    bool has_last = false;
    double last_ts = 0;
    double last_value = 0;
    double published_issue = -1;  // issued_time of the last forecast written
  };

  ForecastRunnerOptions options;
  std::vector<SeriesKey> selectors;
  forecast::ForecasterBank bank;
  std::vector<Tracked> tracked;
  // Canonical key -> index in `tracked`, or -1 when no selector matches (or over the cap).
  std::unordered_map<std::string, int> index;
  int64_t last_save_ns = 0;
  uint64_t refused = 0;

  Impl(ForecastRunnerOptions o, std::vector<SeriesKey> s, forecast::ForecasterBank b)
      : options(std::move(o)), selectors(std::move(s)), bank(std::move(b)) {}
};

ForecastRunner::ForecastRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ForecastRunner::~ForecastRunner() {
  if (Status st = Save(); !st.ok()) {
    spdlog::warn("forecast state not saved at shutdown: {}", st.message());
  }
}

Result<std::unique_ptr<ForecastRunner>> ForecastRunner::Create(
    const ForecastRunnerOptions& options) {
  std::vector<SeriesKey> selectors;
  for (const std::string& text : options.series) {
    auto sel = SeriesKey::Parse(text);
    if (!sel) return Err(sel.error().Annotate("forecast.series"));
    selectors.push_back(std::move(*sel));
  }
  forecast::BankOptions bo;
  bo.forecaster.step_seconds = options.step_seconds;
  bo.forecaster.horizons = options.horizons;
  bo.forecaster.anomaly_threshold = options.anomaly_threshold;
  bo.state_dir = options.state_dir;
  bo.max_series = options.max_series;
  auto bank = forecast::ForecasterBank::Open(bo);
  if (!bank) return Err(bank.error().Annotate("forecast"));
  if (!options.state_dir.empty()) {
    if (Status st = bank->LoadAll(); !st.ok()) {
      // A state directory that can't be read costs what was learned, not the agent.
      spdlog::warn("forecast state not restored: {}", st.message());
    } else if (bank->stats().restored > 0) {
      spdlog::info("forecast: restored {} series from {}", bank->stats().restored,
                   options.state_dir);
    }
  }
  auto impl = std::make_unique<Impl>(options, std::move(selectors), std::move(*bank));
  return std::unique_ptr<ForecastRunner>(new ForecastRunner(std::move(impl)));
}

void ForecastRunner::Observe(const SeriesKey& key, int64_t ts_ns, double value) {
  Impl& s = *impl_;
  std::string text = key.ToString();
  auto it = s.index.find(text);
  if (it == s.index.end()) {
    int slot = -1;
    // Derived series (a ':' in the name) are never forecast again.
    if (key.name().find(':') == std::string::npos) {
      for (const SeriesKey& sel : s.selectors) {
        if (!Matches(sel, key)) continue;
        if (s.tracked.size() >= s.options.max_series) {
          ++s.refused;
          break;
        }
        slot = static_cast<int>(s.tracked.size());
        s.tracked.push_back({key, text, IsCounter(key.name())});
        break;
      }
    }
    it = s.index.emplace(std::move(text), slot).first;
  }
  if (it->second < 0) return;
  Impl::Tracked& t = s.tracked[it->second];
  const double ts = ts_ns / 1e9;
  double observed = value;
  if (t.counter) {
    // A counter's level says nothing about the future; its rate does.
    const bool usable = t.has_last && ts > t.last_ts && value >= t.last_value;
    const double rate = usable ? (value - t.last_value) / (ts - t.last_ts) : NAN;
    t.has_last = true;
    t.last_ts = ts;
    t.last_value = value;
    if (!usable) return;  // first point, or a counter reset
    observed = rate;
  }
  s.bank.Observe(t.bank_key, ts, observed);
}

void ForecastRunner::Publish(int64_t ts_ns, telemetry::PointSink& sink,
                             telemetry::PointSink& derived) {
  Impl& s = *impl_;
  s.bank.AdvanceTo(ts_ns / 1e9);
  for (Impl::Tracked& t : s.tracked) {
    const forecast::Forecaster* f = s.bank.Find(t.bank_key);
    if (f == nullptr) continue;
    const forecast::ForecastSet& fs = f->Forecast();
    if (!fs.ready || fs.issued_time == t.published_issue) continue;
    t.published_issue = fs.issued_time;
    const int64_t at = static_cast<int64_t>(fs.issued_time * 1e9);
    for (const forecast::HorizonForecast& h : fs.horizons) {
      std::vector<telemetry::Label> labels = t.key.labels();
      labels.emplace_back("horizon", std::to_string(h.horizon));
      derived.Emit(SeriesKey(DerivedName(t.key, "forecast_mean"), labels), at, h.mean);
      derived.Emit(SeriesKey(DerivedName(t.key, "forecast_lo80"), labels), at, h.lo);
      derived.Emit(SeriesKey(DerivedName(t.key, "forecast_hi80"), labels), at, h.hi);
    }
    derived.Emit(SeriesKey(DerivedName(t.key, "anomaly_score"), t.key.labels()), at,
                 f->AnomalyScore());
    derived.Emit(SeriesKey(DerivedName(t.key, "anomaly_events_total"), t.key.labels()), at,
                 static_cast<double>(f->stats().anomaly_events));
  }
  const forecast::BankStats stats = s.bank.stats();
  sink.Emit(SeriesKey("augur_forecast_series", {}), ts_ns, static_cast<double>(stats.series));
  sink.Emit(SeriesKey("augur_forecast_step_seconds", {}), ts_ns, s.options.step_seconds);
  sink.Emit(SeriesKey("augur_forecast_state_bytes", {}), ts_ns,
            static_cast<double>(stats.state_bytes));
  sink.Emit(SeriesKey("augur_anomaly_events_total", {}), ts_ns,
            static_cast<double>(stats.anomaly_events));
  sink.Emit(SeriesKey("augur_forecast_refused_series_total", {}), ts_ns,
            static_cast<double>(s.refused));

  if (!s.options.state_dir.empty() &&
      ts_ns - s.last_save_ns >= int64_t{s.options.save_interval.count()} * 1'000'000'000) {
    if (s.last_save_ns != 0) {
      if (Status st = Save(); !st.ok()) spdlog::warn("forecast state not saved: {}", st.message());
    }
    s.last_save_ns = ts_ns;
  }
}

Status ForecastRunner::Save() {
  if (impl_->options.state_dir.empty()) return Status::OK();
  return impl_->bank.SaveAll();
}

size_t ForecastRunner::series_count() const { return impl_->tracked.size(); }

}  // namespace augur::agent
