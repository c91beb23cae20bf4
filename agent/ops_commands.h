// The augurctl commands for operating augurd: `doctor` (agent/doctor.h) and `backends`
// (the plugin hosts and their health, over the control socket). Each returns the process
// exit code.
#ifndef AUGUR_AGENT_OPS_COMMANDS_H_
#define AUGUR_AGENT_OPS_COMMANDS_H_

#include <string>

#include "agent/workflow_commands.h"

namespace augur::agent {

struct DoctorCommandOptions {
  std::string config_path;  // "": the default config file when it exists, else the defaults
  std::string socket;       // "": control.socket from the config
  std::string shm;          // "": telemetry.shm_name from the config
  bool json = false;
};

// Runs every check; prints them (text or JSON); 1 when one failed, else 0.
int DoctorCommand(const DoctorCommandOptions& options);

// Every enabled backend: its plugin host's state and pid, restarts and health verdict.
// 1 when augurd could not be asked.
int BackendsCommand(const ControlTarget& t, bool json);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_OPS_COMMANDS_H_
