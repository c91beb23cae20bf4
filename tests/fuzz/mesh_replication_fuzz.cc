// Fuzzes what augurd's replication takes from peers (src/mesh/workflow_replication.h): the
// replication channel (the Replicator behind it, as a replica and as the owner of a workflow
// submitted here, with the log rebuilt into an adopted workflow on a takeover) and the status
// channel (`augurctl status` across hosts: the owner's side answering queries, the asker's
// side collecting replies), on a real WorkflowStore. The engine's side is a small
// host here (it records what it adopts and answers status for it): linking the executor would
// build the whole engine and plugin layer with the sanitizers first.
//  - DecodeStatusMessage never crashes; what it refuses has a message; what it accepts encodes
//    again and decodes to the same message; a limit below the input's size refuses it.
//  - The input is also read as frames [channel][from][time][len lo][len hi][payload]:
//    channel % 4 = 0 a replication message, 1 a status message (from h1, h2, h3 or h0 by
//    `from`), 2 a membership change (the live peers are the bits 2-4 of `from`), 3 this host
//    asks for the status of the workflow the payload names. Virtual time advances (10 ms
//    steps) and the replication is ticked after every frame.
//  - Whatever the messages: everything sent decodes for its channel and goes to another host;
//    every status reply carries a JSON array; a takeover's files stay inside the workflow's
//    own directory; every workflow held is persisted as it is before anything is sent; every
//    status request is answered once, by the timeout at the latest.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <stdlib.h>

#include <google/protobuf/stubs/logging.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "mesh/workflow_replication.h"
#include "workflow/store.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace augur::mesh;
using augur::Result;
using augur::Status;

using augur::fuzz::Require;

constexpr size_t kMax = 64 * 1024;
const char* const kPeers[] = {"h1", "h2", "h3", "h0"};  // h0 is the host itself
const std::string kWorkRoot = "/fuzz/work";

void CheckStatusDecoder(std::string_view bytes) {
  if (auto m = DecodeStatusMessage(bytes, kMax)) {
    auto again = EncodeStatusMessage(*m, kMax);
    Require(again.has_value(), "an accepted status message does not encode");
    auto back = DecodeStatusMessage(*again, kMax);
    Require(back.has_value() && back->SerializeAsString() == m->SerializeAsString(),
            "a status message does not round-trip");
  } else {
    Require(!m.error().message().empty(), "a status refusal without a message");
  }
  if (!bytes.empty()) {
    auto small = DecodeStatusMessage(bytes, bytes.size() - 1);
    Require(!small && small.error().code() == Status::Code::kResourceExhausted,
            "a status message over the limit was not refused as oversized");
  }
}

// Every path a takeover writes: under kWorkRoot/<id>/, no part empty, "." or "..".
bool InsideWorkflowDir(const std::string& path, const std::string& id) {
  const std::string dir = kWorkRoot + "/" + id + "/";
  if (path.compare(0, dir.size(), dir) != 0) return false;
  for (size_t start = kWorkRoot.size() + 1; start <= path.size();) {
    const size_t end = std::min(path.find('/', start), path.size());
    const std::string_view part = std::string_view(path).substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

// One store for the process (a store is a WAL file: /tmp/augur-fuzz-replication.XXXXXX/,
// removed at exit; a crash, which aborts, leaves it), emptied for each input.
std::string g_store_dir;
std::unique_ptr<augur::workflow::WorkflowStore> g_store;

void OpenStore() {
  std::string dir = "/tmp/augur-fuzz-replication.XXXXXX";
  Require(::mkdtemp(dir.data()) != nullptr, "no temporary directory for the store");
  g_store_dir = dir;
  std::atexit([] {
    g_store.reset();
    std::error_code ec;
    std::filesystem::remove_all(g_store_dir, ec);
  });
  auto store = augur::workflow::WorkflowStore::Open(dir + "/workflows.db");
  if (!store) std::fprintf(stderr, "%s\n", store.error().ToString().c_str());
  Require(store.has_value(), "the store does not open");
  g_store = std::move(*store);
}

class Host : public MeshLink, public augur::workflow::ReplicationHost {
 public:
  Host() {
    auto rows = g_store->Replicas();
    Require(rows.has_value(), "the store's replicas cannot be read");
    for (const auto& [id, bytes] : *rows) {
      Require(g_store->DeleteReplica(id).ok(), "cannot empty the store");
    }
  }

  // MeshLink.
  const std::string& self() const override { return self_; }
  Status Send(const std::string& host, Channel ch, std::string payload) override {
    Require(host != self_ && !host.empty(), "a message to no host or to itself");
    if (ch == Channel::kReplication) {
      Require(DecodeReplication(payload, kMax).has_value(), "sent a replication message peers refuse");
    } else {
      Require(ch == Channel::kStatus, "sent on another channel");
      auto m = DecodeStatusMessage(payload, kMax);
      Require(m.has_value(), "sent a status message peers refuse");
      if (m->has_reply() && m->reply().found()) {
        Require(nlohmann::json::parse(m->reply().json(), nullptr, false).is_array(),
                "a status reply whose JSON is not an array");
      }
    }
    return Status::OK();
  }
  PeerView Peers() const override { return std::make_shared<std::vector<PlacementPeer>>(); }

  // ReplicationHost.
  augur::workflow::WorkflowStore& workflow_store() override { return *g_store; }
  const std::string& work_root() const override { return kWorkRoot; }
  Status Adopt(const augur::workflow::AdoptedWorkflow& a, int64_t) override {
    const std::string& id = a.workflow.id;
    for (const auto& [path, bytes] : a.files) {
      Require(InsideWorkflowDir(path, id), "a takeover writes outside the workflow's directory");
    }
    for (const auto& [stage, path] : a.stage_outputs) {
      Require(InsideWorkflowDir(path, id), "a stage output outside the workflow's directory");
    }
    running_[id] = a.workflow.name;
    return Status::OK();
  }
  void Release(const std::string& id, const std::string&, int64_t) override { running_.erase(id); }
  Result<std::string> LocalStatus(const std::string& workflow, bool) override {
    for (const auto& [id, name] : running_) {
      if (workflow == id || workflow == name) {
        return nlohmann::json::array({{{"id", id}, {"name", name}, {"state", "running"}}}).dump();
      }
    }
    return augur::Err(Status::NotFound("not running here"));
  }
  // A result (its name, as the output's bytes) or an empty history of a workflow adopted here.
  Result<std::string> LocalQuery(augur::workflow::QueryKind kind, const std::string& workflow,
                                 const std::string&, size_t) override {
    for (const auto& [id, name] : running_) {
      if (workflow == id || workflow == name) {
        return kind == augur::workflow::QueryKind::kHistory ? std::string("[]") : name;
      }
    }
    return augur::Err(Status::NotFound("not running here"));
  }

  std::vector<std::string> live = {"h0", "h1", "h2", "h3"};
  std::map<std::string, std::string> running_;  // adopted: id -> name

 private:
  std::string self_ = "h0";
};

struct Machines {
  Machines() : repl(&host, Options(&host)) {
    Require(repl.Bind(&host, now).has_value(), "Bind failed on an empty store");
    // A workflow submitted here, so that status queries and replies meet one.
    now += 1'000'000;
    augur::workflow::Changes c;
    augur::workflow::WorkflowRecord w;
    w.id = "wf-own-1a2b3c";
    w.name = "wf-own";
    w.spec_yaml = "workflow: wf-own\nstages:\n  - name: s\n    command: [\"true\"]\n";
    w.submitted_ns = now;
    c.workflows.push_back(w);
    repl.Recorded(c, now);
    host.running_[w.id] = w.name;
  }
  static WorkflowReplicationOptions Options(Host* h) {
    WorkflowReplicationOptions o;
    o.replication.max_payload_bytes = kMax;
    o.replication.max_workflows = 8;
    o.status_timeout_ns = 2'000'000'000;
    o.live = [h] { return h->live; };
    return o;
  }

  void Ask(const std::string& workflow, bool explain) {
    const int id = asked++;
    repl.RemoteStatus(workflow, explain, [this, id](Result<std::string> r) {
      Require(answered.insert(id).second, "a status request answered twice");
      Require(r.has_value() || !r.error().message().empty(), "a status error without a message");
    }, now);
  }

  // What is persisted is what the replicator holds (state before action).
  void CheckPersisted() {
    auto rows = host.workflow_store().Replicas();
    Require(rows.has_value(), "the store's replicas cannot be read");
    std::map<std::string, std::string> stored(rows->begin(), rows->end());
    for (const std::string& id : repl.replicator().Workflows()) {
      auto snap = repl.replicator().Snapshot(id);
      Require(snap.has_value(), "a held workflow has no snapshot");
      auto it = stored.find(id);
      Require(it != stored.end() && it->second == *snap, "a held workflow is not persisted as it is");
    }
  }

  Host host;
  int64_t now = 1'000'000'000;
  WorkflowReplication repl;
  int asked = 0;
  std::set<int> answered;
};

void RunFrames(std::string_view bytes) {
  Machines m;
  size_t i = 0;
  while (i + 5 <= bytes.size()) {
    const auto u = [&](size_t k) { return static_cast<uint8_t>(bytes[i + k]); };
    const uint8_t channel = u(0) % 4, who = u(1);
    m.now += int64_t(u(2)) * 10'000'000;
    const size_t len = std::min<size_t>(u(3) | (size_t(u(4)) << 8), bytes.size() - i - 5);
    const std::string payload(bytes.substr(i + 5, len));
    i += 5 + len;
    switch (channel) {
      case 0: m.repl.OnMessage(kPeers[who % 4], uint32_t(Channel::kReplication), payload, m.now); break;
      case 1: m.repl.OnMessage(kPeers[who % 4], uint32_t(Channel::kStatus), payload, m.now); break;
      case 2:
        m.host.live = {"h0"};
        for (int b = 0; b < 3; ++b) {
          if (who >> (b + 2) & 1) m.host.live.push_back(kPeers[b]);
        }
        break;
      case 3: m.Ask(payload, who & 1); break;
    }
    m.repl.Tick(m.now);
    m.CheckPersisted();
  }
  // Every request is answered by its timeout.
  m.now += 3'000'000'000;
  m.repl.Tick(m.now);
  Require(m.answered.size() == size_t(m.asked), "a status request never answered");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  spdlog::set_level(spdlog::level::off);
  OpenStore();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  CheckStatusDecoder(bytes);
  RunFrames(bytes);
  return 0;
}
