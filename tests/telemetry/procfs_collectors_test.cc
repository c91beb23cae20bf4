// Fixture tests for the procfs and PSI parsers: each test writes the kernel text it feeds
// the collector into a temporary tree and checks the exact series that come out.
#include "telemetry/procfs_collectors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <string>

#include "telemetry/procfs_diskstats_collector.h"
#include "telemetry/procfs_meminfo_collector.h"
#include "telemetry/procfs_netdev_collector.h"
#include "telemetry/procfs_schedstat_collector.h"
#include "telemetry/procfs_snmp_collector.h"
#include "telemetry/procfs_stat_collector.h"
#include "telemetry/psi_collector.h"
#include "telemetry/recording_sink.h"
#include "telemetry/temp_tree.h"

namespace augur::telemetry {
namespace {

constexpr int64_t kTs = 1700000000000000000;

double Hz() { return static_cast<double>(::sysconf(_SC_CLK_TCK)); }

// Expects the series `key` to have been emitted with `value`.
void ExpectValue(const RecordingSink& sink, const std::string& key, double value) {
  std::optional<double> got = sink.Get(key);
  ASSERT_TRUE(got.has_value()) << "missing " << key;
  EXPECT_DOUBLE_EQ(*got, value) << key;
}

// ---------------------------------------------------------------- /proc/stat

constexpr std::string_view kStat =
    "cpu  1000 20 300 40000 50 6 7 8 0 0\n"
    "cpu0 600 10 200 20000 25 3 4 5 0 0\n"
    "cpu1 400 10 100 20000 25 3 3 3 0 0\n"
    "intr 12345 0 0 0\n"
    "ctxt 987654\n"
    "btime 1700000000\n"
    "processes 4321\n"
    "procs_running 3\n"
    "procs_blocked 1\n"
    "softirq 1 2 3\n";

TEST(ProcStatCollectorTest, ParsesCpuModesBusyAndCounts) {
  TempTree t;
  t.Write("/proc/stat", kStat);
  ProcStatCollector c(t.root());
  EXPECT_EQ(c.name(), "procfs_stat");
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());

  ExpectValue(sink, R"(cpu_seconds_total{cpu="all",mode="user",source="procfs"})", 1000 / Hz());
  ExpectValue(sink, R"(cpu_seconds_total{cpu="all",mode="idle",source="procfs"})", 40000 / Hz());
  ExpectValue(sink, R"(cpu_seconds_total{cpu="0",mode="steal",source="procfs"})", 5 / Hz());
  ExpectValue(sink, R"(cpu_seconds_total{cpu="1",mode="iowait",source="procfs"})", 25 / Hz());
  // busy = user + nice + system + irq + softirq + steal; idle and iowait are not busy.
  ExpectValue(sink, R"(cpu_busy_seconds_total{cpu="all",source="procfs"})",
              (1000 + 20 + 300 + 6 + 7 + 8) / Hz());
  ExpectValue(sink, R"(cpu_busy_seconds_total{cpu="0",source="procfs"})",
              (600 + 10 + 200 + 3 + 4 + 5) / Hz());
  ExpectValue(sink, R"(context_switches_total{source="procfs"})", 987654);
  ExpectValue(sink, R"(processes_running{source="procfs"})", 3);
  ExpectValue(sink, R"(processes_blocked{source="procfs"})", 1);
  EXPECT_EQ(sink.KeysNamed("cpu_seconds_total").size(), 3u * 8u);
  EXPECT_EQ(sink.KeysNamed("cpu_busy_seconds_total").size(), 3u);
  EXPECT_EQ(c.malformed_lines(), 0u);
  for (const auto& p : sink.points()) {
    EXPECT_EQ(p.ts_ns, kTs);
    EXPECT_EQ(p.key.label("source"), "procfs");
  }
}

TEST(ProcStatCollectorTest, SkipsAndCountsMalformedLines) {
  TempTree t;
  t.Write("/proc/stat",
          "cpu  1000 20 300 40000 50 6 7 8 0 0\n"
          "cpu0 600 10 200\n"                     // truncated
          "cpu1 400 10 1x0 20000 25 3 3 3 0 0\n"  // garbage number
          "cpuX 1 1 1 1 1 1 1 1\n"                // bad cpu id
          "cpu2 -4 10 100 20000 25 3 3 3\n"       // negative counter
          "ctxt many\n"
          "procs_running\n"
          "cpu3 1 2 3 4 5 6 7 8");  // last line without newline: fine
  ProcStatCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.malformed_lines(), 6u);
  EXPECT_TRUE(sink.Has(R"(cpu_busy_seconds_total{cpu="all",source="procfs"})"));
  EXPECT_TRUE(sink.Has(R"(cpu_busy_seconds_total{cpu="3",source="procfs"})"));
  EXPECT_FALSE(sink.Has(R"(cpu_busy_seconds_total{cpu="0",source="procfs"})"));
  EXPECT_FALSE(sink.Has(R"(cpu_busy_seconds_total{cpu="1",source="procfs"})"));
  EXPECT_FALSE(sink.Has(R"(context_switches_total{source="procfs"})"));
}

TEST(ProcStatCollectorTest, MissingFileIsNotFoundNamingIt) {
  TempTree t;
  ProcStatCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find(t.Path("/proc/stat")), std::string::npos) << s.ToString();
  EXPECT_TRUE(sink.points().empty());
}

TEST(ProcStatCollectorTest, NoAggregateLineIsCorruption) {
  TempTree t;
  t.Write("/proc/stat", "cpu 1 2\nctxt 5\n");
  ProcStatCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_EQ(c.malformed_lines(), 1u);
}

// ---------------------------------------------------------------- /proc/meminfo

TEST(MeminfoCollectorTest, ParsesKindsInBytes) {
  TempTree t;
  t.Write("/proc/meminfo",
          "MemTotal:       24684084 kB\n"
          "MemFree:        24498944 kB\n"
          "MemAvailable:   24424312 kB\n"
          "Buffers:             444 kB\n"
          "Cached:            21516 kB\n"
          "SwapCached:            0 kB\n"
          "SwapTotal:       1048572 kB\n"
          "SwapFree:        1048000 kB\n"
          "Dirty:                12 kB\n"
          "AnonPages:        150000 kB\n"
          "Shmem:              2048 kB\n"
          "HugePages_Total:       0\n"
          "Hugepagesize:       2048 kB\n");
  MeminfoCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  ExpectValue(sink, R"(memory_bytes{kind="total",source="procfs"})", 24684084.0 * 1024);
  ExpectValue(sink, R"(memory_bytes{kind="available",source="procfs"})", 24424312.0 * 1024);
  ExpectValue(sink, R"(memory_bytes{kind="buffers",source="procfs"})", 444.0 * 1024);
  ExpectValue(sink, R"(memory_bytes{kind="swap_free",source="procfs"})", 1048000.0 * 1024);
  ExpectValue(sink, R"(memory_bytes{kind="anon",source="procfs"})", 150000.0 * 1024);
  ExpectValue(sink, R"(memory_bytes{kind="shmem",source="procfs"})", 2048.0 * 1024);
  EXPECT_EQ(sink.KeysNamed("memory_bytes").size(), 10u);
  EXPECT_EQ(c.malformed_lines(), 0u);
}

TEST(MeminfoCollectorTest, MalformedAndMissingFields) {
  TempTree t;
  // An old kernel without MemAvailable, plus damage.
  t.Write("/proc/meminfo",
          "MemTotal:       1000 kB\n"
          "MemFree:        abc kB\n"
          "Cached 12 kB\n"
          "Dirty:          5 MB\n"
          "Shmem:\n"
          "Buffers:        7 kB\n");
  MeminfoCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.malformed_lines(), 4u);
  EXPECT_EQ(sink.KeysNamed("memory_bytes"),
            (std::vector<std::string>{R"(memory_bytes{kind="buffers",source="procfs"})",
                                      R"(memory_bytes{kind="total",source="procfs"})"}));
}

TEST(MeminfoCollectorTest, NoTotalIsCorruptionAndMissingIsNotFound) {
  TempTree t;
  MeminfoCollector c(t.root());
  RecordingSink sink;
  Status missing = c.Collect(kTs, sink);
  EXPECT_TRUE(missing.IsNotFound());
  EXPECT_NE(missing.message().find("/proc/meminfo"), std::string::npos);
  t.Write("/proc/meminfo", "MemFree: 5 kB\n");
  EXPECT_TRUE(c.Collect(kTs, sink).IsCorruption());
}

// ---------------------------------------------------------------- /proc/diskstats

// Writes a diskstats with vda counters given, plus devices that must be filtered.
std::string Diskstats(uint64_t reads, uint64_t ms_reading, uint64_t writes, uint64_t ms_writing,
                      uint64_t ms_io) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  return "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
         "   7       1 loop1 5 0 40 1 0 0 0 0 0 1 1 0 0 0 0 0 0\n"
         " 254       0 vda " +
         n(reads) + " 10 2000 " + n(ms_reading) + " " + n(writes) + " 20 4000 " + n(ms_writing) +
         " 0 " + n(ms_io) +
         " 999 0 0 0 0 5 1\n"
         " 254       1 vda1 100 0 800 10 50 0 400 5 0 12 15\n"
         " 253       0 zram0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
         " 259       0 nvme0n1 1 2 3\n";  // truncated
}

TEST(DiskstatsCollectorTest, WholeDisksCountersAndIntervalLatency) {
  TempTree t;
  for (const char* dev : {"loop0", "loop1", "vda", "zram0", "nvme0n1"}) {
    t.MkDir(std::string("/sys/block/") + dev);
  }
  t.Write("/proc/diskstats", Diskstats(1000, 2000, 500, 3000, 4000));
  DiskstatsCollector c(t.root());
  RecordingSink first;
  ASSERT_TRUE(c.Collect(kTs, first).ok());
  EXPECT_EQ(c.malformed_lines(), 1u);  // nvme0n1's truncated line
  ExpectValue(first, R"(disk_ios_total{device="vda",direction="read",source="procfs"})", 1000);
  ExpectValue(first, R"(disk_ios_total{device="vda",direction="write",source="procfs"})", 500);
  ExpectValue(first, R"(disk_io_bytes_total{device="vda",direction="read",source="procfs"})",
              2000.0 * 512);
  ExpectValue(first, R"(disk_io_bytes_total{device="vda",direction="write",source="procfs"})",
              4000.0 * 512);
  ExpectValue(first, R"(disk_io_time_seconds_total{device="vda",source="procfs"})", 4.0);
  // A loop device that has done IO is kept; idle loop/zram and the partition are not.
  EXPECT_TRUE(first.Has(R"(disk_ios_total{device="loop1",direction="read",source="procfs"})"));
  for (const std::string& k : first.KeysNamed("disk_ios_total")) {
    EXPECT_EQ(k.find("loop0"), std::string::npos) << k;
    EXPECT_EQ(k.find("zram0"), std::string::npos) << k;
    EXPECT_EQ(k.find("vda1"), std::string::npos) << k;
  }
  // No previous sample, no interval, no latency.
  EXPECT_TRUE(first.KeysNamed("disk_io_latency_seconds").empty());

  // 100 more IOs that took 250 ms in total: 2.5 ms each.
  t.Write("/proc/diskstats", Diskstats(1060, 2100, 540, 3150, 4100));
  RecordingSink second;
  ASSERT_TRUE(c.Collect(kTs + 1, second).ok());
  ExpectValue(second, R"(disk_io_latency_seconds{device="vda",source="procfs",stat="mean"})",
              0.0025);

  // An interval without IO has no mean latency (not a zero).
  RecordingSink idle;
  ASSERT_TRUE(c.Collect(kTs + 2, idle).ok());
  EXPECT_TRUE(idle.Has(R"(disk_ios_total{device="vda",direction="read",source="procfs"})"));
  EXPECT_TRUE(idle.KeysNamed("disk_io_latency_seconds").empty());

  // Counters that went backwards (device re-attached): no bogus delta.
  t.Write("/proc/diskstats", Diskstats(10, 20, 5, 30, 40));
  RecordingSink reset;
  ASSERT_TRUE(c.Collect(kTs + 3, reset).ok());
  EXPECT_TRUE(reset.KeysNamed("disk_io_latency_seconds").empty());
}

TEST(DiskstatsCollectorTest, MissingFileIsNotFound) {
  TempTree t;
  DiskstatsCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_NE(s.message().find("/proc/diskstats"), std::string::npos);
}

// ---------------------------------------------------------------- /proc/net/dev

TEST(NetDevCollectorTest, ParsesInterfacesBothDirections) {
  TempTree t;
  t.Write("/proc/net/dev",
          "Inter-|   Receive                                                |  Transmit\n"
          " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
          "errs drop fifo colls carrier compressed\n"
          "    lo:    3267      29    0    0    0     0          0         0     3267      29"
          "    0    0    0     0       0          0\n"
          "  eth0:1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n"  // old style, no space
          "  bad0: 1 2 3\n"
          "junk line\n"
          "  eth1: 1 2 3 4 5 6 7 8 9 10 11 x 13 14 15 16\n");
  NetDevCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.malformed_lines(), 3u);
  ExpectValue(sink, R"(network_bytes_total{direction="received",interface="lo",source="procfs"})",
              3267);
  ExpectValue(sink, R"(network_bytes_total{direction="received",interface="eth0",source="procfs"})",
              1000);
  ExpectValue(sink,
              R"(network_bytes_total{direction="transmitted",interface="eth0",source="procfs"})",
              2000);
  ExpectValue(sink,
              R"(network_packets_total{direction="transmitted",interface="eth0",source="procfs"})",
              20);
  ExpectValue(sink,
              R"(network_errors_total{direction="received",interface="eth0",source="procfs"})", 1);
  ExpectValue(
      sink, R"(network_drops_total{direction="transmitted",interface="eth0",source="procfs"})", 4);
  EXPECT_EQ(sink.KeysNamed("network_bytes_total").size(), 4u);  // lo and eth0, two ways
}

// ---------------------------------------------------------------- /proc/net/snmp

constexpr std::string_view kSnmp =
    "Ip: Forwarding DefaultTTL InReceives\n"
    "Ip: 1 64 1234\n"
    "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
    "EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
    "Tcp: 1 200 120000 -1 13 2 0 0 4 758 419 7 0 2 0\n"
    "Udp: InDatagrams NoPorts\n"
    "Udp: 5 6\n";

TEST(SnmpCollectorTest, ParsesTcpCounters) {
  TempTree t;
  t.Write("/proc/net/snmp", kSnmp);
  SnmpCollector c(t.root());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  ExpectValue(sink, R"(tcp_segments_total{direction="received",source="procfs"})", 758);
  ExpectValue(sink, R"(tcp_segments_total{direction="sent",source="procfs"})", 419);
  ExpectValue(sink, R"(tcp_retransmits_total{source="procfs"})", 7);
  ExpectValue(sink, R"(tcp_connections_active{source="procfs"})", 4);
  EXPECT_EQ(sink.last().size(), 4u);
  EXPECT_EQ(c.malformed_lines(), 0u);
}

TEST(SnmpCollectorTest, MismatchedOrGarbageValues) {
  TempTree t;
  t.Write("/proc/net/snmp",
          "Tcp: RtoAlgorithm InSegs OutSegs\n"
          "Tcp: 1 2\n");
  SnmpCollector c(t.root());
  RecordingSink sink;
  EXPECT_TRUE(c.Collect(kTs, sink).IsCorruption());
  EXPECT_EQ(c.malformed_lines(), 1u);

  t.Write("/proc/net/snmp",
          "Tcp: InSegs OutSegs RetransSegs\n"
          "Tcp: 10 x 3\n");
  SnmpCollector c2(t.root());
  RecordingSink sink2;
  ASSERT_TRUE(c2.Collect(kTs, sink2).ok());
  EXPECT_EQ(c2.malformed_lines(), 1u);
  ExpectValue(sink2, R"(tcp_segments_total{direction="received",source="procfs"})", 10);
  EXPECT_FALSE(sink2.Has(R"(tcp_segments_total{direction="sent",source="procfs"})"));
  ExpectValue(sink2, R"(tcp_retransmits_total{source="procfs"})", 3);
}

// ---------------------------------------------------------------- /proc/schedstat

std::string Schedstat(int version, uint64_t delay0, uint64_t slices0, uint64_t delay1,
                      uint64_t slices1) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  return "version " + std::to_string(version) +
         "\n"
         "timestamp 4295123456\n"
         "cpu0 0 0 100 50 60 30 9000000 " +
         n(delay0) + " " + n(slices0) +
         "\n"
         "domain0 3 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
         "cpu1 0 0 100 50 60 30 9000000 " +
         n(delay1) + " " + n(slices1) +
         "\n"
         "cpu2 1 2 3\n";  // truncated
}

TEST(SchedstatCollectorTest, KernelSchedstatPerCpuAndIntervalMean) {
  TempTree t;
  t.Write("/proc/schedstat", Schedstat(15, 1000000000, 1000, 500000000, 500));
  t.Write("/proc/1/task/1/schedstat", "1 999 1\n");  // must be ignored in kernel mode
  SchedstatCollector c(t.root());
  RecordingSink first;
  ASSERT_TRUE(c.Collect(kTs, first).ok());
  EXPECT_EQ(c.mode(), SchedstatCollector::Mode::kKernel);
  EXPECT_EQ(c.malformed_lines(), 1u);
  ExpectValue(first, R"(runqueue_wait_seconds_total{cpu="0",source="procfs"})", 1.0);
  ExpectValue(first, R"(runqueue_wait_seconds_total{cpu="1",source="procfs"})", 0.5);
  ExpectValue(first, R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})", 1.5);
  EXPECT_FALSE(first.Has(R"(runqueue_latency_seconds{source="procfs",stat="mean"})"));

  // +30 ms of waiting over +300 timeslices: 100 us mean.
  t.Write("/proc/schedstat", Schedstat(17, 1020000000, 1200, 510000000, 600));
  RecordingSink second;
  ASSERT_TRUE(c.Collect(kTs + 1, second).ok());
  ExpectValue(second, R"(runqueue_latency_seconds{source="procfs",stat="mean"})", 0.0001);

  RecordingSink idle;  // nothing scheduled: no mean rather than a made-up zero
  ASSERT_TRUE(c.Collect(kTs + 2, idle).ok());
  EXPECT_FALSE(idle.Has(R"(runqueue_latency_seconds{source="procfs",stat="mean"})"));
}

TEST(SchedstatCollectorTest, OldVersionIsUnavailableOnce) {
  TempTree t;
  t.Write("/proc/schedstat", Schedstat(14, 1, 1, 1, 1));
  SchedstatCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("version 14"), std::string::npos);
  EXPECT_TRUE(c.Collect(kTs + 1, sink).ok());
  EXPECT_TRUE(sink.points().empty());
}

TEST(SchedstatCollectorTest, PerTaskFallbackAccumulatesDeltas) {
  TempTree t;
  // No /proc/schedstat (kernel without CONFIG_SCHEDSTATS): per-task files instead.
  t.Write("/proc/1/task/1/schedstat", "5000 1000000 10\n");
  t.Write("/proc/1/task/2/schedstat", "5000 2000000 20\n");
  t.Write("/proc/7/task/7/schedstat", "5000 3000000 30\n");
  t.Write("/proc/8/task/8/schedstat", "garbage\n");
  t.MkDir("/proc/sys");  // non-numeric entries are not processes
  SchedstatCollector c(t.root());
  RecordingSink first;
  ASSERT_TRUE(c.Collect(kTs, first).ok());
  EXPECT_EQ(c.mode(), SchedstatCollector::Mode::kPerTask);
  EXPECT_EQ(c.malformed_lines(), 1u);
  ExpectValue(first, R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})", 0.006);
  EXPECT_TRUE(first.KeysNamed("runqueue_latency_seconds").empty());

  // Task 2 exited; task 1 waited 4 ms more over 10 runs; task 9 is new with 2 ms over 10.
  t.Remove("/proc/1/task/2");
  t.Write("/proc/1/task/1/schedstat", "9000 5000000 20\n");
  t.Write("/proc/9/task/9/schedstat", "100 2000000 10\n");
  RecordingSink second;
  ASSERT_TRUE(c.Collect(kTs + 1, second).ok());
  ExpectValue(second, R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})", 0.012);
  ExpectValue(second, R"(runqueue_latency_seconds{source="procfs",stat="mean"})", 0.006 / 20);

  // TID 9 was reused by a task whose counters restarted below the old ones.
  t.Write("/proc/9/task/9/schedstat", "10 1000000 1\n");
  RecordingSink third;
  ASSERT_TRUE(c.Collect(kTs + 2, third).ok());
  ExpectValue(third, R"(runqueue_wait_seconds_total{cpu="all",source="procfs"})", 0.013);
}

TEST(SchedstatCollectorTest, NeitherSourceIsUnavailableOnce) {
  TempTree t;
  t.MkDir("/proc");
  SchedstatCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("schedstat"), std::string::npos);
  EXPECT_TRUE(c.Collect(kTs + 1, sink).ok());
  EXPECT_TRUE(sink.points().empty());
}

// ---------------------------------------------------------------- /proc/pressure

TEST(PsiCollectorTest, ParsesStallTotalsAndRatios) {
  TempTree t;
  // cpu from a pre-5.13 kernel: no "full" line.
  t.Write("/proc/pressure/cpu", "some avg10=1.50 avg60=0.16 avg300=0.17 total=4205792\n");
  t.Write("/proc/pressure/memory",
          "some avg10=0.00 avg60=0.11 avg300=0.38 total=4275735\n"
          "full avg10=0.00 avg60=0.09 avg300=0.36 total=4112886\n");
  t.Write("/proc/pressure/io",
          "some avg10=12.25 avg60=3.00 avg300=1.00 total=100\n"
          "full avg10=zz avg60=3.00 avg300=1.00 total=50\n"
          "partial avg10=1\n");
  PsiCollector c(t.root());
  ASSERT_TRUE(c.available().ok());
  RecordingSink sink;
  ASSERT_TRUE(c.Collect(kTs, sink).ok());
  EXPECT_EQ(c.malformed_lines(), 2u);
  ExpectValue(sink, R"(pressure_stall_seconds_total{kind="some",resource="cpu",source="procfs"})",
              4.205792);
  ExpectValue(sink,
              R"(pressure_stall_seconds_total{kind="full",resource="memory",source="procfs"})",
              4.112886);
  ExpectValue(sink, R"(pressure_ratio{kind="some",resource="cpu",source="procfs",window="10s"})",
              0.015);
  ExpectValue(sink,
              R"(pressure_ratio{kind="full",resource="memory",source="procfs",window="300s"})",
              0.0036);
  ExpectValue(sink, R"(pressure_ratio{kind="some",resource="io",source="procfs",window="10s"})",
              0.1225);
  EXPECT_FALSE(
      sink.Has(R"(pressure_stall_seconds_total{kind="full",resource="cpu",source="procfs"})"));
  EXPECT_FALSE(
      sink.Has(R"(pressure_stall_seconds_total{kind="full",resource="io",source="procfs"})"));
  EXPECT_EQ(sink.KeysNamed("pressure_stall_seconds_total").size(), 4u);
  EXPECT_EQ(sink.KeysNamed("pressure_ratio").size(), 12u);
}

TEST(PsiCollectorTest, AbsentPsiIsUnavailableOnceWithReason) {
  TempTree t;
  t.MkDir("/proc");
  PsiCollector c(t.root());
  EXPECT_TRUE(c.available().IsUnavailable());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_NE(s.message().find("/proc/pressure"), std::string::npos) << s.ToString();
  EXPECT_TRUE(c.Collect(kTs + 1, sink).ok());
  EXPECT_TRUE(c.Collect(kTs + 2, sink).ok());
  EXPECT_TRUE(sink.points().empty());
}

TEST(PsiCollectorTest, MissingResourceFileIsNamedAndOthersStillRead) {
  TempTree t;
  t.Write("/proc/pressure/cpu", "some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
  t.Write("/proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=8\n");
  PsiCollector c(t.root());
  RecordingSink sink;
  Status s = c.Collect(kTs, sink);
  EXPECT_TRUE(s.IsNotFound()) << s.ToString();
  EXPECT_NE(s.message().find("/proc/pressure/io"), std::string::npos) << s.ToString();
  EXPECT_TRUE(
      sink.Has(R"(pressure_stall_seconds_total{kind="some",resource="memory",source="procfs"})"));
}

// ---------------------------------------------------------------- factory

TEST(MakeProcfsCollectorsTest, OneCollectorPerSourceWithStableNames) {
  ProcfsOptions opts;
  std::vector<std::unique_ptr<Collector>> cs = MakeProcfsCollectors(opts);
  std::vector<std::string> names;
  for (const auto& c : cs) names.emplace_back(c->name());
  EXPECT_EQ(names, (std::vector<std::string>{"procfs_stat", "procfs_meminfo", "procfs_diskstats",
                                             "procfs_netdev", "procfs_snmp", "procfs_schedstat",
                                             "procfs_psi", "procfs_cgroup"}));
}

TEST(MakeProcfsCollectorsTest, EmptyRootPrefixTreeFailsCleanly) {
  // Every collector pointed at an empty tree: each returns a Status, none crashes, and
  // those that read one file name it.
  TempTree t;
  ProcfsOptions opts;
  opts.root_prefix = t.root();
  RecordingSink sink;
  for (auto& c : MakeProcfsCollectors(opts)) {
    Status s = c->Collect(kTs, sink);
    EXPECT_FALSE(s.ok()) << c->name();
    EXPECT_NE(s.message().find(t.root()), std::string::npos) << c->name() << ": " << s.ToString();
  }
  EXPECT_TRUE(sink.points().empty());
}

}  // namespace
}  // namespace augur::telemetry
