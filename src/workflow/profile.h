// ProfileBook: what past shard attempts say about the next one, learned online per
// (workflow name, stage), and per backend how long a shard takes to start.
//
// Every finished attempt is a HistoryRecord (store.h). A successful one teaches each
// quantity (wall time, CPU seconds, peak memory, bytes read, bytes written, cost); an
// OOM-killed one teaches only that the stage's peak memory is above the grant it had (a lower
// bound, `floor`); other ends (failed, timed out, cancelled, lost) teach nothing. The
// executor feeds it the stored history at start, oldest first, then each attempt as it ends.
//
// Model, per quantity, in log space (the quantities are positive and skewed; a log model
// predicts the geometric mean, near the median):
//   log(y + eps) = a + b * log(units)
// where units is the shard's size (ShardUnits: a range shard's values, an item shard's
// items). (a, b) is a weighted least-squares fit over the profile's last `max_samples`
// samples, newer samples weighing more (halving every `half_life` samples), with b pulled
// toward a prior (1 for wall, CPU, bytes and cost: work grows with the input; 0 for memory:
// most tasks stream) in proportion to how little the sizes varied: a stage whose shards all
// had one size keeps the prior, one whose sizes spread learns its own exponent
// (Estimate::size_model says which).
//
// Intervals are calibrated online (split-conformal on one-step-ahead residuals, conformal.h):
// before a sample is learned, the profile predicts it, and the log ratio actual/predicted is
// kept. The interval is the fit times exp of the newest 2 * half_life residuals' (1-c)/2 and
// (1+c)/2 quantiles (c = `coverage`, 80 %), widened for a size far from those seen (the
// fit's leverage). With fewer than 20 residuals a Student-t interval on their mean and spread
// is used instead, which is wider for small counts. tests/workflow/profile_test.cc measures
// the coverage on generated data and on the WfCommons traces.
//
// Predictions answer only from history: nullopt until a profile holds `min_samples` successful
// samples, so that the caller falls back to the stage's declared `expected:` and resources,
// then to its defaults, and can say which it used.
//
// Memory is bounded: at most `max_samples` samples per profile and `max_profiles` profiles
// (the least recently used, by Learn or Predict, is dropped first), the same for backends.
//
// Pure: no I/O, no clock (times come in the records). Thread safety: none, not even for the
// const methods (they stamp the profile's recent use); one thread (the engine thread) owns it.
#ifndef AUGUR_WORKFLOW_PROFILE_H_
#define AUGUR_WORKFLOW_PROFILE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflow/store.h"

namespace augur::workflow {

// NOTE: the names are part of `augurctl profile --json`; do not rename them.
enum class Quantity : uint8_t { kWall, kCpu, kMemory, kBytesRead, kBytesWritten, kCost };
inline constexpr size_t kQuantityCount = 6;
inline constexpr std::array<Quantity, kQuantityCount> kAllQuantities = {
    Quantity::kWall,      Quantity::kCpu,          Quantity::kMemory,
    Quantity::kBytesRead, Quantity::kBytesWritten, Quantity::kCost};
// "wall_seconds", "cpu_seconds", "peak_memory_bytes", "bytes_read", "bytes_written", "cost".
std::string_view QuantityName(Quantity q);
// The quantity's value in a history record.
double QuantityOf(const HistoryRecord& h, Quantity q);

// A shard's size as profiles count it: range_end - range_begin for a range shard, the number
// of items for an item shard, 0 (unknown: "a typical shard of the stage") otherwise.
double ShardUnits(const HistoryRecord& h);
double ShardUnits(const ShardRecord& s);

struct ProfileOptions {
  size_t min_samples = 3;      // successful samples before Predict answers (>= 1)
  size_t max_samples = 200;    // kept per profile, the newest (>= min_samples, >= 2)
  size_t max_profiles = 4096;  // (workflow, stage) profiles kept; as many backends
  double coverage = 0.8;       // of the intervals, in 0.5..0.99
  double half_life = 25;       // samples; an older sample's weight halves per this many newer
};

// Where an answer came from. Only kHistory today; the caller names its own fallbacks
// ("expected", "declared", "default") when Predict returns nullopt.
inline constexpr std::string_view kSourceHistory = "history";

// How the estimate depends on the shard's size.
enum class SizeModel : uint8_t {
  kNone,   // the shards had no size (units 0): one estimate for every shard
  kPrior,  // the sizes hardly varied: the prior exponent (1, or 0 for memory)
  kFit,    // the sizes varied: the exponent is mostly learned
};
std::string_view SizeModelName(SizeModel m);  // "none", "prior", "fit"

// One quantity for one shard, from history.
struct Estimate {
  double value = 0;       // the point (the geometric mean at this size), >= 0
  double lo = 0, hi = 0;  // the `coverage` interval, lo <= value <= hi
  size_t samples = 0;     // successful samples it rests on
  std::string_view source = kSourceHistory;
  double units = 0;     // the size it is for (0: a typical shard of the stage)
  double exponent = 0;  // value grows as units^exponent
  SizeModel size_model = SizeModel::kNone;
  // kMemory only: an OOM-killed attempt showed the peak at this size is above this many
  // bytes; value and lo are raised to it.
  std::optional<double> floor;
};

// Every quantity for one shard; each nullopt while the profile has too few samples.
struct ShardEstimate {
  std::array<std::optional<Estimate>, kQuantityCount> q;
  const std::optional<Estimate>& operator[](Quantity x) const { return q[size_t(x)]; }
  const std::optional<Estimate>& wall() const { return (*this)[Quantity::kWall]; }
  const std::optional<Estimate>& cpu() const { return (*this)[Quantity::kCpu]; }
  const std::optional<Estimate>& memory() const { return (*this)[Quantity::kMemory]; }
};

// What a profile holds, for `augurctl profile`.
struct QuantityView {
  std::optional<Estimate> typical;  // at the stage's typical size (nullopt: too few samples)
  // One-step-ahead check: of `checked` samples predicted (with min_samples behind them)
  // before they were learned, the share that fell inside the interval.
  size_t checked = 0;
  double observed_coverage = 0;
};
struct ProfileView {
  std::string workflow, stage;
  size_t samples = 0;  // successful samples held (<= max_samples)
  size_t learned = 0;  // successful samples ever learned
  size_t ooms = 0;     // OOM-killed attempts that set a memory floor, held
  double units_min = 0, units_max = 0, units_typical = 0;  // sizes seen (0: none)
  int64_t last_started_ns = 0;                             // the newest sample's start
  std::optional<double> memory_floor;                      // at the typical size
  std::array<QuantityView, kQuantityCount> quantities;
};

class ProfileBook {
 public:
  // Options out of range are clamped to the nearest valid value.
  explicit ProfileBook(ProfileOptions options = {});
  ProfileBook(ProfileBook&&) noexcept;
  ProfileBook& operator=(ProfileBook&&) noexcept;
  ~ProfileBook();

  // Learns from one finished attempt (see the header comment). Returns whether it taught
  // anything (false for failed, timed-out, cancelled and lost attempts, and for records
  // without a workflow name or stage).
  bool Learn(const HistoryRecord& h);
  // Teaches how long a shard on `backend` took from its attempt's start to its task running
  // (provisioning and starting). Negative or non-finite values are ignored.
  void LearnStartup(std::string_view backend, double seconds);

  // One quantity for a shard of `units` (0: a typical shard of the stage). nullopt while the
  // profile has fewer than min_samples successful samples (or none exists).
  std::optional<Estimate> Predict(std::string_view workflow, std::string_view stage, Quantity q,
                                  double units = 0) const;
  ShardEstimate Predict(std::string_view workflow, std::string_view stage, double units = 0) const;
  // The memory lower bound that OOM kills set for a shard of `units`, if any (also before
  // min_samples successes: an OOM alone says to grant more).
  std::optional<double> MemoryFloor(std::string_view workflow, std::string_view stage,
                                    double units = 0) const;
  // A shard's start-up time on `backend` (its units are meaningless: 0).
  std::optional<Estimate> PredictStartup(std::string_view backend) const;

  std::optional<ProfileView> View(std::string_view workflow, std::string_view stage) const;
  // The stages of `workflow` that have a profile, sorted.
  std::vector<std::string> Stages(std::string_view workflow) const;
  // Backends with a start-up profile, sorted.
  std::vector<std::string> Backends() const;
  size_t profiles() const;  // (workflow, stage) profiles held
  const ProfileOptions& options() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace augur::workflow

#endif  // AUGUR_WORKFLOW_PROFILE_H_
