#include "plugin/plugin_protocol.h"

#include <cmath>

#include <fmt/format.h>

namespace augur::plugin {

std::string_view InstanceStateName(InstanceState s) {
  switch (s) {
    case InstanceState::kPending: return "pending";
    case InstanceState::kReady: return "ready";
    case InstanceState::kFailed: return "failed";
    case InstanceState::kGone: return "gone";
  }
  return "unknown";
}

std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kRunning: return "running";
    case TaskState::kExited: return "exited";
    case TaskState::kKilled: return "killed";
    case TaskState::kOom: return "oom";
    case TaskState::kFailed: return "failed";
    case TaskState::kReclaimed: return "reclaimed";
  }
  return "unknown";
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    uint32_t cp = c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

Status CheckText(std::string_view what, std::string_view s, size_t max_bytes) {
  if (s.size() > max_bytes) {
    return Status::Corruption(
        fmt::format("{} is longer than {} bytes (unterminated?)", what, max_bytes));
  }
  if (!IsValidUtf8(s)) return Status::Corruption(fmt::format("{} is not valid UTF-8", what));
  return Status::OK();
}

Status CheckHandle(std::string_view what, std::string_view handle) {
  if (handle.empty()) return Status::Corruption(fmt::format("{} is empty", what));
  if (handle.size() >= AUGUR_HANDLE_MAX) {
    return Status::Corruption(fmt::format("{} is longer than {} bytes (unterminated?)", what,
                                          AUGUR_HANDLE_MAX - 1));
  }
  for (char c : handle) {
    if (c < 0x20 || c > 0x7e) {
      return Status::Corruption(
          fmt::format("{} has byte 0x{:02x}; handles are printable ASCII", what,
                      static_cast<unsigned char>(c)));
    }
  }
  return Status::OK();
}

Status CheckResources(std::string_view what, const Resources& r) {
  if (!std::isfinite(r.cpu_cores) || r.cpu_cores < 0) {
    return Status::Corruption(fmt::format("{}.cpu_cores is {}", what, r.cpu_cores));
  }
  return Status::OK();
}

Status CheckBackendInfo(const BackendInfo& info) {
  AUGUR_RETURN_IF_ERROR(CheckText("name", info.name, kMaxNameBytes));
  if (info.name.empty()) return Status::Corruption("name is empty");
  AUGUR_RETURN_IF_ERROR(CheckText("version", info.version, kMaxNameBytes));
  AUGUR_RETURN_IF_ERROR(CheckText("health_detail", info.health_detail, kMaxTextBytes));
  AUGUR_RETURN_IF_ERROR(CheckResources("capacity", info.capacity));
  AUGUR_RETURN_IF_ERROR(CheckResources("available", info.available));
  if (info.costs.size() > kMaxListEntries || info.labels.size() > kMaxListEntries) {
    return Status::Corruption(fmt::format("more than {} costs or labels", kMaxListEntries));
  }
  for (size_t i = 0; i < info.costs.size(); ++i) {
    const Cost& c = info.costs[i];
    AUGUR_RETURN_IF_ERROR(
        CheckText(fmt::format("costs[{}].resource_class", i), c.resource_class, kMaxNameBytes));
    if (!std::isfinite(c.per_core_hour) || !std::isfinite(c.per_gib_hour) ||
        c.per_core_hour < 0 || c.per_gib_hour < 0) {
      return Status::Corruption(fmt::format("costs[{}] has a negative or non-finite price", i));
    }
  }
  for (size_t i = 0; i < info.labels.size(); ++i) {
    AUGUR_RETURN_IF_ERROR(
        CheckText(fmt::format("labels[{}].key", i), info.labels[i].first, kMaxNameBytes));
    AUGUR_RETURN_IF_ERROR(
        CheckText(fmt::format("labels[{}].value", i), info.labels[i].second, kMaxTextBytes));
  }
  return Status::OK();
}

Status CheckTaskStatus(const TaskStatus& st) {
  if (!std::isfinite(st.cpu_seconds) || st.cpu_seconds < 0) {
    return Status::Corruption(fmt::format("cpu_seconds is {}", st.cpu_seconds));
  }
  for (const auto& [what, v] : {std::pair{"bytes_read", st.bytes_read},
                                std::pair{"bytes_written", st.bytes_written}}) {
    if (v > kMaxIoBytes) {
      return Status::Corruption(fmt::format(
          "{} is {}, more than {} (a negative count cast to unsigned?)", what, v, kMaxIoBytes));
    }
  }
  return Status::OK();
}

Result<InstanceState> InstanceStateFromInt(std::string_view what, int32_t v) {
  if (v < AUGUR_INSTANCE_PENDING || v > AUGUR_INSTANCE_GONE) {
    return Err(Status::Corruption(fmt::format("{} is {}, not an AUGUR_INSTANCE_* value", what, v)));
  }
  return static_cast<InstanceState>(v);
}

Result<TaskState> TaskStateFromInt(std::string_view what, int32_t v) {
  if (v < AUGUR_TASK_RUNNING || v > AUGUR_TASK_RECLAIMED) {
    return Err(Status::Corruption(fmt::format("{} is {}, not an AUGUR_TASK_* value", what, v)));
  }
  return static_cast<TaskState>(v);
}

std::string_view RcName(augur_rc rc) {
  switch (rc) {
    case AUGUR_OK: return "AUGUR_OK";
    case AUGUR_ERR_INVALID: return "AUGUR_ERR_INVALID";
    case AUGUR_ERR_NOT_FOUND: return "AUGUR_ERR_NOT_FOUND";
    case AUGUR_ERR_UNSUPPORTED: return "AUGUR_ERR_UNSUPPORTED";
    case AUGUR_ERR_NO_CAPACITY: return "AUGUR_ERR_NO_CAPACITY";
    case AUGUR_ERR_IO: return "AUGUR_ERR_IO";
    case AUGUR_ERR_INTERNAL: return "AUGUR_ERR_INTERNAL";
    case AUGUR_ERR_BUSY: return "AUGUR_ERR_BUSY";
    case AUGUR_ERR_TIMEOUT: return "AUGUR_ERR_TIMEOUT";
    default: return "";
  }
}

Status StatusFromRc(std::string_view op, augur_rc rc, std::string_view message) {
  std::string msg = fmt::format("{}: {}: {}", op, RcName(rc), message);
  switch (rc) {
    case AUGUR_ERR_INVALID: return Status::InvalidArgument(msg);
    case AUGUR_ERR_NOT_FOUND: return Status::NotFound(msg);
    case AUGUR_ERR_UNSUPPORTED: return Status::FailedPrecondition(msg);
    case AUGUR_ERR_NO_CAPACITY:
    case AUGUR_ERR_BUSY:
    case AUGUR_ERR_TIMEOUT: return Status::Unavailable(msg);
    case AUGUR_ERR_IO: return Status::IOError(msg);
    case AUGUR_ERR_INTERNAL: return Status::Internal(msg);
    default:
      return Status::Corruption(
          fmt::format("{}: returned {}, which is not an AUGUR_ERR_* code", op, rc));
  }
}

Status StatusFromCode(int32_t code, std::string_view message) {
  switch (static_cast<Status::Code>(code)) {
    case Status::Code::kOk: return Status::OK();
    case Status::Code::kNotFound: return Status::NotFound(message);
    case Status::Code::kInvalidArgument: return Status::InvalidArgument(message);
    case Status::Code::kIOError: return Status::IOError(message);
    case Status::Code::kUnavailable: return Status::Unavailable(message);
    case Status::Code::kAlreadyExists: return Status::AlreadyExists(message);
    case Status::Code::kCorruption: return Status::Corruption(message);
    case Status::Code::kInternal: return Status::Internal(message);
    case Status::Code::kFailedPrecondition: return Status::FailedPrecondition(message);
    case Status::Code::kResourceExhausted: return Status::ResourceExhausted(message);
  }
  return Status::Corruption(fmt::format("reply has unknown status code {}", code));
}

namespace {
void KvToWire(const KeyValues& in, google::protobuf::RepeatedPtrField<wire::KeyValue>* out) {
  for (const auto& [k, v] : in) {
    wire::KeyValue* kv = out->Add();
    kv->set_key(k);
    kv->set_value(v);
  }
}
KeyValues KvFromWire(const google::protobuf::RepeatedPtrField<wire::KeyValue>& in) {
  KeyValues out;
  out.reserve(in.size());
  for (const wire::KeyValue& kv : in) out.emplace_back(kv.key(), kv.value());
  return out;
}
}  // namespace

void ToWire(const Resources& in, wire::Resources* out) {
  out->set_cpu_cores(in.cpu_cores);
  out->set_memory_bytes(in.memory_bytes);
}

void ToWire(const BackendInfo& in, wire::BackendInfo* out) {
  out->set_name(in.name);
  out->set_version(in.version);
  out->set_healthy(in.healthy);
  out->set_health_detail(in.health_detail);
  ToWire(in.capacity, out->mutable_capacity());
  ToWire(in.available, out->mutable_available());
  for (const Cost& c : in.costs) {
    wire::Cost* w = out->add_costs();
    w->set_resource_class(c.resource_class);
    w->set_per_core_hour(c.per_core_hour);
    w->set_per_gib_hour(c.per_gib_hour);
    w->set_preemptible(c.preemptible);
  }
  KvToWire(in.labels, out->mutable_labels());
}

void ToWire(const AllocRequest& in, wire::AllocRequest* out) {
  out->set_name(in.name);
  ToWire(in.want, out->mutable_want());
  ToWire(in.min, out->mutable_min());
  out->set_template_ref(in.template_ref);
  out->set_resource_class(in.resource_class);
  KvToWire(in.labels, out->mutable_labels());
}

void ToWire(const Instance& in, wire::Instance* out) {
  out->set_handle(in.handle);
  ToWire(in.granted, out->mutable_granted());
  out->set_state(static_cast<int32_t>(in.state));
}

void ToWire(const Task& in, wire::Task* out) {
  for (const std::string& a : in.argv) out->add_argv(a);
  for (const std::string& e : in.env) out->add_env(e);
  out->set_workdir(in.workdir);
  out->set_stdout_path(in.stdout_path);
  out->set_stderr_path(in.stderr_path);
  wire::InvocationMeta* m = out->mutable_meta();
  m->set_workflow(in.meta.workflow);
  m->set_stage(in.meta.stage);
  m->set_shard_id(in.meta.shard_id);
  m->set_range_begin(in.meta.range_begin);
  m->set_range_end(in.meta.range_end);
  m->set_attempt(in.meta.attempt);
  m->set_priority(in.meta.priority);
  m->set_origin_host(in.meta.origin_host);
}

void ToWire(const TaskStatus& in, wire::TaskStatus* out) {
  out->set_state(static_cast<int32_t>(in.state));
  out->set_exit_code(in.exit_code);
  out->set_term_signal(in.term_signal);
  out->set_cpu_seconds(in.cpu_seconds);
  out->set_peak_memory_bytes(in.peak_memory_bytes);
  out->set_started_ns(in.started_ns);
  out->set_finished_ns(in.finished_ns);
  out->set_bytes_read(in.bytes_read);
  out->set_bytes_written(in.bytes_written);
}

Resources FromWire(const wire::Resources& in) { return {in.cpu_cores(), in.memory_bytes()}; }

AllocRequest FromWire(const wire::AllocRequest& in) {
  AllocRequest r;
  r.name = in.name();
  r.want = FromWire(in.want());
  r.min = FromWire(in.min());
  r.template_ref = in.template_ref();
  r.resource_class = in.resource_class();
  r.labels = KvFromWire(in.labels());
  return r;
}

Task FromWire(const wire::Task& in) {
  Task t;
  t.argv.assign(in.argv().begin(), in.argv().end());
  t.env.assign(in.env().begin(), in.env().end());
  t.workdir = in.workdir();
  t.stdout_path = in.stdout_path();
  t.stderr_path = in.stderr_path();
  const wire::InvocationMeta& m = in.meta();
  t.meta = {m.workflow(),  m.stage(),   m.shard_id(), m.range_begin(),
            m.range_end(), m.attempt(), m.priority(), m.origin_host()};
  return t;
}

Result<BackendInfo> InfoFromWire(const wire::BackendInfo& in) {
  BackendInfo info;
  info.name = in.name();
  info.version = in.version();
  info.healthy = in.healthy();
  info.health_detail = in.health_detail();
  info.capacity = FromWire(in.capacity());
  info.available = FromWire(in.available());
  for (const wire::Cost& c : in.costs()) {
    info.costs.push_back({c.resource_class(), c.per_core_hour(), c.per_gib_hour(), c.preemptible()});
  }
  info.labels = KvFromWire(in.labels());
  if (Status s = CheckBackendInfo(info); !s.ok()) return Err(s);
  return info;
}

Result<Instance> InstanceFromWire(const wire::Instance& in) {
  Instance out;
  out.handle = in.handle();
  out.granted = FromWire(in.granted());
  if (Status s = CheckHandle("instance handle", out.handle); !s.ok()) return Err(s);
  if (Status s = CheckResources("granted", out.granted); !s.ok()) return Err(s);
  auto state = InstanceStateFromInt("instance state", in.state());
  if (!state) return Err(state.error());
  out.state = *state;
  return out;
}

Result<TaskStatus> TaskStatusFromWire(const wire::TaskStatus& in) {
  TaskStatus out;
  auto state = TaskStateFromInt("task state", in.state());
  if (!state) return Err(state.error());
  out.state = *state;
  out.exit_code = in.exit_code();
  out.term_signal = in.term_signal();
  out.cpu_seconds = in.cpu_seconds();
  out.peak_memory_bytes = in.peak_memory_bytes();
  out.started_ns = in.started_ns();
  out.finished_ns = in.finished_ns();
  out.bytes_read = in.bytes_read();
  out.bytes_written = in.bytes_written();
  if (Status s = CheckTaskStatus(out); !s.ok()) return Err(s);
  return out;
}

}  // namespace augur::plugin
