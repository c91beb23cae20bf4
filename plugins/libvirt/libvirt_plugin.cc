// augur-libvirt.so: instances are libvirt domains defined from a template.
//
//   provision = define (or take a pre-warmed domain) + start
//   resize    = live vCPU and memory change, within the maxima set at define time
//   release   = destroy + undefine
//   describe  = node info (virNodeGetInfo) minus what running augur domains hold
//   prewarm   = define, not start, N domains that provision then renames and starts
//   recover   = look the domains up again by name (the instance handle)
//   run       = the QEMU guest agent (guest-exec / guest-exec-status), only on the qemu
//               driver; every other driver answers AUGUR_ERR_UNSUPPORTED saying why
//   I/O       = bytes_read / bytes_written of a task are what the domain's virtual disks
//               read and wrote (virDomainBlockStats, summed over its disks: disk_io.h) from
//               run() to the poll that sees the task end: guest page-cache hits are not in
//               them, and everything else the guest does in that time is (the instance is
//               the unit of accounting, as CPU is for the process backend). A domain
//               without disks, or a driver without block statistics, gives 0. After a
//               restart the baseline is lost and counting is from the domain's start.
//
// libvirt is the source of truth: the plugin keeps no table of its own instances, it asks
// libvirt (domains whose names start with name_prefix), so a restart loses nothing.
//
// Config keys (plugins.config.libvirt):
//   uri          connection URI (default qemu:///system; tests use test:///...)
//   template     path of a domain XML template (default: domain-template.xml, compiled in)
//   name_prefix  prefix of every domain this plugin owns (default "augur-")
//   domain_type  <domain type=...> (default: "test" on the test driver, else "kvm")
//   max_vcpus, max_memory_mb
//                the ceilings a domain is defined with, which bound live resize (default:
//                the node's CPUs and memory)
//
// Threading and errors: one virConnectPtr per plugin, every use of it under one mutex.
// libvirt's default error handler prints to stderr; a silent handler replaces it and
// messages come from virGetLastError() (thread-local in libvirt) into last_error.
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "augur/plugin.h"
#include "disk_io.h"
#include "plugin_shim.h"

namespace augur_libvirt {
namespace {

using augur_shim::Fail;
using augur_shim::Str;

constexpr char kVersion[] = "0.1.0";
constexpr char kDefaultTemplate[] =
#include "domain_template.inc"
    ;
constexpr char kPoolInfix[] = "pool-";  // pre-warmed domains: <prefix>pool-<n>
constexpr size_t kMaxNameLen = 64;
constexpr int kAgentTimeoutS = 5;

void SilentErrorHandler(void*, virErrorPtr) {}

// libvirt's last error on this thread as an augur_rc plus message.
[[noreturn]] void LibvirtFail(const std::string& what) {
  virErrorPtr err = virGetLastError();
  std::string msg = what + ": " + (err && err->message ? err->message : "unknown libvirt error");
  augur_rc rc = AUGUR_ERR_IO;
  if (err) {
    switch (err->code) {
      case VIR_ERR_NO_DOMAIN: rc = AUGUR_ERR_NOT_FOUND; break;
      case VIR_ERR_NO_SUPPORT:
      case VIR_ERR_OPERATION_UNSUPPORTED: rc = AUGUR_ERR_UNSUPPORTED; break;
      case VIR_ERR_AGENT_UNRESPONSIVE:
      case VIR_ERR_OPERATION_TIMEOUT: rc = AUGUR_ERR_BUSY; break;
      case VIR_ERR_XML_ERROR:
      case VIR_ERR_XML_DETAIL:
      case VIR_ERR_INVALID_ARG: rc = AUGUR_ERR_INVALID; break;
      default: break;
    }
  }
  virResetLastError();
  Fail(rc, msg);
}

// Owning wrappers for libvirt objects.
struct DomainDeleter {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Domain = std::unique_ptr<virDomain, DomainDeleter>;

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

// The raw value of "key" in a guest-agent reply. The replies of guest-exec and
// guest-exec-status are flat objects inside {"return": {...}} whose keys are unique, which
// is all this needs; a general JSON parser would be the only non-libvirt dependency.
std::optional<std::string> JsonField(const std::string& json, const std::string& key) {
  size_t pos = json.find("\"" + key + "\"");
  if (pos == std::string::npos) return std::nullopt;
  pos = json.find(':', pos);
  if (pos == std::string::npos) return std::nullopt;
  ++pos;
  while (pos < json.size() && std::isspace(static_cast<unsigned char>(json[pos]))) ++pos;
  if (pos < json.size() && json[pos] == '"') {
    size_t end = json.find('"', pos + 1);
    return json.substr(pos + 1, end - pos - 1);  // base64 and numbers: no escapes inside
  }
  size_t end = json.find_first_of(",}", pos);
  return json.substr(pos, end - pos);
}

std::string Base64Decode(const std::string& in) {
  static const std::string chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int val = 0, bits = -8;
  for (char c : in) {
    size_t d = chars.find(c);
    if (d == std::string::npos) continue;  // '=' padding, line breaks
    val = (val << 6) + static_cast<int>(d);
    bits += 6;
    if (bits >= 0) {
      out += static_cast<char>((val >> bits) & 0xff);
      bits -= 8;
    }
  }
  return out;
}

int64_t NowNs(const augur_host_api* host) {
  if (host->now_ns != nullptr) return host->now_ns(host->host_ctx);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint64_t ParseCount(const char* key, const char* value) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v == 0) {
    Fail(AUGUR_ERR_INVALID, std::string(key) + " must be a whole number > 0, got '" + value + "'");
  }
  return v;
}

// What a running domain has.
struct DomainShape {
  unsigned vcpus = 0;
  uint64_t memory_kib = 0;
  bool active = false;
};

// A task started through the guest agent (qemu driver only).
struct GuestTask {
  int64_t started_ns = 0;
  std::string stdout_path, stderr_path;
  bool cancelled = false;
  DiskBytes base;        // the domain's disk totals at run(); zero after a restart
  uint64_t read = 0;     // the counters reported so far (they never go down)
  uint64_t written = 0;
  // The status once the agent reported the end: the agent forgets a process after saying
  // it exited, so later polls answer from here.
  std::optional<augur_task_status> final;
};

}  // namespace

class LibvirtBackend {
 public:
  explicit LibvirtBackend(const augur_host_api* host) : host_(host) {
    // CBinding::Init has checked `host` (non-null, struct_size) before constructing us.
    augur_shim::RejectUnknownKeys(host, "libvirt", {"uri", "template", "name_prefix",
                                                    "domain_type", "max_vcpus", "max_memory_mb"});
    auto cfg = [&](const char* key, const char* def) {
      const char* v = augur_shim::ConfigValue(host, key);
      return std::string(v && *v ? v : def);
    };
    uri_ = cfg("uri", "qemu:///system");
    prefix_ = cfg("name_prefix", "augur-");
    template_ = kDefaultTemplate;
    if (const char* path = augur_shim::ConfigValue(host, "template"); path && *path) {
      std::ifstream in(path);
      if (!in) Fail(AUGUR_ERR_INVALID, std::string("cannot read template ") + path);
      std::stringstream ss;
      ss << in.rdbuf();
      template_ = ss.str();
    }
    if (template_.find("@NAME@") == std::string::npos) {
      Fail(AUGUR_ERR_INVALID, "the domain template has no @NAME@ placeholder");
    }

    // Process-wide: set before the first connection so even a failed open prints nothing.
    virSetErrorFunc(nullptr, SilentErrorHandler);
    Connect();
    try {
      ReadDriver(cfg("domain_type", ""));
    } catch (...) {
      virConnectClose(conn_);  // the destructor does not run for a throwing constructor
      throw;
    }
  }

  ~LibvirtBackend() {
    if (conn_ != nullptr) virConnectClose(conn_);
  }

  augur_shim::ErrorSlot& errors() { return errors_; }

 private:
  // What the connection is: driver name, node capacity, the ceilings domains get, labels.
  void ReadDriver(const std::string& domain_type) {
    const augur_host_api* host = host_;
    const char* type = virConnectGetType(conn_);
    if (type == nullptr) LibvirtFail("virConnectGetType");
    driver_ = type;
    std::transform(driver_.begin(), driver_.end(), driver_.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    domain_type_ = !domain_type.empty() ? domain_type : driver_ == "test" ? "test" : "kvm";

    virNodeInfo node;
    if (virNodeGetInfo(conn_, &node) < 0) LibvirtFail("virNodeGetInfo");
    node_cpus_ = node.cpus;
    node_memory_kib_ = node.memory;
    const char* mv = augur_shim::ConfigValue(host, "max_vcpus");
    max_vcpus_ = mv ? static_cast<unsigned>(ParseCount("max_vcpus", mv)) : node_cpus_;
    const char* mm = augur_shim::ConfigValue(host, "max_memory_mb");
    max_memory_kib_ = mm ? ParseCount("max_memory_mb", mm) * 1024 : node_memory_kib_;

    unsigned long lib_version = 0;
    virGetVersion(&lib_version, nullptr, nullptr);
    labels_storage_ = {{"driver", driver_},
                       {"uri", uri_},
                       {"hypervisor", domain_type_},
                       {"libvirt", std::to_string(lib_version / 1000000) + "." +
                                       std::to_string(lib_version / 1000 % 1000) + "." +
                                       std::to_string(lib_version % 1000)}};
    for (const auto& [k, v] : labels_storage_) labels_.push_back({k.c_str(), v.c_str()});
  }

 public:
  void Describe(augur_backend_info* out) {
    std::lock_guard lock(mu_);
    EnsureConnected();
    out->name = "libvirt";
    out->version = kVersion;
    out->healthy = virConnectIsAlive(conn_) == 1 ? 1 : 0;
    out->health_detail = out->healthy ? "" : "the libvirt connection is down";
    out->capacity = {static_cast<double>(node_cpus_), node_memory_kib_ * 1024};
    out->available = AvailableLocked();
    out->labels = labels_.data();
    out->labels_len = static_cast<uint32_t>(labels_.size());
  }

  void Provision(const augur_alloc_request& req, augur_instance_info* out) {
    augur_shim::CheckName(req.name, kMaxNameLen);
    CheckShape(req);
    if (Str(req.name).rfind(kPoolInfix, 0) == 0) {
      Fail(AUGUR_ERR_INVALID, std::string("names starting with '") + kPoolInfix +
                                  "' are reserved for pre-warmed domains");
    }
    std::string name = prefix_ + Str(req.name);
    std::lock_guard lock(mu_);
    EnsureConnected();
    if (Domain d{virDomainLookupByName(conn_, name.c_str())}) {
      // Idempotent on the name. A defined but stopped one is the remains of a provision
      // that failed between define and start: finish it.
      if (virDomainIsActive(d.get()) != 1 && virDomainCreate(d.get()) < 0) {
        LibvirtFail("starting existing domain " + name);
      }
      FillInfo(d.get(), name, out);
      return;
    }
    virResetLastError();

    augur_resources avail = AvailableLocked();
    unsigned vcpus = WholeVcpus(std::min(req.want.cpu_cores, avail.cpu_cores));
    uint64_t memory_kib = std::min(req.want.memory_bytes, avail.memory_bytes) / 1024;
    memory_kib = std::min<uint64_t>(memory_kib, max_memory_kib_);
    vcpus = std::min(vcpus, max_vcpus_);
    if (vcpus > avail.cpu_cores || vcpus < req.min.cpu_cores ||
        memory_kib * 1024 < req.min.memory_bytes || memory_kib == 0) {
      Fail(AUGUR_ERR_NO_CAPACITY,
           "cannot grant the minimum of " + FormatRes(req.min) + "; available " +
               FormatRes(avail) + " (vCPUs are whole)");
    }

    Domain d = TakePooledLocked(name, vcpus, memory_kib);
    if (!d) d = DefineLocked(name, vcpus, memory_kib);
    if (virDomainCreate(d.get()) < 0) {
      virErrorPtr err = virGetLastError();
      std::string msg = err && err->message ? err->message : "unknown libvirt error";
      virDomainUndefine(d.get());  // leave nothing half made
      Fail(AUGUR_ERR_IO, "starting domain " + name + ": " + msg);
    }
    FillInfo(d.get(), name, out);
  }

  uint32_t Prewarm(const augur_alloc_request& shape, uint32_t count) {
    CheckShape(shape);
    std::lock_guard lock(mu_);
    EnsureConnected();
    unsigned vcpus = std::min(WholeVcpus(shape.want.cpu_cores), max_vcpus_);
    uint64_t memory_kib = std::min<uint64_t>(shape.want.memory_bytes / 1024, max_memory_kib_);
    uint32_t ready = static_cast<uint32_t>(PooledNamesLocked().size());
    // Pool domains are defined, not running: they hold no capacity, only a name and XML.
    for (unsigned n = 0; ready < count; ++n) {
      std::string name = prefix_ + kPoolInfix + std::to_string(n);
      if (Domain existing{virDomainLookupByName(conn_, name.c_str())}) continue;
      virResetLastError();
      DefineLocked(name, vcpus, memory_kib);
      ++ready;
    }
    return std::min(ready, count);
  }

  augur_resources Resize(const std::string& name, const augur_resources& target) {
    augur_shim::CheckResources(target, "target");
    if (target.memory_bytes < 1024) Fail(AUGUR_ERR_INVALID, "target.memory_bytes is too small");
    std::lock_guard lock(mu_);
    EnsureConnected();
    Domain d = LookupOwnedLocked(name);
    DomainShape cur = ShapeOf(d.get());
    if (!cur.active) Fail(AUGUR_ERR_BUSY, "domain " + name + " is not running");
    augur_resources avail = AvailableLocked();
    int max_vcpus = virDomainGetVcpusFlags(
        d.get(), static_cast<unsigned>(VIR_DOMAIN_AFFECT_LIVE) | VIR_DOMAIN_VCPU_MAXIMUM);
    if (max_vcpus < 0) LibvirtFail("reading the vCPU maximum of " + name);
    unsigned long max_kib = virDomainGetMaxMemory(d.get());
    if (max_kib == 0) LibvirtFail("reading the memory maximum of " + name);

    unsigned vcpus = WholeVcpus(std::min(target.cpu_cores, cur.vcpus + avail.cpu_cores));
    vcpus = std::min<unsigned>(vcpus, static_cast<unsigned>(max_vcpus));
    uint64_t memory_kib =
        std::min<uint64_t>(std::min(target.memory_bytes, cur.memory_kib * 1024 + avail.memory_bytes) / 1024,
                           max_kib);
    if (vcpus != cur.vcpus &&
        virDomainSetVcpusFlags(d.get(), vcpus, VIR_DOMAIN_AFFECT_LIVE) < 0) {
      LibvirtFail("setting " + std::to_string(vcpus) + " live vCPUs on " + name);
    }
    if (memory_kib != cur.memory_kib &&
        virDomainSetMemoryFlags(d.get(), memory_kib, VIR_DOMAIN_AFFECT_LIVE) < 0) {
      LibvirtFail("setting " + std::to_string(memory_kib) + " KiB live memory on " + name);
    }
    DomainShape now = ShapeOf(d.get());
    return {static_cast<double>(now.vcpus), now.memory_kib * 1024};
  }

  std::string Run(const std::string& instance, const augur_task& task) {
    std::unique_lock lock(mu_);
    EnsureConnected();
    Domain d = LookupOwnedLocked(instance);
    RequireAgent();
    if (task.argc == 0 || task.argv == nullptr || task.argv[0] == nullptr) {
      Fail(AUGUR_ERR_INVALID, "task has no argv");
    }
    // guest-exec has no working directory argument: /bin/sh changes to it and then execs
    // the task, with workdir and argv passed as arguments, so nothing needs quoting.
    std::vector<std::string> args;
    std::string path = task.argv[0];
    std::string workdir = Str(task.workdir);
    if (!workdir.empty()) {
      path = "/bin/sh";
      args = {"-c", "cd \"$0\" && exec \"$@\"", workdir};
      for (uint32_t i = 0; i < task.argc; ++i) args.push_back(Str(task.argv[i]));
    } else {
      for (uint32_t i = 1; i < task.argc; ++i) args.push_back(Str(task.argv[i]));
    }
    bool capture = !Str(task.stdout_path).empty() || !Str(task.stderr_path).empty();
    std::string cmd = "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"" +
                      JsonEscape(path) + "\",\"arg\":[";
    for (size_t i = 0; i < args.size(); ++i) {
      cmd += (i ? ",\"" : "\"") + JsonEscape(args[i]) + "\"";
    }
    cmd += "],\"env\":[";
    for (uint32_t i = 0; i < task.envc; ++i) {
      cmd += (i ? ",\"" : "\"") + JsonEscape(Str(task.env[i])) + "\"";
    }
    cmd += std::string("],\"capture-output\":") + (capture ? "true" : "false") + "}}";
    std::string reply = AgentLocked(d.get(), cmd);
    auto pid = JsonField(reply, "pid");
    if (!pid) Fail(AUGUR_ERR_IO, "guest-exec gave no pid: " + reply);
    std::string handle = instance + "/" + *pid;
    GuestTask gt;
    gt.started_ns = NowNs(host_);
    gt.base = DomainDiskBytes(d.get());
    gt.stdout_path = Str(task.stdout_path);
    gt.stderr_path = Str(task.stderr_path);
    tasks_[handle] = gt;
    return handle;
  }

  augur_task_status Poll(const std::string& handle, int32_t timeout_ms) {
    if (timeout_ms < 0) Fail(AUGUR_ERR_INVALID, "timeout_ms must be >= 0");
    timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
      augur_task_status st = PollOnce(handle);
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      if (st.state != AUGUR_TASK_RUNNING || elapsed >= timeout_ms) return st;
      // The agent has no "wait": poll it, outside the connection lock.
      usleep(static_cast<useconds_t>(std::min<int64_t>(100, timeout_ms - elapsed)) * 1000);
    }
  }

  void Cancel(const std::string& handle) {
    std::lock_guard lock(mu_);
    EnsureConnected();
    auto [instance, pid] = SplitInvocation(handle);
    Domain d = LookupOwnedLocked(instance);
    RequireAgent();
    // The guest agent cannot signal a process it started; a second guest-exec of kill(1)
    // does, for the task's whole process group.
    AgentLocked(d.get(), "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/kill\","
                         "\"arg\":[\"-KILL\",\"" + pid + "\"]}}");
    if (auto it = tasks_.find(handle); it != tasks_.end()) it->second.cancelled = true;
  }

  void Release(const std::string& name) {
    std::lock_guard lock(mu_);
    EnsureConnected();
    Domain d = LookupOwnedLocked(name);
    if (virDomainIsActive(d.get()) == 1 && virDomainDestroy(d.get()) < 0) {
      LibvirtFail("destroying domain " + name);
    }
    // NVRAM and checkpoint flags matter for UEFI qemu guests; drivers that do not know
    // them (the test driver) refuse the call, and plain undefine is then right.
    unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                     VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
    if (virDomainUndefineFlags(d.get(), flags) < 0) {
      virResetLastError();
      if (virDomainUndefine(d.get()) < 0) LibvirtFail("undefining domain " + name);
    }
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      it = it->first.rfind(name + "/", 0) == 0 ? tasks_.erase(it) : std::next(it);
    }
  }

  void Recover(const char* const* instances, uint32_t n_instances, int32_t* states_out,
               const char* const* invocations, uint32_t n_invocations,
               int32_t* task_states_out) {
    std::string notes;
    {
      std::lock_guard lock(mu_);
      EnsureConnected();
      for (uint32_t i = 0; i < n_instances; ++i) {
        std::string name = Str(instances[i]);
        states_out[i] = AUGUR_INSTANCE_GONE;
        if (name.rfind(prefix_, 0) != 0) continue;
        Domain d{virDomainLookupByName(conn_, name.c_str())};
        if (!d) {
          virResetLastError();
          continue;
        }
        // A domain that is defined but stopped (host reboot) is started again: the
        // instance was promised to be running.
        if (virDomainIsActive(d.get()) != 1 && virDomainCreate(d.get()) < 0) {
          virErrorPtr err = virGetLastError();
          notes += name + ": defined but could not be started: " +
                   (err && err->message ? err->message : "?") + "; ";
          virResetLastError();
          continue;
        }
        states_out[i] = AUGUR_INSTANCE_READY;
      }
    }
    for (uint32_t j = 0; j < n_invocations; ++j) {
      std::string handle = Str(invocations[j]);
      try {
        if (!AgentAvailable()) Fail(AUGUR_ERR_UNSUPPORTED, NoAgentMessage());
        {
          std::lock_guard lock(mu_);
          tasks_.try_emplace(handle);  // started_ns unknown after a restart
        }
        task_states_out[j] = PollOnce(handle).state;
      } catch (const augur_shim::PluginError& e) {
        task_states_out[j] = AUGUR_TASK_FAILED;
        notes += handle + ": " + e.what() + "; ";
      }
    }
    if (!notes.empty()) errors_.Set(notes);
  }

 private:
  void Connect() {
    conn_ = virConnectOpen(uri_.c_str());
    if (conn_ == nullptr) LibvirtFail("connecting to " + uri_);
    virConnSetErrorFunc(conn_, nullptr, SilentErrorHandler);
  }

  // Reconnects after libvirtd went away. The test driver's state lives in the connection,
  // so this only ever happens for daemon-backed URIs in practice.
  void EnsureConnected() {
    if (conn_ != nullptr && virConnectIsAlive(conn_) == 1) return;
    if (conn_ != nullptr) virConnectClose(conn_);
    conn_ = nullptr;
    Connect();
  }

  bool AgentAvailable() const { return driver_ == "qemu"; }

  std::string NoAgentMessage() const {
    return "the libvirt driver '" + driver_ +
           "' has no QEMU guest agent; tasks cannot run inside its domains";
  }

  void RequireAgent() const {
    if (!AgentAvailable()) Fail(AUGUR_ERR_UNSUPPORTED, NoAgentMessage());
  }

  std::string AgentLocked(virDomainPtr d, const std::string& cmd) {
    CString reply{virDomainQemuAgentCommand(d, cmd.c_str(), kAgentTimeoutS, 0)};
    if (!reply) LibvirtFail("guest agent");
    return reply.get();
  }

  static std::pair<std::string, std::string> SplitInvocation(const std::string& handle) {
    size_t slash = handle.rfind('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == handle.size()) {
      Fail(AUGUR_ERR_NOT_FOUND, "no invocation '" + handle + "'");
    }
    return {handle.substr(0, slash), handle.substr(slash + 1)};
  }

  augur_task_status PollOnce(const std::string& handle) {
    std::lock_guard lock(mu_);
    auto it = tasks_.find(handle);
    if (it == tasks_.end()) Fail(AUGUR_ERR_NOT_FOUND, "no invocation '" + handle + "'");
    if (it->second.final) return *it->second.final;
    EnsureConnected();
    auto [instance, pid] = SplitInvocation(handle);
    Domain d = LookupOwnedLocked(instance);
    RequireAgent();
    std::string reply = AgentLocked(
        d.get(), "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":" + pid + "}}");
    augur_task_status st{};
    st.struct_size = sizeof st;
    st.started_ns = it->second.started_ns;
    // Disk I/O since run(); a domain restarted meanwhile (counters reset) keeps the last.
    GuestTask& gt = it->second;
    DiskBytes now = DomainDiskBytes(d.get());
    if (now.read >= gt.base.read) gt.read = std::max(gt.read, now.read - gt.base.read);
    if (now.written >= gt.base.written) {
      gt.written = std::max(gt.written, now.written - gt.base.written);
    }
    st.bytes_read = gt.read;
    st.bytes_written = gt.written;
    // The agent reports neither CPU time nor memory of a guest process: both stay 0.
    if (JsonField(reply, "exited").value_or("false") != "true") {
      st.state = AUGUR_TASK_RUNNING;
      return st;
    }
    st.finished_ns = NowNs(host_);
    if (auto sig = JsonField(reply, "signal")) {
      st.state = AUGUR_TASK_KILLED;
      st.term_signal = std::atoi(sig->c_str());
    } else {
      st.state = AUGUR_TASK_EXITED;
      st.exit_code = std::atoi(JsonField(reply, "exitcode").value_or("-1").c_str());
    }
    // Captured output arrives base64 in the status reply; the task's paths are host paths.
    auto write = [](const std::string& path, const std::optional<std::string>& data) {
      if (path.empty() || !data) return;
      std::ofstream(path, std::ios::binary | std::ios::app) << Base64Decode(*data);
    };
    write(it->second.stdout_path, JsonField(reply, "out-data"));
    write(it->second.stderr_path, JsonField(reply, "err-data"));
    gt.final = st;
    return st;
  }

  static void CheckShape(const augur_alloc_request& req) {
    augur_shim::CheckResources(req.want, "want");
    augur_shim::CheckResources(req.min, "min");
    if (!(req.want.cpu_cores > 0) || req.want.memory_bytes < 1024) {
      Fail(AUGUR_ERR_INVALID, "want needs cpu_cores > 0 and at least 1 KiB of memory");
    }
    if (req.min.cpu_cores > req.want.cpu_cores || req.min.memory_bytes > req.want.memory_bytes) {
      Fail(AUGUR_ERR_INVALID, "min must not exceed want");
    }
  }

  // A domain has whole vCPUs: a fractional amount is rounded down, but never below one.
  static unsigned WholeVcpus(double cores) {
    return std::max(1u, static_cast<unsigned>(std::floor(cores + 1e-9)));
  }

  static std::string FormatRes(const augur_resources& r) {
    char buf[96];
    snprintf(buf, sizeof buf, "%.2f cores / %llu MiB", r.cpu_cores,
             static_cast<unsigned long long>(r.memory_bytes >> 20));
    return buf;
  }

  static DomainShape ShapeOf(virDomainPtr d) {
    virDomainInfo info;
    if (virDomainGetInfo(d, &info) < 0) LibvirtFail("virDomainGetInfo");
    DomainShape s;
    s.vcpus = info.nrVirtCpu;
    s.memory_kib = info.memory;
    s.active = info.state == VIR_DOMAIN_RUNNING || info.state == VIR_DOMAIN_BLOCKED ||
               info.state == VIR_DOMAIN_PAUSED;
    return s;
  }

  void FillInfo(virDomainPtr d, const std::string& name, augur_instance_info* out) {
    DomainShape s = ShapeOf(d);
    augur_shim::WriteHandle(out->handle, name);
    out->granted = {static_cast<double>(s.vcpus), s.memory_kib * 1024};
    out->state = s.active ? AUGUR_INSTANCE_READY : AUGUR_INSTANCE_PENDING;
  }

  // Node capacity minus what running augur domains hold. Asked of libvirt every time, so
  // domains started before a restart (or by another augur process) count too.
  augur_resources AvailableLocked() {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) LibvirtFail("listing domains");
    double used_cpu = 0;
    uint64_t used_kib = 0;
    for (int i = 0; i < n; ++i) {
      Domain d{doms[i]};
      const char* name = virDomainGetName(d.get());
      if (name == nullptr || std::string(name).rfind(prefix_, 0) != 0) continue;
      virDomainInfo info;
      if (virDomainGetInfo(d.get(), &info) < 0) continue;  // vanished meanwhile
      used_cpu += info.nrVirtCpu;
      used_kib += info.memory;
    }
    std::free(doms);
    augur_resources out;
    out.cpu_cores = std::max(0.0, node_cpus_ - used_cpu);
    out.memory_bytes = node_memory_kib_ > used_kib ? (node_memory_kib_ - used_kib) * 1024 : 0;
    return out;
  }

  std::vector<std::string> PooledNamesLocked() {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    if (n < 0) LibvirtFail("listing domains");
    std::vector<std::string> out;
    std::string pool = prefix_ + kPoolInfix;
    for (int i = 0; i < n; ++i) {
      Domain d{doms[i]};
      const char* name = virDomainGetName(d.get());
      if (name != nullptr && std::string(name).rfind(pool, 0) == 0) out.push_back(name);
    }
    std::free(doms);
    std::sort(out.begin(), out.end());
    return out;
  }

  // Takes a pre-warmed domain: renames it and sets its vCPUs and memory for the next boot.
  // Returns null when the pool is empty or the driver cannot rename (then define fresh).
  Domain TakePooledLocked(const std::string& name, unsigned vcpus, uint64_t memory_kib) {
    for (const auto& pooled : PooledNamesLocked()) {
      Domain d{virDomainLookupByName(conn_, pooled.c_str())};
      if (!d || virDomainRename(d.get(), name.c_str(), 0) < 0) {
        virResetLastError();
        continue;
      }
      Domain renamed{virDomainLookupByName(conn_, name.c_str())};
      if (!renamed) LibvirtFail("looking up renamed domain " + name);
      if (virDomainSetVcpusFlags(renamed.get(), vcpus, VIR_DOMAIN_AFFECT_CONFIG) < 0 ||
          virDomainSetMemoryFlags(renamed.get(), memory_kib, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
        virErrorPtr err = virGetLastError();
        std::string msg = err && err->message ? err->message : "unknown libvirt error";
        virDomainUndefine(renamed.get());
        Fail(AUGUR_ERR_IO, "shaping pre-warmed domain as " + name + ": " + msg);
      }
      return renamed;
    }
    return nullptr;
  }

  Domain DefineLocked(const std::string& name, unsigned vcpus, uint64_t memory_kib) {
    std::string xml = template_;
    xml = ReplaceAll(xml, "@NAME@", name);  // [A-Za-z0-9._-] only: no XML escaping needed
    xml = ReplaceAll(xml, "@DOMAIN_TYPE@", domain_type_);
    xml = ReplaceAll(xml, "@VCPUS@", std::to_string(vcpus));
    xml = ReplaceAll(xml, "@MAXVCPUS@", std::to_string(std::max(vcpus, max_vcpus_)));
    xml = ReplaceAll(xml, "@MEMORY_KIB@", std::to_string(memory_kib));
    xml = ReplaceAll(xml, "@MAXMEMORY_KIB@", std::to_string(std::max(memory_kib, max_memory_kib_)));
    Domain d{virDomainDefineXML(conn_, xml.c_str())};
    if (!d) LibvirtFail("defining domain " + name);
    return d;
  }

  // Only domains carrying the prefix are this plugin's; anything else is NOT_FOUND, so a
  // wrong handle can never destroy someone else's VM.
  Domain LookupOwnedLocked(const std::string& name) {
    if (name.rfind(prefix_, 0) != 0 || name.size() == prefix_.size()) {
      Fail(AUGUR_ERR_NOT_FOUND, "no instance '" + name + "'");
    }
    Domain d{virDomainLookupByName(conn_, name.c_str())};
    if (!d) {
      virErrorPtr err = virGetLastError();
      if (err && err->code == VIR_ERR_NO_DOMAIN) {
        virResetLastError();
        Fail(AUGUR_ERR_NOT_FOUND, "no instance '" + name + "'");
      }
      LibvirtFail("looking up domain " + name);
    }
    return d;
  }

  const augur_host_api* host_;
  std::string uri_, prefix_, template_, driver_, domain_type_;
  unsigned node_cpus_ = 0, max_vcpus_ = 0;
  uint64_t node_memory_kib_ = 0, max_memory_kib_ = 0;
  std::vector<std::pair<std::string, std::string>> labels_storage_;
  std::vector<augur_kv> labels_;
  augur_shim::ErrorSlot errors_;

  std::mutex mu_;  // guards conn_ and tasks_
  virConnectPtr conn_ = nullptr;
  std::map<std::string, GuestTask> tasks_;
};

}  // namespace augur_libvirt

struct augur_plugin {
  augur_libvirt::LibvirtBackend backend;
};

// The C boundary (exception guard, argument checks, the function table) is shared with the
// other in-tree backends: plugins/common/plugin_shim.h.
extern "C" AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  return augur_shim::CBinding<augur_plugin>::Table();
}
