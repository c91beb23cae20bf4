// The C++-to-C boundary shared by the backends in plugins/ (header only; it depends on
// nothing but include/augur/plugin.h and the standard library, as a plugin must).
//
// Every exported function of a plugin runs its body through Guard(), which turns any
// exception into an augur_rc and records the message for last_error(). Code inside the
// plugin reports a failure by throwing PluginError with the rc the host should see.
#ifndef AUGUR_PLUGINS_COMMON_PLUGIN_SHIM_H_
#define AUGUR_PLUGINS_COMMON_PLUGIN_SHIM_H_

#include <cstring>
#include <exception>
#include <initializer_list>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "augur/plugin.h"

namespace augur_shim {

class PluginError : public std::runtime_error {
 public:
  PluginError(augur_rc rc, const std::string& message)
      : std::runtime_error(message), rc_(rc) {}
  augur_rc rc() const { return rc_; }

 private:
  augur_rc rc_;
};

[[noreturn]] inline void Fail(augur_rc rc, const std::string& message) {
  throw PluginError(rc, message);
}

// last_error() storage. The ABI says the string is per thread and per plugin ("valid until
// the next call on this plugin from this thread"), so a thread_local alone is not enough
// (one thread may drive two plugin instances of the same .so); the map is keyed by thread
// and owned by the plugin instance. Entries of threads that have exited stay until destroy:
// the host uses a bounded pool of threads, so this does not grow without bound.
class ErrorSlot {
 public:
  void Set(std::string message) {
    std::lock_guard lock(mu_);
    by_thread_[std::this_thread::get_id()] = std::move(message);
  }
  // Never NULL. The pointer stays valid until Set() on the same thread.
  const char* Get() {
    std::lock_guard lock(mu_);
    return by_thread_[std::this_thread::get_id()].c_str();
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::thread::id, std::string> by_thread_;
};

// Runs `body` and maps whatever it throws to an augur_rc. bad_alloc and unknown exceptions
// become AUGUR_ERR_INTERNAL: they are plugin bugs or an exhausted host, not bad input.
template <typename Body>
augur_rc Guard(ErrorSlot& errors, Body&& body) noexcept {
  try {
    body();
    return AUGUR_OK;
  } catch (const PluginError& e) {
    errors.Set(e.what());
    return e.rc();
  } catch (const std::bad_alloc&) {
    errors.Set("out of memory");
    return AUGUR_ERR_INTERNAL;
  } catch (const std::exception& e) {
    errors.Set(std::string("internal error: ") + e.what());
    return AUGUR_ERR_INTERNAL;
  } catch (...) {
    errors.Set("internal error: unknown exception");
    return AUGUR_ERR_INTERNAL;
  }
}

// Checks that a host-provided struct is at least the size this plugin was built with. A host
// refuses plugins of a newer minor than its own, so it always passes at least this plugin's
// struct: anything smaller is a host bug, not an older host.
template <typename T>
void CheckIn(const T* s, const char* what) {
  if (s == nullptr) Fail(AUGUR_ERR_INVALID, std::string(what) + " is NULL");
  if (s->struct_size < sizeof(T)) {
    Fail(AUGUR_ERR_INVALID, std::string(what) + ".struct_size is " +
                                std::to_string(s->struct_size) + ", expected at least " +
                                std::to_string(sizeof(T)));
  }
}

// Prepares a host-provided out-struct: a struct_size of 0 (host left it unset) or at least
// sizeof(T) is accepted; the struct is then cleared and stamped with sizeof(T), which tells
// the host how far this plugin's answer reaches (plugin.h, "Versioning").
template <typename T>
void PrepareOut(T* s, const char* what) {
  if (s == nullptr) Fail(AUGUR_ERR_INVALID, std::string(what) + " is NULL");
  if (s->struct_size != 0 && s->struct_size < sizeof(T)) {
    Fail(AUGUR_ERR_INVALID, std::string(what) + ".struct_size is " +
                                std::to_string(s->struct_size) + ", expected at least " +
                                std::to_string(sizeof(T)));
  }
  std::memset(static_cast<void*>(s), 0, sizeof(T));
  s->struct_size = sizeof(T);
}

inline std::string Str(const char* s) { return s ? std::string(s) : std::string(); }

// Copies `value` into a host handle buffer; it must fit with its NUL and be printable ASCII.
inline void WriteHandle(char out[AUGUR_HANDLE_MAX], const std::string& value) {
  if (out == nullptr) Fail(AUGUR_ERR_INVALID, "handle buffer is NULL");
  if (value.size() >= AUGUR_HANDLE_MAX) {
    Fail(AUGUR_ERR_INTERNAL, "handle '" + value + "' is longer than AUGUR_HANDLE_MAX - 1");
  }
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) Fail(AUGUR_ERR_INTERNAL, "handle is not printable ASCII");
  }
  std::memcpy(out, value.c_str(), value.size() + 1);
}

// Looks up a config key in the host's flattened config; nullptr when absent.
inline const char* ConfigValue(const augur_host_api* host, const std::string& key) {
  if (host == nullptr || host->config == nullptr) return nullptr;
  for (uint32_t i = 0; i < host->config_len; ++i) {
    if (host->config[i].key != nullptr && key == host->config[i].key) {
      return host->config[i].value ? host->config[i].value : "";
    }
  }
  return nullptr;
}

// Fails init (AUGUR_ERR_INVALID) on a config key the plugin does not know, naming the ones
// it does: a misspelt key ("cgroup_root" for "cgroup_parent") would otherwise configure
// nothing, silently, and the backend would run on its defaults.
inline void RejectUnknownKeys(const augur_host_api* host, const std::string& plugin,
                              std::initializer_list<const char*> known) {
  if (host == nullptr || host->config == nullptr) return;
  for (uint32_t i = 0; i < host->config_len; ++i) {
    const std::string key = Str(host->config[i].key);
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (ok) continue;
    std::string names;
    for (const char* k : known) names += (names.empty() ? "" : ", ") + std::string(k);
    Fail(AUGUR_ERR_INVALID, "unknown config key '" + key + "' in plugins.config." + plugin +
                                " (known: " + names + ")");
  }
}

inline void Log(const augur_host_api* host, int32_t level, const std::string& message) {
  if (host != nullptr && host->log != nullptr) host->log(host->host_ctx, level, message.c_str());
}

// A name usable inside handles and cgroup/domain names: [A-Za-z0-9._-], 1..max_len long,
// not "." or "..".
inline void CheckName(const char* name, size_t max_len) {
  std::string n = Str(name);
  if (n.empty() || n.size() > max_len) {
    Fail(AUGUR_ERR_INVALID, "request name must be 1.." + std::to_string(max_len) +
                                " characters, got '" + n + "'");
  }
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      Fail(AUGUR_ERR_INVALID,
           "request name '" + n + "' may only contain letters, digits, '.', '_' and '-'");
    }
  }
  if (n == "." || n == "..") Fail(AUGUR_ERR_INVALID, "request name may not be '.' or '..'");
}

// want/min sanity shared by provision, prewarm and resize.
inline void CheckResources(const augur_resources& r, const char* what) {
  if (!(r.cpu_cores >= 0) || r.cpu_cores > 1e6) {  // also rejects NaN
    Fail(AUGUR_ERR_INVALID, std::string(what) + ".cpu_cores must be a number >= 0");
  }
}

// The C function table of a plugin whose handle is `struct augur_plugin { B backend; }`,
// where B is constructed from the host api and has errors(), Describe(out),
// Provision(req, out), Prewarm(shape, count), Resize(name, target), Run(name, task),
// Poll(invocation, timeout_ms), Cancel(invocation), Release(name) and Recover(...) that
// throw PluginError on failure. The binding checks the arguments the ABI defines (NULL
// structs and out pointers, struct_size, NULL arrays with a count) before calling them. Pass the plugin's own augur_plugin type as `Plugin`
// (a template parameter, because augur_plugin is incomplete in this header):
//
//   struct augur_plugin { MyBackend backend; };
//   extern "C" AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
//     return augur_shim::CBinding<augur_plugin>::Table();
//   }
template <typename Plugin>
class CBinding {
 public:
  static const augur_plugin_api* Table() {
    static const augur_plugin_api api = {
        AUGUR_PLUGIN_ABI_MAJOR, AUGUR_PLUGIN_ABI_MINOR, sizeof(augur_plugin_api),
        &Init, &Destroy, &LastError, &Describe, &Provision, &Prewarm, &Resize, &Run, &Poll,
        &Cancel, &Release, &Recover,
    };
    return &api;
  }

 private:
  // Errors of calls made without a usable plugin pointer.
  static ErrorSlot& NoPluginErrors() {
    static ErrorSlot slot;
    return slot;
  }
  static ErrorSlot& Errors(Plugin* p) { return p ? p->backend.errors() : NoPluginErrors(); }
  static void RequirePlugin(Plugin* p) {
    if (p == nullptr) Fail(AUGUR_ERR_INVALID, "plugin is NULL");
  }

  static Plugin* Init(const augur_host_api* host, augur_rc* rc, const char** error_out) {
    // init's error string must outlive the call with no plugin to own it: a per-thread
    // string, overwritten by the next failed init on that thread.
    static thread_local std::string init_error;
    Plugin* p = nullptr;
    ErrorSlot slot;
    augur_rc r = Guard(slot, [&] {
      if (host == nullptr) Fail(AUGUR_ERR_INVALID, "host api is NULL");
      if (host->struct_size < sizeof(augur_host_api)) {
        Fail(AUGUR_ERR_INVALID, "augur_host_api.struct_size is too small");
      }
      p = new Plugin{decltype(Plugin::backend)(host)};
    });
    if (rc) *rc = r;
    if (r != AUGUR_OK) {
      init_error = slot.Get();
      if (error_out) *error_out = init_error.c_str();
      return nullptr;
    }
    if (error_out) *error_out = "";
    return p;
  }

  static void Destroy(Plugin* p) { delete p; }

  static const char* LastError(Plugin* p) { return Errors(p).Get(); }

  static augur_rc Describe(Plugin* p, augur_backend_info* out) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      PrepareOut(out, "out");
      p->backend.Describe(out);
    });
  }

  static augur_rc Provision(Plugin* p, const augur_alloc_request* req, augur_instance_info* out) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      CheckIn(req, "req");
      PrepareOut(out, "out");
      p->backend.Provision(*req, out);
    });
  }

  static augur_rc Prewarm(Plugin* p, const augur_alloc_request* shape, uint32_t count,
                          uint32_t* prepared) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      CheckIn(shape, "shape");
      if (prepared == nullptr) Fail(AUGUR_ERR_INVALID, "prepared is NULL");
      *prepared = 0;
      *prepared = p->backend.Prewarm(*shape, count);
    });
  }

  static augur_rc Resize(Plugin* p, const char* instance, const augur_resources* target,
                         augur_resources* granted) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      if (target == nullptr || granted == nullptr) {
        Fail(AUGUR_ERR_INVALID, "target and granted must not be NULL");
      }
      *granted = p->backend.Resize(Str(instance), *target);
    });
  }

  static augur_rc Run(Plugin* p, const char* instance, const augur_task* task,
                      char invocation[AUGUR_HANDLE_MAX]) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      CheckIn(task, "task");
      if (invocation == nullptr) Fail(AUGUR_ERR_INVALID, "invocation is NULL");
      WriteHandle(invocation, p->backend.Run(Str(instance), *task));
    });
  }

  static augur_rc Poll(Plugin* p, const char* invocation, int32_t timeout_ms,
                       augur_task_status* out) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      PrepareOut(out, "out");
      *out = p->backend.Poll(Str(invocation), timeout_ms);
    });
  }

  static augur_rc Cancel(Plugin* p, const char* invocation) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      p->backend.Cancel(Str(invocation));
    });
  }

  static augur_rc Release(Plugin* p, const char* instance) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      p->backend.Release(Str(instance));
    });
  }

  static augur_rc Recover(Plugin* p, const char* const* instances, uint32_t n_instances,
                          int32_t* states_out, const char* const* invocations,
                          uint32_t n_invocations, int32_t* task_states_out) {
    return Guard(Errors(p), [&] {
      RequirePlugin(p);
      if ((n_instances > 0 && (instances == nullptr || states_out == nullptr)) ||
          (n_invocations > 0 && (invocations == nullptr || task_states_out == nullptr))) {
        Fail(AUGUR_ERR_INVALID, "recover: NULL array with a non-zero count");
      }
      p->backend.Recover(instances, n_instances, states_out, invocations, n_invocations,
                         task_states_out);
    });
  }
};

}  // namespace augur_shim

#endif  // AUGUR_PLUGINS_COMMON_PLUGIN_SHIM_H_
