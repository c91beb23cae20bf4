// Small helpers shared by the procfs, PSI and cgroup readers: whole-file reads that work on
// pseudo-files (which report st_size 0), whitespace splitting and strict number parsing.
//
// The parsers return std::nullopt / an error instead of throwing, because every file they
// read is kernel text whose format varies across versions and every caller must be able to
// skip a line it does not understand and carry on.
//
// Thread safety: all functions are reentrant.
#ifndef AUGUR_TELEMETRY_PROCFS_UTIL_H_
#define AUGUR_TELEMETRY_PROCFS_UTIL_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"

namespace augur::telemetry {

// Reads all of `path`. A missing file is NotFound and any other failure an IOError; both
// messages name the file. Files larger than `max_bytes` are an IOError rather than an
// unbounded allocation (procfs files on a big host stay well under the default).
Result<std::string> ReadWholeFile(const std::string& path, size_t max_bytes = 16u << 20);

// Splits `text` on spaces and tabs, dropping empty fields. The views point into `text`.
std::vector<std::string_view> SplitFields(std::string_view text);

// Splits `text` into lines on '\n'; a trailing newline does not make an empty last line.
std::vector<std::string_view> SplitLines(std::string_view text);

// Parses a whole field as an unsigned decimal; nullopt on empty, sign, junk or overflow.
std::optional<uint64_t> ParseU64(std::string_view s);
// Parses a whole field as a signed decimal; nullopt on empty, junk or overflow.
std::optional<int64_t> ParseI64(std::string_view s);
// Parses fields[first .. first + out.size()) into `out`. False when there are too few fields
// or any of them is not a u64 (then `out` is unspecified).
bool ParseU64Fields(std::span<const std::string_view> fields, size_t first,
                    std::span<uint64_t> out);
// Parses a whole field as a finite decimal floating-point number.
std::optional<double> ParseDouble(std::string_view s);

// True when `path` names an existing directory (following symlinks).
bool IsDirectory(const std::string& path);

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_PROCFS_UTIL_H_
