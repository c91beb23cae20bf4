// The augurctl commands that talk to augurd's workflow engine over the control socket:
// submit, status, result, cancel, boost, history. Each returns the process exit code (0 OK,
// 1 an error augurd or the socket reported, which is printed to stderr).
#ifndef AUGUR_AGENT_WORKFLOW_COMMANDS_H_
#define AUGUR_AGENT_WORKFLOW_COMMANDS_H_

#include <chrono>
#include <string>

namespace augur::agent {

struct ControlTarget {
  std::string socket = "/run/augur/augur.sock";
  std::chrono::milliseconds timeout{30'000};
};

// With `wait`: a live progress line per stage until the workflow ends, then its result.
int SubmitCommand(const ControlTarget& t, const std::string& file, bool wait, bool json);
int StatusCommand(const ControlTarget& t, const std::string& workflow, bool json, bool explain);
int ResultCommand(const ControlTarget& t, const std::string& workflow, const std::string& stage);
int CancelCommand(const ControlTarget& t, const std::string& workflow);
int BoostCommand(const ControlTarget& t, const std::string& workflow, double points,
                 std::chrono::milliseconds duration);
int HistoryCommand(const ControlTarget& t, const std::string& workflow, bool json, int limit);

// "90s", "1h2m" for ETAs.
std::string FormatSeconds(double s);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_WORKFLOW_COMMANDS_H_
