#include "workflow/warm_pool.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "plugin/backend.h"

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr int64_t kNsPerSec = 1'000'000'000;
// Submissions kept for the cross-workflow predictions, per name and in all.
constexpr size_t kKeepPerName = 64;
constexpr size_t kKeepTotal = 4096;
constexpr size_t kKeepWorkflows = 1024;  // per-workflow counters

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec;
}

plugin::Resources ToPlugin(const Resources& r) { return {r.cpu, r.memory}; }
Resources FromPlugin(const plugin::Resources& r) { return {r.cpu_cores, r.memory_bytes}; }

// The last line of a file, at most 200 bytes, for a log line.
std::string Tail(const std::string& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line)) {
    if (!line.empty()) last = line;
  }
  return last.size() > 200 ? last.substr(last.size() - 200) : last;
}

}  // namespace

struct WarmPool::Entry {
  enum class State { kStarting, kProbing, kReady };
  std::string name, backend, handle;
  Resources shape;   // as granted
  Resources wanted;  // as predicted (the plan matches on it: a backend may round the grant)
  State state = State::kStarting;
  int64_t created_ns = 0;
  int64_t ready_ns = 0;
  double provision_s = 0;  // what a hit saves
  std::string invocation;  // the probe's
  int64_t probe_started_ns = 0;
};

WarmPool::WarmPool(WarmPoolOptions options, BackendLookup backends, WorkflowStore* store)
    : o_(std::move(options)), backends_(std::move(backends)), store_(store) {
  if (!o_.scratch_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o_.scratch_dir, ec);
  }
}

WarmPool::~WarmPool() = default;

void WarmPool::Restore(const std::set<std::string>& in_use) {
  if (auto subs = store_->Submissions(0, kKeepTotal)) {
    std::map<std::string, size_t> per_name;
    for (const WorkflowRecord& w : *subs) {  // newest first
      if (per_name[w.name]++ >= kKeepPerName) continue;
      submissions_.push_back({w.name, w.submitted_ns});
      name_of_[w.id] = w.name;
      latest_id_.emplace(w.name, w.id);
    }
  } else {
    spdlog::warn("pre-warming: cannot read the submission history: {}", subs.error().message());
  }
  auto rows = store_->Warm();
  if (!rows) {
    spdlog::error("pre-warming: cannot read the warm instances left from before: {}",
                  rows.error().message());
    return;
  }
  for (const WarmRecord& r : *rows) {
    if (!r.instance.empty() && in_use.contains(r.instance)) {
      (void)store_->DeleteWarm(r.name);  // taken by an attempt before the restart
      continue;
    }
    leftovers_.push_back(r);
  }
  ReleaseLeftovers();
}

void WarmPool::ReleaseLeftovers() {
  std::vector<WarmRecord> keep;
  for (const WarmRecord& r : leftovers_) {
    plugin::Backend* b = backends_(r.backend);
    if (b == nullptr) {
      keep.push_back(r);
      continue;
    }
    std::string handle = r.instance;
    if (handle.empty()) {
      // Killed while it was being provisioned: provisioning by the same name gives its
      // handle (or makes it, to be released at once).
      plugin::AllocRequest req;
      req.name = r.name;
      req.want = req.min = ToPlugin(r.shape);
      auto inst = b->Provision(req);
      if (!inst) {
        spdlog::info("pre-warming: left-over warm instance {} not found on {} ({}): forgotten",
                     r.name, r.backend, inst.error().message());
        (void)store_->DeleteWarm(r.name);
        continue;
      }
      handle = inst->handle;
    }
    Status st = b->Release(handle);
    if (!st.ok() && !st.IsNotFound()) {
      spdlog::warn("pre-warming: releasing left-over warm instance {} ({}): {}", r.name, handle,
                   st.message());
      keep.push_back(r);
      continue;
    }
    spdlog::info("pre-warming: released {} ({}), warmed before the restart and never used", r.name,
                 handle);
    (void)store_->DeleteWarm(r.name);
  }
  leftovers_ = std::move(keep);
}

void WarmPool::Submitted(const std::string& id, const WorkflowSpec& spec, int64_t now) {
  submissions_.push_back({spec.name, now});
  name_of_[id] = spec.name;
  latest_id_[spec.name] = id;
  parsed_[spec.name] = spec;
  // Bounded: the oldest go first, per name and in all.
  size_t of_name = 0;
  for (const Submission& s : submissions_) of_name += s.name == spec.name;
  if (of_name > kKeepPerName) {
    auto oldest = std::min_element(submissions_.begin(), submissions_.end(),
                                   [&](const Submission& a, const Submission& b) {
                                     return std::tuple(a.name != spec.name, a.at_ns) <
                                            std::tuple(b.name != spec.name, b.at_ns);
                                   });
    submissions_.erase(oldest);
  }
  if (submissions_.size() > kKeepTotal) {
    submissions_.erase(std::min_element(
        submissions_.begin(), submissions_.end(),
        [](const Submission& a, const Submission& b) { return a.at_ns < b.at_ns; }));
  }
  if (name_of_.size() > kKeepTotal) name_of_.erase(name_of_.begin());
}

std::vector<UpcomingStart> WarmPool::Followers(int64_t now) {
  std::vector<UpcomingStart> out;
  if (o_.follow.window_ns <= 0) return out;
  for (const Follower& f : PredictFollowers(submissions_, now, o_.follow)) {
    auto [it, fresh] = parsed_.try_emplace(f.name);
    if (fresh) {
      // The newest submission's file (read once per name).
      auto id = latest_id_.find(f.name);
      auto w = id == latest_id_.end() ? Result<std::optional<WorkflowRecord>>(std::nullopt)
                                      : store_->GetWorkflow(id->second);
      if (w && *w) {
        auto spec = ParseWorkflow((*w)->spec_yaml, (*w)->origin.empty() ? f.name : (*w)->origin);
        if (spec) it->second = std::move(*spec);
      }
    }
    if (!it->second) continue;
    for (UpcomingStart& u : RootStarts(*it->second, o_.capacity, f.at_ns)) {
      out.push_back(std::move(u));
    }
  }
  return out;
}

std::vector<UpcomingStart> WarmPool::Demanded(int64_t now, const DemandView& demand) {
  std::vector<UpcomingStart> out;
  if (!(o_.demand_min_per_hour > 0) || !demand.per_hour || !demand.shard_s) return out;
  for (const auto& [name, spec] : parsed_) {
    if (!spec) continue;
    const double per_hour = demand.per_hour(name);
    auto shard_s = [&, n = name](const std::string& stage) { return demand.shard_s(n, stage); };
    for (UpcomingStart& u :
         DemandStarts(RootStarts(*spec, o_.capacity, now + o_.plan.lead_ns), per_hour, shard_s,
                      o_.demand_min_per_hour)) {
      out.push_back(std::move(u));
    }
  }
  return out;
}

void WarmPool::Tick(const std::vector<UpcomingStart>& upcoming, int64_t now,
                    const DemandView* demand) {
  if (!leftovers_.empty()) ReleaseLeftovers();
  if (!o_.enabled) return;
  std::vector<std::string> names;
  for (auto& [name, e] : pool_) names.push_back(name);
  for (const std::string& name : names) {
    if (auto it = pool_.find(name); it != pool_.end()) PollOne(it->second, now);
  }

  predicted_ = upcoming;
  for (UpcomingStart& u : Followers(now)) predicted_.push_back(std::move(u));
  if (demand != nullptr) {
    // A workflow predicted both to follow another and by its demand is counted once.
    std::set<std::string> keys;
    for (const UpcomingStart& u : predicted_) keys.insert(u.Key());
    for (UpcomingStart& u : Demanded(now, *demand)) {
      if (keys.insert(u.Key()).second) predicted_.push_back(std::move(u));
    }
  }
  std::vector<WarmInstance> view;
  for (const auto& [name, e] : pool_) {
    view.push_back({name, e.backend, Resources::Max(e.wanted, e.shape),
                    e.state == Entry::State::kReady ? e.ready_ns : e.created_ns,
                    e.state != Entry::State::kReady});
  }
  PrewarmPlan plan = PlanPrewarm(predicted_, view, now, o_.plan);
  due_ = std::move(plan.due);
  for (const ReleaseOrder& r : plan.release) {
    Release(r.name, r.why == ReleaseOrder::Why::kIdle ? Why::kIdle : Why::kUnpredicted, now);
  }
  for (const WarmOrder& w : plan.warm) {
    if (auto p = paused_.find(w.backend); p != paused_.end() && p->second.until_ns > now) {
      continue;
    }
    plugin::Backend* b = backends_(w.backend);
    if (b == nullptr) continue;
    Warm(*b, w, now);
  }
  Publish();
}

void WarmPool::Warm(plugin::Backend& b, const WarmOrder& order, int64_t now) {
  plugin::AllocRequest req;
  req.want = req.min = ToPlugin(order.shape);
  req.labels = {{"prewarm", "true"}};
  // A hint: a backend that can prepare instances of this shape ahead (libvirt defines
  // domains that provision then takes) does so.
  if (auto n = b.Prewarm(req, order.count); !hinted_.contains(b.name())) {
    hinted_.insert(b.name());
    spdlog::info("pre-warming: backend {} {}", b.name(),
                 n ? fmt::format("prepared {} of {} instances ahead", *n, order.count)
                   : "prepares nothing ahead (" + n.error().message() +
                         "); instances are "
                         "provisioned and kept warm instead");
  }
  for (uint32_t k = 0; k < order.count; ++k) {
    // Only into room the backend has, beyond what merges need.
    auto info = b.Describe();
    if (info && !(order.shape + o_.keep_free).FitsIn(FromPlugin(info->available))) {
      spdlog::debug("pre-warming: no room on {} for {} ({} available)", b.name(),
                    order.shape.ToString(), FromPlugin(info->available).ToString());
      return;
    }
    Entry e;
    e.name = fmt::format("warm-{:012x}", Fnv1a64(fmt::format("{}/{}/{}/{}", b.name(), now, seq_++,
                                                           order.shape.ToString())) &
                                             0xffffffffffffULL);
    e.backend = b.name();
    e.created_ns = now;
    e.wanted = order.shape;
    WarmRecord rec{e.name, e.backend, "", order.shape, now};
    if (Status st = store_->PutWarm(rec); !st.ok()) {
      spdlog::warn("pre-warming: cannot record {}: {}; not warmed", e.name, st.message());
      return;
    }
    req.name = e.name;
    const int64_t t0 = MonoNs();
    auto inst = b.Provision(req);
    e.provision_s = double(MonoNs() - t0) / kNsPerSec;
    if (!inst) {
      (void)store_->DeleteWarm(e.name);
      ++local_.warm_failures;
      spdlog::warn("pre-warming: provisioning {} on {} ({}) failed: {}", e.name, b.name(),
                   order.reason, inst.error().message());
      Failed(b.name(), now);
      return;
    }
    e.handle = inst->handle;
    e.shape = FromPlugin(inst->granted);
    rec.instance = e.handle;
    rec.shape = e.shape;
    if (Status st = store_->PutWarm(rec); !st.ok()) {
      // Not recorded: a restart could not find it. Give it back now.
      spdlog::warn("pre-warming: cannot record {}: {}; released", e.name, st.message());
      (void)b.Release(e.handle);
      (void)store_->DeleteWarm(e.name);
      return;
    }
    ++local_.warmed;
    spdlog::info("pre-warming: {} on {} ({}) provisioned in {:.1f} ms {}", e.name, b.name(),
                 e.shape.ToString(), e.provision_s * 1e3, order.reason);
    auto [it, fresh] = pool_.emplace(e.name, std::move(e));
    if (inst->state == plugin::InstanceState::kReady) {
      StartProbe(b, it->second, now);
    }  // else PollOne waits for the backend to say it is ready
  }
}

void WarmPool::StartProbe(plugin::Backend& b, Entry& e, int64_t now) {
  if (o_.probe.empty()) {
    e.state = Entry::State::kReady;
    e.ready_ns = now;
    paused_.erase(e.backend);
    return;
  }
  plugin::Task t;
  t.argv = o_.probe;
  t.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"};
  t.workdir = o_.scratch_dir;
  t.stderr_path = o_.scratch_dir.empty() ? "" : o_.scratch_dir + "/" + e.name + ".err";
  t.meta.workflow = "prewarm";
  t.meta.stage = "probe";
  t.meta.shard_id = e.name;
  auto inv = b.Run(e.handle, t);
  if (!inv) {
    spdlog::warn("pre-warming: the probe could not start in {}: {}", e.name, inv.error().message());
    Release(e.name, Why::kProbeFailed, now);
    return;
  }
  e.state = Entry::State::kProbing;
  e.invocation = *inv;
  e.probe_started_ns = now;
}

void WarmPool::PollOne(Entry& e, int64_t now) {
  if (e.state == Entry::State::kReady) return;
  plugin::Backend* b = backends_(e.backend);
  if (b == nullptr) return;  // its host restarts; poll later
  const bool late = now - (e.state == Entry::State::kProbing ? e.probe_started_ns : e.created_ns) >
                    int64_t(o_.probe_timeout.count()) * 1'000'000;
  if (e.state == Entry::State::kStarting) {
    auto r = b->Recover({e.handle}, {});
    if (r && r->instances.size() == 1 && r->instances[0] == plugin::InstanceState::kReady) {
      StartProbe(*b, e, now);
    } else if (late || (r && r->instances.size() == 1 &&
                        (r->instances[0] == plugin::InstanceState::kFailed ||
                         r->instances[0] == plugin::InstanceState::kGone))) {
      spdlog::warn("pre-warming: {} did not become ready{}", e.name,
                   late ? fmt::format(" within {}s", double(o_.probe_timeout.count()) / 1000) : "");
      Release(e.name, Why::kProbeFailed, now);
    }
    return;
  }
  auto st = b->Poll(e.invocation, milliseconds(0));
  if (st && st->state == plugin::TaskState::kRunning && !late) return;
  if (!st && !st.error().IsNotFound() && !late) return;  // transient
  const std::string err = o_.scratch_dir + "/" + e.name + ".err";
  if (st && st->state == plugin::TaskState::kExited && st->exit_code == 0) {
    spdlog::info("pre-warming: {} passed its probe in {:.1f} ms: warm", e.name,
                 double(now - e.probe_started_ns) / 1e6);
    e.state = Entry::State::kReady;
    e.ready_ns = now;
    paused_.erase(e.backend);
    std::error_code ec;
    fs::remove(err, ec);
    return;
  }
  std::string why;
  if (!st) {
    why = st.error().message();
  } else if (st->state == plugin::TaskState::kRunning) {
    (void)b->Cancel(e.invocation);
    why = fmt::format("still running after {}s", double(o_.probe_timeout.count()) / 1000);
  } else if (st->state == plugin::TaskState::kExited) {
    why = fmt::format("exited with status {}", st->exit_code);
  } else {
    why = fmt::format("{} (signal {})", plugin::TaskStateName(st->state), st->term_signal);
  }
  const std::string tail = Tail(err);
  spdlog::warn("pre-warming: the probe failed in {}: {}{}; released", e.name, why,
               tail.empty() ? "" : ": " + tail);
  std::error_code ec;
  fs::remove(err, ec);
  Release(e.name, Why::kProbeFailed, now);
}

void WarmPool::Failed(const std::string& backend, int64_t now) {
  Pause& p = paused_[backend];
  p.failures = std::min<uint32_t>(p.failures + 1, 16);
  const int64_t backoff = std::min<int64_t>(60 * kNsPerSec, kNsPerSec << (p.failures - 1));
  p.until_ns = now + backoff;
}

void WarmPool::Release(const std::string& name, Why why, int64_t now) {
  auto it = pool_.find(name);
  if (it == pool_.end()) return;
  Entry e = std::move(it->second);
  pool_.erase(it);
  plugin::Backend* b = backends_(e.backend);
  Status st = b == nullptr ? Status::Unavailable("backend " + e.backend + " is not up")
                           : b->Release(e.handle);
  if (!st.ok() && !st.IsNotFound()) {
    // Kept in the store: released after the next restart, or now by a later round.
    spdlog::warn("pre-warming: releasing {} ({}): {}", e.name, e.handle, st.message());
    leftovers_.push_back({e.name, e.backend, e.handle, e.shape, e.created_ns});
  } else {
    (void)store_->DeleteWarm(e.name);
  }
  double wasted = 0;
  if (e.state == Entry::State::kReady)
    wasted = double(std::max<int64_t>(0, now - e.ready_ns)) / kNsPerSec;
  local_.wasted_instance_s += wasted;
  const char* what = "";
  switch (why) {
    case Why::kIdle:
      ++local_.released_idle;
      what = "idle past its timeout";
      break;
    case Why::kUnpredicted:
      ++local_.released_unpredicted;
      what = "no longer predicted";
      break;
    case Why::kEvicted:
      ++local_.released_unpredicted;
      what = "its backend needed the room";
      break;
    case Why::kProbeFailed:
      ++local_.probe_failures;
      what = "its warm-up failed";
      Failed(e.backend, now);
      break;
  }
  spdlog::info("pre-warming: released {} ({}): {}; {:.1f} instance-seconds warm and unused", e.name,
               e.backend, what, wasted);
}

std::optional<WarmPool::Taken> WarmPool::Take(const AttemptRecord& a, int64_t now) {
  if (!o_.enabled) return std::nullopt;
  const std::string key = a.workflow_id + "/" + a.stage;
  std::string name_key;
  if (auto n = name_of_.find(a.workflow_id); n != name_of_.end()) {
    name_key = "name:" + n->second + "/" + a.stage;
  }
  const bool predicted =
      std::binary_search(due_.begin(), due_.end(), key) ||
      (!name_key.empty() && std::binary_search(due_.begin(), due_.end(), name_key));
  if (per_workflow_.size() >= kKeepWorkflows && !per_workflow_.contains(a.workflow_id)) {
    per_workflow_.erase(per_workflow_.begin());
  }
  PerWorkflow& pw = per_workflow_[a.workflow_id];
  // The smallest ready instance on the attempt's backend that holds its grant.
  Entry* best = nullptr;
  for (auto& [name, e] : pool_) {
    if (e.state != Entry::State::kReady || e.backend != a.backend || !a.grant.FitsIn(e.shape)) {
      continue;
    }
    if (best == nullptr || std::tuple(e.shape.memory, e.shape.cpu, e.name) <
                               std::tuple(best->shape.memory, best->shape.cpu, best->name)) {
      best = &e;
    }
  }
  plugin::Backend* b = backends_(a.backend);
  if (best != nullptr && b != nullptr) {
    Taken t{best->name, best->handle, best->shape};
    if (!(best->shape == a.grant)) {
      auto g = b->Resize(best->handle, ToPlugin(a.grant));
      if (!g) {
        spdlog::warn("pre-warming: resizing {} to {} for {} failed: {}; released", best->name,
                     a.grant.ToString(), a.attempt_id, g.error().message());
        Release(best->name, Why::kUnpredicted, now);
        best = nullptr;
      } else {
        t.granted = FromPlugin(*g);
      }
    }
    if (best != nullptr) {
      ++local_.hits;
      local_.saved_s += best->provision_s;
      ++pw.hits;
      pw.saved_s += best->provision_s;
      spdlog::info("pre-warming: hit: {} starts in {} (warm for {:.1f}s, saves {:.1f} ms)",
                   a.attempt_id, best->name, double(now - best->ready_ns) / kNsPerSec,
                   best->provision_s * 1e3);
      pool_.erase(t.name);
      Publish();
      return t;
    }
  }
  if (predicted) {
    ++local_.misses;
    ++pw.misses;
    size_t probing = 0;
    for (const auto& [name, e] : pool_)
      probing += e.backend == a.backend && e.state != Entry::State::kReady;
    spdlog::info("pre-warming: miss: {} was predicted but no warm instance on {} holds {}{}",
                 a.attempt_id, a.backend, a.grant.ToString(),
                 probing > 0 ? fmt::format(" ({} still warming up)", probing) : "");
  } else {
    ++local_.cold;
    ++pw.cold;
  }
  Publish();
  return std::nullopt;
}

Status WarmPool::Forget(const std::string& name) { return store_->DeleteWarm(name); }

bool WarmPool::Evict(const std::string& backend, int64_t now) {
  std::vector<std::string> names;
  for (const auto& [name, e] : pool_) {
    if (e.backend == backend) names.push_back(name);
  }
  for (const std::string& n : names) Release(n, Why::kEvicted, now);
  if (!names.empty()) Publish();
  return !names.empty();
}

void WarmPool::Publish() {
  local_.warm_now = 0;
  local_.probing_now = 0;
  for (const auto& [name, e] : pool_) {
    (e.state == Entry::State::kReady ? local_.warm_now : local_.probing_now)++;
  }
  std::lock_guard lock(mu_);
  stats_ = local_;
}

PrewarmStats WarmPool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

nlohmann::json WarmPool::Json(const std::string& workflow_id) const {
  nlohmann::json j = {{"enabled", o_.enabled}};
  PerWorkflow pw;
  if (auto it = per_workflow_.find(workflow_id); it != per_workflow_.end()) pw = it->second;
  j["hits"] = pw.hits;
  j["misses"] = pw.misses;
  j["cold"] = pw.cold;
  j["saved_s"] = pw.saved_s;
  nlohmann::json predicted = nlohmann::json::array();
  for (const UpcomingStart& u : predicted_) {
    if (u.workflow_id != workflow_id) continue;
    predicted.push_back({{"stage", u.stage},
                         {"backend", u.backend},
                         {"shape", u.shape.ToString()},
                         {"count", u.count},
                         {"at_ns", u.at_ns},
                         {"due", std::binary_search(due_.begin(), due_.end(), u.Key())}});
  }
  j["predicted"] = std::move(predicted);
  const PrewarmStats& s = local_;
  j["pool"] = {{"hits", s.hits},
               {"misses", s.misses},
               {"cold", s.cold},
               {"warmed", s.warmed},
               {"warm_failures", s.warm_failures},
               {"probe_failures", s.probe_failures},
               {"released_idle", s.released_idle},
               {"released_unpredicted", s.released_unpredicted},
               {"saved_s", s.saved_s},
               {"wasted_instance_s", s.wasted_instance_s},
               {"warm_now", s.warm_now},
               {"probing_now", s.probing_now}};
  return j;
}

}  // namespace augur::workflow
