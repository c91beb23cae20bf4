// LogFields: the workflow, stage and shard a log line is about, carried beside the text so
// that journald can index them (journalctl -u augurd WORKFLOW=wf-1, see
// agent/journald_sink.h). Code that logs about a workflow sets them for a scope:
//
//   ScopedLogFields fields(LogFieldsFromAttemptId(attempt_id));
//   spdlog::info("workflow {}: started {}", ...);   // carries WORKFLOW, STAGE, SHARD
//
// Thread safety: the current fields are thread-local, so a scope covers exactly the log
// lines written on its own thread (spdlog's synchronous loggers call their sinks on the
// logging thread). Scopes nest; the inner one replaces the outer until it ends.
#ifndef AUGUR_COMMON_LOG_FIELDS_H_
#define AUGUR_COMMON_LOG_FIELDS_H_

#include <string>
#include <string_view>

namespace augur {

struct LogFields {
  std::string workflow;  // workflow id, "" when the line is about none
  std::string stage;     // stage name within it
  std::string shard;     // shard id with its attempt number, "3#1"
  bool empty() const { return workflow.empty() && stage.empty() && shard.empty(); }
};

// The fields of the innermost ScopedLogFields alive on this thread; all empty without one.
const LogFields& CurrentLogFields();

class ScopedLogFields {
 public:
  explicit ScopedLogFields(LogFields fields);
  ~ScopedLogFields();
  ScopedLogFields(const ScopedLogFields&) = delete;
  ScopedLogFields& operator=(const ScopedLogFields&) = delete;

 private:
  LogFields saved_;
};

// Splits an attempt id, "<workflow>/<stage>/<shard_id>#<n>" (workflow/store.h), into its
// fields. Workflow ids and stage names hold no '/', so the first two slashes split it; an id
// with fewer gives what it has (a bare workflow id gives the workflow alone).
LogFields LogFieldsFromAttemptId(std::string_view attempt_id);

}  // namespace augur

#endif  // AUGUR_COMMON_LOG_FIELDS_H_
