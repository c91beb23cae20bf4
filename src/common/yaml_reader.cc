#include "common/yaml_reader.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <sstream>

namespace augur::yaml {
namespace {

using std::chrono::milliseconds;

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Walks the documents of a YAML stream with yaml-cpp's event parser, for what YAML::LoadAll
// would say about them, without its hang: yaml-cpp 0.7's LoadAll never returns on a stream
// with a token that cannot start a node at the top level, such as "{a}, b}" or ", a". Its
// parser then makes an empty document without consuming the token, again and again, and
// LoadAll keeps each one, so the loop also eats memory (found by tests/fuzz/config_fuzz.cc;
// regression input tests/fuzz/corpus/config/regress_loadall_hang.yaml). A document that
// starts where the previous one did has consumed nothing: that is where the walk stops.
class DocumentWalk : public YAML::EventHandler {
 public:
  // Throws YAML::Exception for a syntax error, as LoadAll does.
  explicit DocumentWalk(const std::string& yaml) {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    for (;;) {
      doc_start_.reset();
      if (!parser.HandleNextDocument(*this)) break;
      if (stalled_) break;
    }
  }

  // The position of a token no document could consume, if any.
  std::optional<YAML::Mark> stall() const {
    return stalled_ ? std::optional<YAML::Mark>(stall_mark_) : std::nullopt;
  }
  // Where each document after the first that is not empty starts.
  const std::vector<YAML::Mark>& later_documents() const { return later_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (have_prev_ && mark.pos == prev_start_.pos) {
      stalled_ = true;
      stall_mark_ = mark;
    }
    have_prev_ = true;
    prev_start_ = mark;
    ++docs_;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, /*null=*/true); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark, false); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark, false);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark, false);
  }
  void OnMapEnd() override {}

 private:
  // The first node event of a document is its root.
  void Node(const YAML::Mark& mark, bool null) {
    if (doc_start_) return;
    doc_start_ = mark;
    if (docs_ > 1 && !null && !stalled_) later_.push_back(mark);
  }

  bool have_prev_ = false;
  YAML::Mark prev_start_;
  bool stalled_ = false;
  YAML::Mark stall_mark_;
  size_t docs_ = 0;
  std::optional<YAML::Mark> doc_start_;
  std::vector<YAML::Mark> later_;
};

Pos PosOfMark(const YAML::Mark& m) {
  return m.is_null() ? Pos{} : Pos{m.line + 1, m.column + 1};
}

}  // namespace

Pos PosOf(const YAML::Node& node) {
  if (!node.IsDefined()) return {};
  return PosOfMark(node.Mark());
}

void Errors::AddAt(Pos pos, std::string_view message) {
  if (pos.line > 0 && pos.column > 0) {
    lines_.push_back(fmt::format("{}:{}:{}: {}", origin_, pos.line, pos.column, message));
  } else if (pos.line > 0) {
    lines_.push_back(fmt::format("{}:{}: {}", origin_, pos.line, message));
  } else {
    lines_.push_back(fmt::format("{}: {}", origin_, message));
  }
}

Status Errors::ToStatus() const {
  std::string joined;
  for (const std::string& l : lines_) {
    if (!joined.empty()) joined += '\n';
    joined += l;
  }
  return Status::InvalidArgument(joined);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return Lower(x) == Lower(y); });
}

// Inputs are short keys and words, so the O(n*m) table costs nothing.
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  auto at = [&](size_t i, size_t j) -> size_t& { return d[i * w + j]; };
  for (size_t i = 0; i <= a.size(); ++i) at(i, 0) = i;
  for (size_t j = 0; j <= b.size(); ++j) at(0, j) = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = Lower(a[i - 1]) == Lower(b[j - 1]) ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && Lower(a[i - 1]) == Lower(b[j - 2]) &&
          Lower(a[i - 2]) == Lower(b[j - 1])) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.size(), b.size());
}

std::string_view ClosestWord(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = word.size() <= 4 ? 1 : 2;
  for (std::string_view c : candidates) {
    size_t d = EditDistance(word, c);
    if (d <= best_distance && d < word.size()) {
      best = c;
      best_distance = d;
    }
  }
  if (!best.empty()) return best;
  for (std::string_view c : candidates) {
    size_t n = std::min(word.size(), c.size());
    if (n >= 3 && EqualsIgnoreCase(word.substr(0, n), c.substr(0, n))) return c;
  }
  return {};
}

std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view near = ClosestWord(word, candidates);
  return near.empty() ? std::string() : fmt::format(" (did you mean '{}'?)", near);
}

std::string JoinWords(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return fmt::format("{}.{}", path, key);
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      constexpr size_t kMaxShown = 40;
      if (s.size() > kMaxShown) return "'" + s.substr(0, kMaxShown) + "...'";
      return "'" + s + "'";
    }
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
  }
  return "an unknown node";
}

std::string FormatDuration(milliseconds d) {
  int64_t ms = d.count();
  if (ms != 0 && ms % 86'400'000 == 0) return fmt::format("{}d", ms / 86'400'000);
  if (ms != 0 && ms % 3600'000 == 0) return fmt::format("{}h", ms / 3600'000);
  if (ms != 0 && ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms != 0 && ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

// ---- Documents and files --------------------------------------------------------------

std::optional<BadByte> FindBadUtf8(std::string_view s) {
  int line = 1;
  size_t line_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t min = 0;
    if (c == 0) {
      len = 0;  // NUL: not text
    } else if (c < 0x80) {
      if (c == '\n') {
        ++line;
        line_start = i + 1;
      }
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, min = 0x10000;
    }
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = ok ? (c & (0x7F >> len)) : 0;
    for (size_t k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8 either.
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) return BadByte{{line, static_cast<int>(i - line_start) + 1}, c};
    i += len;
  }
  return std::nullopt;
}

Status ReadDocument(std::string_view yaml, std::string_view what, Errors& errors,
                    const std::function<void(const YAML::Node& root)>& parse) {
  // Fatal problems are formatted as the errors are, but stand alone.
  auto fatal = [&](Pos pos, std::string_view message) {
    Errors e(errors.origin());
    e.AddAt(pos, message);
    return e.ToStatus();
  };
  if (std::optional<BadByte> bad = FindBadUtf8(yaml)) {
    return fatal(bad->pos, fmt::format("{} (byte 0x{:02x}); save the file as UTF-8 text",
                                       bad->byte == 0 ? "NUL byte" : "not valid UTF-8", bad->byte));
  }
  try {
    const std::string text(yaml);
    const DocumentWalk walk(text);  // not YAML::LoadAll, which can hang: see DocumentWalk
    if (std::optional<YAML::Mark> at = walk.stall()) {
      const char c = static_cast<size_t>(at->pos) < text.size() ? text[at->pos] : ' ';
      return fatal(PosOfMark(*at),
                   fmt::format("YAML syntax error: '{}' cannot start or continue a document", c));
    }
    // Stray trailing "---"s make empty documents, which are fine.
    for (const YAML::Mark& m : walk.later_documents()) {
      errors.AddAt(PosOfMark(m),
                   fmt::format("a second YAML document starts here; {} is one document", what));
    }
    const YAML::Node root = YAML::Load(text);  // the first document only
    parse(root);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return fatal({}, fmt::format("YAML error: {}", e.msg));
    return fatal(PosOfMark(e.mark), fmt::format("YAML syntax error: {}", e.msg));
  }
  return Status::OK();
}

Result<std::string> ReadFileCapped(const std::string& path, size_t max_bytes,
                                   std::string_view what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Err(Status::NotFound(path + ": no such file"));
    return Err(Status::FromErrno(fmt::format("cannot open {} {}", what, path), err));
  }
  // Closes on every return below.
  std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Err(Status::FromErrno(fmt::format("cannot stat {} {}", what, path), errno));
  }
  if (S_ISDIR(st.st_mode)) {
    return Err(Status::InvalidArgument(fmt::format("{}: is a directory, not a {} file", path, what)));
  }
  // Read, not stat's size: /dev/stdin and /proc files report 0 or lie.
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(Status::FromErrno(fmt::format("cannot read {} {}", what, path), errno));
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > max_bytes) {
      return Err(Status::InvalidArgument(fmt::format(
          "{}: larger than {} bytes; is this the {} file?", path, max_bytes, what)));
    }
  }
  return text;
}

// ---- Maps -----------------------------------------------------------------------------

void ForEachKey(Errors& errors, const YAML::Node& map, std::string_view path,
                std::span<const std::string_view> known, const KeyHandler& handle,
                const UnknownKeyHint& hint) {
  std::map<std::string, int, std::less<>> seen;  // key -> line first seen
  for (const auto& entry : map) {
    // Copies: Nodes are handles, and the iterator's pair is a temporary.
    const YAML::Node key_node = entry.first;
    const YAML::Node value = entry.second;
    if (!key_node.IsScalar()) {
      std::string where = path.empty() ? "top level" : std::string(path);
      errors.Add(key_node,
                 fmt::format("{}: a key must be a plain name, got {}", where, Describe(key_node)));
      continue;
    }
    const std::string& key = key_node.Scalar();
    std::string full = JoinPath(path, key);
    if (!known.empty() && std::find(known.begin(), known.end(), key) == known.end()) {
      std::string_view near = ClosestWord(key, known);
      std::string h = !near.empty() ? fmt::format("did you mean '{}'? ", near)
                      : hint        ? hint(path, key)
                                    : std::string();
      errors.Add(key_node,
                 fmt::format("unknown key '{}' ({}known: {})", full, h, JoinWords(known)));
      continue;
    }
    auto [first, inserted] = seen.emplace(key, PosOf(key_node).line);
    if (!inserted) {
      errors.Add(key_node,
                 fmt::format("duplicate key '{}' (first set on line {})", full, first->second));
      continue;
    }
    handle(key, key_node, value);
  }
}

bool IsMapOrNull(Errors& errors, std::string_view path, const YAML::Node& key_node,
                 const YAML::Node& value, std::string_view what) {
  if (value.IsMap()) return true;
  if (!value.IsNull()) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, what, Describe(value)));
  }
  return false;
}

// ---- Scalars --------------------------------------------------------------------------

std::optional<std::string> ScalarText(Errors& errors, std::string_view path,
                                      const YAML::Node& key_node, const YAML::Node& value,
                                      std::string_view expected) {
  if (value.IsScalar()) return value.Scalar();
  errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, expected, Describe(value)));
  return std::nullopt;
}

bool ParseIntegerText(std::string_view text, int64_t lo, int64_t hi, int64_t* out) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool ParseAbsolutePath(Errors& errors, std::string_view path, const YAML::Node& key_node,
                       const YAML::Node& value, std::string* out) {
  std::optional<std::string> text =
      ScalarText(errors, path, key_node, value, "an absolute path, e.g. /usr/lib/augur/plugins");
  if (!text) return false;
  if (!text->starts_with('/') || text->size() > kMaxPathLength ||
      text->find('\n') != std::string::npos) {
    errors.Add(key_node, fmt::format("{}: expected an absolute path (starting with /), got {}",
                                     path, Describe(value)));
    return false;
  }
  *out = *text;
  return true;
}

bool ParseNumber(Errors& errors, std::string_view path, const YAML::Node& key_node,
                 const YAML::Node& value, double lo, double hi, std::string_view expected,
                 double* out) {
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, expected);
  if (!text) return false;
  double d = 0;
  const char* end = text->data() + text->size();
  auto [ptr, ec] = std::from_chars(text->data(), end, d);
  if (text->empty() || ec != std::errc() || ptr != end || !std::isfinite(d) || d < lo || d > hi) {
    errors.Add(key_node, fmt::format("{}: expected {}, got {}", path, expected, Describe(value)));
    return false;
  }
  *out = d;
  return true;
}

Result<milliseconds> ParseDurationText(std::string_view text) {
  auto bad = [&] {
    return Err(
        Status::InvalidArgument(fmt::format("bad duration '{}' (use e.g. 500ms, 1s, 2m)", text)));
  };
  // Split "<digits>[.<digits>]<unit>".
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  std::string_view whole = text.substr(0, i);
  std::string_view frac;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac = text.substr(start, i - start);
  }
  std::string_view unit = text.substr(i);
  bool has_dot = whole.size() + frac.size() < i;
  if (whole.empty() || (has_dot && frac.empty())) return bad();
  if (unit.empty()) {
    return Err(Status::InvalidArgument(
        fmt::format("bad duration '{}': add a unit ({}s for seconds, {}ms for milliseconds)", text,
                    text, text)));
  }
  int64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3600'000;
  } else if (unit == "d") {
    unit_ms = 86'400'000;
  } else {
    return bad();
  }
  // Exact decimal arithmetic: value = digits / 10^frac_len units. 18 significant digits fit
  // int64 and are more than any duration needs.
  std::string digits = std::string(whole) + std::string(frac);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.size() > 18) {
    return Err(Status::InvalidArgument(fmt::format("duration '{}' is too long", text)));
  }
  int64_t mantissa = 0;
  if (!digits.empty()) std::from_chars(digits.data(), digits.data() + digits.size(), mantissa);
  __int128 scaled = static_cast<__int128>(mantissa) * unit_ms;
  __int128 divisor = 1;
  for (size_t k = 0; k < frac.size(); ++k) divisor *= 10;
  if (scaled % divisor != 0) {
    return Err(Status::InvalidArgument(
        fmt::format("bad duration '{}': not a whole number of milliseconds", text)));
  }
  __int128 ms = scaled / divisor;
  if (ms > std::numeric_limits<int64_t>::max()) {
    return Err(Status::InvalidArgument(fmt::format("duration '{}' is too long", text)));
  }
  return milliseconds(static_cast<int64_t>(ms));
}

bool ParseDuration(Errors& errors, std::string_view path, const YAML::Node& key_node,
                   const YAML::Node& value, milliseconds lo, milliseconds hi, milliseconds* out) {
  std::optional<std::string> text =
      ScalarText(errors, path, key_node, value, "a duration such as 500ms, 1s or 2m");
  if (!text) return false;
  Result<milliseconds> d = ParseDurationText(*text);
  if (!d) {
    errors.Add(key_node, fmt::format("{}: {}", path, d.error().message()));
    return false;
  }
  if (*d < lo || *d > hi) {
    errors.Add(key_node, fmt::format("{}: {} is out of range {}..{}", path, *text,
                                     FormatDuration(lo), FormatDuration(hi)));
    return false;
  }
  *out = *d;
  return true;
}

std::optional<std::string> ParseWord(Errors& errors, std::string_view path,
                                     const YAML::Node& key_node, const YAML::Node& value,
                                     std::span<const std::string_view> words,
                                     std::string_view also_expected) {
  std::string expected = fmt::format("one of {}{}", JoinWords(words), also_expected);
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, expected);
  if (!text) return std::nullopt;
  if (std::find(words.begin(), words.end(), *text) != words.end()) return text;
  errors.Add(key_node, fmt::format("{}: expected {}, got {}{}", path, expected, Describe(value),
                                   DidYouMean(*text, words)));
  return std::nullopt;
}

bool ParseBool(Errors& errors, std::string_view path, const YAML::Node& key_node,
               const YAML::Node& value, bool* out) {
  std::optional<std::string> text = ScalarText(errors, path, key_node, value, "true or false");
  if (!text) return false;
  bool b = false;
  if (!YAML::convert<bool>::decode(value, b)) {
    errors.Add(key_node, fmt::format("{}: expected true or false, got {}", path, Describe(value)));
    return false;
  }
  *out = b;
  return true;
}

}  // namespace augur::yaml
