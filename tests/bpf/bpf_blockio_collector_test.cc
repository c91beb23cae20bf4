// Loads the real bpf_blockio programs and checks that direct (page-cache-bypassing) I/O to
// a file on a real disk shows up on that disk. Privileged: skips, printing why, where eBPF
// cannot load or no directory on a block device is writable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bpf_test_util.h"
#include "telemetry/block_device_names.h"
#include "telemetry/bpf_collectors.h"
#include "telemetry/recording_sink.h"

namespace augur::telemetry {
namespace {

using testing::Key;
using testing::ValueOr0;

constexpr size_t kFileBytes = 16u << 20;
constexpr size_t kChunk = 1u << 20;

struct DiskDir {
  std::string dir;
  std::string disk;  // whole-disk name, as the collector labels it
};

// The whole disk holding block device `dev`: the device itself, or the parent of a
// partition (/sys/dev/block/MAJ:MIN resolves into the parent disk's sysfs directory).
std::optional<std::string> WholeDiskOf(dev_t dev) {
  namespace fs = std::filesystem;
  const std::string sys =
      "/sys/dev/block/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  std::error_code ec;
  fs::path real = fs::canonical(sys, ec);
  if (ec) return std::nullopt;
  if (fs::exists(real / "partition")) real = real.parent_path();
  std::string dev_file;
  if (FILE* f = std::fopen((real / "dev").c_str(), "r")) {
    unsigned maj = 0, min = 0;
    const int n = std::fscanf(f, "%u:%u", &maj, &min);
    std::fclose(f);
    if (n == 2) return BlockDeviceNames().Name(maj, min);
  }
  return std::nullopt;
}

// A writable directory on a filesystem backed by a block device (not tmpfs or overlay).
std::optional<DiskDir> FindDiskDir(std::string* why) {
  std::vector<std::string> candidates;
  if (const char* t = std::getenv("TMPDIR")) candidates.push_back(t);
  candidates.insert(candidates.end(), {"/var/tmp", "/tmp", AUGUR_BUILD_DIR});
  for (const std::string& dir : candidates) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0 || ::access(dir.c_str(), W_OK) != 0) continue;
    if (major(st.st_dev) == 0) {
      *why += dir + " is on a device-less filesystem (tmpfs/overlay); ";
      continue;
    }
    if (std::optional<std::string> disk = WholeDiskOf(st.st_dev)) return DiskDir{dir, *disk};
    *why += dir + ": no /sys/dev/block entry for its device; ";
  }
  return std::nullopt;
}

class AlignedBuffer {
 public:
  explicit AlignedBuffer(size_t size) {
    if (::posix_memalign(&p_, 4096, size) != 0) p_ = nullptr;
    if (p_ != nullptr) std::memset(p_, 0xa5, size);
  }
  ~AlignedBuffer() { std::free(p_); }
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

TEST(BpfBlockIoCollectorTest, DirectIoShowsUpOnTheDisk) {
  BpfOptions options;
  AUGUR_SKIP_UNLESS_BPF_CAPABLE(options);
  std::string why;
  const std::optional<DiskDir> target = FindDiskDir(&why);
  if (!target) GTEST_SKIP() << "no writable directory on a real block device: " << why;

  Result<std::unique_ptr<Collector>> c = MakeBpfBlockIoCollector(options);
  ASSERT_TRUE(c.has_value()) << c.error().ToString();
  Collector& collector = **c;

  std::string path = target->dir + "/augur-bpf-blockio-XXXXXX";
  const int tmp = ::mkstemp(path.data());
  ASSERT_GE(tmp, 0) << path << ": " << std::strerror(errno);
  ::close(tmp);
  const int fd = ::open(path.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0 && errno == EINVAL) {
    ::unlink(path.c_str());
    GTEST_SKIP() << target->dir << " does not support O_DIRECT";
  }
  ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
  AlignedBuffer buf(kChunk);
  ASSERT_NE(buf.get(), nullptr);

  const std::vector<Label> write_labels = {
      {"device", target->disk}, {"direction", "write"}, {"source", "bpf"}};
  const std::vector<Label> read_labels = {
      {"device", target->disk}, {"direction", "read"}, {"source", "bpf"}};

  RecordingSink before;
  ASSERT_TRUE(collector.Collect(testing::RealtimeNs(), before).ok());
  for (size_t done = 0; done < kFileBytes; done += kChunk) {
    ASSERT_EQ(::write(fd, buf.get(), kChunk), static_cast<ssize_t>(kChunk)) << std::strerror(errno);
  }
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  for (size_t done = 0; done < kFileBytes; done += kChunk) {
    ASSERT_EQ(::read(fd, buf.get(), kChunk), static_cast<ssize_t>(kChunk)) << std::strerror(errno);
  }
  ::close(fd);
  ::unlink(path.c_str());
  RecordingSink after;
  ASSERT_TRUE(collector.Collect(testing::RealtimeNs(), after).ok());

  const auto delta = [&](const char* name, const std::vector<Label>& labels) {
    return ValueOr0(after, Key(name, labels)) - ValueOr0(before, Key(name, labels));
  };
  const double written = delta("disk_io_bytes_total", write_labels);
  const double read = delta("disk_io_bytes_total", read_labels);
  std::printf("%s (%s): wrote %.1f MiB in %.0f requests, read %.1f MiB in %.0f requests\n",
              target->disk.c_str(), target->dir.c_str(), written / (1 << 20),
              delta("disk_ios_total", write_labels), read / (1 << 20),
              delta("disk_ios_total", read_labels));
  EXPECT_GE(written, static_cast<double>(kFileBytes));
  EXPECT_GE(read, static_cast<double>(kFileBytes));
  EXPECT_GE(delta("disk_ios_total", write_labels), 1);
  EXPECT_GE(delta("disk_ios_total", read_labels), 1);

  const std::optional<double> mean = after.Get(Key(
      "disk_io_latency_seconds", {{"device", target->disk}, {"stat", "mean"}, {"source", "bpf"}}));
  const std::optional<double> p99 = after.Get(Key(
      "disk_io_latency_seconds", {{"device", target->disk}, {"stat", "p99"}, {"source", "bpf"}}));
  ASSERT_TRUE(mean && p99);
  std::printf("latency over the interval: mean %.1f us, p99 %.1f us\n", *mean * 1e6, *p99 * 1e6);
  EXPECT_GT(*mean, 0);
  EXPECT_LT(*mean, 10.0);  // seconds: anything slower means a broken start/end pairing

  for (const char* program : {"block_rq_issue", "block_rq_complete"}) {
    EXPECT_GT(ValueOr0(after, Key("augur_bpf_program_runs_total",
                                  {{"program", program}, {"source", "bpf"}})),
              0)
        << program;
  }
}

}  // namespace
}  // namespace augur::telemetry
