// Doctor: the checks behind `augurctl doctor`. Each looks at one thing augurd needs (BTF,
// BPF privilege, cgroups, the shared-memory segment, the plugin hosts, the control socket,
// the workflow database, the mesh seeds, the key files), says what it found and, when that
// is a problem, one sentence saying how to fix it.
//
// A check never changes anything: files are stat()ed or opened read-only (the database with
// SQLITE_OPEN_READONLY), the only program loaded into the kernel is a two-instruction one
// that is closed at once, and seeds are only connected to (no byte is sent). A check that
// needs a running augurd and finds none says so (state kSkip) rather than failing for it.
//
// Each check is a free function over explicit paths and values, so that tests point them
// at temporary files; RunDoctor() takes them from the config augurd runs with.
//
// Thread safety: the functions share no state; call them from any thread.
#ifndef AUGUR_AGENT_DOCTOR_H_
#define AUGUR_AGENT_DOCTOR_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config.h"
#include "augur/status.h"

namespace augur::agent {

enum class CheckState {
  kOk,    // fine
  kWarn,  // augurd runs, but something is degraded or risky
  kFail,  // something augurd needs is broken: `augurctl doctor` exits 1
  kSkip,  // could not be checked here (the reason is the summary)
};
std::string_view CheckStateName(CheckState s);  // "ok", "warn", "fail", "skip"

struct DoctorCheck {
  std::string name;  // short and stable: "btf", "bpf", "cgroups", "shm", ...
  CheckState state = CheckState::kOk;
  std::string summary;               // one line: what was found
  std::vector<std::string> details;  // more lines (per controller, per seed, per backend)
  std::string fix;                   // one sentence; empty when state is kOk or kSkip
};

// What the running augurd is, as far as its segment tells (writer pid of a live segment).
struct AgentProcess {
  pid_t pid = 0;  // 0: no live augurd found
  uid_t uid = 0;  // its effective uid (from /proc/<pid>/status)
};

// The effective capability mask of `pid` (0: this process) from /proc/<pid>/status CapEff.
Result<uint64_t> ReadEffectiveCaps(pid_t pid);
// The effective uid of `pid` from /proc/<pid>/status.
Result<uid_t> ReadEffectiveUid(pid_t pid);

// BTF: `btf_path` (normally /sys/kernel/btf/vmlinux) exists and is readable. Without it the
// eBPF collectors cannot load: kFail with telemetry.ebpf on, kWarn with auto (augurd falls
// back to procfs), kSkip with off.
DoctorCheck CheckBtf(const std::string& btf_path, EbpfMode mode);

// BPF privilege: whether this process can load a trivial tracing program (bpf(2)
// BPF_PROG_LOAD of "r0 = 0; exit" as BPF_PROG_TYPE_TRACEPOINT, which needs CAP_BPF and
// CAP_PERFMON or CAP_SYS_ADMIN, and no kernel lockdown), and whether the running augurd
// (`agent.pid` != 0) holds those capabilities and actually writes series with
// source="bpf" (`agent_bpf_series`: how many; -1 when unknown). Severity follows `mode` as
// for CheckBtf.
DoctorCheck CheckBpfPrivilege(EbpfMode mode, const AgentProcess& agent, int agent_bpf_series);

// Cgroups: from `mountinfo` (paths under `root_prefix`, for tests): v1, v2 or hybrid, and
// which controllers are where. kFail when no hierarchy offers cpu or memory (the process
// backend limits shards with them and per-cgroup series need them).
DoctorCheck CheckCgroups(const std::string& mountinfo, const std::string& root_prefix = "");

// The shared-memory segment `shm_name`: exists, has this build's layout version, its writer
// is alive, and its heartbeat is fresh (no older than three sampling `interval`s). kFail
// for a missing, foreign or stale segment.
DoctorCheck CheckShm(const std::string& shm_name, std::chrono::milliseconds interval);

// The plugin hosts: asks augurd over `socket` (the `backends` control command) and fails
// for each enabled backend that is not healthy, with its reason. kSkip when augurd cannot be
// asked (and says why); kOk when `enabled` is empty.
DoctorCheck CheckPlugins(const std::string& socket, const std::vector<std::string>& enabled,
                         std::chrono::milliseconds timeout);
// The verdict from the JSON augurd answered (BackendsJson), for tests.
DoctorCheck EvaluateBackends(const std::vector<std::string>& enabled, std::string_view json);

// The control socket: exists and is a socket, owned by `owner_uid`, group `group` (which
// must exist), mode 0660; and whether the user running doctor may use it (root or a member
// of the group: kWarn otherwise). A missing socket is kFail while augurd runs
// (`agent_running`), else kSkip.
DoctorCheck CheckControlSocket(const std::string& path, const std::string& group, uid_t owner_uid,
                               bool agent_running);

// The workflow database (`path`, normally workflows.state_dir/workflows.db), opened
// read-only: `PRAGMA quick_check` answers "ok". A missing file is kOk (made on augurd's
// first start with the engine on); kSkip when `engine_off` says why the engine is off.
DoctorCheck CheckDatabase(const std::string& path, const std::string& engine_off = "");

// Mesh seeds: each NAME@HOST:PORT resolves and accepts a TCP connection within `timeout`,
// and NAME has a key in mesh.authorized_keys (a CURVE client needs the server's key).
// kSkip with the mesh off; a seed naming this host is left out, as augurd does.
DoctorCheck CheckSeeds(const MeshConfig& mesh, std::chrono::milliseconds timeout);

// Key files: mesh.key_file exists, parses, is mode 0600 (no group or other bits) and owned
// by `owner_uid`; mesh.authorized_keys exists and is writable by its owner alone. kSkip with
// the mesh off and no key file.
DoctorCheck CheckKeyFiles(const MeshConfig& mesh, uid_t owner_uid);

struct DoctorOptions {
  Config config;            // what augurd runs with
  std::string config_path;  // where it came from; "" = built-in defaults
  Status config_status;     // loading it: not OK makes the "config" check fail
  std::string btf_path = "/sys/kernel/btf/vmlinux";
  std::string mountinfo = "/proc/self/mountinfo";
  std::chrono::milliseconds connect_timeout{2000};  // per seed
  std::chrono::milliseconds control_timeout{5000};
};

// Every check, in a fixed order: config, btf, bpf, cgroups, shm, plugins, control,
// database, seeds, keys. Files that must belong to augurd's user are checked against the
// running augurd's uid, else root's.
std::vector<DoctorCheck> RunDoctor(const DoctorOptions& options);

// For a terminal: a line per check ("[ ok ] btf      ..."), details indented under it, a
// "fix:" line under each problem, and a closing count.
std::string RenderDoctorText(const std::vector<DoctorCheck>& checks);
// {"ok": bool, "checks": [{"name", "state", "summary", "details", "fix"}]}.
nlohmann::json DoctorJson(const std::vector<DoctorCheck>& checks);
// 1 when any check failed, else 0.
int DoctorExitCode(const std::vector<DoctorCheck>& checks);

}  // namespace augur::agent

#endif  // AUGUR_AGENT_DOCTOR_H_
