#include "agent/journald_sink.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace augur::agent {

int JournalPriority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical: return 2;  // LOG_CRIT
    case spdlog::level::err: return 3;       // LOG_ERR
    case spdlog::level::warn: return 4;      // LOG_WARNING
    case spdlog::level::info: return 6;      // LOG_INFO
    default: return 7;                       // LOG_DEBUG: trace, debug
  }
}

std::vector<std::string> JournalFields(std::string_view message, spdlog::level::level_enum level,
                                       std::string_view identifier, const LogFields& fields) {
  std::vector<std::string> out;
  out.push_back("MESSAGE=" + std::string(message));
  out.push_back("PRIORITY=" + std::to_string(JournalPriority(level)));
  out.push_back("SYSLOG_IDENTIFIER=" + std::string(identifier));
  if (!fields.workflow.empty()) out.push_back("WORKFLOW=" + fields.workflow);
  if (!fields.stage.empty()) out.push_back("STAGE=" + fields.stage);
  if (!fields.shard.empty()) out.push_back("SHARD=" + fields.shard);
  return out;
}

bool StderrIsJournal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st;
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

void JournaldSink::sink_it_(const spdlog::details::log_msg& msg) {
  const std::vector<std::string> fields =
      JournalFields(std::string_view(msg.payload.data(), msg.payload.size()), msg.level,
                    identifier_, CurrentLogFields());
  std::vector<iovec> iov;
  iov.reserve(fields.size());
  for (const std::string& f : fields) {
    iov.push_back({const_cast<char*>(f.data()), f.size()});
  }
  // A journal that cannot take the line (journald restarting) costs the line, not the agent.
  if (sd_journal_sendv(iov.data(), int(iov.size())) < 0) {
    const std::string line = fields[0].substr(8) + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
}

}  // namespace augur::agent
