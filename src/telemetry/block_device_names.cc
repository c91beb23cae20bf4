#include "telemetry/block_device_names.h"

#include <string_view>
#include <vector>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {

std::string BlockDeviceNames::Name(uint32_t major, uint32_t minor) {
  auto it = cache_.find({major, minor});
  if (it != cache_.end()) return it->second;
  std::string name = Lookup(major, minor);
  if (!name.empty()) {
    cache_.emplace(std::pair{major, minor}, name);
    return name;
  }
  return std::to_string(major) + ":" + std::to_string(minor);
}

std::string BlockDeviceNames::Lookup(uint32_t major, uint32_t minor) const {
  const std::string number = std::to_string(major) + ":" + std::to_string(minor);
  if (auto uevent = ReadWholeFile(root_ + "/sys/dev/block/" + number + "/uevent")) {
    constexpr std::string_view kKey = "DEVNAME=";
    for (std::string_view line : SplitLines(*uevent)) {
      if (line.starts_with(kKey) && line.size() > kKey.size()) {
        return std::string(line.substr(kKey.size()));
      }
    }
  }
  // /proc/diskstats: "major minor name reads ...".
  if (auto stats = ReadWholeFile(root_ + "/proc/diskstats")) {
    for (std::string_view line : SplitLines(*stats)) {
      std::vector<std::string_view> f = SplitFields(line);
      if (f.size() >= 3 && ParseU64(f[0]) == major && ParseU64(f[1]) == minor) {
        return std::string(f[2]);
      }
    }
  }
  return "";
}

}  // namespace augur::telemetry
