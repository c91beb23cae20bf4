#include "mesh/workflow_log.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "common/hash.h"
#include "mesh/rendezvous.h"
#include "mesh/replication.h"
#include "workflow/workflow_spec.h"

namespace augur::mesh {
namespace {

using workflow::AttemptRecord;
using workflow::ShardRecord;
using workflow::WorkflowRecord;

// A shards_planned record's text stays under this (the record's limit is kMaxRecordBytes).
constexpr size_t kMaxShardsText = kMaxRecordBytes - 4096;
constexpr uint32_t kMaxReplicaSalt = 4096;

nlohmann::json ShardJson(const ShardRecord& s) {
  return {{"i", s.index},
          {"id", s.shard_id},
          {"b", s.begin},
          {"e", s.end},
          {"items", s.items},
          {"want", {s.want.cpu, s.want.memory}},
          {"min", {s.min.cpu, s.min.memory}}};
}

// The attempt number of "<workflow>/<stage>/<shard>#<n>" (0 when it has none).
uint32_t AttemptNumber(const std::string& attempt_id) {
  const size_t hash = attempt_id.rfind('#');
  if (hash == std::string::npos) return 0;
  uint32_t n = 0;
  for (size_t i = hash + 1; i < attempt_id.size(); ++i) {
    const char c = attempt_id[i];
    if (c < '0' || c > '9' || n > 100'000'000) return 0;
    n = n * 10 + uint32_t(c - '0');
  }
  return n;
}

// The output a record carries, when it carries one that matches its digest and size.
const std::string* Carried(const wire::StateRecord& r) {
  if (r.digest().empty() || r.output().size() != r.size() || OutputDigest(r.output()) != r.digest()) {
    return nullptr;
  }
  return &r.output();
}

void SetOutput(wire::StateRecord* r, const std::string* output, uint64_t size) {
  r->set_size(size);
  if (output != nullptr && output->size() <= kMaxInlineOutputBytes) {
    r->set_digest(OutputDigest(*output));
    r->set_output(*output);
  }
}

Status Bad(const std::string& id, const wire::StateRecord& r, std::string_view why) {
  return Status::Corruption(fmt::format("workflow {}: log record {} ({}): {}", id, r.seq(),
                                        RecordKindName(RecordKind(r.kind())), why));
}

// A name that becomes one part of a path under the work root: what the engine makes of
// workflow ids, stage names and shard ids ("sum-1a2b3c", "count", "3.1", "3~0"), and nothing
// that could name another directory ("..", "a/b") or go wrong in a file name.
bool IsPathPart(std::string_view s) {
  return !s.empty() && s.size() <= 255 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == '~';
         });
}

}  // namespace

std::string OutputDigest(std::string_view bytes) {
  return fmt::format("fnv1a64:{:016x}", Fnv1a64(bytes));
}

std::string ChooseReplicaId(const std::string& engine_id, const std::string& self,
                            const std::vector<std::string>& live) {
  std::vector<std::string> members = live;
  members.push_back(self);
  for (uint32_t n = 0; n < kMaxReplicaSalt; ++n) {
    std::string id = fmt::format("{}~{}", engine_id, n);
    const std::vector<std::string> set = ReplicaSet(id, members, 0);
    if (!set.empty() && set[0] == self) return id;
  }
  return fmt::format("{}~0", engine_id);  // 2^-4096-ish for any mesh of fewer hosts
}

std::string EngineIdOf(std::string_view replica_id) {
  const size_t tilde = replica_id.rfind('~');
  if (tilde == std::string_view::npos || tilde == 0) return "";
  return std::string(replica_id.substr(0, tilde));
}

wire::StateRecord SubmittedRecord(const WorkflowRecord& w) {
  wire::StateRecord r = MakeSubmitted(w.name, w.spec_yaml);
  r.set_detail(nlohmann::json{{"origin", w.origin},
                              {"submitted_ns", w.submitted_ns},
                              {"deadline_ns", w.deadline_ns}}
                   .dump());
  return r;
}

std::vector<wire::StateRecord> ShardsPlannedRecords(const std::vector<ShardRecord>& shards) {
  std::vector<wire::StateRecord> out;
  nlohmann::json batch = nlohmann::json::array();
  size_t text = 2;
  std::string stage;
  auto flush = [&] {
    if (batch.empty()) return;
    out.push_back(MakeShardsPlanned(stage, batch.dump()));
    batch = nlohmann::json::array();
    text = 2;
  };
  for (const ShardRecord& s : shards) {
    nlohmann::json j = ShardJson(s);
    const size_t size = j.dump().size() + 1;
    if (s.stage != stage || batch.size() >= kShardsPerRecord || text + size > kMaxShardsText) {
      flush();
      stage = s.stage;
    }
    text += size;
    batch.push_back(std::move(j));
  }
  flush();
  return out;
}

wire::StateRecord AttemptStartedRecord(const AttemptRecord& a, std::string_view self) {
  return MakeAttemptStarted(a.stage, std::to_string(a.shard_index), a.attempt_id,
                            a.host.empty() ? self : std::string_view(a.host), "");
}

wire::StateRecord AttemptResultRecord(const AttemptRecord& a, std::string_view self,
                                      const std::string* output, uint64_t size) {
  const bool ok = a.state == workflow::AttemptState::kSucceeded;
  wire::StateRecord r = MakeAttemptResult(a.stage, std::to_string(a.shard_index), a.attempt_id,
                                          a.host.empty() ? self : std::string_view(a.host), ok,
                                          "", "", 0, a.error.substr(0, kMaxRecordFieldBytes));
  SetOutput(&r, ok ? output : nullptr, size);
  r.set_detail(nlohmann::json{{"state", workflow::AttemptStateName(a.state)}}.dump());
  return r;
}

wire::StateRecord StageMergedRecord(std::string_view stage, const std::string* output,
                                    uint64_t size) {
  wire::StateRecord r = MakeStageMerged(stage, "", "", 0);
  SetOutput(&r, output, size);
  return r;
}

wire::StateRecord WorkflowFinishedRecord(const WorkflowRecord& w) {
  wire::StateRecord r = MakeWorkflowFinished(w.state == workflow::WorkflowState::kSucceeded,
                                             w.error.substr(0, kMaxRecordFieldBytes));
  r.set_detail(nlohmann::json{{"state", workflow::WorkflowStateName(w.state)}}.dump());
  return r;
}

std::vector<UncarriedOutput> UncarriedOutputs(const std::vector<wire::StateRecord>& log) {
  std::vector<UncarriedOutput> out;
  std::set<std::pair<std::string, std::string>> won;  // (stage, shard)
  std::set<std::string> merged;                       // stages merged with their output
  for (const wire::StateRecord& r : log) {
    const RecordKind kind = RecordKind(r.kind());
    if (kind == RecordKind::kWorkflowFinished) return {};
    if (kind == RecordKind::kStageMerged && Carried(r) != nullptr) merged.insert(r.stage());
    if (kind != RecordKind::kAttemptResult || !r.ok() ||
        !won.insert({r.stage(), r.shard()}).second) {
      continue;
    }
    if (Carried(r) == nullptr && r.size() > 0 && !r.host().empty()) {
      out.push_back({r.stage(), r.shard(), r.attempt_id(), r.host(), r.size()});
    }
  }
  std::erase_if(out, [&](const UncarriedOutput& o) { return merged.contains(o.stage); });
  return out;
}

std::vector<std::string> OutputHolders(const std::vector<wire::StateRecord>& log) {
  std::set<std::string> hosts;
  for (const wire::StateRecord& r : log) {
    if (RecordKind(r.kind()) == RecordKind::kAttemptResult && r.ok() && Carried(r) == nullptr &&
        !r.host().empty()) {
      hosts.insert(r.host());
    }
  }
  return {hosts.begin(), hosts.end()};
}

std::string FetchedOutputPath(const std::string& work_root, const std::string& engine_id,
                              const UncarriedOutput& o) {
  return fmt::format("{}/{}/{}/fetched.{:016x}.out", work_root, engine_id, o.stage,
                     Fnv1a64(o.attempt_id));
}

Result<workflow::AdoptedWorkflow> Rebuild(const std::string& engine_id,
                                          const std::vector<wire::StateRecord>& log,
                                          const std::string& work_root,
                                          const std::map<std::string, std::string>& fetched) {
  if (log.empty() || log[0].kind() != uint32_t(RecordKind::kSubmitted)) {
    return Err(Status::Corruption(
        fmt::format("workflow {}: its log does not begin with a submitted record", engine_id)));
  }
  // The log comes from a peer; its names become paths the new owner writes (files, below).
  if (!IsPathPart(engine_id)) {
    return Err(Status::Corruption(fmt::format(
        "workflow '{}': its id cannot name a directory (letters, digits, '_-.~' only)",
        engine_id)));
  }
  workflow::AdoptedWorkflow a;
  WorkflowRecord& w = a.workflow;
  w.id = engine_id;
  w.name = log[0].name();
  w.spec_yaml = log[0].text();
  w.submitted_ns = log[0].at_ns();
  {
    auto d = nlohmann::json::parse(log[0].detail(), nullptr, false);
    if (d.is_object()) {
      w.origin = d.value("origin", std::string());
      w.submitted_ns = d.value("submitted_ns", w.submitted_ns);
      w.deadline_ns = d.value("deadline_ns", int64_t{0});
    }
  }
  const std::string dir = work_root + "/" + engine_id;
  std::map<std::pair<std::string, uint32_t>, ShardRecord> shards;
  auto shard_of = [&](const wire::StateRecord& r) -> ShardRecord* {
    uint32_t index = 0;
    for (char c : r.shard()) {
      if (c < '0' || c > '9' || index > 10'000'000) return nullptr;
      index = index * 10 + uint32_t(c - '0');
    }
    auto it = shards.find({r.stage(), index});
    return it == shards.end() ? nullptr : &it->second;
  };
  for (const wire::StateRecord& r : log) {
    switch (RecordKind(r.kind())) {
      case RecordKind::kShardsPlanned: {
        auto j = nlohmann::json::parse(r.text(), nullptr, false);
        if (!j.is_array()) return Err(Bad(engine_id, r, "its shards are not a JSON array"));
        if (!IsPathPart(r.stage())) return Err(Bad(engine_id, r, "its stage cannot name a file"));
        try {
          for (const nlohmann::json& e : j) {
            ShardRecord s;
            s.workflow_id = engine_id;
            s.stage = r.stage();
            s.index = e.at("i").get<uint32_t>();
            s.shard_id = e.at("id").get<std::string>();
            if (!IsPathPart(s.shard_id)) {
              return Err(
                  Bad(engine_id, r, fmt::format("shard {}: its id cannot name a file", s.index)));
            }
            s.begin = e.at("b").get<uint64_t>();
            s.end = e.at("e").get<uint64_t>();
            s.items = e.at("items").get<std::vector<std::string>>();
            s.want = {e.at("want").at(0).get<double>(), e.at("want").at(1).get<uint64_t>()};
            s.min = {e.at("min").at(0).get<double>(), e.at("min").at(1).get<uint64_t>()};
            shards.emplace(std::pair{s.stage, s.index}, std::move(s));
          }
        } catch (const nlohmann::json::exception& e) {
          return Err(Bad(engine_id, r, std::string("a shard: ") + e.what()));
        }
        break;
      }
      case RecordKind::kAttemptStarted:
        if (ShardRecord* s = shard_of(r)) s->attempts = std::max(s->attempts, AttemptNumber(r.attempt_id()));
        break;
      case RecordKind::kAttemptResult: {
        ShardRecord* s = shard_of(r);
        if (s == nullptr) break;
        s->attempts = std::max(s->attempts, AttemptNumber(r.attempt_id()));
        const std::string* out = Carried(r);
        const auto got = fetched.find(r.attempt_id());
        if (!r.ok() || (out == nullptr && got == fetched.end()) ||
            s->state == workflow::ShardState::kSucceeded) {
          break;
        }
        s->state = workflow::ShardState::kSucceeded;
        s->winner = r.attempt_id();
        if (out == nullptr) {  // fetched from the host that ran it: in place already
          s->output_path = got->second;
          break;
        }
        s->output_path = fmt::format("{}/{}/{}.{}.out", dir, s->stage, s->shard_id,
                                     AttemptNumber(r.attempt_id()));
        a.files.emplace_back(s->output_path, *out);
        break;
      }
      case RecordKind::kStageMerged:
        if (!IsPathPart(r.stage())) return Err(Bad(engine_id, r, "its stage cannot name a file"));
        if (const std::string* out = Carried(r)) {
          const std::string path = dir + "/" + r.stage() + ".out";
          a.stage_outputs[r.stage()] = path;
          a.files.emplace_back(path, *out);
        }
        break;
      case RecordKind::kWorkflowFinished: {
        auto d = nlohmann::json::parse(r.detail(), nullptr, false);
        std::optional<workflow::WorkflowState> st;
        if (d.is_object()) st = workflow::WorkflowStateFromName(d.value("state", std::string()));
        w.state = st.value_or(r.ok() ? workflow::WorkflowState::kSucceeded
                                     : workflow::WorkflowState::kFailed);
        if (w.state == workflow::WorkflowState::kRunning) w.state = workflow::WorkflowState::kFailed;
        w.error = r.text();
        w.finished_ns = r.at_ns();
        break;
      }
      case RecordKind::kSubmitted:
      case RecordKind::kTakeover:
        break;
    }
  }
  // A stage that needs one whose output is not here yet (merged on the old owner, but too
  // big to carry) is not planned: its shards were cut from inputs this host does not have,
  // and it is planned again once they are merged here.
  std::set<std::string> blocked;
  if (auto spec = workflow::ParseWorkflow(w.spec_yaml, engine_id)) {
    for (const workflow::StageSpec& st : spec->stages) {
      for (const std::string& need : st.needs) {
        if (!a.stage_outputs.contains(need) && !a.stage_outputs.contains(st.name)) {
          blocked.insert(st.name);
        }
      }
    }
  }
  std::erase_if(shards, [&](const auto& kv) { return blocked.contains(kv.second.stage); });
  // A stage whose merged output came along is done with all its shards.
  for (auto& [key, s] : shards) {
    if (a.stage_outputs.contains(s.stage) && s.state != workflow::ShardState::kSucceeded) {
      s.state = workflow::ShardState::kSucceeded;
      s.winner = "merged:" + s.stage;
    }
    a.shards.push_back(std::move(s));
  }
  return a;
}

}  // namespace augur::mesh
