// AbiLoader: opens a plugin shared object and checks its table against the ABI this build
// speaks (include/augur/plugin.h), before any plugin function is called.
//
// Used inside augur-plugin-host and by augur-plugin-check; augurd itself never dlopens a
// plugin. Refusals name the plugin, what it declared and what this agent supports, e.g.
//   plugin 'foo' (/usr/lib/augur/plugins/augur-foo.so) declares plugin ABI 2.0; this agent
//   supports plugin ABI 1.1 (same major, minor at most 1)
//
// Thread safety: a LoadedPlugin is immutable after Load(); share it freely.
#ifndef AUGUR_PLUGIN_ABI_LOADER_H_
#define AUGUR_PLUGIN_ABI_LOADER_H_

#include <memory>
#include <string>

#include "augur/plugin.h"
#include "augur/status.h"

namespace augur::plugin {

// "augur-foo.so" -> "foo"; anything else -> the file name without a trailing ".so".
std::string PluginNameFromPath(const std::string& path);

// "supports plugin ABI 1.1 (same major, minor at most 1)": the tail of every refusal.
std::string SupportedAbiText();

class LoadedPlugin {
 public:
  // dlopen(RTLD_NOW | RTLD_LOCAL) and validation. RTLD_NOW so that a missing symbol fails
  // here with dlerror()'s text rather than later in the middle of a call; RTLD_LOCAL so that
  // two plugins (or a plugin and the host) with same-named symbols do not bind to each other.
  // FailedPrecondition for an ABI mismatch, a missing entry symbol or a short/NULL table;
  // NotFound/IOError when the file cannot be opened.
  static Result<std::unique_ptr<LoadedPlugin>> Load(const std::string& path,
                                                    const std::string& name);
  ~LoadedPlugin();  // dlclose

  LoadedPlugin(const LoadedPlugin&) = delete;
  LoadedPlugin& operator=(const LoadedPlugin&) = delete;

  const augur_plugin_api& api() const { return *api_; }
  const std::string& name() const { return name_; }
  const std::string& path() const { return path_; }

 private:
  LoadedPlugin(void* handle, const augur_plugin_api* api, std::string name, std::string path)
      : handle_(handle), api_(api), name_(std::move(name)), path_(std::move(path)) {}
  void* handle_;
  const augur_plugin_api* api_;  // points into the plugin's data; valid until dlclose
  std::string name_;
  std::string path_;
};

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_ABI_LOADER_H_
