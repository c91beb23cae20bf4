#include "telemetry/kernel_btf.h"

#include <bpf/btf.h>

#include <cerrno>
#include <cstring>

namespace augur::telemetry {

KernelBtf::KernelBtf(struct btf* btf) : btf_(btf, &btf__free) {}

Result<KernelBtf> KernelBtf::Load(const std::string& path) {
  const std::string file = path.empty() ? std::string(kVmlinuxPath) : path;
  errno = 0;
  struct btf* btf = btf__parse(file.c_str(), nullptr);
  if (btf == nullptr) {
    // libbpf 1.x returns NULL and sets errno.
    const int err = errno != 0 ? errno : EINVAL;
    if (err == ENOENT) {
      return Err(Status::Unavailable("no BTF at " + file +
                                     " (kernel built without CONFIG_DEBUG_INFO_BTF?)"));
    }
    return Err(Status::Unavailable("cannot parse BTF at " + file + ": " + std::strerror(err)));
  }
  return KernelBtf(btf);
}

std::optional<int64_t> KernelBtf::EnumValue(std::string_view enum_name,
                                            std::string_view enumerator) const {
  const std::string name(enum_name);
  const int id = btf__find_by_name_kind(btf_.get(), name.c_str(), BTF_KIND_ENUM);
  if (id < 0) return std::nullopt;
  const struct btf_type* t = btf__type_by_id(btf_.get(), id);
  const struct btf_enum* e = btf_enum(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++e) {
    const char* n = btf__name_by_offset(btf_.get(), e->name_off);
    if (n != nullptr && enumerator == n) return e->val;
  }
  return std::nullopt;
}

std::optional<int> KernelBtf::TracepointArgCount(std::string_view name) const {
  const std::string typedef_name = "btf_trace_" + std::string(name);
  const int id = btf__find_by_name_kind(btf_.get(), typedef_name.c_str(), BTF_KIND_TYPEDEF);
  if (id < 0) return std::nullopt;
  // typedef btf_trace_<name> -> pointer -> func_proto(void *__data, args...)
  const struct btf_type* t = btf__type_by_id(btf_.get(), id);
  t = btf__type_by_id(btf_.get(), t->type);
  if (t == nullptr || !btf_is_ptr(t)) return std::nullopt;
  t = btf__type_by_id(btf_.get(), t->type);
  if (t == nullptr || !btf_is_func_proto(t) || btf_vlen(t) < 1) return std::nullopt;
  return btf_vlen(t) - 1;
}

}  // namespace augur::telemetry
