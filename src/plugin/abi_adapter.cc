#include "plugin/abi_adapter.h"

#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "plugin/plugin_protocol.h"

namespace augur::plugin {
namespace {

// Copies a plugin-owned C string, refusing NULL and anything without a NUL within bounds.
// strnlen never reads past max_bytes + 1, so a huge or unterminated string costs a bounded
// read (it may still fault on an unmapped page; the host process absorbs that).
Result<std::string> CopyCString(std::string_view what, const char* s, size_t max_bytes) {
  if (s == nullptr) return Err(Status::Corruption(fmt::format("{} is NULL", what)));
  size_t n = ::strnlen(s, max_bytes + 1);
  std::string out(s, n);
  if (Status st = CheckText(what, out, max_bytes); !st.ok()) return Err(st);
  return out;
}

// augur_task_status as ABI 1.0 defined it (it ended with finished_ns), and where the 1.1
// counters end. A minor-0 plugin is handed the 1.0 size; counters are read only from a
// struct that holds them.
constexpr uint32_t kTaskStatusSize_1_0 = offsetof(augur_task_status, bytes_read);
constexpr uint32_t kTaskStatusIoEnd =
    offsetof(augur_task_status, bytes_written) + sizeof(augur_task_status::bytes_written);
static_assert(kTaskStatusSize_1_0 == 48, "ABI 1.0's augur_task_status is 48 bytes");

Resources FromC(const augur_resources& r) { return {r.cpu_cores, r.memory_bytes}; }
augur_resources ToC(const Resources& r) { return {r.cpu_cores, r.memory_bytes}; }

// Plugin log lines go to this process's log, tagged with the plugin's name. A bad message
// is not worth a restart: it is shortened or replaced, not refused.
void HostLog(void* ctx, int32_t level, const char* message) {
  const auto* name = static_cast<const std::string*>(ctx);
  std::string text = message == nullptr ? "(NULL message)" : std::string(message, ::strnlen(message, kMaxTextBytes));
  if (!IsValidUtf8(text)) text = "(message is not UTF-8)";
  spdlog::level::level_enum lv = level <= AUGUR_LOG_DEBUG  ? spdlog::level::debug
                                 : level == AUGUR_LOG_INFO ? spdlog::level::info
                                 : level == AUGUR_LOG_WARN ? spdlog::level::warn
                                                           : spdlog::level::err;
  spdlog::log(lv, "plugin {}: {}", *name, text);
}

int64_t HostNowNs(void*) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// Owns the C view of an AllocRequest for the duration of one call.
struct CAllocRequest {
  explicit CAllocRequest(const AllocRequest& r) {
    for (const auto& [k, v] : r.labels) labels.push_back({k.c_str(), v.c_str()});
    c.struct_size = sizeof c;
    c.name = r.name.c_str();
    c.want = ToC(r.want);
    c.min = ToC(r.min);
    c.template_ref = r.template_ref.c_str();
    c.resource_class = r.resource_class.c_str();
    c.labels = labels.data();
    c.labels_len = static_cast<uint32_t>(labels.size());
  }
  std::vector<augur_kv> labels;
  augur_alloc_request c{};
};

// A handle buffer must hold a NUL within AUGUR_HANDLE_MAX; the rest is CheckHandle's.
Result<std::string> HandleFromBuffer(std::string_view what, const char* buf) {
  size_t n = ::strnlen(buf, AUGUR_HANDLE_MAX);
  if (n == AUGUR_HANDLE_MAX) {
    return Err(Status::Corruption(fmt::format("{} has no NUL within {} bytes", what, AUGUR_HANDLE_MAX)));
  }
  std::string h(buf, n);
  if (Status s = CheckHandle(what, h); !s.ok()) return Err(s);
  return h;
}

}  // namespace

Result<std::unique_ptr<AbiBackend>> AbiBackend::Create(std::unique_ptr<LoadedPlugin> plugin,
                                                       AbiBackendOptions options) {
  std::unique_ptr<AbiBackend> b(new AbiBackend(std::move(plugin)));
  const std::string& name = b->plugin_->name();
  if (!options.state_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.state_dir, ec);
    if (ec) {
      return Err(Status::IOError(fmt::format("plugin '{}': cannot create state dir {}: {}", name,
                                             options.state_dir, ec.message())));
    }
  }
  b->state_dir_ = options.state_dir;
  b->config_strings_.reserve(options.config.size() * 2);
  for (const auto& [k, v] : options.config) {
    b->config_strings_.push_back(k);
    b->config_strings_.push_back(v);
  }
  for (size_t i = 0; i < b->config_strings_.size(); i += 2) {
    b->config_kv_.push_back({b->config_strings_[i].c_str(), b->config_strings_[i + 1].c_str()});
  }
  b->host_.struct_size = sizeof b->host_;
  b->host_.host_ctx = const_cast<std::string*>(&b->plugin_->name());
  b->host_.log = &HostLog;
  b->host_.now_ns = &HostNowNs;
  b->host_.config = b->config_kv_.data();
  b->host_.config_len = static_cast<uint32_t>(b->config_kv_.size());
  b->host_.state_dir = b->state_dir_.c_str();

  augur_rc rc = AUGUR_ERR_INTERNAL;
  const char* error = nullptr;
  augur_plugin* state = b->plugin_->api().init(&b->host_, &rc, &error);
  if (state == nullptr) {
    std::string why = "(no message)";
    if (error != nullptr) {
      auto text = CopyCString("init error", error, kMaxTextBytes);
      why = text ? *text : text.error().message();
    }
    return Err(Status::FailedPrecondition(
        fmt::format("plugin '{}': init failed ({}): {}", name, RcName(rc), why)));
  }
  b->state_ = state;
  return b;
}

AbiBackend::~AbiBackend() {
  if (state_ != nullptr) plugin_->api().destroy(state_);
}

Status AbiBackend::CallFailed(std::string_view op, augur_rc rc) {
  if (RcName(rc).empty()) {
    return Status::Corruption(fmt::format("{}: returned {}, which is not an AUGUR_ERR_* code", op, rc));
  }
  auto msg = CopyCString("last_error()", plugin_->api().last_error(state_), kMaxTextBytes);
  if (!msg) return msg.error().Annotate(fmt::format("{} failed with {}", op, RcName(rc)));
  return StatusFromRc(op, rc, *msg);
}

Result<BackendInfo> AbiBackend::Describe() {
  std::lock_guard<std::mutex> lock(describe_mu_);
  augur_backend_info c{};
  c.struct_size = sizeof c;
  augur_rc rc = plugin_->api().describe(state_, &c);
  if (rc != AUGUR_OK) return Err(CallFailed("describe", rc));
  auto bad = [](const Status& s) { return Err(s.Annotate("describe")); };
  BackendInfo info;
  auto name = CopyCString("name", c.name, kMaxNameBytes);
  if (!name) return bad(name.error());
  info.name = *name;
  auto version = CopyCString("version", c.version, kMaxNameBytes);
  if (!version) return bad(version.error());
  info.version = *version;
  auto detail = CopyCString("health_detail", c.health_detail, kMaxTextBytes);
  if (!detail) return bad(detail.error());
  info.health_detail = *detail;
  info.healthy = c.healthy != 0;
  info.capacity = FromC(c.capacity);
  info.available = FromC(c.available);
  if (c.costs_len > kMaxListEntries || c.labels_len > kMaxListEntries) {
    return bad(Status::Corruption(fmt::format("costs_len {} / labels_len {} exceed {}", c.costs_len,
                                              c.labels_len, kMaxListEntries)));
  }
  if ((c.costs_len > 0 && c.costs == nullptr) || (c.labels_len > 0 && c.labels == nullptr)) {
    return bad(Status::Corruption("costs or labels is NULL with a non-zero length"));
  }
  for (uint32_t i = 0; i < c.costs_len; ++i) {
    auto cls = CopyCString(fmt::format("costs[{}].resource_class", i), c.costs[i].resource_class,
                           kMaxNameBytes);
    if (!cls) return bad(cls.error());
    info.costs.push_back(
        {*cls, c.costs[i].per_core_hour, c.costs[i].per_gib_hour, c.costs[i].preemptible != 0});
  }
  for (uint32_t i = 0; i < c.labels_len; ++i) {
    auto k = CopyCString(fmt::format("labels[{}].key", i), c.labels[i].key, kMaxNameBytes);
    if (!k) return bad(k.error());
    auto v = CopyCString(fmt::format("labels[{}].value", i), c.labels[i].value, kMaxTextBytes);
    if (!v) return bad(v.error());
    info.labels.emplace_back(*k, *v);
  }
  if (Status s = CheckBackendInfo(info); !s.ok()) return bad(s);
  return info;
}

Result<Instance> AbiBackend::Provision(const AllocRequest& req) {
  CAllocRequest c(req);
  augur_instance_info out{};
  out.struct_size = sizeof out;
  out.state = -1;  // a plugin that forgets to set it is caught below
  augur_rc rc = plugin_->api().provision(state_, &c.c, &out);
  if (rc != AUGUR_OK) return Err(CallFailed("provision", rc));
  Instance inst;
  auto handle = HandleFromBuffer("instance handle", out.handle);
  if (!handle) return Err(handle.error().Annotate("provision"));
  inst.handle = *handle;
  inst.granted = FromC(out.granted);
  if (Status s = CheckResources("granted", inst.granted); !s.ok()) return Err(s.Annotate("provision"));
  auto state = InstanceStateFromInt("instance state", out.state);
  if (!state) return Err(state.error().Annotate("provision"));
  inst.state = *state;
  return inst;
}

Result<uint32_t> AbiBackend::Prewarm(const AllocRequest& shape, uint32_t count) {
  CAllocRequest c(shape);
  uint32_t prepared = 0;
  augur_rc rc = plugin_->api().prewarm(state_, &c.c, count, &prepared);
  if (rc != AUGUR_OK) return Err(CallFailed("prewarm", rc));
  if (prepared > count) {
    return Err(Status::Corruption(
        fmt::format("prewarm: prepared {} instances when {} were asked for", prepared, count)));
  }
  return prepared;
}

Result<Resources> AbiBackend::Resize(const std::string& instance, const Resources& target) {
  augur_resources t = ToC(target);
  augur_resources granted{-1, 0};
  augur_rc rc = plugin_->api().resize(state_, instance.c_str(), &t, &granted);
  if (rc != AUGUR_OK) return Err(CallFailed("resize", rc));
  Resources g = FromC(granted);
  if (Status s = CheckResources("granted", g); !s.ok()) return Err(s.Annotate("resize"));
  return g;
}

Result<std::string> AbiBackend::Run(const std::string& instance, const Task& task) {
  std::vector<const char*> argv, env;
  for (const std::string& a : task.argv) argv.push_back(a.c_str());
  for (const std::string& e : task.env) env.push_back(e.c_str());
  augur_task c{};
  c.struct_size = sizeof c;
  c.argv = argv.data();
  c.argc = static_cast<uint32_t>(argv.size());
  c.env = env.data();
  c.envc = static_cast<uint32_t>(env.size());
  c.workdir = task.workdir.c_str();
  c.stdout_path = task.stdout_path.c_str();
  c.stderr_path = task.stderr_path.c_str();
  // Every plugin gets the whole struct: one of an older minor reads only what it knows.
  c.meta = {task.meta.workflow.c_str(), task.meta.stage.c_str(), task.meta.shard_id.c_str(),
            task.meta.range_begin,      task.meta.range_end,     task.meta.attempt,
            task.meta.priority,         task.meta.origin_host.c_str()};
  char handle[AUGUR_HANDLE_MAX] = {};
  augur_rc rc = plugin_->api().run(state_, instance.c_str(), &c, handle);
  if (rc != AUGUR_OK) return Err(CallFailed("run", rc));
  auto h = HandleFromBuffer("invocation handle", handle);
  if (!h) return Err(h.error().Annotate("run"));
  return *h;
}

Result<TaskStatus> AbiBackend::Poll(const std::string& invocation, std::chrono::milliseconds wait) {
  augur_task_status c{};
  // The struct as the plugin's minor defines it (plugin.h, "Versioning").
  const uint32_t allocated = plugin_->api().abi_minor >= 1 ? sizeof c : kTaskStatusSize_1_0;
  c.struct_size = allocated;
  c.state = -1;
  const int32_t timeout_ms = static_cast<int32_t>(
      std::clamp<int64_t>(wait.count(), 0, std::numeric_limits<int32_t>::max()));
  augur_rc rc = plugin_->api().poll(state_, invocation.c_str(), timeout_ms, &c);
  if (rc != AUGUR_OK) return Err(CallFailed("poll", rc));
  // A plugin may write its own size back; it must lie between ABI 1.0's and what was given.
  if (c.struct_size > allocated) {
    return Err(Status::Corruption(
        fmt::format("poll: out.struct_size is {}, more than the {} bytes the host allocated",
                    c.struct_size, allocated)));
  }
  if (c.struct_size < kTaskStatusSize_1_0) {
    return Err(Status::Corruption(fmt::format(
        "poll: out.struct_size is {}, less than the {} bytes of ABI 1.0's augur_task_status",
        c.struct_size, kTaskStatusSize_1_0)));
  }
  TaskStatus st;
  auto state = TaskStateFromInt("task state", c.state);
  if (!state) return Err(state.error().Annotate("poll"));
  st.state = *state;
  st.exit_code = c.exit_code;
  st.term_signal = c.term_signal;
  st.cpu_seconds = c.cpu_seconds;
  st.peak_memory_bytes = c.peak_memory_bytes;
  st.started_ns = c.started_ns;
  st.finished_ns = c.finished_ns;
  if (c.struct_size >= kTaskStatusIoEnd) {
    st.bytes_read = c.bytes_read;
    st.bytes_written = c.bytes_written;
  }
  if (Status s = CheckTaskStatus(st); !s.ok()) return Err(s.Annotate("poll"));
  return st;
}

Status AbiBackend::Cancel(const std::string& invocation) {
  augur_rc rc = plugin_->api().cancel(state_, invocation.c_str());
  return rc == AUGUR_OK ? Status::OK() : CallFailed("cancel", rc);
}

Status AbiBackend::Release(const std::string& instance) {
  augur_rc rc = plugin_->api().release(state_, instance.c_str());
  return rc == AUGUR_OK ? Status::OK() : CallFailed("release", rc);
}

Result<RecoverResult> AbiBackend::Recover(const std::vector<std::string>& instances,
                                          const std::vector<std::string>& invocations) {
  std::vector<const char*> inst, inv;
  for (const std::string& s : instances) inst.push_back(s.c_str());
  for (const std::string& s : invocations) inv.push_back(s.c_str());
  // -1 is no state: a plugin that skips an entry is caught below.
  std::vector<int32_t> inst_states(instances.size(), -1), task_states(invocations.size(), -1);
  augur_rc rc = plugin_->api().recover(state_, inst.data(), static_cast<uint32_t>(inst.size()),
                                       inst_states.data(), inv.data(),
                                       static_cast<uint32_t>(inv.size()), task_states.data());
  if (rc != AUGUR_OK) return Err(CallFailed("recover", rc));
  RecoverResult out;
  for (size_t i = 0; i < inst_states.size(); ++i) {
    auto s = InstanceStateFromInt(fmt::format("recover: states_out[{}]", i), inst_states[i]);
    if (!s) return Err(s.error());
    out.instances.push_back(*s);
  }
  for (size_t i = 0; i < task_states.size(); ++i) {
    auto s = TaskStateFromInt(fmt::format("recover: task_states_out[{}]", i), task_states[i]);
    if (!s) return Err(s.error());
    out.invocations.push_back(*s);
  }
  return out;
}

}  // namespace augur::plugin
