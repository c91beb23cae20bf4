#include "agent/daemon.h"

#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <string.h>

#include "agent/control_server.h"
#include "agent/control_service.h"
#include "agent/forecast_runner.h"
#include "agent/anomaly_watch.h"
#include "agent/host_headroom.h"
#include "agent/mesh_headroom.h"
#include "agent/metrics_server.h"
#include "agent/prometheus_text.h"
#include "agent/systemd_notify.h"
#include "mesh/headroom_summary.h"
#include "mesh/keys.h"
#include "mesh/mesh_link.h"
#include "mesh/mesh_placer.h"
#include "mesh/node.h"
#include "mesh/workflow_replication.h"
#include "plugin/plugin_manager.h"
#include "workflow/executor.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/cgroup_fs.h"
#include "telemetry/collector.h"
#include "telemetry/procfs_collectors.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

using telemetry::Collector;
using telemetry::SeriesKey;

// Set by the signal handlers (async-signal-safe: lock-free atomic stores); Run() acts on
// them within 100 ms, on its own thread.
std::atomic<int> g_stop_signal{0};
std::atomic<int> g_reload_requests{0};  // SIGHUP
std::atomic<int> g_status_requests{0};  // SIGUSR1
std::atomic<int> g_ignored_signal{0};   // SIGUSR2: logged, nothing else
// The writer a fatal-signal handler marks stale before the process dies.
std::atomic<telemetry::ShmWriter*> g_crash_writer{nullptr};

static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<telemetry::ShmWriter*>::is_always_lock_free);

// Signals whose default action would end the agent silently. Each now stops it cleanly,
// logging which one it was. SIGRTMIN and SIGRTMIN+1 are glibc's own and left alone.
constexpr int kStopSignals[] = {SIGINT,  SIGTERM, SIGQUIT, SIGALRM, SIGVTALRM,
                                SIGPROF, SIGXCPU, SIGSTKFLT, SIGPWR, SIGIO};
// Signals that mean the agent itself is broken: logged and the segment marked stale (so
// readers do not wait for the heartbeat to learn it), then the default action (a core).
constexpr int kCrashSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGSYS, SIGTRAP};

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  if (abbrev != nullptr) return std::string("SIG") + abbrev;
  if (sig >= SIGRTMIN && sig <= SIGRTMAX) return fmt::format("SIGRTMIN+{}", sig - SIGRTMIN);
  return fmt::format("signal {}", sig);
}

void OnFatalSignal(int sig) {
  // Only async-signal-safe calls: write(2), atomic stores, raise().
  char line[96];
  const char* abbrev = ::sigabbrev_np(sig);
  int n = 0;
  const char prefix[] = "augurd: fatal signal SIG";
  for (const char* p = prefix; *p != '\0'; ++p) line[n++] = *p;
  for (const char* p = abbrev != nullptr ? abbrev : "?"; *p != '\0' && n < 40; ++p) line[n++] = *p;
  const char suffix[] = ", segment marked stale\n";
  for (const char* p = suffix; *p != '\0'; ++p) line[n++] = *p;
  (void)!::write(STDERR_FILENO, line, static_cast<size_t>(n));
  if (telemetry::ShmWriter* w = g_crash_writer.load(std::memory_order_relaxed)) {
    w->MarkStaleFromSignalHandler();
  }
  // SA_RESETHAND restored the default action; raising again ends the process with it.
  ::raise(sig);
}

void InstallSignalHandlers() {
  // Handlers, not a blocked mask plus sigwait: libraries start threads before main()
  // (OpenBLAS under dlib does), and a process-directed signal landing on one of those with
  // the default action would kill the agent without its clean stop. The handlers only
  // record the signal; Run() notices within 100 ms whichever thread took it.
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = [](int sig) { g_stop_signal.store(sig, std::memory_order_relaxed); };
  for (int sig : kStopSignals) sigaction(sig, &sa, nullptr);
  for (int sig = SIGRTMIN + 2; sig <= SIGRTMAX; ++sig) sigaction(sig, &sa, nullptr);
  sa.sa_handler = [](int) { g_reload_requests.fetch_add(1, std::memory_order_relaxed); };
  sigaction(SIGHUP, &sa, nullptr);
  sa.sa_handler = [](int) { g_status_requests.fetch_add(1, std::memory_order_relaxed); };
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_handler = [](int sig) { g_ignored_signal.store(sig, std::memory_order_relaxed); };
  sigaction(SIGUSR2, &sa, nullptr);
  // A scraper or a control client that hangs up mid-write must cost an EPIPE, not the agent;
  // a file over RLIMIT_FSIZE an EFBIG.
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
  sigaction(SIGXFSZ, &sa, nullptr);
  struct sigaction crash {};
  sigemptyset(&crash.sa_mask);
  crash.sa_handler = OnFatalSignal;
  crash.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : kCrashSignals) sigaction(sig, &crash, nullptr);
}

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Writes collector points into the store. When an eBPF collector covers a metric family,
// the procfs points of that family are dropped so each family has one source (the `source`
// label says which). derived() writes the forecaster's derived series into the same store,
// with rings of their own size; one pair of counters covers both.
class StoreSink : public telemetry::PointSink {
 public:
  // New derived series get rings of `derived_capacity` points (0: the store's).
  StoreSink(telemetry::ShmWriter& writer, uint32_t derived_capacity)
      : writer_(writer), derived_(*this, derived_capacity) {}

  // Every point written is also offered to the forecaster (which picks what it forecasts).
  void SetForecaster(ForecastRunner* forecaster) { forecaster_ = forecaster; }
  // Forecasts (derived points) are also offered to the workflow engine's headroom.
  void SetHeadroom(HostHeadroom* headroom) { headroom_ = headroom; }
  // And to the watch that turns anomaly counters into events for the engine.
  void SetAnomalyWatch(AnomalyWatch* watch) { anomalies_ = watch; }

  void Emit(const SeriesKey& key, int64_t ts_ns, double value) override {
    if (!covered_.empty() && covered_.contains(key.name()) && key.label("source") == "procfs") {
      return;
    }
    if (Store(key, ts_ns, value, 0) && forecaster_ != nullptr) {
      forecaster_->Observe(key, ts_ns, value);
    }
  }

  // The sink for derived series; not offered to the forecaster (which never forecasts
  // them again).
  telemetry::PointSink& derived() { return derived_; }

  void Cover(const std::string& family) { covered_.insert(family); }
  uint64_t written() const { return written_; }
  uint64_t dropped() const { return dropped_; }

 private:
  struct DerivedSink : telemetry::PointSink {
    DerivedSink(StoreSink& o, uint32_t c) : owner(o), capacity(c) {}
    void Emit(const SeriesKey& key, int64_t ts_ns, double value) override {
      owner.Store(key, ts_ns, value, capacity);
      if (owner.headroom_ != nullptr) owner.headroom_->Observe(key, value);
      if (owner.anomalies_ != nullptr) owner.anomalies_->Observe(key, value);
    }
    StoreSink& owner;
    const uint32_t capacity;
  };

  // Appends the point, adding the series with a ring of `capacity` (0: the store's) if it
  // is new. False when the store could not take the series.
  bool Store(const SeriesKey& key, int64_t ts_ns, double value, uint32_t capacity) {
    auto id = writer_.Resolve(key, capacity);
    if (!id) {
      ++dropped_;
      if (!warned_full_) {
        // Said once: the directory stays full until the agent restarts with more slots.
        spdlog::warn("series {} not stored: {} (raise telemetry.max_series)", key.ToString(),
                     id.error().message());
        warned_full_ = true;
      }
      return false;
    }
    writer_.Append(*id, ts_ns, value);
    ++written_;
    return true;
  }

  telemetry::ShmWriter& writer_;
  DerivedSink derived_;
  ForecastRunner* forecaster_ = nullptr;
  HostHeadroom* headroom_ = nullptr;
  AnomalyWatch* anomalies_ = nullptr;
  std::unordered_set<std::string> covered_;
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  bool warned_full_ = false;
};

// The eBPF collectors and the metric families each one takes over from procfs.
struct BpfSpec {
  const char* name;
  Result<std::unique_ptr<Collector>> (*make)(const telemetry::BpfOptions&,
                                             const telemetry::CgroupFs&);
  const char* families[4];
  const char* families_text;
  // A procfs collector whose families this one covers entirely, so it need not run at all.
  // None does today: procfs_schedstat also gives runqueue_wait_seconds_total, which no eBPF
  // collector replaces (its runqueue_latency_seconds points are dropped as covered).
  const char* replaces;
};
constexpr BpfSpec kBpfSpecs[] = {
    {"cpu", &telemetry::MakeBpfCpuCollector,
     {"cpu_busy_seconds_total", "cgroup_cpu_seconds_total", "runqueue_latency_seconds", nullptr},
     "cpu_busy_seconds_total, cgroup_cpu_seconds_total, runqueue_latency_seconds", nullptr},
    {"blockio",
     [](const telemetry::BpfOptions& o, const telemetry::CgroupFs&) {
       return telemetry::MakeBpfBlockIoCollector(o);
     },
     {"disk_ios_total", "disk_io_bytes_total", "disk_io_latency_seconds", nullptr},
     "disk_ios_total, disk_io_bytes_total, disk_io_latency_seconds", nullptr},
    {"tcp", &telemetry::MakeBpfTcpCollector,
     {"tcp_retransmits_total", nullptr, nullptr, nullptr},
     "tcp_retransmits_total (per-cgroup tcp_bytes_total has no procfs source)", nullptr},
};

struct CollectorSlot {
  std::unique_ptr<Collector> collector;
  std::string source;  // "bpf" or "procfs"
  uint64_t errors = 0;
  int64_t last_error_log_ns = 0;
  double last_duration_s = 0;
  double total_duration_s = 0;
};

// The agent's own process cost, from the kernel's accounting of this process.
struct SelfUsage {
  double cpu_seconds = 0;
  double rss_bytes = 0;
};

SelfUsage ReadSelfUsage() {
  SelfUsage u;
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
    u.cpu_seconds = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  }
  std::ifstream statm("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  if (statm >> size >> resident) u.rss_bytes = double(resident) * sysconf(_SC_PAGESIZE);
  return u;
}

}  // namespace

// The executor's placer reaches the mesh through this: sends go out on the engine thread
// (MeshNode::Send), the view is membership's with decoded headroom, shared until it changes.
class NodeLink : public mesh::MeshLink {
 public:
  explicit NodeLink(mesh::MeshNode* node) : node_(node) {}
  const std::string& self() const override { return node_->name(); }
  Status Send(const std::string& host, mesh::Channel ch, std::string payload) override {
    node_->Send(host, ch, std::move(payload));
    return Status::OK();
  }
  mesh::PeerView Peers() const override { return node_->PlacementView(); }

 private:
  mesh::MeshNode* node_;
};

struct Daemon::Impl {
  DaemonOptions options;
  std::unique_ptr<telemetry::ShmWriter> writer;
  std::unique_ptr<StoreSink> sink;
  std::vector<CollectorSlot> collectors;
  std::unique_ptr<MetricsServer> metrics;
  std::unique_ptr<plugin::PluginManager> plugins;  // null when plugins.enabled is empty
  std::unique_ptr<ForecastRunner> forecaster;
  // The workflow engine (workflows.enabled with the process backend); null otherwise.
  std::unique_ptr<HostHeadroom> headroom;
  std::unique_ptr<workflow::Executor> executor;
  // The forecaster's anomaly events, for the engine (with forecasting and the engine on).
  std::unique_ptr<AnomalyWatch> anomalies;
  std::string workflows_off;  // why the engine is off, for control replies
  std::unique_ptr<ControlServer> control;
  // The peer mesh (mesh.enabled), and the thread that refreshes the headroom it gossips.
  std::unique_ptr<mesh::MeshNode> mesh;
  // How the executor's placer reaches the mesh (NodeLink, below), and how the mesh thread
  // reaches the executor: through `bridge`, cut before the executor goes.
  std::unique_ptr<mesh::MeshLink> mesh_link;
  struct Bridge {
    std::mutex mu;
    workflow::Executor* executor = nullptr;  // guarded by mu
  };
  std::shared_ptr<Bridge> bridge = std::make_shared<Bridge>();
  // Replication of workflows and failover (with the mesh and the engine): also the executor's.
  std::shared_ptr<mesh::WorkflowReplication> replication;
  // The executor's placer (with the mesh and the engine), for its transfer counters.
  std::shared_ptr<mesh::MeshPlacer> placer;
  std::thread mesh_publisher;
  std::mutex publisher_mu;
  std::condition_variable publisher_cv;
  bool publisher_stop = false;  // guarded by publisher_mu
  std::atomic<bool> stop{false};
  uint64_t samples = 0;
  // The configuration running now (options.config, updated by reloads).
  Config running;

  // SIGHUP: re-reads options.config_path and applies what can change while running.
  void Reload();
  // SIGUSR1: one log line on how the agent is doing.
  void LogStatus() const;
  // The workflow engine, when workflows.enabled and the process backend runs (else
  // workflows_off says why), and the control socket that reaches it.
  Status StartWorkflows();
  Status StartControl();
  // A start that fails after the mesh is up ends here, not in ~Daemon: the engine (whose
  // placer sends through the mesh) goes first, then the mesh and its publisher thread.
  ~Impl() {
    {
      std::lock_guard lock(bridge->mu);
      bridge->executor = nullptr;
    }
    executor.reset();
    StopMesh();
  }
  // The mesh node and its headroom publisher, when mesh.enabled.
  Status StartMesh();
  // The forecast of free room (with forecasting on; else null), made once for the engine's
  // admission and the mesh's headroom gossip.
  HostHeadroom* EnsureHeadroom() {
    if (!forecaster) return nullptr;
    if (!headroom) {
      headroom = std::make_unique<HostHeadroom>(double(sysconf(_SC_NPROCESSORS_ONLN)),
                                                options.config.forecast.step.count() / 1000.0);
      sink->SetHeadroom(headroom.get());
    }
    return headroom.get();
  }
  void PublishHeadroom(std::string* last);
  void StopMesh();
};

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
  g_crash_writer.store(nullptr);
  if (impl_->metrics) impl_->metrics->Stop();
  if (impl_->control) impl_->control->Stop();  // no request reaches the engine after this
  {
    std::lock_guard lock(impl_->bridge->mu);  // no mesh message reaches the engine after this
    impl_->bridge->executor = nullptr;
  }
  impl_->executor.reset();  // before the backends: its thread calls them; tasks keep running
  impl_->StopMesh();  // leaves the mesh gracefully; after the executor, whose placer sends
  impl_->plugins.reset();  // hosts destroy() their plugins; instances stay for the next agent
  impl_->collectors.clear();  // detaches eBPF links before the segment goes stale
  impl_->forecaster.reset();  // saves what it learned
  if (impl_->writer) impl_->writer->Close();
}

// The workflow engine runs shards on the backends; without the process backend (its merge
// commands run there too) it stays off, said once.
Status Daemon::Impl::StartWorkflows() {
  const workflow::WorkflowsConfig& wc = options.config.workflows;
  if (!wc.enabled) {
    workflows_off = "workflows.enabled is false";
    return Status::OK();
  }
  plugin::Backend* process = plugins ? plugins->Find("process") : nullptr;
  if (process == nullptr) {
    workflows_off = "it needs the process backend (plugins.enabled: [process])";
    spdlog::info("workflow engine off: {}", workflows_off);
    return Status::OK();
  }
  workflow::ExecutorOptions eo;
  eo.state_dir = wc.state_dir;
  eo.max_output_bytes = wc.max_output;
  // What all shards may hold at once: the process backend's capacity, capped by
  // workflows.max_cpu / max_memory.
  auto info = process->Describe();
  if (info) {
    eo.engine.capacity = {info->capacity.cpu_cores, info->capacity.memory_bytes};
  } else {
    eo.engine.capacity = {double(sysconf(_SC_NPROCESSORS_ONLN)),
                          uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE))};
    spdlog::warn("workflow engine: process backend's describe failed ({}); using the host's {}",
                 info.error().message(), eo.engine.capacity.ToString());
  }
  // Room for two merge commands at once, which run outside the ledger.
  eo.engine.capacity -= workflow::kMergeReserve + workflow::kMergeReserve;
  if (wc.max_cpu > 0) eo.engine.capacity.cpu = std::min(eo.engine.capacity.cpu, wc.max_cpu);
  if (wc.max_memory > 0) {
    eo.engine.capacity.memory = std::min(eo.engine.capacity.memory, wc.max_memory);
  }
  eo.history_retention = wc.history_retention;
  eo.start_threads = wc.start_threads;
  // Submissions are counted per hour of the host's local day.
  {
    const time_t t = time(nullptr);
    struct tm local {};
    if (localtime_r(&t, &local) != nullptr) eo.demand.utc_offset_s = local.tm_gmtoff;
  }
  eo.engine.ledger.allow_preemption = wc.preemption;
  eo.backends = options.config.plugins.enabled;
  eo.engine.anomaly.action =
      workflow::AnomalyActionFromName(wc.anomaly_action).value_or(workflow::AnomalyAction::kGrow);
  eo.engine.anomaly.caution_s = double(wc.anomaly_caution.count()) / 1000.0;
  eo.engine.scheduler.aging_after_s = double(wc.aging_after.count()) / 1000.0;
  const workflow::PrewarmConfig& pw = wc.prewarm;
  eo.prewarm.enabled = pw.enabled;
  eo.prewarm.plan.lead_ns = int64_t(pw.lead.count()) * 1'000'000;
  eo.prewarm.plan.idle_timeout_ns = int64_t(pw.idle_timeout.count()) * 1'000'000;
  eo.prewarm.plan.max_per_backend = eo.prewarm.plan.max_total = pw.max_instances;
  eo.prewarm.probe = pw.probe;
  eo.prewarm.probe_timeout = pw.probe_timeout;
  eo.prewarm.follow.window_ns = int64_t(pw.follow_window.count()) * 1'000'000;
  eo.prewarm.demand_min_per_hour = pw.demand_per_hour;
  plugin::PluginManager* manager = plugins.get();
  workflow::ForecastFree forecast;
  if (HostHeadroom* h = EnsureHeadroom()) forecast = [h] { return h->FreeByHorizon(); };
  if (mesh) {
    // Shards that do not fit here go to peers with room, and peers' shards run here, from
    // the one ledger (docs/MESH.md, "Running shards on other hosts").
    mesh::MeshPlacerOptions po;
    po.work_dir = wc.state_dir + "/remote";
    // Larger inputs and outputs move as transfers in messages the transport carries
    // (docs/MESH.md, "Moving shard data").
    po.transfer.max_blob_bytes = options.config.mesh.max_transfer_bytes;
    po.transfer.max_payload_bytes = options.config.mesh.max_message - mesh::kEnvelopeOverheadBytes;
    // Outputs kept for a new owner after a takeover: as long as history (0: until the
    // workflow finishes).
    po.keep_outputs_ns = int64_t(wc.history_retention.count()) * 1'000'000;
    po.max_kept_bytes = options.config.mesh.max_kept_bytes;
    placer = std::make_shared<mesh::MeshPlacer>(mesh_link.get(), po);
    eo.placer = placer;
  }
  if (mesh) {
    // Each workflow's state is replicated to mesh.replicas peers, which take it over when
    // its owner dies (docs/MESH.md, "Replication and failover").
    mesh::WorkflowReplicationOptions ro;
    ro.replication.replicas = options.config.mesh.replicas;
    ro.live = [node = mesh.get()] {
      std::vector<std::string> live;
      for (const mesh::Member& m : node->Peers()) {
        if (m.state == mesh::MemberState::kAlive || m.state == mesh::MemberState::kSuspect) {
          live.push_back(m.name);
        }
      }
      return live;
    };
    // Copies of finished workflows go after workflows.history_retention; a new owner fetches
    // large shard outputs from the hosts that ran them (docs/MESH.md, "Replication and
    // failover").
    ro.retention_ns = int64_t(wc.history_retention.count()) * 1'000'000;
    if (placer) {
      ro.fetch_output = [p = placer](const std::string& host, const std::string& attempt,
                                     uint64_t size, const std::string& dest,
                                     std::function<void(Status)> done, int64_t now) {
        p->FetchOutput(host, attempt, size, dest, std::move(done), now);
      };
      ro.forget_outputs = [p = placer](const std::string& workflow,
                                       const std::vector<std::string>& hosts) {
        p->ForgetOutputs(workflow, hosts);
      };
    }
    replication = std::make_shared<mesh::WorkflowReplication>(mesh_link.get(), ro);
    eo.replication = replication;
  }
  auto started = workflow::Executor::Start(
      eo, [manager](const std::string& name) { return manager->Find(name); }, forecast);
  if (!started) return started.error().Annotate("workflows.state_dir");
  executor = std::move(*started);
  if (mesh) {
    {
      std::lock_guard lock(bridge->mu);
      bridge->executor = executor.get();
    }
    // On the mesh thread: OnMeshMessage and OnPeerDown only queue for the engine thread;
    // `first`, if given, sees the payload before it goes (while the executor is there).
    using First = std::function<void(const std::string& from, const std::string& payload)>;
    auto forward = [b = bridge](mesh::Channel ch, First first = {}) {
      return [b, ch, first](const std::string& from, std::string payload) {
        std::lock_guard lock(b->mu);
        if (!b->executor) return;
        if (first) first(from, payload);
        b->executor->OnMeshMessage(from, uint32_t(ch), std::move(payload));
      };
    };
    // A lease at once that the room the engine thread last published holds is answered
    // here, on the mesh thread, before the request goes on to the engine thread's bidder,
    // which takes the promise up (mesh/bid_desk.h).
    First answer_at_once;
    if (placer) {
      answer_at_once = [p = placer, node = mesh.get()](const std::string& from,
                                                       const std::string& payload) {
        if (auto answer = p->desk().Answer(from, payload, MonotonicNs())) {
          node->Send(from, mesh::Channel::kPlacement, std::move(*answer));
        }
      };
    }
    mesh->OnChannel(mesh::Channel::kPlacement, forward(mesh::Channel::kPlacement, answer_at_once));
    mesh->OnChannel(mesh::Channel::kRun, forward(mesh::Channel::kRun));
    mesh->OnChannel(mesh::Channel::kReplication, forward(mesh::Channel::kReplication));
    mesh->OnChannel(mesh::Channel::kStatus, forward(mesh::Channel::kStatus));
    mesh->OnChannel(mesh::Channel::kData, forward(mesh::Channel::kData));  // transfers
    // A dead host's leases are lost at once. A host that left (a graceful stop, as an
    // upgrade's restart is) keeps them until their ttl runs out unanswered: back in time, it
    // re-attaches their tasks (docs/MESH.md, "Running shards on other hosts", Restarts).
    mesh->OnEvent([b = bridge](const mesh::MembershipEvent& e) {
      if (e.kind != mesh::MembershipEventKind::kStateChanged) return;
      if (e.state != mesh::MemberState::kDead) return;
      std::lock_guard lock(b->mu);
      if (b->executor) b->executor->OnPeerDown(e.name);
    });
  }
  if (forecaster) {
    workflow::Executor* ex = executor.get();
    anomalies = std::make_unique<AnomalyWatch>(
        [ex](const std::string& base, const std::string& cgroup) { ex->Anomaly(base, cgroup); });
    sink->SetAnomalyWatch(anomalies.get());
  }
  spdlog::info("workflow engine up: state in {}, shards may hold {}", wc.state_dir,
               eo.engine.capacity.ToString());
  return Status::OK();
}

Status Daemon::Impl::StartControl() {
  ControlServerOptions co;
  co.socket_path = options.config.control.socket;
  co.group = options.config.control.group;
  auto server = ControlServer::Start(
      co, [this](const control::Request& req, const PeerCredentials& peer) {
        ControlTargets t;
        t.executor = executor.get();
        t.workflows_off = workflows_off;
        t.mesh_off = "mesh.enabled is false";
        if (mesh) t.peers_json = [this] { return mesh->PeersJson(); };
        if (plugins) t.backends = [this] { return plugins->Health(); };
        return HandleControl(t, req, peer);
      });
  if (!server) return server.error().Annotate("control.socket");
  control = std::move(*server);
  spdlog::info("control socket on {}", options.config.control.socket);
  return Status::OK();
}

Status Daemon::Impl::StartMesh() {
  const MeshConfig& mc = options.config.mesh;
  if (!mc.enabled) return Status::OK();
  mesh::MeshNodeOptions no;
  no.transport.host_name = mc.name.empty() ? mesh::DefaultHostName() : mc.name;
  no.transport.listen = "tcp://" + mc.listen;
  no.transport.secret_key_file = mc.key_file;
  no.transport.authorized_keys_file = mc.authorized_keys;
  no.transport.max_message_bytes = mc.max_message;
  no.advertise = "tcp://" + (mc.advertise.empty() ? mc.listen : mc.advertise);
  no.zone = mc.zone;
  for (const std::string& text : mc.seeds) {
    auto seed = ParseMeshSeed(text);  // checked when the config was read
    if (!seed || seed->name == no.transport.host_name) continue;
    no.seeds.push_back({seed->name, fmt::format("tcp://{}:{}", seed->at.host, seed->at.port)});
  }
  auto node = mesh::MeshNode::Start(std::move(no));
  if (!node) return node.error().Annotate("mesh");
  mesh = std::move(*node);
  mesh_link = std::make_unique<NodeLink>(mesh.get());
  // The headroom this host gossips needs the forecast of free room even with the workflow
  // engine off.
  EnsureHeadroom();
  mesh_publisher = std::thread([this] {
    std::string last;
    std::unique_lock lock(publisher_mu);
    while (!publisher_stop) {
      lock.unlock();
      PublishHeadroom(&last);
      lock.lock();
      publisher_cv.wait_for(lock, std::chrono::seconds(2), [this] { return publisher_stop; });
    }
  });
  return Status::OK();
}

// Builds the headroom summary from the forecast and what the backends say they can grant
// (describe() calls: on this thread, never the sampling one) and gossips it when it changed.
void Daemon::Impl::PublishHeadroom(std::string* last) {
  std::vector<BackendSnapshot> backends;
  if (plugins) {
    for (const std::string& name : options.config.plugins.enabled) {
      plugin::Backend* b = plugins->Find(name);
      if (b == nullptr) continue;
      auto info = b->Describe();
      if (!info || !info->healthy) continue;
      BackendSnapshot snap{name, {info->available.cpu_cores, info->available.memory_bytes}, {}};
      for (const plugin::Cost& c : info->costs) {
        snap.classes.push_back({c.resource_class, c.per_core_hour, c.per_gib_hour, c.preemptible});
      }
      backends.push_back(std::move(snap));
    }
  }
  const std::vector<HostHeadroom::Interval> forecast =
      headroom ? headroom->IntervalsByHorizon() : std::vector<HostHeadroom::Interval>{};
  auto wire = mesh::EncodeHeadroom(BuildHeadroomSummary(forecast, backends,
                                                        options.config.mesh.zone,
                                                        options.config.mesh.region));
  if (!wire) {
    spdlog::warn("mesh: headroom summary not gossiped: {}", wire.error().ToString());
    return;
  }
  if (*wire == *last) return;
  *last = *wire;
  mesh->SetMeta(std::move(*wire));
}

void Daemon::Impl::StopMesh() {
  if (mesh_publisher.joinable()) {
    {
      std::lock_guard lock(publisher_mu);
      publisher_stop = true;
    }
    publisher_cv.notify_all();
    mesh_publisher.join();
  }
  mesh.reset();
}

Result<std::unique_ptr<Daemon>> Daemon::Start(const DaemonOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const TelemetryConfig& tc = options.config.telemetry;

  impl->running = options.config;
  if (options.handle_signals) InstallSignalHandlers();

  // /metrics is bound before the segment is made so that a port clash touches nothing.
  if (options.config.metrics.enabled) {
    const MetricsConfig& mc = options.config.metrics;
    MetricsServerOptions mo;
    mo.max_connections = mc.max_connections;
    mo.max_connections_per_client = mc.max_connections_per_client;
    mo.header_timeout = mc.header_timeout;
    auto server = MetricsServer::Start(mc.listen, tc.shm_name, mo);
    if (!server) return Err(server.error().Annotate("metrics.listen"));
    impl->metrics = std::move(*server);
    spdlog::info("serving /metrics on {}:{}", options.config.metrics.listen.substr(
                     0, options.config.metrics.listen.rfind(':')), impl->metrics->port());
  }
  telemetry::StoreOptions so;
  so.name = tc.shm_name;
  so.capacity = tc.capacity;
  so.max_series = tc.max_series;
  so.heartbeat_interval_ns = int64_t{tc.interval.count()} * 1'000'000;
  // A stopped agent leaves nothing in /dev/shm; readers that have the segment mapped keep
  // its last points and see it closed.
  so.remove_on_close = true;
  auto writer = telemetry::ShmWriter::Create(so);
  if (!writer) {
    if (writer.error().code() == Status::Code::kResourceExhausted) {
      return Err(writer.error().Annotate("telemetry.capacity x telemetry.max_series"));
    }
    return Err(writer.error());
  }
  impl->writer = std::move(*writer);
  if (options.handle_signals) g_crash_writer.store(impl->writer.get());
  // A derived series gets a point per forecast step, not per sample: the same number of
  // points as a collected series would keep 60 times the history (60 h at the defaults)
  // and, as its ring fills, that much more of the segment in the agent's RSS.
  const uint32_t history = options.config.forecast.history;
  impl->sink = std::make_unique<StoreSink>(
      *impl->writer, history != 0 ? history : std::min<uint32_t>(1440, tc.capacity));

  if (const ForecastConfig& fc = options.config.forecast; fc.enabled) {
    ForecastRunnerOptions fo;
    fo.step_seconds = fc.step.count() / 1000.0;
    fo.horizons = fc.horizons;
    fo.series = fc.series;
    fo.state_dir = fc.state_dir;
    fo.anomaly_threshold = fc.anomaly_threshold;
    fo.max_series = fc.max_series;
    auto runner = ForecastRunner::Create(fo);
    if (!runner && !fo.state_dir.empty()) {
      // Forecasting without memory beats no forecasting: keep going, say what is lost.
      spdlog::warn("forecast state will not persist across restarts: {}",
                   runner.error().message());
      fo.state_dir.clear();
      runner = ForecastRunner::Create(fo);
    }
    if (!runner) return Err(runner.error());
    impl->forecaster = std::move(*runner);
    impl->sink->SetForecaster(impl->forecaster.get());
  }

  auto cgfs = telemetry::CgroupFs::Discover();
  if (!cgfs) {
    spdlog::warn("cgroup discovery failed, per-cgroup series are off: {}", cgfs.error().message());
    cgfs = telemetry::CgroupFs();
  }

  std::unordered_set<std::string> replaced;
  if (tc.ebpf != EbpfMode::kOff) {
    telemetry::BpfOptions bo;
    bo.cgroup_depth = tc.cgroup_depth;
    bo.max_cgroups = tc.max_cgroups;
    for (const BpfSpec& spec : kBpfSpecs) {
      auto made = spec.make(bo, *cgfs);
      if (!made) {
        if (tc.ebpf == EbpfMode::kOn) {
          return Err(made.error().Annotate(std::string("telemetry.ebpf is 'on' but eBPF "
                                                       "collector ") + spec.name +
                                           " cannot run"));
        }
        // Said once, at start: the procfs collectors cover these families instead.
        spdlog::warn("eBPF collector {} unavailable, procfs covers {}: {}", spec.name,
                     spec.families_text, made.error().message());
        continue;
      }
      for (const char* family : spec.families) {
        if (family) impl->sink->Cover(family);
      }
      if (spec.replaces) replaced.insert(spec.replaces);
      spdlog::info("eBPF collector {} loaded", spec.name);
      impl->collectors.push_back({std::move(*made), "bpf"});
    }
  } else {
    spdlog::info("telemetry.ebpf is off: collecting from procfs only");
  }

  telemetry::ProcfsOptions po;
  po.cgroup_depth = tc.cgroup_depth;
  po.max_cgroups = tc.max_cgroups;
  for (auto& c : telemetry::MakeProcfsCollectors(po)) {
    if (replaced.contains(std::string(c->name()))) continue;
    impl->collectors.push_back({std::move(c), "procfs"});
  }

  if (const PluginsConfig& pc = options.config.plugins; !pc.enabled.empty()) {
    plugin::PluginManagerOptions po;
    po.dir = pc.dir;
    po.enabled = pc.enabled;
    po.state_dir = pc.state_dir;
    po.call_timeout = pc.call_timeout;
    po.health_interval = pc.health_interval;
    for (const auto& [name, kv] : pc.config) {
      po.config[name].assign(kv.begin(), kv.end());
    }
    po.host_path = options.plugin_host_path;
    // A backend that cannot load is logged (by the manager) and reported as down through
    // augur_backend_up; the agent's measuring goes on without it.
    auto manager = plugin::PluginManager::Start(po);
    if (manager) {
      impl->plugins = std::move(*manager);
    } else {
      spdlog::error("plugins disabled: {}", manager.error().message());
    }
  }

  if (Status st = impl->StartMesh(); !st.ok()) return Err(st);
  if (Status st = impl->StartWorkflows(); !st.ok()) return Err(st);
  if (Status st = impl->StartControl(); !st.ok()) return Err(st);

  spdlog::info("augurd sampling every {} ms into /dev/shm/{} ({} collectors)",
               tc.interval.count(), tc.shm_name, impl->collectors.size());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

void Daemon::SampleOnce() {
  Impl& s = *impl_;
  const int64_t ts = RealtimeNs();
  // First, so a slow collector below cannot make a live agent look stalled.
  s.writer->Heartbeat(ts);
  for (CollectorSlot& slot : s.collectors) {
    const int64_t t0 = MonotonicNs();
    Status st = slot.collector->Collect(ts, *s.sink);
    const double dt = (MonotonicNs() - t0) / 1e9;
    slot.last_duration_s = dt;
    slot.total_duration_s += dt;
    if (!st.ok()) {
      ++slot.errors;
      // A failing source is logged at most once a minute; it keeps being retried.
      if (ts - slot.last_error_log_ns > 60'000'000'000) {
        spdlog::warn("collector {} failed: {}", slot.collector->name(), st.message());
        slot.last_error_log_ns = ts;
      }
    }
  }
  ++s.samples;

  // The agent's own cost is telemetry too.
  StoreSink& sink = *s.sink;
  for (const CollectorSlot& slot : s.collectors) {
    std::vector<telemetry::Label> labels = {{"collector", std::string(slot.collector->name())},
                                            {"source", slot.source}};
    sink.Emit(SeriesKey("augur_collector_duration_seconds", labels), ts, slot.last_duration_s);
    sink.Emit(SeriesKey("augur_collector_duration_seconds_total", labels), ts,
              slot.total_duration_s);
    sink.Emit(SeriesKey("augur_collector_errors_total", labels), ts, double(slot.errors));
  }
  const SelfUsage self = ReadSelfUsage();
  sink.Emit(SeriesKey("augur_process_cpu_seconds_total", {}), ts, self.cpu_seconds);
  sink.Emit(SeriesKey("augur_process_resident_memory_bytes", {}), ts, self.rss_bytes);
  if (s.plugins) {
    // Health() returns the prober's last verdict: it never waits on a plugin.
    for (const plugin::BackendHealth& h : s.plugins->Health()) {
      std::vector<telemetry::Label> labels = {{"backend", h.name}};
      // Up means works end to end (host up, describe() answered healthy), not merely that
      // the host process runs: see docs/PLUGINS.md.
      sink.Emit(SeriesKey("augur_backend_up", labels), ts, h.healthy ? 1.0 : 0.0);
      sink.Emit(SeriesKey("augur_backend_restarts_total", labels), ts, double(h.restarts));
      // Why, as a fixed set of 0/1 series: a free-text detail as a label would make a new
      // series per message (they hold pids) and leave the old ones reading 1.
      for (plugin::HealthReason r : plugin::kAllHealthReasons) {
        sink.Emit(SeriesKey("augur_backend_health",
                            {{"backend", h.name}, {"reason", std::string(HealthReasonName(r))}}),
                  ts, h.reason == r ? 1.0 : 0.0);
      }
    }
  }
  if (s.mesh) {
    // The mesh (docs/MESH.md): snapshots the mesh thread keeps; never waits on it.
    const mesh::MeshNodeStats m = s.mesh->Stats();
    double by_state[4] = {0, 0, 0, 0};
    for (const mesh::Member& p : s.mesh->Peers()) by_state[static_cast<int>(p.state)] += 1;
    for (auto st : {mesh::MemberState::kAlive, mesh::MemberState::kSuspect,
                    mesh::MemberState::kDead, mesh::MemberState::kLeft}) {
      sink.Emit(SeriesKey("augur_mesh_members", {{"state", mesh::MemberStateName(st)}}), ts,
                by_state[static_cast<int>(st)]);
    }
    sink.Emit(SeriesKey("augur_mesh_local_health", {}), ts, double(m.local_health));
    sink.Emit(SeriesKey("augur_mesh_sent_messages_total", {}), ts,
              double(m.transport.sent_messages));
    sink.Emit(SeriesKey("augur_mesh_sent_bytes_total", {}), ts, double(m.transport.sent_bytes));
    sink.Emit(SeriesKey("augur_mesh_received_messages_total", {}), ts,
              double(m.transport.received_messages));
    sink.Emit(SeriesKey("augur_mesh_received_bytes_total", {}), ts,
              double(m.transport.received_bytes));
    for (size_t r = 0; r < mesh::kDropReasonCount; ++r) {
      const auto reason = static_cast<mesh::DropReason>(r);
      sink.Emit(SeriesKey("augur_mesh_dropped_messages_total",
                          {{"reason", std::string(mesh::DropReasonName(reason))}}),
                ts, double(m.transport.drops(reason)));
    }
  }
  if (s.replication) {
    // Replication and failover (docs/MESH.md): counters published by the engine thread.
    const mesh::WorkflowReplicationStats r = s.replication->Stats();
    const std::pair<const char*, uint64_t> series[] = {
        {"augur_mesh_replication_appended_records_total", r.replication.appended},
        {"augur_mesh_replication_sent_records_total", r.replication.records_sent},
        {"augur_mesh_replication_resent_records_total", r.replication.records_resent},
        {"augur_mesh_replication_takeovers_total", r.replication.takeovers},
        {"augur_mesh_replication_step_downs_total", r.replication.step_downs},
        {"augur_mesh_replication_stale_epoch_total", r.replication.stale_epoch},
        {"augur_mesh_replication_duplicate_results_total", r.replication.duplicate_results},
        {"augur_mesh_replication_late_results_total", r.replication.late_results},
        {"augur_mesh_replication_bad_messages_total", r.replication.bad_messages + r.malformed},
        {"augur_mesh_replication_adopted_total", r.adopted},
        {"augur_mesh_replication_released_total", r.released},
        {"augur_mesh_replication_outputs_not_carried_total", r.outputs_too_big},
        {"augur_mesh_replication_outputs_fetched_total", r.outputs_fetched},
        {"augur_mesh_replication_outputs_rerun_total", r.outputs_rerun},
        {"augur_mesh_replication_pruned_total", r.pruned},
        {"augur_mesh_replication_status_queries_total", r.status_queries},
        {"augur_mesh_replication_workflows", r.held},
        {"augur_mesh_replication_owned_workflows", r.owned}};
    for (const auto& [name, value] : series) sink.Emit(SeriesKey(name, {}), ts, double(value));
  }
  if (s.placer) {
    // Shard inputs and outputs moved between hosts (docs/MESH.md, "Moving shard data"): a
    // copy the engine thread leaves at each tick; never waits on it.
    const mesh::MeshTransferStats t = s.placer->transfer_stats();
    auto both = [&](const char* name, double sent, double received) {
      sink.Emit(SeriesKey(name, {{"direction", "send"}}), ts, sent);
      sink.Emit(SeriesKey(name, {{"direction", "receive"}}), ts, received);
    };
    both("augur_mesh_transfer_started_total", double(t.sender.started), double(t.receiver.started));
    both("augur_mesh_transfer_completed_total", double(t.sender.completed),
         double(t.receiver.completed));
    both("augur_mesh_transfer_failed_total", double(t.sender.failed), double(t.receiver.failed));
    both("augur_mesh_transfer_bytes_total", double(t.sender.bytes_sent), double(t.bytes_received));
    both("augur_mesh_transfer_active", double(t.sending), double(t.receiving));
    sink.Emit(SeriesKey("augur_mesh_transfer_chunks_resent_total", {}), ts,
              double(t.sender.chunks_resent));
    sink.Emit(SeriesKey("augur_mesh_transfer_bad_checksum_total", {}), ts,
              double(t.receiver.bad_checksum + t.receiver.bad_blob_checksum));
    sink.Emit(SeriesKey("augur_mesh_transfer_over_limit_total", {}), ts, double(t.over_limit));
    sink.Emit(SeriesKey("augur_mesh_transfer_refused_total", {}), ts, double(t.refused));
    sink.Emit(SeriesKey("augur_mesh_transfer_file_errors_total", {}), ts, double(t.file_errors));

    // Placement (docs/MESH.md, "Placement observability"): the latency histogram and the
    // negotiation counters, as owner and as candidate; the same copy-at-tick contract.
    const mesh::MeshPlacementStats p = s.placer->placement_stats();
    using mesh::LatencyHistogram;
    auto histogram = [&](const std::string& name, const LatencyHistogram& h) {
      for (size_t i = 0; i <= LatencyHistogram::kBounds.size(); ++i) {
        const std::string le = i < LatencyHistogram::kBounds.size()
                                   ? FormatPrometheusValue(LatencyHistogram::kBounds[i])
                                   : "+Inf";
        sink.Emit(SeriesKey(name + "_bucket", {{"le", le}}), ts, double(h.Cumulative(i)));
      }
      sink.Emit(SeriesKey(name + "_sum", {}), ts, h.sum());
      sink.Emit(SeriesKey(name + "_count", {}), ts, double(h.count()));
    };
    histogram("augur_mesh_placement_seconds", p.latency);
    // How long placement messages waited for the engine thread (docs/MESH.md, "Placement
    // benchmarks").
    histogram("augur_mesh_placement_message_wait_seconds", p.message_wait);
    const mesh::NegotiatorStats& n = p.negotiator;
    const mesh::BidderStats& b = p.bidder;
    const std::pair<const char*, uint64_t> placement[] = {
        {"augur_mesh_placement_rounds_total", n.rounds},
        {"augur_mesh_placement_probes_total", n.probes},
        {"augur_mesh_placement_offers_total", n.offers},
        {"augur_mesh_placement_refusals_total", n.refusals},
        {"augur_mesh_placement_no_answer_total", n.no_answer},
        {"augur_mesh_placement_deferred_total", n.deferred},
        {"augur_mesh_placement_room_reports_total", n.room_reports},
        {"augur_mesh_placement_grants_total", n.awards},
        {"augur_mesh_placement_renewals_total", n.renewals},
        {"augur_mesh_placement_leases_lost_total", n.leases_lost},
        {"augur_mesh_bid_requests_total", b.requests},
        {"augur_mesh_bid_offers_total", b.offers},
        {"augur_mesh_bid_refusals_total", b.refusals},
        {"augur_mesh_bid_leases_total", b.leases},
        {"augur_mesh_bid_leases_reclaimed_total", b.leases_reclaimed}};
    for (const auto& [name, value] : placement) sink.Emit(SeriesKey(name, {}), ts, double(value));
  }
  if (s.executor) {
    // Pre-warming (docs/WORKFLOWS.md): a getter that never waits on the engine thread.
    const workflow::PrewarmStats p = s.executor->prewarm_stats();
    sink.Emit(SeriesKey("augur_prewarm_hits_total", {}), ts, double(p.hits));
    sink.Emit(SeriesKey("augur_prewarm_misses_total", {}), ts, double(p.misses));
    sink.Emit(SeriesKey("augur_prewarm_cold_starts_total", {}), ts, double(p.cold));
    sink.Emit(SeriesKey("augur_prewarm_warmed_total", {}), ts, double(p.warmed));
    sink.Emit(SeriesKey("augur_prewarm_probe_failures_total", {}), ts, double(p.probe_failures));
    sink.Emit(SeriesKey("augur_prewarm_saved_seconds_total", {}), ts, p.saved_s);
    sink.Emit(SeriesKey("augur_prewarm_wasted_instance_seconds_total", {}), ts,
              p.wasted_instance_s);
    sink.Emit(SeriesKey("augur_prewarm_instances", {{"state", "warm"}}), ts, double(p.warm_now));
    sink.Emit(SeriesKey("augur_prewarm_instances", {{"state", "probing"}}), ts,
              double(p.probing_now));
  }
  const telemetry::SegmentInfo info = s.writer->Info();
  sink.Emit(SeriesKey("augur_shm_bytes_used", {}), ts, double(info.bytes_used));
  sink.Emit(SeriesKey("augur_shm_bytes_mapped", {}), ts, double(info.bytes_total));
  sink.Emit(SeriesKey("augur_series", {}), ts, double(info.series_count));
  sink.Emit(SeriesKey("augur_series_dropped_points_total", {}), ts, double(sink.dropped()));
  sink.Emit(SeriesKey("augur_samples_total", {}), ts, double(s.samples));
  if (s.forecaster) s.forecaster->Publish(ts, sink, sink.derived());
  // Counts the points above too, so it is written last.
  sink.Emit(SeriesKey("augur_points_written_total", {}), ts, double(sink.written() + 1));
}

Status Daemon::Run() {
  Impl& s = *impl_;
  const int64_t interval_ns = int64_t{s.options.config.telemetry.interval.count()} * 1'000'000;
  SystemdNotifier notifier =
      s.options.notify_systemd ? SystemdNotifier::FromEnvironment() : SystemdNotifier();
  const auto ready_status = [&] {
    return fmt::format("sampling every {} ms into /dev/shm/{}, {} collectors",
                       s.options.config.telemetry.interval.count(),
                       s.options.config.telemetry.shm_name, s.collectors.size());
  };
  // Start() has bound /metrics and the control socket and started the backends: ready.
  notifier.Ready(ready_status());
  if (notifier.watchdog_ns() > 0) {
    spdlog::info("systemd watchdog: pinging every {} ms from the sampling loop",
                 notifier.watchdog_ns() / 2'000'000);
  }
  int64_t next = MonotonicNs();
  while (!s.stop.load(std::memory_order_relaxed)) {
    SampleOnce();
    // After a sample, so a collector that hangs stops the pings and systemd restarts us.
    notifier.MaybePingWatchdog(MonotonicNs());
    next += interval_ns;
    int64_t now = MonotonicNs();
    if (now > next) next = now;  // fell behind (suspend, slow collector): don't burst
    // Waits for the next tick, a signal or Stop(), looking at least every 100 ms.
    while (!s.stop.load(std::memory_order_relaxed) && (now = MonotonicNs()) < next) {
      if (const int sig = g_stop_signal.load(std::memory_order_relaxed); sig != 0) {
        spdlog::info("received {}, stopping", SignalName(sig));
        s.stop = true;
        break;
      }
      if (g_reload_requests.exchange(0, std::memory_order_relaxed) != 0) {
        notifier.Reloading(now);
        s.Reload();
        notifier.Ready(ready_status());
      }
      if (g_status_requests.exchange(0, std::memory_order_relaxed) != 0) s.LogStatus();
      if (const int sig = g_ignored_signal.exchange(0, std::memory_order_relaxed); sig != 0) {
        spdlog::info("received {}: ignored (SIGHUP reloads, SIGUSR1 logs status, SIGTERM "
                     "stops)", SignalName(sig));
      }
      const int64_t wait_ns = std::min<int64_t>(next - now, 100'000'000);
      timespec to{time_t(wait_ns / 1'000'000'000), long(wait_ns % 1'000'000'000)};
      nanosleep(&to, nullptr);  // EINTR when the signal lands on this thread: fine
      notifier.MaybePingWatchdog(MonotonicNs());
    }
  }
  notifier.Stopping("stopping: detaching eBPF programs, removing the segment");
  return Status::OK();
}

void Daemon::Stop() { impl_->stop = true; }

void Daemon::Impl::Reload() {
  if (options.config_path.empty()) {
    spdlog::info("SIGHUP: running on built-in defaults, no config file to reload");
    return;
  }
  Result<Config> fresh = LoadConfigFile(options.config_path);
  if (!fresh) {
    // The agent keeps the configuration it runs; every problem is named, as at start.
    spdlog::error("SIGHUP: {} not reloaded, keeping the running configuration:\n{}",
                  options.config_path, fresh.error().message());
    return;
  }
  std::vector<std::string> applied;
  if (fresh->log.level != running.log.level) {
    spdlog::set_level(spdlog::level::from_str(fresh->log.level));
    applied.push_back(fmt::format("log.level {} -> {}", running.log.level, fresh->log.level));
    running.log = fresh->log;
  }
  const std::vector<std::string> pending = ChangedKeys(running, *fresh);
  if (applied.empty() && pending.empty()) {
    spdlog::info("SIGHUP: {} reloaded, nothing changed", options.config_path);
    return;
  }
  if (!applied.empty()) {
    spdlog::info("SIGHUP: {} reloaded, applied: {}", options.config_path,
                 fmt::join(applied, ", "));
  }
  if (!pending.empty()) {
    spdlog::warn("SIGHUP: changed keys that take effect only after a restart "
                 "(systemctl restart augurd): {}", fmt::join(pending, ", "));
  }
}

void Daemon::Impl::LogStatus() const {
  const telemetry::SegmentInfo info = writer->Info();
  std::string backends;
  if (plugins) {
    for (const plugin::BackendHealth& h : plugins->Health()) {
      backends += fmt::format(" {}={}", h.name, plugin::HostStateName(h.state));
    }
  }
  spdlog::info("status: {} samples, {} series in /dev/shm/{} ({} of {} bytes), {} collectors, "
               "{} points dropped, backends:{}", samples, info.series_count,
               options.config.telemetry.shm_name, info.bytes_used, info.bytes_total,
               collectors.size(), sink->dropped(), backends.empty() ? " none" : backends);
}

std::vector<std::string> Daemon::CollectorNames() const {
  std::vector<std::string> names;
  for (const CollectorSlot& slot : impl_->collectors) {
    names.push_back(slot.source + ":" + std::string(slot.collector->name()));
  }
  return names;
}

const plugin::PluginManager* Daemon::plugins() const { return impl_->plugins.get(); }

int Daemon::metrics_port() const { return impl_->metrics ? impl_->metrics->port() : 0; }

}  // namespace augur::agent
