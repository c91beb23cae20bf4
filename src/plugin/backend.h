// Backend: the C++ face of a provisioning backend, whatever runs it.
//
// A Backend provisions instances (a cgroup, a VM, ...) for soft reservations, runs tasks in
// them and reports what they used. Two implementations exist: AbiBackend (abi_adapter.h)
// calls a plugin's C table in this process, and HostedBackend (plugin_client.h) forwards
// every call to an augur-plugin-host process that runs the plugin in isolation. augurd only
// ever uses the second; the first runs inside the host and inside augur-plugin-check.
//
// Errors. A plugin's result code becomes a Status code (see StatusFromRc in
// plugin_protocol.h); the message names the backend, the operation and the plugin's own
// words. kCorruption means the plugin broke the ABI contract (NULL where a value is due, an
// unterminated string, an unknown enum value): the hosted backend restarts the plugin then.
//
// Thread safety: every method may be called from several threads at once.
#ifndef AUGUR_PLUGIN_BACKEND_H_
#define AUGUR_PLUGIN_BACKEND_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "augur/status.h"

namespace augur::plugin {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct Resources {
  double cpu_cores = 0;
  uint64_t memory_bytes = 0;
  friend bool operator==(const Resources&, const Resources&) = default;
};

struct Cost {
  std::string resource_class;
  double per_core_hour = 0;
  double per_gib_hour = 0;
  bool preemptible = false;
  friend bool operator==(const Cost&, const Cost&) = default;
};

struct BackendInfo {
  std::string name;
  std::string version;
  bool healthy = false;
  std::string health_detail;
  Resources capacity;
  Resources available;
  std::vector<Cost> costs;
  KeyValues labels;
  friend bool operator==(const BackendInfo&, const BackendInfo&) = default;
};

// A soft reservation: what is wanted and the least that will do (min <= want).
struct AllocRequest {
  std::string name;  // unique among live instances; provisioning is idempotent on it
  Resources want;
  Resources min;
  std::string template_ref;    // "" for the backend's default
  std::string resource_class;  // "" for the backend's default
  KeyValues labels;
};

// NOTE: values equal the ABI's AUGUR_INSTANCE_*; do not renumber.
enum class InstanceState : int32_t { kPending = 0, kReady = 1, kFailed = 2, kGone = 3 };

struct Instance {
  std::string handle;  // opaque, printable ASCII, < AUGUR_HANDLE_MAX bytes
  Resources granted;
  InstanceState state = InstanceState::kPending;
};

struct InvocationMeta {
  std::string workflow;
  std::string stage;
  std::string shard_id;
  uint64_t range_begin = 0;  // [begin, end); 0,0 when the shard is not ranged
  uint64_t range_end = 0;
  uint32_t attempt = 1;
  int32_t priority = 5;  // 1..10, 10 highest
  std::string origin_host;  // the host that owns the workflow; "" when unknown (ABI 1.1)
};

struct Task {
  std::vector<std::string> argv;  // argv[0] is the program
  std::vector<std::string> env;   // "KEY=VALUE"; the task gets only these
  std::string workdir;            // "" for the backend's default
  std::string stdout_path;        // "" to discard
  std::string stderr_path;        // "" to discard
  InvocationMeta meta;
};

// NOTE: values equal the ABI's AUGUR_TASK_*; do not renumber.
enum class TaskState : int32_t {
  kRunning = 0,
  kExited = 1,
  kKilled = 2,
  kOom = 3,
  kFailed = 4,
  kReclaimed = 5,  // ABI 1.1: its cost class took the instance away
};

struct TaskStatus {
  TaskState state = TaskState::kRunning;
  int32_t exit_code = 0;    // valid when kExited
  int32_t term_signal = 0;  // valid when kKilled
  double cpu_seconds = 0;
  uint64_t peak_memory_bytes = 0;
  int64_t started_ns = 0;   // CLOCK_REALTIME
  int64_t finished_ns = 0;  // 0 while running
  // Storage bytes the task and what it started read and wrote, as the backend measures them
  // (docs/BACKENDS.md says what each counts); 0 when it cannot, and always 0 from a plugin
  // of ABI 1.0. At most kMaxIoBytes (plugin_protocol.h).
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

// What recover() found: one state per handle passed in, in the same order.
struct RecoverResult {
  std::vector<InstanceState> instances;
  std::vector<TaskState> invocations;
};

std::string_view InstanceStateName(InstanceState s);
std::string_view TaskStateName(TaskState s);
inline bool IsTerminal(TaskState s) { return s != TaskState::kRunning; }

class Backend {
 public:
  virtual ~Backend() = default;

  // The backend's name as configured (plugins.enabled), for logs and metrics labels.
  virtual const std::string& name() const = 0;

  virtual Result<BackendInfo> Describe() = 0;
  // Grants between req.min and req.want. Idempotent on req.name.
  virtual Result<Instance> Provision(const AllocRequest& req) = 0;
  // Prepares up to `count` instances shaped like `shape`; returns how many are ready.
  virtual Result<uint32_t> Prewarm(const AllocRequest& shape, uint32_t count) = 0;
  // Moves a live instance toward `target`; returns what it has afterwards.
  virtual Result<Resources> Resize(const std::string& instance, const Resources& target) = 0;
  // Starts a task; returns its invocation handle.
  virtual Result<std::string> Run(const std::string& instance, const Task& task) = 0;
  // The task's status, waiting up to `wait` for it to finish (0: don't wait).
  virtual Result<TaskStatus> Poll(const std::string& invocation,
                                  std::chrono::milliseconds wait) = 0;
  // Stops a task; cancelling a finished one is OK.
  virtual Status Cancel(const std::string& invocation) = 0;
  // Destroys an instance. NotFound for an unknown or already released one.
  virtual Status Release(const std::string& instance) = 0;
  // Re-attaches to what still exists after a restart.
  virtual Result<RecoverResult> Recover(const std::vector<std::string>& instances,
                                        const std::vector<std::string>& invocations) = 0;
};

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_BACKEND_H_
