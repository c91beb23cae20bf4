// ControlServer and CallControl over real Unix sockets in a temporary directory (never
// /run/augur). The access tests fork children that drop to uid 65534 (nobody); they need
// root and skip, saying so, without it.
#include "agent/control_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "agent/control_client.h"
#include "agent/control_frame.h"
#include "agent/temp_dir.h"

namespace augur::agent {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

constexpr uid_t kNobody = 65534;

using augur::testing::TempDir;

// Records calls and answers each command with what it was asked, as JSON.
struct TestHandler {
  std::atomic<int> calls{0};
  std::atomic<uid_t> last_uid{12345};
  milliseconds delay{0};

  ControlHandler Get() {
    return [this](const control::Request& r, const PeerCredentials& peer) {
      calls.fetch_add(1);
      last_uid.store(peer.uid);
      if (delay.count() > 0) std::this_thread::sleep_for(delay);
      control::Reply reply;
      switch (r.command_case()) {
        case control::Request::kSubmit:
          reply.set_json(fmt::format(R"({{"cmd":"submit","yaml":"{}","origin":"{}","wait":{}}})",
                                     r.submit().yaml(), r.submit().origin(), r.submit().wait()));
          break;
        case control::Request::kStatus:
          reply.set_json(fmt::format(R"({{"cmd":"status","workflow":"{}","explain":{}}})",
                                     r.status().workflow(), r.status().explain()));
          break;
        case control::Request::kResult:
          reply.set_json(fmt::format(R"({{"cmd":"result","workflow":"{}","stage":"{}"}})",
                                     r.result().workflow(), r.result().stage()));
          reply.set_output(std::string("\0\x01bytes", 7));
          break;
        case control::Request::kCancel:
          reply.set_json(fmt::format(R"({{"cmd":"cancel","workflow":"{}"}})", r.cancel().workflow()));
          break;
        case control::Request::kBoost:
          reply.set_json(fmt::format(R"({{"cmd":"boost","workflow":"{}","points":{},"for_ms":{}}})",
                                     r.boost().workflow(), r.boost().points(), r.boost().for_ms()));
          break;
        case control::Request::kHistory:
          reply.set_json(fmt::format(R"({{"cmd":"history","workflow":"{}","limit":{}}})",
                                     r.history().workflow(), r.history().limit()));
          break;
        default:
          reply.set_code(static_cast<int>(Status::Code::kInternal));
      }
      reply.set_message("ok");
      return reply;
    };
  }
};

ControlServerOptions Options(const TempDir& dir, std::string group = "augur-no-such-group") {
  ControlServerOptions o;
  o.socket_path = dir.Path("augur.sock");
  o.group = std::move(group);
  o.io_timeout = milliseconds(2000);
  return o;
}

control::Request StatusRequest(std::string workflow = "wf") {
  control::Request r;
  r.mutable_status()->set_workflow(std::move(workflow));
  return r;
}

int RawConnect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads a reply frame from a raw connection.
std::optional<control::Reply> RawReadReply(int fd) {
  std::string payload;
  auto in = control_frame::ReadFrame(fd, 1 << 20, control_frame::Clock::now() + milliseconds(3000),
                                     -1, &payload);
  if (in.io != control_frame::Io::kOk) return std::nullopt;
  control::Reply r;
  if (!r.ParseFromString(payload)) return std::nullopt;
  return r;
}

bool PeerClosed(int fd, milliseconds within) {
  std::string payload;
  auto in = control_frame::ReadFrame(fd, 1 << 20, control_frame::Clock::now() + within, -1, &payload);
  return in.io == control_frame::Io::kEof;
}

TEST(ControlServerTest, RoundTripsEveryCommand) {
  TempDir dir;
  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  const std::string path = (*server)->socket_path();

  std::vector<std::pair<control::Request, std::string>> cases;
  control::Request r;
  r.mutable_submit()->set_yaml("name: x");
  r.mutable_submit()->set_origin("wf.yaml");
  r.mutable_submit()->set_wait(true);
  cases.emplace_back(r, R"({"cmd":"submit","yaml":"name: x","origin":"wf.yaml","wait":true})");
  r.Clear();
  r.mutable_status()->set_workflow("w1");
  r.mutable_status()->set_explain(true);
  cases.emplace_back(r, R"({"cmd":"status","workflow":"w1","explain":true})");
  r.Clear();
  r.mutable_result()->set_workflow("w1");
  r.mutable_result()->set_stage("build");
  cases.emplace_back(r, R"({"cmd":"result","workflow":"w1","stage":"build"})");
  r.Clear();
  r.mutable_cancel()->set_workflow("w2");
  cases.emplace_back(r, R"({"cmd":"cancel","workflow":"w2"})");
  r.Clear();
  r.mutable_boost()->set_workflow("w3");
  r.mutable_boost()->set_points(2.5);
  r.mutable_boost()->set_for_ms(60000);
  cases.emplace_back(r, R"({"cmd":"boost","workflow":"w3","points":2.5,"for_ms":60000})");
  r.Clear();
  r.mutable_history()->set_workflow("w4");
  r.mutable_history()->set_limit(7);
  cases.emplace_back(r, R"({"cmd":"history","workflow":"w4","limit":7})");

  for (const auto& [req, want] : cases) {
    Result<control::Reply> reply = CallControl(path, req, milliseconds(3000));
    ASSERT_TRUE(reply) << reply.error().ToString();
    EXPECT_EQ(reply->version(), kControlVersion);
    EXPECT_EQ(reply->code(), 0);
    EXPECT_EQ(reply->message(), "ok");
    EXPECT_EQ(reply->json(), want);
    if (req.has_result()) {
      EXPECT_EQ(reply->output(), std::string("\0\x01bytes", 7));
    }
  }
  EXPECT_EQ(h.calls.load(), 6);
  EXPECT_EQ(h.last_uid.load(), ::geteuid());
}

TEST(ControlServerTest, ServesSeveralRequestsOnOneConnection) {
  TempDir dir;
  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  int fd = RawConnect((*server)->socket_path());
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3; ++i) {
    control::Request req = StatusRequest("w" + std::to_string(i));
    req.set_version(kControlVersion);
    ASSERT_EQ(control_frame::WriteFrame(fd, req.SerializeAsString(),
                                        control_frame::Clock::now() + milliseconds(1000), -1)
                  .io,
              control_frame::Io::kOk);
    auto reply = RawReadReply(fd);
    ASSERT_TRUE(reply);
    EXPECT_THAT(reply->json(), HasSubstr("\"w" + std::to_string(i) + "\""));
  }
  ::close(fd);
  EXPECT_EQ(h.calls.load(), 3);
}

TEST(ControlServerTest, AnotherVersionGetsAClearError) {
  TempDir dir;
  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  control::Request req = StatusRequest();
  req.set_version(2);
  Result<control::Reply> reply = CallControl((*server)->socket_path(), req, milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->code(), static_cast<int>(Status::Code::kInvalidArgument));
  EXPECT_EQ(reply->message(),
            "control protocol version 2 is not supported: this augurd speaks version 1 (are "
            "augurctl and augurd from different releases?)");
  EXPECT_EQ(h.calls.load(), 0);
}

TEST(ControlServerTest, ARequestWithoutACommandGetsAnError) {
  TempDir dir;
  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  Result<control::Reply> reply =
      CallControl((*server)->socket_path(), control::Request(), milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->code(), static_cast<int>(Status::Code::kInvalidArgument));
  EXPECT_THAT(reply->message(), HasSubstr("names no command"));
  EXPECT_EQ(h.calls.load(), 0);
}

TEST(ControlServerTest, OversizeAndGarbageFramesGetErrorRepliesAndTheServerKeepsServing) {
  TempDir dir;
  TestHandler h;
  ControlServerOptions o = Options(dir);
  o.max_message_bytes = 1024;
  auto server = ControlServer::Start(o, h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  const std::string path = (*server)->socket_path();

  {  // A length prefix over the limit; the body never comes.
    int fd = RawConnect(path);
    ASSERT_GE(fd, 0);
    const unsigned char prefix[4] = {0x00, 0x00, 0x50, 0x00};  // 5 MiB, little-endian
    ASSERT_EQ(::send(fd, prefix, 4, MSG_NOSIGNAL), 4);
    auto reply = RawReadReply(fd);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->code(), static_cast<int>(Status::Code::kInvalidArgument));
    EXPECT_EQ(reply->message(),
              "request frame of 5242880 bytes is over the control socket's limit of 1024 bytes");
    EXPECT_TRUE(PeerClosed(fd, milliseconds(2000)));
    ::close(fd);
  }
  {  // Bytes that are not a Request (an unterminated varint).
    int fd = RawConnect(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(control_frame::WriteFrame(fd, "\xff\xff\xff\xff",
                                        control_frame::Clock::now() + milliseconds(1000), -1)
                  .io,
              control_frame::Io::kOk);
    auto reply = RawReadReply(fd);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->code(), static_cast<int>(Status::Code::kInvalidArgument));
    EXPECT_EQ(reply->message(),
              "malformed request: 4 bytes that do not parse as an augur.control.Request");
    EXPECT_TRUE(PeerClosed(fd, milliseconds(2000)));
    ::close(fd);
  }
  {  // A client that hangs up mid-frame.
    int fd = RawConnect(path);
    ASSERT_GE(fd, 0);
    const unsigned char prefix[4] = {100, 0, 0, 0};
    ASSERT_EQ(::send(fd, prefix, 4, MSG_NOSIGNAL), 4);
    ASSERT_EQ(::send(fd, "abc", 3, MSG_NOSIGNAL), 3);
    ::close(fd);
  }
  // The client's own limit is the default 4 MiB, so a 2 KiB request reaches this server
  // (limit 1 KiB), which refuses it with a reply.
  control::Request big;
  big.mutable_submit()->set_yaml(std::string(2048, 'x'));
  Result<control::Reply> too_big = CallControl(path, big, milliseconds(3000));
  ASSERT_TRUE(too_big) << too_big.error().ToString();
  EXPECT_THAT(too_big->message(), HasSubstr("over the control socket's limit of 1024 bytes"));

  Result<control::Reply> reply = CallControl(path, StatusRequest(), milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(reply->code(), 0);
  EXPECT_EQ(h.calls.load(), 1);
}

TEST(ControlServerTest, TheClientRefusesARequestOverFourMiB) {
  control::Request big;
  big.mutable_submit()->set_yaml(std::string(kDefaultControlMaxMessageBytes + 1, 'x'));
  Result<control::Reply> r = CallControl("/nonexistent/augur.sock", big, milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsInvalidArgument()) << r.error().ToString();
}

TEST(ControlServerTest, ASlowClientDoesNotHoldUpOthersAndIsClosedAtTheTimeout) {
  TempDir dir;
  TestHandler h;
  ControlServerOptions o = Options(dir);
  o.io_timeout = milliseconds(300);
  auto server = ControlServer::Start(o, h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  const std::string path = (*server)->socket_path();
  int stuck = RawConnect(path);
  ASSERT_GE(stuck, 0);
  ASSERT_EQ(::send(stuck, "\x10", 1, MSG_NOSIGNAL), 1);  // a third of a prefix, then nothing
  auto t0 = std::chrono::steady_clock::now();
  Result<control::Reply> reply = CallControl(path, StatusRequest(), milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(250));
  EXPECT_TRUE(PeerClosed(stuck, milliseconds(2000)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(250));
  ::close(stuck);
}

TEST(ControlServerTest, ASlowHandlerHoldsUpOnlyItsOwnConnection) {
  TempDir dir;
  std::atomic<bool> release{false};
  std::atomic<int> calls{0};
  auto server = ControlServer::Start(
      Options(dir), [&](const control::Request& r, const PeerCredentials&) {
        calls.fetch_add(1);
        if (r.has_submit()) {
          while (!release.load()) std::this_thread::sleep_for(milliseconds(5));
        }
        return control::Reply();
      });
  ASSERT_TRUE(server) << server.error().ToString();
  const std::string path = (*server)->socket_path();
  std::thread waiter([&] {
    control::Request s;
    s.mutable_submit()->set_wait(true);
    Result<control::Reply> r = CallControl(path, s, milliseconds(5000));
    EXPECT_TRUE(r) << r.error().ToString();
  });
  while (calls.load() == 0) std::this_thread::sleep_for(milliseconds(5));
  Result<control::Reply> reply = CallControl(path, StatusRequest(), milliseconds(1000));
  EXPECT_TRUE(reply) << reply.error().ToString();
  release.store(true);
  waiter.join();
}

TEST(ControlServerTest, TheClientTimesOutOnAServerThatDoesNotAnswer) {
  TempDir dir;
  TestHandler h;
  h.delay = milliseconds(600);
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  Result<control::Reply> r = CallControl((*server)->socket_path(), StatusRequest(), milliseconds(100));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsUnavailable()) << r.error().ToString();
  EXPECT_EQ(r.error().message(),
            fmt::format("no reply from augurd on {} within 100ms (busy or hung? journalctl -u "
                        "augurd)",
                        (*server)->socket_path()));
}

TEST(ControlServerTest, AStaleSocketFileIsReplaced) {
  TempDir dir;
  const std::string path = dir.Path("augur.sock");
  {  // A socket bound and abandoned, as by a crashed augurd.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(fs::is_socket(path));
  Result<control::Reply> stale = CallControl(path, StatusRequest(), milliseconds(500));
  ASSERT_FALSE(stale);
  EXPECT_TRUE(stale.error().IsUnavailable()) << stale.error().ToString();
  EXPECT_THAT(stale.error().message(), HasSubstr("nobody is answering"));

  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  Result<control::Reply> reply = CallControl(path, StatusRequest(), milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(h.calls.load(), 1);
}

TEST(ControlServerTest, ASecondServerOnALiveSocketRefuses) {
  TempDir dir;
  TestHandler h1, h2;
  auto first = ControlServer::Start(Options(dir), h1.Get());
  ASSERT_TRUE(first) << first.error().ToString();
  auto second = ControlServer::Start(Options(dir), h2.Get());
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.error().IsAlreadyExists()) << second.error().ToString();
  EXPECT_THAT(second.error().message(),
              HasSubstr(fmt::format("(pid {}) is answering on the control socket {}", ::getpid(),
                                    (*first)->socket_path())));
  // The first keeps its socket.
  Result<control::Reply> reply = CallControl((*first)->socket_path(), StatusRequest(), milliseconds(3000));
  ASSERT_TRUE(reply) << reply.error().ToString();
  EXPECT_EQ(h1.calls.load(), 1);
  EXPECT_EQ(h2.calls.load(), 0);
}

TEST(ControlServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  TempDir dir;
  const std::string path = dir.Path("augur.sock");
  { std::FILE* f = std::fopen(path.c_str(), "w"); ASSERT_NE(f, nullptr); std::fclose(f); }
  TestHandler h;
  auto server = ControlServer::Start(Options(dir), h.Get());
  ASSERT_FALSE(server);
  EXPECT_EQ(server.error().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(server.error().message(), HasSubstr("exists and is not a socket"));
  EXPECT_TRUE(fs::is_regular_file(path));
}

TEST(ControlServerTest, CreatesTheDirectoryAndStopRemovesTheSocket) {
  TempDir dir;
  ControlServerOptions o = Options(dir);
  o.socket_path = dir.Path("run/augur/augur.sock");
  TestHandler h;
  auto server = ControlServer::Start(o, h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  struct stat st{};
  ASSERT_EQ(::stat(dir.Path("run/augur").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat(o.socket_path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_FALSE((*server)->group_access());  // the group does not exist
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  (*server)->Stop();
  EXPECT_FALSE(fs::exists(o.socket_path));
  (*server)->Stop();  // idempotent
  Result<control::Reply> r = CallControl(o.socket_path, StatusRequest(), milliseconds(500));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().IsNotFound());
  EXPECT_EQ(r.error().message(),
            fmt::format("no control socket at {}: is augurd running? (systemctl status augurd)",
                        o.socket_path));
}

TEST(ControlServerTest, StopsPromptlyWithIdleClientsConnected) {
  TempDir dir;
  TestHandler h;
  ControlServerOptions o = Options(dir);
  o.io_timeout = milliseconds(30'000);
  auto server = ControlServer::Start(o, h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  int fd = RawConnect((*server)->socket_path());
  ASSERT_GE(fd, 0);
  std::this_thread::sleep_for(milliseconds(50));
  auto t0 = std::chrono::steady_clock::now();
  (*server)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, milliseconds(2000));
  ::close(fd);
}

TEST(ControlServerTest, RefusesConnectionsOverTheCapWithABusyReply) {
  TempDir dir;
  TestHandler h;
  ControlServerOptions o = Options(dir);
  o.max_connections = 1;
  auto server = ControlServer::Start(o, h.Get());
  ASSERT_TRUE(server) << server.error().ToString();
  int first = RawConnect((*server)->socket_path());
  ASSERT_GE(first, 0);
  std::this_thread::sleep_for(milliseconds(100));  // accepted and being served
  Result<control::Reply> r = CallControl((*server)->socket_path(), StatusRequest(), milliseconds(2000));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->code(), static_cast<int>(Status::Code::kResourceExhausted));
  EXPECT_THAT(r->message(), HasSubstr("augurd is busy"));
  ::close(first);
}

TEST(ControlPeerTest, TheAccessRule) {
  PeerCredentials root{.pid = 1, .uid = 0, .gid = 0, .groups = {}};
  PeerCredentials nobody{.pid = 1, .uid = kNobody, .gid = kNobody, .groups = {}};
  EXPECT_TRUE(ControlPeerAllowed(root, 1000, false, 0));
  EXPECT_FALSE(ControlPeerAllowed(nobody, 1000, false, 0));
  EXPECT_FALSE(ControlPeerAllowed(nobody, 1000, true, 4242));
  EXPECT_TRUE(ControlPeerAllowed(nobody, kNobody, false, 0));  // augurd's own uid
  PeerCredentials primary = nobody;
  primary.gid = 4242;
  EXPECT_TRUE(ControlPeerAllowed(primary, 1000, true, 4242));
  PeerCredentials supplementary = nobody;
  supplementary.groups = {10, 4242};
  EXPECT_TRUE(ControlPeerAllowed(supplementary, 1000, true, 4242));
  EXPECT_FALSE(ControlPeerAllowed(supplementary, 1000, false, 4242));
}

TEST(ControlPeerTest, ReadsTheSupplementaryGroupsOfAProcess) {
  Result<std::vector<gid_t>> g = ReadProcGroups(::getpid());
  ASSERT_TRUE(g) << g.error().ToString();
  std::vector<gid_t> want(static_cast<size_t>(::getgroups(0, nullptr)));
  ::getgroups(static_cast<int>(want.size()), want.data());
  std::sort(want.begin(), want.end());
  std::vector<gid_t> got = *g;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(ReadProcGroups(-5));
}

// What a child process got from CallControl.
struct ChildOutcome {
  bool transport_ok = false;
  int code = -1;  // Reply.code, or the Status code of the error
  std::string message;
};

// Forks a child that takes on uid/gid/groups and calls the server.
ChildOutcome CallAs(const std::string& path, uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  int pipefd[2];
  EXPECT_EQ(::pipe(pipefd), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    std::string out;
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      out = "X\n-1\ncannot drop privileges";
    } else {
      Result<control::Reply> r = CallControl(path, StatusRequest(), milliseconds(3000));
      if (r) {
        out = fmt::format("R\n{}\n{}", r->code(), r->message());
      } else {
        out = fmt::format("E\n{}\n{}", static_cast<int>(r.error().code()), r.error().message());
      }
    }
    (void)!::write(pipefd[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ChildOutcome o;
  size_t a = text.find('\n');
  size_t b = a == std::string::npos ? a : text.find('\n', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    o.message = "child wrote: " + text;
    return o;
  }
  o.transport_ok = text.substr(0, a) == "R";
  o.code = std::atoi(text.substr(a + 1, b - a - 1).c_str());
  o.message = text.substr(b + 1);
  if (text[0] == 'X') o.message = "child: " + o.message;
  return o;
}

// A group for the membership tests: `augur` when the host has it, else a temporary one.
class TestGroup {
 public:
  TestGroup() {
    if (std::optional<gid_t> g = Lookup("augur")) {
      name_ = "augur";
      gid_ = *g;
      return;
    }
    name_ = fmt::format("augur-test-{}", ::getpid());
    if (std::system(fmt::format("groupadd -f {} >/dev/null 2>&1", name_).c_str()) != 0) return;
    created_ = true;
    if (std::optional<gid_t> g = Lookup(name_)) gid_ = *g;
  }
  ~TestGroup() {
    if (created_) (void)!std::system(fmt::format("groupdel {} >/dev/null 2>&1", name_).c_str());
  }
  bool ok() const { return gid_.has_value(); }
  const std::string& name() const { return name_; }
  gid_t gid() const { return *gid_; }

 private:
  static std::optional<gid_t> Lookup(const std::string& name) {
    group* g = ::getgrnam(name.c_str());
    if (g == nullptr) return std::nullopt;
    return g->gr_gid;
  }
  std::string name_;
  std::optional<gid_t> gid_;
  bool created_ = false;
};

class ControlAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run children as uid 65534 (nobody)";
    group_ = std::make_unique<TestGroup>();
    if (!group_->ok()) GTEST_SKIP() << "cannot create a test group (groupadd failed)";
    server_ = ControlServer::Start(Options(dir_, group_->name()), handler_.Get());
    ASSERT_TRUE(server_) << server_.error().ToString();
    ASSERT_TRUE((*server_)->group_access());
    struct stat st{};
    ASSERT_EQ(::stat((*server_)->socket_path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0660u);
    EXPECT_EQ(st.st_gid, group_->gid());
  }
  void TearDown() override {
    if (server_ && *server_) (*server_)->Stop();
  }
  TempDir dir_;
  TestHandler handler_;
  std::unique_ptr<TestGroup> group_;
  Result<std::unique_ptr<ControlServer>> server_ = Err(Status::Internal("not started"));
};

TEST_F(ControlAccessTest, RootIsAllowed) {
  ChildOutcome o = CallAs((*server_)->socket_path(), 0, 0, {0});
  ASSERT_TRUE(o.transport_ok) << o.message;
  EXPECT_EQ(o.code, 0) << o.message;
  EXPECT_EQ(handler_.calls.load(), 1);
  EXPECT_EQ(handler_.last_uid.load(), 0u);
}

TEST_F(ControlAccessTest, AnUnprivilegedUserCannotConnect) {
  // 0660 root:<group> keeps nobody out at connect().
  ChildOutcome o = CallAs((*server_)->socket_path(), kNobody, kNobody, {});
  EXPECT_FALSE(o.transport_ok);
  EXPECT_EQ(o.code, static_cast<int>(Status::Code::kFailedPrecondition)) << o.message;
  EXPECT_EQ(o.message, fmt::format("cannot connect to {}: permission denied (root or group augur)",
                                   (*server_)->socket_path()));
  EXPECT_EQ(handler_.calls.load(), 0);
}

TEST_F(ControlAccessTest, AnUnprivilegedUserWhoReachesTheSocketIsRefusedByTheServer) {
  // Were the file mode ever too open, SO_PEERCRED still keeps nobody out.
  ASSERT_EQ(::chmod((*server_)->socket_path().c_str(), 0666), 0);
  ChildOutcome o = CallAs((*server_)->socket_path(), kNobody, kNobody, {});
  ASSERT_TRUE(o.transport_ok) << o.message;
  EXPECT_EQ(o.code, static_cast<int>(Status::Code::kFailedPrecondition));
  EXPECT_EQ(o.message, fmt::format("permission denied: augurctl needs root or membership in group "
                                   "'{}' (uid 65534 is neither)",
                                   group_->name()));
  EXPECT_EQ(handler_.calls.load(), 0);
  EXPECT_EQ((*server_)->denied(), 1u);
}

TEST_F(ControlAccessTest, AMemberOfTheGroupIsAllowedBySupplementaryGroup) {
  ChildOutcome o = CallAs((*server_)->socket_path(), kNobody, kNobody, {group_->gid()});
  ASSERT_TRUE(o.transport_ok) << o.message;
  EXPECT_EQ(o.code, 0) << o.message;
  EXPECT_EQ(handler_.calls.load(), 1);
  EXPECT_EQ(handler_.last_uid.load(), kNobody);
}

TEST_F(ControlAccessTest, AMemberOfTheGroupIsAllowedByPrimaryGroup) {
  ChildOutcome o = CallAs((*server_)->socket_path(), kNobody, group_->gid(), {});
  ASSERT_TRUE(o.transport_ok) << o.message;
  EXPECT_EQ(o.code, 0) << o.message;
  EXPECT_EQ(handler_.calls.load(), 1);
}

}  // namespace
}  // namespace augur::agent
