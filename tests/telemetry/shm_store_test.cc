// Tests of the shared-memory series store (src/telemetry/shm_store.h): the writer/reader
// API, every error a reader can meet in /dev/shm, re-creation by a restarted agent, and
// torn-read freedom with reader processes racing a continuously appending writer.
//
// Each test uses its own segment name (pid + test name) and removes it afterwards.
#include "telemetry/shm_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/interprocess/shared_memory_object.hpp>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "telemetry/shm_layout.h"

namespace augur::telemetry {
namespace {

using ::testing::HasSubstr;

std::string ShmPath(const std::string& name) { return "/dev/shm/" + name; }

void RemoveSegment(const std::string& name) {
  boost::interprocess::shared_memory_object::remove(name.c_str());
  boost::interprocess::shared_memory_object::remove((name + ".new").c_str());
  unlink((ShmPath(name) + ".lock").c_str());
}

// A value derived from the timestamp and series, so a point whose ts and value come from
// different appends (a torn read) is detected.
double ValueFor(SeriesId id, int64_t ts) {
  return static_cast<double>(ts) * 0.5 + static_cast<double>(id);
}

class ShmStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "augur_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    RemoveSegment(name_);
  }
  void TearDown() override { RemoveSegment(name_); }

  StoreOptions Options(uint32_t capacity, uint32_t max_series) const {
    StoreOptions o;
    o.name = name_;
    o.capacity = capacity;
    o.max_series = max_series;
    return o;
  }

  std::unique_ptr<ShmWriter> MustCreate(uint32_t capacity, uint32_t max_series) {
    auto w = ShmWriter::Create(Options(capacity, max_series));
    EXPECT_TRUE(w.has_value()) << w.error().ToString();
    return w ? std::move(*w) : nullptr;
  }

  std::unique_ptr<ShmReader> MustOpen() {
    auto r = ShmReader::Open(name_);
    EXPECT_TRUE(r.has_value()) << r.error().ToString();
    return r ? std::move(*r) : nullptr;
  }

  // Writes `bytes` over the segment file at `offset` (to forge bad headers).
  void Overwrite(off_t offset, const void* bytes, size_t len) {
    const int fd = open(ShmPath(name_).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(pwrite(fd, bytes, len, offset), static_cast<ssize_t>(len));
    close(fd);
  }

  std::string name_;
};

TEST_F(ShmStoreTest, AppendLatestLastWithWraparound) {
  auto w = MustCreate(/*capacity=*/4, /*max_series=*/4);
  ASSERT_NE(w, nullptr);
  auto id = w->Resolve(SeriesKey("cpu_busy_seconds_total", {{"cpu", "0"}}));
  ASSERT_TRUE(id.has_value()) << id.error().ToString();
  auto empty_id = w->Resolve(SeriesKey("never_written", {}));
  ASSERT_TRUE(empty_id.has_value());

  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Latest(*id), std::nullopt);
  EXPECT_TRUE(r->Last(*id, 3).empty());

  w->Append(*id, 1, ValueFor(*id, 1));
  ASSERT_TRUE(r->Latest(*id).has_value());
  EXPECT_EQ(r->Latest(*id)->ts_ns, 1);
  ASSERT_EQ(r->Last(*id, 10).size(), 1u);

  for (int64_t ts = 2; ts <= 10; ++ts) w->Append(*id, ts, ValueFor(*id, ts));
  auto latest = r->Latest(*id);
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->ts_ns, 10);
  EXPECT_EQ(latest->value, ValueFor(*id, 10));

  // Capacity 4: the ring holds 7..10 after wrapping twice, oldest first.
  std::vector<Point> all = r->Last(*id, 100);
  ASSERT_EQ(all.size(), 4u);
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].ts_ns, static_cast<int64_t>(7 + i));
    EXPECT_EQ(all[i].value, ValueFor(*id, all[i].ts_ns));
  }
  std::vector<Point> two = r->Last(*id, 2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].ts_ns, 9);
  EXPECT_EQ(two[1].ts_ns, 10);
  EXPECT_TRUE(r->Last(*id, 0).empty());

  EXPECT_EQ(r->Latest(*empty_id), std::nullopt);
  std::vector<SeriesEntry> list = r->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, *id);
  EXPECT_EQ(list[0].key.ToString(), "cpu_busy_seconds_total{cpu=\"0\"}");
  EXPECT_EQ(list[0].count, 10u);
  EXPECT_EQ(list[1].count, 0u);
  EXPECT_EQ(r->Info().points_written, 10u);
  EXPECT_EQ(w->Info().points_written, 10u);
}

TEST_F(ShmStoreTest, ResolveIsIdempotentAndIgnoresLabelOrder) {
  auto w = MustCreate(8, 8);
  ASSERT_NE(w, nullptr);
  auto a = w->Resolve(SeriesKey("net_bytes_total", {{"dev", "eth0"}, {"dir", "rx"}}));
  auto b = w->Resolve(SeriesKey("net_bytes_total", {{"dir", "rx"}, {"dev", "eth0"}}));
  auto c = w->Resolve(SeriesKey("net_bytes_total", {{"dev", "eth0"}, {"dir", "rx"}}));
  auto other = w->Resolve(SeriesKey("net_bytes_total", {{"dev", "eth0"}, {"dir", "tx"}}));
  ASSERT_TRUE(a && b && c && other);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, *c);
  EXPECT_NE(*a, *other);
  EXPECT_EQ(w->Info().series_count, 2u);

  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  auto found = r->Find(SeriesKey("net_bytes_total", {{"dir", "rx"}, {"dev", "eth0"}}));
  ASSERT_TRUE(found.has_value()) << found.error().ToString();
  EXPECT_EQ(*found, *a);
  auto missing = r->Find(SeriesKey("net_bytes_total", {{"dev", "eth1"}}));
  ASSERT_FALSE(missing.has_value());
  EXPECT_TRUE(missing.error().IsNotFound());
  EXPECT_THAT(missing.error().message(), HasSubstr("net_bytes_total{dev=\"eth1\"}"));
}

TEST_F(ShmStoreTest, ResolveRejectsInvalidKeys) {
  auto w = MustCreate(8, 8);
  ASSERT_NE(w, nullptr);
  auto bad_name = w->Resolve(SeriesKey("bad name", {}));
  ASSERT_FALSE(bad_name.has_value());
  EXPECT_TRUE(bad_name.error().IsInvalidArgument());
  auto reserved = w->Resolve(SeriesKey("m", {{"__name__", "x"}}));
  ASSERT_FALSE(reserved.has_value());
  EXPECT_TRUE(reserved.error().IsInvalidArgument());
  auto too_long = w->Resolve(SeriesKey("m", {{"v", std::string(300, 'x')}}));
  ASSERT_FALSE(too_long.has_value());
  EXPECT_TRUE(too_long.error().IsInvalidArgument());
  // Rejected keys take no slot.
  EXPECT_EQ(w->Info().series_count, 0u);
}

TEST_F(ShmStoreTest, FullDirectoryIsUnavailable) {
  auto w = MustCreate(8, 2);
  ASSERT_NE(w, nullptr);
  ASSERT_TRUE(w->Resolve(SeriesKey("m", {{"i", "0"}})).has_value());
  ASSERT_TRUE(w->Resolve(SeriesKey("m", {{"i", "1"}})).has_value());
  auto third = w->Resolve(SeriesKey("m", {{"i", "2"}}));
  ASSERT_FALSE(third.has_value());
  EXPECT_TRUE(third.error().IsUnavailable());
  EXPECT_THAT(third.error().message(), HasSubstr("is full"));
  EXPECT_THAT(third.error().message(), HasSubstr("m{i=\"2\"}"));
  EXPECT_THAT(third.error().message(), HasSubstr(name_));
  // Known series still resolve when full.
  auto again = w->Resolve(SeriesKey("m", {{"i", "1"}}));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, 1u);
}

TEST_F(ShmStoreTest, CreateRejectsBadOptions) {
  const std::vector<std::string> bad_names = {"",  "a/b",    "..",
                                              ".", "sp ace", std::string(201, 'n')};
  for (const std::string& bad : bad_names) {
    StoreOptions o = Options(8, 8);
    o.name = bad;
    auto w = ShmWriter::Create(o);
    ASSERT_FALSE(w.has_value()) << "name '" << bad << "'";
    EXPECT_TRUE(w.error().IsInvalidArgument()) << w.error().ToString();
  }
  auto small = ShmWriter::Create(Options(/*capacity=*/1, 8));
  ASSERT_FALSE(small.has_value());
  EXPECT_TRUE(small.error().IsInvalidArgument());
  EXPECT_THAT(small.error().message(), HasSubstr("capacity 1"));
  auto none = ShmWriter::Create(Options(8, /*max_series=*/0));
  ASSERT_FALSE(none.has_value());
  EXPECT_TRUE(none.error().IsInvalidArgument());
  auto huge = ShmWriter::Create(Options(0xffffffffu, 0xffffffffu));
  ASSERT_FALSE(huge.has_value());
  EXPECT_TRUE(huge.error().IsInvalidArgument());
  auto r = ShmReader::Open("a/b");
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsInvalidArgument());
}

TEST_F(ShmStoreTest, SecondWriterIsRejectedUntilTheFirstCloses) {
  auto first = MustCreate(8, 8);
  ASSERT_NE(first, nullptr);
  auto id = first->Resolve(SeriesKey("m", {}));
  ASSERT_TRUE(id.has_value());
  first->Append(*id, 1, 1.0);

  auto second = ShmWriter::Create(Options(8, 8));
  ASSERT_FALSE(second.has_value());
  EXPECT_TRUE(second.error().IsAlreadyExists()) << second.error().ToString();
  EXPECT_THAT(second.error().message(),
              HasSubstr("another augurd (pid " + std::to_string(getpid()) + ")"));
  EXPECT_THAT(second.error().message(), HasSubstr("'" + name_ + "'"));
  // The failed attempt left the live segment alone.
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE(r->Info().stale);
  EXPECT_EQ(r->Info().generation, first->Info().generation);

  first->Close();
  first->Close();  // idempotent
  EXPECT_TRUE(first->Info().stale);
  EXPECT_TRUE(r->Info().stale);
  // A closed writer adds nothing.
  first->Append(*id, 2, 2.0);
  EXPECT_EQ(first->Info().points_written, 1u);
  auto after_close = first->Resolve(SeriesKey("n", {}));
  ASSERT_FALSE(after_close.has_value());
  EXPECT_EQ(after_close.error().code(), Status::Code::kFailedPrecondition);

  auto third = ShmWriter::Create(Options(8, 8));
  ASSERT_TRUE(third.has_value()) << third.error().ToString();
  EXPECT_NE((*third)->Info().generation, first->Info().generation);
  EXPECT_FALSE((*third)->Info().stale);
}

TEST_F(ShmStoreTest, DestructorReleasesTheLock) {
  uint64_t generation = 0;
  {
    auto w = MustCreate(8, 8);
    ASSERT_NE(w, nullptr);
    generation = w->Info().generation;
  }
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->Info().stale);  // the segment outlives its writer
  EXPECT_EQ(r->Info().generation, generation);
  auto w = ShmWriter::Create(Options(8, 8));
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
}

TEST_F(ShmStoreTest, ReplacingADeadWritersSegmentMarksItStale) {
  // A writer that dies without Close() leaves a "live" segment and no lock.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto w = ShmWriter::Create(Options(8, 8));
    if (!w) _exit(1);
    auto id = (*w)->Resolve(SeriesKey("m", {}));
    if (!id) _exit(2);
    (*w)->Append(*id, 5, 5.0);
    _exit(0);  // no destructors: like a crash
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  // Its state still says live, but its process is gone: readers know without a new writer.
  EXPECT_TRUE(r->Info().stale);
  EXPECT_EQ(r->Info().writer_state, WriterState::kDead);
  EXPECT_EQ(r->Info().writer_pid, child);

  auto w = MustCreate(8, 8);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(r->Info().stale);  // seen through the old mapping, before any Refresh
  EXPECT_EQ(r->Info().writer_state, WriterState::kClosed);
  EXPECT_EQ(r->Latest(0)->ts_ns, 5);
  EXPECT_EQ(w->Info().writer_pid, getpid());
}

// Regression (issue 9): an agent on "x.lock" renamed its segment over the lock file of the
// agent on "x", after which a third agent on "x" started beside the first.
TEST_F(ShmStoreTest, NamesThatReachAnotherSegmentsFilesAreRefused) {
  for (const std::string suffix : {".lock", ".new"}) {
    StoreOptions o = Options(8, 8);
    o.name = name_ + suffix;
    auto w = ShmWriter::Create(o);
    ASSERT_FALSE(w.has_value()) << suffix;
    EXPECT_TRUE(w.error().IsInvalidArgument()) << w.error().ToString();
    EXPECT_THAT(w.error().message(), HasSubstr("may not end in '.lock' or '.new'"));
    auto r = ShmReader::Open(o.name);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().IsInvalidArgument()) << r.error().ToString();
  }
  // Names that merely contain the words are fine.
  StoreOptions o = Options(8, 8);
  o.name = name_ + ".lock.d";
  auto w = ShmWriter::Create(o);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  (*w)->Close();
  RemoveSegment(o.name);
}

// Regression (issue 9): after kill -9 of the writer, readers kept reporting "live".
TEST_F(ShmStoreTest, AKilledWriterIsDeadToReadersFromItsLastBeat) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    StoreOptions o = Options(8, 8);
    o.heartbeat_interval_ns = 100'000'000;
    auto w = ShmWriter::Create(o);
    if (!w) _exit(1);
    (*w)->Heartbeat(123'000'000'000);
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  close(ready[0]);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Info().writer_pid, child);
  kill(child, SIGKILL);
  // Not reaped yet: a zombie is as dead as a reaped process.
  ASSERT_TRUE([&] {
    for (int i = 0; i < 200; ++i) {
      if (r->Info().writer_state == WriterState::kDead) return true;
      usleep(10'000);
    }
    return false;
  }()) << WriterStateName(r->Info().writer_state);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  const SegmentInfo info = r->Info();
  EXPECT_EQ(info.writer_state, WriterState::kDead);
  EXPECT_TRUE(info.stale);
  EXPECT_EQ(info.stale_since_ns, 123'000'000'000) << "the last beat";
}

TEST_F(ShmStoreTest, AWriterWhoseBeatIsOverdueIsStalled) {
  StoreOptions o = Options(8, 8);
  o.heartbeat_interval_ns = 1'000'000'000;
  auto w = ShmWriter::Create(o);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Info().writer_state, WriterState::kLive);
  EXPECT_FALSE(r->Info().stale);
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  const int64_t now_ns = int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
  // Three beats plus the 2 s grace: still live; a minute: stalled.
  (*w)->Heartbeat(now_ns - 4'000'000'000);
  EXPECT_EQ(r->Info().writer_state, WriterState::kLive);
  (*w)->Heartbeat(now_ns - 60'000'000'000);
  EXPECT_EQ(r->Info().writer_state, WriterState::kStalled);
  EXPECT_EQ(r->Info().stale_since_ns, now_ns - 60'000'000'000);
  (*w)->Heartbeat(now_ns);
  EXPECT_EQ(r->Info().writer_state, WriterState::kLive);
  // The writer knows it is alive whatever its clock says.
  EXPECT_FALSE((*w)->Info().stale);
}

TEST_F(ShmStoreTest, AReusedWriterPidIsNotMistakenForTheWriter) {
  auto w = MustCreate(8, 8);
  ASSERT_NE(w, nullptr);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Info().writer_state, WriterState::kLive);
  // Same pid (ours, alive), another start time: what a recycled pid looks like.
  uint64_t forged = 1;
  Overwrite(offsetof(shm::SegmentHeader, writer_starttime), &forged, sizeof(forged));
  EXPECT_EQ(r->Info().writer_state, WriterState::kDead);
}

TEST_F(ShmStoreTest, RemoveOnCloseLeavesNothingInDevShm) {
  StoreOptions o = Options(8, 8);
  o.remove_on_close = true;
  auto w = ShmWriter::Create(o);
  ASSERT_TRUE(w.has_value()) << w.error().ToString();
  auto id = (*w)->Resolve(SeriesKey("m", {}));
  ASSERT_TRUE(id.has_value());
  (*w)->Append(*id, 7, 7.0);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  (*w)->Close();
  struct stat st {};
  EXPECT_NE(stat(ShmPath(name_).c_str(), &st), 0) << "segment left behind";
  EXPECT_NE(stat((ShmPath(name_) + ".lock").c_str(), &st), 0) << "lock file left behind";
  // A reader that had it mapped keeps the last points and learns it is closed, and when.
  const SegmentInfo info = r->Info();
  EXPECT_EQ(info.writer_state, WriterState::kClosed);
  EXPECT_GT(info.stale_since_ns, 0);
  EXPECT_EQ(r->Latest(*id)->value, 7.0);
  EXPECT_FALSE(r->Refresh().value_or(true));
  // And the name is free for the next writer at once.
  auto next = ShmWriter::Create(o);
  ASSERT_TRUE(next.has_value()) << next.error().ToString();
}

// Regression (issue 9): capacity 200000 x max_series 20000 made a 64 GB sparse segment on a
// 24 GB /dev/shm, which would have failed series by series later.
TEST_F(ShmStoreTest, ASegmentThatCannotFitInDevShmIsRefusedWithBothNumbers) {
  StoreOptions o = Options(10'000'000, 100'000);  // 16 TB: more than any /dev/shm
  Status st = CheckSegmentFits(o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kResourceExhausted) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr(std::to_string(SegmentBytes(10'000'000, 100'000))));
  EXPECT_THAT(st.message(), HasSubstr("free"));
  EXPECT_TRUE(CheckSegmentFits(Options(8, 8)).ok());

  StoreOptions big = Options(200'000, 20'000);
  struct statvfs vfs {};
  ASSERT_EQ(statvfs("/dev/shm", &vfs), 0);
  if (uint64_t{vfs.f_bavail} * vfs.f_frsize >= SegmentBytes(200'000, 20'000)) {
    GTEST_SKIP() << "/dev/shm has room for 64 GB here";
  }
  auto w = ShmWriter::Create(big);
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), Status::Code::kResourceExhausted) << w.error().ToString();
  struct stat sst {};
  EXPECT_NE(stat(ShmPath(name_).c_str(), &sst), 0) << "nothing is made";
}

TEST_F(ShmStoreTest, ReaderOfMissingSegmentIsNotFound) {
  auto r = ShmReader::Open(name_);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsNotFound()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr(name_));
}

TEST_F(ShmStoreTest, ReaderRejectsBadMagic) {
  const int fd = open(ShmPath(name_).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  std::vector<unsigned char> garbage(4096, 0xab);
  ASSERT_EQ(write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  close(fd);
  auto r = ShmReader::Open(name_);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("'" + name_ + "' has bad magic 0xabababababababab"));
  EXPECT_THAT(r.error().message(), HasSubstr("not an augur segment"));
}

TEST_F(ShmStoreTest, ReaderRejectsFilesTooShortForAHeader) {
  for (size_t size : {0, 5, 10, 100}) {
    RemoveSegment(name_);
    if (size >= 8) {
      auto w = MustCreate(8, 8);
      ASSERT_NE(w, nullptr);
    } else {
      const int fd = open(ShmPath(name_).c_str(), O_CREAT | O_WRONLY, 0600);
      ASSERT_GE(fd, 0);
      close(fd);
    }
    ASSERT_EQ(truncate(ShmPath(name_).c_str(), static_cast<off_t>(size)), 0);
    auto r = ShmReader::Open(name_);
    ASSERT_FALSE(r.has_value()) << size;
    EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
    EXPECT_THAT(r.error().message(), HasSubstr("truncated: " + std::to_string(size) + " bytes"));
  }
}

TEST_F(ShmStoreTest, ReaderRejectsWrongLayoutVersion) {
  { ASSERT_NE(MustCreate(8, 8), nullptr); }
  const uint32_t version = 99;
  Overwrite(offsetof(shm::SegmentHeader, layout_version), &version, sizeof(version));
  auto r = ShmReader::Open(name_);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("layout version 99"));
  EXPECT_THAT(r.error().message(), HasSubstr("supports version 2"));
}

TEST_F(ShmStoreTest, ReaderRejectsTruncatedSegment) {
  {
    auto w = MustCreate(16, 4);
    ASSERT_NE(w, nullptr);
    auto id = w->Resolve(SeriesKey("m", {}));
    ASSERT_TRUE(id.has_value());
    w->Append(*id, 1, 1.0);
  }
  struct stat st {};
  ASSERT_EQ(stat(ShmPath(name_).c_str(), &st), 0);
  ASSERT_EQ(truncate(ShmPath(name_).c_str(), st.st_size - 64), 0);
  auto r = ShmReader::Open(name_);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("is " + std::to_string(st.st_size - 64) + " bytes"));
  EXPECT_THAT(r.error().message(), HasSubstr("need " + std::to_string(st.st_size)));
}

TEST_F(ShmStoreTest, ReaderRejectsHeaderThatContradictsItsSize) {
  { ASSERT_NE(MustCreate(16, 4), nullptr); }
  const uint32_t capacity = 0xffffffffu;  // a much larger segment than the file
  Overwrite(offsetof(shm::SegmentHeader, capacity), &capacity, sizeof(capacity));
  auto r = ShmReader::Open(name_);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().IsCorruption()) << r.error().ToString();
  EXPECT_THAT(r.error().message(), HasSubstr("does not match"));
}

TEST_F(ShmStoreTest, InfoReportsGeometryAndSparseUsage) {
  auto w = MustCreate(3600, 2048);
  ASSERT_NE(w, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto id = w->Resolve(SeriesKey("m", {{"i", std::to_string(i)}}));
    ASSERT_TRUE(id.has_value());
    w->Append(*id, 1, 1.0);
  }
  struct stat st {};
  ASSERT_EQ(stat(ShmPath(name_).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // readable by unprivileged readers
  const SegmentInfo info = w->Info();
  EXPECT_EQ(info.layout_version, 2u);
  EXPECT_EQ(info.capacity, 3600u);
  EXPECT_EQ(info.max_series, 2048u);
  EXPECT_EQ(info.series_count, 3u);
  EXPECT_EQ(info.writer_pid, getpid());
  EXPECT_NE(info.generation, 0u);
  EXPECT_EQ(info.bytes_total, static_cast<uint64_t>(st.st_size));
  // header + 2048 slots of 320 bytes (rounded to a page) + 3 rings of 3600 * 16 bytes.
  const uint64_t rings_offset = (192 + 2048 * 320 + 4095) / 4096 * 4096;
  EXPECT_EQ(info.bytes_used, rings_offset + 3 * 3600 * 16);
  EXPECT_EQ(info.bytes_total, rings_offset + 2048ull * 3600 * 16);
  // ~118 MB mapped, but only the header, three slots and three rings are backed.
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20);

  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  const SegmentInfo rinfo = r->Info();
  EXPECT_EQ(rinfo.generation, info.generation);
  EXPECT_EQ(rinfo.bytes_used, info.bytes_used);
  EXPECT_EQ(rinfo.bytes_total, info.bytes_total);
  EXPECT_EQ(rinfo.series_count, 3u);
  EXPECT_EQ(rinfo.points_written, 3u);
}

TEST_F(ShmStoreTest, ASeriesWithAShorterRingWrapsAtItsOwnCapacity) {
  auto w = MustCreate(/*capacity=*/64, /*max_series=*/4);
  ASSERT_NE(w, nullptr);
  auto full = w->Resolve(SeriesKey("full", {}));
  auto shortr = w->Resolve(SeriesKey("short", {}), 8);
  ASSERT_TRUE(full && shortr);
  // Asking again keeps the ring the series was added with.
  EXPECT_EQ(*w->Resolve(SeriesKey("short", {}), 32), *shortr);
  for (int i = 0; i < 20; ++i) {
    w->Append(*full, 100 + i, i);
    w->Append(*shortr, 100 + i, -i);
  }
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  const std::vector<Point> all = r->Last(*full, 100);
  ASSERT_EQ(all.size(), 20u);
  const std::vector<Point> last = r->Last(*shortr, 100);
  ASSERT_EQ(last.size(), 8u);  // the newest 8, oldest first
  for (size_t k = 0; k < last.size(); ++k) {
    EXPECT_EQ(last[k].ts_ns, 112 + static_cast<int64_t>(k));
    EXPECT_EQ(last[k].value, -12.0 - static_cast<double>(k));
  }
  EXPECT_EQ(r->Latest(*shortr)->value, -19.0);
  const auto list = r->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].capacity, 64u);
  EXPECT_EQ(list[1].capacity, 8u);
  EXPECT_EQ(list[1].count, 20u);
  // Only the rings' own bytes count as used: 64 and 8 points.
  const SegmentInfo info = r->Info();
  const uint64_t rings_offset = (192 + 4 * 320 + 4095) / 4096 * 4096;
  EXPECT_EQ(info.bytes_used, rings_offset + 64 * 16 + 8 * 16);
  EXPECT_EQ(w->Info().bytes_used, info.bytes_used);
}

TEST_F(ShmStoreTest, ResolveRejectsARingCapacityOutOfRange) {
  auto w = MustCreate(/*capacity=*/16, /*max_series=*/4);
  ASSERT_NE(w, nullptr);
  for (uint32_t bad : {1u, 17u}) {
    auto id = w->Resolve(SeriesKey("m", {}), bad);
    ASSERT_FALSE(id) << bad;
    EXPECT_TRUE(id.error().IsInvalidArgument());
    EXPECT_THAT(id.error().message(),
                HasSubstr("ring capacity " + std::to_string(bad) + " is not in 2..16"));
  }
  EXPECT_EQ(w->Info().series_count, 0u);  // nothing half-added
  EXPECT_TRUE(w->Resolve(SeriesKey("m", {}), 2).has_value());
}

TEST_F(ShmStoreTest, ACorruptSlotCapacityReadsAsAnEmptySeries) {
  auto w = MustCreate(/*capacity=*/16, /*max_series=*/4);
  ASSERT_NE(w, nullptr);
  auto id = w->Resolve(SeriesKey("m", {}));
  ASSERT_TRUE(id);
  for (int i = 0; i < 5; ++i) w->Append(*id, i, i);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  const off_t at =
      static_cast<off_t>(sizeof(shm::SegmentHeader) + offsetof(shm::DirectorySlot, capacity));
  for (uint32_t bad : {0u, 1u, 17u, 0xffffffffu}) {
    Overwrite(at, &bad, sizeof bad);
    EXPECT_FALSE(r->Latest(*id).has_value()) << bad;
    EXPECT_TRUE(r->Last(*id, 10).empty()) << bad;
  }
}

TEST_F(ShmStoreTest, OutOfRangeIdsAreHarmless) {
  auto w = MustCreate(8, 4);
  ASSERT_NE(w, nullptr);
  auto id = w->Resolve(SeriesKey("m", {}));
  ASSERT_TRUE(id.has_value());
  w->Append(3, 1, 1.0);  // a valid slot index, but never resolved
  w->Append(1000, 1, 1.0);
  EXPECT_EQ(w->Info().points_written, 0u);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->Latest(3), std::nullopt);
  EXPECT_EQ(r->Latest(1000), std::nullopt);
  EXPECT_TRUE(r->Last(1000, 5).empty());
}

TEST_F(ShmStoreTest, RefreshFollowsARecreatedSegment) {
  auto w1 = MustCreate(8, 8);
  ASSERT_NE(w1, nullptr);
  auto a = w1->Resolve(SeriesKey("m_a", {}));
  ASSERT_TRUE(a.has_value());
  w1->Append(*a, 10, 1.0);

  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  const uint64_t gen1 = r->Info().generation;
  auto unchanged = r->Refresh();
  ASSERT_TRUE(unchanged.has_value());
  EXPECT_FALSE(*unchanged);

  w1->Close();
  EXPECT_TRUE(w1->Info().stale);
  EXPECT_TRUE(r->Info().stale);
  w1.reset();

  // The restarted agent adds series in another order.
  auto w2 = MustCreate(8, 8);
  ASSERT_NE(w2, nullptr);
  auto b = w2->Resolve(SeriesKey("m_b", {}));
  auto a2 = w2->Resolve(SeriesKey("m_a", {}));
  ASSERT_TRUE(b && a2);
  EXPECT_EQ(*b, 0u);
  w2->Append(*b, 20, 2.0);
  EXPECT_NE(w2->Info().generation, gen1);

  // Until it refreshes, the reader keeps the old segment.
  EXPECT_FALSE(r->Find(SeriesKey("m_b", {})).has_value());
  EXPECT_EQ(r->Latest(*a)->ts_ns, 10);

  auto refreshed = r->Refresh();
  ASSERT_TRUE(refreshed.has_value()) << refreshed.error().ToString();
  EXPECT_TRUE(*refreshed);
  EXPECT_EQ(r->Info().generation, w2->Info().generation);
  EXPECT_FALSE(r->Info().stale);
  auto found_b = r->Find(SeriesKey("m_b", {}));
  ASSERT_TRUE(found_b.has_value());
  EXPECT_EQ(*found_b, *b);
  auto p = r->Latest(*found_b);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->ts_ns, 20);
  EXPECT_EQ(p->value, 2.0);
  EXPECT_EQ(r->Find(SeriesKey("m_a", {})).value(), *a2);
  EXPECT_EQ(r->Latest(*a2), std::nullopt);

  auto again = r->Refresh();
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
}

TEST_F(ShmStoreTest, RefreshKeepsTheMappingWhenTheNameVanishes) {
  auto w = MustCreate(8, 8);
  ASSERT_NE(w, nullptr);
  auto id = w->Resolve(SeriesKey("m", {}));
  ASSERT_TRUE(id.has_value());
  w->Append(*id, 7, 3.5);
  auto r = MustOpen();
  ASSERT_NE(r, nullptr);
  w.reset();
  RemoveSegment(name_);

  auto refreshed = r->Refresh();
  ASSERT_TRUE(refreshed.has_value()) << refreshed.error().ToString();
  EXPECT_FALSE(*refreshed);
  auto p = r->Latest(*id);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->ts_ns, 7);

  auto w2 = MustCreate(8, 8);
  ASSERT_NE(w2, nullptr);
  refreshed = r->Refresh();
  ASSERT_TRUE(refreshed.has_value());
  EXPECT_TRUE(*refreshed);
  EXPECT_TRUE(r->List().empty());
}

// --- Readers in other processes racing a continuously appending writer -------------------

constexpr int kRaceSeries = 4;
constexpr uint32_t kRaceCapacity = 64;  // small, so the writer laps readers' copies often
constexpr int kRaceReaders = 8;

SeriesKey RaceKey(int i) { return SeriesKey("race_points_total", {{"i", std::to_string(i)}}); }

// What a reader process saw; sent to the parent through a pipe.
struct ReaderReport {
  int32_t error = 0;          // 0, or the step that failed (see RunReader)
  uint64_t latest_reads = 0;  // Latest() calls that returned a point
  uint64_t last_reads = 0;    // Last() calls that returned points
  uint64_t points_checked = 0;
  uint64_t torn = 0;          // value not derived from ts (mixed appends)
  uint64_t out_of_order = 0;  // gaps or reordering inside Last(), or time going backwards
  uint64_t oversized = 0;     // Last() returned more than asked or than fit the ring
  uint64_t empty = 0;         // no point although the series had data
  int32_t progressed = 0;     // series whose Latest advanced during the run
};

ReaderReport RunReader(const std::string& name, std::chrono::milliseconds duration) {
  ReaderReport rep;
  auto reader = ShmReader::Open(name);
  if (!reader) {
    rep.error = 1;
    return rep;
  }
  std::array<SeriesId, kRaceSeries> ids{};
  for (int i = 0; i < kRaceSeries; ++i) {
    auto id = (*reader)->Find(RaceKey(i));
    if (!id) {
      rep.error = 2;
      return rep;
    }
    ids[i] = *id;
  }
  constexpr std::array<size_t, 6> kLastSizes = {1, 7, 16, 63, 64, 200};
  std::array<int64_t, kRaceSeries> first_ts{}, last_ts{};
  first_ts.fill(-1);
  last_ts.fill(-1);
  const auto deadline = std::chrono::steady_clock::now() + duration;
  for (uint64_t iter = 0; std::chrono::steady_clock::now() < deadline; ++iter) {
    for (int i = 0; i < kRaceSeries; ++i) {
      const SeriesId id = ids[i];
      std::optional<Point> p = (*reader)->Latest(id);
      if (!p) {
        ++rep.empty;  // the parent wrote a point to every series before forking
        continue;
      }
      ++rep.latest_reads;
      if (p->value != ValueFor(id, p->ts_ns)) ++rep.torn;
      if (p->ts_ns < last_ts[i]) ++rep.out_of_order;
      if (first_ts[i] < 0) first_ts[i] = p->ts_ns;
      last_ts[i] = p->ts_ns;

      const size_t n = kLastSizes[(iter + i) % kLastSizes.size()];
      std::vector<Point> pts = (*reader)->Last(id, n);
      if (pts.empty()) {
        ++rep.empty;
        continue;
      }
      ++rep.last_reads;
      if (pts.size() > n || pts.size() > kRaceCapacity) ++rep.oversized;
      for (size_t k = 0; k < pts.size(); ++k) {
        ++rep.points_checked;
        if (pts[k].value != ValueFor(id, pts[k].ts_ns)) ++rep.torn;
        if (k > 0 && pts[k].ts_ns != pts[k - 1].ts_ns + 1) ++rep.out_of_order;
      }
      // Read after Latest, so it cannot be older.
      if (pts.back().ts_ns < p->ts_ns) ++rep.out_of_order;
    }
  }
  for (int i = 0; i < kRaceSeries; ++i) {
    if (last_ts[i] > first_ts[i]) ++rep.progressed;
  }
  return rep;
}

TEST_F(ShmStoreTest, ReaderProcessesNeverSeeTornPointsWhileTheWriterAppends) {
  auto w = MustCreate(kRaceCapacity, 8);
  ASSERT_NE(w, nullptr);
  std::array<SeriesId, kRaceSeries> ids{};
  std::array<int64_t, kRaceSeries> ts{};
  for (int i = 0; i < kRaceSeries; ++i) {
    auto id = w->Resolve(RaceKey(i));
    ASSERT_TRUE(id.has_value());
    ids[i] = *id;
    ts[i] = 1;
    w->Append(ids[i], ts[i], ValueFor(ids[i], ts[i]));
  }

  struct Child {
    pid_t pid = -1;
    int fd = -1;  // read end of its report pipe
  };
  std::vector<Child> children;
  for (int c = 0; c < kRaceReaders; ++c) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0) << strerror(errno);
    if (pid == 0) {
      close(fds[0]);
      const ReaderReport rep = RunReader(name_, std::chrono::milliseconds(1500));
      const bool sent = write(fds[1], &rep, sizeof(rep)) == static_cast<ssize_t>(sizeof(rep));
      _exit(sent ? 0 : 3);  // skip gtest's and our destructors in the child
    }
    close(fds[1]);
    children.push_back({pid, fds[0]});
  }

  // Append until every reader has finished (bounded, in case one hangs).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t running = children.size();
  std::vector<int> statuses(children.size(), -1);
  uint64_t appended = 0;
  while (running > 0 && std::chrono::steady_clock::now() < give_up) {
    for (int round = 0; round < 4096; ++round) {
      for (int i = 0; i < kRaceSeries; ++i) {
        ++ts[i];
        w->Append(ids[i], ts[i], ValueFor(ids[i], ts[i]));
      }
    }
    appended += 4096 * kRaceSeries;
    for (size_t c = 0; c < children.size(); ++c) {
      if (statuses[c] != -1) continue;
      int status = 0;
      if (waitpid(children[c].pid, &status, WNOHANG) == children[c].pid) {
        statuses[c] = status;
        --running;
      }
    }
  }
  for (size_t c = 0; c < children.size(); ++c) {
    if (statuses[c] == -1) {  // hung: fail, but do not leave it behind
      kill(children[c].pid, SIGKILL);
      waitpid(children[c].pid, &statuses[c], 0);
      ADD_FAILURE() << "reader " << c << " did not finish";
    }
  }

  uint64_t total_reads = 0;
  for (size_t c = 0; c < children.size(); ++c) {
    SCOPED_TRACE("reader " + std::to_string(c));
    EXPECT_TRUE(WIFEXITED(statuses[c]) && WEXITSTATUS(statuses[c]) == 0)
        << "status " << statuses[c];
    ReaderReport rep;
    ASSERT_EQ(read(children[c].fd, &rep, sizeof(rep)), static_cast<ssize_t>(sizeof(rep)));
    close(children[c].fd);
    EXPECT_EQ(rep.error, 0);
    EXPECT_EQ(rep.torn, 0u);
    EXPECT_EQ(rep.out_of_order, 0u);
    EXPECT_EQ(rep.oversized, 0u);
    EXPECT_EQ(rep.progressed, kRaceSeries);
    EXPECT_GT(rep.latest_reads, 1000u);
    EXPECT_GT(rep.last_reads, 1000u);
    // Bounded retries may come back empty only when a reader stalls for a whole ring's
    // worth of appends on every attempt; that must stay rare.
    EXPECT_LT(rep.empty * 100, rep.latest_reads + rep.last_reads);
    total_reads += rep.latest_reads + rep.last_reads;
    std::printf("reader %zu: %" PRIu64 " Latest, %" PRIu64 " Last (%" PRIu64 " points), %" PRIu64
                " empty\n",
                c, rep.latest_reads, rep.last_reads, rep.points_checked, rep.empty);
  }
  EXPECT_EQ(w->Info().points_written, appended + kRaceSeries);
  std::printf("writer appended %" PRIu64 " points; readers made %" PRIu64 " reads\n", appended,
              total_reads);
}

}  // namespace
}  // namespace augur::telemetry
