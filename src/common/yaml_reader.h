// YAML reader: the strict reading that augur's YAML files (the agent config, workflow files)
// share, on top of yaml-cpp.
//
// Strict means: every problem in a file is collected (not just the first), each as
// "ORIGIN:LINE:COLUMN: what is wrong"; unknown keys are errors with a did-you-mean; a key
// set twice is an error (yaml-cpp itself keeps the first silently); bad UTF-8 is an error
// (yaml-cpp would turn it into U+FFFD); a file is one document; and the reader cannot hang
// on inputs that make yaml-cpp 0.7's LoadAll loop (see ReadDocument).
//
// The Parse* helpers report into an Errors and leave `*out` unchanged on error, so that the
// caller keeps its default and goes on to find the next problem; they return whether they
// wrote `*out`. They take the key node as
// the position of a value's problem: a value's own mark points past the key for an empty
// value or a nested map, while the key is where the reader should look.
//
// Thread safety: plain functions; an Errors is used by one thread.
#ifndef AUGUR_COMMON_YAML_READER_H_
#define AUGUR_COMMON_YAML_READER_H_

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"

namespace augur::yaml {

// A place in a file, 1-based; 0 when unknown.
struct Pos {
  int line = 0;
  int column = 0;
};
// Where yaml-cpp put `node`; {0, 0} for an undefined node or one without a mark.
Pos PosOf(const YAML::Node& node);

// Every problem found in one file, as "ORIGIN:LINE:COLUMN: message" lines, in the order
// added ("ORIGIN:LINE: message" when the column is unknown, "ORIGIN: message" when both are).
class Errors {
 public:
  explicit Errors(std::string_view origin) : origin_(origin) {}

  void Add(const YAML::Node& at, std::string_view message) { AddAt(PosOf(at), message); }
  void AddAt(Pos pos, std::string_view message);

  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  const std::vector<std::string>& lines() const { return lines_; }
  const std::string& origin() const { return origin_; }
  // InvalidArgument with the lines joined by '\n'. REQUIRES: !empty().
  Status ToStatus() const;

 private:
  std::string origin_;
  std::vector<std::string> lines_;
};

// ---- Words and messages ---------------------------------------------------------------

bool EqualsIgnoreCase(std::string_view a, std::string_view b);
// Edit distance counting a swap of neighbours as one edit ("atuo" -> "auto"), as typos go;
// case-insensitive.
size_t EditDistance(std::string_view a, std::string_view b);
// The candidate `word` most likely meant, or "" when none is close. Close means a small edit
// distance (typos: "intervall", "levle") or one being a prefix of the other ("warning" for
// "warn", "max_series_count" for "max_series").
std::string_view ClosestWord(std::string_view word, std::span<const std::string_view> candidates);
// " (did you mean 'X'?)" for the closest candidate, or "".
std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates);
// "a, b, c".
std::string JoinWords(std::span<const std::string_view> words);
// "path.key", or "key" at the top.
std::string JoinPath(std::string_view path, std::string_view key);
// How a node reads in an error message: 'text' for a scalar (cut at 40 characters),
// "a map", "a list", "nothing".
std::string Describe(const YAML::Node& node);
// "180d", "2h", "5m", "30s", "250ms": the largest unit that is exact.
std::string FormatDuration(std::chrono::milliseconds d);

// ---- Documents and files --------------------------------------------------------------

// Reads the single YAML document in `yaml` and calls `parse` with its root (a null node for
// an empty file or one of comments). Returns a non-OK Status, and does not call `parse`, for
// what stops reading altogether: bad UTF-8 or a NUL byte, a YAML syntax error. A second
// non-empty document is reported into `errors` ("a second YAML document starts here; WHAT
// is one document"). yaml-cpp exceptions thrown inside `parse` become a syntax error too:
// this is the one place that catches them (STYLE.md: one wrapper per library).
Status ReadDocument(std::string_view yaml, std::string_view what, Errors& errors,
                    const std::function<void(const YAML::Node& root)>& parse);

// Where the text stops being UTF-8 (or holds a NUL); nullopt when it is clean.
struct BadByte {
  Pos pos;
  unsigned char byte;
};
std::optional<BadByte> FindBadUtf8(std::string_view s);

// The contents of a regular file of at most `max_bytes`. NotFound ("PATH: no such file")
// when it does not exist; InvalidArgument for a directory ("PATH: is a directory, not a
// WHAT file") or a larger file ("PATH: larger than N bytes; is this the WHAT file?");
// IOError otherwise. The cap stops `--config /dev/zero` from eating memory.
Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes,
                                   std::string_view what);

// ---- Maps -----------------------------------------------------------------------------

using KeyHandler =
    std::function<void(std::string_view key, const YAML::Node& key_node, const YAML::Node& value)>;
// Extra hint for an unknown key when no known key is close, e.g. the same key in another
// section ("did you mean 'metrics.listen'? "); "" for none. Ends with a space when not empty.
using UnknownKeyHint = std::function<std::string(std::string_view path, std::string_view key)>;

// Walks a map's entries in file order. Reports keys that are not plain scalars, unknown keys
// ("unknown key 'PATH.KEY' (did you mean 'K'? known: a, b)"; any key is known when `known`
// is empty: maps whose keys are names, like env) and repeated keys (only a walk can see
// them); calls `handle` for the others. `path` is "" at the top level.
void ForEachKey(Errors& errors, const YAML::Node& map, std::string_view path,
                std::span<const std::string_view> known, const KeyHandler& handle,
                const UnknownKeyHint& hint = {});

// Whether `value` is a map to walk. A null value (`log:` with everything below commented out)
// is not, silently: it keeps the defaults. Anything else is reported as
// "PATH: expected WHAT, got ...".
bool IsMapOrNull(Errors& errors, std::string_view path, const YAML::Node& key_node,
                 const YAML::Node& value, std::string_view what = "a map of settings");

// ---- Scalars --------------------------------------------------------------------------

// The text of a scalar value; otherwise reports "PATH: expected EXPECTED, got ..." and
// returns nullopt.
std::optional<std::string> ScalarText(Errors& errors, std::string_view path,
                                      const YAML::Node& key_node, const YAML::Node& value,
                                      std::string_view expected);

// Decimal integers only: YAML's 0x/0o forms and "1e6" are more likely typos than intent in
// files of sizes and counts, and the message shows the accepted range.
bool ParseIntegerText(std::string_view text, int64_t lo, int64_t hi, int64_t* out);
template <typename T>
bool ParseInteger(Errors& errors, std::string_view path, const YAML::Node& key_node,
                  const YAML::Node& value, int64_t lo, int64_t hi, T* out) {
  std::string expected = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, expected);
  if (!text) return false;
  int64_t v = 0;
  if (!ParseIntegerText(*text, lo, hi, &v)) {
    errors.Add(key_node, std::string(path) + ": expected " + expected + ", got " + Describe(value));
    return false;
  }
  *out = static_cast<T>(v);
  return true;
}

// Longest path accepted: PATH_MAX less the NUL.
inline constexpr size_t kMaxPathLength = 4095;
// An absolute path of at most kMaxPathLength bytes, without a newline
// ("PATH: expected an absolute path (starting with /), got ...").
bool ParseAbsolutePath(Errors& errors, std::string_view path, const YAML::Node& key_node,
                       const YAML::Node& value, std::string* out);

// A finite decimal number in lo..hi (from_chars: no hex, no "inf"); the message says
// "PATH: expected EXPECTED, got ...".
bool ParseNumber(Errors& errors, std::string_view path, const YAML::Node& key_node,
                 const YAML::Node& value, double lo, double hi, std::string_view expected,
                 double* out);

// "500ms", "1s", "1.5s", "2m", "1h", "180d" -> milliseconds: one non-negative number and one
// unit (ms, s, m, h, d), no space. A fraction is fine when the result is a whole number of
// milliseconds. A bare number is rejected with a hint to add a unit, because `interval: 5`
// could mean seconds or milliseconds. InvalidArgument otherwise. No range check.
Result<std::chrono::milliseconds> ParseDurationText(std::string_view text);
// A duration value in lo..hi ("PATH: 2h is out of range 10ms..1h").
bool ParseDuration(Errors& errors, std::string_view path, const YAML::Node& key_node,
                   const YAML::Node& value, std::chrono::milliseconds lo,
                   std::chrono::milliseconds hi, std::chrono::milliseconds* out);

// One of `words`, exactly; a near miss gets a suggestion. `also_expected` is appended to
// the list in the message (" (or true/false)").
std::optional<std::string> ParseWord(Errors& errors, std::string_view path,
                                     const YAML::Node& key_node, const YAML::Node& value,
                                     std::span<const std::string_view> words,
                                     std::string_view also_expected = {});

// YAML 1.1 booleans as yaml-cpp reads them (true/false, yes/no, on/off in any case).
bool ParseBool(Errors& errors, std::string_view path, const YAML::Node& key_node,
               const YAML::Node& value, bool* out);

}  // namespace augur::yaml

#endif  // AUGUR_COMMON_YAML_READER_H_
