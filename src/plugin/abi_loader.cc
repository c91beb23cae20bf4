#include "plugin/abi_loader.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstddef>

#include <fmt/format.h>

namespace augur::plugin {
namespace {

// The table must reach at least the last function of ABI 1.0; later minors append.
constexpr size_t kMinTableSize =
    offsetof(augur_plugin_api, recover) + sizeof(augur_plugin_api::recover);

}  // namespace

std::string PluginNameFromPath(const std::string& path) {
  std::string file = path.substr(path.rfind('/') + 1);
  if (file.ends_with(".so")) file.resize(file.size() - 3);
  if (file.starts_with("augur-")) file.erase(0, 6);
  return file;
}

std::string SupportedAbiText() {
  return fmt::format("supports plugin ABI {}.{} (same major, minor at most {})",
                     AUGUR_PLUGIN_ABI_MAJOR, AUGUR_PLUGIN_ABI_MINOR, AUGUR_PLUGIN_ABI_MINOR);
}

Result<std::unique_ptr<LoadedPlugin>> LoadedPlugin::Load(const std::string& path,
                                                         const std::string& name) {
  const std::string who = fmt::format("plugin '{}' ({})", name, path);
  // stat first: dlopen's message for a missing file is "cannot open shared object file",
  // which reads like a dependency problem.
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) return Err(Status::NotFound(who + ": no such file"));
    return Err(Status::FromErrno(who, err));
  }
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* e = ::dlerror();
    return Err(Status::FailedPrecondition(
        fmt::format("{}: cannot load: {}", who, e != nullptr ? e : "unknown dlopen error")));
  }
  // Closes the handle on every refusal below.
  std::unique_ptr<void, int (*)(void*)> guard(handle, ::dlclose);
  ::dlerror();
  void* sym = ::dlsym(handle, AUGUR_PLUGIN_ENTRY_SYMBOL);
  if (sym == nullptr) {
    return Err(Status::FailedPrecondition(fmt::format(
        "{}: does not export {}() (declares no plugin ABI; build it with AUGUR_PLUGIN_EXPORT "
        "from augur/plugin.h); this agent {}",
        who, AUGUR_PLUGIN_ENTRY_SYMBOL, SupportedAbiText())));
  }
  auto entry = reinterpret_cast<augur_plugin_entry_fn>(sym);
  const augur_plugin_api* api = entry();
  if (api == nullptr) {
    return Err(Status::FailedPrecondition(fmt::format(
        "{}: {}() returned NULL; this agent {}", who, AUGUR_PLUGIN_ENTRY_SYMBOL,
        SupportedAbiText())));
  }
  if (api->abi_major != AUGUR_PLUGIN_ABI_MAJOR || api->abi_minor > AUGUR_PLUGIN_ABI_MINOR) {
    return Err(Status::FailedPrecondition(fmt::format("{} declares plugin ABI {}.{}; this agent {}",
                                                      who, api->abi_major, api->abi_minor,
                                                      SupportedAbiText())));
  }
  if (api->struct_size < kMinTableSize) {
    return Err(Status::FailedPrecondition(fmt::format(
        "{} declares plugin ABI {}.{} but its table is {} bytes, less than the {} that ABI "
        "needs; this agent {}",
        who, api->abi_major, api->abi_minor, api->struct_size, kMinTableSize,
        SupportedAbiText())));
  }
  // Every function of 1.0 is required; a NULL one would crash the host on first use, and
  // saying which is missing now is kinder to the author.
  struct Field {
    const char* name;
    const void* fn;
  };
  const Field fields[] = {
      {"init", reinterpret_cast<const void*>(api->init)},
      {"destroy", reinterpret_cast<const void*>(api->destroy)},
      {"last_error", reinterpret_cast<const void*>(api->last_error)},
      {"describe", reinterpret_cast<const void*>(api->describe)},
      {"provision", reinterpret_cast<const void*>(api->provision)},
      {"prewarm", reinterpret_cast<const void*>(api->prewarm)},
      {"resize", reinterpret_cast<const void*>(api->resize)},
      {"run", reinterpret_cast<const void*>(api->run)},
      {"poll", reinterpret_cast<const void*>(api->poll)},
      {"cancel", reinterpret_cast<const void*>(api->cancel)},
      {"release", reinterpret_cast<const void*>(api->release)},
      {"recover", reinterpret_cast<const void*>(api->recover)},
  };
  for (const Field& f : fields) {
    if (f.fn == nullptr) {
      return Err(Status::FailedPrecondition(
          fmt::format("{}: its table has no {}() (NULL); every ABI 1.0 function is required",
                      who, f.name)));
    }
  }
  guard.release();
  return std::unique_ptr<LoadedPlugin>(new LoadedPlugin(handle, api, name, path));
}

LoadedPlugin::~LoadedPlugin() { ::dlclose(handle_); }

}  // namespace augur::plugin
