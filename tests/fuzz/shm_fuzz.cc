// Fuzzes augur::telemetry::ShmReader (src/telemetry/shm_store.cc) on corrupted segments.
//
// Input: byte 0 picks the mode.
//   even: the rest is the whole segment, written verbatim as /dev/shm/<name>.
//   odd:  bytes 1..3 pick a geometry and how many series and points a real ShmWriter puts in
//         a valid segment; the rest is patches (u16 offset, u8 value) applied to its bytes.
// In both modes the second half of the patches is applied to a copy written under the same
// name after Open (a new inode), so Refresh() re-attaches to a corrupt segment too.
// Open/Refresh/Info/List/Find/Latest/Last must never crash, hang or read out of bounds (ASan
// checks the bounds: the mapping is exactly the file's size). The objects are removed after
// every input.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "telemetry/shm_store.h"

namespace {

using augur::telemetry::SeriesKey;
using augur::telemetry::ShmReader;
using augur::telemetry::ShmWriter;

const std::string& Name() {
  static const std::string name = "augur-fuzz-shm-" + std::to_string(getpid());
  return name;
}

void RemoveAll() {
  shm_unlink(Name().c_str());
  shm_unlink((Name() + ".lock").c_str());
  shm_unlink((Name() + ".new").c_str());
}

bool WriteObject(const std::vector<uint8_t>& bytes) {
  shm_unlink(Name().c_str());  // a new inode, as a restarted writer makes
  const int fd = shm_open(Name().c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  close(fd);
  return done == bytes.size();
}

std::vector<uint8_t> ReadObject() {
  std::vector<uint8_t> out;
  const int fd = shm_open(Name().c_str(), O_RDONLY, 0);
  if (fd < 0) return out;
  uint8_t buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.insert(out.end(), buf, buf + n);
  close(fd);
  return out;
}

const char* const kKeys[] = {
    "cpu_busy_seconds_total",
    "memory_bytes{kind=\"available\"}",
    "pressure_ratio{kind=\"some\",window=\"10s\"}",
    "net_bytes_total{direction=\"rx\",interface=\"eth0\"}",
};

// A valid segment from a real writer, as bytes.
std::vector<uint8_t> ValidSegment(const uint8_t* p, size_t n) {
  const uint8_t a = n > 0 ? p[0] : 0, b = n > 1 ? p[1] : 0, c = n > 2 ? p[2] : 0;
  augur::telemetry::StoreOptions opts;
  opts.name = Name();
  opts.capacity = 2 + a % 15;
  opts.max_series = 1 + b % 6;
  auto writer = ShmWriter::Create(opts);
  if (!writer) {
    std::fprintf(stderr, "shm_fuzz: cannot create a segment: %s\n",
                 writer.error().ToString().c_str());
    std::abort();
  }
  const size_t series = std::min<size_t>(c % 5, opts.max_series);
  for (size_t i = 0; i < series; ++i) {
    auto key = SeriesKey::Parse(kKeys[i]);
    if (!key) std::abort();
    auto id = (*writer)->Resolve(*key, i % 2 ? 2 : 0);
    if (!id) continue;
    for (unsigned k = 0; k < (c >> 3) * (i + 1); ++k) (*writer)->Append(*id, 1000 + k, k * 0.5);
  }
  (*writer)->Close();
  writer->reset();
  return ReadObject();
}

void Patch(std::vector<uint8_t>& bytes, const uint8_t* p, size_t n) {
  if (bytes.empty()) return;
  for (size_t i = 0; i + 3 <= n; i += 3) {
    const size_t off = (size_t{p[i]} | size_t{p[i + 1]} << 8) % bytes.size();
    bytes[off] = p[i + 2];
  }
}

void Exercise(const ShmReader& r) {
  const augur::telemetry::SegmentInfo info = r.Info();
  std::vector<augur::telemetry::SeriesEntry> list = r.List();
  if (list.size() > info.max_series) std::abort();
  for (const auto& e : list) {
    (void)r.Find(e.key);
    (void)r.Latest(e.id);
    (void)r.Last(e.id, 3);
    (void)r.Last(e.id, SIZE_MAX);
  }
  for (uint32_t id : {0u, 1u, 5u, info.max_series, UINT32_MAX}) {
    (void)r.Latest(id);
    (void)r.Last(id, 1u << 20);
  }
  for (const char* k : kKeys) (void)r.Find(*SeriesKey::Parse(k));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  RemoveAll();
  std::vector<uint8_t> segment;
  const uint8_t* rest = data + 1;
  size_t rest_n = size - 1;
  if (data[0] % 2 == 0) {
    segment.assign(rest, rest + rest_n);
    rest_n = 0;
  } else {
    segment = ValidSegment(rest, rest_n);
    rest += std::min<size_t>(3, rest_n);
    rest_n -= std::min<size_t>(3, rest_n);
  }
  // Patches: the first half before Open, the second half for the segment Refresh finds.
  const size_t half = rest_n / 6 * 3;
  std::vector<uint8_t> first = segment;
  Patch(first, rest, half);
  if (!WriteObject(first)) std::abort();
  auto reader = ShmReader::Open(Name());
  if (reader) {
    Exercise(**reader);
    std::vector<uint8_t> second = segment;
    Patch(second, rest + half, rest_n - half);
    if (WriteObject(second)) {
      auto refreshed = (*reader)->Refresh();
      // Whether or not it re-attached, the reader must stay usable.
      (void)refreshed;
      Exercise(**reader);
    }
  }
  RemoveAll();
  return 0;
}
