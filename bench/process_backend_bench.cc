// Whole-path latency of the process backend: provision -> run /bin/true -> poll until it
// exits -> release, through the C ABI of augur-process.so exactly as the plugin host drives
// it. Prints p50/p90/p99/max over N iterations (default 50) for the whole cycle and for each
// step. Needs root and writable cgroups.
//
//   sudo build/bench/process_backend_bench [iterations]
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "augur/plugin.h"

namespace {

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void Report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) { return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))]; };
  std::printf("%-10s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", what, pct(0.5),
              pct(0.9), pct(0.99), v.back());
}

[[noreturn]] void Die(const augur_plugin_api* api, augur_plugin* p, const char* what) {
  std::fprintf(stderr, "%s failed: %s\n", what, p ? api->last_error(p) : "");
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 50;
  std::string path = std::string(AUGUR_BUILD_DIR) + "/plugins/augur-process.so";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "dlopen %s: %s\n", path.c_str(), dlerror());
    return 1;
  }
  auto entry = reinterpret_cast<augur_plugin_entry_fn>(dlsym(lib, AUGUR_PLUGIN_ENTRY_SYMBOL));
  const augur_plugin_api* api = entry();
  std::string parent = "augur-bench-" + std::to_string(getpid());
  augur_kv config[] = {{"cgroup_parent", parent.c_str()}};
  augur_host_api host{};
  host.struct_size = sizeof host;
  host.config = config;
  host.config_len = 1;
  augur_rc rc;
  const char* err = nullptr;
  augur_plugin* p = api->init(&host, &rc, &err);
  if (p == nullptr) {
    std::fprintf(stderr, "init: %s\n", err);
    return 1;
  }

  const char* task_argv[] = {"/bin/true"};
  augur_task task{};
  task.struct_size = sizeof task;
  task.argv = task_argv;
  task.argc = 1;
  task.workdir = "";
  task.stdout_path = "";
  task.stderr_path = "";

  std::vector<double> total, prov, run, poll, rel;
  for (int i = 0; i < iterations; ++i) {
    std::string name = "b" + std::to_string(i);
    augur_alloc_request req{};
    req.struct_size = sizeof req;
    req.name = name.c_str();
    req.want = req.min = {0.5, 64ull << 20};
    req.template_ref = "";
    req.resource_class = "";
    augur_instance_info info{};
    info.struct_size = sizeof info;
    double t0 = NowMs();
    if (api->provision(p, &req, &info) != AUGUR_OK) Die(api, p, "provision");
    double t1 = NowMs();
    char inv[AUGUR_HANDLE_MAX];
    if (api->run(p, info.handle, &task, inv) != AUGUR_OK) Die(api, p, "run");
    double t2 = NowMs();
    augur_task_status st{};
    st.struct_size = sizeof st;
    do {
      if (api->poll(p, inv, 5000, &st) != AUGUR_OK) Die(api, p, "poll");
    } while (st.state == AUGUR_TASK_RUNNING);
    if (st.state != AUGUR_TASK_EXITED || st.exit_code != 0) Die(api, p, "task");
    double t3 = NowMs();
    if (api->release(p, info.handle) != AUGUR_OK) Die(api, p, "release");
    double t4 = NowMs();
    prov.push_back(t1 - t0);
    run.push_back(t2 - t1);
    poll.push_back(t3 - t2);
    rel.push_back(t4 - t3);
    total.push_back(t4 - t0);
  }
  api->destroy(p);
  // The parent cgroups the plugin made, in every hierarchy it used.
  for (const char* m : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/memory",
                        "/sys/fs/cgroup/unified", "/sys/fs/cgroup"}) {
    rmdir((std::string(m) + "/" + parent).c_str());
  }
  std::printf("process backend, %d iterations (provision -> run /bin/true -> poll -> release)\n",
              iterations);
  Report("total", total);
  Report("provision", prov);
  Report("run", run);
  Report("poll", poll);
  Report("release", rel);
  dlclose(lib);
  return 0;
}
