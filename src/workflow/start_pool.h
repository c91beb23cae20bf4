// StartPool: the executor's few worker threads that start tasks through a backend, so that
// the engine thread does not wait for them (docs/WORKFLOWS.md, "Starting tasks").
//
// Starting a task is a Provision (a cgroup, a VM ...) and a Run through the backend: 3.6 ms
// on a quiet host, 53-103 ms at the load of a shared 2-core machine (docs/MESH.md, "Placement
// benchmarks"). The engine thread hands a StartJob to Post() and goes on at once; a worker
// provisions the instance (unless the job names one, a pre-warmed instance), runs the task
// in it, releases the instance when the run fails, and hands a StartDone to the `done`
// callback, which the executor queues for its engine thread. The pool knows nothing of the
// engine, the store or the executor's task map: those stay the engine thread's.
//
// Stop() ends the pool: jobs not begun are handed back (never started), jobs running finish
// (each backend call is bounded by the backend's own deadline, plugins.call_timeout for a
// hosted plugin) and report through `done` before Stop returns.
//
// Thread safety: Post, Stop and in_flight may be called from any thread; `done` is called on
// a worker thread, one call at a time per worker, never with the pool's lock held.
#ifndef AUGUR_WORKFLOW_START_POOL_H_
#define AUGUR_WORKFLOW_START_POOL_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "augur/status.h"
#include "plugin/backend.h"

namespace augur::workflow {

struct StartJob {
  std::string key;  // the executor's name of the task (an attempt id, "lease:<id>")
  plugin::Backend* backend = nullptr;  // outlives the pool
  // Provisioned first, unless `instance` is set (a pre-warmed instance already taken).
  plugin::AllocRequest request;
  std::string instance;
  plugin::Task task;
  // Set by the executor when it posts the job again after releasing warm instances for a
  // provision refused for room (it is tried again once).
  bool retried_for_room = false;
};

struct StartDone {
  StartJob job;
  // The instance's handle and grant ("" when the provision failed, and released when the
  // run failed); the invocation's handle ("" when the task did not start).
  std::string instance;
  plugin::Resources granted;
  std::string invocation;
  // OK, or the provision's or the run's error, annotated "provision" or "run".
  Status error;
  bool provision_failed = false;
  int64_t running_ns = 0;  // CLOCK_REALTIME when the run returned
};

class StartPool {
 public:
  using Done = std::function<void(StartDone)>;
  // `threads` workers (at least one).
  StartPool(size_t threads, Done done);
  // Stop(), dropping the jobs not begun.
  ~StartPool();

  // Queues a job; false (the job dropped) once Stop() was called.
  bool Post(StartJob job);
  // Stops the workers: returns the jobs not begun; the running ones finish and report
  // through `done` first. Later calls return nothing.
  std::vector<StartJob> Stop();
  // Jobs queued or running.
  size_t in_flight() const;

  // One job, on the calling thread: what a worker does with it (the executor runs the leased
  // jobs Stop handed back this way: no engine of this host would run them again).
  static StartDone Run(StartJob job);

 private:
  void Work();

  const Done done_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StartJob> queue_;  // guarded by mu_
  size_t running_ = 0;          // guarded by mu_
  bool stop_ = false;           // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_START_POOL_H_
