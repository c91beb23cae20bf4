// Placeholders: the {name} fields of a workflow's run and merge commands, found and filled.
//
// A placeholder is '{', a name, '}'. A name is one or more dot-separated parts of
// A-Z a-z 0-9 _ -, the first starting with a letter or '_' ("shard.index", "inputs.count").
// Braces around anything else (an awk program's "{ s += $1 }", "{print s}", "{}") are not
// placeholders and stay as written, so commands rarely need escaping. "{{" and "}}" are a
// literal '{' and '}' wherever they appear, for the rare text that looks like a
// placeholder ("{{shard.index}}" gives "{shard.index}"); note that this also turns an
// awk "}}" into "}".
//
// The validator (workflow_spec.cc) uses FindPlaceholders to check that every placeholder can
// be filled; the executor uses ExpandPlaceholders to fill them.
//
// Thread safety: plain functions.
#ifndef AUGUR_WORKFLOW_PLACEHOLDERS_H_
#define AUGUR_WORKFLOW_PLACEHOLDERS_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace augur::workflow {

struct Placeholder {
  std::string_view name;  // "shard.index", without the braces; points into the scanned text
  size_t offset = 0;      // of the '{' in the scanned text
};

// Whether `name` (without braces) has the form of a placeholder name.
bool IsPlaceholderName(std::string_view name);

// The placeholders of `text`, in order. Escaped braces are skipped.
std::vector<Placeholder> FindPlaceholders(std::string_view text);

using PlaceholderValues = std::map<std::string, std::string, std::less<>>;

// `text` with each placeholder whose name is in `values` replaced by its value (not expanded
// again), other placeholders and non-name braces left as written, "{{" and "}}" turned into
// single braces.
std::string ExpandPlaceholders(std::string_view text, const PlaceholderValues& values);

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_PLACEHOLDERS_H_
