// The libvirt backend (augur-libvirt.so), loaded with dlopen and driven through its C table,
// against libvirt's in-process test driver: no daemon, no root.
//
// Two URIs, because of how the test driver keeps state:
//   - test:///<abs path>/data/libvirt-node.xml (8 CPUs, 16 GiB) gives a node of known size,
//     but every connection to a file URI parses the file afresh: the test cannot see the
//     plugin's domains from its own connection, and a re-init()ed plugin starts empty. These
//     tests check capacity, grants and errors through the plugin alone.
//   - test:///default is shared by all connections of a process while one stays open. The
//     test holds one, so it checks the plugin's work through libvirt's own API, and a
//     destroy() + init() of the plugin reconnects to the same state: a real restart test.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/plugin_fixture.h"
#include "disk_io.h"

namespace augur::testing {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

std::string NodeUri() {
  return std::string("test://") + AUGUR_SOURCE_DIR + "/tests/backends/data/libvirt-node.xml";
}

class LibvirtBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = std::make_unique<PluginLib>(PluginPath("libvirt"));
    ASSERT_NE(lib_->api(), nullptr) << lib_->error();
    plugin_ = std::make_unique<PluginInstance>(lib_->api(),
                                               PluginInstance::Config{{"uri", NodeUri()}});
    ASSERT_TRUE(plugin_->ok()) << plugin_->init_error();
  }

  std::string Provision(const std::string& name, double cores, uint64_t memory) {
    augur_instance_info info;
    EXPECT_EQ(plugin_->Provision(name, {cores, memory}, {cores, memory}, &info), AUGUR_OK)
        << plugin_->LastError();
    EXPECT_EQ(info.state, AUGUR_INSTANCE_READY);
    return info.handle;
  }

  augur_backend_info Describe() {
    augur_backend_info info;
    EXPECT_EQ(plugin_->Describe(&info), AUGUR_OK) << plugin_->LastError();
    return info;
  }

  std::unique_ptr<PluginLib> lib_;
  std::unique_ptr<PluginInstance> plugin_;
};

TEST_F(LibvirtBackendTest, DescribeMatchesTheTestNode) {
  augur_backend_info info = Describe();
  EXPECT_STREQ(info.name, "libvirt");
  EXPECT_TRUE(info.healthy);
  EXPECT_EQ(info.capacity.cpu_cores, 8.0);
  EXPECT_EQ(info.capacity.memory_bytes, 16 * kGiB);
  EXPECT_EQ(info.available.cpu_cores, 8.0);
  EXPECT_EQ(info.available.memory_bytes, 16 * kGiB);
  bool saw_driver = false;
  for (uint32_t i = 0; i < info.labels_len; ++i) {
    if (std::string(info.labels[i].key) == "driver") {
      EXPECT_STREQ(info.labels[i].value, "test");
      saw_driver = true;
    }
  }
  EXPECT_TRUE(saw_driver);
}

TEST_F(LibvirtBackendTest, ProvisionDefinesAndStartsADomainAndUsesCapacity) {
  std::string h = Provision("web", 2, 4 * kGiB);
  EXPECT_EQ(h, "augur-web");
  augur_backend_info info = Describe();
  EXPECT_EQ(info.available.cpu_cores, 6.0);
  EXPECT_EQ(info.available.memory_bytes, 12 * kGiB);

  // Idempotent on the name: same domain, nothing more taken.
  augur_instance_info again;
  ASSERT_EQ(plugin_->Provision("web", {1, kGiB}, {1, kGiB}, &again), AUGUR_OK);
  EXPECT_STREQ(again.handle, "augur-web");
  EXPECT_EQ(again.granted.cpu_cores, 2.0);
  EXPECT_EQ(Describe().available.cpu_cores, 6.0);

  // Grants what is left when want exceeds it; refuses below min.
  augur_instance_info rest;
  ASSERT_EQ(plugin_->Provision("rest", {16, 4 * kGiB}, {2, kGiB}, &rest), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(rest.granted.cpu_cores, 6.0);
  augur_instance_info none;
  EXPECT_EQ(plugin_->Provision("none", {1, kGiB}, {1, kGiB}, &none), AUGUR_ERR_NO_CAPACITY);
  EXPECT_NE(plugin_->LastError().find("minimum"), std::string::npos) << plugin_->LastError();
  EXPECT_EQ(plugin_->Release("augur-rest"), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(plugin_->Provision("huge", {9, kGiB}, {9, kGiB}, &none), AUGUR_ERR_NO_CAPACITY);
  EXPECT_EQ(plugin_->Provision("x", {1, 17 * kGiB}, {1, 17 * kGiB}, &none),
            AUGUR_ERR_NO_CAPACITY);
  EXPECT_EQ(plugin_->Release(h), AUGUR_OK) << plugin_->LastError();
}

TEST_F(LibvirtBackendTest, RunIsUnsupportedOnTheTestDriverAndSaysWhy) {
  std::string h = Provision("task", 1, kGiB);
  std::string inv;
  EXPECT_EQ(plugin_->Run(h, {"/bin/true"}, {}, &inv), AUGUR_ERR_UNSUPPORTED);
  EXPECT_EQ(plugin_->LastError(),
            "the libvirt driver 'test' has no QEMU guest agent; tasks cannot run inside its "
            "domains");
  augur_task_status s;
  EXPECT_EQ(plugin_->Poll(h + "/1", 0, &s), AUGUR_ERR_NOT_FOUND);
  EXPECT_EQ(plugin_->Run("augur-nope", {"/bin/true"}, {}, &inv), AUGUR_ERR_NOT_FOUND);
  EXPECT_EQ(plugin_->Release(h), AUGUR_OK);
}

TEST_F(LibvirtBackendTest, ReleaseTwiceIsNotFoundAndForeignDomainsAreNotTouched) {
  std::string h = Provision("gone", 1, kGiB);
  ASSERT_EQ(plugin_->Release(h), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(plugin_->Release(h), AUGUR_ERR_NOT_FOUND);
  EXPECT_NE(plugin_->LastError().find("augur-gone"), std::string::npos);
  // Names without the prefix are never this plugin's, even if libvirt has them.
  EXPECT_EQ(plugin_->Release("test"), AUGUR_ERR_NOT_FOUND);
  EXPECT_EQ(Describe().available.cpu_cores, 8.0);
}

TEST_F(LibvirtBackendTest, RecoverRequeriesLibvirtByName) {
  std::string kept = Provision("kept", 2, 2 * kGiB);
  std::string gone = Provision("gone", 1, kGiB);
  ASSERT_EQ(plugin_->Release(gone), AUGUR_OK);
  std::vector<int32_t> states, task_states;
  ASSERT_EQ(plugin_->Recover({kept, gone, "not-ours"}, &states, {kept + "/42"}, &task_states),
            AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(states[0], AUGUR_INSTANCE_READY);
  EXPECT_EQ(states[1], AUGUR_INSTANCE_GONE);
  EXPECT_EQ(states[2], AUGUR_INSTANCE_GONE);
  EXPECT_EQ(task_states[0], AUGUR_TASK_FAILED);  // no guest agent on this driver
  EXPECT_NE(plugin_->LastError().find("no QEMU guest agent"), std::string::npos);
  EXPECT_EQ(plugin_->Release(kept), AUGUR_OK);
}

TEST_F(LibvirtBackendTest, BadConfigAndRequestsAreRefused) {
  PluginInstance bad_uri(lib_->api(), {{"uri", "test:///nonexistent/node.xml"}});
  EXPECT_FALSE(bad_uri.ok());
  // libvirt reports a missing node file as an XML error, which is bad input: INVALID.
  EXPECT_EQ(bad_uri.init_rc(), AUGUR_ERR_INVALID);
  EXPECT_NE(bad_uri.init_error().find("test:///nonexistent/node.xml"), std::string::npos);
  PluginInstance bad_template(lib_->api(), {{"uri", NodeUri()}, {"template", "/nonexistent"}});
  EXPECT_EQ(bad_template.init_rc(), AUGUR_ERR_INVALID);
  augur_instance_info info;
  EXPECT_EQ(plugin_->Provision("pool-1", {1, kGiB}, {1, kGiB}, &info), AUGUR_ERR_INVALID);
  EXPECT_EQ(plugin_->Provision("a b", {1, kGiB}, {1, kGiB}, &info), AUGUR_ERR_INVALID);
  // recover() with a count but no array is refused by the shared C binding, and said so.
  const char* name = "vm";
  int32_t state = 0;
  EXPECT_EQ(plugin_->api()->recover(plugin_->get(), nullptr, 1, &state, nullptr, 0, nullptr),
            AUGUR_ERR_INVALID);
  EXPECT_NE(plugin_->LastError().find("NULL array"), std::string::npos) << plugin_->LastError();
  EXPECT_EQ(plugin_->api()->recover(plugin_->get(), &name, 1, &state, nullptr, 1, nullptr),
            AUGUR_ERR_INVALID);
}

// --- test:///default, checked through libvirt's API ---------------------------------------

void Quiet(void*, virErrorPtr) {}

class LibvirtDefaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    virSetErrorFunc(nullptr, Quiet);
    conn_ = virConnectOpen("test:///default");
    ASSERT_NE(conn_, nullptr);
    lib_ = std::make_unique<PluginLib>(PluginPath("libvirt"));
    ASSERT_NE(lib_->api(), nullptr) << lib_->error();
    NewPlugin();
  }

  void TearDown() override {
    plugin_.reset();
    // Leave the shared default driver as found: no augur-* domains.
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, 0);
    for (int i = 0; i < n; ++i) {
      if (std::string(virDomainGetName(doms[i])).rfind("augur-", 0) == 0) {
        virDomainDestroy(doms[i]);
        virDomainUndefine(doms[i]);
      }
      virDomainFree(doms[i]);
    }
    free(doms);
    virConnectClose(conn_);
  }

  void NewPlugin() {
    plugin_.reset();
    plugin_ = std::make_unique<PluginInstance>(lib_->api(),
                                               PluginInstance::Config{{"uri", "test:///default"}});
    ASSERT_TRUE(plugin_->ok()) << plugin_->init_error();
  }

  // virDomainGetInfo through the test's own connection; state -1 when there is no domain.
  virDomainInfo Info(const std::string& name) {
    virDomainInfo info{};
    info.state = static_cast<unsigned char>(-1);
    if (virDomainPtr d = virDomainLookupByName(conn_, name.c_str())) {
      virDomainGetInfo(d, &info);
      virDomainFree(d);
    }
    return info;
  }

  int InactiveAugurDomains() {
    virDomainPtr* doms = nullptr;
    int n = virConnectListAllDomains(conn_, &doms, VIR_CONNECT_LIST_DOMAINS_INACTIVE);
    int count = 0;
    for (int i = 0; i < n; ++i) {
      if (std::string(virDomainGetName(doms[i])).rfind("augur-pool-", 0) == 0) ++count;
      virDomainFree(doms[i]);
    }
    free(doms);
    return count;
  }

  virConnectPtr conn_ = nullptr;
  std::unique_ptr<PluginLib> lib_;
  std::unique_ptr<PluginInstance> plugin_;
};

TEST_F(LibvirtDefaultTest, ProvisionResizeReleaseAsLibvirtSeesThem) {
  augur_instance_info info;
  ASSERT_EQ(plugin_->Provision("vm", {2, 512 * kMiB}, {1, 256 * kMiB}, &info), AUGUR_OK)
      << plugin_->LastError();
  virDomainInfo di = Info("augur-vm");
  EXPECT_EQ(di.state, VIR_DOMAIN_RUNNING);
  EXPECT_EQ(di.nrVirtCpu, 2u);
  EXPECT_EQ(di.memory, 512u * 1024);

  augur_resources granted{};
  ASSERT_EQ(plugin_->Resize("augur-vm", {4, kGiB}, &granted), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(granted.cpu_cores, 4.0);
  EXPECT_EQ(granted.memory_bytes, kGiB);
  di = Info("augur-vm");
  EXPECT_EQ(di.nrVirtCpu, 4u);
  EXPECT_EQ(di.memory, 1024u * 1024);
  ASSERT_EQ(plugin_->Resize("augur-vm", {1, 384 * kMiB}, &granted), AUGUR_OK);
  di = Info("augur-vm");
  EXPECT_EQ(di.nrVirtCpu, 1u);
  EXPECT_EQ(di.memory, 384u * 1024);
  EXPECT_EQ(plugin_->Resize("augur-nope", {1, kGiB}, &granted), AUGUR_ERR_NOT_FOUND);

  ASSERT_EQ(plugin_->Release("augur-vm"), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(Info("augur-vm").state, static_cast<unsigned char>(-1));  // destroyed + undefined
  EXPECT_EQ(plugin_->Release("augur-vm"), AUGUR_ERR_NOT_FOUND);
}

// The libvirt backend's I/O counters are the growth of these sums over a task (a task cannot
// run on the test driver, so the sums are checked here, on the driver's own domain, whose
// disk the driver reports made-up but growing statistics for).
TEST_F(LibvirtDefaultTest, DiskIoSumsTheBlockStatsOfEveryDisk) {
  virDomainPtr test = virDomainLookupByName(conn_, "test");
  ASSERT_NE(test, nullptr);
  augur_libvirt::DiskBytes a = augur_libvirt::DomainDiskBytes(test);
  EXPECT_EQ(a.disks, 1u);  // vda
  EXPECT_GT(a.read, 0u);
  EXPECT_GT(a.written, 0u);
  virDomainBlockStatsStruct vda{};
  ASSERT_EQ(virDomainBlockStats(test, "vda", &vda, sizeof vda), 0);
  augur_libvirt::DiskBytes b = augur_libvirt::DomainDiskBytes(test);
  EXPECT_GE(b.read, a.read);
  EXPECT_GE(b.read, static_cast<uint64_t>(vda.rd_bytes));
  EXPECT_GE(b.written, static_cast<uint64_t>(vda.wr_bytes));
  virDomainFree(test);

  // The shipped template has no disk: nothing to count, and no error.
  augur_instance_info info;
  ASSERT_EQ(plugin_->Provision("io", {1, 256 * kMiB}, {1, 256 * kMiB}, &info), AUGUR_OK)
      << plugin_->LastError();
  virDomainPtr vm = virDomainLookupByName(conn_, "augur-io");
  ASSERT_NE(vm, nullptr);
  augur_libvirt::DiskBytes none = augur_libvirt::DomainDiskBytes(vm);
  EXPECT_EQ(none.disks, 0u);
  EXPECT_EQ(none.read, 0u);
  EXPECT_EQ(none.written, 0u);
  virDomainFree(vm);
  EXPECT_EQ(plugin_->Release("augur-io"), AUGUR_OK);
}

TEST(LibvirtDiskIoTest, DiskTargetsAreTheDiskDevicesOnly) {
  const std::string xml = R"(<domain type='kvm'><devices>
    <disk type='file' device='disk'><source file='/a.img'/><target dev='vda' bus='virtio'/></disk>
    <interface type='network'><target dev='vnet0'/></interface>
    <disk type="block" device="disk"><source dev="/dev/sdz"/><target dev="sdb" bus="scsi"/></disk>
    <disk type='file' device='cdrom'><source file='/b.iso'/></disk>
    <disk type='file' device='disk'><target dev='vdc'/></disk>
  </devices></domain>)";
  EXPECT_EQ(augur_libvirt::DiskTargets(xml), (std::vector<std::string>{"vda", "sdb", "vdc"}));
  EXPECT_TRUE(augur_libvirt::DiskTargets("<domain/>").empty());
  EXPECT_TRUE(augur_libvirt::DiskTargets("<disk><target dev='unterminated").empty());
}

TEST_F(LibvirtDefaultTest, PrewarmDefinesStoppedDomainsThatProvisionTakes) {
  augur_backend_info before;
  ASSERT_EQ(plugin_->Describe(&before), AUGUR_OK);
  uint32_t prepared = 0;
  ASSERT_EQ(plugin_->Prewarm({1, 256 * kMiB}, 3, &prepared), AUGUR_OK) << plugin_->LastError();
  EXPECT_EQ(prepared, 3u);
  EXPECT_EQ(InactiveAugurDomains(), 3);
  augur_backend_info after;
  ASSERT_EQ(plugin_->Describe(&after), AUGUR_OK);
  EXPECT_EQ(after.available.cpu_cores, before.available.cpu_cores);  // stopped: hold nothing
  ASSERT_EQ(plugin_->Prewarm({1, 256 * kMiB}, 3, &prepared), AUGUR_OK);
  EXPECT_EQ(prepared, 3u);  // already there, not doubled
  EXPECT_EQ(InactiveAugurDomains(), 3);

  augur_instance_info info;
  ASSERT_EQ(plugin_->Provision("fast", {2, 768 * kMiB}, {2, 768 * kMiB}, &info), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(InactiveAugurDomains(), 2);  // one taken from the pool
  virDomainInfo di = Info("augur-fast");
  EXPECT_EQ(di.state, VIR_DOMAIN_RUNNING);
  EXPECT_EQ(di.nrVirtCpu, 2u);
  EXPECT_EQ(di.memory, 768u * 1024);
}

TEST_F(LibvirtDefaultTest, RecoverAfterReinitFindsDomainsByName) {
  augur_instance_info a, b;
  ASSERT_EQ(plugin_->Provision("a", {1, 256 * kMiB}, {1, 256 * kMiB}, &a), AUGUR_OK);
  ASSERT_EQ(plugin_->Provision("b", {1, 256 * kMiB}, {1, 256 * kMiB}, &b), AUGUR_OK);
  ASSERT_EQ(plugin_->Release("augur-b"), AUGUR_OK);
  NewPlugin();  // a restart: new state, new connection, same shared test:///default driver
  std::vector<int32_t> states, task_states;
  ASSERT_EQ(plugin_->Recover({"augur-a", "augur-b"}, &states, {}, &task_states), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(states[0], AUGUR_INSTANCE_READY);
  EXPECT_EQ(states[1], AUGUR_INSTANCE_GONE);
  augur_resources granted{};
  EXPECT_EQ(plugin_->Resize("augur-a", {2, 256 * kMiB}, &granted), AUGUR_OK)
      << plugin_->LastError();
  EXPECT_EQ(Info("augur-a").nrVirtCpu, 2u);
  EXPECT_EQ(plugin_->Release("augur-a"), AUGUR_OK);
}

}  // namespace
}  // namespace augur::testing
