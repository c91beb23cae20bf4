// Fuzzes augur-plugin-host's side of the plugin protocol: a Request, parsed as the host's
// workers parse it and dispatched by HandleRequest (plugin_host.cc) into AbiBackend
// (abi_adapter.cc) over mirror_plugin.c, loaded in-process. The mirror echoes request fields
// into its answers, so the adapter's checks of plugin output see fuzzed values.
//
// Invariant (plugin_protocol.h: "Validation happens twice on purpose"): a Reply the host
// sends without a fault or an error must pass augurd's checks; otherwise augurd would
// restart a host that did nothing wrong.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "plugin/abi_adapter.h"
#include "plugin/abi_loader.h"
#include "plugin/plugin_host.h"
#include <google/protobuf/stubs/logging.h>

#include "plugin/plugin_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::plugin;

AbiBackend* g_backend = nullptr;

using augur::fuzz::Require;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in a string field is a parse failure, logged by protobuf each time.
  google::protobuf::SetLogHandler(nullptr);
  auto loaded = LoadedPlugin::Load(AUGUR_FUZZ_MIRROR_PLUGIN, "mirror");
  if (!loaded) {
    std::fprintf(stderr, "plugin_request_fuzz: %s\n", loaded.error().ToString().c_str());
    std::abort();
  }
  AbiBackendOptions opts;
  opts.config = {{"mode", "mirror"}};
  opts.state_dir = (std::filesystem::temp_directory_path() / "augur-fuzz-mirror").string();
  auto backend = AbiBackend::Create(std::move(*loaded), std::move(opts));
  if (!backend) {
    std::fprintf(stderr, "plugin_request_fuzz: %s\n", backend.error().ToString().c_str());
    std::abort();
  }
  g_backend = backend->release();  // lives until exit
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wire::Request req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  // hello and shutdown change the host's state, not the plugin's: not HandleRequest's.
  if (req.has_hello() || req.has_shutdown()) return 0;
  wire::Reply reply = HandleRequest(*g_backend, req);
  // What the host puts on the socket, parsed as augurd parses it.
  wire::Reply got;
  Require(got.ParseFromString(reply.SerializeAsString()), "the reply does not parse");
  if (!got.fault().empty() || got.code() != 0) return 0;
  switch (got.result_case()) {
    case wire::Reply::kInfo:
      Require(InfoFromWire(got.info()).has_value(), "augurd rejects a describe the host sent");
      break;
    case wire::Reply::kInstance:
      Require(InstanceFromWire(got.instance()).has_value(),
              "augurd rejects an instance the host sent");
      break;
    case wire::Reply::kGranted:
      Require(CheckResources("granted", FromWire(got.granted())).ok(),
              "augurd rejects resources the host sent");
      break;
    case wire::Reply::kInvocation:
      Require(CheckHandle("invocation", got.invocation()).ok(),
              "augurd rejects an invocation handle the host sent");
      break;
    case wire::Reply::kStatus:
      Require(TaskStatusFromWire(got.status()).has_value(),
              "augurd rejects a task status the host sent");
      break;
    case wire::Reply::kPrepared:
      Require(req.has_prewarm() && got.prepared() <= req.prewarm().count(),
              "the host sent more prepared than asked for");
      break;
    case wire::Reply::kRecovered:
      Require(got.recovered().instance_states_size() == req.recover().instances_size() &&
                  got.recovered().task_states_size() == req.recover().invocations_size(),
              "recover answered the wrong number of states");
      for (int32_t v : got.recovered().instance_states()) {
        Require(InstanceStateFromInt("i", v).has_value(), "a bad instance state from the host");
      }
      for (int32_t v : got.recovered().task_states()) {
        Require(TaskStateFromInt("t", v).has_value(), "a bad task state from the host");
      }
      break;
    default:
      break;
  }
  return 0;
}
