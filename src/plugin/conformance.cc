#include "plugin/conformance.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include <fmt/format.h>

#include "augur/plugin.h"

namespace augur::plugin {
namespace {

using std::chrono::milliseconds;
using Outcome = CheckResult::Outcome;

// Thrown inside a check to end it; caught by Runner::Check. Never leaves this file.
struct CheckFailed {
  Outcome outcome;
  std::string why;
};

[[noreturn]] void Fail(std::string why) { throw CheckFailed{Outcome::kFail, std::move(why)}; }
[[noreturn]] void Skip(std::string why) { throw CheckFailed{Outcome::kSkip, std::move(why)}; }

template <typename T>
T Must(Result<T> r, std::string_view what) {
  if (!r) Fail(fmt::format("{}: {}", what, r.error().ToString()));
  return std::move(*r);
}
void Must(const Status& s, std::string_view what) {
  if (!s.ok()) Fail(fmt::format("{}: {}", what, s.ToString()));
}
// An operation the backend may decline: UNSUPPORTED arrives as FailedPrecondition.
template <typename T>
T MustOrSkip(Result<T> r, std::string_view what) {
  if (!r && r.error().code() == Status::Code::kFailedPrecondition) {
    Skip(fmt::format("{} is not supported: {}", what, r.error().message()));
  }
  return Must(std::move(r), what);
}
void Expect(bool ok, std::string why) {
  if (!ok) Fail(std::move(why));
}
// A call that must fail with `want` (and the plugin host must survive it).
template <typename T>
void ExpectError(const Result<T>& r, Status::Code want, std::string_view what) {
  if (r) Fail(fmt::format("{}: succeeded, expected an error", what));
  if (r.error().code() != want) {
    Fail(fmt::format("{}: expected {}, got {}", what,
                     want == Status::Code::kNotFound ? "AUGUR_ERR_NOT_FOUND" : "AUGUR_ERR_INVALID",
                     r.error().ToString()));
  }
}
void ExpectError(const Status& s, Status::Code want, std::string_view what) {
  ExpectError(s.ok() ? Result<int>(0) : Result<int>(Err(s)), want, what);
}

bool Within(const Resources& r, const Resources& lo, const Resources& hi) {
  constexpr double kEps = 1e-9;
  return r.cpu_cores + kEps >= lo.cpu_cores && r.cpu_cores <= hi.cpu_cores + kEps &&
         r.memory_bytes >= lo.memory_bytes && r.memory_bytes <= hi.memory_bytes;
}

std::string Show(const Resources& r) {
  return fmt::format("{:.3g} cores, {} bytes", r.cpu_cores, r.memory_bytes);
}

class Runner {
 public:
  explicit Runner(const ConformanceOptions& o) : o_(o) {}

  std::vector<CheckResult> Run() {
    auto started = HostedBackend::Start(o_.client);
    if (!started) {
      Report({"abi", Outcome::kFail, started.error().message()});
      return results_;
    }
    b_ = std::move(*started);
    BackendHealth h = b_->Health();
    if (!h.up) {
      Report({"abi", Outcome::kFail, "loaded but not up: " + h.last_error});
      return results_;
    }
    Report({"abi", Outcome::kPass,
            fmt::format("declares plugin ABI {}.{}, accepted by this agent (ABI {}.{})",
                        h.abi_major, h.abi_minor, AUGUR_PLUGIN_ABI_MAJOR,
                        AUGUR_PLUGIN_ABI_MINOR)});
    abi_minor_ = h.abi_minor;
    Check("describe", [&] { return Describe(); });
    Check("lifecycle", [&] { return Lifecycle(); });
    Check("idempotent_provision", [&] { return Idempotent(); });
    Check("tasks", [&] { return Tasks(); });
    Check("cancel", [&] { return CancelCheck(); });
    Check("io_counters", [&] { return IoCounters(); });
    Check("bad_arguments", [&] { return BadArguments(); });
    Check("resize", [&] { return ResizeCheck(); });
    Check("double_release", [&] { return DoubleRelease(); });
    Check("prewarm", [&] { return PrewarmCheck(); });
    Check("threads", [&] { return Threads(); });
    Check("recover", [&] { return RecoverCheck(); });
    Cleanup();
    return results_;
  }

 private:
  void Report(CheckResult r) {
    if (o_.on_result) o_.on_result(r);
    results_.push_back(std::move(r));
  }

  template <typename F>
  void Check(const std::string& name, F&& body) {
    if (std::find(o_.skip.begin(), o_.skip.end(), name) != o_.skip.end()) {
      Report({name, Outcome::kSkip, "skipped on request (--skip)"});
      return;
    }
    const uint64_t restarts_before = b_->Health().restarts;
    CheckResult r{name, Outcome::kPass, ""};
    try {
      r.detail = body();
    } catch (const CheckFailed& f) {
      r.outcome = f.outcome;
      r.detail = f.why;
    }
    // A check other than recover must not have cost a plugin host: a crash or hang that
    // the error path hid is still a failure.
    BackendHealth h = b_->Health();
    if (r.outcome != Outcome::kFail && name != "recover" && h.restarts != restarts_before) {
      r.outcome = Outcome::kFail;
      r.detail = "the plugin host was lost during this check: " + h.last_error;
    }
    if (!h.up && !b_->WaitUntilUp(o_.client.call_timeout * 2 + o_.client.backoff_max)) {
      r.outcome = Outcome::kFail;
      r.detail += "; the plugin host did not come back: " + b_->Health().last_error;
    }
    // A check that stopped half-way (failed, or skipped after provisioning) leaves its
    // instances behind; they would eat the capacity the next checks ask for.
    Cleanup();
    Report(std::move(r));
  }

  AllocRequest Request(const std::string& name, double frac = 0.25) {
    // Small enough to fit next to whatever else runs on the backend.
    const Resources& avail = info_.available;
    AllocRequest r;
    r.name = fmt::format("augur-check-{}-{}", ::getpid(), name);
    r.want = {std::max(0.01, std::floor(avail.cpu_cores * frac * 100) / 100),
              std::max<uint64_t>(1 << 20, static_cast<uint64_t>(avail.memory_bytes * frac))};
    r.min = {r.want.cpu_cores / 2, r.want.memory_bytes / 2};
    r.template_ref = o_.template_ref;
    return r;
  }

  Instance ProvisionOk(const AllocRequest& req) {
    Instance inst = Must(b_->Provision(req), "provision");
    Expect(inst.state == InstanceState::kReady || inst.state == InstanceState::kPending,
           fmt::format("provision: state {}, expected ready or pending",
                       InstanceStateName(inst.state)));
    Expect(Within(inst.granted, req.min, req.want),
           fmt::format("provision: granted {} outside [min {}, want {}]", Show(inst.granted),
                       Show(req.min), Show(req.want)));
    live_.push_back(inst.handle);
    return inst;
  }

  void ReleaseOk(const std::string& handle) {
    Must(b_->Release(handle), "release");
    std::erase(live_, handle);
  }

  std::string Describe() {
    info_ = Must(b_->Describe(), "describe");
    Expect(!info_.version.empty(), "describe: version is empty");
    Expect(info_.capacity.cpu_cores > 0, "describe: capacity has no CPU");
    Expect(Within(info_.available, {0, 0}, info_.capacity),
           fmt::format("describe: available {} exceeds capacity {}", Show(info_.available),
                       Show(info_.capacity)));
    Expect(info_.healthy || !info_.health_detail.empty(),
           "describe: unhealthy without a health_detail saying why");
    return fmt::format("{} {} ({}), capacity {}", info_.name, info_.version,
                       info_.healthy ? "healthy" : "unhealthy: " + info_.health_detail,
                       Show(info_.capacity));
  }

  std::string Lifecycle() {
    Instance inst = ProvisionOk(Request("life"));
    BackendInfo after = Must(b_->Describe(), "describe after provision");
    Expect(after.available.cpu_cores <= info_.available.cpu_cores + 1e-9,
           "describe: available CPU grew after a provision");
    ReleaseOk(inst.handle);
    return fmt::format("provisioned {} ({}) and released it", inst.handle, Show(inst.granted));
  }

  std::string Idempotent() {
    AllocRequest req = Request("idem");
    Instance a = ProvisionOk(req);
    Instance b = Must(b_->Provision(req), "second provision of the same name");
    ReleaseOk(a.handle);
    Expect(a.handle == b.handle,
           fmt::format("same name gave two instances: {} and {}", a.handle, b.handle));
    return "same name, same handle";
  }

  Task Shell(const std::string& script) {
    Task t;
    t.argv = {"/bin/sh", "-c", script};
    t.env = {"PATH=/usr/bin:/bin"};
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    t.meta = {"augur-plugin-check", "conformance", "shard-0", 0, 0, 1, 5, host};
    return t;
  }

  std::string Tasks() {
    Instance inst = ProvisionOk(Request("tasks"));
    std::string inv = MustOrSkip(b_->Run(inst.handle, Shell("exit 3")), "run");
    TaskStatus st = Must(b_->Poll(inv, milliseconds(10'000)), "poll");
    Expect(st.state == TaskState::kExited && st.exit_code == 3,
           fmt::format("poll: expected exited with code 3, got {} code {}",
                       TaskStateName(st.state), st.exit_code));
    Expect(st.finished_ns >= st.started_ns, "poll: finished before it started");
    std::string inv2 = Must(b_->Run(inst.handle, Shell("kill -9 $$")), "run");
    TaskStatus st2 = Must(b_->Poll(inv2, milliseconds(10'000)), "poll");
    Expect(st2.state == TaskState::kKilled && st2.term_signal == SIGKILL,
           fmt::format("poll: expected killed by signal 9, got {} signal {}",
                       TaskStateName(st2.state), st2.term_signal));
    ReleaseOk(inst.handle);
    return "exit code 3 and SIGKILL reported";
  }

  std::string CancelCheck() {
    Instance inst = ProvisionOk(Request("cancel"));
    std::string inv = MustOrSkip(b_->Run(inst.handle, Shell("sleep 60")), "run");
    TaskStatus running = Must(b_->Poll(inv, milliseconds(0)), "poll");
    Expect(running.state == TaskState::kRunning,
           fmt::format("poll right after run: {}, expected running", TaskStateName(running.state)));
    Must(b_->Cancel(inv), "cancel");
    TaskStatus st = Must(b_->Poll(inv, milliseconds(10'000)), "poll after cancel");
    Expect(st.state == TaskState::kKilled,
           fmt::format("poll after cancel: {}, expected killed", TaskStateName(st.state)));
    Must(b_->Cancel(inv), "cancelling a finished task");
    ReleaseOk(inst.handle);
    return "running task killed; second cancel OK";
  }

  // The I/O counters of ABI 1.1 behave as counters: never decreasing while the task runs,
  // final (stable) once it finished. What they count is the backend's business (some cannot
  // see any I/O and report 0), so the figures are shown, not judged.
  std::string IoCounters() {
    Instance inst = ProvisionOk(Request("io"));
    // 1 MiB written to a file, a pause (so a poll sees it running), the file read back.
    const std::string script =
        "f=/tmp/augur-check-io.$$; dd if=/dev/zero of=$f bs=65536 count=16 2>/dev/null; "
        "sleep 0.3; cat $f > /dev/null; rm -f $f";
    std::string inv = MustOrSkip(b_->Run(inst.handle, Shell(script)), "run");
    TaskStatus first = Must(b_->Poll(inv, milliseconds(0)), "poll");
    TaskStatus last = Must(b_->Poll(inv, milliseconds(10'000)), "poll");
    Expect(last.state == TaskState::kExited && last.exit_code == 0,
           fmt::format("poll: expected exited with code 0, got {} code {}",
                       TaskStateName(last.state), last.exit_code));
    Expect(last.bytes_read >= first.bytes_read && last.bytes_written >= first.bytes_written,
           fmt::format("counters went down: read {} -> {}, written {} -> {}", first.bytes_read,
                       last.bytes_read, first.bytes_written, last.bytes_written));
    TaskStatus again = Must(b_->Poll(inv, milliseconds(0)), "poll of the finished task");
    Expect(again.bytes_read == last.bytes_read && again.bytes_written == last.bytes_written,
           fmt::format("a finished task's counters changed: read {} -> {}, written {} -> {}",
                       last.bytes_read, again.bytes_read, last.bytes_written,
                       again.bytes_written));
    ReleaseOk(inst.handle);
    if (abi_minor_ < 1) {
      Expect(last.bytes_read == 0 && last.bytes_written == 0,
             "a plugin of ABI 1.0 has no I/O counters, yet some came through");
      return "plugin of ABI 1.0: no I/O counters (reported as 0)";
    }
    return fmt::format("a task writing and reading 1 MiB: bytes_read {}, bytes_written {}",
                       last.bytes_read, last.bytes_written);
  }

  std::string BadArguments() {
    AllocRequest inverted = Request("bad");
    std::swap(inverted.want, inverted.min);
    inverted.min.cpu_cores += 1;
    ExpectError(b_->Provision(inverted), Status::Code::kInvalidArgument, "provision with min > want");
    AllocRequest unnamed = Request("bad");
    unnamed.name = "";
    ExpectError(b_->Provision(unnamed), Status::Code::kInvalidArgument, "provision with no name");
    AllocRequest nan = Request("nan");
    nan.want.cpu_cores = std::nan("");
    ExpectError(b_->Provision(nan), Status::Code::kInvalidArgument, "provision of NaN cores");
    ExpectError(b_->Release("augur-check-no-such-instance"), Status::Code::kNotFound,
                "release of an unknown instance");
    ExpectError(b_->Resize("augur-check-no-such-instance", {1, 1 << 20}), Status::Code::kNotFound,
                "resize of an unknown instance");
    ExpectError(b_->Poll("augur-check-no-such-invocation", milliseconds(0)),
                Status::Code::kNotFound, "poll of an unknown invocation");
    Instance inst = ProvisionOk(Request("badrun"));
    Task empty;
    auto r = b_->Run(inst.handle, empty);
    if (!r && r.error().code() == Status::Code::kFailedPrecondition) {
      ReleaseOk(inst.handle);
      return "bad values refused, unknown handles not found (run unsupported)";
    }
    ExpectError(r, Status::Code::kInvalidArgument, "run with an empty argv");
    ExpectError(b_->Run("augur-check-no-such-instance", Shell("true")), Status::Code::kNotFound,
                "run in an unknown instance");
    ExpectError(b_->Resize(inst.handle, {-1, 1 << 20}), Status::Code::kInvalidArgument,
                "resize to negative cores");
    ReleaseOk(inst.handle);
    return "bad values refused with AUGUR_ERR_INVALID, unknown handles with AUGUR_ERR_NOT_FOUND";
  }

  std::string ResizeCheck() {
    AllocRequest req = Request("resize");
    Instance inst = ProvisionOk(req);
    Resources smaller = {inst.granted.cpu_cores / 2, inst.granted.memory_bytes / 2};
    Resources got = Must(b_->Resize(inst.handle, smaller), "shrink");
    Expect(Within(got, {0, 0}, smaller),
           fmt::format("shrink to {} left {}", Show(smaller), Show(got)));
    Resources bigger = {inst.granted.cpu_cores, inst.granted.memory_bytes};
    Resources grown = Must(b_->Resize(inst.handle, bigger), "grow");
    Expect(Within(grown, got, bigger),
           fmt::format("grow from {} to {} gave {}", Show(got), Show(bigger), Show(grown)));
    ReleaseOk(inst.handle);
    return fmt::format("shrank to {}, grew back to {}", Show(got), Show(grown));
  }

  std::string DoubleRelease() {
    Instance inst = ProvisionOk(Request("double"));
    ReleaseOk(inst.handle);
    ExpectError(b_->Release(inst.handle), Status::Code::kNotFound, "second release");
    return "second release is AUGUR_ERR_NOT_FOUND";
  }

  std::string PrewarmCheck() {
    uint32_t n = MustOrSkip(b_->Prewarm(Request("warm", 0.1), 2), "prewarm");
    Expect(n <= 2, fmt::format("prewarm prepared {} of 2", n));
    return fmt::format("{} of 2 prepared", n);
  }

  std::string Threads() {
    constexpr int kThreads = 8, kRounds = 5;
    std::atomic<int> failures{0};
    std::string first_error;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int k = 0; k < kRounds; ++k) {
          AllocRequest req = Request(fmt::format("thr{}-{}", t, k), 0.5 / kThreads);
          auto fail = [&](const Status& s) {
            ++failures;
            std::lock_guard<std::mutex> lock(mu);
            if (first_error.empty()) first_error = s.ToString();
          };
          if (auto d = b_->Describe(); !d) fail(d.error());
          auto inst = b_->Provision(req);
          if (!inst) {
            fail(inst.error());
            continue;
          }
          if (auto inv = b_->Run(inst->handle, Shell("true"))) {
            if (auto st = b_->Poll(*inv, milliseconds(10'000)); !st) fail(st.error());
          } else if (inv.error().code() != Status::Code::kFailedPrecondition) {
            fail(inv.error());
          }
          if (Status s = b_->Release(inst->handle); !s.ok()) fail(s);
        }
      });
    }
    for (std::thread& th : threads) th.join();
    Expect(failures == 0, fmt::format("{} calls failed; first: {}", failures.load(), first_error));
    return fmt::format("{} threads x {} provision/run/poll/release rounds", kThreads, kRounds);
  }

  std::string RecoverCheck() {
    Instance inst = ProvisionOk(Request("recover"));
    auto inv = b_->Run(inst.handle, Shell("sleep 60"));
    const bool has_task = static_cast<bool>(inv);
    const int pid = b_->Health().host_pid;
    Expect(pid > 0, "no plugin host pid");
    ::kill(pid, SIGKILL);
    (void)b_->Describe();  // notices the dead host at once
    Expect(b_->WaitUntilUp(o_.client.call_timeout * 2),
           "host not back after SIGKILL: " + b_->Health().last_error);
    BackendHealth h = b_->Health();
    Expect(h.recovered_instances >= 1,
           fmt::format("recover() after the restart re-attached {} instances, expected the one "
                       "provisioned",
                       h.recovered_instances));
    std::string detail = "instance re-attached after SIGKILL of the host";
    if (has_task) {
      TaskStatus st = Must(b_->Poll(*inv, milliseconds(0)), "poll after recover");
      Expect(st.state == TaskState::kRunning,
             fmt::format("task after recover: {}, expected still running", TaskStateName(st.state)));
      Must(b_->Cancel(*inv), "cancel after recover");
      detail += "; its task still running";
    }
    auto bogus = Must(b_->Recover({"augur-check-never-existed"}, {}), "recover of an unknown handle");
    Expect(bogus.instances.size() == 1 && bogus.instances[0] == InstanceState::kGone,
           "recover: an unknown instance must be reported gone");
    ReleaseOk(inst.handle);
    return detail;
  }

  // Releases what checks left; a handle whose release failed is kept for another try.
  void Cleanup() {
    for (const std::string& h : std::vector<std::string>(live_)) {
      Status s = b_->Release(h);
      if (s.ok() || s.IsNotFound()) std::erase(live_, h);
    }
  }

  const ConformanceOptions& o_;
  std::unique_ptr<HostedBackend> b_;
  uint32_t abi_minor_ = 0;  // what the plugin declares
  BackendInfo info_;
  std::vector<std::string> live_;  // instances to release if a check stops half-way
  std::vector<CheckResult> results_;
};

}  // namespace

std::vector<CheckResult> RunConformance(const ConformanceOptions& options) {
  return Runner(options).Run();
}

}  // namespace augur::plugin
