#include "forecast/forecaster_bank.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "forecast/binary_io.h"

namespace augur::forecast {
namespace {

namespace fs = std::filesystem;

constexpr char kFileMagic[] = "AUGFSER1";  // 8 bytes, no NUL
constexpr uint32_t kFileVersion = 1;
constexpr size_t kMaxFile = 8u << 20;
constexpr size_t kMaxKey = 4096;

}  // namespace

Result<ForecasterBank> ForecasterBank::Open(BankOptions opts) {
  if (Status s = opts.forecaster.Validate(); !s.ok()) return Err(s);
  if (!opts.state_dir.empty()) {
    std::error_code ec;
    fs::create_directories(opts.state_dir, ec);
    if (ec) {
      return Err(Status::IOError("forecast state_dir " + opts.state_dir + ": " + ec.message()));
    }
    fs::permissions(opts.state_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  }
  return ForecasterBank(std::move(opts));
}

std::string ForecasterBank::PathFor(std::string_view series) const {
  char name[32];
  std::snprintf(name, sizeof(name), "%016" PRIx64 ".fcst", Fnv1a64(series));
  return (fs::path(opts_.state_dir) / name).string();
}

ObserveResult ForecasterBank::Observe(std::string_view series, double ts, double value) {
  auto it = series_.find(series);
  if (it == series_.end()) {
    if (series_.size() >= opts_.max_series) {
      ++stats_.refused_series;
      ObserveResult r;
      r.dropped = true;
      return r;
    }
    auto f = Forecaster::Create(opts_.forecaster);  // options validated in Open()
    if (!f) {
      ObserveResult r;
      r.dropped = true;
      return r;
    }
    it = series_.emplace(std::string(series), std::move(*f)).first;
  }
  ObserveResult r = it->second.Observe(ts, value);
  if (r.event) Record(it->first, *r.event);
  return r;
}

void ForecasterBank::AdvanceTo(double now) {
  for (auto& [name, f] : series_) {
    ObserveResult r = f.AdvanceTo(now);
    if (r.event) Record(name, *r.event);
  }
}

void ForecasterBank::Record(std::string_view series, const AnomalyEvent& e) {
  ++stats_.anomaly_events;
  spdlog::info("forecast: anomaly on {} at {:.0f}: value {:.6g}, expected {:.6g}, score {:.1f}",
               series, e.time, e.value, e.expected, e.score);
  SeriesAnomalyEvent ev{std::string(series), e};
  if (opts_.recent_events > 0) {
    if (recent_.size() >= opts_.recent_events) recent_.pop_front();
    recent_.push_back(ev);
  }
  if (sink_) sink_(ev);
}

const Forecaster* ForecasterBank::Find(std::string_view series) const {
  auto it = series_.find(series);
  return it == series_.end() ? nullptr : &it->second;
}

std::vector<std::string> ForecasterBank::SeriesNames() const {
  std::vector<std::string> out;
  out.reserve(series_.size());
  for (const auto& [name, f] : series_) out.push_back(name);
  return out;
}

BankStats ForecasterBank::stats() const {
  BankStats s = stats_;
  s.series = series_.size();
  s.state_bytes = 0;
  for (const auto& [name, f] : series_) s.state_bytes += f.StateBytes();
  return s;
}

Status ForecasterBank::SaveOne(const std::string& series, const Forecaster& f) const {
  std::ostringstream body;
  StateWriter key;
  key.Bytes(series);
  body.write(key.data().data(), static_cast<std::streamsize>(key.data().size()));
  AUGUR_RETURN_IF_ERROR(f.Save(body));
  const std::string path = PathFor(series);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::FromErrno("forecast: cannot write " + tmp, errno);
    AUGUR_RETURN_IF_ERROR(
        WriteFramed(out, std::string_view(kFileMagic, 8), kFileVersion, body.str()));
    out.flush();
    if (!out) return Status::IOError("forecast: writing " + tmp + " failed");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError("forecast: rename " + tmp + ": " + ec.message());
  return Status::OK();
}

Status ForecasterBank::SaveAll() {
  if (opts_.state_dir.empty()) return Status::OK();
  Status first;
  for (const auto& [name, f] : series_) {
    Status s = SaveOne(name, f);
    if (!s.ok()) {
      ++stats_.save_failures;
      spdlog::warn("forecast: saving state of {}: {}", name, s.ToString());
      if (first.ok()) first = s;
    }
  }
  return first;
}

Status ForecasterBank::LoadAll() {
  if (opts_.state_dir.empty()) return Status::OK();
  std::error_code ec;
  fs::directory_iterator dir(opts_.state_dir, ec);
  if (ec) return Status::IOError("forecast: reading " + opts_.state_dir + ": " + ec.message());
  // After an upgrade every file fails for the same reason: name a few, count the rest.
  constexpr uint64_t kLoggedFailures = 3;
  const uint64_t failures_before = stats_.restore_failures;
  for (const fs::directory_entry& e : dir) {
    if (e.path().extension() != ".fcst") continue;
    const std::string path = e.path().string();
    auto fail = [&](const Status& why) {
      if (++stats_.restore_failures - failures_before <= kLoggedFailures) {
        spdlog::warn("forecast: state file {} set aside ({}); its series starts fresh", path,
                     why.ToString());
      }
      std::error_code rec;
      fs::rename(path, path + ".bad", rec);
    };
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      fail(Status::FromErrno("open", errno));
      continue;
    }
    uint32_t version = 0;
    auto body = ReadFramed(in, std::string_view(kFileMagic, 8), kFileVersion, kMaxFile, &version);
    if (!body) {
      fail(body.error());
      continue;
    }
    StateReader kr(*body);
    const std::string key = kr.Bytes(kMaxKey);
    if (!kr.ok() || key.empty()) {
      fail(Status::Corruption("bad series key"));
      continue;
    }
    if (PathFor(key) != path) {
      fail(Status::Corruption("file name does not match its series key"));
      continue;
    }
    auto f = Forecaster::Create(opts_.forecaster);
    if (!f) return f.error();
    std::istringstream rest(body->substr(4 + key.size()));
    if (Status s = f->Restore(rest); !s.ok()) {
      fail(s);
      continue;
    }
    series_.insert_or_assign(key, std::move(*f));
    ++stats_.restored;
  }
  if (const uint64_t failed = stats_.restore_failures - failures_before;
      failed > kLoggedFailures) {
    spdlog::warn("forecast: {} more state files in {} set aside as *.bad (first {} above)",
                 failed - kLoggedFailures, opts_.state_dir, kLoggedFailures);
  }
  return Status::OK();
}

}  // namespace augur::forecast
