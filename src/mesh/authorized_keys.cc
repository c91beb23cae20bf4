#include "mesh/authorized_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "mesh/envelope.h"
#include "mesh/keys.h"

namespace augur::mesh {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !IsSpace(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace

Result<AuthorizedKeys> AuthorizedKeys::Parse(std::string_view text, std::string_view origin) {
  AuthorizedKeys keys;
  std::map<std::string, int, std::less<>> line_of;  // key or name -> line it first appeared on
  int line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    const std::vector<std::string_view> f = Fields(line);
    if (f.empty() || f[0].front() == '#') continue;
    auto bad = [&](const std::string& what) {
      return Err(Status::InvalidArgument(fmt::format("{}:{}: {}", origin, line_no, what)));
    };
    if (f.size() < 2) {
      return bad("expected '<z85 public key> <host-name> [# comment]'");
    }
    if (f.size() > 2 && f[2].front() != '#') {
      return bad(fmt::format("unexpected '{}' after the host name (comments start with #)",
                             f[2].substr(0, 64)));
    }
    if (!IsZ85Key(f[0])) {
      return bad(fmt::format("'{}' is not a Z85 public key ({} characters)", f[0].substr(0, 64),
                             kZ85KeyChars));
    }
    if (!IsValidHostName(f[1])) {
      return bad(fmt::format("'{}' is not a host name (1-{} of A-Z a-z 0-9 . _ -)",
                             f[1].substr(0, 64), kMaxHostNameBytes));
    }
    const std::string key(f[0]);
    const std::string name(f[1]);
    if (auto it = keys.by_key_.find(key); it != keys.by_key_.end()) {
      return bad(fmt::format("this key is already listed for host '{}' at line {}", it->second,
                             line_of[key]));
    }
    if (keys.by_name_.count(name) > 0) {
      return bad(fmt::format("host '{}' already has a key at line {} (one key per host)", name,
                             line_of["name:" + name]));
    }
    keys.by_key_.emplace(key, name);
    keys.by_name_.emplace(name, key);
    line_of.emplace(key, line_no);
    line_of.emplace("name:" + name, line_no);
  }
  return keys;
}

const std::string* AuthorizedKeys::NameForKey(std::string_view key_z85) const {
  auto it = by_key_.find(key_z85);
  return it == by_key_.end() ? nullptr : &it->second;
}

const std::string* AuthorizedKeys::KeyForName(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

bool AuthorizedKeysFile::Stamp::operator==(const Stamp& o) const {
  return exists == o.exists && dev == o.dev && ino == o.ino && size == o.size &&
         mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec &&
         ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
}

AuthorizedKeysFile::Stamp AuthorizedKeysFile::StatFile(const std::string& path) {
  struct stat st {};
  Stamp s;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime = st.st_mtim;
  s.ctime = st.st_ctim;
  return s;
}

Result<AuthorizedKeys> AuthorizedKeysFile::ReadAndParse(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    Status s = Status::FromErrno("mesh authorized keys " + path, err);
    if (err == ENOENT) return Err(Status::NotFound(s.message()));
    return Err(s);
  }
  std::string text;
  char buf[65536];
  Status error;
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = Status::FromErrno("read " + path, errno);
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > AuthorizedKeys::kMaxFileBytes) {
      error = Status::InvalidArgument(fmt::format(
          "mesh authorized keys {}: larger than {} bytes", path, AuthorizedKeys::kMaxFileBytes));
      break;
    }
  }
  ::close(fd);
  if (!error.ok()) return Err(error);
  return AuthorizedKeys::Parse(text, path);
}

Result<std::unique_ptr<AuthorizedKeysFile>> AuthorizedKeysFile::Open(std::string path) {
  std::unique_ptr<AuthorizedKeysFile> file(new AuthorizedKeysFile(std::move(path)));
  // Stat before reading: a change made while we read is then seen by the next check.
  file->stamp_ = StatFile(file->path_);
  auto keys = ReadAndParse(file->path_);
  if (!keys) return Err(keys.error());
  file->current_ = std::make_shared<const AuthorizedKeys>(std::move(*keys));
  return file;
}

std::shared_ptr<const AuthorizedKeys> AuthorizedKeysFile::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

Result<bool> AuthorizedKeysFile::ReloadIfChanged() {
  std::lock_guard<std::mutex> lock(mu_);
  const Stamp now = StatFile(path_);
  if (now == stamp_) return false;
  stamp_ = now;
  auto keys = ReadAndParse(path_);
  if (!keys) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    // Once per change of the file, so no rate limit is needed.
    spdlog::error("mesh: {}; keeping the {} authorized keys loaded before", keys.error().message(),
                  current_->size());
    return Err(keys.error());
  }
  spdlog::info("mesh: authorized keys {} reloaded: {} key{} (before: {})", path_, keys->size(),
               keys->size() == 1 ? "" : "s", current_->size());
  current_ = std::make_shared<const AuthorizedKeys>(std::move(*keys));
  reloads_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace augur::mesh
