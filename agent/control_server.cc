#include "agent/control_server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <list>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "agent/control_frame.h"

namespace augur::agent {

namespace cf = control_frame;

namespace {

std::string Errno(int err) { return std::strerror(err); }

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty()) return Err(Status::InvalidArgument("control socket path is empty"));
  if (path.size() >= sizeof(addr.sun_path)) {
    return Err(Status::InvalidArgument(
        fmt::format("control socket path '{}' is {} bytes; a Unix socket path may be at most {}",
                    path, path.size(), sizeof(addr.sun_path) - 1)));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// The group's gid, or nullopt when there is no such group.
std::optional<gid_t> LookUpGroup(const std::string& name) {
  long hint = ::sysconf(_SC_GETGR_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 4096);
  for (;;) {
    group gr{};
    group* found = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (1u << 24)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0 || found == nullptr) return std::nullopt;
    return found->gr_gid;
  }
}

// Creates the missing directories of `dir` with mode 0755.
Status MakeDirs(const std::filesystem::path& dir) {
  if (dir.empty()) return Status::OK();
  struct stat st{};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status::FailedPrecondition(
          fmt::format("{} exists and is not a directory; cannot put the control socket in it",
                      dir.string()));
    }
    return Status::OK();
  }
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    AUGUR_RETURN_IF_ERROR(MakeDirs(dir.parent_path()));
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(fmt::format("cannot create {} for the control socket", dir.string()),
                             errno);
  }
  // mkdir applies the umask; the directory must be traversable by the group's members.
  if (::chmod(dir.c_str(), 0755) != 0) {
    return Status::FromErrno(fmt::format("cannot chmod 0755 {}", dir.string()), errno);
  }
  return Status::OK();
}

// Removes a stale socket at `path`; refuses a live one or something that is not a socket.
Status ClearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::FromErrno(fmt::format("cannot stat control socket {}", path), errno);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Status::FailedPrecondition(fmt::format(
        "{} exists and is not a socket; refusing to replace it with the control socket "
        "(remove it, or set control.socket to another path)",
        path));
  }
  Fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (probe.fd < 0) return Status::FromErrno("socket(AF_UNIX)", errno);
  if (::connect(probe.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    ucred cred{};
    socklen_t len = sizeof(cred);
    std::string who;
    if (::getsockopt(probe.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0) {
      who = fmt::format(" (pid {})", cred.pid);
    }
    return Status::AlreadyExists(fmt::format(
        "another server{} is answering on the control socket {}: is another augurd running? "
        "Stop it or set control.socket to another path",
        who, path));
  }
  const int err = errno;
  if (err != ECONNREFUSED && err != ENOENT) {
    return Status::FromErrno(
        fmt::format("cannot tell whether control socket {} is in use (connect)", path), err);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno(fmt::format("cannot remove stale control socket {}", path), errno);
  }
  spdlog::info("control: removed stale socket {} (nobody was answering on it)", path);
  return Status::OK();
}

std::string CommandName(const control::Request& r) {
  switch (r.command_case()) {
    case control::Request::kSubmit: return "submit";
    case control::Request::kStatus: return "status";
    case control::Request::kResult: return "result";
    case control::Request::kCancel: return "cancel";
    case control::Request::kBoost: return "boost";
    case control::Request::kHistory: return "history";
    case control::Request::kProfile: return "profile";
    case control::Request::kEvent: return "event";
    case control::Request::kEvents: return "events";
    case control::Request::kPeers: return "peers";
    case control::Request::kBackends: return "backends";
    case control::Request::COMMAND_NOT_SET: break;
  }
  return "none";
}

}  // namespace

struct ControlServer::State {
  ControlServerOptions options;
  ControlHandler handler;
  Fd listen_fd;
  Fd stop_fd;  // an eventfd; written once at Stop and never read, so it stays readable
  uid_t self_uid = 0;
  bool group_known = false;
  gid_t group_gid = 0;
  bool group_access = false;
  dev_t sock_dev = 0;
  ino_t sock_ino = 0;
  std::atomic<uint64_t> denied{0};

  struct Conn {
    Fd fd;
    PeerCredentials peer;
    std::thread thread;
    std::atomic<bool> done{false};
  };
  std::mutex mu;
  std::list<Conn> conns;  // guarded by mu; threads joined by the acceptor or Stop
  std::thread acceptor;
  bool stopped = false;

  void Accept();
  void Serve(Conn* conn);
  void ReapDone();
  bool SendReply(int fd, control::Reply reply, cf::Clock::time_point deadline);
};

bool ControlPeerAllowed(const PeerCredentials& peer, uid_t self_uid, bool group_known,
                        gid_t group_gid) {
  if (peer.uid == 0 || peer.uid == self_uid) return true;
  if (!group_known) return false;
  if (peer.gid == group_gid) return true;
  return std::find(peer.groups.begin(), peer.groups.end(), group_gid) != peer.groups.end();
}

Result<std::vector<gid_t>> ReadProcGroups(pid_t pid) {
  std::string path = fmt::format("/proc/{}/status", pid);
  std::ifstream in(path);
  if (!in) return Err(Status::NotFound(fmt::format("cannot read {}", path)));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("Groups:")) continue;
    std::vector<gid_t> out;
    std::istringstream words(line.substr(7));
    std::string w;
    while (words >> w) {
      unsigned long v = 0;
      auto [p, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
      if (ec != std::errc() || p != w.data() + w.size()) {
        return Err(Status::Corruption(fmt::format("{}: bad group '{}'", path, w)));
      }
      out.push_back(static_cast<gid_t>(v));
    }
    return out;
  }
  return Err(Status::Corruption(fmt::format("{}: no Groups: line", path)));
}

control::Reply ControlErrorReply(Status::Code code, std::string message) {
  control::Reply r;
  r.set_version(kControlVersion);
  r.set_code(static_cast<int32_t>(code));
  r.set_message(std::move(message));
  return r;
}

Result<std::unique_ptr<ControlServer>> ControlServer::Start(const ControlServerOptions& options,
                                                            ControlHandler handler) {
  if (!handler) return Err(Status::InvalidArgument("ControlServer::Start: no handler"));
  auto st = std::make_unique<State>();
  st->options = options;
  st->handler = std::move(handler);
  st->self_uid = ::geteuid();
  const std::string& path = options.socket_path;
  Result<sockaddr_un> addr = UnixAddress(path);
  if (!addr) return Err(addr.error());

  Status dirs = MakeDirs(std::filesystem::path(path).parent_path());
  if (!dirs.ok()) return Err(dirs);
  Status stale = ClearStaleSocket(path, *addr);
  if (!stale.ok()) return Err(stale);

  st->listen_fd = Fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (st->listen_fd.fd < 0) return Err(Status::FromErrno("socket(AF_UNIX)", errno));
  if (::bind(st->listen_fd.fd, reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return Err(Status::FromErrno(fmt::format("cannot bind control socket {}", path), errno));
  }
  // From here until listen() a connect is refused, so the mode set below has no window.
  auto fail = [&](Status s) {
    ::unlink(path.c_str());
    return Err(std::move(s));
  };
  if (std::optional<gid_t> gid = LookUpGroup(options.group)) {
    st->group_known = true;
    st->group_gid = *gid;
    if (::chown(path.c_str(), static_cast<uid_t>(-1), *gid) == 0) {
      st->group_access = true;
    } else {
      spdlog::warn("control: cannot give {} to group '{}' ({}): only uid {} and root can use it",
                   path, options.group, Errno(errno), st->self_uid);
    }
  } else {
    spdlog::warn("control: group '{}' does not exist, so the control socket {} is root-only "
                 "(0600); create it (groupadd {}) and add the users who may run augurctl",
                 options.group, path, options.group);
  }
  if (::chmod(path.c_str(), st->group_access ? 0660 : 0600) != 0) {
    return fail(Status::FromErrno(fmt::format("cannot chmod control socket {}", path), errno));
  }
  struct stat sst{};
  if (::stat(path.c_str(), &sst) == 0) {
    st->sock_dev = sst.st_dev;
    st->sock_ino = sst.st_ino;
  }
  if (::listen(st->listen_fd.fd, 64) != 0) {
    return fail(Status::FromErrno(fmt::format("cannot listen on control socket {}", path), errno));
  }
  st->stop_fd = Fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (st->stop_fd.fd < 0) return fail(Status::FromErrno("eventfd", errno));

  State* raw = st.get();
  st->acceptor = std::thread([raw] { raw->Accept(); });
  spdlog::info("control: listening on {} ({})", path,
               raw->group_access ? fmt::format("0660, group {}", options.group)
                                 : std::string("0600, root only"));
  return std::unique_ptr<ControlServer>(new ControlServer(std::move(st)));
}

ControlServer::ControlServer(std::unique_ptr<State> state) : state_(std::move(state)) {}
ControlServer::~ControlServer() { Stop(); }

const std::string& ControlServer::socket_path() const { return state_->options.socket_path; }
bool ControlServer::group_access() const { return state_->group_access; }
uint64_t ControlServer::denied() const { return state_->denied.load(); }

void ControlServer::Stop() {
  State& st = *state_;
  {
    std::lock_guard lock(st.mu);
    if (st.stopped) return;
    st.stopped = true;
  }
  uint64_t one = 1;
  (void)!::write(st.stop_fd.fd, &one, sizeof(one));
  if (st.acceptor.joinable()) st.acceptor.join();
  // The acceptor is gone: no more connections are added.
  for (State::Conn& c : st.conns) {
    if (c.fd.fd >= 0) ::shutdown(c.fd.fd, SHUT_RDWR);
  }
  for (State::Conn& c : st.conns) {
    if (c.thread.joinable()) c.thread.join();
  }
  st.conns.clear();
  st.listen_fd.reset();
  // Unlink only our own socket: a newer server may have replaced a file we lost.
  struct stat sst{};
  const std::string& path = st.options.socket_path;
  if (::lstat(path.c_str(), &sst) == 0 && sst.st_dev == st.sock_dev && sst.st_ino == st.sock_ino) {
    ::unlink(path.c_str());
  }
  spdlog::info("control: stopped serving {}", path);
}

void ControlServer::State::ReapDone() {
  std::lock_guard lock(mu);
  for (auto it = conns.begin(); it != conns.end();) {
    if (it->done.load()) {
      if (it->thread.joinable()) it->thread.join();
      it = conns.erase(it);
    } else {
      ++it;
    }
  }
}

bool ControlServer::State::SendReply(int fd, control::Reply reply,
                                     cf::Clock::time_point deadline) {
  reply.set_version(kControlVersion);
  std::string bytes;
  if (!reply.SerializeToString(&bytes)) {
    bytes.clear();
    ControlErrorReply(Status::Code::kInternal, "cannot serialize the reply").SerializeToString(&bytes);
  }
  if (bytes.size() > options.max_message_bytes) {
    std::string msg = fmt::format(
        "the reply is {} bytes, over the control socket's limit of {} bytes", bytes.size(),
        options.max_message_bytes);
    spdlog::warn("control: {}", msg);
    bytes.clear();
    ControlErrorReply(Status::Code::kResourceExhausted, msg).SerializeToString(&bytes);
  }
  return cf::WriteFrame(fd, bytes, deadline, stop_fd.fd).io == cf::Io::kOk;
}

void ControlServer::State::Accept() {
  for (;;) {
    pollfd fds[2] = {{listen_fd.fd, POLLIN, 0}, {stop_fd.fd, POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) {
      spdlog::error("control: poll: {}", Errno(errno));
      return;
    }
    if (fds[1].revents & POLLIN) return;
    ReapDone();
    if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
    Fd conn(::accept4(listen_fd.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (conn.fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("control: accept: {}", Errno(errno));
        if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    PeerCredentials peer;
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(conn.fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("control: SO_PEERCRED: {}; closing the connection", Errno(errno));
      continue;
    }
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    if (Result<std::vector<gid_t>> g = ReadProcGroups(cred.pid)) peer.groups = std::move(*g);
    std::lock_guard lock(mu);
    if (conns.size() >= options.max_connections) {
      spdlog::warn("control: {} connections open, the most allowed; refusing pid {} uid {}",
                   conns.size(), peer.pid, peer.uid);
      SendReply(conn.fd,
                ControlErrorReply(Status::Code::kResourceExhausted,
                                  fmt::format("augurd is busy: {} control connections are open, "
                                              "the most it serves at once; try again",
                                              conns.size())),
                cf::Clock::now() + std::chrono::milliseconds(100));
      continue;
    }
    Conn& c = conns.emplace_back();
    c.fd = std::move(conn);
    c.peer = std::move(peer);
    c.thread = std::thread([this, &c] { Serve(&c); });
  }
}

void ControlServer::State::Serve(Conn* conn) {
  const int fd = conn->fd.fd;
  const PeerCredentials& peer = conn->peer;
  const bool allowed = ControlPeerAllowed(peer, self_uid, group_known, group_gid);
  auto deadline = [&] { return cf::Clock::now() + options.io_timeout; };
  // After an error reply: let the client read it (closing with unread input would reset the
  // connection and could lose the reply), then close.
  auto close_after_reply = [&] {
    ::shutdown(fd, SHUT_WR);
    std::string sink;
    auto until = cf::Clock::now() + std::chrono::milliseconds(200);
    char buf[65536];
    size_t drained = 0;
    while (drained < 16 * options.max_message_bytes) {
      pollfd p{fd, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - cf::Clock::now());
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (r <= 0) break;
      drained += static_cast<size_t>(r);
    }
  };
  for (;;) {
    std::string payload;
    cf::ReadOutcome in = cf::ReadFrame(fd, options.max_message_bytes, deadline(), stop_fd.fd, &payload);
    if (in.io == cf::Io::kEof || in.io == cf::Io::kStopped) break;
    if (in.io == cf::Io::kTimeout) {
      spdlog::debug("control: pid {} sent no whole request within {}ms; closing", peer.pid,
                    options.io_timeout.count());
      break;
    }
    if (in.io == cf::Io::kTruncated || in.io == cf::Io::kError) {
      spdlog::debug("control: pid {}: connection ended mid-request", peer.pid);
      break;
    }
    if (in.io == cf::Io::kTooLarge) {
      spdlog::warn("control: pid {} uid {} sent a {}-byte frame, over the {}-byte limit",
                   peer.pid, peer.uid, in.length, options.max_message_bytes);
      SendReply(fd,
                ControlErrorReply(Status::Code::kInvalidArgument,
                                  fmt::format("request frame of {} bytes is over the control "
                                              "socket's limit of {} bytes",
                                              in.length, options.max_message_bytes)),
                deadline());
      close_after_reply();
      break;
    }
    if (!allowed) {
      denied.fetch_add(1);
      spdlog::warn("control: refused pid {} uid {} gid {}: not root nor in group '{}'", peer.pid,
                   peer.uid, peer.gid, options.group);
      SendReply(fd,
                ControlErrorReply(Status::Code::kFailedPrecondition,
                                  fmt::format("permission denied: augurctl needs root or "
                                              "membership in group '{}' (uid {} is neither)",
                                              options.group, peer.uid)),
                deadline());
      close_after_reply();
      break;
    }
    control::Request request;
    if (!request.ParseFromString(payload)) {
      spdlog::warn("control: pid {} sent {} bytes that are not a control Request", peer.pid,
                   payload.size());
      SendReply(fd,
                ControlErrorReply(Status::Code::kInvalidArgument,
                                  fmt::format("malformed request: {} bytes that do not parse as "
                                              "an augur.control.Request",
                                              payload.size())),
                deadline());
      close_after_reply();
      break;
    }
    if (request.version() != kControlVersion) {
      SendReply(fd,
                ControlErrorReply(Status::Code::kInvalidArgument,
                                  fmt::format("control protocol version {} is not supported: "
                                              "this augurd speaks version {} (are augurctl and "
                                              "augurd from different releases?)",
                                              request.version(), kControlVersion)),
                deadline());
      close_after_reply();
      break;
    }
    if (request.command_case() == control::Request::COMMAND_NOT_SET) {
      SendReply(fd,
                ControlErrorReply(Status::Code::kInvalidArgument,
                                  "request names no command this augurd knows (submit, status, "
                                  "result, cancel, boost, history)"),
                deadline());
      close_after_reply();
      break;
    }
    control::Reply reply;
    try {
      reply = handler(request, peer);
    } catch (const std::exception& e) {
      spdlog::error("control: {} handler threw: {}", CommandName(request), e.what());
      reply = ControlErrorReply(Status::Code::kInternal,
                                fmt::format("internal error in {}: {}", CommandName(request), e.what()));
    } catch (...) {
      reply = ControlErrorReply(Status::Code::kInternal,
                                fmt::format("internal error in {}", CommandName(request)));
    }
    if (!SendReply(fd, std::move(reply), deadline())) break;
  }
  // The client sees the end now; the fd itself is closed when the acceptor or Stop() reaps
  // this connection (closing it here would race with Stop()'s shutdown of it).
  ::shutdown(fd, SHUT_RDWR);
  conn->done.store(true);
}

}  // namespace augur::agent
