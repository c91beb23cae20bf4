#include "telemetry/bpf_skeleton.h"

#include <cstdarg>
#include <cstdio>
#include <vector>

#include "telemetry/procfs_util.h"

namespace augur::telemetry {
namespace {

// Where the capturing print callback appends: the live BpfLoadLog's buffer. libbpf calls
// the callback on the thread that called into it, which is the thread that owns that log.
thread_local std::string* g_libbpf_messages = nullptr;

int CapturePrint(enum libbpf_print_level level, const char* format, va_list args) {
  // Debug output (CO-RE relocation traces) is large and only useful with a debugger.
  if (level == LIBBPF_DEBUG || g_libbpf_messages == nullptr) return 0;
  va_list sizing;
  va_copy(sizing, args);
  const int n = std::vsnprintf(nullptr, 0, format, sizing);
  va_end(sizing);
  if (n <= 0) return n;
  // Whole messages, however long: libbpf echoes the verifier log in one call, and cutting
  // it would also cut the END marker LibbpfWarnings() looks for.
  const size_t old_size = g_libbpf_messages->size();
  g_libbpf_messages->resize(old_size + static_cast<size_t>(n) + 1);
  std::vsnprintf(g_libbpf_messages->data() + old_size, static_cast<size_t>(n) + 1, format, args);
  g_libbpf_messages->resize(old_size + static_cast<size_t>(n));
  return n;
}

// The lines of `text` without trailing blanks, empty ones dropped.
std::vector<std::string_view> NonEmptyLines(std::string_view text) {
  std::vector<std::string_view> out;
  for (std::string_view line : SplitLines(text)) {
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// The last `max_lines` non-empty lines of `text`, joined with " | ".
std::string Tail(std::string_view text, size_t max_lines) {
  std::vector<std::string_view> lines = NonEmptyLines(text);
  const size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  return out;
}

// libbpf's own warnings without the program load log it echoes (we quote the kernel's copy
// of that log separately) and without its "libbpf: " prefixes.
std::string LibbpfWarnings(std::string_view text) {
  std::string kept;
  bool in_log = false;
  for (std::string_view line : NonEmptyLines(text)) {
    if (line.find("-- BEGIN PROG LOAD LOG --") != std::string_view::npos) {
      in_log = true;
      continue;
    }
    if (line.find("-- END PROG LOAD LOG --") != std::string_view::npos) {
      in_log = false;
      continue;
    }
    if (in_log) continue;
    if (line.starts_with("libbpf: ")) line.remove_prefix(8);
    kept.append(line).append("\n");
  }
  return kept;
}

}  // namespace

BpfLoadLog::BpfLoadLog() : kernel_log_(256 * 1024, '\0') {
  g_libbpf_messages = &libbpf_messages_;
  previous_print_ = libbpf_set_print(&CapturePrint);
}

BpfLoadLog::~BpfLoadLog() {
  libbpf_set_print(previous_print_);
  g_libbpf_messages = nullptr;
}

void BpfLoadLog::Attach(struct bpf_object_open_opts& opts) {
  opts.kernel_log_buf = kernel_log_.data();
  opts.kernel_log_size = kernel_log_.size();
  opts.kernel_log_level = 0;  // libbpf asks the kernel for a log only when a load fails
}

Status BpfLoadLog::Failure(std::string_view what, std::string_view step, int err) const {
  char buf[256];
  libbpf_strerror(err, buf, sizeof buf);
  std::string msg = std::string(what) + ": " + std::string(step) + " failed: " + buf + " (" +
                    std::to_string(err) + ")";
  std::string_view kernel(kernel_log_.data());  // NUL-terminated by the kernel
  if (err == -EPERM) {
    // Refused before verification: privilege, or a policy that outranks it.
    msg +=
        " [needs CAP_BPF and CAP_PERFMON or CAP_SYS_ADMIN; kernel lockdown, an LSM or a "
        "hypervisor policy can refuse even root]";
  } else if (!kernel.empty() && step == "load") {
    msg += " [rejected by the kernel verifier]";
  }
  if (std::string warnings = Tail(LibbpfWarnings(libbpf_messages_), 4); !warnings.empty()) {
    msg += "; libbpf: " + warnings;
  }
  if (std::string verifier = Tail(kernel, 6); !verifier.empty()) {
    msg += "; verifier: " + verifier;
  }
  return Status::Unavailable(msg);
}

}  // namespace augur::telemetry
