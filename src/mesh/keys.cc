#include "mesh/keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>
#include <zmq.h>

#include "augur_paths.h"
#include "mesh/envelope.h"

namespace augur::mesh {
namespace {

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr size_t kMaxKeyFileBytes = 4096;

// Closes a file descriptor on every path out.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() { int fd = fd_; fd_ = -1; return fd; }

 private:
  int fd_;
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Writes `content` to `path` with `mode`: first to a temporary file beside it (so a reader
// never sees a partial key), then rename (replace) or link (fails if `path` exists).
Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode,
                           bool replace) {
  const std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());
  ::unlink(tmp.c_str());  // a leftover of an interrupted keygen of this pid
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (fd.get() < 0) return Status::FromErrno("cannot create " + tmp, errno);
  // open() applied the umask; the mode asked for is the mode wanted.
  if (::fchmod(fd.get(), mode) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("chmod " + tmp, err);
  }
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Status::FromErrno("write " + tmp, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0 || ::close(fd.Release()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("write " + tmp, err);
  }
  if (replace) {
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return Status::FromErrno("rename " + tmp + " to " + path, err);
    }
    return Status::OK();
  }
  const int rc = ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0 && err == EEXIST) {
    return Status::AlreadyExists(path + " exists; --force replaces it");
  }
  if (rc != 0) return Status::FromErrno("link " + tmp + " to " + path, err);
  return Status::OK();
}

}  // namespace

bool IsZ85Key(std::string_view key) {
  if (key.size() != kZ85KeyChars) return false;
  // Every 5 characters are a base-85 number that must fit 32 bits.
  for (size_t i = 0; i < key.size(); i += 5) {
    uint64_t value = 0;
    for (size_t j = i; j < i + 5; ++j) {
      const size_t digit = kZ85Alphabet.find(key[j]);
      if (digit == std::string_view::npos) return false;
      value = value * 85 + digit;
    }
    if (value > UINT32_MAX) return false;
  }
  return true;
}

std::string Z85FromBinaryKey(std::string_view binary) {
  char out[kZ85KeyChars + 1] = {};
  if (binary.size() != kCurveKeyBytes ||
      zmq_z85_encode(out, reinterpret_cast<const uint8_t*>(binary.data()), binary.size()) ==
          nullptr) {
    return "";
  }
  return std::string(out, kZ85KeyChars);
}

Result<KeyPair> GenerateKeyPair() {
  char pub[kZ85KeyChars + 1] = {};
  char sec[kZ85KeyChars + 1] = {};
  if (zmq_curve_keypair(pub, sec) != 0) {
    // ENOTSUP: libzmq built without CURVE (not Debian's, which has libsodium).
    return Err(Status::FromErrno("zmq_curve_keypair", zmq_errno()));
  }
  return KeyPair{std::string(pub, kZ85KeyChars), std::string(sec, kZ85KeyChars)};
}

Result<std::string> PublicKeyFromSecret(std::string_view secret_z85) {
  if (!IsZ85Key(secret_z85)) {
    return Err(Status::InvalidArgument(fmt::format(
        "not a Z85 secret key ({} characters of the Z85 alphabet expected, got {})",
        kZ85KeyChars, secret_z85.size())));
  }
  const std::string sec(secret_z85);
  char pub[kZ85KeyChars + 1] = {};
  if (zmq_curve_public(pub, sec.c_str()) != 0) {
    return Err(Status::FromErrno("zmq_curve_public", zmq_errno()));
  }
  return std::string(pub, kZ85KeyChars);
}

Result<KeyPair> ReadSecretKeyFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    const int err = errno;
    Status s = Status::FromErrno("mesh secret key " + path, err);
    if (err == ENOENT) {
      return Err(Status::NotFound(s.message() + " (augurctl keygen writes one)"));
    }
    return Err(s);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Err(Status::FromErrno("stat " + path, errno));
  if (!S_ISREG(st.st_mode)) {
    return Err(Status::InvalidArgument("mesh secret key " + path + ": not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return Err(Status::FailedPrecondition(fmt::format(
        "mesh secret key {}: mode {:04o} lets group or others read it; chmod 600 {}", path,
        st.st_mode & 07777, path)));
  }
  if (st.st_size > static_cast<off_t>(kMaxKeyFileBytes)) {
    return Err(Status::InvalidArgument(fmt::format(
        "mesh secret key {}: {} bytes, not a key file (at most {})", path, st.st_size,
        kMaxKeyFileBytes)));
  }
  std::string text(kMaxKeyFileBytes, '\0');
  size_t len = 0;
  while (len < text.size()) {
    ssize_t n = ::read(fd.get(), text.data() + len, text.size() - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Err(Status::FromErrno("read " + path, errno));
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  text.resize(len);
  std::string_view rest(text);
  std::string_view key;
  int line_no = 0;
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    if (!key.empty()) {
      return Err(Status::InvalidArgument(fmt::format(
          "mesh secret key {}:{}: a second key line (one key per file)", path, line_no)));
    }
    if (!IsZ85Key(line)) {
      return Err(Status::InvalidArgument(fmt::format(
          "mesh secret key {}:{}: not a Z85 key (40 characters of the Z85 alphabet)", path,
          line_no)));
    }
    key = line;
  }
  if (key.empty()) {
    return Err(Status::InvalidArgument("mesh secret key " + path + ": no key line"));
  }
  auto pub = PublicKeyFromSecret(key);
  if (!pub) return Err(pub.error().Annotate("mesh secret key " + path));
  return KeyPair{std::move(*pub), std::string(key)};
}

Result<KeygenResult> WriteKeyFiles(const KeygenOptions& opts) {
  if (!IsValidHostName(opts.name)) {
    return Err(Status::InvalidArgument(fmt::format(
        "host name '{}' is not valid (1-{} of A-Z a-z 0-9 . _ -, starting with a letter or "
        "digit)",
        opts.name, kMaxHostNameBytes)));
  }
  if (opts.dir.empty()) return Err(Status::InvalidArgument("no directory for the key files"));
  std::error_code ec;
  std::filesystem::create_directories(opts.dir, ec);
  if (ec) return Err(Status::IOError("cannot create " + opts.dir + ": " + ec.message()));
  KeygenResult out;
  out.secret_path = (std::filesystem::path(opts.dir) / "host.key").string();
  out.public_path = (std::filesystem::path(opts.dir) / "host.pub").string();
  if (!opts.force) {
    // Both checked before either is written, so a refusal leaves nothing half done.
    for (const std::string& p : {out.secret_path, out.public_path}) {
      if (std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found) {
        return Err(Status::AlreadyExists(
            p + " exists; refusing to replace a host key (peers know its public half). "
                "--force replaces it"));
      }
    }
  }
  auto keys = GenerateKeyPair();
  if (!keys) return Err(keys.error());
  out.keys = *keys;
  out.public_line = out.keys.public_z85 + " " + opts.name;
  const std::string secret_text = fmt::format(
      "# augur mesh secret key of host {} (augurctl keygen). Keep it private: mode 0600.\n{}\n",
      opts.name, out.keys.secret_z85);
  if (Status s = WriteFileAtomically(out.secret_path, secret_text, 0600, opts.force); !s.ok()) {
    return Err(s);
  }
  if (Status s = WriteFileAtomically(out.public_path, out.public_line + "\n", 0644, opts.force);
      !s.ok()) {
    return Err(s);
  }
  return out;
}

std::string DefaultKeyDir() {
  return std::filesystem::path(AUGUR_DEFAULT_CONFIG).parent_path().string();
}

std::string DefaultHostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "";
  std::string name(buf);
  return IsValidHostName(name) ? name : "";
}

}  // namespace augur::mesh
