// augur-eval tasks: online task run-time prediction on WfCommons workflow traces.
#ifndef AUGUR_BENCH_EVAL_TASK_EVAL_H_
#define AUGUR_BENCH_EVAL_TASK_EVAL_H_

#include <string>
#include <vector>

namespace augur::eval {

// Prints the per-trace table; returns a process exit code.
int RunTaskEval(const std::vector<std::string>& json_paths);

}  // namespace augur::eval

#endif  // AUGUR_BENCH_EVAL_TASK_EVAL_H_
