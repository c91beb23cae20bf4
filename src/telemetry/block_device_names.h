// BlockDeviceNames: the kernel name ("vda", "nvme0n1") of a block device number, for the
// `device` label of the eBPF block I/O series.
//
// The name is DEVNAME= in /sys/dev/block/MAJ:MIN/uevent, else the name column of
// /proc/diskstats, else "MAJ:MIN". Found names are cached for the object's life (a device
// number is not reused while the device exists); a miss is retried on the next lookup,
// since a hot-plugged disk can do I/O before its sysfs entry is readable.
//
// Thread safety: none; one collector owns one instance.
#ifndef AUGUR_TELEMETRY_BLOCK_DEVICE_NAMES_H_
#define AUGUR_TELEMETRY_BLOCK_DEVICE_NAMES_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace augur::telemetry {

class BlockDeviceNames {
 public:
  // `root_prefix` is prepended to /sys/... and /proc/diskstats (tests point it at a fixture
  // tree).
  explicit BlockDeviceNames(std::string root_prefix = "") : root_(std::move(root_prefix)) {}

  // Name of device major:minor; never empty.
  std::string Name(uint32_t major, uint32_t minor);

 private:
  std::string Lookup(uint32_t major, uint32_t minor) const;

  std::string root_;
  std::map<std::pair<uint32_t, uint32_t>, std::string> cache_;
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BLOCK_DEVICE_NAMES_H_
