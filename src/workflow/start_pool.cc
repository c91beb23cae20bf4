#include "workflow/start_pool.h"

#include <time.h>

#include <algorithm>

namespace augur::workflow {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

StartPool::StartPool(size_t threads, Done done) : done_(std::move(done)) {
  threads = std::max<size_t>(1, threads);
  for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

StartPool::~StartPool() { (void)Stop(); }

bool StartPool::Post(StartJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

std::vector<StartJob> StartPool::Stop() {
  std::vector<StartJob> unstarted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    for (StartJob& j : queue_) unstarted.push_back(std::move(j));
    queue_.clear();
  }
  cv_.notify_all();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  return unstarted;
}

size_t StartPool::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size() + running_;
}

void StartPool::Work() {
  for (;;) {
    StartJob job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing was queued before the stop
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    StartDone d = Run(std::move(job));
    done_(std::move(d));
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
}

StartDone StartPool::Run(StartJob job) {
  StartDone d;
  plugin::Backend& b = *job.backend;
  if (job.instance.empty()) {
    auto inst = b.Provision(job.request);
    if (!inst) {
      d.error = inst.error().Annotate("provision");
      d.provision_failed = true;
      d.job = std::move(job);
      return d;
    }
    d.instance = inst->handle;
    d.granted = inst->granted;
  } else {
    d.instance = job.instance;
  }
  auto inv = b.Run(d.instance, job.task);
  d.running_ns = NowNs();
  if (!inv) {
    (void)b.Release(d.instance);
    d.instance.clear();
    d.error = inv.error().Annotate("run");
  } else {
    d.invocation = *inv;
  }
  d.job = std::move(job);
  return d;
}

}  // namespace augur::workflow
