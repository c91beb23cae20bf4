// The journal entry augurd writes for a log line: priority per level, and the workflow,
// stage and shard fields a ScopedLogFields sets on the logging thread.
#include "agent/journald_sink.h"

#include <thread>

#include <gtest/gtest.h>

#include "common/log_fields.h"

namespace augur::agent {
namespace {


TEST(JournaldSink, PriorityFollowsTheLevel) {
  EXPECT_EQ(JournalPriority(spdlog::level::trace), 7);
  EXPECT_EQ(JournalPriority(spdlog::level::debug), 7);
  EXPECT_EQ(JournalPriority(spdlog::level::info), 6);
  EXPECT_EQ(JournalPriority(spdlog::level::warn), 4);
  EXPECT_EQ(JournalPriority(spdlog::level::err), 3);
  EXPECT_EQ(JournalPriority(spdlog::level::critical), 2);
}

TEST(JournaldSink, FieldsWithoutAScopeAreTheMessageAlone) {
  EXPECT_EQ(JournalFields("started", spdlog::level::info, "augurd", CurrentLogFields()),
            (std::vector<std::string>{"MESSAGE=started", "PRIORITY=6",
                                      "SYSLOG_IDENTIFIER=augurd"}));
}

TEST(JournaldSink, ScopedFieldsAreAddedAndNestOnTheirThreadOnly) {
  ScopedLogFields outer(LogFieldsFromAttemptId("etl-1a2b/extract/3#2"));
  EXPECT_EQ(JournalFields("m", spdlog::level::warn, "augurd", CurrentLogFields()),
            (std::vector<std::string>{"MESSAGE=m", "PRIORITY=4", "SYSLOG_IDENTIFIER=augurd",
                                      "WORKFLOW=etl-1a2b", "STAGE=extract", "SHARD=3#2"}));
  {
    ScopedLogFields inner({"other-9", "", ""});
    EXPECT_EQ(CurrentLogFields().workflow, "other-9");
    EXPECT_EQ(CurrentLogFields().stage, "");
  }
  EXPECT_EQ(CurrentLogFields().stage, "extract");
  std::thread([] { EXPECT_TRUE(CurrentLogFields().empty()); }).join();
}

TEST(LogFields, AttemptIdsSplitIntoWhatTheyHave) {
  LogFields f = LogFieldsFromAttemptId("wf-1/merge/0-99#1");
  EXPECT_EQ(f.workflow, "wf-1");
  EXPECT_EQ(f.stage, "merge");
  EXPECT_EQ(f.shard, "0-99#1");
  f = LogFieldsFromAttemptId("wf-1/only-stage");
  EXPECT_EQ(f.workflow, "wf-1");
  EXPECT_EQ(f.stage, "only-stage");
  EXPECT_EQ(f.shard, "");
  f = LogFieldsFromAttemptId("wf-1");
  EXPECT_EQ(f.workflow, "wf-1");
  EXPECT_TRUE(f.stage.empty() && f.shard.empty());
  EXPECT_TRUE(LogFieldsFromAttemptId("").empty());
}

}  // namespace
}  // namespace augur::agent
