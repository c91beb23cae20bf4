// The augurctl commands that talk to augurd's workflow engine over the control socket:
// submit, status, result, cancel, boost, history, profile, event, events. Each returns the
// process exit code (0 OK, 1 an error augurd or the socket reported, which is printed to
// stderr).
#ifndef AUGUR_AGENT_WORKFLOW_COMMANDS_H_
#define AUGUR_AGENT_WORKFLOW_COMMANDS_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/control.pb.h"

#include "augur/status.h"

namespace augur::agent {

struct ControlTarget {
  std::string socket = "/run/augur/augur.sock";
  std::chrono::milliseconds timeout{30'000};
};

// One round trip to augurd; prints what went wrong to stderr ("augurctl: ...") and returns
// nullopt when there is no OK reply.
std::optional<control::Reply> CallAugurd(const ControlTarget& t, const control::Request& req);

// With `wait`: a live progress line per stage until the workflow ends, then its result.
int SubmitCommand(const ControlTarget& t, const std::string& file, bool wait, bool json);
int StatusCommand(const ControlTarget& t, const std::string& workflow, bool json, bool explain);
int ResultCommand(const ControlTarget& t, const std::string& workflow, const std::string& stage);
int CancelCommand(const ControlTarget& t, const std::string& workflow);
int BoostCommand(const ControlTarget& t, const std::string& workflow, double points,
                 std::chrono::milliseconds duration);
int HistoryCommand(const ControlTarget& t, const std::string& workflow, bool json, int limit);
// What augurd learned about a workflow (or one stage): a table per stage, the next hour's
// demand and upcoming events.
int ProfileCommand(const ControlTarget& t, const std::string& workflow, const std::string& stage,
                   bool json);
// Stores a demand event; `at` is RFC 3339 (2026-12-04T18:00:00Z) or a duration from now (30m).
// Exit 2 for an `at` that is neither.
int EventCommand(const ControlTarget& t, const std::string& name, const std::string& workflow,
                 double expected, const std::string& at, bool json);
int EventsCommand(const ControlTarget& t, const std::string& workflow, bool json);

// `at` as augurctl event takes it: nanoseconds since the epoch, or InvalidArgument.
Result<int64_t> ParseEventTime(const std::string& at, int64_t now_ns);

// "90s", "1h2m" for ETAs.
std::string FormatSeconds(double s);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_WORKFLOW_COMMANDS_H_
