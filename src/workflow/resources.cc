#include "workflow/resources.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>

namespace augur::workflow {
namespace {

// Exact decimal "<digits>[.<digits>]" times `unit` / `divide`, or nullopt when it is not a
// whole number or overflows uint64.
std::optional<uint64_t> ScaleDecimal(std::string_view number, uint64_t unit, uint64_t divide,
                                     bool* not_whole) {
  size_t dot = number.find('.');
  std::string_view whole = number.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : number.substr(dot + 1);
  auto all_digits = [](std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (whole.empty() || !all_digits(whole) || !all_digits(frac) ||
      (dot != std::string_view::npos && frac.empty()) || frac.size() > 9) {
    return std::nullopt;
  }
  std::string digits = std::string(whole) + std::string(frac);
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  if (digits.size() > 19) return std::nullopt;
  unsigned __int128 mantissa = 0;
  for (char c : digits) mantissa = mantissa * 10 + static_cast<unsigned>(c - '0');
  unsigned __int128 divisor = divide;
  for (size_t k = 0; k < frac.size(); ++k) divisor *= 10;
  const unsigned __int128 scaled = mantissa * unit;
  if (scaled % divisor != 0) {
    *not_whole = true;
    return std::nullopt;
  }
  const unsigned __int128 v = scaled / divisor;
  if (v > std::numeric_limits<uint64_t>::max()) return std::nullopt;
  return static_cast<uint64_t>(v);
}

}  // namespace

std::string FormatMemory(uint64_t bytes) {
  constexpr const char* kUnits[] = {"Ti", "Gi", "Mi", "Ki"};
  for (int i = 0; i < 4; ++i) {
    const uint64_t unit = 1ULL << (10 * (4 - i));
    if (bytes < unit) continue;
    if (bytes % unit == 0) return fmt::format("{}{}", bytes / unit, kUnits[i]);
    return fmt::format("{:.2f}{}", static_cast<double>(bytes) / static_cast<double>(unit),
                       kUnits[i]);
  }
  return fmt::format("{}", bytes);
}

Resources Resources::Scaled(double f) const {
  Resources out;
  out.cpu = cpu * f;
  // long double: a 64-bit mantissa keeps byte counts exact where double's 53 bits would not.
  const long double m = std::ceil(static_cast<long double>(memory) * f);
  constexpr auto kMax = static_cast<long double>(std::numeric_limits<uint64_t>::max());
  out.memory = m <= 0 ? 0 : m >= kMax ? std::numeric_limits<uint64_t>::max()
                                      : static_cast<uint64_t>(m);
  return out;
}

std::string Resources::ToString() const {
  return fmt::format("{:g} cpu, {}", cpu, FormatMemory(memory));
}

Result<uint64_t> ParseMemory(std::string_view text) {
  size_t n = 0;
  while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
  const std::string_view number = text.substr(0, n);
  const std::string_view unit = text.substr(n);
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"", 1},
      {"k", 1000},
      {"M", 1000'000},
      {"G", 1000'000'000},
      {"T", 1000'000'000'000},
      {"Ki", 1ULL << 10},
      {"Mi", 1ULL << 20},
      {"Gi", 1ULL << 30},
      {"Ti", 1ULL << 40}};
  const auto* u = std::find_if(std::begin(kUnits), std::end(kUnits),
                               [&](const auto& p) { return p.first == unit; });
  if (number.empty()) {
    return Err(Status::InvalidArgument(
        fmt::format("bad memory '{}' (use e.g. 512Mi, 2Gi, 100M or a number of bytes)", text)));
  }
  if (u == std::end(kUnits)) {
    std::string hint;
    // "512MB", "2GB": the two readings differ by 5-10%, so ask rather than guess.
    if (unit.size() == 2 && (unit[1] == 'B' || unit[1] == 'b')) {
      std::string_view p = unit.substr(0, 1);
      const std::string si = p == "K" ? "k" : std::string(p);
      hint = fmt::format("; did you mean {}{} (powers of 1000) or {}{}i (powers of 1024)?", number,
                         si, number, p == "k" ? "K" : p);
    }
    return Err(Status::InvalidArgument(fmt::format(
        "bad memory '{}': unknown unit '{}' (Ki Mi Gi Ti are powers of 1024, k M G T of "
        "1000){}",
        text, unit, hint)));
  }
  bool not_whole = false;
  std::optional<uint64_t> v = ScaleDecimal(number, u->second, 1, &not_whole);
  if (!v) {
    if (not_whole) {
      return Err(Status::InvalidArgument(
          fmt::format("bad memory '{}': not a whole number of bytes", text)));
    }
    return Err(Status::InvalidArgument(fmt::format("bad memory '{}' (use e.g. 512Mi, 2Gi, 100M "
                                                   "or a number of bytes)",
                                                   text)));
  }
  if (*v == 0) return Err(Status::InvalidArgument(fmt::format("memory '{}' must be more than 0", text)));
  return *v;
}

Result<double> ParseCpu(std::string_view text) {
  auto bad = [&] {
    return Err(Status::InvalidArgument(
        fmt::format("bad cpu '{}' (use cores, e.g. 2, 0.5, or millicores, e.g. 500m)", text)));
  };
  if (text.ends_with('m')) {
    bool not_whole = false;
    std::optional<uint64_t> milli = ScaleDecimal(text.substr(0, text.size() - 1), 1, 1, &not_whole);
    if (!milli || text.find('.') != std::string_view::npos) return bad();
    if (*milli == 0) return Err(Status::InvalidArgument(fmt::format("cpu '{}' must be more than 0", text)));
    return static_cast<double>(*milli) / 1000.0;
  }
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v, std::chars_format::fixed);
  if (text.empty() || ec != std::errc() || ptr != end || !std::isfinite(v)) return bad();
  if (!(v > 0)) return Err(Status::InvalidArgument(fmt::format("cpu '{}' must be more than 0", text)));
  return v;
}

}  // namespace augur::workflow
