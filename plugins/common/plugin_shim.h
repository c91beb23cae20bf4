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

// Checks that a host-provided struct is at least the size this plugin was built with. ABI
// 1.0 has no optional fields yet, so anything smaller is a host bug, not an older host.
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
// sizeof(T) is accepted; the struct is then cleared and stamped with sizeof(T).
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

}  // namespace augur_shim

#endif  // AUGUR_PLUGINS_COMMON_PLUGIN_SHIM_H_
