// Host keys for the mesh: a CurveZMQ key pair (Curve25519, written in Z85 as ZeroMQ does),
// the secret key file the transport reads, and what `augurctl keygen` writes:
//   DIR/host.key  the secret key, mode 0600: comment lines (#) and one line of 40 Z85 chars
//   DIR/host.pub  one line to paste into every peer's authorized_keys: "<z85 public> <name>"
//
// Thread safety: free functions with no shared state; safe from any thread.
#ifndef AUGUR_MESH_KEYS_H_
#define AUGUR_MESH_KEYS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "augur/status.h"

namespace augur::mesh {

// A Curve25519 key is 32 bytes, 40 characters in Z85.
inline constexpr size_t kZ85KeyChars = 40;
inline constexpr size_t kCurveKeyBytes = 32;

struct KeyPair {
  std::string public_z85;
  std::string secret_z85;
};

// True when `key` is 40 Z85 characters that decode to a 32-byte key.
bool IsZ85Key(std::string_view key);
// The Z85 text of a 32-byte binary key (as ZAP hands over a client's key).
// REQUIRES: binary.size() == kCurveKeyBytes.
std::string Z85FromBinaryKey(std::string_view binary);

// A fresh key pair from libzmq (libsodium's randomness).
Result<KeyPair> GenerateKeyPair();
// The public key that belongs to a Z85 secret key.
Result<std::string> PublicKeyFromSecret(std::string_view secret_z85);

// Reads a secret key file (as keygen writes it) and derives its public key. Refuses a file
// that group or others may read, as ssh does: the key would be no secret.
Result<KeyPair> ReadSecretKeyFile(const std::string& path);

struct KeygenOptions {
  std::string dir;      // created if missing. Default (augurctl): DefaultKeyDir()
  std::string name;     // the host name peers will know this key by. Default: DefaultHostName()
  bool force = false;   // replace existing files; without it an existing key is never touched
};

struct KeygenResult {
  std::string secret_path;   // DIR/host.key
  std::string public_path;   // DIR/host.pub
  std::string public_line;   // "<z85 public> <name>", the line host.pub holds
  KeyPair keys;
};

// Generates a key pair and writes DIR/host.key (0600) and DIR/host.pub (0644). Each file is
// written to a temporary name and then linked into place, so a reader never sees half a key
// and, without `force`, an existing file is never replaced (AlreadyExists names it).
Result<KeygenResult> WriteKeyFiles(const KeygenOptions& opts);

// The directory of augurd's default config file (e.g. /etc/augur): where keygen writes.
std::string DefaultKeyDir();
// This machine's host name (gethostname), or "" if it has none that IsValidHostName accepts.
std::string DefaultHostName();

}  // namespace augur::mesh

#endif  // AUGUR_MESH_KEYS_H_
