#include "telemetry/block_device_names.h"

#include <gtest/gtest.h>

#include "telemetry/temp_tree.h"

namespace augur::telemetry {
namespace {

TEST(BlockDeviceNamesTest, ReadsDevnameFromUevent) {
  TempTree tree;
  tree.Write("/sys/dev/block/259:0/uevent", "MAJOR=259\nMINOR=0\nDEVNAME=nvme0n1\nDEVTYPE=disk\n");
  BlockDeviceNames names(tree.root());
  EXPECT_EQ(names.Name(259, 0), "nvme0n1");
}

TEST(BlockDeviceNamesTest, FallsBackToDiskstatsThenToTheNumber) {
  TempTree tree;
  tree.Write("/proc/diskstats",
             " 254       0 vda 29659 9252 2329506 9077 18970 7800 818816 10177 0 6416 19541\n"
             "   8      16 sdb 1 0 8 0 0 0 0 0 0 0 0\n");
  BlockDeviceNames names(tree.root());
  EXPECT_EQ(names.Name(8, 16), "sdb");
  EXPECT_EQ(names.Name(8, 17), "8:17");
}

TEST(BlockDeviceNamesTest, CachesFoundNamesAndRetriesMisses) {
  TempTree tree;
  BlockDeviceNames names(tree.root());
  EXPECT_EQ(names.Name(254, 0), "254:0");
  // The device appears later (hot plug): found on the next lookup...
  tree.Write("/sys/dev/block/254:0/uevent", "DEVNAME=vda\n");
  EXPECT_EQ(names.Name(254, 0), "vda");
  // ...and then kept, even if sysfs goes away.
  tree.Remove("/sys");
  EXPECT_EQ(names.Name(254, 0), "vda");
}

}  // namespace
}  // namespace augur::telemetry
