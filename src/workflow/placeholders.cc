#include "workflow/placeholders.h"

namespace augur::workflow {
namespace {

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9') || c == '-'; }

// One pass over `text` shared by Find and Expand, so that both agree on what is a
// placeholder. `literal(s)` gets text to keep, `field(name, offset)` each placeholder.
template <typename Literal, typename Field>
void Scan(std::string_view text, Literal literal, Field field) {
  size_t i = 0;
  size_t run = 0;  // start of the pending literal text
  auto flush = [&](size_t end) {
    if (end > run) literal(text.substr(run, end - run));
  };
  while (i < text.size()) {
    const char c = text[i];
    if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
      flush(i + 1);  // keep one brace of the pair
      i += 2;
      run = i;
      continue;
    }
    if (c == '{') {
      size_t close = text.find_first_of("{}", i + 1);
      if (close != std::string_view::npos && text[close] == '}' &&
          IsPlaceholderName(text.substr(i + 1, close - i - 1))) {
        flush(i);
        field(text.substr(i + 1, close - i - 1), i);
        i = close + 1;
        run = i;
        continue;
      }
    }
    ++i;
  }
  flush(text.size());
}

}  // namespace

bool IsPlaceholderName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  bool part_empty = false;
  for (char c : name) {
    if (c == '.') {
      if (part_empty) return false;
      part_empty = true;
    } else if (IsNameChar(c)) {
      part_empty = false;
    } else {
      return false;
    }
  }
  return !part_empty;
}

std::vector<Placeholder> FindPlaceholders(std::string_view text) {
  std::vector<Placeholder> out;
  Scan(
      text, [](std::string_view) {},
      [&](std::string_view name, size_t offset) { out.push_back({name, offset}); });
  return out;
}

std::string ExpandPlaceholders(std::string_view text, const PlaceholderValues& values) {
  std::string out;
  out.reserve(text.size());
  Scan(
      text, [&](std::string_view s) { out += s; },
      [&](std::string_view name, size_t) {
        auto it = values.find(name);
        if (it != values.end()) {
          out += it->second;
        } else {
          out += '{';
          out += name;
          out += '}';
        }
      });
  return out;
}

}  // namespace augur::workflow
