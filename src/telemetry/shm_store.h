// The shared-memory series store: one writer (augurd), any number of read-only readers in
// other processes.
//
// A segment (POSIX shm object /dev/shm/<name>, made with Boost.Interprocess) holds a header
// (magic, layout version, generation, state), a directory of series keys and, per series, a
// fixed-capacity ring of (timestamp, value) points. Each series has its own sequence lock:
// the writer never waits for a reader, and a reader retries instead of returning a torn
// point. The layout is in shm_layout.h.
//
// Lifecycle: ShmWriter::Create() takes an exclusive lock (/dev/shm/<name>.lock) so a second
// writer on the same name fails with AlreadyExists, then replaces any old segment with a new
// one carrying a fresh generation: it builds it as /dev/shm/<name>.new and renames that over
// <name>, so a reader opening the name never sees a half-made segment, and marks the
// replaced one stale. Close() (or the destructor) marks the segment stale, and with
// StoreOptions::remove_on_close removes the segment and its lock file too. A reader that was
// attached to an older segment notices, through Refresh(), that the name now holds another
// generation and re-attaches. Segment names may not end in ".lock" or ".new", so that no
// name reaches another segment's lock or temporary file.
//
// Liveness: a writer killed with SIGKILL cannot mark its segment stale, so readers do not
// trust `state` alone. The writer beats (Heartbeat()) at least every heartbeat_interval;
// Info() reports a live-looking segment as dead when its writer process is gone (checked
// from the same pid namespace, immune to pid reuse) or its heartbeat is overdue, with the
// time it was last known alive.
#ifndef AUGUR_TELEMETRY_SHM_STORE_H_
#define AUGUR_TELEMETRY_SHM_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "telemetry/series_key.h"

namespace augur::telemetry {

struct Point {
  int64_t ts_ns = 0;  // CLOCK_REALTIME ns since the epoch
  double value = 0;
};

struct StoreOptions {
  std::string name = "augur";  // segment name: /dev/shm/<name>
  uint32_t capacity = 3600;    // points per series ring (the largest; see Resolve)
  uint32_t max_series = 2048;  // directory slots
  // The writer promises to call Heartbeat() at least this often; readers judge it dead
  // after a few missed beats. 0: readers do not judge by the heartbeat.
  int64_t heartbeat_interval_ns = 0;
  // Close() removes the segment and its lock file, so a stopped agent leaves nothing in
  // /dev/shm. Readers that have it mapped keep reading the last points.
  bool remove_on_close = false;
};

// What a reader can tell about the writer of a segment.
enum class WriterState {
  kLive,     // it beats on time and its process exists
  kClosed,   // it closed the segment (stopped cleanly) or a newer writer replaced it
  kDead,     // its process is gone without closing (killed, crashed)
  kStalled,  // its process exists but its heartbeat is overdue (hung, stopped with SIGSTOP)
};
std::string_view WriterStateName(WriterState s);

// Index of a series in the directory; stable for the life of a segment.
using SeriesId = uint32_t;

struct SegmentInfo {
  uint32_t layout_version = 0;
  uint64_t generation = 0;
  bool stale = false;          // writer_state != kLive: nothing new will be written
  WriterState writer_state = WriterState::kLive;
  // CLOCK_REALTIME ns from when the data stopped being fresh: the close, or the last beat of
  // a dead or stalled writer. 0 while live (and when an old writer left no time).
  int64_t stale_since_ns = 0;
  int64_t heartbeat_ns = 0;    // the writer's last beat; 0 when it does not beat
  int32_t writer_pid = 0;
  uint32_t capacity = 0;
  uint32_t max_series = 0;
  uint32_t series_count = 0;
  uint64_t points_written = 0;
  uint64_t bytes_total = 0;    // size of the mapping
  uint64_t bytes_used = 0;     // header + directory + rings of the series in use
};

// Thread safety: not synchronised; one thread at a time (the agent's sampling thread).
// The lock file descriptor is close-on-exec; a child forked without exec shares the lock
// until Close().
class ShmWriter {
 public:
  // Creates the segment. AlreadyExists when another live writer holds the name;
  // InvalidArgument for a bad name or sizes; IOError when shm cannot be made.
  static Result<std::unique_ptr<ShmWriter>> Create(const StoreOptions& options);
  ~ShmWriter();  // Close()s

  ShmWriter(const ShmWriter&) = delete;
  ShmWriter& operator=(const ShmWriter&) = delete;

  // Finds or adds the series. A new series gets a ring of `capacity` points (0: the
  // segment's capacity; else 2..capacity): a series written rarely, such as a forecast
  // published once a minute, needs fewer points for the same span, and the pages it does
  // not use are never touched. An existing series keeps the ring it was added with.
  // InvalidArgument for a key that does not Validate() or a capacity out of range;
  // ResourceExhausted-like Unavailable when the directory is full; IOError when /dev/shm
  // has no memory left for the series' ring (allocated here, so Append cannot fault);
  // FailedPrecondition after Close(). Not for the hot path: callers keep the id.
  Result<SeriesId> Resolve(const SeriesKey& key, uint32_t capacity = 0);
  // Appends a point to series `id` (from Resolve). Wait-free; overwrites the oldest point
  // once the ring is full. Points for an id this writer did not return, and all points
  // after Close(), are dropped.
  void Append(SeriesId id, int64_t ts_ns, double value);

  // Tells readers the writer is alive (CLOCK_REALTIME now). Wait-free. Call at least every
  // StoreOptions::heartbeat_interval_ns.
  void Heartbeat(int64_t now_ns);

  // Marks the segment stale and releases the writer lock; the segment stays for readers
  // until the next writer replaces it, unless remove_on_close. Idempotent.
  void Close();

  // Async-signal-safe: marks the segment stale (closed now) without unlocking or removing
  // anything. For a fatal-signal handler, before the process dies.
  void MarkStaleFromSignalHandler();

  SegmentInfo Info() const;
  const StoreOptions& options() const { return options_; }

 private:
  struct Impl;
  explicit ShmWriter(std::unique_ptr<Impl> impl, StoreOptions options);
  std::unique_ptr<Impl> impl_;
  StoreOptions options_;
};

// Whether a segment of these sizes fits in the free space of /dev/shm, counting the space an
// existing segment of the same name holds (a new writer replaces it). ResourceExhausted,
// with both numbers, otherwise. Rings are allocated as series are added, so a segment that
// does not fit would fail later, on some series, instead of at start.
Status CheckSegmentFits(const StoreOptions& options);

// The bytes a segment of these sizes takes when full; 0 when the sizes are impossible.
uint64_t SegmentBytes(uint32_t capacity, uint32_t max_series);

struct SeriesEntry {
  SeriesId id = 0;
  SeriesKey key;
  uint64_t count = 0;     // points ever appended
  uint32_t capacity = 0;  // points its ring holds
};

// Thread safety: const methods may be called concurrently; Refresh() must not run
// concurrently with any other method of the same reader.
class ShmReader {
 public:
  // Maps the segment read-only. NotFound when there is none; Corruption (with a message
  // naming the segment and what was found) for a bad magic, layout version or size.
  static Result<std::unique_ptr<ShmReader>> Open(std::string_view name);
  ~ShmReader();

  ShmReader(const ShmReader&) = delete;
  ShmReader& operator=(const ShmReader&) = delete;

  // Checks whether the name now holds another segment (agent restart) and re-attaches if so.
  // Returns true when it re-attached (series ids from before are then invalid).
  Result<bool> Refresh();

  SegmentInfo Info() const;
  // All series currently in the directory.
  std::vector<SeriesEntry> List() const;
  // Finds a series by key; NotFound when absent.
  Result<SeriesId> Find(const SeriesKey& key) const;
  // Latest point of a series, or nullopt when it has none (or `id` is out of range). Never
  // blocks the writer and never waits for it; also nullopt if the writer overwrote the
  // point on every one of a bounded number of attempts (the reader stalled for a whole
  // ring's worth of appends each time).
  std::optional<Point> Latest(SeriesId id) const;
  // Up to `n` most recent points, oldest first, consecutive in the series. Fewer than
  // available only when the writer kept overwriting the oldest of them while they were
  // copied; then the newest intact ones are returned.
  std::vector<Point> Last(SeriesId id, size_t n) const;

  const std::string& name() const { return name_; }

 private:
  struct Impl;
  ShmReader(std::unique_ptr<Impl> impl, std::string name);
  std::unique_ptr<Impl> impl_;
  std::string name_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_SHM_STORE_H_
