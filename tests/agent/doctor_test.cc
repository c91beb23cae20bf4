// The checks of `augurctl doctor` against real files, sockets, segments and databases in
// temporary places: each is shown a healthy case and the broken ones it must name, with a
// fix sentence for every failure.
#include "agent/doctor.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "agent/control_server.h"
#include "agent/control_service.h"
#include "agent/temp_dir.h"
#include "agent/temp_segment.h"
#include "mesh/keys.h"
#include "plugin/plugin_client.h"
#include "telemetry/shm_store.h"

namespace augur::agent {
namespace {

using augur::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

void WriteFile(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A failure must come with a fix; the other states with none.
void ExpectFixMatchesState(const DoctorCheck& c) {
  if (c.state == CheckState::kFail || c.state == CheckState::kWarn) {
    EXPECT_FALSE(c.fix.empty()) << c.name << ": " << c.summary;
  } else {
    EXPECT_TRUE(c.fix.empty()) << c.name << ": " << c.fix;
  }
}

// --- btf -------------------------------------------------------------------------------

TEST(DoctorBtfTest, PresentIsOkAndMissingDependsOnTheEbpfMode) {
  TempDir dir;
  WriteFile(dir.Path("vmlinux"), std::string(4096, 'x'));
  EXPECT_EQ(CheckBtf(dir.Path("vmlinux"), EbpfMode::kAuto).state, CheckState::kOk);

  const DoctorCheck on = CheckBtf(dir.Path("missing"), EbpfMode::kOn);
  EXPECT_EQ(on.state, CheckState::kFail);
  EXPECT_THAT(on.summary, HasSubstr(dir.Path("missing")));
  EXPECT_THAT(on.fix, HasSubstr("CONFIG_DEBUG_INFO_BTF"));
  const DoctorCheck autom = CheckBtf(dir.Path("missing"), EbpfMode::kAuto);
  EXPECT_EQ(autom.state, CheckState::kWarn);
  EXPECT_THAT(autom.summary, HasSubstr("procfs"));
  EXPECT_EQ(CheckBtf(dir.Path("missing"), EbpfMode::kOff).state, CheckState::kSkip);
  for (const DoctorCheck& c : {on, autom}) ExpectFixMatchesState(c);
}

// --- bpf -------------------------------------------------------------------------------

TEST(DoctorBpfTest, ReadsCapabilitiesAndJudgesTheRunningAgent) {
  Result<uint64_t> caps = ReadEffectiveCaps(0);
  ASSERT_TRUE(caps) << caps.error().message();
  Result<uid_t> uid = ReadEffectiveUid(getpid());
  ASSERT_TRUE(uid) << uid.error().message();
  EXPECT_EQ(*uid, geteuid());

  EXPECT_EQ(CheckBpfPrivilege(EbpfMode::kOff, {}, -1).state, CheckState::kSkip);
  // This process as "the agent": with root it holds the capabilities, and an agent that
  // writes no eBPF series although it could is a problem worth naming.
  const bool root = geteuid() == 0;
  const DoctorCheck none = CheckBpfPrivilege(EbpfMode::kAuto, {getpid(), geteuid()}, 0);
  ExpectFixMatchesState(none);
  if (root) {
    EXPECT_EQ(none.state, CheckState::kWarn);
    EXPECT_THAT(none.summary, HasSubstr("writes no eBPF series"));
    EXPECT_EQ(CheckBpfPrivilege(EbpfMode::kOn, {getpid(), geteuid()}, 0).state, CheckState::kFail);
    const DoctorCheck some = CheckBpfPrivilege(EbpfMode::kAuto, {getpid(), geteuid()}, 12);
    EXPECT_EQ(some.state, CheckState::kOk) << some.summary;
    EXPECT_THAT(some.summary, HasSubstr("12 series"));
  } else {
    EXPECT_THAT(none.summary, HasSubstr("lacks CAP_BPF"));
  }
}

// --- cgroups ---------------------------------------------------------------------------

constexpr std::string_view kHybrid =
    "31 22 0:28 / /sys/fs/cgroup rw,relatime shared:8 - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    "34 31 0:31 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory\n";

TEST(DoctorCgroupsTest, NamesTheVersionAndWhereEachControllerIs) {
  TempDir dir;
  WriteFile(dir.Path("hybrid"), kHybrid);
  std::filesystem::create_directories(dir.Path("sys/fs/cgroup/unified"));
  WriteFile(dir.Path("sys/fs/cgroup/unified/cgroup.controllers"), "hugetlb\n");
  const DoctorCheck hybrid = CheckCgroups(dir.Path("hybrid"), dir.path());
  EXPECT_EQ(hybrid.state, CheckState::kOk) << hybrid.summary;
  EXPECT_THAT(hybrid.summary, HasSubstr("hybrid"));
  EXPECT_THAT(hybrid.summary, HasSubstr("memory on v1"));
  EXPECT_THAT(::testing::PrintToString(hybrid.details), HasSubstr("hugetlb"));

  WriteFile(dir.Path("v2"), "25 30 0:23 / /cg rw - cgroup2 cgroup2 rw\n");
  std::filesystem::create_directories(dir.Path("cg"));
  WriteFile(dir.Path("cg/cgroup.controllers"), "cpuset cpu io memory pids\n");
  const DoctorCheck v2 = CheckCgroups(dir.Path("v2"), dir.path());
  EXPECT_EQ(v2.state, CheckState::kOk) << v2.summary;
  EXPECT_THAT(v2.summary, HasSubstr("v2 (unified)"));

  // A v2 tree that does not offer memory: the process backend could not limit shards.
  WriteFile(dir.Path("cg/cgroup.controllers"), "cpu pids\n");
  const DoctorCheck no_memory = CheckCgroups(dir.Path("v2"), dir.path());
  EXPECT_EQ(no_memory.state, CheckState::kFail);
  EXPECT_THAT(no_memory.summary, HasSubstr("memory"));
  EXPECT_THAT(no_memory.fix, HasSubstr("subtree_control"));

  WriteFile(dir.Path("none"), "22 28 0:20 / /sys rw - sysfs sysfs rw\n");
  EXPECT_EQ(CheckCgroups(dir.Path("none"), dir.path()).state, CheckState::kFail);
  EXPECT_EQ(CheckCgroups(dir.Path("nope"), dir.path()).state, CheckState::kFail);
  for (const DoctorCheck& c : {hybrid, v2, no_memory}) ExpectFixMatchesState(c);
}

// --- shm -------------------------------------------------------------------------------

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST(DoctorShmTest, MissingLiveStaleAndClosedSegments) {
  augur::testing::TempSegmentName name;
  const DoctorCheck missing = CheckShm(name.name(), 1s);
  EXPECT_EQ(missing.state, CheckState::kFail);
  EXPECT_THAT(missing.summary, HasSubstr("not running"));

  telemetry::StoreOptions so;
  so.name = name.name();
  so.capacity = 16;
  so.max_series = 16;
  auto writer = telemetry::ShmWriter::Create(so);
  ASSERT_TRUE(writer) << writer.error().message();
  (*writer)->Heartbeat(NowNs());
  const DoctorCheck live = CheckShm(name.name(), 1s);
  EXPECT_EQ(live.state, CheckState::kOk) << live.summary;
  EXPECT_THAT(live.summary, HasSubstr(std::to_string(getpid())));

  // A beat ten intervals old: the writer is alive but does not sample.
  (*writer)->Heartbeat(NowNs() - 10'000'000'000);
  const DoctorCheck old = CheckShm(name.name(), 1s);
  EXPECT_EQ(old.state, CheckState::kFail);
  EXPECT_THAT(old.summary, HasSubstr("heartbeat"));

  (*writer)->Close();
  const DoctorCheck closed = CheckShm(name.name(), 1s);
  EXPECT_EQ(closed.state, CheckState::kFail);
  EXPECT_THAT(closed.summary, HasSubstr("closed"));
  for (const DoctorCheck& c : {missing, live, old, closed}) ExpectFixMatchesState(c);
}

// --- plugins ---------------------------------------------------------------------------

TEST(DoctorPluginsTest, EvaluatesWhatAugurdSaysOfItsBackends) {
  plugin::BackendHealth ok;
  ok.name = "process";
  ok.state = plugin::HostState::kUp;
  ok.up = ok.healthy = true;
  ok.reason = plugin::HealthReason::kOk;
  plugin::BackendHealth down = ok;
  down.name = "libvirt";
  down.healthy = false;
  down.reason = plugin::HealthReason::kPluginUnhealthy;
  down.health_detail = "cannot connect to qemu:///system";
  const auto now = std::chrono::system_clock::now();

  const DoctorCheck good = EvaluateBackends({"process"}, BackendsJson({ok}, now));
  EXPECT_EQ(good.state, CheckState::kOk) << good.summary;
  const DoctorCheck bad = EvaluateBackends({"process", "libvirt"}, BackendsJson({ok, down}, now));
  EXPECT_EQ(bad.state, CheckState::kFail);
  EXPECT_THAT(bad.summary, HasSubstr("libvirt"));
  EXPECT_THAT(::testing::PrintToString(bad.details), HasSubstr("qemu:///system"));
  // Enabled in the config but not run at all (augurd started before the config changed).
  const DoctorCheck absent = EvaluateBackends({"process", "mine"}, BackendsJson({ok}, now));
  EXPECT_EQ(absent.state, CheckState::kFail);
  EXPECT_THAT(absent.summary, HasSubstr("mine"));
  EXPECT_EQ(EvaluateBackends({"process"}, "{not json").state, CheckState::kFail);
  for (const DoctorCheck& c : {good, bad, absent}) ExpectFixMatchesState(c);
}

TEST(DoctorPluginsTest, AsksAugurdOverTheControlSocket) {
  TempDir dir;
  plugin::BackendHealth down;
  down.name = "process";
  down.state = plugin::HostState::kRestarting;
  down.reason = plugin::HealthReason::kHostDown;
  down.last_error = "host exited with signal 9";
  ControlServerOptions so;
  so.socket_path = dir.Path("augur.sock");
  so.group = "augur-no-such-group";
  ControlTargets targets;
  targets.workflows_off = "test";
  targets.backends = [&] { return std::vector<plugin::BackendHealth>{down}; };
  auto server = ControlServer::Start(so, [&](const control::Request& r, const PeerCredentials& p) {
    return HandleControl(targets, r, p);
  });
  ASSERT_TRUE(server) << server.error().message();

  const DoctorCheck c = CheckPlugins(so.socket_path, {"process"}, 5s);
  EXPECT_EQ(c.state, CheckState::kFail) << c.summary;
  EXPECT_THAT(::testing::PrintToString(c.details), HasSubstr("host exited with signal 9"));
  // No augurd to ask: said, not failed.
  const DoctorCheck none = CheckPlugins(dir.Path("nobody.sock"), {"process"}, 5s);
  EXPECT_EQ(none.state, CheckState::kSkip);
  EXPECT_THAT(none.summary, HasSubstr("could not ask augurd"));
  EXPECT_EQ(CheckPlugins(dir.Path("nobody.sock"), {}, 5s).state, CheckState::kOk);
}

// --- control socket --------------------------------------------------------------------

void MakeSocket(const std::string& path, mode_t mode, gid_t gid) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(fd);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
  ASSERT_EQ(::chown(path.c_str(), geteuid(), gid), 0);
}

TEST(DoctorControlTest, OwnerGroupAndModeAreChecked) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the socket another group";
  const struct group* daemon_group = ::getgrnam("daemon");
  if (daemon_group == nullptr) GTEST_SKIP() << "no group 'daemon' on this host";
  const gid_t gid = daemon_group->gr_gid;
  TempDir dir;
  const std::string sock = dir.Path("augur.sock");
  MakeSocket(sock, 0660, gid);
  const DoctorCheck good = CheckControlSocket(sock, "daemon", geteuid(), true);
  EXPECT_EQ(good.state, CheckState::kOk) << good.summary;

  ASSERT_EQ(::chmod(sock.c_str(), 0666), 0);
  const DoctorCheck wide = CheckControlSocket(sock, "daemon", geteuid(), true);
  EXPECT_EQ(wide.state, CheckState::kFail);
  EXPECT_THAT(wide.summary, HasSubstr("mode is 0666, want 0660"));

  ASSERT_EQ(::chmod(sock.c_str(), 0660), 0);
  ASSERT_EQ(::chown(sock.c_str(), geteuid(), 0), 0);
  const DoctorCheck group = CheckControlSocket(sock, "daemon", geteuid(), true);
  EXPECT_EQ(group.state, CheckState::kFail);
  EXPECT_THAT(group.summary, HasSubstr("want daemon"));

  const DoctorCheck owner = CheckControlSocket(sock, "root", 65534, true);
  EXPECT_EQ(owner.state, CheckState::kFail);
  EXPECT_THAT(owner.summary, HasSubstr("owner is"));

  const DoctorCheck no_group = CheckControlSocket(sock, "augur-no-such-group", geteuid(), true);
  EXPECT_EQ(no_group.state, CheckState::kFail);
  EXPECT_THAT(no_group.fix, HasSubstr("groupadd --system augur-no-such-group"));

  WriteFile(dir.Path("file"), "");
  EXPECT_EQ(CheckControlSocket(dir.Path("file"), "daemon", geteuid(), true).state,
            CheckState::kFail);
  EXPECT_EQ(CheckControlSocket(dir.Path("none"), "daemon", geteuid(), true).state,
            CheckState::kFail);
  EXPECT_EQ(CheckControlSocket(dir.Path("none"), "daemon", geteuid(), false).state,
            CheckState::kSkip);
  for (const DoctorCheck& c : {good, wide, group, owner, no_group}) ExpectFixMatchesState(c);
}

// --- database --------------------------------------------------------------------------

void MakeDatabase(const std::string& path, int rows) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);"
                         "CREATE INDEX tv ON t(v);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int i = 0; i < rows; ++i) {
    const std::string sql = "INSERT INTO t(v) VALUES ('" + std::string(200, 'a' + i % 26) + "')";
    sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  sqlite3_exec(db, "COMMIT; PRAGMA wal_checkpoint(TRUNCATE);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
}

TEST(DoctorDatabaseTest, QuickCheckFindsACorruptStore) {
  TempDir dir;
  EXPECT_EQ(CheckDatabase(dir.Path("workflows.db")).state, CheckState::kOk);  // not made yet
  EXPECT_EQ(CheckDatabase(dir.Path("workflows.db"), "workflows.enabled is false").state,
            CheckState::kSkip);

  const std::string db = dir.Path("workflows.db");
  MakeDatabase(db, 2000);
  const DoctorCheck good = CheckDatabase(db);
  EXPECT_EQ(good.state, CheckState::kOk) << good.summary;
  EXPECT_THAT(good.summary, HasSubstr("quick_check ok"));

  // Garbage over pages in the middle of the table: the header still says SQLite.
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 * 20);
    const std::string junk(4096 * 10, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  const DoctorCheck damaged = CheckDatabase(db);
  EXPECT_EQ(damaged.state, CheckState::kFail) << damaged.summary;
  EXPECT_THAT(damaged.fix, HasSubstr(".recover"));

  WriteFile(dir.Path("notadb"), std::string(8192, 'x'));
  const DoctorCheck garbage = CheckDatabase(dir.Path("notadb"));
  EXPECT_EQ(garbage.state, CheckState::kFail);
  EXPECT_THAT(garbage.summary, HasSubstr("not a database"));
  for (const DoctorCheck& c : {good, damaged, garbage}) ExpectFixMatchesState(c);
}

// --- seeds and keys --------------------------------------------------------------------

// A listening TCP socket on 127.0.0.1 (closed with the object); port() is its port.
class Listener {
 public:
  Listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~Listener() { Close(); }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// A mesh config over a key pair made by keygen in `dir`, its line in authorized_keys.
MeshConfig MeshIn(const TempDir& dir) {
  mesh::KeygenOptions ko{dir.Path("keys"), "self-host", false};
  auto written = mesh::WriteKeyFiles(ko);
  EXPECT_TRUE(written) << written.error().message();
  MeshConfig m;
  m.enabled = true;
  m.name = "self-host";
  m.key_file = written ? written->secret_path : "";
  m.authorized_keys = dir.Path("authorized_keys");
  auto peer = mesh::GenerateKeyPair();
  EXPECT_TRUE(peer);
  WriteFile(m.authorized_keys, (written ? written->public_line : "") + "\n" +
                                   (peer ? peer->public_z85 : "") + " peer-1\n");
  ::chmod(m.authorized_keys.c_str(), 0644);
  return m;
}

TEST(DoctorSeedsTest, EachSeedMustAnswerAndHaveAKey) {
  TempDir dir;
  MeshConfig m = MeshIn(dir);
  Listener up;
  m.seeds = {"peer-1@127.0.0.1:" + std::to_string(up.port()), "self-host@127.0.0.1:1"};
  const DoctorCheck good = CheckSeeds(m, 2s);
  EXPECT_EQ(good.state, CheckState::kOk) << good.summary;
  EXPECT_THAT(good.summary, HasSubstr("1 seeds reachable"));  // itself left out

  Listener gone;
  const int closed_port = gone.port();
  gone.Close();
  m.seeds = {"peer-1@127.0.0.1:" + std::to_string(closed_port)};
  const DoctorCheck refused = CheckSeeds(m, 2s);
  EXPECT_EQ(refused.state, CheckState::kFail);
  EXPECT_THAT(::testing::PrintToString(refused.details), HasSubstr("refused"));

  m.seeds = {"stranger@127.0.0.1:" + std::to_string(up.port())};
  const DoctorCheck unknown = CheckSeeds(m, 2s);
  EXPECT_EQ(unknown.state, CheckState::kFail);
  EXPECT_THAT(::testing::PrintToString(unknown.details), HasSubstr("no key for 'stranger'"));

  m.seeds = {"peer-1@no-such-host.invalid:7946"};
  const DoctorCheck unresolved = CheckSeeds(m, 2s);
  EXPECT_EQ(unresolved.state, CheckState::kFail);
  EXPECT_THAT(::testing::PrintToString(unresolved.details), HasSubstr("cannot resolve"));

  m.enabled = false;
  EXPECT_EQ(CheckSeeds(m, 2s).state, CheckState::kSkip);
  for (const DoctorCheck& c : {good, refused, unknown, unresolved}) ExpectFixMatchesState(c);
}

TEST(DoctorKeysTest, TheSecretKeyIsPrivateAndOwnedByTheAgent) {
  TempDir dir;
  const MeshConfig m = MeshIn(dir);
  const DoctorCheck good = CheckKeyFiles(m, geteuid());
  EXPECT_EQ(good.state, CheckState::kOk) << good.summary;

  ASSERT_EQ(::chmod(m.key_file.c_str(), 0644), 0);
  const DoctorCheck readable = CheckKeyFiles(m, geteuid());
  EXPECT_EQ(readable.state, CheckState::kFail);
  EXPECT_THAT(readable.summary, HasSubstr("mode 0644"));
  EXPECT_THAT(readable.fix, HasSubstr("chmod 600 " + m.key_file));
  ASSERT_EQ(::chmod(m.key_file.c_str(), 0600), 0);

  const DoctorCheck owner = CheckKeyFiles(m, geteuid() + 4242);
  EXPECT_EQ(owner.state, CheckState::kFail);
  EXPECT_THAT(owner.fix, HasSubstr("chown"));

  ASSERT_EQ(::chmod(m.authorized_keys.c_str(), 0666), 0);
  const DoctorCheck writable = CheckKeyFiles(m, geteuid());
  EXPECT_EQ(writable.state, CheckState::kFail);
  EXPECT_THAT(writable.summary, HasSubstr("may add a key"));
  ASSERT_EQ(::chmod(m.authorized_keys.c_str(), 0644), 0);

  WriteFile(m.key_file, "not a key\n");
  const DoctorCheck bad = CheckKeyFiles(m, geteuid());
  EXPECT_EQ(bad.state, CheckState::kFail) << bad.summary;

  MeshConfig missing = m;
  missing.key_file = dir.Path("nope/host.key");
  const DoctorCheck none = CheckKeyFiles(missing, geteuid());
  EXPECT_EQ(none.state, CheckState::kFail);
  EXPECT_THAT(none.fix, HasSubstr("augurctl keygen"));
  missing.enabled = false;
  EXPECT_EQ(CheckKeyFiles(missing, geteuid()).state, CheckState::kSkip);
  for (const DoctorCheck& c : {good, readable, owner, writable, bad, none}) {
    ExpectFixMatchesState(c);
  }
}

// --- the whole run ---------------------------------------------------------------------

TEST(DoctorRunTest, WithoutAnAgentSaysWhatItCouldNotCheckAndFails) {
  TempDir dir;
  augur::testing::TempSegmentName name;
  DoctorOptions o;
  o.config.telemetry.shm_name = name.name();
  o.config.control.socket = dir.Path("augur.sock");
  o.config.workflows.state_dir = dir.Path("wf");
  o.config.plugins.enabled = {"process"};
  o.btf_path = dir.Path("vmlinux");
  o.config_status = Status::InvalidArgument("a.yaml:3:1: telemetry.intervl: unknown key");
  const std::vector<DoctorCheck> checks = RunDoctor(o);
  std::vector<std::string> names;
  for (const DoctorCheck& c : checks) names.push_back(c.name);
  EXPECT_THAT(names, ::testing::ElementsAre("config", "btf", "bpf", "cgroups", "shm", "plugins",
                                            "control", "database", "seeds", "keys"));
  auto state = [&](std::string_view n) {
    for (const DoctorCheck& c : checks) {
      if (c.name == n) return c.state;
    }
    return CheckState::kOk;
  };
  EXPECT_EQ(state("config"), CheckState::kFail);
  EXPECT_EQ(state("btf"), CheckState::kWarn);
  EXPECT_EQ(state("shm"), CheckState::kFail);
  EXPECT_EQ(state("plugins"), CheckState::kSkip);
  EXPECT_EQ(state("control"), CheckState::kSkip);
  EXPECT_EQ(state("seeds"), CheckState::kSkip);
  EXPECT_EQ(DoctorExitCode(checks), 1);

  const std::string text = RenderDoctorText(checks);
  EXPECT_THAT(text, HasSubstr("[FAIL] shm"));
  EXPECT_THAT(text, HasSubstr("fix: "));
  EXPECT_THAT(text, HasSubstr("telemetry.intervl"));
  const nlohmann::json j = DoctorJson(checks);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["checks"].size(), checks.size());
  EXPECT_EQ(j["checks"][4]["name"], "shm");
  EXPECT_EQ(j["checks"][4]["state"], "fail");
  EXPECT_FALSE(j["checks"][4]["fix"].get<std::string>().empty());
}

}  // namespace
}  // namespace augur::agent
