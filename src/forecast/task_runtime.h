// TaskRuntimePredictor: predicts a task's run time (or any positive per-task quantity:
// CPU, memory) from its category and from what ran before it, learning online as tasks
// finish. The workflow scheduler feeds it (the agent wiring is separate).
//
// Model, in log space: the category's running mean of log(value), plus a host factor (the
// mean amount by which tasks on that host ran above or below their category's mean, learned
// across categories: a slower machine is slower for everything), plus a per-category
// dlib::rls on features (input bytes, the parents' run times) for what is left. Each
// category uses the regression only while its recent absolute log error is lower than the
// mean's: with a few dozen tasks a regression can easily be worse than a mean. An unseen
// category falls back to a global model. Predictions are clamped to the range the category
// has produced so far, widened by 2x either side: a wild extrapolation is worse for a
// scheduler than a conservative one.
//
// Thread safety: none.
#ifndef AUGUR_FORECAST_TASK_RUNTIME_H_
#define AUGUR_FORECAST_TASK_RUNTIME_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::forecast {

// What is known about a task before it runs.
struct TaskFeatures {
  std::string category;            // e.g. the executable ("mProject")
  std::string host;                // where it will run, when known ("" otherwise)
  double input_bytes = 0;          // total size of its input files (0: unknown)
  int num_parents = 0;
  double parent_runtime_mean = 0;  // seconds; 0 when it has no parents
  double parent_runtime_max = 0;
};

struct TaskPredictorOptions {
  double forget = 1.0;         // regression forget factor (per task of the category)
  int min_samples = 3;         // tasks of a category before its regression is used
  size_t max_categories = 4096;
};

class TaskRuntimePredictor {
 public:
  explicit TaskRuntimePredictor(TaskPredictorOptions opts = {});
  TaskRuntimePredictor(TaskRuntimePredictor&&) noexcept;
  TaskRuntimePredictor& operator=(TaskRuntimePredictor&&) noexcept;
  ~TaskRuntimePredictor();

  // Predicted value (> 0), or NaN when nothing at all has been learned yet.
  double Predict(const TaskFeatures& t) const;
  // Learns from a finished task. Non-positive or non-finite values are ignored.
  void Learn(const TaskFeatures& t, double value);

  size_t categories() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::forecast

#endif  // AUGUR_FORECAST_TASK_RUNTIME_H_
