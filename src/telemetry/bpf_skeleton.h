// Loading a libbpf skeleton (bpftool gen skeleton) into an owned, attached object, or a
// Status that says exactly why not.
//
// OpenLoadAttach() runs open -> configure (set `const volatile` tunables, map sizes,
// autoload) -> load -> attach and owns the skeleton through SkeletonPtr from the first
// step, so every exit path destroys it (BCC's `goto cleanup` style has exited 0 on error;
// see STYLE.md section 7). Failures become Status::Unavailable carrying the step, libbpf's
// error string, what libbpf itself printed, and the tail of the kernel verifier log.
//
// Thread safety: see bpf_collectors.h (libbpf's print callback is process-wide).
#ifndef AUGUR_TELEMETRY_BPF_SKELETON_H_
#define AUGUR_TELEMETRY_BPF_SKELETON_H_

#include <bpf/libbpf.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "augur/status.h"
#include "telemetry/bpf_collectors.h"

namespace augur::telemetry {

template <typename Skel>
using SkeletonPtr = std::unique_ptr<Skel, void (*)(Skel*)>;

// The four functions bpftool generates for skeleton `Skel`.
template <typename Skel>
struct SkeletonOps {
  Skel* (*open)(const struct bpf_object_open_opts*);
  int (*load)(Skel*);
  int (*attach)(Skel*);
  void (*destroy)(Skel*);
};

// Captures libbpf's warnings and the kernel's verification log while a skeleton is opened
// and loaded, and turns a failure into a Status. Installs a capturing libbpf print callback
// for its lifetime and restores the previous one after.
class BpfLoadLog {
 public:
  BpfLoadLog();
  ~BpfLoadLog();
  BpfLoadLog(const BpfLoadLog&) = delete;
  BpfLoadLog& operator=(const BpfLoadLog&) = delete;

  // Points `opts` at the kernel log buffer (libbpf fills it only when a load fails).
  void Attach(struct bpf_object_open_opts& opts);

  // Unavailable("<what>: <step> failed: <libbpf error>; libbpf: ...; verifier: ...").
  // `err` is a negative errno or libbpf error code.
  Status Failure(std::string_view what, std::string_view step, int err) const;

 private:
  std::string kernel_log_;                      // the kernel's verification log, on failure
  std::string libbpf_messages_;                 // what libbpf printed (warnings and info)
  libbpf_print_fn_t previous_print_ = nullptr;  // restored on destruction
};

// Opens, configures, loads and attaches. `configure` runs between open and load.
template <typename Skel>
Result<SkeletonPtr<Skel>> OpenLoadAttach(std::string_view what, const BpfOptions& options,
                                         const SkeletonOps<Skel>& ops,
                                         const std::function<Status(Skel&)>& configure) {
  BpfLoadLog log;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts);
  if (!options.btf_path.empty()) open_opts.btf_custom_path = options.btf_path.c_str();
  log.Attach(open_opts);

  errno = 0;
  SkeletonPtr<Skel> skel(ops.open(&open_opts), ops.destroy);
  if (!skel) return Err(log.Failure(what, "open", errno != 0 ? -errno : -EINVAL));
  if (Status s = configure(*skel); !s.ok()) return Err(s.Annotate(what));
  if (int err = ops.load(skel.get()); err != 0) return Err(log.Failure(what, "load", err));
  if (int err = ops.attach(skel.get()); err != 0) return Err(log.Failure(what, "attach", err));
  return skel;
}

}  // namespace augur::telemetry

#endif  // AUGUR_TELEMETRY_BPF_SKELETON_H_
