#include "plugin/handle_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "plugin/plugin_host.pb.h"

namespace augur::plugin {

Result<std::unique_ptr<HandleStore>> HandleStore::Open(const std::string& path,
                                                       const std::string& backend) {
  std::unique_ptr<HandleStore> store(new HandleStore(path, backend));
  if (path.empty()) return store;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return store;  // nothing handed out yet
    return Err(Status::FromErrno("cannot read " + path, errno));
  }
  wire::PersistedHandles saved;
  const bool parsed = saved.ParseFromFileDescriptor(fd);
  ::close(fd);
  if (!parsed) {
    return Err(Status::Corruption(path + ": not a handles file (protobuf does not parse)"));
  }
  if (saved.backend() != backend) {
    return Err(Status::Corruption(fmt::format("{}: holds handles of backend '{}', not '{}'", path,
                                              saved.backend(), backend)));
  }
  for (const wire::PersistedInstance& i : saved.instances()) {
    store->instances_[i.handle()].insert(i.invocations().begin(), i.invocations().end());
  }
  return store;
}

Status HandleStore::SaveLocked() {
  if (path_.empty()) return Status::OK();
  wire::PersistedHandles out;
  out.set_backend(backend_);
  for (const auto& [inst, invs] : instances_) {
    wire::PersistedInstance* p = out.add_instances();
    p->set_handle(inst);
    for (const std::string& inv : invs) p->add_invocations(inv);
  }
  std::string bytes = out.SerializeAsString();
  const std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("cannot write " + tmp, errno);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno("cannot write " + tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  // fsync before rename: otherwise a power cut can leave the new name on an empty file.
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return Status::FromErrno("cannot fsync " + tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    return Status::FromErrno("cannot rename " + tmp + " to " + path_, errno);
  }
  return Status::OK();
}

Status HandleStore::AddInstance(const std::string& instance) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = instances_.try_emplace(instance);
  return inserted ? SaveLocked() : Status::OK();
}

Status HandleStore::RemoveInstance(const std::string& instance) {
  std::lock_guard<std::mutex> lock(mu_);
  return instances_.erase(instance) > 0 ? SaveLocked() : Status::OK();
}

Status HandleStore::AddInvocation(const std::string& instance, const std::string& invocation) {
  std::lock_guard<std::mutex> lock(mu_);
  instances_[instance].insert(invocation);
  return SaveLocked();
}

Status HandleStore::RemoveInvocation(const std::string& invocation) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [inst, invs] : instances_) {
    if (invs.erase(invocation) > 0) return SaveLocked();
  }
  return Status::OK();
}

Status HandleStore::ApplyRecovery(const std::vector<std::string>& instances,
                                  const RecoverResult& result) {
  std::lock_guard<std::mutex> lock(mu_);
  bool changed = false;
  for (size_t i = 0; i < instances.size() && i < result.instances.size(); ++i) {
    if (result.instances[i] == InstanceState::kGone) changed |= instances_.erase(instances[i]) > 0;
  }
  return changed ? SaveLocked() : Status::OK();
}

std::vector<std::string> HandleStore::Instances() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [inst, invs] : instances_) out.push_back(inst);
  return out;
}

std::vector<std::string> HandleStore::Invocations() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [inst, invs] : instances_) out.insert(out.end(), invs.begin(), invs.end());
  return out;
}

}  // namespace augur::plugin
