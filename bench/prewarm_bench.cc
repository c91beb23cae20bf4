// Start latency of a shard with and without a pre-warmed instance, through the plugin host
// as augurd calls it (HostedBackend), doing what Executor::Start does in each case:
//   cold         provision(grant) + run(task)
//   warm         run(task) in an instance provisioned ahead at the grant's shape
//   warm+resize  resize(grant) + run(task) in a larger instance provisioned ahead
// Cold and warm starts alternate, so that the machine's noise falls on both alike. The
// task is /bin/true; its end is waited for (not timed) and the instance released.
//
// The libvirt backend runs on test:///default, whose driver has no guest agent: run() is
// unsupported there, so its starts are timed up to a ready instance (provision, or the
// resize of a warm one), and a third variant times provision after prewarm(shape, 1) (the
// plugin's own pool of defined, not started, domains).
//
// Usage (root, for the process backend's cgroups): prewarm_bench [iterations] (default 50).
// Run from the build tree.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "plugin/plugin_client.h"

namespace {

using augur::plugin::HostedBackend;
using Clock = std::chrono::steady_clock;
namespace plugin = augur::plugin;

double Ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

void Report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[static_cast<size_t>(q * double(v.size() - 1))]; };
  std::printf("  %-38s median %7.3f ms  p90 %7.3f ms  max %7.3f ms  (n=%zu)\n", what, at(0.5),
              at(0.9), v.back(), v.size());
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "prewarm_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<HostedBackend> Start(const std::string& name, const std::string& dir,
                                     plugin::KeyValues config) {
  const std::string build = AUGUR_BENCH_BUILD_DIR;
  plugin::PluginClientOptions o;
  o.name = name;
  o.plugin_path = build + "/plugins/augur-" + name + ".so";
  o.host_path = build + "/agent/augur-plugin-host";
  o.runtime_dir = dir;
  o.config = std::move(config);
  auto b = HostedBackend::Start(o);
  if (!b) Die(name + ": " + b.error().message());
  for (int i = 0; i < 100 && !(*b)->Describe(); ++i) usleep(50'000);
  return std::move(*b);
}

plugin::AllocRequest Req(const std::string& name, plugin::Resources r) {
  plugin::AllocRequest q;
  q.name = name;
  q.want = q.min = r;
  return q;
}

// Runs /bin/true in `instance` and waits for it (the wait is not part of a start).
std::string Run(HostedBackend& b, const std::string& instance) {
  plugin::Task t;
  t.argv = {"/bin/true"};
  t.env = {"PATH=/usr/bin:/bin"};
  auto inv = b.Run(instance, t);
  if (!inv) Die("run: " + inv.error().message());
  return *inv;
}
void Finish(HostedBackend& b, const std::string& inv, const std::string& instance) {
  for (int i = 0; i < 200; ++i) {
    auto st = b.Poll(inv, std::chrono::milliseconds(50));
    if (st && st->state != plugin::TaskState::kRunning) break;
  }
  (void)b.Release(instance);
}

// The backend's parent cgroup, empty once every instance is released.
void RemoveParent(const std::string& parent) {
  const std::string cmd = "for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do rmdir ${h}" + parent +
                          " 2>/dev/null; done; true";
  (void)std::system(cmd.c_str());
}

void Process(int n, const std::string& dir) {
  auto b = Start("process", dir,
                 {{"cgroup_parent", "augur-prewarm-bench-" + std::to_string(getpid())}});
  const plugin::Resources grant{0.5, 64ULL << 20}, larger{1, 128ULL << 20};
  std::vector<double> cold, cold_provision, warm, resized;
  for (int i = 0; i < n + 3; ++i) {  // the first 3 rounds warm caches and are not counted
    const bool count = i >= 3;
    // Cold.
    auto t0 = Clock::now();
    auto inst = b->Provision(Req("cold-" + std::to_string(i), grant));
    if (!inst) Die("provision: " + inst.error().message());
    if (count) cold_provision.push_back(Ms(t0));
    std::string inv = Run(*b, inst->handle);
    if (count) cold.push_back(Ms(t0));
    Finish(*b, inv, inst->handle);
    // Warm: provisioned ahead (not timed), then the start.
    auto w = b->Provision(Req("warm-" + std::to_string(i), grant));
    if (!w) Die("provision: " + w.error().message());
    t0 = Clock::now();
    inv = Run(*b, w->handle);
    if (count) warm.push_back(Ms(t0));
    Finish(*b, inv, w->handle);
    // Warm and larger: resized to the grant first.
    auto l = b->Provision(Req("warmr-" + std::to_string(i), larger));
    if (!l) Die("provision: " + l.error().message());
    t0 = Clock::now();
    if (auto g = b->Resize(l->handle, grant); !g) Die("resize: " + g.error().message());
    inv = Run(*b, l->handle);
    if (count) resized.push_back(Ms(t0));
    Finish(*b, inv, l->handle);
  }
  b.reset();
  RemoveParent("augur-prewarm-bench-" + std::to_string(getpid()));
  std::printf("process backend (cgroups), start = until run() returned:\n");
  Report("cold: provision + run", cold);
  Report("  of which provision", cold_provision);
  Report("warm: run", warm);
  Report("warm, larger: resize + run", resized);
}

void Libvirt(int n, const std::string& dir) {
  auto b = Start("libvirt", dir, {{"uri", "test:///default"}});
  const plugin::Resources grant{1, 256ULL << 20}, larger{2, 512ULL << 20};
  std::vector<double> cold, pooled, warm;
  for (int i = 0; i < n + 3; ++i) {
    const bool count = i >= 3;
    auto t0 = Clock::now();
    auto inst = b->Provision(Req("cold-" + std::to_string(i), grant));
    if (!inst) Die("provision: " + inst.error().message());
    if (count) cold.push_back(Ms(t0));
    (void)b->Release(inst->handle);
    // The plugin's own pool: a domain defined ahead, taken and started by provision.
    auto hint = b->Prewarm(Req("", grant), 1);
    if (!hint || *hint != 1) Die("prewarm did not prepare a domain");
    t0 = Clock::now();
    auto p = b->Provision(Req("pooled-" + std::to_string(i), grant));
    if (!p) Die("provision: " + p.error().message());
    if (count) pooled.push_back(Ms(t0));
    (void)b->Release(p->handle);
    // A warm instance (started ahead, larger), resized to the grant.
    auto w = b->Provision(Req("warm-" + std::to_string(i), larger));
    if (!w) Die("provision: " + w.error().message());
    t0 = Clock::now();
    auto g = b->Resize(w->handle, grant);
    if (count) warm.push_back(Ms(t0));
    if (!g) Die("resize: " + g.error().message());
    (void)b->Release(w->handle);
  }
  std::printf("libvirt backend (test:///default), start = until the instance is ready:\n");
  Report("cold: provision (define + start)", cold);
  Report("cold after prewarm hint: provision", pooled);
  Report("warm, larger: resize", warm);
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 50;
  spdlog::set_level(spdlog::level::warn);
  std::string dir = "/tmp/augur-prewarm-bench.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) Die("mkdtemp");
  if (geteuid() == 0) {
    Process(n, dir);
  } else {
    std::printf("process backend: skipped (needs root for cgroups)\n");
  }
  Libvirt(n, dir);
  return 0;
}
