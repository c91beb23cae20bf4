// KernelBtf: facts about the running kernel read from its BTF, which the eBPF loaders need
// before they load anything (and which CO-RE relocations cannot give them, because they
// choose between programs or set tunables):
//   - the value of an enumerator, e.g. cpu_cgrp_id in enum cgroup_subsys_id, the index of
//     the cpu controller in css_set::subsys, which depends on the kernel's config;
//   - how many arguments a BTF tracepoint takes, which changed for block_rq_issue in v5.11.
//
// Thread safety: const methods may be called from any thread.
#ifndef AUGUR_TELEMETRY_KERNEL_BTF_H_
#define AUGUR_TELEMETRY_KERNEL_BTF_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "augur/status.h"

struct btf;

namespace augur::telemetry {

class KernelBtf {
 public:
  // The default path of the running kernel's BTF.
  static constexpr std::string_view kVmlinuxPath = "/sys/kernel/btf/vmlinux";

  // Parses `path` (kVmlinuxPath when empty). Unavailable, naming the path, when it cannot.
  static Result<KernelBtf> Load(const std::string& path);

  // Value of `enumerator` in `enum enum_name`; nullopt when either is missing.
  std::optional<int64_t> EnumValue(std::string_view enum_name, std::string_view enumerator) const;

  // Number of arguments the BTF tracepoint `name` passes to programs (from the prototype of
  // its btf_trace_<name> typedef, minus the hidden `void *__data`); nullopt when the kernel
  // has no such tracepoint.
  std::optional<int> TracepointArgCount(std::string_view name) const;

 private:
  explicit KernelBtf(struct btf* btf);
  std::shared_ptr<struct btf> btf_;  // shared: KernelBtf is copyable and the BTF immutable
};

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_KERNEL_BTF_H_
