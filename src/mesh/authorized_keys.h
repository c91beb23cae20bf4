// Authorized keys: the peers this host will talk to, one per line of a file
// (mesh.authorized_keys):
//
//   # comment lines and blank lines are ignored
//   <z85 public key> <host-name> [# comment]
//
// A key authenticates a peer that connects to us (the ZAP handler accepts only listed keys and
// names the connection after the key's host), and is the server key we expect when we connect
// to that host. So a key and a host name each appear once: one key per host, one host per key.
// A file with any bad line is refused whole, with the line named: a typo must not silently
// revoke a host.
//
// AuthorizedKeys is an immutable parsed set. AuthorizedKeysFile re-reads the file when it
// changes; its methods are thread-safe (the transport's ZAP thread and its mesh thread share
// one), and the sets it hands out are immutable and may be kept.
#ifndef AUGUR_MESH_AUTHORIZED_KEYS_H_
#define AUGUR_MESH_AUTHORIZED_KEYS_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::mesh {

class AuthorizedKeys {
 public:
  // Largest file read, to bound what a mistaken path (a log, a device) costs.
  static constexpr size_t kMaxFileBytes = 4 << 20;

  // Parses `text`; `origin` (the path) prefixes error messages: "<origin>:<line>: what".
  static Result<AuthorizedKeys> Parse(std::string_view text, std::string_view origin);

  // The host a Z85 public key belongs to, or nullptr.
  const std::string* NameForKey(std::string_view key_z85) const;
  // A host's Z85 public key, or nullptr.
  const std::string* KeyForName(std::string_view name) const;
  size_t size() const { return by_key_.size(); }

 private:
  std::map<std::string, std::string, std::less<>> by_key_;   // key -> name
  std::map<std::string, std::string, std::less<>> by_name_;  // name -> key
};

class AuthorizedKeysFile {
 public:
  // Reads `path`; fails if it is missing or has a bad line (a host must start with a valid set).
  static Result<std::unique_ptr<AuthorizedKeysFile>> Open(std::string path);

  // The set in force. Never null.
  std::shared_ptr<const AuthorizedKeys> Current() const;

  // Stats the file and re-reads it when its inode, size, mtime or ctime differ from the last
  // read. Returns true when a new set took effect. On error (file gone, unreadable, a bad
  // line) the set in force stays, the error is logged and returned, and the file is not read
  // again until it changes once more. An empty file is a valid set: it revokes every peer.
  Result<bool> ReloadIfChanged();

  const std::string& path() const { return path_; }
  uint64_t reloads() const { return reloads_.load(std::memory_order_relaxed); }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  // What stat says about the file; a change in any field means "read it again".
  struct Stamp {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    timespec ctime{};
    bool operator==(const Stamp& o) const;
  };
  static Stamp StatFile(const std::string& path);
  static Result<AuthorizedKeys> ReadAndParse(const std::string& path);

  explicit AuthorizedKeysFile(std::string path) : path_(std::move(path)) {}

  const std::string path_;
  mutable std::mutex mu_;
  Stamp stamp_;                                   // guarded by mu_
  std::shared_ptr<const AuthorizedKeys> current_;  // guarded by mu_
  std::atomic<uint64_t> reloads_{0}, errors_{0};
};

}  // namespace augur::mesh

#endif  // AUGUR_MESH_AUTHORIZED_KEYS_H_
