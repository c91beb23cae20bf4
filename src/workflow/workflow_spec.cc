#include "workflow/workflow_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <span>

#include "common/yaml_reader.h"
#include "workflow/placeholders.h"

namespace augur::workflow {
namespace {

using std::chrono::milliseconds;
using yaml::Describe;
using yaml::Errors;
using yaml::JoinPath;
using yaml::Pos;

// A workflow file is a few KB; an items list of a hundred thousand file names fits in 4 MiB.
constexpr size_t kMaxStages = 1000;
constexpr int64_t kMaxShards = 100'000;
constexpr size_t kMaxItems = 1'000'000;
constexpr size_t kMaxNameLength = 64;
constexpr milliseconds kMaxDuration{7LL * 24 * 3600'000};  // a week: longer is a mistake
constexpr milliseconds kMaxDeadline{366LL * 24 * 3600'000};

constexpr std::string_view kTopKeys[] = {"workflow", "priority", "deadline", "budget", "stages"};
constexpr std::string_view kStageKeys[] = {"name",    "needs",    "backend", "priority",
                                           "resources", "shards", "retries", "timeout",
                                           "expected", "env",     "run",     "merge",
                                           "canary", "speculate", "right_size"};
constexpr std::string_view kResourceKeys[] = {"cpu", "memory", "min_cpu", "min_memory"};
constexpr std::string_view kShardKeys[] = {"range", "count", "max", "items", "split"};
constexpr std::string_view kRetryKeys[] = {"count", "backoff", "grow_memory", "grow_cpu"};
constexpr std::string_view kMergeKeys[] = {"command"};
constexpr std::string_view kMergeWords[] = {"concat"};

// The placeholders a command may use; which of them can be filled depends on the stage.
constexpr std::string_view kShardPlaceholders[] = {"shard.index", "shard.count", "shard.begin",
                                                   "shard.end", "shard.item"};

bool IsNameChar(char c, bool dot) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || (dot && c == '.');
}

// Stage and workflow names end up in file names, metrics labels and {inputs.NAME}.
bool IsName(std::string_view s, bool dot) {
  return !s.empty() && s.size() <= kMaxNameLength &&
         std::all_of(s.begin(), s.end(), [dot](char c) { return IsNameChar(c, dot); });
}

bool IsEnvName(std::string_view s) {
  return !s.empty() && !(s[0] >= '0' && s[0] <= '9') &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsNameChar(c, false) && c != '-'; });
}

// A name for `path`: returns it, or reports "PATH: expected RULE, got ..." and returns "".
std::string ParseName(Errors& errors, std::string_view path, const YAML::Node& key_node,
                      const YAML::Node& value, bool dot) {
  const std::string rule =
      fmt::format("a name of 1-64 characters from A-Z a-z 0-9 _ -{}", dot ? " and ." : "");
  std::optional<std::string> text = yaml::ScalarText(errors, path, key_node, value, rule);
  if (!text) return {};
  if (!IsName(*text, dot)) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, rule, Describe(value)));
    return {};
  }
  return *text;
}

// A list of scalars ("PATH: expected WHAT, got ..." otherwise). The item nodes come back too,
// for positions.
bool ParseScalarList(Errors& errors, std::string_view path, const YAML::Node& key_node,
                     const YAML::Node& value, std::string_view what,
                     std::vector<std::string>* out, std::vector<YAML::Node>* nodes) {
  if (!value.IsSequence()) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, what, Describe(value)));
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < value.size(); ++i) {
    const YAML::Node item = value[i];
    const YAML::Node& at = yaml::PosOf(item).line > 0 ? item : key_node;
    if (!item.IsScalar()) {
      errors.Add(at, fmt::format("{}[{}]: expected text, got {}", path, i, Describe(item)));
      ok = false;
      continue;
    }
    out->push_back(item.Scalar());
    nodes->push_back(at);
  }
  return ok;
}

// Whether `*out` was written, like the yaml:: readers.
bool ParseMemoryValue(Errors& errors, std::string_view path, const YAML::Node& key_node,
                      const YAML::Node& value, uint64_t* out) {
  std::optional<std::string> text =
      yaml::ScalarText(errors, path, key_node, value, "an amount such as 512Mi or 2Gi");
  if (!text) return false;
  Result<uint64_t> m = ParseMemory(*text);
  if (!m) {
    errors.Add(key_node, fmt::format("{}: {}", path, m.error().message()));
    return false;
  }
  *out = *m;
  return true;
}

bool ParseCpuValue(Errors& errors, std::string_view path, const YAML::Node& key_node,
                   const YAML::Node& value, double* out) {
  std::optional<std::string> text =
      yaml::ScalarText(errors, path, key_node, value, "cores such as 2, 0.5 or 500m");
  if (!text) return false;
  Result<double> c = ParseCpu(*text);
  if (!c) {
    errors.Add(key_node, fmt::format("{}: {}", path, c.error().message()));
    return false;
  }
  *out = *c;
  return true;
}

void ParseResources(Errors& errors, std::string_view path, const YAML::Node& key_node,
                    const YAML::Node& value, StageSpec* stage) {
  if (!yaml::IsMapOrNull(errors, path, key_node, value,
                         "a map such as {cpu: 2, memory: 512Mi}")) {
    return;
  }
  bool cpu_set = false, memory_set = false, min_cpu_set = false, min_memory_set = false;
  YAML::Node min_cpu_key, min_memory_key;
  yaml::ForEachKey(errors, value, path, kResourceKeys,
                   [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                     const std::string p = JoinPath(path, key);
                     if (key == "cpu") cpu_set = ParseCpuValue(errors, p, k, v, &stage->want.cpu);
                     if (key == "memory") {
                       memory_set = ParseMemoryValue(errors, p, k, v, &stage->want.memory);
                     }
                     if (key == "min_cpu") {
                       min_cpu_set = ParseCpuValue(errors, p, k, v, &stage->min.cpu);
                       min_cpu_key = k;
                     }
                     if (key == "min_memory") {
                       min_memory_set = ParseMemoryValue(errors, p, k, v, &stage->min.memory);
                       min_memory_key = k;
                     }
                   });
  // The least accepted defaults to the want: a stage that says nothing takes no less.
  if (!min_cpu_set) stage->min.cpu = stage->want.cpu;
  if (!min_memory_set) stage->min.memory = stage->want.memory;
  if (min_cpu_set && stage->min.cpu > stage->want.cpu + Resources::kCpuEpsilon) {
    errors.Add(min_cpu_key, fmt::format("{}.min_cpu: {:g} is above cpu ({:g}{})", path,
                                        stage->min.cpu, stage->want.cpu,
                                        cpu_set ? "" : ", the default"));
  }
  if (min_memory_set && stage->min.memory > stage->want.memory) {
    errors.Add(min_memory_key,
               fmt::format("{}.min_memory: {} is above memory ({}{})", path,
                           FormatMemory(stage->min.memory), FormatMemory(stage->want.memory),
                           memory_set ? "" : ", the default"));
  }
}

bool ParseUint64(std::string_view text, uint64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

void ParseShards(Errors& errors, std::string_view path, const YAML::Node& key_node,
                 const YAML::Node& value, ShardsSpec* shards) {
  if (!yaml::IsMapOrNull(errors, path, key_node, value,
                         "a map such as {range: [0, 1000], count: 8} or {items: [a, b]}")) {
    return;
  }
  bool range_ok = false, items_ok = false, count_set = false, max_set = false;
  bool range_seen = false, items_seen = false;
  YAML::Node range_key, items_key, count_key, max_key;
  yaml::ForEachKey(
      errors, value, path, kShardKeys,
      [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
        const std::string p = JoinPath(path, key);
        if (key == "range") {
          range_seen = true;
          range_key = k;
          constexpr std::string_view kWant = "[begin, end], two integers >= 0";
          uint64_t b = 0, e = 0;
          if (!v.IsSequence() || v.size() != 2 || !v[0].IsScalar() || !v[1].IsScalar() ||
              !ParseUint64(v[0].Scalar(), &b) || !ParseUint64(v[1].Scalar(), &e)) {
            errors.Add(k, fmt::format("{}: expected {}, got {}", p, kWant, Describe(v)));
            return;
          }
          if (b >= e) {
            errors.Add(k, fmt::format("{}: [{}, {}] is empty; begin must be below end (the "
                                      "range is half-open)",
                                      p, b, e));
            return;
          }
          shards->begin = b;
          shards->end = e;
          range_ok = true;
        } else if (key == "items") {
          items_seen = true;
          items_key = k;
          std::vector<std::string> items;
          std::vector<YAML::Node> nodes;
          if (!ParseScalarList(errors, p, k, v, "a non-empty list of items", &items, &nodes)) {
            return;
          }
          if (items.empty()) {
            errors.Add(k, fmt::format("{}: expected a non-empty list of items, got an empty list",
                                      p));
            return;
          }
          if (items.size() > kMaxItems) {
            errors.Add(k, fmt::format("{}: {} items is more than {}", p, items.size(), kMaxItems));
            return;
          }
          shards->items = std::move(items);
          items_ok = true;
        } else if (key == "count") {
          count_key = k;
          if (v.IsScalar() && v.Scalar() == "auto") {
            shards->count = 0;
            count_set = true;
            return;
          }
          int64_t c = 0;
          if (!v.IsScalar() || !yaml::ParseIntegerText(v.Scalar(), 1, kMaxShards, &c)) {
            errors.Add(k, fmt::format("{}: expected auto or an integer in 1..{}, got {}", p,
                                      kMaxShards, Describe(v)));
            return;
          }
          shards->count = static_cast<uint32_t>(c);
          count_set = true;
        } else if (key == "max") {
          max_key = k;
          max_set = yaml::ParseInteger(errors, p, k, v, 1, kMaxShards, &shards->max);
        } else if (key == "split") {
          yaml::ParseBool(errors, p, k, v, &shards->split_to_fit);
        }
      });
  if (range_seen && items_seen) {
    errors.Add(items_key, fmt::format("{}: give range or items, not both", path));
    return;
  }
  if (!range_seen && !items_seen) {
    errors.Add(key_node, fmt::format("{}: say what to split: range: [begin, end] or "
                                     "items: [a, b, ...]",
                                     path));
    return;
  }
  if (range_ok) {
    shards->kind = ShardsSpec::Kind::kRange;
    // A range without a count lets the planner choose, as `count: auto` does.
    if (!count_set) shards->count = 0;
  }
  if (items_ok) {
    shards->kind = ShardsSpec::Kind::kItems;
    if (!count_set) shards->count = static_cast<uint32_t>(shards->items.size());
  }
  if (max_set && count_set && shards->count != 0) {
    errors.Add(max_key, fmt::format("{}.max: only applies to count: auto (count is {})", path,
                                    shards->count));
  }
  // Every shard gets at least one value or item.
  const uint64_t values = range_ok   ? shards->end - shards->begin
                          : items_ok ? shards->items.size()
                                     : 0;
  const std::string_view noun = range_ok ? "values in the range" : "items";
  if ((range_ok || items_ok) && count_set && shards->count > values) {
    errors.Add(count_key, fmt::format("{}.count: {} shards cannot split {} {}", path,
                                      shards->count, values, noun));
  }
  if ((range_ok || items_ok) && max_set && shards->max > values) {
    errors.Add(max_key, fmt::format("{}.max: {} shards cannot split {} {}", path, shards->max,
                                    values, noun));
  }
}

void ParseRetries(Errors& errors, std::string_view path, const YAML::Node& key_node,
                  const YAML::Node& value, RetrySpec* retries) {
  if (!yaml::IsMapOrNull(errors, path, key_node, value,
                         "a map such as {count: 2, backoff: 1s}")) {
    return;
  }
  yaml::ForEachKey(errors, value, path, kRetryKeys,
                   [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                     const std::string p = JoinPath(path, key);
                     if (key == "count") yaml::ParseInteger(errors, p, k, v, 0, 100, &retries->count);
                     if (key == "backoff") {
                       yaml::ParseDuration(errors, p, k, v, milliseconds(0), milliseconds(3600'000),
                                           &retries->backoff);
                     }
                     if (key == "grow_memory") {
                       yaml::ParseNumber(errors, p, k, v, 1, 16, "a factor in 1..16, e.g. 1.5",
                                         &retries->grow_memory);
                     }
                     if (key == "grow_cpu") {
                       yaml::ParseNumber(errors, p, k, v, 1, 16, "a factor in 1..16, e.g. 1.5",
                                         &retries->grow_cpu);
                     }
                   });
}

// A command as a non-empty list of text whose first item (the program) is not empty, and the
// nodes of its items (for the placeholder check); false, with `*nodes` left empty, when not.
bool ParseCommand(Errors& errors, const std::string& path, const YAML::Node& key_node,
                  const YAML::Node& value, std::string_view want, std::vector<std::string>* argv,
                  std::vector<YAML::Node>* nodes) {
  std::vector<std::string> a;
  std::vector<YAML::Node> n;
  if (!ParseScalarList(errors, path, key_node, value, want, &a, &n)) return false;
  if (a.empty() || a[0].empty()) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, want,
                                     a.empty() ? "an empty list" : "an empty program name"));
    return false;
  }
  *argv = std::move(a);
  *nodes = std::move(n);
  return true;
}

void ParseMerge(Errors& errors, std::string_view path, const YAML::Node& key_node,
                const YAML::Node& value, MergeSpec* merge, std::vector<YAML::Node>* nodes) {
  if (value.IsMap()) {
    bool have_command = false;
    yaml::ForEachKey(errors, value, path, kMergeKeys,
                     [&](std::string_view, const YAML::Node& k, const YAML::Node& v) {
                       have_command = true;
                       if (ParseCommand(errors, JoinPath(path, "command"), k, v,
                                        "a command as a list, e.g. [sort, -m, '{inputs}']",
                                        &merge->command, nodes)) {
                         merge->kind = MergeSpec::Kind::kCommand;
                       }
                     });
    if (!have_command && value.size() == 0) {
      errors.Add(key_node, fmt::format("{}: expected concat or {{command: [...]}}, got {{}}", path));
    }
    return;
  }
  if (yaml::ParseWord(errors, path, key_node, value, kMergeWords, " or {command: [...]}")) {
    merge->kind = MergeSpec::Kind::kConcat;
  }
}

// Which placeholders a stage can fill, and the check of each command word against it.
struct PlaceholderContext {
  const StageSpec* stage;
  bool in_merge;
  bool shards_ok;  // false when `shards:` had errors: its placeholders are not judged again
};

void CheckPlaceholders(Errors& errors, std::string_view path, const YAML::Node& at,
                       std::string_view text, const PlaceholderContext& ctx) {
  const StageSpec& s = *ctx.stage;
  for (const Placeholder& ph : FindPlaceholders(text)) {
    const std::string_view n = ph.name;
    auto fail = [&](std::string_view why) {
      errors.Add(at, fmt::format("{}: {{{}}} {}", path, n, why));
    };
    const bool shard = n.starts_with("shard.");
    if (shard && std::find(std::begin(kShardPlaceholders), std::end(kShardPlaceholders), n) ==
                     std::end(kShardPlaceholders)) {
      std::string_view near = yaml::ClosestWord(n, kShardPlaceholders);
      fail(near.empty() ? fmt::format("is not a placeholder (known: {})",
                                      yaml::JoinWords(kShardPlaceholders))
                        : fmt::format("is not a placeholder (did you mean {{{}}}?)", near));
    } else if (shard && ctx.in_merge) {
      fail("has no value in a merge command, which runs once for all shards");
    } else if (shard && !ctx.shards_ok) {
      // The shards error already says what is wrong.
    } else if ((n == "shard.begin" || n == "shard.end") &&
               s.shards.kind != ShardsSpec::Kind::kRange) {
      fail("needs shards: {range: [begin, end]}");
    } else if (n == "shard.item" && s.shards.kind != ShardsSpec::Kind::kItems) {
      fail("needs shards: {items: [...]}");
    } else if (n == "input" && s.needs.size() != 1) {
      fail(fmt::format("is the output of the one stage in needs, and this stage needs {}; use "
                       "{{inputs.STAGE}}",
                       s.needs.size()));
    } else if (n == "inputs" && !ctx.in_merge) {
      fail("is the shard outputs, only in merge commands; use {input} or {inputs.STAGE}");
    } else if (n.starts_with("inputs.")) {
      std::string_view stage = n.substr(7);
      if (std::find(s.needs.begin(), s.needs.end(), stage) == s.needs.end()) {
        std::vector<std::string_view> needs(s.needs.begin(), s.needs.end());
        std::string_view near = yaml::ClosestWord(stage, needs);
        fail(fmt::format("names stage '{}', which is not in needs{}", stage,
                         near.empty() ? std::string()
                                      : fmt::format(" (did you mean {{inputs.{}}}?)", near)));
      }
    }
    // Other names ({s}, {HOME}) are not ours and stay as written.
  }
}

// What ParseStage keeps beyond the spec, for the checks across stages.
struct StageNodes {
  YAML::Node name_key;
  std::vector<YAML::Node> needs;  // one per needs entry
};

void ParseStage(Errors& errors, std::string_view path, const YAML::Node& item, StageSpec* stage,
                StageNodes* nodes) {
  if (!item.IsMap()) {
    errors.Add(item, fmt::format("{}: expected a stage (a map with name and run), got {}", path,
                                 Describe(item)));
    return;
  }
  bool have_run = false;
  bool shards_ok = true;
  std::vector<YAML::Node> run_nodes, merge_nodes;
  YAML::Node needs_key;
  yaml::ForEachKey(
      errors, item, path, kStageKeys,
      [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
        const std::string p = JoinPath(path, key);
        if (key == "name") {
          stage->name = ParseName(errors, p, k, v, /*dot=*/false);
          stage->pos = {yaml::PosOf(k).line, yaml::PosOf(k).column};
          nodes->name_key = k;
        } else if (key == "needs") {
          needs_key = k;
          if (v.IsNull()) return;  // `needs:` with nothing: none
          std::vector<std::string> needs;
          std::vector<YAML::Node> n;
          if (!ParseScalarList(errors, p, k, v, "a list of stage names, e.g. [count]", &needs,
                               &n)) {
            return;
          }
          std::map<std::string, int> seen;
          for (size_t i = 0; i < needs.size(); ++i) {
            if (auto [it, fresh] = seen.emplace(needs[i], yaml::PosOf(n[i]).line); !fresh) {
              errors.Add(n[i], fmt::format("{}: '{}' is listed twice", p, needs[i]));
              continue;
            }
            stage->needs.push_back(needs[i]);
            nodes->needs.push_back(n[i]);
          }
        } else if (key == "backend") {
          std::string b = ParseName(errors, p, k, v, /*dot=*/false);
          if (!b.empty()) stage->backend = b;
        } else if (key == "priority") {
          int pr = 0;
          if (yaml::ParseInteger(errors, p, k, v, 1, 10, &pr)) stage->priority = pr;
        } else if (key == "resources") {
          ParseResources(errors, p, k, v, stage);
        } else if (key == "shards") {
          const size_t before = errors.size();
          ParseShards(errors, p, k, v, &stage->shards);
          shards_ok = errors.size() == before;
        } else if (key == "retries") {
          ParseRetries(errors, p, k, v, &stage->retries);
        } else if (key == "timeout") {
          yaml::ParseDuration(errors, p, k, v, milliseconds(0), kMaxDuration, &stage->timeout);
        } else if (key == "canary") {
          bool b = false;
          if (yaml::ParseBool(errors, p, k, v, &b)) stage->canary = b;
        } else if (key == "speculate") {
          yaml::ParseBool(errors, p, k, v, &stage->speculate);
        } else if (key == "right_size") {
          yaml::ParseBool(errors, p, k, v, &stage->right_size);
        } else if (key == "expected") {
          milliseconds e{0};
          if (yaml::ParseDuration(errors, p, k, v, milliseconds(1), kMaxDuration, &e)) {
            stage->expected = e;
          }
        } else if (key == "env") {
          if (!yaml::IsMapOrNull(errors, p, k, v, "a map of variables, e.g. {LC_ALL: C}")) return;
          yaml::ForEachKey(errors, v, p, {},
                           [&](std::string_view name, const YAML::Node& kk, const YAML::Node& vv) {
                             const std::string pp = JoinPath(p, name);
                             if (!IsEnvName(name)) {
                               errors.Add(kk, fmt::format("{}: a variable name is A-Z a-z 0-9 _, "
                                                          "not starting with a digit",
                                                          pp));
                               return;
                             }
                             if (auto t = yaml::ScalarText(errors, pp, kk, vv, "text")) {
                               stage->env.emplace_back(name, *t);
                             }
                           });
        } else if (key == "run") {
          have_run = true;
          ParseCommand(errors, p, k, v,
                       "a command as a list, e.g. [sh, -c, 'seq {shard.begin} {shard.end}']",
                       &stage->run, &run_nodes);
        } else if (key == "merge") {
          ParseMerge(errors, p, k, v, &stage->merge, &merge_nodes);
        }
      });
  if (nodes->name_key.IsNull()) {
    errors.Add(item, fmt::format("{}: a stage needs a name", path));
    stage->pos = {yaml::PosOf(item).line, yaml::PosOf(item).column};
  }
  if (!have_run) errors.Add(item, fmt::format("{}: a stage needs run: [command, args...]", path));
  // Placeholders last: they depend on needs and shards, which may come after run in the file.
  for (size_t i = 0; i < stage->run.size() && i < run_nodes.size(); ++i) {
    CheckPlaceholders(errors, fmt::format("{}.run[{}]", path, i), run_nodes[i], stage->run[i],
                      {stage, false, shards_ok});
  }
  for (size_t i = 0; i < stage->merge.command.size() && i < merge_nodes.size(); ++i) {
    CheckPlaceholders(errors, fmt::format("{}.merge.command[{}]", path, i), merge_nodes[i],
                      stage->merge.command[i], {stage, true, shards_ok});
  }
}

// Reports every cycle the depth-first walk meets, each once, as "a -> b -> a", at the needs
// entry that closes it.
void CheckCycles(Errors& errors, const std::vector<StageSpec>& stages,
                 const std::vector<StageNodes>& nodes,
                 const std::map<std::string, int, std::less<>>& index) {
  enum Color { kWhite, kGrey, kBlack };
  std::vector<Color> color(stages.size(), kWhite);
  std::vector<int> stack;
  std::function<void(int)> visit = [&](int s) {
    color[s] = kGrey;
    stack.push_back(s);
    for (size_t j = 0; j < stages[s].needs.size(); ++j) {
      auto it = index.find(stages[s].needs[j]);
      if (it == index.end()) continue;  // reported as an unknown stage
      const int t = it->second;
      if (color[t] == kGrey) {
        std::string cycle;
        auto from = std::find(stack.begin(), stack.end(), t);
        for (auto p = from; p != stack.end(); ++p) cycle += stages[*p].name + " -> ";
        cycle += stages[t].name;
        errors.Add(nodes[s].needs[j],
                   fmt::format("stages[{}].needs: stages {} form a cycle", s, cycle));
      } else if (color[t] == kWhite) {
        visit(t);
      }
    }
    stack.pop_back();
    color[s] = kBlack;
  };
  for (size_t s = 0; s < stages.size(); ++s) {
    if (color[s] == kWhite) visit(static_cast<int>(s));
  }
}

void ParseStages(Errors& errors, const YAML::Node& key_node, const YAML::Node& value,
                 std::vector<StageSpec>* stages) {
  constexpr std::string_view kWant = "a non-empty list of stages";
  if (!value.IsSequence() || value.size() == 0) {
    errors.Add(key_node, fmt::format("stages: expected {}, got {}", kWant,
                                     value.IsSequence() ? "an empty list" : Describe(value)));
    return;
  }
  if (value.size() > kMaxStages) {
    errors.Add(key_node, fmt::format("stages: {} stages is more than {}", value.size(), kMaxStages));
    return;
  }
  std::vector<StageNodes> nodes(value.size());
  stages->resize(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    ParseStage(errors, fmt::format("stages[{}]", i), value[i], &(*stages)[i], &nodes[i]);
  }
  // Names first, then the needs that refer to them.
  std::map<std::string, int, std::less<>> index;
  for (size_t i = 0; i < stages->size(); ++i) {
    const StageSpec& s = (*stages)[i];
    if (s.name.empty()) continue;
    auto [it, fresh] = index.emplace(s.name, static_cast<int>(i));
    if (!fresh) {
      errors.Add(nodes[i].name_key,
                 fmt::format("stages[{}].name: '{}' is already the name of stages[{}] (line {})",
                             i, s.name, it->second, (*stages)[it->second].pos.line));
    }
  }
  std::vector<std::string_view> names;
  for (const auto& [name, i] : index) names.push_back(name);
  for (size_t i = 0; i < stages->size(); ++i) {
    const StageSpec& s = (*stages)[i];
    for (size_t j = 0; j < s.needs.size(); ++j) {
      if (index.contains(s.needs[j])) continue;
      errors.Add(nodes[i].needs[j], fmt::format("stages[{}].needs: unknown stage '{}'{}", i,
                                                s.needs[j], yaml::DidYouMean(s.needs[j], names)));
    }
  }
  CheckCycles(errors, *stages, nodes, index);
}

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

// Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

std::optional<int64_t> ParseRfc3339(std::string_view t) {
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > t.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      v = v * 10 + (t[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, s;
  if (!digits(0, 4, &y) || t.size() < 20 || t[4] != '-' || !digits(5, 2, &mo) || t[7] != '-' ||
      !digits(8, 2, &d) || (t[10] != 'T' && t[10] != 't') || !digits(11, 2, &h) || t[13] != ':' ||
      !digits(14, 2, &mi) || t[16] != ':' || !digits(17, 2, &s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 || mi > 59 || s > 60) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t frac_ns = 0;
  if (t[i] == '.') {
    ++i;
    int64_t scale = 100'000'000;
    const size_t start = i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
      frac_ns += (t[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (i < t.size() && (t[i] == 'Z' || t[i] == 'z')) {
    ++i;
  } else if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    int oh, om;
    if (!digits(i + 1, 2, &oh) || i + 3 >= t.size() || t[i + 3] != ':' || !digits(i + 4, 2, &om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (t[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;  // RFC 3339 requires the offset: a local time would be ambiguous
  }
  if (i != t.size()) return std::nullopt;
  const int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset_s;
  return secs * 1'000'000'000 + frac_ns;
}

namespace {

void ParseDeadline(Errors& errors, const YAML::Node& k, const YAML::Node& v, Deadline* out) {
  constexpr std::string_view kWant =
      "a duration after submission (15m, 2h) or an RFC 3339 time (2026-12-04T18:00:00Z)";
  std::optional<std::string> text = yaml::ScalarText(errors, "deadline", k, v, kWant);
  if (!text) return;
  // A date starts with four digits and a dash; nothing else in a duration does.
  if (text->size() > 4 && (*text)[4] == '-') {
    std::optional<int64_t> ns = ParseRfc3339(*text);
    if (!ns) {
      errors.Add(k, fmt::format("deadline: bad time {} (use RFC 3339 with an offset, e.g. "
                                "2026-12-04T18:00:00Z or 2026-12-04T19:00:00+01:00)",
                                Describe(v)));
      return;
    }
    out->kind = Deadline::Kind::kAbsolute;
    out->absolute_ns = *ns;
    return;
  }
  milliseconds rel{0};
  if (!yaml::ParseDuration(errors, "deadline", k, v, milliseconds(1000), kMaxDeadline, &rel)) {
    return;
  }
  out->kind = Deadline::Kind::kRelative;
  out->relative = rel;
}

}  // namespace

int64_t Deadline::At(int64_t submitted_ns) const {
  switch (kind) {
    case Kind::kNone:
      return 0;
    case Kind::kRelative:
      return submitted_ns + std::chrono::duration_cast<std::chrono::nanoseconds>(relative).count();
    case Kind::kAbsolute:
      return absolute_ns;
  }
  return 0;
}

bool IsWorkflowName(std::string_view s) { return IsName(s, /*dot=*/true); }
bool IsStageName(std::string_view s) { return IsName(s, /*dot=*/false); }

int WorkflowSpec::StageIndex(std::string_view name) const {
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Result<WorkflowSpec> ParseWorkflow(std::string_view yaml, std::string_view origin) {
  WorkflowSpec spec;
  Errors errors(origin);
  bool have_name = false, have_stages = false;
  Status read = yaml::ReadDocument(yaml, "a workflow file", errors, [&](const YAML::Node& root) {
    if (!root.IsMap()) {
      errors.Add(root, fmt::format("expected a workflow (a map with workflow, stages and "
                                   "optionally priority, deadline, budget), got {}",
                                   Describe(root)));
      have_name = have_stages = true;  // nothing more to say
      return;
    }
    yaml::ForEachKey(errors, root, "", kTopKeys,
                     [&](std::string_view key, const YAML::Node& k, const YAML::Node& v) {
                       if (key == "workflow") {
                         have_name = true;
                         spec.name = ParseName(errors, "workflow", k, v, /*dot=*/true);
                       } else if (key == "priority") {
                         yaml::ParseInteger(errors, "priority", k, v, 1, 10, &spec.priority);
                       } else if (key == "deadline") {
                         ParseDeadline(errors, k, v, &spec.deadline);
                       } else if (key == "budget") {
                         double b = 0;
                         if (yaml::ParseNumber(errors, "budget", k, v, 0,
                                               std::numeric_limits<double>::max(),
                                               "a number >= 0", &b)) {
                           spec.budget = b;
                         }
                       } else if (key == "stages") {
                         have_stages = true;
                         ParseStages(errors, k, v, &spec.stages);
                       }
                     });
  });
  if (!read.ok()) return Err(read);
  if (!have_name) errors.AddAt({1, 1}, "a workflow needs a name: `workflow: NAME`");
  if (!have_stages) errors.AddAt({1, 1}, "a workflow needs stages: a list of stages");
  if (!errors.empty()) return Err(errors.ToStatus());
  return spec;
}

Result<WorkflowSpec> LoadWorkflowFile(const std::string& path) {
  Result<std::string> text = yaml::ReadFileCapped(path, kMaxWorkflowFileBytes, "workflow");
  if (!text) return Err(text.error());
  return ParseWorkflow(*text, path);
}

}  // namespace augur::workflow
