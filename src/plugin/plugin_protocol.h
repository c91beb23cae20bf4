// PluginProtocol: the bounds every value coming back from a plugin must respect, the mapping
// from the ABI's result codes to Status, and conversions between the Backend types
// (backend.h) and the wire messages (plugin_host.proto).
//
// Validation happens twice on purpose: in the host (abi_adapter.cc) on the raw C values,
// where a violation is a fault of the plugin, and in augurd on every Reply (FromWire), where
// a violation means the host process itself is broken. Both restart the host.
#ifndef AUGUR_PLUGIN_PLUGIN_PROTOCOL_H_
#define AUGUR_PLUGIN_PLUGIN_PROTOCOL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "augur/plugin.h"
#include "augur/status.h"
#include "plugin/backend.h"
#include "plugin/plugin_host.pb.h"

namespace augur::plugin {

// Longest name-like string (backend name, version, resource class, label key) and longest
// free text (health detail, error message, label value, template) a plugin may return.
// Anything longer is treated as an unterminated string.
inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxTextBytes = 4096;
// Most costs or labels a describe() may return.
inline constexpr size_t kMaxListEntries = 1024;
// Longest message accepted on the plugin socket (a describe with every list full fits).
inline constexpr size_t kMaxMessageBytes = 16 << 20;
// Largest bytes_read / bytes_written a task status may carry: the history stores them as
// SQLite integers (signed 64-bit), and a larger one is a negative count cast to unsigned.
inline constexpr uint64_t kMaxIoBytes = static_cast<uint64_t>(INT64_MAX);

// Each returns OK or a Corruption naming `what` and the problem.
Status CheckText(std::string_view what, std::string_view s, size_t max_bytes);
Status CheckHandle(std::string_view what, std::string_view handle);  // 1..127 printable ASCII
Status CheckResources(std::string_view what, const Resources& r);    // finite, >= 0
Status CheckBackendInfo(const BackendInfo& info);
Status CheckTaskStatus(const TaskStatus& st);  // cpu_seconds, bytes_* within bounds
Result<InstanceState> InstanceStateFromInt(std::string_view what, int32_t v);
Result<TaskState> TaskStateFromInt(std::string_view what, int32_t v);

// Valid UTF-8 without NUL bytes (what protobuf string fields and C strings both need).
bool IsValidUtf8(std::string_view s);

// "AUGUR_ERR_NO_CAPACITY" etc.; "" for a value the ABI does not define.
std::string_view RcName(augur_rc rc);
// The Status for a failed plugin call: "<op>: <RcName>: <message>". Codes: INVALID ->
// InvalidArgument, NOT_FOUND -> NotFound, UNSUPPORTED -> FailedPrecondition, NO_CAPACITY /
// BUSY / TIMEOUT -> Unavailable, IO -> IOError, INTERNAL -> Internal. An undefined rc is a
// Corruption. REQUIRES: rc != AUGUR_OK.
Status StatusFromRc(std::string_view op, augur_rc rc, std::string_view message);
// Rebuilds a Status from its code, as sent on the wire. Corruption for an unknown code.
Status StatusFromCode(int32_t code, std::string_view message);

// Domain <-> wire. FromWire validates every field (a Corruption says which).
void ToWire(const Resources& in, wire::Resources* out);
void ToWire(const BackendInfo& in, wire::BackendInfo* out);
void ToWire(const AllocRequest& in, wire::AllocRequest* out);
void ToWire(const Instance& in, wire::Instance* out);
void ToWire(const Task& in, wire::Task* out);
void ToWire(const TaskStatus& in, wire::TaskStatus* out);
Resources FromWire(const wire::Resources& in);
AllocRequest FromWire(const wire::AllocRequest& in);
Task FromWire(const wire::Task& in);
Result<BackendInfo> InfoFromWire(const wire::BackendInfo& in);
Result<Instance> InstanceFromWire(const wire::Instance& in);
Result<TaskStatus> TaskStatusFromWire(const wire::TaskStatus& in);

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_PLUGIN_PROTOCOL_H_
