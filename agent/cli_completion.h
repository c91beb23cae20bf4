// BashCompletion: a bash completion script for a CLI11 command tree, so that the script
// `augurctl completion bash` prints (and packaging/completion/augurctl.bash holds) follows
// augurctl's commands and flags instead of being kept by hand.
//
// What it completes: the command names after the program (and its global options); after a
// command, that command's options when the word starts with '-'; file names for a
// positional named FILE or an option taking TEXT (paths, mostly); nothing after an option
// taking a number; the allowed words of a positional restricted to a fixed set (none here
// but `completion bash`'s shell). Global options taking a value are skipped over when
// looking for the command.
//
// Thread safety: reads `app` only.
#ifndef AUGUR_AGENT_CLI_COMPLETION_H_
#define AUGUR_AGENT_CLI_COMPLETION_H_

#include <map>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace augur::agent {

// `program` is the command the script completes ("augurctl"). `words` gives fixed
// completions for positionals, by "COMMAND POSITIONAL" ("completion SHELL" -> {"bash"}).
std::string BashCompletion(const CLI::App& app, const std::string& program,
                           const std::map<std::string, std::vector<std::string>>& words = {});

}  // namespace augur::agent

#endif  // AUGUR_AGENT_CLI_COMPLETION_H_
