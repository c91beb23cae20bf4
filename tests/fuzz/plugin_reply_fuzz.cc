// Fuzzes augurd's side of the plugin protocol: a Reply from augur-plugin-host, parsed and
// checked the way plugin_client.cc does (StatusFromCode, then per operation InfoFromWire,
// InstanceFromWire, CheckResources, CheckHandle, TaskStatusFromWire, the recover states).
// What the checks accept must survive a round trip through ToWire unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "plugin/plugin_protocol.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::plugin;

using augur::fuzz::Require;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  wire::Reply reply;
  if (!reply.ParseFromArray(data, static_cast<int>(size))) return 0;
  augur::Status s = StatusFromCode(reply.code(), reply.message());
  Require(s.ok() == (reply.code() == 0), "StatusFromCode's ok() disagrees with code 0");
  (void)s.ToString();
  switch (reply.result_case()) {
    case wire::Reply::kInfo: {
      auto info = InfoFromWire(reply.info());
      if (info) {
        Require(CheckBackendInfo(*info).ok(), "InfoFromWire accepted what CheckBackendInfo rejects");
        wire::BackendInfo again;
        ToWire(*info, &again);
        auto back = InfoFromWire(again);
        Require(back && *back == *info, "BackendInfo does not round-trip");
      }
      break;
    }
    case wire::Reply::kInstance: {
      auto inst = InstanceFromWire(reply.instance());
      if (inst) {
        Require(CheckHandle("h", inst->handle).ok(), "InstanceFromWire accepted a bad handle");
        wire::Instance again;
        ToWire(*inst, &again);
        auto back = InstanceFromWire(again);
        Require(back && back->handle == inst->handle && back->state == inst->state &&
                    back->granted == inst->granted,
                "Instance does not round-trip");
      }
      break;
    }
    case wire::Reply::kGranted:
      (void)CheckResources("granted", FromWire(reply.granted()));
      break;
    case wire::Reply::kInvocation:
      (void)CheckHandle("invocation handle", reply.invocation());
      break;
    case wire::Reply::kStatus: {
      auto st = TaskStatusFromWire(reply.status());
      if (st) {
        wire::TaskStatus again;
        ToWire(*st, &again);
        auto back = TaskStatusFromWire(again);
        Require(back && back->state == st->state && back->cpu_seconds == st->cpu_seconds &&
                    back->bytes_read == st->bytes_read &&
                    back->bytes_written == st->bytes_written,
                "TaskStatus does not round-trip");
        Require(st->bytes_read <= kMaxIoBytes && st->bytes_written <= kMaxIoBytes,
                "TaskStatusFromWire accepted an I/O counter past kMaxIoBytes");
      }
      break;
    }
    case wire::Reply::kRecovered:
      for (int32_t v : reply.recovered().instance_states()) (void)InstanceStateFromInt("i", v);
      for (int32_t v : reply.recovered().task_states()) (void)TaskStateFromInt("t", v);
      break;
    default:
      break;
  }
  (void)CheckText("fault", reply.fault(), kMaxTextBytes);
  return 0;
}
