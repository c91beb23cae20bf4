// DemandModel (src/workflow/demand.h): seasonal hourly means per workflow, closed lazily.
#include "workflow/demand.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "workflow/conformal.h"

namespace augur::workflow {
namespace {

constexpr int64_t kNsPerHour = 3600LL * 1'000'000'000;
constexpr int64_t kNoHour = std::numeric_limits<int64_t>::min();
constexpr size_t kResidualWindow = 24 * 28;  // four weeks of hours
constexpr size_t kConformalMin = 48;         // two days of hours
// A gap longer than this (eight weeks) has decayed every slot to about nothing; the rest of
// it is skipped rather than closed hour by hour.
constexpr int64_t kMaxClose = 24 * 7 * 8;
constexpr double kErrorDecay = 0.02;  // of the hour-of-day / hour-of-week error race
constexpr int64_t kMaxWindowHours = 31 * 24;

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
size_t Mod(int64_t a, int64_t m) { return size_t(((a % m) + m) % m); }

// The seasonal means: what a closed hour updates.
struct Means {
  std::array<double, 24> day{};
  std::array<uint32_t, 24> day_n{};
  std::array<double, 168> week{};
  std::array<uint32_t, 168> week_n{};
  uint32_t week_slots_seen = 0;
  double rate = 0;  // overall mean per hour: the answer for a slot not seen yet
  uint64_t closed = 0;
  double err_day = 0, err_week = 0;
};

struct Series {
  Means m;
  int64_t open_hour = kNoHour;  // the hour being counted
  double open_count = 0;
  std::deque<float> residuals;  // (count - predicted) / sqrt(predicted + 1), newest last
  int64_t last_ns = 0;          // the newest submission (the LRU order)
};

bool UseWeek(const Means& m) { return m.week_slots_seen == 168 && m.err_week < m.err_day; }

double DayPred(const Means& m, int64_t hour) {
  const size_t d = Mod(hour, 24);
  return m.day_n[d] > 0 ? m.day[d] : m.rate;
}
double WeekPred(const Means& m, int64_t hour) {
  const size_t w = Mod(hour, 168);
  return m.week_n[w] > 0 ? m.week[w] : DayPred(m, hour);
}
double Pred(const Means& m, int64_t hour) {
  return UseWeek(m) ? WeekPred(m, hour) : DayPred(m, hour);
}

}  // namespace

struct DemandModel::Impl {
  DemandOptions o;
  std::map<std::string, Series, std::less<>> series;
  std::map<std::string, EventRecord, std::less<>> events;  // by name

  int64_t Hour(int64_t ns) const {
    return FloorDiv(ns + o.utc_offset_s * 1'000'000'000, kNsPerHour);
  }
  int64_t HourStart(int64_t hour) const {
    return hour * kNsPerHour - o.utc_offset_s * 1'000'000'000;
  }

  // What events announced for `workflow` in [from, to).
  double EventCount(std::string_view workflow, int64_t from, int64_t to,
                    std::vector<EventRecord>* list) const {
    double n = 0;
    for (const auto& [name, e] : events) {
      if (e.workflow != workflow || e.at_ns < from || e.at_ns >= to) continue;
      n += e.expected;
      if (list != nullptr) list->push_back(e);
    }
    return n;
  }

  // Closes `hour` with `count` submissions. `residuals` (nullptr for a what-if) receives the
  // scaled residual of the prediction made before, and the error race is run.
  void Close(std::string_view workflow, Means& m, int64_t hour, double count,
             std::deque<float>* residuals) const {
    count =
        std::max(0.0, count - EventCount(workflow, HourStart(hour), HourStart(hour + 1), nullptr));
    if (residuals != nullptr && m.closed > 0) {
      const double p = Pred(m, hour);
      residuals->push_back(float((count - p) / std::sqrt(p + 1)));
      while (residuals->size() > kResidualWindow) residuals->pop_front();
      m.err_day += kErrorDecay * (std::fabs(count - DayPred(m, hour)) - m.err_day);
      m.err_week += kErrorDecay * (std::fabs(count - WeekPred(m, hour)) - m.err_week);
    }
    // Exponentially weighted, but a plain mean while a slot has few values (a first value
    // weighed at alpha would start every slot near zero).
    const size_t d = Mod(hour, 24), w = Mod(hour, 168);
    const uint32_t nd = ++m.day_n[d];
    m.day[d] += std::max(o.day_alpha, 1.0 / nd) * (count - m.day[d]);
    const uint32_t nw = ++m.week_n[w];
    if (nw == 1) ++m.week_slots_seen;
    m.week[w] += std::max(o.week_alpha, 1.0 / nw) * (count - m.week[w]);
    ++m.closed;
    m.rate += std::max(1.0 / double(m.closed), 1.0 / 168) * (count - m.rate);
  }

  // Closes every hour before `to_hour`: the open one with its count, the rest with none.
  void Advance(std::string_view workflow, Means& m, int64_t& open_hour, double& open_count,
               int64_t to_hour, std::deque<float>* residuals) const {
    if (open_hour == kNoHour || to_hour <= open_hour) return;
    Close(workflow, m, open_hour, open_count, residuals);
    const int64_t last = std::min(to_hour, open_hour + 1 + kMaxClose);
    for (int64_t h = open_hour + 1; h < last; ++h) Close(workflow, m, h, 0, residuals);
    open_hour = to_hour;
    open_count = 0;
  }
};

DemandModel::DemandModel(DemandOptions options) : impl_(std::make_unique<Impl>()) {
  DemandOptions& o = impl_->o;
  o = options;
  auto alpha = [](double a, double def) {
    return std::isfinite(a) ? std::clamp(a, 1e-3, 1.0) : def;
  };
  o.day_alpha = alpha(o.day_alpha, 0.2);
  o.week_alpha = alpha(o.week_alpha, 0.3);
  o.utc_offset_s = std::clamp<int64_t>(o.utc_offset_s, -14 * 3600, 14 * 3600);
  o.coverage = std::isfinite(o.coverage) ? std::clamp(o.coverage, 0.5, 0.99) : 0.8;
  o.max_workflows = std::max<size_t>(o.max_workflows, 1);
  o.max_events = std::max<size_t>(o.max_events, 1);
}
DemandModel::DemandModel(DemandModel&&) noexcept = default;
DemandModel& DemandModel::operator=(DemandModel&&) noexcept = default;
DemandModel::~DemandModel() = default;

const DemandOptions& DemandModel::options() const { return impl_->o; }
size_t DemandModel::workflows() const { return impl_->series.size(); }

void DemandModel::Submitted(std::string_view workflow, int64_t submitted_ns) {
  Impl& d = *impl_;
  auto it = d.series.find(workflow);
  if (it == d.series.end()) {
    if (d.series.size() >= d.o.max_workflows) {
      d.series.erase(std::min_element(d.series.begin(), d.series.end(), [](auto& a, auto& b) {
        return a.second.last_ns < b.second.last_ns;
      }));
    }
    it = d.series.emplace(std::string(workflow), Series{}).first;
  }
  Series& s = it->second;
  s.last_ns = std::max(s.last_ns, submitted_ns);
  const int64_t hour = d.Hour(submitted_ns);
  if (s.open_hour == kNoHour) {
    s.open_hour = hour;
  } else if (hour > s.open_hour) {
    d.Advance(workflow, s.m, s.open_hour, s.open_count, hour, &s.residuals);
  }
  s.open_count += 1;
}

Status DemandModel::AddEvent(const EventRecord& e) {
  if (e.name.empty()) return Status::InvalidArgument("an event needs a name");
  if (e.workflow.empty()) {
    return Status::InvalidArgument(fmt::format("event {}: needs a workflow", e.name));
  }
  if (!std::isfinite(e.expected) || e.expected < 0 || e.expected > 1e6) {
    return Status::InvalidArgument(
        fmt::format("event {}: expected submissions must be a number in 0..1000000, got {}", e.name,
                    e.expected));
  }
  Impl& d = *impl_;
  d.events[e.name] = e;
  while (d.events.size() > d.o.max_events) {
    d.events.erase(std::min_element(d.events.begin(), d.events.end(), [](auto& a, auto& b) {
      return a.second.at_ns < b.second.at_ns;
    }));
  }
  return Status::OK();
}

void DemandModel::ForgetEventsBefore(int64_t cutoff_ns) {
  std::erase_if(impl_->events, [&](const auto& kv) { return kv.second.at_ns < cutoff_ns; });
}

DemandForecast DemandModel::Predict(std::string_view workflow, int64_t now_ns, int64_t from_ns,
                                    int64_t to_ns) const {
  const Impl& d = *impl_;
  DemandForecast f;
  f.from_ns = from_ns;
  f.to_ns = std::clamp(to_ns, from_ns, from_ns + kMaxWindowHours * kNsPerHour);
  f.from_events = d.EventCount(workflow, f.from_ns, f.to_ns, &f.events);
  std::sort(f.events.begin(), f.events.end(), [](const EventRecord& a, const EventRecord& b) {
    return a.at_ns != b.at_ns ? a.at_ns < b.at_ns : a.name < b.name;
  });
  auto it = d.series.find(workflow);
  const double z = NormalQuantile((1 + d.o.coverage) / 2);
  if (it == d.series.end() || f.to_ns <= f.from_ns) {
    f.expected = f.from_events;
    f.lo = f.from_events;
    f.hi = f.from_events + (it == d.series.end() ? 0 : z);
    return f;
  }
  const Series& s = it->second;
  // What the means are once the hours that ended by now are closed (without submissions
  // they count as zero), without changing the model.
  Means m = s.m;
  int64_t open_hour = s.open_hour;
  double open_count = s.open_count;
  const int64_t first = d.Hour(f.from_ns), last = d.Hour(f.to_ns - 1);
  d.Advance(workflow, m, open_hour, open_count, std::min(d.Hour(now_ns), first), nullptr);
  f.hours_seen = m.closed;
  f.model = m.closed > 0 ? (UseWeek(m) ? "hour-of-week" : "hour-of-day") : "current-hour";
  double base = 0;
  for (int64_t h = first; h <= last; ++h) {
    const int64_t a = std::max(f.from_ns, d.HourStart(h));
    const int64_t b = std::min(f.to_ns, d.HourStart(h + 1));
    // Nothing is known before the first hour closes: the count so far stands for a rate.
    const double per_hour = m.closed > 0 ? Pred(m, h) : open_count;
    base += per_hour * double(b - a) / double(kNsPerHour);
  }
  f.baseline = base;
  std::vector<double> r(s.residuals.begin(), s.residuals.end());
  const ConformalBounds cb = Bounds(r, d.o.coverage, kConformalMin, z);
  const double scale = std::sqrt(base + 1);
  // Poisson-like until enough hours are closed: centred on the mean, not on residuals.
  const double lo = cb.conformal ? cb.lo : -z, hi = cb.conformal ? cb.hi : z;
  f.lo = std::max(0.0, base + lo * scale);
  f.hi = std::max(base + hi * scale, 0.0);
  f.lo = std::min(f.lo, base);
  f.hi = std::max(f.hi, base);
  f.expected = base + f.from_events;
  f.lo += f.from_events;
  f.hi += f.from_events;
  return f;
}

DemandForecast DemandModel::NextHour(std::string_view workflow, int64_t now_ns) const {
  return Predict(workflow, now_ns, now_ns, now_ns + kNsPerHour);
}

std::vector<EventRecord> DemandModel::Events(std::string_view workflow, int64_t from_ns) const {
  std::vector<EventRecord> out;
  for (const auto& [name, e] : impl_->events) {
    if ((workflow.empty() || e.workflow == workflow) && e.at_ns >= from_ns) out.push_back(e);
  }
  std::sort(out.begin(), out.end(), [](const EventRecord& a, const EventRecord& b) {
    return a.at_ns != b.at_ns ? a.at_ns < b.at_ns : a.name < b.name;
  });
  return out;
}

}  // namespace augur::workflow
