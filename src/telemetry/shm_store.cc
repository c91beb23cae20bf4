#include "telemetry/shm_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <new>
#include <unordered_map>

#include "telemetry/shm_layout.h"

namespace augur::telemetry {
namespace {

namespace bip = boost::interprocess;
using shm::DirectorySlot;
using shm::PointCell;
using shm::SegmentHeader;

static_assert(SeriesKey::kMaxKeyLength < shm::kKeyCapacity,
              "a canonical key plus its NUL must fit a directory slot");

// POSIX shm objects live here on Linux (glibc's shm_open, hence Boost.Interprocess, uses
// it). The store needs the path for what shm_open cannot do: the writer lock, the atomic
// rename that publishes a new segment, and the inode check in Refresh().
constexpr std::string_view kShmDir = "/dev/shm/";
// Leaves room for the ".lock"/".new" suffixes within NAME_MAX (255).
constexpr size_t kMaxNameLength = 200;

// A read fails only when the writer lapped what the reader was copying (at least
// `capacity - count` appends to that series during the copy), never because an append is
// in progress, so a retry can start at once. Reads are bounded all the same: Latest gives
// up (nullopt) after kMaxLatestAttempts, and Last returns the intact newest part of its copy
// after kMaxLastAttempts.
constexpr int kMaxLatestAttempts = 16;
constexpr int kMaxLastAttempts = 4;

std::string ShmPath(std::string_view name) {
  std::string path(kShmDir);
  path += name;
  return path;
}

std::string SegmentName(std::string_view name) {
  return "shared-memory segment '" + std::string(name) + "'";
}

// The suffixes of the files beside a segment. A segment name ending in one could be another
// segment's lock or temporary file: an agent on "x.lock" would rename its segment over the
// lock of the agent on "x", and a third agent on "x" would then start beside the first.
constexpr std::string_view kLockSuffix = ".lock";
constexpr std::string_view kNewSuffix = ".new";

Status ValidateName(std::string_view name) {
  const bool chars_ok = std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
  if (name.empty() || name.size() > kMaxNameLength || !chars_ok || name == "." || name == "..") {
    return Status::InvalidArgument("bad shared-memory segment name '" + std::string(name) +
                                   "': want 1 to " + std::to_string(kMaxNameLength) +
                                   " characters from [A-Za-z0-9_.-], not '.' or '..'");
  }
  if (name.ends_with(kLockSuffix) || name.ends_with(kNewSuffix)) {
    return Status::InvalidArgument("bad shared-memory segment name '" + std::string(name) +
                                   "': it may not end in '.lock' or '.new', which name the "
                                   "lock and temporary files beside a segment");
  }
  return Status::OK();
}

// Field 22 (starttime, clock ticks after boot) and field 3 (state) of /proc/<pid>/stat;
// nullopt when the process is not visible. Fields after the command (which may hold spaces
// and parentheses) are counted from the last ')'.
struct ProcStart {
  uint64_t starttime = 0;
  char state = '?';
};
std::optional<ProcStart> ReadProcStart(int32_t pid) {
  char path[32];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ') return std::nullopt;
  ProcStart out;
  out.state = p[2];
  // After ") S ": fields 4..21 (18 of them) come before starttime.
  p += 3;
  for (int field = 4; field <= 21; ++field) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return std::nullopt;
    ++p;
  }
  char* end = nullptr;
  out.starttime = std::strtoull(p, &end, 10);
  if (end == p) return std::nullopt;
  return out;
}

// Inode of this process's pid namespace: two processes that see the same one can check each
// other's pids. 0 when unknown.
uint64_t OwnPidNamespace() {
  static const uint64_t ino = [] {
    struct stat st {};
    return stat("/proc/self/ns/pid", &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
  }();
  return ino;
}

// A writer is judged stalled after this long without a beat: three missed beats, plus room
// for one slow sampling pass on a loaded host.
int64_t StallAfterNs(int64_t interval_ns) { return 3 * interval_ns + 2'000'000'000; }

// What a reader can tell about the writer of `h` at `now_ns`; `since` gets the time the
// data stopped being fresh.
WriterState JudgeWriter(const SegmentHeader& h, int64_t now_ns, int64_t* since) {
  const int64_t beat = h.heartbeat_ns.load(std::memory_order_relaxed);
  if (h.state.load(std::memory_order_acquire) != shm::kStateLive) {
    const int64_t closed = h.closed_ns.load(std::memory_order_relaxed);
    *since = closed != 0 ? closed : beat;
    return WriterState::kClosed;
  }
  // kill(pid, 0) sees processes that /proc hides (hidepid); /proc then tells a zombie or a
  // reused pid from the writer.
  if (h.writer_pid > 0 && h.writer_pidns != 0 && h.writer_pidns == OwnPidNamespace()) {
    bool gone = kill(h.writer_pid, 0) != 0 && errno == ESRCH;
    if (!gone) {
      if (std::optional<ProcStart> ps = ReadProcStart(h.writer_pid)) {
        gone = ps->state == 'Z' || ps->state == 'X' ||
               (h.writer_starttime != 0 && ps->starttime != h.writer_starttime);
      }
    }
    if (gone) {
      *since = beat;
      return WriterState::kDead;
    }
  }
  if (h.heartbeat_interval_ns > 0 && beat > 0 &&
      now_ns - beat > StallAfterNs(h.heartbeat_interval_ns)) {
    *since = beat;
    return WriterState::kStalled;
  }
  *since = 0;
  return WriterState::kLive;
}

int64_t RealtimeNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Unique per creation, so a reader can tell a re-created segment from the one it mapped
// even if the clock stepped back or the pid was reused.
uint64_t NewGeneration(int64_t now_ns) {
  uint64_t random = 0;
  // Without entropy yet (early boot, GRND_NONBLOCK) time and pid still separate creations.
  if (getrandom(&random, sizeof(random), GRND_NONBLOCK) != sizeof(random)) random = 0;
  const uint64_t g = SplitMix64(static_cast<uint64_t>(now_ns) ^
                                SplitMix64((static_cast<uint64_t>(getpid()) << 32) ^ random));
  return g == 0 ? 1 : g;
}

// Number of appends started (completed or in progress) when the sequence counter read `seq`.
inline uint64_t AppendsStarted(uint64_t seq) { return (seq + 1) >> 1; }

// The pid in the header of an existing segment, when it is an augur segment of this
// layout; read with pread so a garbage or truncated file cannot fault us.
std::optional<int32_t> PeekWriterPid(std::string_view name) {
  const int fd = open(ShmPath(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  unsigned char buf[shm::kHeaderSize];
  const ssize_t n = pread(fd, buf, sizeof(buf), 0);
  close(fd);
  if (n != static_cast<ssize_t>(sizeof(buf))) return std::nullopt;
  uint64_t magic = 0;
  uint32_t version = 0;
  int32_t pid = 0;
  std::memcpy(&magic, buf + offsetof(SegmentHeader, magic), sizeof(magic));
  std::memcpy(&version, buf + offsetof(SegmentHeader, layout_version), sizeof(version));
  std::memcpy(&pid, buf + offsetof(SegmentHeader, writer_pid), sizeof(pid));
  if (magic != shm::kMagic || version != shm::kLayoutVersion || pid <= 0) return std::nullopt;
  return pid;
}

// Marks the segment currently under `name` stale, so readers that have it mapped and do
// not Refresh() still learn that its writer is gone (it closed or died: we hold the lock).
// Best effort: anything that is not a segment of this layout is left alone.
void MarkStale(std::string_view name) {
  try {
    bip::shared_memory_object object(bip::open_only, std::string(name).c_str(), bip::read_write);
    bip::offset_t size = 0;
    if (!object.get_size(size) || static_cast<uint64_t>(size) < shm::kHeaderSize) return;
    bip::mapped_region region(object, bip::read_write, 0, shm::kHeaderSize);
    auto* header = static_cast<SegmentHeader*>(region.get_address());
    if (header->magic != shm::kMagic || header->layout_version != shm::kLayoutVersion) return;
    header->state.store(shm::kStateStale, std::memory_order_release);
  } catch (const bip::interprocess_exception&) {
    // No old segment, or one we may not write: nothing to mark.
  }
}

// Bytes of a ring of `capacity` points (what a series' ring uses of its slot).
uint64_t RingBytes(uint32_t capacity) {
  return shm::RoundUp(uint64_t{capacity} * sizeof(PointCell), shm::kRingAlignment);
}

// `judge`: readers judge the writer's liveness; the writer knows it is alive (or closed).
SegmentInfo InfoFromHeader(const SegmentHeader& h, uint64_t bytes_total, uint64_t rings_offset,
                           uint64_t ring_bytes, bool judge) {
  SegmentInfo info;
  info.layout_version = h.layout_version;
  info.generation = h.generation;
  info.heartbeat_ns = h.heartbeat_ns.load(std::memory_order_relaxed);
  if (judge) {
    info.writer_state = JudgeWriter(h, RealtimeNs(), &info.stale_since_ns);
  } else if (h.state.load(std::memory_order_acquire) != shm::kStateLive) {
    info.writer_state = WriterState::kClosed;
    info.stale_since_ns = h.closed_ns.load(std::memory_order_relaxed);
  }
  info.stale = info.writer_state != WriterState::kLive;
  info.writer_pid = h.writer_pid;
  info.capacity = h.capacity;
  info.max_series = h.max_series;
  info.series_count = std::min(h.series_count.load(std::memory_order_acquire), h.max_series);
  info.points_written = h.points_written.load(std::memory_order_relaxed);
  info.bytes_total = bytes_total;
  info.bytes_used = rings_offset + ring_bytes;
  return info;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// ShmWriter

struct ShmWriter::Impl {
  ~Impl() {
    if (lock_fd >= 0) close(lock_fd);
  }

  // Reserves memory for [offset, offset+len) so the writer's later stores cannot SIGBUS on
  // a full /dev/shm. Filesystems without fallocate keep the sparse behaviour.
  Status Reserve(uint64_t offset, uint64_t len) {
    const int fd = object.get_mapping_handle().handle;
    if (fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0) {
      return Status::OK();
    }
    const int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) return Status::OK();
    return Status::FromErrno("cannot allocate " + std::to_string(len) + " bytes of " +
                                 SegmentName(name) + " in " + std::string(kShmDir),
                             err);
  }

  PointCell* Ring(SeriesId id) {
    return reinterpret_cast<PointCell*>(rings + uint64_t{id} * geometry.ring_stride);
  }

  std::string name;
  int lock_fd = -1;                  // holds flock(LOCK_EX) while open; -1 once closed
  bip::shared_memory_object object;  // kept open for fallocate
  bip::mapped_region region;
  shm::Geometry geometry;
  SegmentHeader* header = nullptr;
  DirectorySlot* directory = nullptr;
  char* rings = nullptr;
  uint32_t capacity = 0;  // the largest ring; a series' own is in its DirectorySlot
  uint32_t max_series = 0;
  // Series added so far; mirrors header->series_count without touching shared memory.
  uint32_t series_count = 0;
  uint64_t ring_bytes = 0;  // RingBytes() of every series added
  // Ids below this are appended; Close() sets it to 0 so later points are dropped.
  uint32_t appendable = 0;
  std::unordered_map<std::string, SeriesId> ids;  // canonical key -> id
};

ShmWriter::ShmWriter(std::unique_ptr<Impl> impl, StoreOptions options)
    : impl_(std::move(impl)), options_(std::move(options)) {}

ShmWriter::~ShmWriter() { Close(); }

Result<std::unique_ptr<ShmWriter>> ShmWriter::Create(const StoreOptions& options) {
  const std::string& name = options.name;
  if (Status st = ValidateName(name); !st.ok()) return Err(st);
  if (options.capacity < 2) {
    return Err(Status::InvalidArgument(SegmentName(name) + ": capacity " +
                                       std::to_string(options.capacity) +
                                       " is too small (need at least 2 points per series)"));
  }
  if (options.max_series < 1) {
    return Err(Status::InvalidArgument(SegmentName(name) + ": max_series must be at least 1"));
  }
  const std::optional<shm::Geometry> geometry =
      shm::ComputeGeometry(options.capacity, options.max_series, shm::kMaxSegmentBytes);
  if (!geometry) {
    return Err(Status::InvalidArgument(SegmentName(name) + ": capacity " +
                                       std::to_string(options.capacity) + " x max_series " +
                                       std::to_string(options.max_series) + " needs more than " +
                                       std::to_string(shm::kMaxSegmentBytes) + " bytes"));
  }

  auto impl = std::make_unique<Impl>();
  impl->name = name;
  impl->geometry = *geometry;
  impl->capacity = options.capacity;
  impl->max_series = options.max_series;

  // One writer per name. flock (not a pid file) so the lock dies with the process. A writer
  // that closes with remove_on_close unlinks the lock file while it still holds the lock;
  // a writer that opened the old file just before the unlink would then lock an inode no
  // longer under the name, beside a third writer locking the new file. So after locking,
  // check that the name still holds the locked inode, and start again if not.
  const std::string lock_path = ShmPath(name) + ".lock";
  for (int attempt = 0;; ++attempt) {
    // O_NOFOLLOW: /dev/shm is world-writable, and augurd runs as root.
    impl->lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (impl->lock_fd < 0) {
      return Err(Status::FromErrno("cannot open writer lock " + lock_path, errno));
    }
    if (flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        if (std::optional<int32_t> pid = PeekWriterPid(name)) {
          return Err(Status::AlreadyExists("another augurd (pid " + std::to_string(*pid) +
                                           ") is writing " + SegmentName(name)));
        }
        return Err(Status::AlreadyExists("another augurd is writing " + SegmentName(name) +
                                         " (it holds " + lock_path + ")"));
      }
      return Err(Status::FromErrno("cannot lock " + lock_path, err));
    }
    struct stat held {}, named {};
    if (fstat(impl->lock_fd, &held) == 0 && stat(lock_path.c_str(), &named) == 0 &&
        held.st_dev == named.st_dev && held.st_ino == named.st_ino) {
      break;
    }
    close(impl->lock_fd);
    impl->lock_fd = -1;
    if (attempt == 8) {
      return Err(Status::Unavailable("writer lock " + lock_path +
                                     " keeps being replaced; is another agent restarting in a loop?"));
    }
  }
  if (Status st = CheckSegmentFits(options); !st.ok()) return Err(st);

  // Build the new segment under a temporary name and rename it over the old one, so a
  // reader opening the name sees either the old segment or the complete new one, never a
  // zero-filled header. Readers that mapped the old one keep it until they Refresh().
  const std::string tmp_name = name + ".new";
  // A leftover from a writer that died while creating; we hold the lock, so it is nobody's.
  bip::shared_memory_object::remove(tmp_name.c_str());
  try {
    bip::shared_memory_object object(bip::create_only, tmp_name.c_str(), bip::read_write,
                                     bip::permissions(0644));  // readers need not be root
    object.truncate(static_cast<bip::offset_t>(geometry->total_size));
    bip::mapped_region region(object, bip::read_write, 0, geometry->total_size);
    impl->object.swap(object);
    impl->region.swap(region);
  } catch (const bip::interprocess_exception& e) {
    bip::shared_memory_object::remove(tmp_name.c_str());
    return Err(Status::IOError("cannot create " + SegmentName(name) + " of " +
                               std::to_string(geometry->total_size) + " bytes: " + e.what()));
  }
  if (Status st = impl->Reserve(0, shm::kHeaderSize); !st.ok()) {
    bip::shared_memory_object::remove(tmp_name.c_str());
    return Err(st);
  }

  char* base = static_cast<char*>(impl->region.get_address());
  // The pages are zero-filled; construct the header in place so its atomics are objects.
  // Slots and rings are constructed when their series is added (Resolve), so untouched
  // series stay unbacked.
  auto* header = new (base) SegmentHeader{};
  const int64_t now = RealtimeNs();
  header->magic = shm::kMagic;
  header->layout_version = shm::kLayoutVersion;
  header->header_size = static_cast<uint32_t>(shm::kHeaderSize);
  header->generation = NewGeneration(now);
  header->created_ns = now;
  header->writer_pid = static_cast<int32_t>(getpid());
  header->capacity = options.capacity;
  header->max_series = options.max_series;
  header->slot_size = sizeof(DirectorySlot);
  header->point_size = sizeof(PointCell);
  header->directory_offset = geometry->directory_offset;
  header->rings_offset = geometry->rings_offset;
  header->total_size = geometry->total_size;
  if (std::optional<ProcStart> self = ReadProcStart(getpid())) {
    header->writer_starttime = self->starttime;
  }
  header->writer_pidns = OwnPidNamespace();
  header->heartbeat_interval_ns = std::max<int64_t>(options.heartbeat_interval_ns, 0);
  header->heartbeat_ns.store(now, std::memory_order_relaxed);
  header->state.store(shm::kStateLive, std::memory_order_release);
  impl->header = header;
  impl->directory = reinterpret_cast<DirectorySlot*>(base + geometry->directory_offset);
  impl->rings = base + geometry->rings_offset;

  MarkStale(name);
  const std::string tmp_path = ShmPath(tmp_name);
  const std::string path = ShmPath(name);
  if (rename(tmp_path.c_str(), path.c_str()) != 0) {
    const int err = errno;
    bip::shared_memory_object::remove(tmp_name.c_str());
    return Err(Status::FromErrno(
        "cannot publish " + SegmentName(name) + " (rename " + tmp_path + " to " + path + ")", err));
  }
  return std::unique_ptr<ShmWriter>(new ShmWriter(std::move(impl), options));
}

Result<SeriesId> ShmWriter::Resolve(const SeriesKey& key, uint32_t capacity) {
  Impl& m = *impl_;
  if (m.lock_fd < 0) {
    return Err(Status::FailedPrecondition("writer of " + SegmentName(m.name) + " is closed"));
  }
  if (Status st = key.Validate(); !st.ok()) return Err(st);
  std::string canonical = key.ToString();
  if (auto it = m.ids.find(canonical); it != m.ids.end()) return it->second;
  if (capacity == 0) capacity = m.capacity;
  if (capacity < 2 || capacity > m.capacity) {
    return Err(Status::InvalidArgument(
        "series " + canonical + ": ring capacity " + std::to_string(capacity) + " is not in 2.." +
        std::to_string(m.capacity) + " (the capacity of " + SegmentName(m.name) + ")"));
  }
  if (m.series_count >= m.max_series) {
    return Err(Status::Unavailable(
        SegmentName(m.name) + " is full: all " + std::to_string(m.max_series) +
        " series slots are in use, cannot add " + canonical + " (raise max_series)"));
  }
  const SeriesId id = m.series_count;
  const uint64_t slot_offset = m.geometry.directory_offset + uint64_t{id} * sizeof(DirectorySlot);
  const uint64_t ring_offset = m.geometry.rings_offset + uint64_t{id} * m.geometry.ring_stride;
  if (Status st = m.Reserve(slot_offset, sizeof(DirectorySlot)); !st.ok()) return Err(st);
  if (Status st = m.Reserve(ring_offset, RingBytes(capacity)); !st.ok()) return Err(st);

  auto* slot = new (&m.directory[id]) DirectorySlot{};
  std::memcpy(slot->key, canonical.data(), canonical.size());
  slot->key[canonical.size()] = '\0';
  slot->key_length = static_cast<uint32_t>(canonical.size());
  slot->capacity = capacity;
  // Ring cells are constructed by Append on the first lap, not here: touching the whole
  // ring now would fault in (and count in the writer's RSS) pages that a slow series
  // reaches only hours later. Readers never read a cell before its first append.
  // Publishes the slot: a reader that sees the new count (acquire) sees the key.
  m.header->series_count.store(id + 1, std::memory_order_release);
  m.series_count = id + 1;
  m.appendable = m.series_count;
  m.ring_bytes += RingBytes(capacity);
  m.ids.emplace(std::move(canonical), id);
  return id;
}

void ShmWriter::Append(SeriesId id, int64_t ts_ns, double value) {
  Impl& m = *impl_;
  if (id >= m.appendable) [[unlikely]] {
    return;
  }
  DirectorySlot& slot = m.directory[id];
  // Only this thread writes seq, so a relaxed load sees our own last store.
  const uint64_t seq = slot.seq.load(std::memory_order_relaxed);
  // Release, so a reader that loads the odd value still synchronises with the previous
  // append and may read the points before this one; the fence keeps the point's stores
  // from becoming visible before the odd value.
  slot.seq.store(seq + 1, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_release);
  const uint32_t head = slot.head;
  const uint32_t capacity = slot.capacity;  // written by Resolve, on this cache line
  PointCell* cell_ptr = &m.Ring(id)[head];
  if (seq / 2 < capacity) cell_ptr = new (cell_ptr) PointCell{};  // first lap
  PointCell& cell = *cell_ptr;
  cell.ts_ns.store(ts_ns, std::memory_order_relaxed);
  cell.value_bits.store(std::bit_cast<uint64_t>(value), std::memory_order_relaxed);
  slot.head = head + 1 == capacity ? 0 : head + 1;
  slot.seq.store(seq + 2, std::memory_order_release);
  // Single writer: load+store instead of a locked read-modify-write.
  m.header->points_written.store(m.header->points_written.load(std::memory_order_relaxed) + 1,
                                 std::memory_order_relaxed);
}

void ShmWriter::Heartbeat(int64_t now_ns) {
  Impl& m = *impl_;
  if (m.lock_fd < 0) return;
  m.header->heartbeat_ns.store(now_ns, std::memory_order_relaxed);
}

void ShmWriter::MarkStaleFromSignalHandler() {
  // Only lock-free atomic stores and clock_gettime: both async-signal-safe.
  Impl& m = *impl_;
  if (m.header == nullptr) return;
  m.header->closed_ns.store(RealtimeNs(), std::memory_order_relaxed);
  m.header->state.store(shm::kStateStale, std::memory_order_release);
}

void ShmWriter::Close() {
  Impl& m = *impl_;
  if (m.lock_fd < 0) return;
  m.header->closed_ns.store(RealtimeNs(), std::memory_order_relaxed);
  m.header->state.store(shm::kStateStale, std::memory_order_release);
  m.appendable = 0;
  if (options_.remove_on_close) {
    // Only what is still ours: the name may hold a newer writer's segment if a test or an
    // operator moved things around. The lock file goes while we hold the lock (see Create).
    const std::string path = ShmPath(m.name);
    struct stat named {}, mapped {};
    if (stat(path.c_str(), &named) == 0 && fstat(m.object.get_mapping_handle().handle, &mapped) == 0 &&
        named.st_dev == mapped.st_dev && named.st_ino == mapped.st_ino) {
      unlink(path.c_str());
    }
    unlink((path + std::string(kLockSuffix)).c_str());
  }
  // Unlock explicitly: a child forked from this process shares the lock's open file
  // description, and closing our descriptor alone would leave the lock held.
  flock(m.lock_fd, LOCK_UN);
  close(m.lock_fd);
  m.lock_fd = -1;
}

SegmentInfo ShmWriter::Info() const {
  const Impl& m = *impl_;
  return InfoFromHeader(*m.header, m.geometry.total_size, m.geometry.rings_offset, m.ring_bytes,
                        /*judge=*/false);
}

std::string_view WriterStateName(WriterState s) {
  switch (s) {
    case WriterState::kLive: return "live";
    case WriterState::kClosed: return "closed";
    case WriterState::kDead: return "dead";
    case WriterState::kStalled: return "stalled";
  }
  return "unknown";
}

uint64_t SegmentBytes(uint32_t capacity, uint32_t max_series) {
  const std::optional<shm::Geometry> g =
      shm::ComputeGeometry(capacity, max_series, std::numeric_limits<uint64_t>::max());
  return g ? g->total_size : 0;
}

namespace {
std::string Gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1ULL << 30));
  return buf;
}
}  // namespace

Status CheckSegmentFits(const StoreOptions& options) {
  const uint64_t need = SegmentBytes(options.capacity, options.max_series);
  if (need == 0) {
    return Status::InvalidArgument(SegmentName(options.name) + ": capacity " +
                                   std::to_string(options.capacity) + " x max_series " +
                                   std::to_string(options.max_series) + " is not a valid size");
  }
  struct statvfs vfs {};
  if (statvfs(std::string(kShmDir).c_str(), &vfs) != 0) {
    // Nothing to compare against (no /dev/shm yet, as in some build chroots): creating the
    // segment will say what is wrong.
    return Status::OK();
  }
  uint64_t free_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize;
  // The segment this writer replaces gives its space back.
  struct stat old {};
  if (stat(ShmPath(options.name).c_str(), &old) == 0 && S_ISREG(old.st_mode)) {
    free_bytes += uint64_t(old.st_blocks) * 512;
  }
  if (need <= free_bytes) return Status::OK();
  return Status::ResourceExhausted(
      SegmentName(options.name) + " needs " + std::to_string(need) + " bytes (" + Gib(need) +
      ") when full (capacity " + std::to_string(options.capacity) + " points x max_series " +
      std::to_string(options.max_series) + " series x " + std::to_string(sizeof(PointCell)) +
      " bytes, plus the directory), but " + std::string(kShmDir) + " has " +
      std::to_string(free_bytes) + " bytes (" + Gib(free_bytes) +
      ") free; lower the capacity or max_series, or grow " + std::string(kShmDir));
}

// ---------------------------------------------------------------------------------------
// ShmReader

struct ShmReader::Impl {
  const PointCell* Ring(SeriesId id) const {
    return reinterpret_cast<const PointCell*>(rings + uint64_t{id} * geometry.ring_stride);
  }
  // True when slot `id` is in the directory, so its seq and ring are initialised and the
  // writer no longer constructs them. The count shares a cache line only with fields that
  // are written once (or on Resolve/Close), so this load stays a cache hit on the hot path.
  bool Published(SeriesId id) const {
    return id < max_series && id < header->series_count.load(std::memory_order_acquire);
  }
  // The ring capacity of published slot `id`, or 0 when the slot's value is impossible
  // (a corrupt segment): such a series reads as empty instead of reading out of its slot.
  uint32_t Capacity(SeriesId id) const {
    const uint32_t c = directory[id].capacity;
    return c >= 2 && c <= capacity ? c : 0;
  }

  bip::mapped_region region;  // read-only
  shm::Geometry geometry;
  const SegmentHeader* header = nullptr;
  const DirectorySlot* directory = nullptr;
  const char* rings = nullptr;
  uint32_t capacity = 0;
  uint32_t max_series = 0;
  // Identity of the mapped object: while it is mapped its inode cannot be reused, so a
  // different (dev, ino) under the name means a re-created segment.
  dev_t dev = 0;
  ino_t ino = 0;
};

namespace {

std::string Hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016" PRIx64, v);
  return buf;
}

Status Truncated(std::string_view name, uint64_t size) {
  return Status::Corruption(SegmentName(name) + " is truncated: " + std::to_string(size) +
                            " bytes, smaller than the " + std::to_string(shm::kHeaderSize) +
                            "-byte header");
}

// Checks that the `size` bytes at `base` are a segment this build can read. Reads the
// magic and version with memcpy before knowing the header fits, so a short file is
// reported instead of read past its end.
Result<shm::Geometry> ValidateSegment(std::string_view name, const char* base, uint64_t size) {
  uint64_t magic = 0;
  uint32_t version = 0;
  if (size < sizeof(magic)) return Err(Truncated(name, size));
  std::memcpy(&magic, base + offsetof(SegmentHeader, magic), sizeof(magic));
  if (magic != shm::kMagic) {
    return Err(Status::Corruption(SegmentName(name) + " has bad magic " + Hex64(magic) +
                                  " (not an augur segment)"));
  }
  if (size < offsetof(SegmentHeader, layout_version) + sizeof(version)) {
    return Err(Truncated(name, size));
  }
  std::memcpy(&version, base + offsetof(SegmentHeader, layout_version), sizeof(version));
  if (version != shm::kLayoutVersion) {
    return Err(Status::Corruption(SegmentName(name) + " has layout version " +
                                  std::to_string(version) + "; this build supports version " +
                                  std::to_string(shm::kLayoutVersion) +
                                  " (augurd and this reader are from different releases)"));
  }
  if (size < shm::kHeaderSize) return Err(Truncated(name, size));
  const auto& h = *reinterpret_cast<const SegmentHeader*>(base);
  if (h.header_size != shm::kHeaderSize || h.slot_size != sizeof(DirectorySlot) ||
      h.point_size != sizeof(PointCell)) {
    return Err(Status::Corruption(
        SegmentName(name) + " declares header/slot/point sizes " + std::to_string(h.header_size) +
        "/" + std::to_string(h.slot_size) + "/" + std::to_string(h.point_size) +
        " bytes; layout version " + std::to_string(shm::kLayoutVersion) + " has " +
        std::to_string(shm::kHeaderSize) + "/" + std::to_string(sizeof(DirectorySlot)) + "/" +
        std::to_string(sizeof(PointCell))));
  }
  const std::optional<shm::Geometry> g =
      shm::ComputeGeometry(h.capacity, h.max_series, shm::kMaxSegmentBytes);
  if (!g) {
    return Err(Status::Corruption(SegmentName(name) + " declares impossible sizes: capacity " +
                                  std::to_string(h.capacity) + ", max_series " +
                                  std::to_string(h.max_series)));
  }
  if (h.directory_offset != g->directory_offset || h.rings_offset != g->rings_offset ||
      h.total_size != g->total_size) {
    return Err(Status::Corruption(
        SegmentName(name) + ": its table of contents (directory at " +
        std::to_string(h.directory_offset) + ", rings at " + std::to_string(h.rings_offset) +
        ", size " + std::to_string(h.total_size) + ") does not match its capacity and max_series"));
  }
  if (size != g->total_size) {
    return Err(Status::Corruption(SegmentName(name) + " is " + std::to_string(size) +
                                  " bytes but its capacity " + std::to_string(h.capacity) +
                                  " and max_series " + std::to_string(h.max_series) + " need " +
                                  std::to_string(g->total_size) + " (truncated or overwritten)"));
  }
  return *g;
}

}  // namespace

ShmReader::ShmReader(std::unique_ptr<Impl> impl, std::string name)
    : impl_(std::move(impl)), name_(std::move(name)) {}

ShmReader::~ShmReader() = default;

Result<std::unique_ptr<ShmReader>> ShmReader::Open(std::string_view name_view) {
  std::string name(name_view);
  if (Status st = ValidateName(name); !st.ok()) return Err(st);
  auto impl = std::make_unique<Impl>();
  uint64_t size = 0;
  try {
    bip::shared_memory_object object(bip::open_only, name.c_str(), bip::read_only);
    // fstat the descriptor we map (not the path) so size and inode describe this object
    // even if the name is replaced meanwhile.
    struct stat st {};
    if (fstat(object.get_mapping_handle().handle, &st) != 0) {
      return Err(Status::FromErrno("cannot stat " + SegmentName(name), errno));
    }
    size = static_cast<uint64_t>(st.st_size);
    impl->dev = st.st_dev;
    impl->ino = st.st_ino;
    if (size == 0) return Err(Truncated(name, 0));  // nothing to map
    if (size > shm::kMaxSegmentBytes) {
      return Err(Status::Corruption(SegmentName(name) + " is " + std::to_string(size) +
                                    " bytes, larger than any augur segment"));
    }
    bip::mapped_region region(object, bip::read_only, 0, size);
    impl->region.swap(region);
  } catch (const bip::interprocess_exception& e) {
    if (e.get_native_error() == ENOENT) {
      return Err(Status::NotFound("no " + SegmentName(name) + " (" + ShmPath(name) +
                                  "): is augurd running?"));
    }
    return Err(Status::IOError("cannot open " + SegmentName(name) + ": " + e.what()));
  }
  const char* base = static_cast<const char*>(impl->region.get_address());
  Result<shm::Geometry> geometry = ValidateSegment(name, base, size);
  if (!geometry) return Err(geometry.error());
  impl->geometry = *geometry;
  impl->header = reinterpret_cast<const SegmentHeader*>(base);
  impl->directory = reinterpret_cast<const DirectorySlot*>(base + geometry->directory_offset);
  impl->rings = base + geometry->rings_offset;
  impl->capacity = impl->header->capacity;
  impl->max_series = impl->header->max_series;
  return std::unique_ptr<ShmReader>(new ShmReader(std::move(impl), std::move(name)));
}

Result<bool> ShmReader::Refresh() {
  const std::string path = ShmPath(name_);
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    // The name vanished (agent stopped and someone cleaned up): keep the old mapping,
    // which stays readable, until a new segment appears.
    if (errno == ENOENT) return false;
    return Err(Status::FromErrno("cannot stat " + path, errno));
  }
  if (st.st_dev == impl_->dev && st.st_ino == impl_->ino) return false;
  Result<std::unique_ptr<ShmReader>> fresh = Open(name_);
  if (!fresh) {
    if (fresh.error().IsNotFound()) return false;  // removed between stat and open
    return Err(fresh.error());
  }
  impl_ = std::move((*fresh)->impl_);
  return true;
}

SegmentInfo ShmReader::Info() const {
  const Impl& m = *impl_;
  const uint32_t n = std::min(m.header->series_count.load(std::memory_order_acquire), m.max_series);
  uint64_t ring_bytes = 0;
  for (SeriesId i = 0; i < n; ++i) ring_bytes += RingBytes(m.Capacity(i));
  return InfoFromHeader(*m.header, m.geometry.total_size, m.geometry.rings_offset, ring_bytes,
                        /*judge=*/true);
}

std::vector<SeriesEntry> ShmReader::List() const {
  const Impl& m = *impl_;
  const uint32_t n = std::min(m.header->series_count.load(std::memory_order_acquire), m.max_series);
  std::vector<SeriesEntry> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const DirectorySlot& slot = m.directory[i];
    if (slot.key_length >= shm::kKeyCapacity) continue;  // corrupt slot: skip, don't overrun
    Result<SeriesKey> key = SeriesKey::Parse(std::string_view(slot.key, slot.key_length));
    if (!key) continue;
    out.push_back(SeriesEntry{i, *std::move(key), slot.seq.load(std::memory_order_acquire) >> 1,
                              m.Capacity(i)});
  }
  return out;
}

Result<SeriesId> ShmReader::Find(const SeriesKey& key) const {
  const Impl& m = *impl_;
  const std::string canonical = key.ToString();
  const uint32_t n = std::min(m.header->series_count.load(std::memory_order_acquire), m.max_series);
  for (uint32_t i = 0; i < n; ++i) {
    const DirectorySlot& slot = m.directory[i];
    if (slot.key_length == canonical.size() &&
        std::memcmp(slot.key, canonical.data(), canonical.size()) == 0) {
      return i;
    }
  }
  return Err(Status::NotFound("series " + canonical + " is not in " + SegmentName(name_)));
}

// Reads follow shm_layout.h: load seq (acquire), copy, acquire fence, reload seq. Instead
// of requiring seq to be even and unchanged (which would make a reader wait for a writer
// that is descheduled mid-append), a copied point of logical index j is accepted when no
// append that could have started by the reload wrote its cell: the append of index k
// writes cell k % capacity, so j is intact iff j + capacity >= appends started.
std::optional<Point> ShmReader::Latest(SeriesId id) const {
  const Impl& m = *impl_;
  if (!m.Published(id)) return std::nullopt;
  const DirectorySlot& slot = m.directory[id];
  const PointCell* ring = m.Ring(id);
  const uint64_t capacity = m.Capacity(id);
  if (capacity == 0) return std::nullopt;
  for (int attempt = 0; attempt < kMaxLatestAttempts; ++attempt) {
    const uint64_t s1 = slot.seq.load(std::memory_order_acquire);
    const uint64_t completed = s1 >> 1;
    if (completed == 0) return std::nullopt;
    // With s1 odd the append of index `completed` is in progress; it writes another cell
    // (capacity >= 2), so the newest completed point is still readable.
    const uint64_t j = completed - 1;
    const PointCell& cell = ring[j % capacity];
    const int64_t ts = cell.ts_ns.load(std::memory_order_relaxed);
    const uint64_t bits = cell.value_bits.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t s2 = slot.seq.load(std::memory_order_relaxed);
    if (s2 >= s1 && j + capacity >= AppendsStarted(s2)) {
      return Point{ts, std::bit_cast<double>(bits)};
    }
  }
  return std::nullopt;
}

std::vector<Point> ShmReader::Last(SeriesId id, size_t n) const {
  const Impl& m = *impl_;
  std::vector<Point> out;
  if (n == 0 || !m.Published(id)) return out;
  const DirectorySlot& slot = m.directory[id];
  const PointCell* ring = m.Ring(id);
  const uint64_t capacity = m.Capacity(id);
  if (capacity == 0) return out;
  for (int attempt = 0; attempt < kMaxLastAttempts; ++attempt) {
    const uint64_t s1 = slot.seq.load(std::memory_order_acquire);
    const uint64_t completed = s1 >> 1;
    // An append in progress (s1 odd) is overwriting the oldest cell: leave it out.
    const uint64_t available = std::min<uint64_t>(completed, capacity - (s1 & 1));
    const uint64_t count = std::min<uint64_t>(n, available);
    if (count == 0) return out;
    const uint64_t first = completed - count;  // logical index of the oldest point copied
    out.resize(count);
    uint64_t cell = first % capacity;
    for (uint64_t k = 0; k < count; ++k) {
      out[k].ts_ns = ring[cell].ts_ns.load(std::memory_order_relaxed);
      out[k].value = std::bit_cast<double>(ring[cell].value_bits.load(std::memory_order_relaxed));
      if (++cell == capacity) cell = 0;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t s2 = slot.seq.load(std::memory_order_relaxed);
    if (s2 < s1) {  // only a corrupt segment goes backwards
      out.clear();
      continue;
    }
    const uint64_t started = AppendsStarted(s2);
    const uint64_t oldest_intact = started > capacity ? started - capacity : 0;
    if (first >= oldest_intact) return out;
    // The writer lapped the oldest points while we copied. Retry for the full answer; on
    // the last attempt return the intact (newest) part, which is a consistent answer too.
    if (attempt + 1 == kMaxLastAttempts) {
      const uint64_t lost = std::min<uint64_t>(oldest_intact - first, count);
      out.erase(out.begin(), out.begin() + static_cast<ptrdiff_t>(lost));
      return out;
    }
  }
  return out;
}

}  // namespace augur::telemetry
