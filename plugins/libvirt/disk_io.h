// The storage I/O of a libvirt domain, as the hypervisor sees it: the block devices of the
// domain's live definition (the <target dev=...> of each <disk>) and the bytes each has
// read and written since the domain started (virDomainBlockStats). The libvirt backend
// reports a task's bytes_read / bytes_written as the growth of these sums between run() and
// the poll that sees it end.
//
// Header-only and dependent on libvirt alone, so that tests/backends checks it against
// libvirt's test driver directly (the plugin cannot run a task there: no guest agent).
//
// Errors: none thrown. A disk whose statistics the driver does not give (an error, or -1 in
// a field) counts 0; a domain without disks is {0, 0}. Thread safety: as safe as the
// virDomainPtr's connection (the plugin calls it under its connection mutex).
#ifndef AUGUR_PLUGINS_LIBVIRT_DISK_IO_H_
#define AUGUR_PLUGINS_LIBVIRT_DISK_IO_H_

#include <libvirt/libvirt.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace augur_libvirt {

// The target device names ("vda", "sdb") of the <disk> elements of a domain XML, in order.
// A plain scan rather than an XML parser: libvirt writes this XML itself, one attribute
// syntax, and the plugin links nothing but libvirt.
inline std::vector<std::string> DiskTargets(const std::string& xml) {
  std::vector<std::string> out;
  for (size_t pos = 0; (pos = xml.find("<disk", pos)) != std::string::npos;) {
    const size_t end = xml.find("</disk>", pos);
    if (end == std::string::npos) break;
    const size_t target = xml.find("<target", pos);
    if (target != std::string::npos && target < end) {
      const size_t dev = xml.find("dev=", target);
      if (dev != std::string::npos && dev + 5 < end) {
        const char quote = xml[dev + 4];
        const size_t close = xml.find(quote, dev + 5);
        if ((quote == '\'' || quote == '"') && close != std::string::npos && close < end) {
          out.push_back(xml.substr(dev + 5, close - dev - 5));
        }
      }
    }
    pos = end + 7;
  }
  return out;
}

struct DiskBytes {
  uint64_t read = 0;
  uint64_t written = 0;
  size_t disks = 0;  // how many disks answered
};

// Bytes read and written by all of the domain's disks since it started.
inline DiskBytes DomainDiskBytes(virDomainPtr d) {
  DiskBytes sum;
  char* xml = virDomainGetXMLDesc(d, 0);
  if (xml == nullptr) {
    virResetLastError();
    return sum;
  }
  const std::vector<std::string> targets = DiskTargets(xml);
  std::free(xml);
  for (const std::string& dev : targets) {
    virDomainBlockStatsStruct st{};
    if (virDomainBlockStats(d, dev.c_str(), &st, sizeof st) < 0) {
      virResetLastError();
      continue;
    }
    if (st.rd_bytes > 0) sum.read += static_cast<uint64_t>(st.rd_bytes);
    if (st.wr_bytes > 0) sum.written += static_cast<uint64_t>(st.wr_bytes);
    ++sum.disks;
  }
  return sum;
}

}  // namespace augur_libvirt

#endif  // AUGUR_PLUGINS_LIBVIRT_DISK_IO_H_
