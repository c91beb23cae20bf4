// Test-side helper: loads a backend .so with dlopen and drives it through its C table only,
// the way the plugin host does, so the tests exercise the ABI rather than plugin internals.
#ifndef AUGUR_TESTS_BACKENDS_PLUGIN_FIXTURE_H_
#define AUGUR_TESTS_BACKENDS_PLUGIN_FIXTURE_H_

#include <dlfcn.h>
#include <time.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "augur/plugin.h"

namespace augur::testing {

inline std::string PluginPath(const std::string& name) {
  return std::string(AUGUR_BUILD_DIR) + "/plugins/augur-" + name + ".so";
}

// An open plugin library; dlcloses on destruction.
class PluginLib {
 public:
  explicit PluginLib(const std::string& path) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      error_ = dlerror();
      return;
    }
    auto entry = reinterpret_cast<augur_plugin_entry_fn>(dlsym(handle_, AUGUR_PLUGIN_ENTRY_SYMBOL));
    if (entry == nullptr) {
      error_ = "no augur_plugin_entry in " + path;
      return;
    }
    api_ = entry();
  }
  ~PluginLib() {
    if (handle_ != nullptr) dlclose(handle_);
  }
  PluginLib(const PluginLib&) = delete;
  PluginLib& operator=(const PluginLib&) = delete;

  const augur_plugin_api* api() const { return api_; }
  const std::string& error() const { return error_; }

 private:
  void* handle_ = nullptr;
  const augur_plugin_api* api_ = nullptr;
  std::string error_;
};

// One init()ed plugin with a host api the test controls. destroy() on destruction.
class PluginInstance {
 public:
  using Config = std::vector<std::pair<std::string, std::string>>;

  PluginInstance(const augur_plugin_api* api, Config config) : api_(api), config_(std::move(config)) {
    for (const auto& [k, v] : config_) kv_.push_back({k.c_str(), v.c_str()});
    host_.struct_size = sizeof host_;
    host_.host_ctx = this;
    host_.log = [](void* ctx, int32_t, const char* msg) {
      auto* self = static_cast<PluginInstance*>(ctx);
      std::lock_guard lock(self->log_mu_);  // the ABI says log() is thread-safe
      self->log_.push_back(msg);
    };
    host_.now_ns = [](void*) -> int64_t {
      timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
    };
    host_.config = kv_.data();
    host_.config_len = static_cast<uint32_t>(kv_.size());
    host_.state_dir = "/tmp";
    const char* err = nullptr;
    plugin_ = api_->init(&host_, &init_rc_, &err);
    init_error_ = err ? err : "";
  }
  ~PluginInstance() { Destroy(); }
  PluginInstance(const PluginInstance&) = delete;
  PluginInstance& operator=(const PluginInstance&) = delete;

  void Destroy() {
    if (plugin_ != nullptr) api_->destroy(plugin_);
    plugin_ = nullptr;
  }

  bool ok() const { return plugin_ != nullptr; }
  augur_rc init_rc() const { return init_rc_; }
  const std::string& init_error() const { return init_error_; }
  const augur_plugin_api* api() const { return api_; }
  augur_plugin* get() const { return plugin_; }
  std::string LastError() const { return api_->last_error(plugin_); }

  augur_rc Describe(augur_backend_info* out) const {
    std::memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    return api_->describe(plugin_, out);
  }

  augur_rc Provision(const std::string& name, augur_resources want, augur_resources min,
                     augur_instance_info* out, const std::string& template_ref = "",
                     const std::string& resource_class = "") const {
    augur_alloc_request req{};
    req.struct_size = sizeof req;
    req.name = name.c_str();
    req.want = want;
    req.min = min;
    req.template_ref = template_ref.c_str();
    req.resource_class = resource_class.c_str();
    std::memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    return api_->provision(plugin_, &req, out);
  }

  augur_rc Prewarm(augur_resources shape_want, uint32_t count, uint32_t* prepared) const {
    augur_alloc_request req{};
    req.struct_size = sizeof req;
    req.name = "prewarm";
    req.want = shape_want;
    req.min = shape_want;
    req.template_ref = "";
    req.resource_class = "";
    return api_->prewarm(plugin_, &req, count, prepared);
  }

  augur_rc Resize(const std::string& instance, augur_resources target,
                  augur_resources* granted) const {
    return api_->resize(plugin_, instance.c_str(), &target, granted);
  }

  augur_rc Run(const std::string& instance, const std::vector<std::string>& argv,
               const std::vector<std::string>& env, std::string* invocation,
               const std::string& stdout_path = "", const std::string& workdir = "") const {
    std::vector<const char*> a, e;
    for (const auto& s : argv) a.push_back(s.c_str());
    for (const auto& s : env) e.push_back(s.c_str());
    augur_task task{};
    task.struct_size = sizeof task;
    task.argv = a.data();
    task.argc = static_cast<uint32_t>(a.size());
    task.env = e.data();
    task.envc = static_cast<uint32_t>(e.size());
    task.workdir = workdir.c_str();
    task.stdout_path = stdout_path.c_str();
    task.stderr_path = "";
    task.meta.workflow = "test";
    task.meta.stage = "s";
    task.meta.shard_id = "0";
    task.meta.attempt = 1;
    task.meta.priority = 5;
    task.meta.origin_host = "test-host";
    char handle[AUGUR_HANDLE_MAX] = {};
    augur_rc rc = api_->run(plugin_, instance.c_str(), &task, handle);
    *invocation = handle;
    return rc;
  }

  augur_rc Poll(const std::string& invocation, int32_t timeout_ms, augur_task_status* out) const {
    std::memset(out, 0, sizeof *out);
    out->struct_size = sizeof *out;
    return api_->poll(plugin_, invocation.c_str(), timeout_ms, out);
  }

  augur_rc Cancel(const std::string& invocation) const {
    return api_->cancel(plugin_, invocation.c_str());
  }

  augur_rc Release(const std::string& instance) const {
    return api_->release(plugin_, instance.c_str());
  }

  augur_rc Recover(const std::vector<std::string>& instances, std::vector<int32_t>* states,
                   const std::vector<std::string>& invocations,
                   std::vector<int32_t>* task_states) const {
    std::vector<const char*> i, v;
    for (const auto& s : instances) i.push_back(s.c_str());
    for (const auto& s : invocations) v.push_back(s.c_str());
    states->assign(instances.size(), -1);
    task_states->assign(invocations.size(), -1);
    return api_->recover(plugin_, i.data(), static_cast<uint32_t>(i.size()), states->data(),
                         v.data(), static_cast<uint32_t>(v.size()), task_states->data());
  }

  std::vector<std::string> log() const {
    std::lock_guard lock(log_mu_);
    return log_;
  }

 private:
  const augur_plugin_api* api_;
  Config config_;
  std::vector<augur_kv> kv_;
  augur_host_api host_{};
  augur_plugin* plugin_ = nullptr;
  augur_rc init_rc_ = AUGUR_OK;
  std::string init_error_;
  mutable std::mutex log_mu_;
  std::vector<std::string> log_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_BACKENDS_PLUGIN_FIXTURE_H_
