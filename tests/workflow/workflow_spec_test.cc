#include "workflow/workflow_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "testing/corpus_files.h"

namespace augur::workflow {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kCorpus = fs::path(AUGUR_SOURCE_DIR) / "tests/workflow/corpus";

using testing::SplitLines;
std::string ReadFile(const fs::path& path) { return testing::ReadWholeFile(path); }
std::vector<fs::path> CorpusFiles(const std::string& dir) { return testing::YamlFilesIn(kCorpus / dir); }

// The error lines of a workflow that must not parse.
std::vector<std::string> ErrorsOf(std::string_view yaml) {
  Result<WorkflowSpec> w = ParseWorkflow(yaml, "w.yaml");
  if (w) return {};
  EXPECT_TRUE(w.error().IsInvalidArgument()) << w.error().ToString();
  return SplitLines(w.error().message());
}

// ---- Units -----------------------------------------------------------------------------

TEST(ParseMemoryTest, BinaryAndDecimalUnits) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"4096", 4096},          {"512Mi", 512ULL << 20}, {"2Gi", 2ULL << 30},
      {"1.5Gi", 3ULL << 29},   {"100M", 100'000'000},   {"1G", 1'000'000'000},
      {"1k", 1000},            {"1Ki", 1024},           {"1Ti", 1ULL << 40},
      {"0.5Ki", 512},          {"007Mi", 7ULL << 20},   {"16000Ti", 16000ULL << 40},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    Result<uint64_t> m = ParseMemory(text);
    ASSERT_TRUE(m) << m.error().ToString();
    EXPECT_EQ(*m, want);
  }
}

TEST(ParseMemoryTest, RejectsWithAReason) {
  EXPECT_THAT(ParseMemory("512MB").error().message(),
              HasSubstr("unknown unit 'MB' (Ki Mi Gi Ti are powers of 1024, k M G T of 1000); "
                        "did you mean 512M (powers of 1000) or 512Mi (powers of 1024)?"));
  EXPECT_THAT(ParseMemory("1.1Ki").error().message(), HasSubstr("not a whole number of bytes"));
  EXPECT_THAT(ParseMemory("0").error().message(), HasSubstr("must be more than 0"));
  EXPECT_THAT(ParseMemory("20000000Ti").error().message(), HasSubstr("bad memory"));  // > 2^64
  for (const char* text : {"", "Mi", "-1Mi", "1 Mi", "1.Mi", ".5Mi", "1e6", "0x10", "1mi"}) {
    SCOPED_TRACE(text);
    Result<uint64_t> m = ParseMemory(text);
    ASSERT_FALSE(m);
    EXPECT_TRUE(m.error().IsInvalidArgument());
  }
}

TEST(ParseCpuTest, CoresAndMillicores) {
  const std::pair<const char*, double> cases[] = {
      {"2", 2}, {"0.5", 0.5}, {"1.25", 1.25}, {"500m", 0.5}, {"1500m", 1.5}, {"1m", 0.001}};
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    Result<double> c = ParseCpu(text);
    ASSERT_TRUE(c) << c.error().ToString();
    EXPECT_DOUBLE_EQ(*c, want);
  }
  for (const char* text : {"", "0", "0m", "-1", "inf", "nan", "2 cores", "1.5m", "m", "1e3", "+1"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(ParseCpu(text));
  }
  EXPECT_THAT(ParseCpu("0").error().message(), HasSubstr("must be more than 0"));
}

TEST(ResourcesTest, ScaledRoundsMemoryUpAndToStringIsShort) {
  Resources r{2, 512ULL << 20};
  EXPECT_EQ(r.Scaled(0.5), (Resources{1, 256ULL << 20}));
  EXPECT_EQ(Resources({1, 3}).Scaled(0.5).memory, 2u);
  EXPECT_EQ(r.ToString(), "2 cpu, 512Mi");
  EXPECT_EQ(Resources({0.5, 3ULL << 29}).ToString(), "0.5 cpu, 1.50Gi");
  EXPECT_EQ(Resources({1, 100}).ToString(), "1 cpu, 100");
}

// ---- Durations and deadlines -----------------------------------------------------------

TEST(DeadlineTest, RelativeIsCountedFromSubmission) {
  Result<WorkflowSpec> w = ParseWorkflow("workflow: w\ndeadline: 15m\nstages: [{name: a, run: [x]}]");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->deadline.kind, Deadline::Kind::kRelative);
  EXPECT_EQ(w->deadline.relative, milliseconds(15 * 60'000));
  EXPECT_EQ(w->deadline.At(1'000), 1'000 + 15LL * 60 * 1'000'000'000);
  EXPECT_EQ(Deadline{}.At(1'000), 0);
}

TEST(DeadlineTest, Rfc3339WithZoneOrOffset) {
  const std::pair<const char*, int64_t> cases[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"2026-12-04T18:00:00Z", 1796407200LL * 1'000'000'000},
      {"2026-12-04T19:00:00+01:00", 1796407200LL * 1'000'000'000},
      {"2026-12-04T17:30:00-00:30", 1796407200LL * 1'000'000'000},
      {"2024-02-29T00:00:00.25Z", 1709164800LL * 1'000'000'000 + 250'000'000},
  };
  for (const auto& [text, want] : cases) {
    SCOPED_TRACE(text);
    Result<WorkflowSpec> w = ParseWorkflow(
        std::string("workflow: w\ndeadline: ") + text + "\nstages: [{name: a, run: [x]}]");
    ASSERT_TRUE(w) << w.error().ToString();
    EXPECT_EQ(w->deadline.kind, Deadline::Kind::kAbsolute);
    EXPECT_EQ(w->deadline.At(12345), want);
  }
  for (const char* text : {"2026-12-04T18:00:00", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z",
                           "2026-12-04 18:00:00Z", "2026-12-04T24:00:00Z", "2026-12-04T18:00Z",
                           "2026-12-04T18:00:00+1:00", "2026-12-04T18:00:00.Z"}) {
    SCOPED_TRACE(text);
    std::vector<std::string> e = ErrorsOf(std::string("workflow: w\ndeadline: '") + text +
                                          "'\nstages: [{name: a, run: [x]}]");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_THAT(e[0], HasSubstr("w.yaml:2:1: deadline: bad time"));
  }
}

TEST(DurationTest, StageDurationsUseTheConfigSyntax) {
  Result<WorkflowSpec> w = ParseWorkflow(
      "workflow: w\nstages:\n  - {name: a, run: [x], timeout: 1.5s, expected: 2m,"
      " retries: {count: 3, backoff: 250ms, grow_cpu: 2}}\n");
  ASSERT_TRUE(w) << w.error().ToString();
  const StageSpec& s = w->stages[0];
  EXPECT_EQ(s.timeout, milliseconds(1500));
  EXPECT_EQ(s.expected, milliseconds(120'000));
  EXPECT_EQ(s.retries.count, 3u);
  EXPECT_EQ(s.retries.backoff, milliseconds(250));
  EXPECT_DOUBLE_EQ(s.retries.grow_cpu, 2);
  EXPECT_DOUBLE_EQ(s.retries.grow_memory, 1);
  EXPECT_THAT(ErrorsOf("workflow: w\nstages:\n  - {name: a, run: [x], timeout: 5}\n"),
              ElementsAre("w.yaml:3:25: stages[0].timeout: bad duration '5': add a unit (5s for "
                          "seconds, 5ms for milliseconds)"));
}

// ---- The parser ------------------------------------------------------------------------

TEST(ParseWorkflowTest, TheDocumentedExample) {
  Result<WorkflowSpec> w = LoadWorkflowFile((kCorpus / "good/checksum.yaml").string());
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->name, "checksum");
  EXPECT_EQ(w->priority, 6);
  EXPECT_EQ(w->deadline.relative, milliseconds(15 * 60'000));
  EXPECT_EQ(w->budget, 1.5);
  ASSERT_EQ(w->stages.size(), 2u);
  const StageSpec& c = w->stages[0];
  EXPECT_EQ(c.name, "count");
  EXPECT_TRUE(c.needs.empty());
  EXPECT_EQ(c.backend, "process");
  EXPECT_EQ(c.want, (Resources{2, 512ULL << 20}));
  EXPECT_EQ(c.min, (Resources{0.5, 128ULL << 20}));
  EXPECT_EQ(c.shards.kind, ShardsSpec::Kind::kRange);
  EXPECT_EQ(c.shards.begin, 0u);
  EXPECT_EQ(c.shards.end, 1'000'000u);
  EXPECT_EQ(c.shards.count, 8u);
  EXPECT_TRUE(c.shards.split_to_fit);
  EXPECT_EQ(c.retries.count, 2u);
  EXPECT_EQ(c.retries.backoff, milliseconds(1000));
  EXPECT_DOUBLE_EQ(c.retries.grow_memory, 1.5);
  EXPECT_EQ(c.timeout, milliseconds(300'000));
  EXPECT_EQ(c.expected, milliseconds(30'000));
  EXPECT_THAT(c.env, ElementsAre(std::pair<std::string, std::string>("LC_ALL", "C")));
  ASSERT_EQ(c.run.size(), 3u);
  EXPECT_EQ(c.run[0], "sh");
  EXPECT_EQ(c.merge.kind, MergeSpec::Kind::kConcat);
  EXPECT_EQ(c.pos.line, 7);
  EXPECT_EQ(c.pos.column, 5);
  const StageSpec& t = w->stages[1];
  EXPECT_THAT(t.needs, ElementsAre("count"));
  EXPECT_EQ(w->PriorityOf(t), 8);
  EXPECT_EQ(w->PriorityOf(c), 6);
  EXPECT_EQ(t.shards.kind, ShardsSpec::Kind::kSingle);
  EXPECT_EQ(t.shards.count, 1u);
  EXPECT_EQ(t.want, (Resources{1, 256ULL << 20}));  // the defaults
  EXPECT_EQ(t.min, t.want);
  EXPECT_EQ(w->StageIndex("total"), 1);
  EXPECT_EQ(w->StageIndex("count"), 0);
  EXPECT_EQ(w->StageIndex("nope"), -1);
}

TEST(ParseWorkflowTest, ShardDefaults) {
  Result<WorkflowSpec> w = ParseWorkflow(
      "workflow: w\nstages:\n"
      "  - {name: r, shards: {range: [5, 50]}, run: [x]}\n"
      "  - {name: i, shards: {items: [a, b, c]}, run: [x]}\n"
      "  - {name: g, shards: {items: [a, b, c], count: 2, split: false}, run: [x]}\n"
      "  - {name: m, shards: {range: [0, 9], count: auto, max: 3}, run: [x],"
      " merge: {command: [sort, -m, '{inputs}']}}\n");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->stages[0].shards.count, 0u);  // a range alone: auto
  EXPECT_EQ(w->stages[1].shards.kind, ShardsSpec::Kind::kItems);
  EXPECT_EQ(w->stages[1].shards.count, 3u);  // one per item
  EXPECT_EQ(w->stages[2].shards.count, 2u);
  EXPECT_FALSE(w->stages[2].shards.split_to_fit);
  EXPECT_EQ(w->stages[3].shards.max, 3u);
  EXPECT_EQ(w->stages[3].merge.kind, MergeSpec::Kind::kCommand);
  EXPECT_THAT(w->stages[3].merge.command, ElementsAre("sort", "-m", "{inputs}"));
}

TEST(ParseWorkflowTest, MinDefaultsToWantPerDimension) {
  Result<WorkflowSpec> w = ParseWorkflow(
      "workflow: w\nstages: [{name: a, run: [x], resources: {cpu: 4, memory: 1Gi, min_cpu: 1}}]");
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_EQ(w->stages[0].min, (Resources{1, 1ULL << 30}));
}

TEST(ParseWorkflowTest, AMinAboveTheDefaultWantSaysSo) {
  EXPECT_THAT(ErrorsOf("workflow: w\nstages: [{name: a, run: [x], resources: {min_cpu: 2}}]"),
              ElementsAre("w.yaml:2:42: stages[0].resources.min_cpu: 2 is above cpu (1, the "
                          "default)"));
}

TEST(ParseWorkflowTest, EmptyFileNamesWhatIsMissing) {
  EXPECT_THAT(ErrorsOf(""), ElementsAre("w.yaml: expected a workflow (a map with workflow, "
                                        "stages and optionally priority, deadline, budget), got "
                                        "nothing"));
}

TEST(ParseWorkflowTest, SecondDocumentIsAnError) {
  EXPECT_THAT(ErrorsOf("workflow: w\nstages: [{name: a, run: [x]}]\n---\nworkflow: v\n"),
              ElementsAre("w.yaml:4:1: a second YAML document starts here; a workflow file is "
                          "one document"));
}

TEST(ParseWorkflowTest, HangInputOfTheConfigFuzzerReturns) {
  std::vector<std::string> e = ErrorsOf("{a}, b}");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_THAT(e[0], HasSubstr("w.yaml:1:4: YAML syntax error"));
}

TEST(LoadWorkflowFileTest, FileErrors) {
  const fs::path dir = fs::temp_directory_path() / ("augur_wf_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  EXPECT_TRUE(LoadWorkflowFile((dir / "none.yaml").string()).error().IsNotFound());
  EXPECT_THAT(LoadWorkflowFile(dir.string()).error().message(),
              HasSubstr("is a directory, not a workflow file"));
  {
    std::ofstream big(dir / "big.yaml");
    big << "workflow: w\n# " << std::string(5 << 20, 'x') << "\n";
  }
  EXPECT_THAT(LoadWorkflowFile((dir / "big.yaml").string()).error().message(),
              HasSubstr("big.yaml: larger than 4194304 bytes; is this the workflow file?"));
  fs::remove_all(dir);
}

// ---- Corpus ----------------------------------------------------------------------------
// Each bad file starts with its expected messages, all of them, in order, without the file
// name: "# expect: LINE:COLUMN: message".

class BadWorkflowCorpusTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(BadWorkflowCorpusTest, FailsWithExactlyTheExpectedMessages) {
  const fs::path& path = GetParam();
  const std::string text = ReadFile(path);
  const std::string name = path.filename().string();
  std::vector<std::string> expects;
  for (const std::string& line : SplitLines(text)) {
    if (line.starts_with("# expect: ")) expects.push_back(name + ":" + line.substr(10));
  }
  ASSERT_FALSE(expects.empty()) << path << " has no '# expect: ' line";
  Result<WorkflowSpec> w = ParseWorkflow(text, name);
  ASSERT_FALSE(w) << path << " parsed";
  EXPECT_TRUE(w.error().IsInvalidArgument());
  EXPECT_EQ(SplitLines(w.error().message()), expects) << w.error().message();
}

std::string CorpusTestName(const ::testing::TestParamInfo<fs::path>& info) {
  std::string n = info.param.stem().string();
  std::replace_if(n.begin(), n.end(), [](char c) { return !std::isalnum(c); }, '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadWorkflowCorpusTest, ::testing::ValuesIn(CorpusFiles("bad")),
                         CorpusTestName);

TEST(BadWorkflowCorpusSizeTest, HasEnoughCases) { EXPECT_GE(CorpusFiles("bad").size(), 15u); }

class GoodWorkflowCorpusTest : public ::testing::TestWithParam<fs::path> {};

TEST_P(GoodWorkflowCorpusTest, Parses) {
  Result<WorkflowSpec> w = LoadWorkflowFile(GetParam().string());
  ASSERT_TRUE(w) << w.error().ToString();
  EXPECT_FALSE(w->stages.empty());
}

INSTANTIATE_TEST_SUITE_P(Corpus, GoodWorkflowCorpusTest, ::testing::ValuesIn(CorpusFiles("good")),
                         CorpusTestName);

}  // namespace
}  // namespace augur::workflow
