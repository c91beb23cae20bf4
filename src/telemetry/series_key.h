// SeriesKey: the identity of a time series, Prometheus style: a metric name plus a sorted
// set of labels, e.g. cpu_busy_seconds_total{cpu="0",source="bpf"}.
//
// The canonical text form (name, then labels sorted by label name, values escaped as in the
// Prometheus text format) is what the shared-memory directory stores and what readers look
// up, so two keys with the same labels in another order are the same series.
//
// Thread safety: a SeriesKey is a value; distinct objects need no synchronisation.
#ifndef AUGUR_TELEMETRY_SERIES_KEY_H_
#define AUGUR_TELEMETRY_SERIES_KEY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "augur/status.h"

namespace augur::telemetry {

using Label = std::pair<std::string, std::string>;

class SeriesKey {
 public:
  SeriesKey() = default;
  // Does not validate: call Validate() on keys built from untrusted text.
  SeriesKey(std::string name, std::vector<Label> labels);

  // Parses the canonical form `name{k="v",...}` (or a bare name). Whitespace is not allowed.
  static Result<SeriesKey> Parse(std::string_view text);

  // OK when the name is [a-zA-Z_:][a-zA-Z0-9_:]*, every label name is [a-zA-Z_][a-zA-Z0-9_]*
  // and not reserved ("__" prefix), no label name repeats, and the canonical form fits
  // kMaxKeyLength bytes.
  Status Validate() const;

  const std::string& name() const { return name_; }
  const std::vector<Label>& labels() const { return labels_; }  // sorted by label name
  // Value of label `key`, or "" when absent.
  std::string_view label(std::string_view key) const;

  // Canonical text: name{a="1",b="x\"y"}; just the name when there are no labels.
  std::string ToString() const;
  // Labels alone in canonical form, without braces: a="1",b="2".
  std::string LabelsToString() const;

  friend bool operator==(const SeriesKey&, const SeriesKey&) = default;

  // Longest canonical key the shared-memory directory can hold (bytes, without NUL).
  static constexpr size_t kMaxKeyLength = 255;

 private:
  std::string name_;
  std::vector<Label> labels_;
};

// True when `name` is a valid metric name.
bool IsValidMetricName(std::string_view name);
// True when `name` is a valid label name.
bool IsValidLabelName(std::string_view name);
// Escapes a label value as the Prometheus text format does (\\, \", \n).
std::string EscapeLabelValue(std::string_view value);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_SERIES_KEY_H_
