// Micro-benchmarks of the shared-memory series store (src/telemetry/shm_store.h).
//
//   BM_Append/series:S        ns per ShmWriter::Append, round-robin over S series
//   BM_ReaderLatest           ns per ShmReader::Latest (no concurrent writer)
//   BM_ReaderLast/n:N         ns per ShmReader::Last(id, N)
//   BM_WriterThroughput/readers:R
//       appends per wall-clock second (items_per_second) while R reader processes hammer
//       Latest and Last(16) on the very series being written. With fewer than R+1 CPUs
//       this mixes CPU starvation into the result, so it also reports
//       appends_per_writer_cpu_s: appends per second of the writer thread's own CPU time,
//       i.e. what the readers cost the writer through shared cache lines alone.
//   BM_WriterThroughputPaced/readers:R
//       the same with readers as real clients behave: each reads every series (Latest and
//       Last(16)) then sleeps 1 ms, i.e. polls 1000 times a second, far above what
//       augurctl top or a /metrics scrape does.
//
// Run: shm_store_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <string>
#include <vector>

#include "telemetry/shm_store.h"

namespace augur::telemetry {
namespace {

constexpr uint32_t kCapacity = 3600;  // the default: an hour at 1 s
constexpr int kHotSeries = 16;

std::string SegmentName() { return "augur_bench_" + std::to_string(getpid()); }

void RemoveSegment(const std::string& name) {
  boost::interprocess::shared_memory_object::remove(name.c_str());
  unlink(("/dev/shm/" + name + ".lock").c_str());
}

// A writer on a fresh segment with `series` series, each holding `fill` points.
struct Fixture {
  Fixture(benchmark::State& state, int series, uint32_t fill) : name(SegmentName()) {
    RemoveSegment(name);
    StoreOptions o;
    o.name = name;
    o.capacity = kCapacity;
    o.max_series = static_cast<uint32_t>(series);
    auto w = ShmWriter::Create(o);
    if (!w) {
      state.SkipWithError(w.error().ToString().c_str());
      return;
    }
    writer = std::move(*w);
    for (int i = 0; i < series; ++i) {
      auto id = writer->Resolve(SeriesKey("bench_points_total", {{"i", std::to_string(i)}}));
      if (!id) {
        state.SkipWithError(id.error().ToString().c_str());
        writer.reset();
        return;
      }
      ids.push_back(*id);
      for (uint32_t k = 1; k <= fill; ++k) {
        ++ts;
        writer->Append(*id, ts, static_cast<double>(ts));
      }
    }
  }
  ~Fixture() {
    writer.reset();
    RemoveSegment(name);
  }

  std::string name;
  std::unique_ptr<ShmWriter> writer;
  std::vector<SeriesId> ids;
  int64_t ts = 0;
};

// Reader processes that loop over Latest and Last(16) on `series` series until killed.
class ReaderProcesses {
 public:
  // `pause_us` > 0: sleep that long after each pass over all series.
  ReaderProcesses(const std::string& name, int count, int series, int pause_us = 0) {
    int ready[2];
    if (pipe(ready) != 0) return;
    for (int c = 0; c < count; ++c) {
      const pid_t pid = fork();
      if (pid < 0) break;
      if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the benchmark
        close(ready[0]);
        auto reader = ShmReader::Open(name);
        const char status = reader ? 'r' : 'e';
        if (write(ready[1], &status, 1) != 1 || !reader) _exit(1);
        for (uint64_t i = 0;; ++i) {
          const SeriesId id = static_cast<SeriesId>(i % series);
          benchmark::DoNotOptimize((*reader)->Latest(id));
          benchmark::DoNotOptimize((*reader)->Last(id, 16));
          if (pause_us > 0 && id == static_cast<SeriesId>(series - 1)) usleep(pause_us);
        }
      }
      pids_.push_back(pid);
    }
    close(ready[1]);
    int started = 0;
    char status = 0;
    while (started < count && read(ready[0], &status, 1) == 1 && status == 'r') ++started;
    close(ready[0]);
    ok_ = started == count;
  }
  ~ReaderProcesses() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  bool ok() const { return ok_; }

 private:
  std::vector<pid_t> pids_;
  bool ok_ = false;
};

void BM_Append(benchmark::State& state) {
  const int series = static_cast<int>(state.range(0));
  Fixture f(state, series, 0);
  if (!f.writer) return;
  size_t i = 0;
  for (auto _ : state) {
    ++f.ts;
    f.writer->Append(f.ids[i], f.ts, static_cast<double>(f.ts) * 0.5);
    if (++i == f.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Append)->ArgName("series")->Arg(1)->Arg(16)->Arg(256);

void BM_ReaderLatest(benchmark::State& state) {
  Fixture f(state, kHotSeries, kCapacity + 10);
  if (!f.writer) return;
  auto reader = ShmReader::Open(f.name);
  if (!reader) return state.SkipWithError(reader.error().ToString().c_str());
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize((*reader)->Latest(f.ids[i]));
    if (++i == f.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReaderLatest);

void BM_ReaderLast(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  Fixture f(state, kHotSeries, kCapacity + 10);
  if (!f.writer) return;
  auto reader = ShmReader::Open(f.name);
  if (!reader) return state.SkipWithError(reader.error().ToString().c_str());
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize((*reader)->Last(f.ids[i], n));
    if (++i == f.ids.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(n));
}
BENCHMARK(BM_ReaderLast)->ArgName("n")->Arg(16)->Arg(kCapacity);

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void WriterThroughput(benchmark::State& state, int pause_us) {
  const int readers = static_cast<int>(state.range(0));
  Fixture f(state, kHotSeries, 1);
  if (!f.writer) return;
  ReaderProcesses procs(f.name, readers, kHotSeries, pause_us);
  if (!procs.ok()) return state.SkipWithError("could not start reader processes");
  size_t i = 0;
  const double cpu_start = ThreadCpuSeconds();
  for (auto _ : state) {
    ++f.ts;
    f.writer->Append(f.ids[i], f.ts, static_cast<double>(f.ts) * 0.5);
    if (++i == f.ids.size()) i = 0;
  }
  const double cpu = ThreadCpuSeconds() - cpu_start;
  state.SetItemsProcessed(state.iterations());
  if (cpu > 0) {
    state.counters["appends_per_writer_cpu_s"] =
        benchmark::Counter(static_cast<double>(state.iterations()) / cpu);
  }
}
void BM_WriterThroughput(benchmark::State& state) { WriterThroughput(state, 0); }
BENCHMARK(BM_WriterThroughput)->ArgName("readers")->Arg(0)->Arg(1)->Arg(8)->UseRealTime();

void BM_WriterThroughputPaced(benchmark::State& state) { WriterThroughput(state, 1000); }
BENCHMARK(BM_WriterThroughputPaced)->ArgName("readers")->Arg(0)->Arg(8)->UseRealTime();

}  // namespace
}  // namespace augur::telemetry

BENCHMARK_MAIN();
