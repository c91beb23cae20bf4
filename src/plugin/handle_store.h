// HandleStore: the instance and invocation handles a backend has handed out and not yet
// seen the end of, kept in a small file so that after a plugin host or agent restart they
// can be passed to recover().
//
// The file (<plugins.state_dir>/<name>.handles, a PersistedHandles protobuf) is replaced
// whole on every change: written to a temporary file, fsync'd, renamed over the old one, so
// a crash leaves either the old or the new set, never a torn one. An empty path keeps the
// handles in memory only.
//
// Thread safety: all methods may be called concurrently.
#ifndef AUGUR_PLUGIN_HANDLE_STORE_H_
#define AUGUR_PLUGIN_HANDLE_STORE_H_

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "augur/status.h"
#include "plugin/backend.h"

namespace augur::plugin {

class HandleStore {
 public:
  // Loads `path` when it exists. A file that does not parse is a Corruption; the caller
  // decides (augurd logs it and starts empty, renaming the file aside).
  static Result<std::unique_ptr<HandleStore>> Open(const std::string& path,
                                                   const std::string& backend);

  Status AddInstance(const std::string& instance);
  // Also forgets the instance's invocations. Unknown handles are not an error.
  Status RemoveInstance(const std::string& instance);
  Status AddInvocation(const std::string& instance, const std::string& invocation);
  Status RemoveInvocation(const std::string& invocation);
  // Applies what recover() said: instances reported gone are forgotten.
  Status ApplyRecovery(const std::vector<std::string>& instances, const RecoverResult& result);

  // Snapshot, sorted.
  std::vector<std::string> Instances() const;
  std::vector<std::string> Invocations() const;
  const std::string& path() const { return path_; }

 private:
  HandleStore(std::string path, std::string backend)
      : path_(std::move(path)), backend_(std::move(backend)) {}
  Status SaveLocked();

  const std::string path_;
  const std::string backend_;
  mutable std::mutex mu_;
  std::map<std::string, std::set<std::string>> instances_;  // instance -> its invocations
};

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_HANDLE_STORE_H_
