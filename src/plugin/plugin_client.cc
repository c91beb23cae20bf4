#include "plugin/plugin_client.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include "plugin/handle_store.h"
#include "plugin/plugin_protocol.h"

namespace augur::plugin {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a host gets to destroy() its plugin and exit before SIGKILL.
constexpr milliseconds kShutdownGrace{2000};
// Without a pidfd (kernels before 5.3) a waiting call checks the host every this often.
constexpr milliseconds kLivenessSlice{50};

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* abbrev = ::sigabbrev_np(WTERMSIG(status));
    return fmt::format("was killed by signal {} (SIG{})", WTERMSIG(status),
                       abbrev != nullptr ? abbrev : "?");
  }
  return "ended";
}

// One augur-plugin-host process. Fields other than pid/pidfd/endpoint are guarded by
// HostedBackend::Impl::mu.
struct HostProcess {
  pid_t pid = 0;
  int pidfd = -1;  // readable once the process exits; -1 when pidfd_open is unavailable
  std::string socket_path;
  std::string endpoint;
  bool reaped = false;
  std::string ended;  // how it ended, once reaped
  std::vector<std::unique_ptr<zmq::socket_t>> idle;  // connected REQ sockets to reuse

  ~HostProcess() {
    if (pidfd >= 0) ::close(pidfd);
  }
  // True once the process has ended, without reaping it (WNOWAIT), so any thread may ask.
  bool Exited() const {
    siginfo_t si{};
    if (::waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return si.si_pid == pid;
  }
};

enum class Failure { kNone, kTimeout, kExited, kBadReply, kTransport };

struct Outcome {
  Failure failure = Failure::kNone;
  std::string why;
  wire::Reply reply;
};

}  // namespace

std::string_view HostStateName(HostState s) {
  switch (s) {
    case HostState::kStarting: return "starting";
    case HostState::kUp: return "up";
    case HostState::kRestarting: return "restarting";
    case HostState::kRefused: return "refused";
    case HostState::kStopped: return "stopped";
  }
  return "unknown";
}

std::string_view HealthReasonName(HealthReason r) {
  switch (r) {
    case HealthReason::kOk: return "ok";
    case HealthReason::kUnchecked: return "unchecked";
    case HealthReason::kHostDown: return "host_down";
    case HealthReason::kRefused: return "refused";
    case HealthReason::kTimeout: return "describe_timeout";
    case HealthReason::kContract: return "contract_violation";
    case HealthReason::kFailed: return "describe_failed";
    case HealthReason::kPluginUnhealthy: return "plugin_unhealthy";
  }
  return "unknown";
}

struct HostedBackend::Impl {
  // A reply and the host that sent it, so that a reply found invalid later condemns the
  // right host.
  struct Answer {
    wire::Reply reply;
    std::shared_ptr<HostProcess> host;
  };

  explicit Impl(PluginClientOptions o) : opt(std::move(o)) {}

  PluginClientOptions opt;
  zmq::context_t ctx{1};  // first member: sockets (in `host`) must close before it terminates
  std::unique_ptr<HandleStore> store;
  std::atomic<uint64_t> next_id{1};

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  HostState state = HostState::kStarting;
  std::shared_ptr<HostProcess> host;
  uint64_t generation = 0;
  uint64_t spawns = 0;
  std::string last_error;
  milliseconds backoff{0};       // the next restart's wait
  milliseconds last_backoff{0};  // the pending (or last) restart's wait
  Clock::time_point next_start = Clock::now();
  Clock::time_point up_since;
  uint64_t recovered = 0;
  uint64_t lost = 0;
  uint32_t abi_major = 0, abi_minor = 0;  // what the last loaded plugin declared
  bool stopping = false;
  bool first_attempt_done = false;
  std::thread supervisor;

  // ---- host processes -----------------------------------------------------------------

  Result<std::shared_ptr<HostProcess>> Spawn() {
    if (::access(opt.host_path.c_str(), X_OK) != 0) {
      return Err(Status::FromErrno("plugin host " + opt.host_path, errno));
    }
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lock(mu);
      gen = ++generation;
    }
    auto h = std::make_shared<HostProcess>();
    h->socket_path = fmt::format("{}/{}.{}.sock", opt.runtime_dir, opt.name, gen);
    if (h->socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return Err(Status::InvalidArgument(fmt::format(
          "socket path {} is longer than a unix socket allows; use a shorter runtime dir",
          h->socket_path)));
    }
    ::unlink(h->socket_path.c_str());
    h->endpoint = "ipc://" + h->socket_path;
    // Everything the child needs is built before fork(): after it, in a multithreaded
    // parent, only async-signal-safe calls are allowed.
    std::vector<std::string> args = {opt.host_path, "--endpoint", h->endpoint, "--threads",
                                     std::to_string(opt.host_threads), "--name", opt.name};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    sigset_t none;
    sigemptyset(&none);
    const rlimit no_core{0, 0};
    pid_t pid = ::fork();
    if (pid < 0) return Err(Status::FromErrno("fork for plugin host", errno));
    if (pid == 0) {
      // Dies with the thread that started it (the supervisor), so an agent killed with
      // SIGKILL leaves no host behind. The plugin's own children do not inherit this.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      ::setpgid(0, 0);  // a Ctrl-C meant for augurd in a terminal must not reach the host
      ::setrlimit(RLIMIT_CORE, &no_core);  // a crashing plugin must not fill the disk
      ::sigprocmask(SIG_SETMASK, &none, nullptr);  // augurd blocks SIGTERM in all threads
      ::close_range(3, ~0U, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    h->pid = pid;
    h->pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    return h;
  }

  // REQUIRES: mu held. Kills and reaps `h` if not done yet; returns how it ended.
  std::string KillAndReapLocked(HostProcess& h) {
    if (h.reaped) return h.ended;
    ::kill(h.pid, SIGKILL);
    int status = 0;
    while (::waitpid(h.pid, &status, 0) < 0 && errno == EINTR) {
    }
    h.reaped = true;
    h.ended = DescribeWaitStatus(status);
    h.idle.clear();
    ::unlink(h.socket_path.c_str());
    return h.ended;
  }

  // REQUIRES: mu held. Marks the backend down and schedules the next host.
  void ScheduleRestartLocked(const std::string& reason) {
    const auto now = Clock::now();
    if (backoff.count() == 0 || (state == HostState::kUp && now - up_since >= opt.backoff_max)) {
      backoff = opt.backoff_initial;  // a host that lived long enough earns a fresh start
    }
    state = HostState::kRestarting;
    last_error = reason;
    last_backoff = backoff;
    next_start = now + backoff;
    spdlog::error("backend '{}' marked unhealthy: {}; restarting its plugin host in {} ms",
                  opt.name, reason, backoff.count());
    backoff = std::min(backoff * 2, opt.backoff_max);
    cv.notify_all();
  }

  // Kills `h` because of `reason` and, if it is the current host, schedules a new one.
  // Returns how the host ended. Safe to call from several threads for the same host.
  std::string Lose(const std::shared_ptr<HostProcess>& h, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    const bool was_reaped = h->reaped;
    std::string ended = KillAndReapLocked(*h);
    if (!was_reaped && h == host) {
      host.reset();
      ScheduleRestartLocked(fmt::format("{}; plugin host (pid {}) {}", reason, h->pid, ended));
    }
    return ended;
  }

  // ---- one request/reply ----------------------------------------------------------------

  Outcome Exchange(const std::shared_ptr<HostProcess>& h, wire::Request& req,
                   milliseconds timeout) {
    Outcome out;
    std::unique_ptr<zmq::socket_t> sock;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!h->idle.empty()) {
        sock = std::move(h->idle.back());
        h->idle.pop_back();
      }
    }
    try {
      if (!sock) {
        sock = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::req);
        sock->set(zmq::sockopt::linger, 0);
        // The host binds a moment after it starts; retry the connect quickly, not every
        // 100 ms (the default), so a restart is not slowed down by it.
        sock->set(zmq::sockopt::reconnect_ivl, 10);
        sock->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
        sock->connect(h->endpoint);
      }
      req.set_id(next_id.fetch_add(1));
      const std::string bytes = req.SerializeAsString();
      sock->send(zmq::buffer(bytes), zmq::send_flags::none);
      const auto deadline = Clock::now() + timeout;
      for (;;) {
        const auto now = Clock::now();
        if (now >= deadline) {
          out.failure = Failure::kTimeout;
          out.why = fmt::format("no reply within {} ms (hung plugin?)", timeout.count());
          return out;
        }
        auto slice = std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1);
        if (h->pidfd < 0) slice = std::min(slice, kLivenessSlice);
        zmq::pollitem_t items[2] = {{sock->handle(), 0, ZMQ_POLLIN, 0},
                                    {nullptr, h->pidfd, ZMQ_POLLIN, 0}};
        zmq::poll(items, h->pidfd >= 0 ? 2 : 1, slice);
        if (items[0].revents & ZMQ_POLLIN) {
          zmq::message_t msg;
          if (!sock->recv(msg, zmq::recv_flags::dontwait)) continue;
          if (!out.reply.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
            out.failure = Failure::kBadReply;
            out.why = "reply is not a valid protobuf message";
            return out;
          }
          if (out.reply.id() != req.id()) {
            out.failure = Failure::kBadReply;
            out.why = fmt::format("reply is for request {}, not {}", out.reply.id(), req.id());
            return out;
          }
          std::lock_guard<std::mutex> lock(mu);
          if (!h->reaped) h->idle.push_back(std::move(sock));
          return out;
        }
        const bool exited = h->pidfd >= 0 ? (items[1].revents & ZMQ_POLLIN) != 0 : h->Exited();
        if (exited) {
          out.failure = Failure::kExited;
          out.why = "plugin host died during the call";
          return out;
        }
      }
    } catch (const zmq::error_t& e) {
      out.failure = Failure::kTransport;
      out.why = fmt::format("socket error: {}", e.what());
      return out;
    }
  }

  Result<Answer> Call(wire::Request req, std::string_view op, milliseconds extra = milliseconds(0)) {
    std::shared_ptr<HostProcess> h;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (state != HostState::kUp || !host) return Err(DownStatusLocked(op));
      h = host;
    }
    Outcome o = Exchange(h, req, opt.call_timeout + extra);
    if (o.failure != Failure::kNone) {
      const std::string reason = fmt::format("{}: {}", op, o.why);
      const std::string ended = Lose(h, reason);
      return Err(Status::Unavailable(fmt::format(
          "backend '{}': {}; its plugin host {} and is being restarted", opt.name, reason, ended)));
    }
    if (!o.reply.fault().empty()) {
      return Err(Broken(h, op, Status::Corruption("the plugin broke the ABI contract: " +
                                                  o.reply.fault())));
    }
    Status s = StatusFromCode(o.reply.code(), o.reply.message());
    if (s.IsCorruption()) return Err(Broken(h, op, s));
    if (!s.ok()) return Err(s.Annotate(fmt::format("backend '{}'", opt.name)));
    return Answer{std::move(o.reply), std::move(h)};
  }

  // A reply that is not what the contract promises: the host is restarted like a crashed
  // one, and the caller gets a Corruption saying what was wrong.
  Status Broken(const std::shared_ptr<HostProcess>& h, std::string_view op, const Status& why) {
    const std::string reason = fmt::format("{}: {}", op, why.message());
    Lose(h, reason);
    return Status::Corruption(
        fmt::format("backend '{}': {}; its plugin host was killed and is being restarted",
                    opt.name, reason));
  }

  Status DownStatusLocked(std::string_view op) const {
    if (state == HostState::kRefused) {
      return Status::FailedPrecondition(
          fmt::format("backend '{}': {}: plugin was refused: {}", opt.name, op, last_error));
    }
    if (state == HostState::kStopped) {
      return Status::Unavailable(fmt::format("backend '{}': {}: stopped", opt.name, op));
    }
    if (last_error.empty()) {
      return Status::Unavailable(fmt::format("backend '{}': {}: plugin host is starting", opt.name, op));
    }
    return Status::Unavailable(fmt::format("backend '{}': {}: plugin host is restarting after: {}",
                                           opt.name, op, last_error));
  }

  void NoteStoreError(const Status& s) {
    if (!s.ok()) {
      spdlog::warn("backend '{}': cannot persist handles ({}); a restart will not recover them",
                   opt.name, s.message());
    }
  }

  // ---- the supervisor -------------------------------------------------------------------

  void SupervisorLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      if (state == HostState::kStarting || state == HostState::kRestarting) {
        if (Clock::now() >= next_start) {
          lock.unlock();
          StartHost();
          lock.lock();
          continue;
        }
        cv.wait_until(lock, next_start);
      } else if (state == HostState::kUp && host) {
        // A host can die between calls (OOM killer, an operator's kill, a plugin thread
        // crashing on its own). Watch it, so that health and the restart do not wait for
        // the next call to notice.
        cv.wait_for(lock, kLivenessSlice * 2);
        if (state == HostState::kUp && host && host->Exited()) {
          std::shared_ptr<HostProcess> h = host;
          lock.unlock();
          Lose(h, "plugin host died between calls");
          lock.lock();
        }
      } else {
        cv.wait(lock);
      }
    }
    lock.unlock();
    // The host dies with this thread (PR_SET_PDEATHSIG), so the orderly shutdown happens
    // here, before the thread ends.
    ShutdownHost();
  }

  void FailStart(const std::shared_ptr<HostProcess>& h, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    std::string ended = h ? KillAndReapLocked(*h) : "";
    ScheduleRestartLocked(h ? fmt::format("{}; plugin host (pid {}) {}", reason, h->pid, ended)
                            : reason);
    first_attempt_done = true;
    cv.notify_all();
  }

  void StartHost() {
    {
      std::lock_guard<std::mutex> lock(mu);
      ++spawns;
    }
    auto spawned = Spawn();
    if (!spawned) return FailStart(nullptr, "cannot start plugin host: " + spawned.error().message());
    std::shared_ptr<HostProcess> h = *spawned;

    wire::Request hello;
    wire::HelloRequest* hr = hello.mutable_hello();
    hr->set_plugin_path(opt.plugin_path);
    hr->set_name(opt.name);
    for (const auto& [k, v] : opt.config) {
      wire::KeyValue* kv = hr->add_config();
      kv->set_key(k);
      kv->set_value(v);
    }
    if (!opt.state_dir.empty()) hr->set_state_dir(opt.state_dir + "/" + opt.name);
    Outcome o = Exchange(h, hello, opt.call_timeout);
    if (o.failure != Failure::kNone) return FailStart(h, "loading the plugin: " + o.why);
    if (!o.reply.refused().empty()) {
      std::lock_guard<std::mutex> lock(mu);
      KillAndReapLocked(*h);
      state = HostState::kRefused;
      last_error = o.reply.refused();
      first_attempt_done = true;
      spdlog::error("backend '{}' not loaded: {}", opt.name, last_error);
      cv.notify_all();
      return;
    }
    if (!o.reply.fault().empty()) {
      return FailStart(h, "init broke the ABI contract: " + o.reply.fault());
    }
    if (Status s = StatusFromCode(o.reply.code(), o.reply.message()); !s.ok()) {
      return FailStart(h, s.message());
    }
    if (!o.reply.has_hello()) return FailStart(h, "loading the plugin: reply has no hello");

    uint64_t recovered_now = 0, lost_now = 0;
    const std::vector<std::string> inst = store->Instances();
    const std::vector<std::string> inv = store->Invocations();
    if (!inst.empty() || !inv.empty()) {
      wire::Request rq;
      for (const std::string& s : inst) rq.mutable_recover()->add_instances(s);
      for (const std::string& s : inv) rq.mutable_recover()->add_invocations(s);
      Outcome r = Exchange(h, rq, opt.call_timeout);
      if (r.failure != Failure::kNone) return FailStart(h, "recover: " + r.why);
      if (!r.reply.fault().empty()) {
        return FailStart(h, "recover broke the ABI contract: " + r.reply.fault());
      }
      Status s = StatusFromCode(r.reply.code(), r.reply.message());
      if (s.IsCorruption()) return FailStart(h, "recover: " + s.message());
      if (!s.ok()) {
        // The plugin answered but could not recover; keep the handles for the next try.
        spdlog::warn("backend '{}': recover failed, handles kept: {}", opt.name, s.message());
      } else {
        const wire::RecoverReply& rr = r.reply.recovered();
        if (static_cast<size_t>(rr.instance_states_size()) != inst.size() ||
            static_cast<size_t>(rr.task_states_size()) != inv.size()) {
          return FailStart(h, "recover: reply has the wrong number of states");
        }
        RecoverResult result;
        for (int32_t v : rr.instance_states()) {
          auto st = InstanceStateFromInt("recover: instance state", v);
          if (!st) return FailStart(h, st.error().message());
          result.instances.push_back(*st);
          (*st == InstanceState::kGone ? lost_now : recovered_now) += 1;
        }
        for (int32_t v : rr.task_states()) {
          auto st = TaskStateFromInt("recover: task state", v);
          if (!st) return FailStart(h, st.error().message());
          result.invocations.push_back(*st);
        }
        NoteStoreError(store->ApplyRecovery(inst, result));
        spdlog::info("backend '{}': recovered {} instances ({} gone) and {} invocations",
                     opt.name, recovered_now, lost_now, inv.size());
      }
    }

    std::lock_guard<std::mutex> lock(mu);
    if (stopping) {
      host = h;  // ShutdownHost() ends it
      return;
    }
    host = h;
    state = HostState::kUp;
    up_since = Clock::now();
    recovered = recovered_now;
    lost = lost_now;
    abi_major = o.reply.hello().abi_major();
    abi_minor = o.reply.hello().abi_minor();
    first_attempt_done = true;
    spdlog::info("backend '{}' up: plugin host pid {}, plugin ABI {}.{}", opt.name, h->pid,
                 o.reply.hello().abi_major(), o.reply.hello().abi_minor());
    cv.notify_all();
  }

  void ShutdownHost() {
    std::shared_ptr<HostProcess> h;
    {
      std::lock_guard<std::mutex> lock(mu);
      h = std::move(host);
      state = HostState::kStopped;
      cv.notify_all();
    }
    if (!h) return;
    try {
      zmq::socket_t s(ctx, zmq::socket_type::req);
      s.set(zmq::sockopt::linger, static_cast<int>(kShutdownGrace.count()));
      s.connect(h->endpoint);
      wire::Request req;
      req.mutable_shutdown();
      const std::string bytes = req.SerializeAsString();
      s.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      spdlog::warn("backend '{}': cannot ask the plugin host to stop: {}", opt.name, e.what());
    }
    const auto deadline = Clock::now() + kShutdownGrace;
    while (!h->Exited() && Clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    std::lock_guard<std::mutex> lock(mu);
    KillAndReapLocked(*h);
  }
};

HostedBackend::HostedBackend(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<HostedBackend>> HostedBackend::Start(PluginClientOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  const PluginClientOptions& opt = impl->opt;
  std::string handles_path;
  if (!opt.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(opt.state_dir, ec);
    if (ec) {
      return Err(Status::IOError(fmt::format("backend '{}': cannot create state dir {}: {}",
                                             opt.name, opt.state_dir, ec.message())));
    }
    handles_path = opt.state_dir + "/" + opt.name + ".handles";
  }
  auto store = HandleStore::Open(handles_path, opt.name);
  if (!store) {
    // The handles are lost either way; keep the file for a human and start afresh.
    spdlog::error("backend '{}': {}; starting with no handles to recover (file kept as {}.bad)",
                  opt.name, store.error().message(), handles_path);
    std::error_code ec;
    std::filesystem::rename(handles_path, handles_path + ".bad", ec);
    store = HandleStore::Open(ec ? std::string() : handles_path, opt.name);
    if (!store) return Err(store.error());
  }
  impl->store = std::move(*store);
  Impl* raw = impl.get();
  raw->supervisor = std::thread([raw] { raw->SupervisorLoop(); });
  std::unique_ptr<HostedBackend> backend(new HostedBackend(std::move(impl)));
  {
    std::unique_lock<std::mutex> lock(raw->mu);
    raw->cv.wait(lock, [raw] { return raw->first_attempt_done; });
    if (raw->state == HostState::kRefused) {
      return Err(Status::FailedPrecondition(raw->last_error));
    }
  }
  return backend;
}

HostedBackend::~HostedBackend() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    impl_->cv.notify_all();
  }
  if (impl_->supervisor.joinable()) impl_->supervisor.join();
}

const std::string& HostedBackend::name() const { return impl_->opt.name; }

BackendHealth HostedBackend::Health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  BackendHealth h;
  h.name = impl_->opt.name;
  h.state = impl_->state;
  h.up = impl_->state == HostState::kUp;
  h.restarts = impl_->spawns > 0 ? impl_->spawns - 1 : 0;
  h.last_error = impl_->last_error;
  h.backoff = impl_->last_backoff;
  h.host_pid = impl_->host ? impl_->host->pid : 0;
  h.recovered_instances = impl_->recovered;
  h.lost_instances = impl_->lost;
  h.abi_major = impl_->abi_major;
  h.abi_minor = impl_->abi_minor;
  // Only a describe() tells whether the plugin works (PluginManager asks periodically).
  h.reason = h.up                             ? HealthReason::kUnchecked
             : h.state == HostState::kRefused ? HealthReason::kRefused
                                              : HealthReason::kHostDown;
  h.health_detail =
      h.up ? "not checked yet" : fmt::format("plugin host is {}", HostStateName(h.state));
  if (!h.up && !h.last_error.empty()) h.health_detail += ": " + h.last_error;
  return h;
}

bool HostedBackend::WaitUntilUp(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, timeout, [this] {
    return impl_->state == HostState::kUp || impl_->state == HostState::kRefused;
  });
  return impl_->state == HostState::kUp;
}

Result<BackendInfo> HostedBackend::Describe() {
  wire::Request req;
  req.mutable_describe();
  auto a = impl_->Call(std::move(req), "describe");
  if (!a) return Err(a.error());
  if (!a->reply.has_info()) {
    return Err(impl_->Broken(a->host, "describe", Status::Corruption("reply has no backend info")));
  }
  auto info = InfoFromWire(a->reply.info());
  if (!info) return Err(impl_->Broken(a->host, "describe", info.error()));
  return *info;
}

Result<Instance> HostedBackend::Provision(const AllocRequest& r) {
  wire::Request req;
  ToWire(r, req.mutable_provision()->mutable_request());
  auto a = impl_->Call(std::move(req), "provision");
  if (!a) return Err(a.error());
  if (!a->reply.has_instance()) {
    return Err(impl_->Broken(a->host, "provision", Status::Corruption("reply has no instance")));
  }
  auto inst = InstanceFromWire(a->reply.instance());
  if (!inst) return Err(impl_->Broken(a->host, "provision", inst.error()));
  impl_->NoteStoreError(impl_->store->AddInstance(inst->handle));
  return *inst;
}

Result<uint32_t> HostedBackend::Prewarm(const AllocRequest& shape, uint32_t count) {
  wire::Request req;
  ToWire(shape, req.mutable_prewarm()->mutable_shape());
  req.mutable_prewarm()->set_count(count);
  auto a = impl_->Call(std::move(req), "prewarm");
  if (!a) return Err(a.error());
  if (a->reply.result_case() != wire::Reply::kPrepared || a->reply.prepared() > count) {
    return Err(impl_->Broken(a->host, "prewarm",
                             Status::Corruption("reply has no or an impossible prepared count")));
  }
  return a->reply.prepared();
}

Result<Resources> HostedBackend::Resize(const std::string& instance, const Resources& target) {
  wire::Request req;
  req.mutable_resize()->set_instance(instance);
  ToWire(target, req.mutable_resize()->mutable_target());
  auto a = impl_->Call(std::move(req), "resize");
  if (!a) return Err(a.error());
  if (!a->reply.has_granted()) {
    return Err(impl_->Broken(a->host, "resize", Status::Corruption("reply has no granted resources")));
  }
  Resources g = FromWire(a->reply.granted());
  if (Status s = CheckResources("granted", g); !s.ok()) return Err(impl_->Broken(a->host, "resize", s));
  return g;
}

Result<std::string> HostedBackend::Run(const std::string& instance, const Task& task) {
  wire::Request req;
  req.mutable_run()->set_instance(instance);
  ToWire(task, req.mutable_run()->mutable_task());
  auto a = impl_->Call(std::move(req), "run");
  if (!a) return Err(a.error());
  if (a->reply.result_case() != wire::Reply::kInvocation) {
    return Err(impl_->Broken(a->host, "run", Status::Corruption("reply has no invocation handle")));
  }
  const std::string& inv = a->reply.invocation();
  if (Status s = CheckHandle("invocation handle", inv); !s.ok()) {
    return Err(impl_->Broken(a->host, "run", s));
  }
  impl_->NoteStoreError(impl_->store->AddInvocation(instance, inv));
  return inv;
}

Result<TaskStatus> HostedBackend::Poll(const std::string& invocation, std::chrono::milliseconds wait) {
  wait = std::clamp(wait, milliseconds(0), milliseconds(std::numeric_limits<int32_t>::max()));
  wire::Request req;
  req.mutable_poll()->set_invocation(invocation);
  req.mutable_poll()->set_timeout_ms(static_cast<int32_t>(wait.count()));
  // The host may legitimately take the whole wait; the timeout covers the rest.
  auto a = impl_->Call(std::move(req), "poll", wait);
  if (!a) return Err(a.error());
  if (!a->reply.has_status()) {
    return Err(impl_->Broken(a->host, "poll", Status::Corruption("reply has no task status")));
  }
  auto st = TaskStatusFromWire(a->reply.status());
  if (!st) return Err(impl_->Broken(a->host, "poll", st.error()));
  if (IsTerminal(st->state)) impl_->NoteStoreError(impl_->store->RemoveInvocation(invocation));
  return *st;
}

Status HostedBackend::Cancel(const std::string& invocation) {
  wire::Request req;
  req.mutable_cancel()->set_handle(invocation);
  auto a = impl_->Call(std::move(req), "cancel");
  return a ? Status::OK() : a.error();
}

Status HostedBackend::Release(const std::string& instance) {
  wire::Request req;
  req.mutable_release()->set_handle(instance);
  auto a = impl_->Call(std::move(req), "release");
  if (a || a.error().IsNotFound()) {
    impl_->NoteStoreError(impl_->store->RemoveInstance(instance));
  }
  return a ? Status::OK() : a.error();
}

Result<RecoverResult> HostedBackend::Recover(const std::vector<std::string>& instances,
                                             const std::vector<std::string>& invocations) {
  wire::Request req;
  for (const std::string& s : instances) req.mutable_recover()->add_instances(s);
  for (const std::string& s : invocations) req.mutable_recover()->add_invocations(s);
  auto a = impl_->Call(std::move(req), "recover");
  if (!a) return Err(a.error());
  const wire::RecoverReply& rr = a->reply.recovered();
  if (static_cast<size_t>(rr.instance_states_size()) != instances.size() ||
      static_cast<size_t>(rr.task_states_size()) != invocations.size()) {
    return Err(impl_->Broken(a->host, "recover",
                             Status::Corruption("reply has the wrong number of states")));
  }
  RecoverResult out;
  for (int32_t v : rr.instance_states()) {
    auto st = InstanceStateFromInt("instance state", v);
    if (!st) return Err(impl_->Broken(a->host, "recover", st.error()));
    out.instances.push_back(*st);
  }
  for (int32_t v : rr.task_states()) {
    auto st = TaskStateFromInt("task state", v);
    if (!st) return Err(impl_->Broken(a->host, "recover", st.error()));
    out.invocations.push_back(*st);
  }
  impl_->NoteStoreError(impl_->store->ApplyRecovery(instances, out));
  return out;
}

}  // namespace augur::plugin
