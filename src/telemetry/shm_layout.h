// The on-shm layout of the series store (shm_store.h): what a segment /dev/shm/<name> holds,
// byte for byte. Modelled on PCP's MMV format: a fixed header that says what it is (magic,
// version, generation), a table of contents (the offsets below), then the data.
//
//   offset 0                  SegmentHeader        (kHeaderSize bytes)
//   directory_offset          DirectorySlot[max_series]
//   rings_offset              max_series ring slots, slot i at
//                             rings_offset + i * RingStride(capacity); series i uses the
//                             first DirectorySlot::capacity PointCells of its slot (<= the
//                             header's capacity; set when the series is added)
//   total_size                end of the segment (== the size of the shm object)
//
// The object is sized with ftruncate, so it is sparse: pages of series that were never
// added, and the unused tail of a shorter series' slot, cost no memory. The writer
// allocates (fallocate) a series' ring when the series is added, so that a full /dev/shm
// is reported by ShmWriter::Resolve instead of killing the writer with SIGBUS on its first
// store to an unbacked page.
//
// Concurrency protocol (one writer process, any number of read-only reader processes):
//   - Everything in the header except `state`, `series_count`, `points_written`,
//     `heartbeat_ns` and `closed_ns` is written before the segment becomes visible under its
//     name and never changes.
//   - Liveness: the writer stores CLOCK_REALTIME into `heartbeat_ns` at least every
//     `heartbeat_interval_ns` while it runs, and `closed_ns` before it marks the segment
//     stale. A reader judges a `live` segment whose heartbeat is older than a few intervals,
//     or whose writer process (`writer_pid` with `writer_starttime`, checked only from the
//     same pid namespace, `writer_pidns`) is gone, to be dead: a writer killed with SIGKILL
//     cannot mark its segment stale itself. Zero in any of these fields (a writer that does
//     not fill them) means "unknown", and the reader skips that check.
//   - A directory slot (key, key_length, capacity) is written before `series_count` is
//     raised past it with a release store; readers load `series_count` with acquire and
//     then read the slot's key and capacity with plain loads. A published slot never
//     changes.
//   - Each series has a sequence counter `seq`: seq == 2 * (points ever appended), plus one
//     while an append is in progress. An append stores seq+1 (release), a release fence,
//     the point (relaxed atomic stores), then seq+2 (release). A reader loads seq (acquire),
//     copies points (relaxed atomic loads), issues an acquire fence and reloads seq; the
//     reload bounds how many appends may have overwritten what it copied (see
//     shm_store.cc). The point of logical index j (0-based, ever) is in cell j % capacity,
//     with the series' own capacity.
//   - All fields that are written while readers may be reading are std::atomic, so there
//     are no data races; the static_asserts below pin their size and lock-freedom, which
//     makes them plain memory words that another process can read.
//
// NOTE: the values and offsets here are a persistent format shared by separately built
// programs (augurd, augurctl, anything mapping the segment). Do not change or reorder them;
// add fields only in reserved space, and bump kLayoutVersion for anything else.
#ifndef AUGUR_TELEMETRY_SHM_LAYOUT_H_
#define AUGUR_TELEMETRY_SHM_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>

namespace augur::telemetry::shm {

// "AUGURSHM" as the first eight bytes of the segment (read as a little-endian u64).
inline constexpr uint64_t kMagic = 0x4d48535255475541ULL;
// 2: per-series ring capacity (DirectorySlot::capacity). The liveness fields (writer
// identity, heartbeat, closed_ns) came later in reserved space, so they read as zero
// ("unknown") in segments of writers that predate them, and the version did not change.
inline constexpr uint32_t kLayoutVersion = 2;

// SegmentHeader::state values.
inline constexpr uint32_t kStateCreating = 0;  // zero-filled; never visible under the name
inline constexpr uint32_t kStateLive = 1;      // a writer owns it
inline constexpr uint32_t kStateStale = 2;     // the writer closed it or was replaced

inline constexpr uint32_t kKeyCapacity = 256;      // key bytes + room for a NUL; see SeriesKey
inline constexpr uint64_t kRingAlignment = 64;     // rings start on their own cache line
inline constexpr uint64_t kRingsAlignment = 4096;  // the first ring starts on a page

struct SegmentHeader {
  // Cache line 0: identity and geometry (written once), plus the rarely written state and
  // series_count.
  uint64_t magic;                      // kMagic
  uint32_t layout_version;             // kLayoutVersion
  uint32_t header_size;                // sizeof(SegmentHeader)
  uint64_t generation;                 // unique per creation; see shm_store.cc
  int64_t created_ns;                  // CLOCK_REALTIME ns when the writer created the segment
  int32_t writer_pid;                  // pid of the writer (in its pid namespace)
  std::atomic<uint32_t> state;         // kState*
  uint32_t capacity;                   // points per ring slot (a series' largest), >= 2
  uint32_t max_series;                 // directory slots, >= 1
  uint32_t slot_size;                  // sizeof(DirectorySlot)
  uint32_t point_size;                 // sizeof(PointCell)
  std::atomic<uint32_t> series_count;  // slots in use; raised with release after the slot
  uint32_t reserved0;
  // Cache line 1: table of contents and the writer's identity (written once).
  uint64_t directory_offset;
  uint64_t rings_offset;
  uint64_t total_size;
  uint64_t writer_starttime;       // field 22 of /proc/<writer_pid>/stat: immune to pid reuse
  uint64_t writer_pidns;           // inode of the writer's /proc/self/ns/pid
  int64_t heartbeat_interval_ns;   // the writer beats at least this often
  uint64_t reserved1[2];
  // Cache line 2: written by every append (and every beat), so kept away from what readers
  // poll.
  std::atomic<uint64_t> points_written;
  std::atomic<int64_t> heartbeat_ns;  // CLOCK_REALTIME of the writer's last beat
  std::atomic<int64_t> closed_ns;     // CLOCK_REALTIME when the writer closed it; 0 before
  uint64_t reserved2[5];
};

struct DirectorySlot {
  // Written by every append to this series.
  std::atomic<uint64_t> seq;  // 2 * points appended, +1 while an append is in progress
  uint32_t head;              // writer-private cursor (next cell); readers derive it from seq
  // Written once, before the slot is published through series_count (with key).
  uint32_t key_length;        // bytes of key, <= kKeyCapacity - 1
  uint32_t capacity;          // points in this series' ring, 2..SegmentHeader::capacity
  uint32_t reserved0;
  uint64_t reserved[5];
  char key[kKeyCapacity];  // canonical SeriesKey::ToString(), NUL-terminated
};

struct PointCell {
  std::atomic<int64_t> ts_ns;
  std::atomic<uint64_t> value_bits;  // std::bit_cast<uint64_t>(double)
};

// The layout relies on these being plain lock-free words with no hidden state.
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<int64_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == 4 && alignof(std::atomic<uint32_t>) == 4);
static_assert(sizeof(std::atomic<uint64_t>) == 8 && alignof(std::atomic<uint64_t>) == 8);
static_assert(sizeof(std::atomic<int64_t>) == 8 && alignof(std::atomic<int64_t>) == 8);
static_assert(sizeof(double) == 8);

static_assert(std::is_standard_layout_v<SegmentHeader>);
static_assert(sizeof(SegmentHeader) == 192);
static_assert(offsetof(SegmentHeader, magic) == 0);
static_assert(offsetof(SegmentHeader, layout_version) == 8);
static_assert(offsetof(SegmentHeader, header_size) == 12);
static_assert(offsetof(SegmentHeader, generation) == 16);
static_assert(offsetof(SegmentHeader, created_ns) == 24);
static_assert(offsetof(SegmentHeader, writer_pid) == 32);
static_assert(offsetof(SegmentHeader, state) == 36);
static_assert(offsetof(SegmentHeader, capacity) == 40);
static_assert(offsetof(SegmentHeader, max_series) == 44);
static_assert(offsetof(SegmentHeader, slot_size) == 48);
static_assert(offsetof(SegmentHeader, point_size) == 52);
static_assert(offsetof(SegmentHeader, series_count) == 56);
static_assert(offsetof(SegmentHeader, directory_offset) == 64);
static_assert(offsetof(SegmentHeader, rings_offset) == 72);
static_assert(offsetof(SegmentHeader, total_size) == 80);
static_assert(offsetof(SegmentHeader, writer_starttime) == 88);
static_assert(offsetof(SegmentHeader, writer_pidns) == 96);
static_assert(offsetof(SegmentHeader, heartbeat_interval_ns) == 104);
static_assert(offsetof(SegmentHeader, points_written) == 128);
static_assert(offsetof(SegmentHeader, heartbeat_ns) == 136);
static_assert(offsetof(SegmentHeader, closed_ns) == 144);

static_assert(std::is_standard_layout_v<DirectorySlot>);
static_assert(sizeof(DirectorySlot) == 320);
static_assert(offsetof(DirectorySlot, seq) == 0);
static_assert(offsetof(DirectorySlot, head) == 8);
static_assert(offsetof(DirectorySlot, key_length) == 12);
static_assert(offsetof(DirectorySlot, capacity) == 16);
static_assert(offsetof(DirectorySlot, key) == 64);

static_assert(std::is_standard_layout_v<PointCell>);
static_assert(sizeof(PointCell) == 16);
static_assert(offsetof(PointCell, ts_ns) == 0);
static_assert(offsetof(PointCell, value_bits) == 8);

inline constexpr uint64_t kHeaderSize = sizeof(SegmentHeader);

// Where everything goes for a given capacity and max_series.
struct Geometry {
  uint64_t directory_offset = 0;
  uint64_t rings_offset = 0;
  uint64_t ring_stride = 0;  // bytes from one series' ring to the next
  uint64_t total_size = 0;
};

constexpr uint64_t RoundUp(uint64_t v, uint64_t align) { return (v + align - 1) / align * align; }

// Geometry of a segment, or nullopt when the sizes are out of range (capacity < 2,
// max_series < 1) or the total would exceed `max_total` bytes. Checked arithmetic: the
// reader calls this on sizes read from a segment it does not trust.
constexpr std::optional<Geometry> ComputeGeometry(uint32_t capacity, uint32_t max_series,
                                                  uint64_t max_total) {
  if (capacity < 2 || max_series < 1) return std::nullopt;
  Geometry g;
  g.directory_offset = kHeaderSize;
  // Both products fit in 64 bits: each factor is < 2^32 and the other < 2^9.
  const uint64_t directory_end = g.directory_offset + uint64_t{max_series} * sizeof(DirectorySlot);
  g.rings_offset = RoundUp(directory_end, kRingsAlignment);
  g.ring_stride = RoundUp(uint64_t{capacity} * sizeof(PointCell), kRingAlignment);
  uint64_t rings_bytes = 0;
  if (__builtin_mul_overflow(g.ring_stride, uint64_t{max_series}, &rings_bytes)) {
    return std::nullopt;
  }
  if (__builtin_add_overflow(g.rings_offset, rings_bytes, &g.total_size)) return std::nullopt;
  if (g.total_size > max_total) return std::nullopt;
  return g;
}

// Largest segment a writer makes or a reader accepts. The mapping is virtual and sparse,
// so this only guards against absurd sizes (and overflow on 32-bit size_t).
inline constexpr uint64_t kMaxSegmentBytes =
    sizeof(size_t) >= 8 ? (uint64_t{1} << 40) : (uint64_t{1} << 30);

}  // namespace augur::telemetry::shm

#endif  // AUGUR_TELEMETRY_SHM_LAYOUT_H_
