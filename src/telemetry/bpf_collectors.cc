#include "telemetry/bpf_collectors.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "telemetry/kernel_btf.h"

namespace augur::telemetry {
namespace {

// Not every libc header set knows the 5.8 capabilities yet.
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct Capabilities {
  __u32 effective[2] = {0, 0};
  bool Has(int cap) const { return (effective[cap / 32] >> (cap % 32)) & 1u; }
};

Result<Capabilities> EffectiveCapabilities() {
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return Err(Status::FromErrno("capget", errno));
  Capabilities caps;
  caps.effective[0] = data[0].effective;
  caps.effective[1] = data[1].effective;
  return caps;
}

Status CheckReadable(const std::string& path, std::string_view why) {
  if (::access(path.c_str(), R_OK) == 0) return Status::OK();
  const int err = errno;
  if (err == ENOENT) return Status::Unavailable("no BTF at " + path + " " + std::string(why));
  return Status::Unavailable("cannot read BTF at " + path + ": " + std::strerror(err));
}

}  // namespace

Status CheckBpfPrerequisites(const BpfOptions& options) {
  const std::string vmlinux(KernelBtf::kVmlinuxPath);
  AUGUR_RETURN_IF_ERROR(CheckReadable(
      vmlinux, "(kernel built without CONFIG_DEBUG_INFO_BTF; tp_btf and fentry need it)"));
  if (!options.btf_path.empty()) {
    AUGUR_RETURN_IF_ERROR(CheckReadable(options.btf_path, "(configured btf_path)"));
  }
  Result<Capabilities> caps = EffectiveCapabilities();
  if (!caps) return caps.error();
  // Since 5.8 CAP_BPF loads programs and CAP_PERFMON allows tracing ones; before, and
  // always, CAP_SYS_ADMIN covers both.
  if (!caps->Has(CAP_SYS_ADMIN) && !(caps->Has(CAP_BPF) && caps->Has(CAP_PERFMON))) {
    return Status::Unavailable(
        "missing CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load tracing programs");
  }
  return Status::OK();
}

}  // namespace augur::telemetry
