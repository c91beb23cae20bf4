// Round-trip cost of a call through the plugin host: describe() on the example backend,
// from augurd's side (HostedBackend) to the plugin in augur-plugin-host and back. Reports
// p50/p90/p99/max over many calls, plus the same call in-process (AbiBackend) to show what
// the isolation costs. Target (issue): p99 under 100 µs.
//
// Usage: plugin_roundtrip_bench [calls] (default 20000). Run from the build tree.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "plugin/abi_adapter.h"
#include "plugin/plugin_client.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Percentiles {
  double p50, p90, p99, max;
};

Percentiles Summarise(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  auto at = [&](double q) { return us[static_cast<size_t>(q * (us.size() - 1))]; };
  return {at(0.50), at(0.90), at(0.99), us.back()};
}

template <typename F>
std::vector<double> Time(int calls, F&& call) {
  std::vector<double> us;
  us.reserve(calls);
  for (int i = 0; i < calls; ++i) {
    const auto t0 = Clock::now();
    if (!call()) {
      std::fprintf(stderr, "call %d failed\n", i);
      std::exit(1);
    }
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return us;
}

void Print(const char* what, const Percentiles& p) {
  std::printf("%-34s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  max %8.1f us\n", what, p.p50,
              p.p90, p.p99, p.max);
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 20000;
  spdlog::set_level(spdlog::level::warn);
  const std::string build = AUGUR_BENCH_BUILD_DIR;
  std::string dir = "/tmp/augur-plugin-bench.XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) return 1;

  augur::plugin::PluginClientOptions o;
  o.name = "example";
  o.plugin_path = build + "/plugins/augur-example.so";
  o.host_path = build + "/agent/augur-plugin-host";
  o.runtime_dir = dir;
  o.state_dir = dir + "/state";
  auto hosted = augur::plugin::HostedBackend::Start(o);
  if (!hosted || !(*hosted)->Health().up) {
    std::fprintf(stderr, "cannot start the example backend\n");
    return 1;
  }
  auto& b = **hosted;
  Time(1000, [&] { return b.Describe().has_value(); });  // warm-up: sockets, page cache
  Print("describe() through the plugin host", Summarise(Time(calls, [&] {
          return b.Describe().has_value();
        })));
  // Poll of a finished task: the smallest plugin call that still crosses the host.
  auto inst = b.Provision({"bench", {0.1, 1 << 20}, {0.1, 1 << 20}, "", "", {}});
  augur::plugin::Task t;
  t.argv = {"/bin/true"};
  auto inv = inst ? b.Run(inst->handle, t) : augur::Result<std::string>(std::unexpected(inst.error()));
  if (!inv || !b.Poll(*inv, std::chrono::milliseconds(5000))) return 1;
  Print("poll() of a finished task, hosted", Summarise(Time(calls, [&] {
          return b.Poll(*inv, std::chrono::milliseconds(0)).has_value();
        })));
  // 4 threads at once: the host serves calls concurrently.
  std::vector<std::vector<double>> per(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { per[i] = Time(calls / 4, [&] { return b.Describe().has_value(); }); });
  }
  for (auto& th : threads) th.join();
  std::vector<double> all;
  for (auto& v : per) all.insert(all.end(), v.begin(), v.end());
  Print("describe(), 4 threads, hosted", Summarise(all));
  (void)b.Release(inst->handle);
  hosted->reset();

  auto loaded = augur::plugin::LoadedPlugin::Load(o.plugin_path, "example");
  if (!loaded) return 1;
  auto local = augur::plugin::AbiBackend::Create(std::move(*loaded), {{}, dir + "/local"});
  if (!local) return 1;
  Print("describe() in-process (no isolation)", Summarise(Time(calls, [&] {
          return (*local)->Describe().has_value();
        })));
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
