// AbiBackend: a Backend that calls a loaded plugin's C table in this process, converting
// between the Backend types and the C structs and validating every answer.
//
// Validation: a NULL where a value is due, a string with no NUL within its bound
// (kMaxNameBytes / kMaxTextBytes from plugin_protocol.h), text that is not UTF-8, a handle
// that is not printable ASCII, an enum or result code the ABI does not define: each is
// returned as a Corruption ("describe: name is NULL"), never passed on; so is a poll() whose
// out.struct_size comes back smaller than ABI 1.0's struct or larger than the host gave. A
// plugin that returns garbage can still crash this process (a wild pointer, say); that is
// why augurd runs AbiBackend only inside augur-plugin-host.
//
// Minor versions: a plugin gets augur_task_status as its declared abi_minor defines it, and
// the fields are read only as far as its struct_size reaches; so a plugin of ABI 1.0 reports
// bytes_read = bytes_written = 0. Structs passed in (augur_task) are always the whole of
// this build's: an older plugin reads only the fields it knows.
//
// Thread safety: as the ABI allows, calls go to the plugin concurrently, except describe(),
// which is serialised (see plugin.h on the lifetime of describe()'s strings).
#ifndef AUGUR_PLUGIN_ABI_ADAPTER_H_
#define AUGUR_PLUGIN_ABI_ADAPTER_H_

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "augur/plugin.h"
#include "plugin/abi_loader.h"
#include "plugin/backend.h"

namespace augur::plugin {

struct AbiBackendOptions {
  // Handed to init() through augur_host_api: plugins.config.<name> and a directory that
  // survives restarts (created if missing).
  KeyValues config;
  std::string state_dir;
};

class AbiBackend : public Backend {
 public:
  // Calls the plugin's init(). FailedPrecondition with the plugin's own message when init
  // fails; Corruption when init breaks the contract (NULL without an rc, say).
  static Result<std::unique_ptr<AbiBackend>> Create(std::unique_ptr<LoadedPlugin> plugin,
                                                    AbiBackendOptions options);
  ~AbiBackend() override;  // destroy(); instances stay (they must survive restarts)

  const std::string& name() const override { return plugin_->name(); }
  const LoadedPlugin& plugin() const { return *plugin_; }

  Result<BackendInfo> Describe() override;
  Result<Instance> Provision(const AllocRequest& req) override;
  Result<uint32_t> Prewarm(const AllocRequest& shape, uint32_t count) override;
  Result<Resources> Resize(const std::string& instance, const Resources& target) override;
  Result<std::string> Run(const std::string& instance, const Task& task) override;
  Result<TaskStatus> Poll(const std::string& invocation, std::chrono::milliseconds wait) override;
  Status Cancel(const std::string& invocation) override;
  Status Release(const std::string& instance) override;
  Result<RecoverResult> Recover(const std::vector<std::string>& instances,
                                const std::vector<std::string>& invocations) override;

 private:
  explicit AbiBackend(std::unique_ptr<LoadedPlugin> plugin) : plugin_(std::move(plugin)) {}
  // The Status for a call that returned `rc` != AUGUR_OK, with last_error()'s text.
  Status CallFailed(std::string_view op, augur_rc rc);

  std::unique_ptr<LoadedPlugin> plugin_;
  // What augur_host_api points into; must outlive the plugin state.
  std::vector<std::string> config_strings_;
  std::vector<augur_kv> config_kv_;
  std::string state_dir_;
  augur_host_api host_{};
  augur_plugin* state_ = nullptr;
  std::mutex describe_mu_;
};

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_ABI_ADAPTER_H_
