#include "workflow/executor.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "common/log_fields.h"
#include "common/yaml_reader.h"
#include "plugin/backend.h"
#include "plugin/plugin_protocol.h"
#include "workflow/demand.h"
#include "workflow/profile.h"
#include "workflow/start_pool.h"
#include "workflow/store.h"
#include "workflow/workflow_spec.h"

namespace augur::workflow {
namespace {

// The journal fields (WORKFLOW, STAGE, SHARD) of log lines about an attempt, or about a
// stage's merge when there is no attempt (common/log_fields.h, agent/journald_sink.h).
LogFields FieldsOf(const std::string& attempt_id, const std::string& workflow,
                   const std::string& stage) {
  if (!attempt_id.empty()) return LogFieldsFromAttemptId(attempt_id);
  return {workflow, stage, ""};
}

namespace fs = std::filesystem;
using std::chrono::milliseconds;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// A backend instance name for an attempt: short (the process backend's cgroup names are
// bounded), printable, and unique per attempt id.
std::string InstanceName(const std::string& attempt_id) {
  return fmt::format("wf-{:016x}", Fnv1a64(attempt_id));
}

plugin::Resources ToPlugin(const Resources& r) { return {r.cpu, r.memory}; }
Resources FromPlugin(const plugin::Resources& r) { return {r.cpu_cores, r.memory_bytes}; }

AttemptOutcome OutcomeOf(const plugin::TaskStatus& st) {
  AttemptOutcome o;
  o.exit_code = st.exit_code;
  o.term_signal = st.term_signal;
  o.cpu_seconds = st.cpu_seconds;
  o.peak_memory_bytes = st.peak_memory_bytes;
  o.bytes_read = st.bytes_read;
  o.bytes_written = st.bytes_written;
  switch (st.state) {
    case plugin::TaskState::kExited:
      o.state = st.exit_code == 0 ? AttemptState::kSucceeded : AttemptState::kFailed;
      break;
    case plugin::TaskState::kOom: o.state = AttemptState::kOom; break;
    case plugin::TaskState::kKilled: o.state = AttemptState::kFailed; break;
    case plugin::TaskState::kFailed:
      o.state = AttemptState::kLost;
      o.error = "the backend lost the task";
      break;
    case plugin::TaskState::kReclaimed:
      o.state = AttemptState::kReclaimed;
      o.error = "its cost class took the instance away";
      break;
    case plugin::TaskState::kRunning: o.state = AttemptState::kRunning; break;
  }
  return o;
}

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// Joins `inputs` into `output` in order. IOError naming the file (a full disk included).
Status Concat(const std::vector<std::string>& inputs, const std::string& output,
              uint64_t max_bytes) {
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  if (!out) return Status::IOError("cannot write " + output);
  uint64_t total = 0;
  for (const std::string& in : inputs) {
    std::ifstream f(in, std::ios::binary);
    if (!f) return Status::IOError("cannot read shard output " + in);
    char buf[65536];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
      total += uint64_t(f.gcount());
      if (total > max_bytes) {
        return Status::ResourceExhausted(
            fmt::format("{}: merged output over the {} byte limit", output, max_bytes));
      }
      out.write(buf, f.gcount());
    }
  }
  out.flush();
  if (!out) return Status::IOError("cannot write " + output + " (disk full?)");
  return Status::OK();
}

// The environment every task starts with (a task gets only what it is given).
std::vector<std::string> BaseEnv() { return {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}; }

// A shard's task (a local attempt's, or a leased one's): its argv, the base environment with
// HOME at its work directory and then its own, stdout to `output` and stderr beside it.
plugin::Task ShardTask(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                       const std::string& workdir, const std::string& output) {
  plugin::Task t;
  t.argv = argv;
  t.env = BaseEnv();
  t.env.push_back("HOME=" + workdir);
  t.env.insert(t.env.end(), env.begin(), env.end());
  t.workdir = workdir;
  t.stdout_path = output;
  t.stderr_path = output + ".err";
  return t;
}

// One running task through a backend: an attempt, or a stage's merge command.
struct Task {
  std::string backend;
  std::string instance;
  std::string invocation;
  std::string output;
  // Attempt tasks: the attempt id; merge tasks: "" (and workflow/stage set).
  std::string attempt_id;
  std::string workflow_id, stage;
  // A task another host's workflow placed here under a mesh lease: the lease (its end goes
  // to the placer, not the engine).
  std::string lease_id;
};

// What a plugin accepts as InvocationMeta::origin_host.
Status CheckHostName(const std::string& name) {
  if (name.size() > 255) {
    return Status::InvalidArgument(fmt::format("host name '{}...' is longer than 255 bytes",
                                               name.substr(0, 32)));
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status::InvalidArgument(
          fmt::format("host name has control character 0x{:02x}", static_cast<unsigned>(c)));
    }
  }
  if (!plugin::IsValidUtf8(name)) return Status::InvalidArgument("host name is not UTF-8");
  return Status::OK();
}

}  // namespace

std::string LocalHostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

struct Executor::Impl : PlacerHost, ReplicationHost {
  ExecutorOptions o;
  BackendLookup backends;
  ForecastFree forecast;
  std::unique_ptr<WorkflowStore> store;
  std::unique_ptr<Engine> engine;
  std::map<std::string, Task> tasks;  // by attempt id, or "merge:<wf>/<stage>"
  int64_t polled_ns = 0;  // the last PollAll (engine thread)
  bool awards_unwritten = false;  // Awarded since the last Persist (TickPlacer)
  Changes unwritten;                  // records the store refused, written with the next
  int64_t costs_read_ns = 0;          // when the backends' cost classes were last read
  DemandModel demand;                 // submissions per hour, and events
  int64_t next_prune_ns = 0;          // when retention runs next
  PruneResult pruned;                 // what the current retention backlog removed so far
  std::unique_ptr<WarmPool> pool;     // pre-warmed instances
  Placer* placer = nullptr;           // o.placer, or none
  Replication* replication = nullptr; // o.replication, or none
  std::set<std::string> replicated;   // workflows the replication held at start
  std::map<std::string, std::string> placed_outputs;  // placed attempt id -> its output path

  // Starts in flight on the start pool (start_pool.h), by task key (an attempt id, or
  // "lease:<id>"): what to do when each completes. What arrives for one meanwhile (a cancel,
  // a resize, its workflow going to another host) is noted here and applied then.
  struct Starting {
    std::string backend;                  // its name, for Evict
    Action action;                        // a local attempt's kStart
    std::optional<LeasedTask> lease;      // or a leased task
    std::optional<WarmPool::Taken> warm;  // the pre-warmed instance it runs in
    bool cancel = false;                  // stopped as soon as it runs
    std::string cancel_reason;
    bool dropped = false;                 // its workflow is another host's now: no record
    std::optional<Resources> resize_to;   // resized once it runs
  };
  std::map<std::string, Starting> starting;
  std::unique_ptr<StartPool> starts;
  bool stopping = false;  // the engine thread is finishing its starts (FinishStarts)

  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;  // guarded by mu
  // The placer's prompt messages (Placer::Prompt): run before `queue`, and between its
  // messages. Guarded by mu.
  std::deque<std::function<void()>> prompt;
  // Starts the pool completed, for the engine thread to apply. Guarded by mu.
  std::deque<StartDone> started;
  bool stop = false;                        // guarded by mu
  std::thread thread;

  template <typename T>
  T Post(std::function<T()> fn) {
    auto task = std::make_shared<std::packaged_task<T()>>(std::move(fn));
    std::future<T> f = task->get_future();
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back([task] { (*task)(); });
    }
    cv.notify_all();
    return f.get();
  }

  // Writes what the engine changed, in one transaction. A failure here (a full disk) is
  // logged; the records are kept and the next persist writes them again (later versions of
  // a record replace earlier ones: every Put is by key).
  Status Persist() {
    Changes c = std::move(unwritten);
    unwritten = {};
    Changes fresh = engine->DrainChanges();
    auto append = [](auto& to, auto& from) {
      to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
    };
    append(c.workflows, fresh.workflows);
    append(c.shards, fresh.shards);
    append(c.attempts, fresh.attempts);
    append(c.stage_outputs, fresh.stage_outputs);
    append(c.history, fresh.history);
    if (c.empty()) return Status::OK();
    Status st = store->Transaction([&]() -> Status {
      for (const WorkflowRecord& w : c.workflows) {
        if (Status s = store->PutWorkflow(w); !s.ok()) return s;
      }
      for (const ShardRecord& s : c.shards) {
        if (Status e = store->PutShard(s); !e.ok()) return e;
      }
      for (const AttemptRecord& a : c.attempts) {
        if (Status s = store->PutAttempt(a); !s.ok()) return s;
      }
      for (const auto& [key, path] : c.stage_outputs) {
        const size_t slash = key.find('/');
        if (Status s = store->PutStageOutput(key.substr(0, slash), key.substr(slash + 1), path);
            !s.ok()) {
          return s;
        }
      }
      for (const HistoryRecord& h : c.history) {
        if (Status s = store->AppendHistory(h); !s.ok()) return s;
      }
      return Status::OK();
    });
    if (!st.ok()) {
      spdlog::error("workflow store: {}", st.message());
      unwritten = std::move(c);
      return st;
    }
    // Written: the owner replicates it (before anything acts on it).
    if (replication != nullptr) replication->Recorded(c, NowNs());
    return st;
  }

  // The store refused this round's records (a full disk): act on nothing that needs them.
  // Starts are reported lost (the shard is re-queued, a bounded number of times, and fails
  // its workflow after); a merge fails its workflow; resizes and cancels go ahead, since
  // they only release resources.
  void ActWithoutRecords(const std::vector<Action>& actions, const Status& why) {
    const int64_t now = NowNs();
    for (const Action& a : actions) {
      if (a.kind == Action::Kind::kStart) {
        AttemptOutcome lost;
        lost.state = AttemptState::kLost;
        lost.error = "not started: the workflow store cannot record it: " + why.message();
        engine->AttemptEnded(a.attempt.attempt_id, lost, now);
      } else if (a.kind == Action::Kind::kMerge) {
        engine->MergeDone(a.workflow_id, a.stage, false,
                          "the workflow store cannot record the result: " + why.message(), now);
      } else {
        Act(a);
      }
    }
  }

  // A provision refused for room is tried again once after the backend's unused warm
  // instances are released.
  Result<plugin::Instance> Provision(plugin::Backend* b, const std::string& backend,
                                     const plugin::AllocRequest& req, int64_t now) {
    auto inst = b->Provision(req);
    if (!inst && inst.error().code() == Status::Code::kUnavailable && pool->Evict(backend, now)) {
      inst = b->Provision(req);
    }
    return inst;
  }

  // A local attempt that did not start: the engine hears it lost (re-queued a bounded
  // number of times).
  void StartFailed(const Action& a, const std::string& why, int64_t now) {
    AttemptOutcome o;
    o.state = AttemptState::kLost;
    o.error = why;
    spdlog::warn("workflow {}: attempt {}: {}", a.attempt.workflow_id, a.attempt.attempt_id, why);
    engine->AttemptEnded(a.attempt.attempt_id, o, now);
  }

  // Hands a kStart to the start pool: a pre-warmed instance when one holds the grant (taken
  // here, since the pool is this thread's), else a new one, provisioned and run by a worker.
  // Started() applies the outcome.
  void Start(const Action& a) {
    plugin::Backend* b = backends(a.attempt.backend);
    const int64_t now = NowNs();
    if (b == nullptr) {
      return StartFailed(a, "backend '" + a.attempt.backend + "' is not enabled or not up", now);
    }
    std::error_code ec;
    fs::create_directories(fs::path(a.attempt.output_path).parent_path(), ec);
    if (ec) return StartFailed(a, "cannot create " + a.attempt.output_path + ": " + ec.message(), now);
    StartJob job;
    job.key = a.attempt.attempt_id;
    job.backend = b;
    std::optional<WarmPool::Taken> warm = pool->Take(a.attempt, now);
    if (warm) {
      job.instance = warm->handle;
    } else {
      job.request.name = InstanceName(a.attempt.attempt_id);
      job.request.want = job.request.min = ToPlugin(a.attempt.grant);
      job.request.resource_class = a.resource_class;
      job.request.labels = {{"workflow", a.attempt.workflow_id}, {"stage", a.attempt.stage}};
    }
    job.task = ShardTask(a.argv, a.env, a.workdir, a.attempt.output_path);
    job.task.meta.workflow = a.attempt.workflow_id;
    job.task.meta.stage = a.attempt.stage;
    job.task.meta.shard_id = a.attempt.attempt_id;
    job.task.meta.range_begin = a.range_begin;
    job.task.meta.range_end = a.range_end;
    job.task.meta.attempt = a.attempt.attempt;
    job.task.meta.priority = a.priority;
    job.task.meta.origin_host = o.host_name;
    starting[job.key] = Starting{a.attempt.backend, a, std::nullopt, warm, false, "", false, {}};
    if (!starts->Post(std::move(job))) {
      starting.erase(a.attempt.attempt_id);
      StartFailed(a, "not started: the executor is stopping", now);
    }
  }

  // A start the pool completed (on this thread). A provision refused for room is posted
  // once more after the backend's unused warm instances are released.
  void Started(StartDone d) {
    auto it = starting.find(d.job.key);
    if (it == starting.end()) return;
    const int64_t now = NowNs();
    if (!d.error.ok() && d.provision_failed && d.error.code() == Status::Code::kUnavailable &&
        !d.job.retried_for_room && !stopping && pool->Evict(it->second.backend, now)) {
      StartJob again = d.job;
      again.retried_for_room = true;
      if (starts->Post(std::move(again))) return;
    }
    Starting s = std::move(it->second);
    starting.erase(it);
    if (s.lease) return LeaseStarted(d, s, now);
    const Action& a = s.action;
    ScopedLogFields fields(FieldsOf(a.attempt.attempt_id, a.attempt.workflow_id, a.attempt.stage));
    // A warm instance whose run failed was released by the worker; one that runs becomes
    // the attempt's below, in the transaction that records the attempt.
    if (!d.error.ok()) {
      if (s.warm) (void)pool->Forget(s.warm->name);
      if (s.dropped) {
        spdlog::info("workflow {}: {} did not start: {}", a.attempt.workflow_id,
                     a.attempt.attempt_id, d.error.message());
        return;
      }
      return StartFailed(a, d.error.message(), now);
    }
    plugin::Backend* b = d.job.backend;
    tasks[a.attempt.attempt_id] = {a.attempt.backend, d.instance, d.invocation,
                                   a.attempt.output_path, a.attempt.attempt_id,
                                   a.attempt.workflow_id, a.attempt.stage, ""};
    if (s.dropped) {
      // Another host runs its workflow now and this engine forgot it: stopped, not recorded;
      // polling reports its end (ignored) and releases the instance.
      if (s.warm) (void)pool->Forget(s.warm->name);
      spdlog::info("workflow {}: stopping {} as it started: {}", a.attempt.workflow_id,
                   a.attempt.attempt_id, s.cancel_reason);
      (void)b->Cancel(d.invocation);
      return;
    }
    // From the attempt's start (the engine's decision) to its task running: what a new
    // shard on this backend costs before it does any work.
    engine->profiles().LearnStartup(a.attempt.backend,
                                    double(d.running_ns - a.attempt.started_ns) / 1e9);
    // The engine keeps the handles, so that its later records of the attempt (a resize's)
    // carry them too.
    (void)engine->AttemptRunning(a.attempt.attempt_id, d.instance, d.invocation);
    AttemptRecord rec = a.attempt;
    rec.instance = d.instance;
    rec.invocation = d.invocation;
    rec.state = AttemptState::kRunning;
    if (s.resize_to) rec.grant = *s.resize_to;
    // A warm instance becomes the attempt's in one step: a restart finds it in exactly one
    // of the two tables.
    (void)store->Transaction([&]() -> Status {
      if (Status st = store->PutAttempt(rec); !st.ok()) return st;
      return s.warm ? pool->Forget(s.warm->name) : Status::OK();
    });
    spdlog::info("workflow {}: started {} ({}{}) granted {}", a.attempt.workflow_id,
                 a.attempt.attempt_id, d.instance, s.warm ? ", pre-warmed" : "",
                 a.attempt.grant.ToString());
    if (s.cancel) {
      spdlog::info("workflow {}: cancelling {} as it started: {}", a.attempt.workflow_id,
                   a.attempt.attempt_id, s.cancel_reason);
      (void)b->Cancel(d.invocation);
    } else if (s.resize_to) {
      Action r = a;
      r.kind = Action::Kind::kResize;
      r.resize_to = *s.resize_to;
      r.reason = "resized while it started";
      Resize(r);
    }
  }

  // A leased task's start completed: a failure ends the lease as lost (the owner places
  // the shard again).
  void LeaseStarted(const StartDone& d, const Starting& s, int64_t now) {
    const LeasedTask& lt = *s.lease;
    if (!d.error.ok()) {
      spdlog::warn("mesh: cannot run {} for {}: {}", lt.attempt_id, lt.owner, d.error.message());
      AttemptOutcome lost;
      lost.state = AttemptState::kLost;
      lost.error = "not started: " + d.error.message();
      if (placer != nullptr) placer->LeasedEnded(lt.lease_id, lost, now);
      return;
    }
    tasks["lease:" + lt.lease_id] = {lt.backend, d.instance, d.invocation, lt.output_path, "",
                                     "", "", lt.lease_id};
    // With the lease's record (the placer's), so that a restart re-attaches the task.
    if (Status st = store->SetLeaseHandles(lt.lease_id, d.instance, d.invocation); !st.ok()) {
      spdlog::error("workflow store: {}", st.message());
    }
    spdlog::info("mesh: running {} for {} under lease {} granted {}", lt.attempt_id, lt.owner,
                 lt.lease_id, lt.grant.ToString());
    if (s.cancel) {
      spdlog::info("mesh: stopping leased task {} as it started: {}", lt.lease_id, s.cancel_reason);
      (void)d.job.backend->Cancel(d.invocation);
    }
  }

  // The executor stops (Executor::~Executor, on the engine thread as it leaves its loop):
  // starts not begun are dropped, their attempts recorded as starting with no task (the next
  // start runs them again, as after a crash before the start), except leased ones, started
  // now (below); starts running finish and are
  // recorded, so that the next start re-attaches their tasks, which are left running.
  void FinishStarts() {
    if (starts == nullptr) return;
    stopping = true;
    std::vector<StartJob> unstarted = starts->Stop();
    std::deque<StartDone> done;
    {
      std::lock_guard<std::mutex> lock(mu);
      done.swap(started);
    }
    for (StartDone& d : done) Started(std::move(d));
    for (StartJob& j : unstarted) {
      // A leased task is started here and now: the next start re-attaches it under its
      // stored lease, where dropping it would make its owner run the shard again.
      if (auto it = starting.find(j.key); it != starting.end() && it->second.lease) {
        Started(StartPool::Run(std::move(j)));
        continue;
      }
      spdlog::info("{}: not started: the executor stopped (its next start runs it)", j.key);
    }
    starting.clear();
    (void)Persist();
  }

  void Resize(const Action& a) {
    auto it = tasks.find(a.attempt.attempt_id);
    plugin::Backend* b = backends(a.attempt.backend);
    if (it == tasks.end() || b == nullptr) return;
    auto g = b->Resize(it->second.instance, ToPlugin(a.resize_to));
    if (!g) {
      spdlog::warn("workflow {}: resize of {} to {} failed: {}", a.attempt.workflow_id,
                   a.attempt.attempt_id, a.resize_to.ToString(), g.error().message());
      return;
    }
    spdlog::info("workflow {}: {} grant {} -> {} ({})", a.attempt.workflow_id,
                 a.attempt.attempt_id, a.attempt.grant.ToString(), FromPlugin(*g).ToString(),
                 a.reason);
  }

  void Act(const Action& a) {
    ScopedLogFields fields(FieldsOf(a.attempt.attempt_id, a.attempt.workflow_id, a.attempt.stage));
    switch (a.kind) {
      case Action::Kind::kStart:
        Start(a);
        break;
      case Action::Kind::kResize:
        if (auto s = starting.find(a.attempt.attempt_id); s != starting.end()) {
          s->second.resize_to = a.resize_to;
          spdlog::info("workflow {}: {} grant -> {} once it runs ({})", a.attempt.workflow_id,
                       a.attempt.attempt_id, a.resize_to.ToString(), a.reason);
          break;
        }
        Resize(a);
        break;
      case Action::Kind::kPlace: {
        // Its output's directory is made when the output comes (EndRemote): a new one takes
        // 0.1-0.2 ms, which the shard's negotiation would wait for here.
        placed_outputs[a.attempt.attempt_id] = a.attempt.output_path;
        spdlog::info("workflow {}: placing {} on another host (want {}, min {})",
                     a.attempt.workflow_id, a.attempt.attempt_id, a.attempt.grant.ToString(),
                     a.min.ToString());
        placer->Place(a, NowNs());
        break;
      }
      case Action::Kind::kCancel: {
        if (placer != nullptr && placer->Cancel(a.attempt.attempt_id, a.reason, NowNs())) {
          spdlog::info("workflow {}: cancelling {} (on {}): {}", a.attempt.workflow_id,
                       a.attempt.attempt_id, a.attempt.host.empty() ? "the mesh" : a.attempt.host,
                       a.reason);
          break;
        }
        if (auto s = starting.find(a.attempt.attempt_id); s != starting.end()) {
          s->second.cancel = true;
          s->second.cancel_reason = a.reason;
          spdlog::info("workflow {}: cancelling {} as soon as it runs: {}", a.attempt.workflow_id,
                       a.attempt.attempt_id, a.reason);
          break;
        }
        auto it = tasks.find(a.attempt.attempt_id);
        plugin::Backend* b = backends(a.attempt.backend);
        spdlog::info("workflow {}: cancelling {}: {}", a.attempt.workflow_id, a.attempt.attempt_id,
                     a.reason);
        if (it != tasks.end() && b != nullptr) (void)b->Cancel(it->second.invocation);
        break;
      }
      case Action::Kind::kMerge:
        Merge(a);
        break;
    }
  }

  void Merge(const Action& a) {
    const int64_t now = NowNs();
    if (a.argv.empty()) {
      Status st = Concat(a.inputs, a.output, o.max_output_bytes);
      engine->MergeDone(a.workflow_id, a.stage, st.ok(), st.message(), now);
      return;
    }
    // A merge command runs like a shard, on the process backend, outside the ledger: it is
    // one small task per stage.
    plugin::Backend* b = backends("process");
    if (b == nullptr) {
      engine->MergeDone(a.workflow_id, a.stage, false, "the process backend is not up", now);
      return;
    }
    plugin::AllocRequest req;
    req.name = InstanceName("merge:" + a.workflow_id + "/" + a.stage);
    // Outside the ledger, so kept small; a shard that then finds the backend full is
    // re-queued (Engine::AttemptEnded, kLost).
    req.want = req.min = {kMergeReserve.cpu, kMergeReserve.memory};
    auto inst = Provision(b, "process", req, now);
    if (!inst) {
      engine->MergeDone(a.workflow_id, a.stage, false, inst.error().message(), now);
      return;
    }
    plugin::Task t;
    t.argv = a.argv;
    t.env = BaseEnv();
    t.workdir = a.workdir;
    t.stdout_path = a.output;
    t.stderr_path = a.output + ".err";
    t.meta.workflow = a.workflow_id;
    t.meta.stage = a.stage;
    t.meta.shard_id = "merge";
    t.meta.attempt = 1;
    t.meta.origin_host = o.host_name;
    auto inv = b->Run(inst->handle, t);
    if (!inv) {
      (void)b->Release(inst->handle);
      engine->MergeDone(a.workflow_id, a.stage, false, inv.error().message(), now);
      return;
    }
    tasks["merge:" + a.workflow_id + "/" + a.stage] = {"process", inst->handle, *inv, a.output,
                                                       "", a.workflow_id, a.stage, ""};
  }

  // Reads each backend's cost classes into the engine, every cost_refresh. A backend that
  // does not answer keeps the classes it had.
  void RefreshCosts() {
    const int64_t now = NowNs();
    if (costs_read_ns != 0 &&
        now - costs_read_ns < int64_t(o.cost_refresh.count()) * 1'000'000) {
      return;
    }
    costs_read_ns = now;
    for (const std::string& name : o.backends) {
      plugin::Backend* b = backends(name);
      if (b == nullptr) continue;
      auto info = b->Describe();
      if (!info) continue;
      std::vector<CostClass> classes;
      for (const plugin::Cost& c : info->costs) {
        classes.push_back({c.resource_class, c.per_core_hour, c.per_gib_hour, c.preemptible});
      }
      engine->SetBackendCosts(name, classes);
    }
  }

  // Polls every running task once, without waiting. Each poll is a round trip to the
  // backend's host process (milliseconds on a loaded machine): the negotiation messages that
  // came meanwhile are served between them, so a placement waits for one poll at most.
  void PollAll() {
    std::vector<std::string> keys;
    keys.reserve(tasks.size());
    for (const auto& [key, t] : tasks) keys.push_back(key);
    std::vector<std::string> ended;
    for (const std::string& key : keys) {
      if (placer != nullptr) ServePrompt();
      auto found = tasks.find(key);  // served messages may have changed the tasks
      if (found == tasks.end()) continue;
      Task& t = found->second;
      plugin::Backend* b = backends(t.backend);
      if (b == nullptr) continue;  // down: its host restarts and recovers; poll later
      ScopedLogFields fields(FieldsOf(t.attempt_id, t.workflow_id, t.stage));
      auto st = b->Poll(t.invocation, milliseconds(0));
      const int64_t now = NowNs();
      if (!st) {
        if (!st.error().IsNotFound()) continue;  // transient (host restarting)
        plugin::TaskStatus lost;
        lost.state = plugin::TaskState::kFailed;
        st = lost;
      }
      if (st->state == plugin::TaskState::kRunning) {
        if (!t.lease_id.empty() && FileSize(t.output) > o.max_output_bytes) {
          (void)b->Cancel(t.invocation);
        }
        if (!t.attempt_id.empty()) {
          engine->ReportUsage(t.attempt_id, st->cpu_seconds, st->peak_memory_bytes, now);
        }
        if (!t.attempt_id.empty() && FileSize(t.output) > o.max_output_bytes) {
          spdlog::warn("workflow {}: {} output over {} bytes: cancelled", t.workflow_id,
                       t.attempt_id, o.max_output_bytes);
          (void)b->Cancel(t.invocation);
        }
        continue;
      }
      if (!t.lease_id.empty()) {
        AttemptOutcome out = OutcomeOf(*st);
        if (FileSize(t.output) > o.max_output_bytes) {
          out.state = AttemptState::kFailed;
          out.error = fmt::format("output over the {} byte limit", o.max_output_bytes);
        }
        spdlog::info("mesh: leased task {} ended: {} (exit {})", t.lease_id,
                     AttemptStateName(out.state), out.exit_code);
        if (placer != nullptr) placer->LeasedEnded(t.lease_id, out, now);
      } else if (t.attempt_id.empty()) {
        const bool ok = st->state == plugin::TaskState::kExited && st->exit_code == 0;
        engine->MergeDone(t.workflow_id, t.stage, ok,
                          ok ? "" : fmt::format("merge command {} (exit {}, signal {})",
                                                plugin::TaskStateName(st->state), st->exit_code,
                                                st->term_signal),
                          now);
      } else {
        // bytes_read / bytes_written are the backend's measure; the output file's size only
        // decides the limit.
        AttemptOutcome out = OutcomeOf(*st);
        if (FileSize(t.output) > o.max_output_bytes) {
          out.state = AttemptState::kFailed;
          out.error = fmt::format("output over the {} byte limit", o.max_output_bytes);
        }
        const MergeOutcome mo = engine->AttemptEnded(t.attempt_id, out, now);
        if (mo == MergeOutcome::kDuplicate) {
          spdlog::info("workflow {}: {} succeeded after its shard already had a result: "
                       "discarded", t.workflow_id, t.attempt_id);
        }
        spdlog::info("workflow {}: {} ended: {} (exit {}, {:.2f} cpu-s, peak {}, read {} B, "
                     "wrote {} B)", t.workflow_id, t.attempt_id, AttemptStateName(out.state),
                     out.exit_code, out.cpu_seconds, FormatMemory(out.peak_memory_bytes),
                     out.bytes_read, out.bytes_written);
      }
      (void)b->Release(t.instance);
      ended.push_back(key);
    }
    for (const std::string& k : ended) tasks.erase(k);
  }

  void Loop() {
    for (;;) {
      std::deque<std::function<void()>> batch;
      std::deque<StartDone> done;
      {
        // The placer's timers (offer waits, renewals) are finer than the tick.
        auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(o.tick);
        if (placer != nullptr) {
          if (std::optional<int64_t> due = placer->NextDeadline()) {
            wait = std::min(wait, std::chrono::nanoseconds(std::max<int64_t>(0, *due - NowNs())));
          }
        }
        if (replication != nullptr) {
          if (std::optional<int64_t> due = replication->NextDeadline()) {
            wait = std::min(wait, std::chrono::nanoseconds(std::max<int64_t>(0, *due - NowNs())));
          }
        }
        std::unique_lock<std::mutex> lock(mu);
        cv.wait_for(lock, wait, [&] {
          return stop || !queue.empty() || !prompt.empty() || !started.empty();
        });
        if (stop) {
          lock.unlock();  // the pool's workers hand their last completions in under mu
          FinishStarts();
          return;
        }
        done.swap(started);
        batch.swap(prompt);
        for (auto& fn : queue) batch.push_back(std::move(fn));
        queue.clear();
      }
      // Completed starts first: their tasks are polled, cancelled or resized from now on.
      for (StartDone& d : done) Started(std::move(d));
      if (!done.empty()) (void)Persist();
      for (auto& fn : batch) {
        fn();
        // A queued message may take a while (a transfer's data written to disk): the
        // negotiation that came meanwhile goes before the next one.
        if (placer != nullptr) ServePrompt();
      }
      RefreshCosts();
      // Every running task at most every quarter tick: the thread wakes for every message
      // (a negotiation's burst is dozens), and each poll is a round trip to the backend's
      // host process. A task's end is still seen within a tick.
      if (const int64_t t = NowNs(); t - polled_ns >= int64_t(o.tick.count()) * 250'000) {
        polled_ns = t;
        PollAll();
      }
      if (placer != nullptr) {
        TickPlacer();
        engine->SetRemoteRoom(placer->PeerRoom(0));
      }
      if (replication != nullptr) replication->Tick(NowNs());
      if (placer != nullptr) ServePrompt();
      // A merge done inline (concat) readies the next stage at once, and a start can free
      // nothing; so decide again while the last round acted, a few rounds at most, rather
      // than leaving each step of a chain to the next tick.
      for (int round = 0; round < 8; ++round) {
        HostView host;
        // The forecast counts our running shards as load; what the host's other load
        // leaves is that plus our grants.
        if (forecast) {
          host.forecast = forecast();
          for (HorizonFree& h : host.forecast) h.free += engine->ledger().Granted();
        }
        std::vector<Action> actions = engine->Tick(NowNs(), host);
        if (placer != nullptr) placer->RoomChanged();
        // Placements first, and their probes sent at once, even before this round's records
        // are written: they are messages, and the shards placed elsewhere should not wait
        // behind this host's own work or its commit (issue 12's placement latency,
        // bench/mesh/placement_bench.sh). A probe commits nothing (a hold expires unless
        // awarded), and an award can only follow offers this thread handles after the
        // Persist below; should it fail, the placements stay, as ActWithoutRecords has them.
        bool placed = false;
        if (placer != nullptr) {
          for (const Action& a : actions) {
            if (a.kind != Action::Kind::kPlace) continue;
            Act(a);
            placed = true;
          }
          if (placed) {
            TickPlacer();
            std::erase_if(actions, [](const Action& a) { return a.kind == Action::Kind::kPlace; });
          }
        }
        for (const auto& [wf, note] : engine->DrainNotes()) {
          spdlog::info("workflow {}: {}", wf, note);
        }
        // State before action: what the actions will do is on disk first.
        if (Status st = Persist(); !st.ok()) {
          ActWithoutRecords(actions, st);
          break;
        }
        if (placer != nullptr) ServePrompt();
        for (const Action& a : actions) Act(a);
        (void)Persist();
        if (placer != nullptr) {
          std::vector<GrantChange> foreign = engine->DrainForeignChanges();
          if (!foreign.empty()) placer->ForeignChanges(foreign, NowNs());
          ServePrompt();
        }
        if (actions.empty() && !placed) break;
      }
      const int64_t now = NowNs();
      const DemandView demand_view{
          [&](const std::string& wf) { return demand.NextHour(wf, now).expected; },
          [&](const std::string& wf, const std::string& stage) {
            auto e = engine->profiles().Predict(wf, stage, Quantity::kWall);
            return e ? e->value : o.engine.default_expected_s;
          }};
      pool->Tick(o.prewarm.enabled ? engine->Upcoming(now) : std::vector<UpcomingStart>{}, now,
                 &demand_view);
      Prune(now);
    }
  }

  // Between queued messages: the negotiation messages that came meanwhile (offers, awards,
  // leases) and the placer's due timers, so that placing shards elsewhere waits for as
  // little of this thread's other work as can be (the candidates' holds last 200 ms).
  void ServePrompt() {
    std::deque<std::function<void()>> now;
    {
      std::lock_guard<std::mutex> lock(mu);
      now.swap(prompt);
    }
    for (auto& fn : now) fn();
    if (std::optional<int64_t> due = placer->NextDeadline(); due && *due <= NowNs()) {
      TickPlacer();
    }
  }

  // The placer's Tick sends the RunShards of shards just awarded: their records (host and
  // lease, written before a RunShard goes) are written first, in one transaction for all
  // the awards since the last (a burst of a workflow's placements is one commit, not one
  // each on this thread while the other answers wait).
  void TickPlacer() {
    if (awards_unwritten) {
      awards_unwritten = false;
      (void)Persist();
    }
    placer->Tick(NowNs());
  }

  // PlacerHost (placer.h).
  Ledger& ledger() override { return engine->mutable_ledger(); }

  void Awarded(const std::string& attempt_id, const std::string& host, const Resources& grant,
               const std::string& lease_id, int64_t now) override {
    if (Status st = engine->RemoteAwarded(attempt_id, host, grant, now, lease_id); !st.ok()) {
      spdlog::info("mesh: award of {}: {}", attempt_id, st.message());
    }
    awards_unwritten = true;  // written before the placer's Tick sends its RunShard
  }

  void RemoteEnded(const std::string& attempt_id, const AttemptOutcome& outcome,
                   const std::string& output, int64_t now) override {
    EndRemote(attempt_id, outcome, output, "", now);
  }

  void RemoteEndedWithFile(const std::string& attempt_id, const AttemptOutcome& outcome,
                           const std::string& output_file, int64_t now) override {
    EndRemote(attempt_id, outcome, "", output_file, now);
    std::error_code ec;
    fs::remove(output_file, ec);  // still there when it was not moved
  }

  // The output is `output`, or the file `output_file` (moved into place) when that is set.
  void EndRemote(const std::string& attempt_id, const AttemptOutcome& outcome,
                 const std::string& output, const std::string& output_file, int64_t now) {
    auto it = placed_outputs.find(attempt_id);
    if (it == placed_outputs.end() || !engine->IsRemote(attempt_id)) {
      spdlog::info("mesh: result of {} ignored: the attempt has already ended", attempt_id);
      return;
    }
    AttemptOutcome out = outcome;
    if (out.state == AttemptState::kSucceeded || !output.empty() || !output_file.empty()) {
      Status st = Status::OK();
      std::error_code dir_ec;
      fs::create_directories(fs::path(it->second).parent_path(), dir_ec);  // fails below
      const uint64_t size = output_file.empty() ? output.size() : FileSize(output_file);
      if (size > o.max_output_bytes) {
        st = Status::ResourceExhausted(
            fmt::format("output over the {} byte limit", o.max_output_bytes));
      } else if (!output_file.empty()) {
        // A rename on one file system; a copy across two.
        std::error_code ec;
        fs::rename(output_file, it->second, ec);
        if (ec) fs::copy_file(output_file, it->second, fs::copy_options::overwrite_existing, ec);
        if (ec) st = Status::IOError("cannot move the output to " + it->second + ": " + ec.message());
      } else {
        std::ofstream f(it->second, std::ios::binary | std::ios::trunc);
        f.write(output.data(), std::streamsize(output.size()));
        f.flush();
        if (!f) st = Status::IOError("cannot write " + it->second + " (disk full?)");
      }
      if (!st.ok()) {
        out.state = AttemptState::kFailed;
        out.error = st.message();
      }
    }
    placed_outputs.erase(it);
    const MergeOutcome mo = engine->AttemptEnded(attempt_id, out, now);
    spdlog::info("mesh: {} ended remotely: {}{}{}", attempt_id, AttemptStateName(out.state),
                 out.error.empty() ? "" : ": " + out.error,
                 mo == MergeOutcome::kDuplicate ? " (its shard already had a result)" : "");
    (void)Persist();
  }

  void Unplaced(const std::string& attempt_id, int64_t now) override {
    placed_outputs.erase(attempt_id);
    if (Status st = engine->Unplace(attempt_id, now); !st.ok()) {
      spdlog::info("mesh: taking back {}: {}", attempt_id, st.message());
    }
    (void)Persist();
  }

  // Hands the leased task to the start pool: OK when it can be handed; a start that fails
  // on the worker ends the lease as lost (LeaseStarted).
  Status RunLeased(const LeasedTask& lt) override {
    plugin::Backend* b = backends(lt.backend);
    if (b == nullptr) {
      return Status::Unavailable("backend '" + lt.backend + "' is not enabled or not up");
    }
    // Its output exists from now on: the placer reads it when the task ends, also when it
    // never started (an empty output, and the end says why).
    {
      std::ofstream out(lt.output_path, std::ios::binary | std::ios::trunc);
      if (!out) return Status::IOError("cannot create " + lt.output_path);
    }
    const std::string key = "lease:" + lt.lease_id;
    StartJob job;
    job.key = key;
    job.backend = b;
    job.request.name = InstanceName(key);
    job.request.want = job.request.min = ToPlugin(lt.grant);
    job.request.labels = {{"owner", lt.owner}, {"attempt", lt.attempt_id}};
    job.task = ShardTask(lt.argv, lt.env, lt.workdir, lt.output_path);
    job.task.meta.workflow = lt.attempt_id.substr(0, lt.attempt_id.find('/'));
    job.task.meta.shard_id = lt.attempt_id;
    job.task.meta.range_begin = lt.range_begin;
    job.task.meta.range_end = lt.range_end;
    job.task.meta.priority = lt.priority;
    job.task.meta.origin_host = lt.owner;
    starting[key] = Starting{lt.backend, {}, lt, std::nullopt, false, "", false, {}};
    if (!starts->Post(std::move(job))) {
      starting.erase(key);
      return Status::Unavailable("not started: the executor is stopping");
    }
    return Status::OK();
  }

  bool ReattachLeased(const std::string& lease_id, const std::string& backend,
                      const std::string& instance, const std::string& invocation,
                      const std::string& output_path) override {
    plugin::Backend* b = backends(backend);
    if (b == nullptr || invocation.empty()) {
      if (b != nullptr && !instance.empty()) (void)b->Release(instance);
      return false;
    }
    tasks["lease:" + lease_id] = {backend, instance, invocation, output_path, "", "", "", lease_id};
    return true;
  }

  void ResizeLeased(const std::string& lease_id, const Resources& to) override {
    auto it = tasks.find("lease:" + lease_id);
    plugin::Backend* b = it == tasks.end() ? nullptr : backends(it->second.backend);
    if (b == nullptr) return;
    auto g = b->Resize(it->second.instance, ToPlugin(to));
    if (!g) {
      spdlog::warn("mesh: resize of leased task {} to {} failed: {}", lease_id, to.ToString(),
                   g.error().message());
      return;
    }
    spdlog::info("mesh: leased task {} now granted {}", lease_id, FromPlugin(*g).ToString());
  }

  void StopLeased(const std::string& lease_id, const std::string& reason) override {
    if (auto s = starting.find("lease:" + lease_id); s != starting.end()) {
      s->second.cancel = true;
      s->second.cancel_reason = reason;
      spdlog::info("mesh: stopping leased task {} as soon as it runs: {}", lease_id, reason);
      return;
    }
    auto it = tasks.find("lease:" + lease_id);
    if (it == tasks.end()) return;
    spdlog::info("mesh: stopping leased task {}: {}", lease_id, reason);
    if (plugin::Backend* b = backends(it->second.backend)) (void)b->Cancel(it->second.invocation);
  }

  void LedgerChanged(const std::vector<GrantChange>& changes, int64_t now) override {
    std::vector<Action> actions;
    for (const GrantChange& c : changes) {
      if (auto a = engine->LedgerChanged(c, now)) actions.push_back(std::move(*a));
    }
    if (Status st = Persist(); !st.ok()) return;
    for (const Action& a : actions) Act(a);
  }

  // `augurctl result` and `history` here (engine thread).
  Result<std::string> LocalOutput(const std::string& workflow, const std::string& stage) {
    auto id = engine->Resolve(workflow);
    if (!id) return Err(id.error());
    auto which = engine->StageOf(*id, stage);
    if (!which) return Err(which.error());
    auto out = store->StageOutput(*id, *which);
    if (!out) return Err(out.error());
    if (!*out) {
      return Err(Status::NotFound(fmt::format("workflow {}: stage {} has no result yet ({})", *id,
                                              *which, engine->StateOf(*id))));
    }
    // The control socket carries messages of up to 4 MiB; a larger result is named instead.
    constexpr uint64_t kMaxInline = (4ULL << 20) - 4096;
    if (const uint64_t size = FileSize(**out); size > kMaxInline) {
      return Err(Status::ResourceExhausted(fmt::format(
          "workflow {}: stage {} output is {} bytes, more than augurctl result carries; it is "
          "in {}",
          *id, *which, size, **out)));
    }
    std::ifstream f(**out, std::ios::binary);
    if (!f) return Err(Status::IOError("cannot read " + **out));
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  Result<std::string> LocalHistory(const std::string& workflow, size_t limit) {
    auto h = store->History(workflow.empty() ? std::nullopt : std::optional<std::string>(workflow),
                            limit);
    if (!h) return Err(h.error());
    nlohmann::json arr = nlohmann::json::array();
    for (const HistoryRecord& r : *h) {
      arr.push_back({{"attempt", r.attempt_id},
                     {"workflow", r.workflow_id},
                     {"name", r.workflow_name},
                     {"stage", r.stage},
                     {"shard", r.shard_index},
                     {"range", {r.range_begin, r.range_end}},
                     {"state", AttemptStateName(r.state)},
                     {"exit_code", r.exit_code},
                     {"started_ns", r.started_ns},
                     {"wall_seconds", r.wall_seconds},
                     {"cpu_seconds", r.cpu_seconds},
                     {"peak_memory_bytes", r.peak_memory_bytes},
                     {"bytes_read", r.bytes_read},
                     {"bytes_written", r.bytes_written},
                     {"grant", r.grant.ToString()},
                     {"cost", r.cost},
                     {"host", r.host}});
    }
    return arr.dump(2);
  }
  Result<std::string> LocalQuery(QueryKind kind, const std::string& workflow,
                                 const std::string& stage, size_t limit) override {
    if (kind == QueryKind::kResult) return LocalOutput(workflow, stage);
    if (kind == QueryKind::kStatus) return LocalStatus(workflow, false);
    if (!engine->Resolve(workflow)) {
      return Err(Status::NotFound("no workflow " + workflow + " runs here"));
    }
    return LocalHistory(workflow, limit);
  }
  // Runs `local` on the engine thread; when `remote_wanted` says its answer means "not
  // here", asks the mesh (Replication::RemoteQuery) and waits for it a bounded time.
  Result<std::string> LocalOrRemote(std::function<Result<std::string>()> local,
                                    std::function<bool(const Result<std::string>&)> remote_wanted,
                                    QueryKind kind, const std::string& workflow,
                                    const std::string& stage, size_t limit, RemoteAnswer* remote) {
    auto answer = std::make_shared<std::promise<Result<RemoteAnswer>>>();
    std::future<Result<RemoteAnswer>> f = answer->get_future();
    {
      std::lock_guard<std::mutex> lock(mu);
      queue.push_back([this, answer, local, remote_wanted, kind, workflow, stage, limit] {
        auto r = local();
        if (replication != nullptr && !workflow.empty() && remote_wanted(r)) {
          replication->RemoteQuery(
              kind, workflow, stage, limit,
              [answer](Result<RemoteAnswer> a) { answer->set_value(std::move(a)); }, NowNs());
          return;
        }
        if (!r) return answer->set_value(Err(r.error()));
        RemoteAnswer here;
        here.body = std::move(*r);
        answer->set_value(std::move(here));
      });
    }
    cv.notify_all();
    if (f.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
      return Err(Status::Unavailable(fmt::format("'{}': no answer in 15 s", workflow)));
    }
    Result<RemoteAnswer> a = f.get();
    if (!a) return Err(a.error());
    if (remote != nullptr && !a->answered_by.empty()) *remote = *a;
    return std::move(a->body);
  }

  // ReplicationHost (replication.h).
  WorkflowStore& workflow_store() override { return *store; }
  const std::string& work_root() const override { return o.engine.work_root; }

  Result<std::string> LocalStatus(const std::string& workflow, bool explain) override {
    auto text = engine->StatusJson(workflow, explain);
    if (!text) return text;
    // Each workflow gets pre-warming's object (its own counts and the pool's), and with
    // replication the host that owns it: this one.
    nlohmann::json j = nlohmann::json::parse(*text);
    for (nlohmann::json& w : j) {
      w["prewarm"] = pool->Json(w.value("id", ""));
      if (replication != nullptr) w["owner"] = replication->self();
    }
    return j.dump(2);
  }

  Status Adopt(const AdoptedWorkflow& a, int64_t now) override {
    const std::string& id = a.workflow.id;
    if (engine->Has(id)) return Status::OK();  // it runs here already
    // Rows of an earlier time this host ran it (its own workflow, back after a restart):
    // attempts still running here, or under a lease on another host, for shards the log has
    // no result for are re-attached, as a restart without replication does; the others are
    // stopped, since the log decides what is done.
    std::vector<ShardRecord> shards = a.shards;
    std::vector<AttemptRecord> keep;
    if (auto old = store->Attempts(id)) {
      for (const AttemptRecord& r : *old) {
        if (r.state != AttemptState::kStarting && r.state != AttemptState::kRunning) continue;
        auto s = std::find_if(shards.begin(), shards.end(), [&](const ShardRecord& x) {
          return x.stage == r.stage && x.index == r.shard_index;
        });
        if (s != shards.end() && s->state != ShardState::kSucceeded &&
            (!r.invocation.empty() || !r.lease_id.empty())) {
          s->attempts = std::max(s->attempts, r.attempt);  // its number is not given again
          keep.push_back(r);
          continue;
        }
        plugin::Backend* b = backends(r.backend);
        if (b == nullptr) continue;
        if (!r.invocation.empty()) (void)b->Cancel(r.invocation);
        if (!r.instance.empty()) (void)b->Release(r.instance);
      }
    }
    AUGUR_RETURN_IF_ERROR(store->DeleteWorkflow(id));
    for (const auto& [path, bytes] : a.files) {
      std::error_code ec;
      fs::create_directories(fs::path(path).parent_path(), ec);
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(bytes.data(), std::streamsize(bytes.size()));
      f.flush();
      if (!f) return Status::IOError("cannot write " + path + " (disk full?)");
    }
    AUGUR_RETURN_IF_ERROR(store->Transaction([&]() -> Status {
      AUGUR_RETURN_IF_ERROR(store->PutWorkflow(a.workflow));
      for (const ShardRecord& s : shards) AUGUR_RETURN_IF_ERROR(store->PutShard(s));
      for (const AttemptRecord& r : keep) AUGUR_RETURN_IF_ERROR(store->PutAttempt(r));
      for (const auto& [stage, path] : a.stage_outputs) {
        AUGUR_RETURN_IF_ERROR(store->PutStageOutput(id, stage, path));
      }
      return Status::OK();
    }));
    std::vector<AttemptRecord> reattach;
    AUGUR_RETURN_IF_ERROR(engine->Restore(a.workflow, shards, keep, a.stage_outputs, &reattach));
    Reattach(reattach);
    replicated.erase(id);
    size_t done = 0;
    for (const ShardRecord& s : a.shards) done += s.state == ShardState::kSucceeded;
    spdlog::info("workflow {}: continued here: {} of {} shards done, {} stages merged, {} "
                 "attempts re-attached", id, done, a.shards.size(), a.stage_outputs.size(),
                 reattach.size());
    (void)now;
    return Persist();
  }

  void Release(const std::string& id, const std::string& owner, int64_t now) override {
    (void)Persist();  // what the engine decided for it so far is written (and replicated) first
    auto actions = engine->Drop(id, "another host (" + owner + ") owns the workflow now");
    if (actions) {
      for (const Action& a : *actions) {
        Act(a);
        placed_outputs.erase(a.attempt.attempt_id);
        if (auto s = starting.find(a.attempt.attempt_id); s != starting.end()) {
          s->second.dropped = true;
        }
      }
      spdlog::info("workflow {}: {} owns it now: this host stopped {} of its attempts", id, owner,
                   actions->size());
    }
    replicated.erase(id);
    if (Status st = store->DeleteWorkflow(id); !st.ok()) {
      spdlog::error("workflow {}: forgetting it here: {}", id, st.message());
    }
    (void)now;
  }

  // One retention batch when it is due: every tick while a backlog lasts, then once a
  // minute. A batch is at most kPruneBatch row deletions (a few milliseconds).
  void Prune(int64_t now) {
    const int64_t keep_ns = o.history_retention.count() * 1'000'000;
    if (keep_ns <= 0 || now < next_prune_ns) return;
    constexpr int64_t kIdle = 60LL * 1'000'000'000;
    const int64_t cutoff = now - keep_ns;
    auto r = store->PruneHistory(cutoff, kPruneBatch);
    if (!r) {
      spdlog::warn("workflow store: pruning history older than {}: {}",
                   yaml::FormatDuration(o.history_retention), r.error().message());
      next_prune_ns = now + kIdle;
      return;
    }
    demand.ForgetEventsBefore(cutoff);
    for (const std::string& id : r->workflow_ids) {
      // Its records are gone, so its outputs can no longer be asked for.
      if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos) continue;
      std::error_code ec;
      fs::remove_all(fs::path(o.engine.work_root) / id, ec);
      if (ec) {
        spdlog::warn("workflow {}: removing its outputs under {}: {}", id, o.engine.work_root,
                     ec.message());
      }
    }
    pruned.history_rows += r->history_rows;
    pruned.workflows += r->workflows;
    pruned.other_rows += r->other_rows;
    pruned.pages_released += r->pages_released;
    if (r->more) {
      next_prune_ns = now;  // the next tick goes on
      return;
    }
    if (pruned.history_rows + pruned.workflows + pruned.other_rows + pruned.pages_released > 0) {
      spdlog::info(
          "workflow store: pruned what was older than {}: {} history rows, {} "
          "workflows ({} more rows), {} pages given back",
          yaml::FormatDuration(o.history_retention), pruned.history_rows, pruned.workflows,
          pruned.other_rows, pruned.pages_released);
    }
    pruned = {};
    next_prune_ns = now + kIdle;
  }

  // What past runs took and when workflows were submitted, oldest first so that the newest
  // are the ones kept. Bounded: the newest kRestoreRows history rows, of which each profile
  // keeps only what its window holds; the submissions of the demand model's weeks.
  void Learn() {
    // (About 20-30 us per learned row: at most ~0.6 s of start-up.)
    constexpr size_t kRestoreRows = 20'000;
    auto h = store->History(std::nullopt, kRestoreRows);
    if (!h) {
      spdlog::warn("workflow store: reading history to learn from: {}", h.error().message());
    } else {
      std::map<std::string, size_t> per;  // rows taken per "name/stage", newest first
      std::vector<const HistoryRecord*> take;
      for (const HistoryRecord& r : *h) {
        // A few more than the window, for the OOM floors among them.
        if (++per[r.workflow_name + "/" + r.stage] <=
            engine->profiles().options().max_samples + 16) {
          take.push_back(&r);
        }
      }
      for (auto it = take.rbegin(); it != take.rend(); ++it) {
        engine->Learn(**it);
      }
    }
    const int64_t now = NowNs();
    if (auto ev = store->Events("")) {
      for (const EventRecord& e : *ev) (void)demand.AddEvent(e);
    }
    constexpr int64_t kDemandWindow = 8LL * 7 * 86'400 * 1'000'000'000;  // eight weeks
    if (auto subs = store->Submissions(now - kDemandWindow)) {
      for (auto it = subs->rbegin(); it != subs->rend(); ++it) {  // oldest first
        demand.Submitted(it->name, it->submitted_ns);
      }
    } else {
      spdlog::warn("workflow store: reading submissions to learn from: {}", subs.error().message());
    }
  }

  // Attempts Engine::Restore gave back (they were running when the agent stopped): each
  // is polled again through its backend, or, placed on another host, its lease is taken up
  // again through the placer; one that cannot be ends kLost and its shard runs again.
  void Reattach(const std::vector<AttemptRecord>& reattach) {
    for (const AttemptRecord& a : reattach) {
      AttemptOutcome lost;
      lost.state = AttemptState::kLost;
      if (engine->IsRemote(a.attempt_id)) {
        if (placer != nullptr && placer->Resume(a, NowNs())) {
          placed_outputs[a.attempt_id] = a.output_path;
          continue;
        }
        lost.error = "the agent restarted and the lease on " +
                     (a.host.empty() ? std::string("another host") : a.host) +
                     " could not be taken up again";
        engine->AttemptEnded(a.attempt_id, lost, NowNs());
        continue;
      }
      if (a.invocation.empty()) {
        // It never started (or we never learned its handle): run it again.
        lost.error = "the agent stopped before the task started";
        if (plugin::Backend* b = backends(a.backend); b != nullptr && !a.instance.empty()) {
          (void)b->Release(a.instance);
        }
        engine->AttemptEnded(a.attempt_id, lost, NowNs());
        continue;
      }
      tasks[a.attempt_id] = {a.backend, a.instance, a.invocation, a.output_path, a.attempt_id,
                             a.workflow_id, a.stage, ""};
    }
  }

  Status Restore() {
    Learn();
    auto ws = store->Workflows(/*running_only=*/true);
    if (!ws) return ws.error();
    for (const WorkflowRecord& w : *ws) {
      if (replicated.contains(w.id)) {
        // Replicated: it continues here through Adopt if this host owns it.
        spdlog::info("workflow {}: waiting to learn whether this host still owns it", w.id);
        continue;
      }
      ScopedLogFields fields({w.id, "", ""});
      auto shards = store->Shards(w.id);
      auto attempts = store->Attempts(w.id);
      if (!shards || !attempts) return !shards ? shards.error() : attempts.error();
      std::set<std::string> stages;
      for (const ShardRecord& s : *shards) stages.insert(s.stage);
      std::map<std::string, std::string> outputs;
      for (const std::string& stage : stages) {
        auto out = store->StageOutput(w.id, stage);
        if (out && *out) outputs[stage] = **out;
      }
      std::vector<AttemptRecord> reattach;
      if (Status st = engine->Restore(w, *shards, *attempts, outputs, &reattach); !st.ok()) {
        spdlog::error("workflow {}: cannot restore: {}", w.id, st.message());
        continue;
      }
      Reattach(reattach);
      spdlog::info("workflow {}: restored, {} attempts re-attached", w.id, reattach.size());
    }
    // Leases granted to other hosts' shards before the restart, with their tasks.
    if (placer != nullptr) placer->Recover(NowNs());
    // Warm instances an attempt took before the restart are that attempt's; the others were
    // never used and go.
    std::set<std::string> in_use;
    for (const auto& [key, t] : tasks) in_use.insert(t.instance);
    pool->Restore(in_use);
    return Persist();
  }
};

Executor::Executor(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Executor::~Executor() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<Executor>> Executor::Start(ExecutorOptions options, BackendLookup backends,
                                                  ForecastFree forecast) {
  if (Status st = CheckHostName(options.host_name); !st.ok()) return Err(st);
  auto impl = std::make_unique<Impl>();
  impl->o = std::move(options);
  if (impl->o.engine.work_root.empty()) impl->o.engine.work_root = impl->o.state_dir + "/work";
  impl->backends = std::move(backends);
  impl->forecast = std::move(forecast);
  auto store = WorkflowStore::Open(impl->o.state_dir + "/workflows.db");
  if (!store) return Err(store.error());
  impl->store = std::move(*store);
  impl->o.engine.profile = impl->o.profile;
  impl->o.engine.host_name = impl->o.host_name;
  impl->engine = std::make_unique<Engine>(impl->o.engine);
  WarmPoolOptions& po = impl->o.prewarm;
  if (po.scratch_dir.empty()) po.scratch_dir = impl->o.state_dir + "/prewarm";
  if (po.capacity == Resources{}) po.capacity = impl->o.engine.capacity;
  if (po.keep_free == Resources{}) po.keep_free = kMergeReserve + kMergeReserve;
  impl->pool = std::make_unique<WarmPool>(po, impl->backends, impl->store.get());
  impl->RefreshCosts();  // re-attached attempts are charged at their backend's class
  impl->demand = DemandModel(impl->o.demand);
  impl->placer = impl->o.placer.get();
  if (impl->placer != nullptr) impl->placer->Bind(impl.get());
  impl->replication = impl->o.replication.get();
  if (impl->replication != nullptr) {
    auto held = impl->replication->Bind(impl.get(), NowNs());
    if (!held) return Err(held.error());
    impl->replicated = std::move(*held);
  }
  if (Status st = impl->Restore(); !st.ok()) return Err(st);
  Impl* raw = impl.get();
  impl->starts = std::make_unique<StartPool>(impl->o.start_threads, [raw](StartDone d) {
    {
      std::lock_guard<std::mutex> lock(raw->mu);
      raw->started.push_back(std::move(d));
    }
    raw->cv.notify_all();
  });
  impl->thread = std::thread([raw] { raw->Loop(); });
  return std::unique_ptr<Executor>(new Executor(std::move(impl)));
}

Result<std::string> Executor::Submit(const std::string& yaml, const std::string& origin) {
  auto spec = ParseWorkflow(yaml, origin);
  if (!spec) return Err(spec.error());
  return impl_->Post<Result<std::string>>([&]() -> Result<std::string> {
    const int64_t now = NowNs();
    auto id = impl_->engine->Submit(*spec, yaml, origin, now);
    if (id) {
      impl_->demand.Submitted(spec->name, now);
      impl_->pool->Submitted(*id, *spec, now);
      (void)impl_->Persist();
      ScopedLogFields fields({*id, "", ""});
      spdlog::info("workflow {} submitted from {}", *id, origin);
    }
    return id;
  });
}

Result<std::string> Executor::StatusJson(const std::string& workflow, bool explain) {
  // The answer may come later, from another host (Replication::RemoteStatus): the engine
  // thread fulfils the promise, this thread waits for it a bounded time.
  auto answer = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> f = answer->get_future();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back([impl = impl_.get(), answer, workflow, explain] {
      auto text = impl->LocalStatus(workflow, explain);
      if (!text && text.error().IsNotFound() && !workflow.empty() && impl->replication != nullptr) {
        impl->replication->RemoteStatus(
            workflow, explain, [answer](Result<std::string> r) { answer->set_value(std::move(r)); },
            NowNs());
        return;
      }
      answer->set_value(std::move(text));
    });
  }
  impl_->cv.notify_all();
  if (f.wait_for(std::chrono::seconds(15)) != std::future_status::ready) {
    return Err(Status::Unavailable(fmt::format("status of '{}': no answer in 15 s", workflow)));
  }
  return f.get();
}

PrewarmStats Executor::prewarm_stats() const { return impl_->pool->stats(); }

void Executor::OnMeshMessage(const std::string& from, uint32_t channel, std::string payload) {
  Impl* impl = impl_.get();
  // What the placer acts on where it is received is not queued (Placer::OnReceipt); the
  // engine thread takes up what it left, before other queued work.
  const bool replicated = impl->replication != nullptr && impl->replication->Handles(channel);
  if (!replicated && impl->placer != nullptr &&
      impl->placer->OnReceipt(from, channel, payload, NowNs())) {
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->prompt.push_back([impl] { impl->placer->TakeUpReceipts(NowNs()); });
    }
    impl->cv.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(impl->mu);
    const bool prompt = impl->placer != nullptr && impl->placer->Prompt(channel);
    (prompt ? impl->prompt : impl->queue)
        .push_back([impl, from, channel, replicated, p = std::move(payload), received = NowNs()] {
          if (replicated) {
            impl->replication->OnMessage(from, channel, p, NowNs());
          } else if (impl->placer != nullptr) {
            impl->placer->OnMessage(from, channel, p, NowNs(), received);
          }
        });
  }
  impl->cv.notify_all();
}

void Executor::OnPeerDown(const std::string& host) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back([impl = impl_.get(), host] {
      if (impl->placer != nullptr) impl->placer->PeerDown(host, NowNs());
    });
  }
  impl_->cv.notify_all();
}

std::string Executor::MeshStatsJson() {
  return impl_->Post<std::string>(
      [&] { return impl_->placer != nullptr ? impl_->placer->StatsJson() : std::string("{}"); });
}

Result<std::string> Executor::Output(const std::string& workflow, const std::string& stage,
                                     RemoteAnswer* remote) {
  return impl_->LocalOrRemote(
      [=, this] { return impl_->LocalOutput(workflow, stage); },
      [](const Result<std::string>& r) { return !r && r.error().IsNotFound(); }, QueryKind::kResult,
      workflow, stage, 0, remote);
}

Status Executor::Cancel(const std::string& workflow) {
  return impl_->Post<Status>([&] {
    Status st = impl_->engine->Cancel(workflow, NowNs());
    (void)impl_->Persist();
    return st;
  });
}

Status Executor::Boost(const std::string& workflow, double points, milliseconds duration) {
  return impl_->Post<Status>([&] {
    const int64_t until = duration.count() > 0 ? NowNs() + duration.count() * 1'000'000 : 0;
    Status st = impl_->engine->Boost(workflow, points, until);
    (void)impl_->Persist();
    return st;
  });
}

void Executor::Anomaly(const std::string& series, const std::string& cgroup) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.push_back([impl = impl_.get(), series, cgroup] {
      const int64_t now = NowNs();
      if (!cgroup.empty()) {
        for (const auto& [key, t] : impl->tasks) {
          // The process backend's instance is the cgroup <parent>/<handle>.
          if (t.attempt_id.empty() || !cgroup.ends_with("/" + t.instance)) continue;
          if (auto e = impl->engine->ShardAnomaly(t.attempt_id, series, now)) {
            spdlog::warn("workflow {}: {}", t.workflow_id, *e);
            return;
          }
        }
      }
      spdlog::warn("{}", impl->engine->HostAnomaly(
                             cgroup.empty() ? series : series + "{cgroup=" + cgroup + "}", now));
    });
  }
  impl_->cv.notify_all();
}

Result<std::string> Executor::HistoryJson(const std::string& workflow, size_t limit,
                                          RemoteAnswer* remote) {
  // A workflow this host neither runs nor ran (no rows): its owner's history.
  return impl_->LocalOrRemote([=, this] { return impl_->LocalHistory(workflow, limit); },
                              [=, this](const Result<std::string>& r) {
                                return !workflow.empty() && r && *r == "[]" &&
                                       !impl_->engine->Resolve(workflow);
                              },
                              QueryKind::kHistory, workflow, "", limit, remote);
}

namespace {

nlohmann::json EstimateJson(const Estimate& e) {
  return {{"source", e.source},
          {"value", e.value},
          {"lo", e.lo},
          {"hi", e.hi},
          {"samples", e.samples},
          {"size_model", SizeModelName(e.size_model)},
          {"exponent", e.exponent}};
}

nlohmann::json EventJson(const EventRecord& e) {
  return {{"name", e.name},
          {"workflow", e.workflow},
          {"expected", e.expected},
          {"at_ns", e.at_ns},
          {"created_ns", e.created_ns}};
}

}  // namespace

Result<std::string> Executor::ProfileJson(const std::string& workflow, const std::string& stage) {
  return impl_->Post<Result<std::string>>([&]() -> Result<std::string> {
    Impl& d = *impl_;
    const int64_t now = NowNs();
    // By name; else the name of a workflow id.
    std::string name = workflow;
    auto latest = d.store->LatestNamed(name);
    if (!latest) return Err(latest.error());
    std::optional<WorkflowRecord> rec = *latest;
    if (!rec && d.engine->profiles().Stages(name).empty()) {
      auto by_id = d.store->GetWorkflow(workflow);
      if (!by_id) return Err(by_id.error());
      if (*by_id) {
        name = (*by_id)->name;
        auto l = d.store->LatestNamed(name);
        if (!l) return Err(l.error());
        rec = *l;
      }
    }
    const DemandForecast next = d.demand.NextHour(name, now);
    const std::vector<EventRecord> upcoming = d.demand.Events(name, now);
    if (!rec && d.engine->profiles().Stages(name).empty() && next.hours_seen == 0 && next.model == "none" &&
        upcoming.empty()) {
      return Err(Status::NotFound(fmt::format(
          "no workflow named '{}' (or with that id) has run here (augurctl history lists what "
          "has)",
          workflow)));
    }
    // The stages: as the newest file of this name declares them, then any learned stage it
    // no longer has.
    std::optional<WorkflowSpec> spec;
    if (rec) {
      if (auto sp = ParseWorkflow(rec->spec_yaml, rec->origin)) spec = std::move(*sp);
    }
    std::vector<std::string> stages;
    if (spec) {
      for (const StageSpec& st : spec->stages) stages.push_back(st.name);
    }
    for (const std::string& st : d.engine->profiles().Stages(name)) {
      if (std::find(stages.begin(), stages.end(), st) == stages.end()) stages.push_back(st);
    }
    if (!stage.empty()) {
      if (std::find(stages.begin(), stages.end(), stage) == stages.end()) {
        std::string known;
        for (const std::string& st : stages) known += (known.empty() ? "" : ", ") + st;
        return Err(Status::NotFound(fmt::format("workflow {} has no stage '{}' (stages: {})", name,
                                                stage, known.empty() ? "none" : known)));
      }
      stages = {stage};
    }
    const ProfileOptions& po = d.engine->profiles().options();
    nlohmann::json out_stages = nlohmann::json::array();
    for (const std::string& st : stages) {
      const StageSpec* declared = nullptr;
      if (spec) {
        if (int i = spec->StageIndex(st); i >= 0) declared = &spec->stages[size_t(i)];
      }
      std::optional<ProfileView> v = d.engine->profiles().View(name, st);
      nlohmann::json j = {{"stage", st},
                          {"samples", v ? v->samples : 0},
                          {"learned", v ? v->learned : 0},
                          {"ooms", v ? v->ooms : 0}};
      j["units"] = v && v->units_max > 0 ? nlohmann::json{{"min", v->units_min},
                                                          {"max", v->units_max},
                                                          {"typical", v->units_typical}}
                                         : nlohmann::json(nullptr);
      j["memory_floor"] =
          v && v->memory_floor ? nlohmann::json(*v->memory_floor) : nlohmann::json(nullptr);
      if (declared != nullptr) {
        j["declared"] = {
            {"expected_seconds", declared->expected
                                     ? nlohmann::json(double(declared->expected->count()) / 1000)
                                     : nlohmann::json(nullptr)},
            {"cpu", declared->want.cpu},
            {"memory", declared->want.memory}};
      } else {
        j["declared"] = nullptr;
      }
      nlohmann::json q = nlohmann::json::object();
      for (Quantity k : kAllQuantities) {
        nlohmann::json e;
        const QuantityView* qv = v ? &v->quantities[size_t(k)] : nullptr;
        if (qv != nullptr && qv->typical) {
          e = EstimateJson(*qv->typical);
          e["observed_coverage"] = qv->observed_coverage;
          e["checked"] = qv->checked;
        } else if (k == Quantity::kWall) {
          // The fallbacks the engine uses, named.
          if (declared != nullptr && declared->expected) {
            e = {{"source", "expected"}, {"value", double(declared->expected->count()) / 1000}};
          } else {
            e = {{"source", "default"}, {"value", d.o.engine.default_expected_s}};
          }
        } else if (k == Quantity::kMemory && declared != nullptr) {
          e = {{"source", "declared"}, {"value", declared->want.memory}};
        } else {
          e = {{"source", "none"}};
        }
        q[std::string(QuantityName(k))] = std::move(e);
      }
      j["source"] = q["wall_seconds"]["source"];
      j["quantities"] = std::move(q);
      out_stages.push_back(std::move(j));
    }
    nlohmann::json events = nlohmann::json::array();
    for (const EventRecord& e : next.events) events.push_back(EventJson(e));
    nlohmann::json up = nlohmann::json::array();
    for (const EventRecord& e : upcoming) up.push_back(EventJson(e));
    nlohmann::json startup = nlohmann::json::array();
    for (const std::string& b : d.engine->profiles().Backends()) {
      if (auto e = d.engine->profiles().PredictStartup(b)) {
        nlohmann::json j = EstimateJson(*e);
        j["backend"] = b;
        startup.push_back(std::move(j));
      }
    }
    nlohmann::json j = {{"workflow", name},
                        {"now_ns", now},
                        {"min_samples", po.min_samples},
                        {"coverage", po.coverage},
                        {"stages", std::move(out_stages)},
                        {"demand",
                         {{"from_ns", next.from_ns},
                          {"to_ns", next.to_ns},
                          {"expected", next.expected},
                          {"lo", next.lo},
                          {"hi", next.hi},
                          {"baseline", next.baseline},
                          {"from_events", next.from_events},
                          {"hours_seen", next.hours_seen},
                          {"model", next.model},
                          {"events", std::move(events)}}},
                        {"upcoming_events", std::move(up)},
                        {"startup", std::move(startup)}};
    return j.dump(2);
  });
}

Status Executor::AddEvent(const std::string& name, const std::string& workflow, double expected,
                          int64_t at_ns) {
  if (!IsWorkflowName(name)) {
    return Status::InvalidArgument(
        fmt::format("event name '{}': expected 1-64 characters from A-Z a-z 0-9 _ - .", name));
  }
  if (!IsWorkflowName(workflow)) {
    return Status::InvalidArgument(fmt::format(
        "event {}: workflow '{}' is not a workflow name (1-64 characters from A-Z a-z 0-9 _ - .)",
        name, workflow));
  }
  if (!std::isfinite(expected) || expected < 1 || expected > 1e6) {
    return Status::InvalidArgument(
        fmt::format("event {}: the expected number of submissions must be in 1..1000000, got {}",
                    name, expected));
  }
  return impl_->Post<Status>([&]() -> Status {
    const int64_t now = NowNs();
    constexpr int64_t kHourNs = 3600LL * 1'000'000'000;
    if (at_ns < now - kHourNs) {
      return Status::InvalidArgument(fmt::format("event {}: its time is {:.0f} minutes in the past",
                                                 name, double(now - at_ns) / 60e9));
    }
    if (at_ns > now + 366 * 24 * kHourNs) {
      return Status::InvalidArgument(
          fmt::format("event {}: its time is more than 366 days ahead", name));
    }
    EventRecord e{name, workflow, expected, at_ns, now};
    AUGUR_RETURN_IF_ERROR(impl_->store->PutEvent(e));
    AUGUR_RETURN_IF_ERROR(impl_->demand.AddEvent(e));
    spdlog::info("event {}: {:g} submissions of {} expected in {:.0f} s", name, expected, workflow,
                 double(at_ns - now) / 1e9);
    return Status::OK();
  });
}

Result<std::string> Executor::EventsJson(const std::string& workflow) {
  return impl_->Post<Result<std::string>>([&]() -> Result<std::string> {
    auto ev = impl_->store->Events(workflow);
    if (!ev) return Err(ev.error());
    nlohmann::json arr = nlohmann::json::array();
    for (const EventRecord& e : *ev) arr.push_back(EventJson(e));
    return arr.dump(2);
  });
}

}  // namespace augur::workflow
