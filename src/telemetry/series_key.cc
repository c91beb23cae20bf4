#include "telemetry/series_key.h"

#include <algorithm>

namespace augur::telemetry {
namespace {

bool IsNameStart(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}
bool IsNameChar(char c, bool allow_colon) {
  return IsNameStart(c, allow_colon) || (c >= '0' && c <= '9');
}
bool IsValidIdent(std::string_view s, bool allow_colon) {
  if (s.empty() || !IsNameStart(s[0], allow_colon)) return false;
  return std::all_of(s.begin() + 1, s.end(), [&](char c) { return IsNameChar(c, allow_colon); });
}

}  // namespace

bool IsValidMetricName(std::string_view name) { return IsValidIdent(name, true); }
bool IsValidLabelName(std::string_view name) { return IsValidIdent(name, false); }

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

SeriesKey::SeriesKey(std::string name, std::vector<Label> labels)
    : name_(std::move(name)), labels_(std::move(labels)) {
  std::stable_sort(labels_.begin(), labels_.end(),
                   [](const Label& a, const Label& b) { return a.first < b.first; });
}

std::string_view SeriesKey::label(std::string_view key) const {
  for (const auto& [k, v] : labels_) {
    if (k == key) return v;
  }
  return {};
}

std::string SeriesKey::LabelsToString() const {
  std::string out;
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (i) out += ',';
    out += labels_[i].first;
    out += "=\"";
    out += EscapeLabelValue(labels_[i].second);
    out += '"';
  }
  return out;
}

std::string SeriesKey::ToString() const {
  if (labels_.empty()) return name_;
  return name_ + "{" + LabelsToString() + "}";
}

Status SeriesKey::Validate() const {
  if (!IsValidMetricName(name_)) {
    return Status::InvalidArgument("bad metric name '" + name_ +
                                   "' (want [a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  for (size_t i = 0; i < labels_.size(); ++i) {
    const std::string& k = labels_[i].first;
    if (!IsValidLabelName(k)) {
      return Status::InvalidArgument("series " + name_ + ": bad label name '" + k +
                                     "' (want [a-zA-Z_][a-zA-Z0-9_]*)");
    }
    if (k.starts_with("__")) {
      return Status::InvalidArgument("series " + name_ + ": label name '" + k +
                                     "' is reserved (starts with __)");
    }
    if (i > 0 && labels_[i - 1].first == k) {
      return Status::InvalidArgument("series " + name_ + ": label '" + k + "' repeats");
    }
  }
  const size_t len = ToString().size();
  if (len > kMaxKeyLength) {
    return Status::InvalidArgument("series " + name_ + ": key is " + std::to_string(len) +
                                   " bytes, longer than the limit of " +
                                   std::to_string(kMaxKeyLength));
  }
  return Status::OK();
}

Result<SeriesKey> SeriesKey::Parse(std::string_view text) {
  const size_t brace = text.find('{');
  std::string name(text.substr(0, brace));
  std::vector<Label> labels;
  if (brace != std::string_view::npos) {
    if (text.back() != '}') {
      return Err(Status::InvalidArgument("series key '" + std::string(text) +
                                         "': missing closing '}'"));
    }
    std::string_view rest = text.substr(brace + 1, text.size() - brace - 2);
    size_t i = 0;
    while (i < rest.size()) {
      const size_t eq = rest.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= rest.size() || rest[eq + 1] != '"') {
        return Err(Status::InvalidArgument("series key '" + std::string(text) +
                                           "': expected label=\"value\" at offset " +
                                           std::to_string(brace + 1 + i)));
      }
      std::string key(rest.substr(i, eq - i));
      std::string value;
      size_t j = eq + 2;
      bool closed = false;
      for (; j < rest.size(); ++j) {
        char c = rest[j];
        if (c == '\\' && j + 1 < rest.size()) {
          char n = rest[++j];
          value += (n == 'n') ? '\n' : n;
        } else if (c == '"') {
          closed = true;
          ++j;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) {
        return Err(Status::InvalidArgument("series key '" + std::string(text) +
                                           "': unterminated value of label '" + key + "'"));
      }
      labels.emplace_back(std::move(key), std::move(value));
      if (j < rest.size()) {
        if (rest[j] != ',') {
          return Err(Status::InvalidArgument("series key '" + std::string(text) +
                                             "': expected ',' at offset " +
                                             std::to_string(brace + 1 + j)));
        }
        ++j;
      }
      i = j;
    }
  }
  SeriesKey key(std::move(name), std::move(labels));
  if (Status st = key.Validate(); !st.ok()) {
    return Err(st.Annotate("series key '" + std::string(text) + "'"));
  }
  return key;
}

}  // namespace augur::telemetry
