// Lets the test binary double as the workload the backends run: started as
//   <test binary> --augur-child <mode> [arg]
// it does that one thing and never reaches GoogleTest. This runs from a static constructor,
// before main(), so gtest_main needs no changes. Modes:
//   burn         spin on one CPU forever
//   hog <MiB>    allocate and touch <MiB> of memory, then exit 0
//   forker <n>   fork n children that sleep, print their pids (one a line), sleep
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::vector<std::string> Cmdline() {
  std::ifstream in("/proc/self/cmdline");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> out;
  for (size_t start = 0; start < all.size();) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    out.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

[[noreturn]] void Burn() {
  volatile unsigned long x = 0;
  for (;;) x = x + 1;
}

[[noreturn]] void Hog(size_t mib) {
  const size_t bytes = mib << 20;
  char* p = static_cast<char*>(std::malloc(bytes));
  if (p == nullptr) _exit(2);
  // One write per page makes every page resident, which is what the limit counts.
  for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
  _exit(0);
}

[[noreturn]] void Forker(int n) {
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      for (;;) pause();
    }
    std::printf("%d\n", pid);
  }
  std::fflush(stdout);
  for (;;) pause();
}

__attribute__((constructor)) void MaybeRunChildMode() {
  std::vector<std::string> args = Cmdline();
  if (args.size() < 3 || args[1] != "--augur-child") return;
  const std::string& mode = args[2];
  std::string arg = args.size() > 3 ? args[3] : "0";
  if (mode == "burn") Burn();
  if (mode == "hog") Hog(std::strtoul(arg.c_str(), nullptr, 10));
  if (mode == "forker") Forker(std::atoi(arg.c_str()));
  std::fprintf(stderr, "unknown child mode %s\n", mode.c_str());
  _exit(64);
}

}  // namespace
