// augur-eval: replays traces through the agent's forecaster and scores it.
//
//   augur-eval predict --csv IN.csv --step 300 --horizons 1,5,15 --out OUT.csv
//   augur-eval score --csv A.csv [--csv B.csv ...] --step 300 [--pred OUT.csv] [--markdown]
//   augur-eval tasks --json WF.json [--json WF2.json ...]
//
// See docs/FORECAST.md for what each number means.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "series_eval.h"
#include "task_eval.h"

namespace {

using augur::eval::AnomalyScore;
using augur::eval::HorizonScore;

std::vector<int> ParseHorizons(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    if (!tok.empty()) out.push_back(std::stoi(tok));
  }
  return out;
}

double Median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// A trace read and replayed through the forecaster; on failure the reason is printed.
struct Loaded {
  std::vector<augur::eval::Sample> samples;
  augur::eval::ReplayResult replay;
  size_t bad_lines = 0;
};

std::optional<Loaded> LoadAndReplay(const std::string& path,
                                    const augur::forecast::ForecasterOptions& fo) {
  Loaded out;
  auto samples = augur::eval::ReadSeriesCsv(path, &out.bad_lines);
  if (!samples) {
    std::fprintf(stderr, "augur-eval: %s\n", samples.error().ToString().c_str());
    return std::nullopt;
  }
  auto rr = augur::eval::Replay(*samples, fo);
  if (!rr) {
    std::fprintf(stderr, "augur-eval: %s\n", rr.error().ToString().c_str());
    return std::nullopt;
  }
  out.samples = std::move(*samples);
  out.replay = std::move(*rr);
  return out;
}

struct SeriesReport {
  std::string name;
  std::vector<HorizonScore> scores;
  AnomalyScore anomaly;
  bool has_anomaly = false;
  // Events the detector raises on the unmodified series after the warm-up, per day: the
  // series' own surprises. Precision counts each one as a false alarm; injections come
  // once a day on average, so precision >= 0.8 needs this <= 0.25.
  double clean_alarms_per_day = std::nan("");
  augur::eval::ReplayResult replay;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"augur-eval: replay and score traces through augur's forecaster"};
  app.require_subcommand(1);

  augur::forecast::ForecasterOptions fo;
  std::string horizons = "1,5,15";
  auto add_model_flags = [&](CLI::App* c) {
    c->add_option("--step", fo.step_seconds, "grid step in seconds")->required();
    c->add_option("--horizons", horizons, "comma-separated horizons in steps");
    c->add_option("--capacity", fo.history_capacity, "history steps kept per series");
    c->add_option("--threshold", fo.anomaly_threshold, "anomaly event threshold");
    c->add_option("--rls-forget", fo.tuning.rls_forget);
    c->add_option("--rls-c", fo.tuning.rls_c);
    c->add_option("--rls-huber", fo.tuning.rls_huber);
    c->add_option("--ens-decay", fo.tuning.ensemble_decay);
    c->add_option("--sharpness", fo.tuning.ensemble_sharpness);
    c->add_option("--sharpness-power", fo.tuning.ensemble_sharpness_power,
                  "sharpness at horizon h = sharpness * h^-power");
    c->add_option("--seasonal-decay", fo.tuning.seasonal_decay);
    c->add_option("--seasonal-cycles", fo.tuning.seasonal_cycles);
    c->add_option("--seasonal-halfwidth", fo.tuning.seasonal_halfwidth);
    c->add_option("--min-acf", fo.tuning.seasonal_min_acf);
    c->add_option("--interval-eta", fo.tuning.interval_eta);
    c->add_option("--median-correct", fo.tuning.median_correct);
    c->add_option("--median-candidate", fo.tuning.median_candidate);
    c->add_option("--hedge-candidate", fo.tuning.hedge_candidate);
    c->add_option("--hedge-eta", fo.tuning.hedge_eta);
    c->add_option("--hedge-eta-power", fo.tuning.hedge_eta_power);
    c->add_option("--hedge-min-h", fo.tuning.hedge_min_horizon);
    c->add_option("--seasonal-median-halfwidth", fo.tuning.seasonal_median_halfwidth);
    c->add_option("--seasonal-median-cycles", fo.tuning.seasonal_median_cycles);
  };

  // predict
  auto* predict = app.add_subcommand("predict", "write one row per issued forecast");
  std::string in_csv, out_csv;
  predict->add_option("--csv", in_csv, "timestamp,value input")->required();
  predict->add_option("--out", out_csv, "output CSV")->required();
  add_model_flags(predict);

  // score
  auto* score = app.add_subcommand("score", "score forecasts and anomaly detection");
  std::vector<std::string> csvs;
  std::string pred_csv;
  bool markdown = false, no_anomaly = false, show_candidates = false, dump_anomalies = false;
  augur::eval::ScoreOptions so;
  augur::eval::InjectOptions io;
  score->add_option("--csv", csvs, "timestamp,value input(s)")->required();
  score->add_option("--pred", pred_csv, "score this predict output instead of replaying");
  score->add_option("--warmup-days", so.warmup_days);
  score->add_option("--season-days", so.season_days, "season of the seasonal-naive baseline");
  score->add_option("--seed", io.seed, "anomaly injection seed");
  int seeds = 1;
  score->add_option("--seeds", seeds,
                    "pool the anomaly scores over this many seeds (seed, seed+1, ...)");
  score->add_option("--every", io.every_steps, "mean steps between injected anomalies");
  score->add_option("--spike-sd", io.spike_sd);
  score->add_option("--shift-sd", io.shift_sd);
  score->add_option("--ramp-sd", io.ramp_sd);
  score->add_flag("--markdown", markdown, "print a markdown table");
  score->add_flag("--no-anomaly", no_anomaly, "skip the anomaly part");
  score->add_flag("--candidates", show_candidates, "per-candidate relative MAE (diagnostics)");
  score->add_flag("--dump-anomalies", dump_anomalies,
                  "print every injected anomaly (detected? delay) and every false alarm");
  add_model_flags(score);

  // tasks
  auto* tasks = app.add_subcommand("tasks", "task run-time prediction on WfCommons traces");
  std::vector<std::string> jsons;
  tasks->add_option("--json", jsons, "WfCommons workflow JSON(s)")->required();

  CLI11_PARSE(app, argc, argv);

  if (tasks->parsed()) {
    return augur::eval::RunTaskEval(jsons);
  }

  fo.horizons = ParseHorizons(horizons);
  if (auto st = fo.Validate(); !st.ok()) {
    std::fprintf(stderr, "augur-eval: %s\n", st.ToString().c_str());
    return 2;
  }

  if (predict->parsed()) {
    std::optional<Loaded> in = LoadAndReplay(in_csv, fo);
    if (!in) return 1;
    const size_t bad = in->bad_lines;
    const augur::eval::ReplayResult* rr = &in->replay;
    if (auto st = augur::eval::WriteForecastCsv(out_csv, rr->rows); !st.ok()) {
      std::fprintf(stderr, "augur-eval: %s\n", st.ToString().c_str());
      return 1;
    }
    const auto& s = rr->stats;
    std::fprintf(stderr,
                 "augur-eval predict: %zu rows; samples %llu, dropped non-finite %llu, "
                 "out-of-order %llu, unparsable lines %zu; steps %llu observed, %llu imputed, "
                 "%llu breaks; period %d steps (acf %.2f); %llu anomaly events; %.2f us/step\n",
                 rr->rows.size(), (unsigned long long)s.samples_accepted,
                 (unsigned long long)s.dropped_nonfinite,
                 (unsigned long long)s.dropped_out_of_order, bad,
                 (unsigned long long)s.steps_observed, (unsigned long long)s.steps_imputed,
                 (unsigned long long)s.breaks, s.period, s.period_strength,
                 (unsigned long long)s.anomaly_events, rr->us_per_step_mean);
    return 0;
  }

  // score
  so.step = fo.step_seconds;
  if (!pred_csv.empty() && csvs.size() != 1) {
    std::fprintf(stderr, "augur-eval: --pred needs exactly one --csv\n");
    return 2;
  }
  std::vector<SeriesReport> reports;
  for (const std::string& path : csvs) {
    SeriesReport rep;
    rep.name = std::filesystem::path(path).stem().string();
    std::optional<Loaded> in = LoadAndReplay(path, fo);
    if (!in) return 1;
    const std::vector<augur::eval::Sample>* samples = &in->samples;
    // The report keeps the replay's counters and timings; the rows are scored here.
    std::vector<augur::eval::ForecastRow> rows = std::move(in->replay.rows);
    rep.replay = std::move(in->replay);
    if (!pred_csv.empty()) {
      auto pr = augur::eval::ReadForecastCsv(pred_csv);
      if (!pr) {
        std::fprintf(stderr, "augur-eval: %s\n", pr.error().ToString().c_str());
        return 1;
      }
      rows = std::move(*pr);
    }
    rep.scores = augur::eval::ScoreForecasts(*samples, rows, fo.horizons, so);
    {
      const double from = samples->front().ts + so.warmup_days * 86400;
      const double days = (samples->back().ts - from) / 86400;
      size_t n = 0;
      for (const auto& e : rep.replay.events) n += e.time >= from;
      if (days > 0) rep.clean_alarms_per_day = static_cast<double>(n) / days;
    }
    for (int si = 0; !no_anomaly && si < std::max(1, seeds); ++si) {
      augur::eval::InjectOptions iso = io;
      iso.seed = io.seed + static_cast<uint64_t>(si);
      std::vector<augur::eval::InjectedAnomaly> truth;
      const auto dirty = augur::eval::InjectAnomalies(*samples, so, iso, &truth);
      auto ar = augur::eval::Replay(dirty, fo);
      if (!ar) {
        std::fprintf(stderr, "augur-eval: %s\n", ar.error().ToString().c_str());
        return 1;
      }
      const double from = samples->front().ts + so.warmup_days * 86400;
      const AnomalyScore one = augur::eval::ScoreAnomalies(ar->events, truth, from, so, iso);
      if (!rep.has_anomaly) {
        rep.anomaly = one;
      } else {  // pool the counts over seeds
        AnomalyScore& a = rep.anomaly;
        a.injected += one.injected;
        a.detected += one.detected;
        a.alarms += one.alarms;
        a.true_alarms += one.true_alarms;
        a.delays.insert(a.delays.end(), one.delays.begin(), one.delays.end());
        for (size_t i = 0; i < a.by_kind.size() && i < one.by_kind.size(); ++i) {
          a.by_kind[i].second.first += one.by_kind[i].second.first;
          a.by_kind[i].second.second += one.by_kind[i].second.second;
        }
        a.precision = a.alarms ? static_cast<double>(a.true_alarms) / a.alarms : std::nan("");
        a.recall = a.injected ? static_cast<double>(a.detected) / a.injected : std::nan("");
        a.median_delay = Median(a.delays);
      }
      rep.has_anomaly = true;
      if (dump_anomalies) {
        const double tol = iso.tolerance * so.step;
        for (const auto& a : truth) {
          double first = std::nan("");
          for (const auto& e : ar->events) {
            if (e.time >= a.start && e.time < a.end + tol) { first = (e.time - a.start) / so.step; break; }
          }
          std::fprintf(stderr, "%s inj %-11s t=%.0f effect=%.2fu delay=%g\n", rep.name.c_str(),
                       a.kind.c_str(), a.start, a.effect, first);
        }
        for (const auto& e : ar->events) {
          if (e.time < from) continue;
          bool hit = false;
          for (const auto& a : truth) hit |= e.time >= a.start && e.time < a.end + tol;
          if (!hit) std::fprintf(stderr, "%s FALSE t=%.0f score=%.1f\n", rep.name.c_str(), e.time, e.score);
        }
      }
    }
    reports.push_back(std::move(rep));
  }

  // Table.
  const size_t nh = fo.horizons.size();
  if (markdown) {
    std::printf("| series | period |");
    for (int h : fo.horizons) std::printf(" relMAE h%d |", h);
    for (int h : fo.horizons) std::printf(" MASE h%d |", h);
    for (int h : fo.horizons) std::printf(" cov h%d |", h);
    std::printf(" anom P | anom R | delay | clean alarms/day | us/step | state B |\n|---|---|");
    for (size_t i = 0; i < 3 * nh + 6; ++i) std::printf("---|");
    std::printf("\n");
  } else {
    std::printf("%-36s %6s", "series", "period");
    for (int h : fo.horizons) std::printf("  rel%-3d", h);
    for (int h : fo.horizons) std::printf(" mase%-3d", h);
    for (int h : fo.horizons) std::printf("  cov%-3d", h);
    std::printf("  anomP  anomR  delay  clean/d  us/step  p99us  maxus  stateB saveB\n");
  }
  std::vector<std::vector<double>> rel(nh), mase(nh), cov(nh);
  std::vector<double> ps, rs, ds, cs, us;
  for (const SeriesReport& r : reports) {
    const char* sep = markdown ? " | " : " ";
    if (markdown) std::printf("| %s | %d |", r.name.c_str(), r.replay.stats.period);
    else std::printf("%-36s %6d", r.name.c_str(), r.replay.stats.period);
    for (size_t i = 0; i < nh; ++i) {
      std::printf(markdown ? " %.3f |" : "  %6.3f", r.scores[i].rel_mae);
      rel[i].push_back(r.scores[i].rel_mae);
    }
    for (size_t i = 0; i < nh; ++i) {
      std::printf(markdown ? " %.3f |" : "  %6.3f", r.scores[i].mase);
      mase[i].push_back(r.scores[i].mase);
    }
    for (size_t i = 0; i < nh; ++i) {
      std::printf(markdown ? " %.3f |" : "  %6.3f", r.scores[i].coverage);
      cov[i].push_back(r.scores[i].coverage);
    }
    (void)sep;
    if (r.has_anomaly) {
      std::printf(markdown ? " %.2f (%zu/%zu) | %.2f (%zu/%zu) | %.1f |"
                           : "  %5.2f(%zu/%zu) %5.2f(%zu/%zu) %5.1f",
                  r.anomaly.precision, r.anomaly.true_alarms, r.anomaly.alarms, r.anomaly.recall,
                  r.anomaly.detected, r.anomaly.injected, r.anomaly.median_delay);
      ps.push_back(r.anomaly.precision);
      rs.push_back(r.anomaly.recall);
      ds.push_back(r.anomaly.median_delay);
    } else {
      std::printf(markdown ? " - | - | - |" : "  %5s %5s %5s", "-", "-", "-");
    }
    std::printf(markdown ? " %.2f |" : "  %7.2f", r.clean_alarms_per_day);
    cs.push_back(r.clean_alarms_per_day);
    us.push_back(r.replay.us_per_step_mean);
    if (markdown) {
      std::printf(" %.1f | %zu |\n", r.replay.us_per_step_mean, r.replay.state_bytes);
    } else {
      std::printf("  %7.2f %6.1f %6.0f %7zu %5zu\n", r.replay.us_per_step_mean,
                  r.replay.us_per_step_p99, r.replay.us_per_step_max, r.replay.state_bytes,
                  r.replay.saved_bytes);
    }
  }
  if (reports.size() > 1) {
    if (markdown) std::printf("| **median** | |");
    else std::printf("%-36s %6s", "MEDIAN", "");
    for (size_t i = 0; i < nh; ++i) std::printf(markdown ? " %.3f |" : "  %6.3f", Median(rel[i]));
    for (size_t i = 0; i < nh; ++i) std::printf(markdown ? " %.3f |" : "  %6.3f", Median(mase[i]));
    for (size_t i = 0; i < nh; ++i) std::printf(markdown ? " %.3f |" : "  %6.3f", Median(cov[i]));
    std::printf(markdown ? " %.2f | %.2f | %.1f | %.2f | %.1f | |\n"
                         : "  %5.2f        %5.2f        %5.1f  %7.2f  %7.2f\n",
                Median(ps), Median(rs), Median(ds), Median(cs), Median(us));
    if (markdown) std::printf("| **max** | |");
    else std::printf("%-36s %6s", "MAX", "");
    for (size_t i = 0; i < nh; ++i) {
      std::printf(markdown ? " %.3f |" : "  %6.3f", *std::max_element(rel[i].begin(), rel[i].end()));
    }
    std::printf("\n");
  }
  if (show_candidates) {
    for (const SeriesReport& r : reports) {
      for (const HorizonScore& h : r.scores) {
        std::printf("%-36s h%-3d model %.3f  cands", r.name.c_str(), h.horizon, h.rel_mae);
        for (double c : h.cand_rel) std::printf(" %.3f", c);
        std::printf("  (pers %.4g snaive %.4g)\n", h.mae_persistence, h.mae_seasonal);
      }
    }
  }
  // Per-kind anomaly recall and drop counters, for the record.
  if (!markdown) {
    for (const SeriesReport& r : reports) {
      std::printf("%-36s", r.name.c_str());
      for (const auto& [k, v] : r.anomaly.by_kind) {
        double d = std::nan("");
        for (const auto& [dk, dv] : r.anomaly.delay_by_kind) {
          if (dk == k) d = dv;
        }
        std::printf(" %s %zu/%zu (%.0f)", k.c_str(), v.first, v.second, d);
      }
      const auto& s = r.replay.stats;
      std::printf(" | imputed %llu breaks %llu dropped %llu/%llu resets %llu\n",
                  (unsigned long long)s.steps_imputed, (unsigned long long)s.breaks,
                  (unsigned long long)s.dropped_nonfinite,
                  (unsigned long long)s.dropped_out_of_order,
                  (unsigned long long)s.regression_resets);
    }
  }
  return 0;
}
