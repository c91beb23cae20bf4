// JournaldSink: an spdlog sink that writes each log line to the systemd journal as a
// structured entry (sd_journal_sendv): MESSAGE, PRIORITY from the spdlog level (so
// `journalctl -p warning` works), SYSLOG_IDENTIFIER, and WORKFLOW, STAGE and SHARD from the
// logging thread's LogFields (common/log_fields.h) when it has them, so that
// `journalctl -u augurd WORKFLOW=nightly-1a2b` shows one workflow's lines.
//
// augurd uses it when its stderr is the journal (StderrIsJournal(): systemd's
// $JOURNAL_STREAM names stderr's device and inode); run by hand it logs to stderr as before.
//
// Thread safety: the sink is an spdlog base_sink with a mutex; log from any thread.
#ifndef AUGUR_AGENT_JOURNALD_SINK_H_
#define AUGUR_AGENT_JOURNALD_SINK_H_

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/base_sink.h>

#include "common/log_fields.h"

namespace augur::agent {

// syslog(3) priority of an spdlog level: trace and debug 7, info 6, warn 4, err 3,
// critical 2.
int JournalPriority(spdlog::level::level_enum level);

// The journal fields of one entry, each "NAME=value" (values may hold newlines: the
// journal's native protocol keeps them). Empty LogFields add nothing.
std::vector<std::string> JournalFields(std::string_view message, spdlog::level::level_enum level,
                                       std::string_view identifier, const LogFields& fields);

// True when stderr is connected to the journal (systemd.exec(5), $JOURNAL_STREAM).
bool StderrIsJournal();

class JournaldSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit JournaldSink(std::string identifier) : identifier_(std::move(identifier)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override;
  void flush_() override {}

 private:
  const std::string identifier_;
};

}  // namespace augur::agent

#endif  // AUGUR_AGENT_JOURNALD_SINK_H_
