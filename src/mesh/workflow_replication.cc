#include "mesh/workflow_replication.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/yaml_reader.h"
#include "mesh/checked_codec.h"
#include "mesh/envelope.h"
#include "mesh/workflow_log.h"
#include "workflow/workflow_spec.h"

namespace augur::mesh {
namespace {

namespace fs = std::filesystem;
using workflow::AttemptState;

bool IsPrintable(std::string_view s, size_t max) {
  return !s.empty() && s.size() <= max &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c <= 0x7e; });
}

Status CheckStatus(const wire::StatusMessage& m) {
  switch (m.body_case()) {
    case wire::StatusMessage::kQuery:
      if (!IsPrintable(m.query().workflow(), kMaxWorkflowIdBytes)) {
        return Status::Corruption("status query: workflow is not 1 to 256 printable characters");
      }
      if (m.query().kind() > uint32_t(workflow::QueryKind::kHistory)) {
        return Status::Corruption(fmt::format("status query: unknown kind {}", m.query().kind()));
      }
      return Status::OK();
    case wire::StatusMessage::kReply:
      if (!m.reply().owner().empty() && !IsValidHostName(m.reply().owner())) {
        return Status::Corruption("status reply: owner is not a host name");
      }
      if (m.reply().answer_bytes() > 0) {
        if (!m.reply().found() || !m.reply().json().empty() || !m.reply().data().empty() ||
            !m.reply().error().empty() || !IsValidTransferId(m.reply().answer_transfer())) {
          return Status::Corruption(
              "status reply: an answer by transfer needs found, a transfer id and nothing else");
        }
        if (m.reply().answer_bytes() > kMaxRemoteAnswerBytes) {
          return Status::Corruption(fmt::format("status reply: an answer of {} bytes, over {}",
                                                m.reply().answer_bytes(), kMaxRemoteAnswerBytes));
        }
        return Status::OK();
      }
      if (m.reply().found() && m.reply().json().empty() && m.reply().data().empty() &&
          m.reply().error().empty()) {
        return Status::Corruption("status reply: found without an answer");
      }
      return Status::OK();
    case wire::StatusMessage::kTransfer:
      if (m.transfer().empty()) return Status::Corruption("status message: an empty transfer");
      return Status::OK();
    case wire::StatusMessage::BODY_NOT_SET:
      break;
  }
  return Status::Corruption("status message without a body");
}

// A file's first `max` bytes + 1 (enough to tell it is larger) and its size; nullopt when it
// cannot be read.
std::optional<std::pair<std::string, uint64_t>> ReadSmall(const std::string& path, size_t max) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return std::nullopt;
  const auto size = uint64_t(std::max<std::streamoff>(0, f.tellg()));
  f.seekg(0);
  std::string data(std::min<uint64_t>(size, max + 1), '\0');
  f.read(data.data(), std::streamsize(data.size()));
  data.resize(size_t(f.gcount()));
  return std::pair{std::move(data), size};
}

// Each workflow object of a status array gets who owns it and who answered.
std::string Annotate(const std::string& json, const std::string& owner, const std::string& by,
                     const char* source) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (!j.is_array()) return json;
  for (nlohmann::json& w : j) {
    w["owner"] = owner;
    w["answered_by"] = by;
    w["source"] = source;
  }
  return j.dump(2);
}

}  // namespace

Result<wire::StatusMessage> DecodeStatusMessage(std::string_view bytes, size_t max_bytes) {
  return DecodeChecked<wire::StatusMessage>(bytes, kStatusVersion, max_bytes, "status message",
                                            CheckStatus);
}

Result<std::string> EncodeStatusMessage(wire::StatusMessage msg, size_t max_bytes) {
  return EncodeChecked(std::move(msg), kStatusVersion, max_bytes, "status message", CheckStatus);
}

namespace {

// Answers by transfer on their way at once from one host: each holds up to
// kMaxRemoteAnswerBytes until acknowledged, so peers asking at a high rate cannot make this
// host hold more than 64 MiB of them.
constexpr size_t kMaxAnswersSending = 16;

// The transfer cores' options for answers: each chunk goes inside a StatusMessage.
TransferOptions AnswerTransferOptions(size_t max_payload_bytes) {
  TransferOptions t;
  t.max_payload_bytes = max_payload_bytes - kStatusTransferOverheadBytes;
  t.max_blob_bytes = kMaxRemoteAnswerBytes;
  return t;
}

}  // namespace

WorkflowReplication::WorkflowReplication(MeshLink* link, WorkflowReplicationOptions options)
    : link_(link),
      o_(std::move(options)),
      replicator_(link->self(), o_.replication),
      answer_sender_(link->self(), AnswerTransferOptions(o_.replication.max_payload_bytes)),
      answer_receiver_(link->self(), AnswerTransferOptions(o_.replication.max_payload_bytes)) {}

Result<std::set<std::string>> WorkflowReplication::Bind(workflow::ReplicationHost* host,
                                                        int64_t now) {
  host_ = host;
  auto rows = host_->workflow_store().Replicas();
  if (!rows) return Err(rows.error().Annotate("loading replicated workflows"));
  std::set<std::string> held;
  for (const auto& [rid, bytes] : *rows) {
    if (Status st = replicator_.Restore(bytes); !st.ok()) {
      // A copy that cannot be read is left out (its peers hold others); said once.
      spdlog::error("replication: workflow {}: persisted copy not loaded: {}", rid, st.message());
      continue;
    }
    held.insert(EngineIdOf(rid));
  }
  (void)replicator_.DrainDirty();
  if (!held.empty()) {
    spdlog::info("replication: {} workflow copies loaded; each continues here if this host owns it",
                 held.size());
  }
  bind_ns_ = now;
  Tick(now);
  return held;
}

bool WorkflowReplication::Handles(uint32_t channel) const {
  return channel == uint32_t(Channel::kReplication) || channel == uint32_t(Channel::kStatus);
}

void WorkflowReplication::Append(const std::string& rid, wire::StateRecord r, int64_t now,
                                 ReplicationOutput* out) {
  const auto kind = RecordKind(r.kind());
  Status st = Status::OK();
  if (kind == RecordKind::kAttemptResult) {
    auto v = replicator_.AppendResult(rid, std::move(r), now, out);
    if (!v) st = v.error();
  } else {
    auto seq = replicator_.Append(rid, std::move(r), now, out);
    if (!seq && !seq.error().IsAlreadyExists()) st = seq.error();
  }
  if (!st.ok()) {
    ++stats_.append_errors;
    uint64_t suppressed = 0;
    if (log_limit_.Allow(1, now, &suppressed)) {
      spdlog::warn("replication: workflow {}: a {} record not replicated: {}{}", EngineIdOf(rid),
                   RecordKindName(kind), st.message(),
                   suppressed ? fmt::format(" ({} more since the last such line)", suppressed) : "");
    }
  }
}

void WorkflowReplication::Recorded(const workflow::Changes& c, int64_t now) {
  now_ns_ = std::max(now_ns_, now);
  if (host_ == nullptr) return;
  ReplicationOutput out;
  // New workflows first: the records below may be theirs. Their replica ids are chosen from
  // the members as they are now (the replicator hears of a change at the next tick: a
  // takeover must not start in the middle of the executor's round).
  std::vector<std::string> live_now = o_.live ? o_.live() : live_;
  for (const workflow::WorkflowRecord& w : c.workflows) {
    // Submitted since this host replicates (a workflow restored from before has no log).
    if (w.state != workflow::WorkflowState::kRunning || w.submitted_ns < bind_ns_ ||
        logged_.contains(w.id) || !HeldId(w.id).empty()) {
      continue;
    }
    const std::string rid = ChooseReplicaId(w.id, self(), live_now);
    if (Status st = replicator_.Create(rid, SubmittedRecord(w), now, &out); !st.ok()) {
      ++stats_.append_errors;
      spdlog::warn("replication: workflow {} is not replicated: {}", w.id, st.message());
      continue;
    }
    Logged fresh;
    fresh.rid = rid;
    logged_[w.id] = std::move(fresh);
    ++stats_.created;
  }
  // Shards planned, by workflow and stage, in the order the engine made them.
  std::map<std::string, std::vector<workflow::ShardRecord>> planned;  // by replica id
  for (const workflow::ShardRecord& s : c.shards) {
    Logged* l = Owned(s.workflow_id);
    if (l == nullptr || !l->shards.insert({s.stage, s.index}).second) continue;
    planned[l->rid].push_back(s);
  }
  for (auto& [rid, shards] : planned) {
    std::stable_sort(shards.begin(), shards.end(),
                     [](const auto& a, const auto& b) { return a.stage < b.stage; });
    for (wire::StateRecord& r : ShardsPlannedRecords(shards)) Append(rid, std::move(r), now, &out);
  }
  for (const workflow::AttemptRecord& a : c.attempts) {
    Logged* owned = Owned(a.workflow_id);
    if (owned == nullptr) continue;
    Logged& l = *owned;
    const std::string rid = l.rid;
    const bool ended = a.state != AttemptState::kStarting && a.state != AttemptState::kRunning;
    if (!ended) {
      if (l.started.insert(a.attempt_id).second) {
        Append(rid, AttemptStartedRecord(a, self()), now, &out);
      }
      continue;
    }
    if (!l.ended.insert(a.attempt_id).second) continue;
    std::optional<std::pair<std::string, uint64_t>> output;
    if (a.state == AttemptState::kSucceeded) output = ReadSmall(a.output_path, kMaxInlineOutputBytes);
    const bool carried = output && output->second <= kMaxInlineOutputBytes;
    if (a.state == AttemptState::kSucceeded) ++(carried ? stats_.outputs_carried : stats_.outputs_too_big);
    Append(rid, AttemptResultRecord(a, self(), carried ? &output->first : nullptr,
                                    output ? output->second : 0),
           now, &out);
  }
  for (const auto& [key, path] : c.stage_outputs) {
    const size_t slash = key.find('/');
    Logged* l = slash == std::string::npos ? nullptr : Owned(key.substr(0, slash));
    if (l == nullptr) continue;
    const std::string stage = key.substr(slash + 1), rid = l->rid;
    if (!l->merged.insert(stage).second) continue;
    auto output = ReadSmall(path, kMaxInlineOutputBytes);
    const bool carried = output && output->second <= kMaxInlineOutputBytes;
    ++(carried ? stats_.outputs_carried : stats_.outputs_too_big);
    Append(rid, StageMergedRecord(stage, carried ? &output->first : nullptr, output ? output->second : 0),
           now, &out);
  }
  for (const workflow::WorkflowRecord& w : c.workflows) {
    if (w.state == workflow::WorkflowState::kRunning) continue;
    Logged* l = Owned(w.id);
    if (l == nullptr || l->finished) continue;
    l->finished = true;
    Append(l->rid, WorkflowFinishedRecord(w), now, &out);
    // The hosts that kept outputs of it for a takeover can drop them now.
    const WorkflowReplica* copy = replicator_.Find(l->rid);
    if (o_.forget_outputs && copy != nullptr) {
      if (auto hosts = OutputHolders(copy->log); !hosts.empty()) o_.forget_outputs(w.id, hosts);
    }
  }
  Flush(out, now);
}

WorkflowReplication::Logged* WorkflowReplication::Owned(const std::string& engine_id) {
  auto it = logged_.find(engine_id);
  return it != logged_.end() && replicator_.Owns(it->second.rid) ? &it->second : nullptr;
}

WorkflowReplication::Logged WorkflowReplication::LoggedOf(const WorkflowReplica& w) const {
  Logged l;
  l.rid = w.id;
  for (const wire::StateRecord& r : w.log) {
    switch (RecordKind(r.kind())) {
      case RecordKind::kShardsPlanned: {
        auto j = nlohmann::json::parse(r.text(), nullptr, false);
        if (!j.is_array()) break;
        for (const auto& e : j) {
          if (e.is_object() && e.contains("i") && e["i"].is_number_unsigned()) {
            l.shards.insert({r.stage(), e["i"].get<uint32_t>()});
          }
        }
        break;
      }
      case RecordKind::kAttemptStarted: l.started.insert(r.attempt_id()); break;
      case RecordKind::kAttemptResult: l.ended.insert(r.attempt_id()); break;
      case RecordKind::kStageMerged: l.merged.insert(r.stage()); break;
      case RecordKind::kWorkflowFinished: l.finished = true; break;
      default: break;
    }
  }
  return l;
}

void WorkflowReplication::Flush(ReplicationOutput& out, int64_t now) {
  // State before action: what the messages say is on disk first.
  if (host_ != nullptr) {
    std::vector<std::string> dirty = replicator_.DrainDirty();
    if (!dirty.empty()) {
      workflow::WorkflowStore& store = host_->workflow_store();
      Status st = store.Transaction([&]() -> Status {
        for (const std::string& rid : dirty) {
          auto snap = replicator_.Snapshot(rid);
          if (!snap) continue;
          AUGUR_RETURN_IF_ERROR(store.PutReplica(rid, *snap));
        }
        return Status::OK();
      });
      if (!st.ok()) {
        ++stats_.persist_errors;
        spdlog::error("replication: persisting {} workflow copies: {}", dirty.size(), st.message());
      }
    }
  }
  for (ReplicationOutgoing& m : out.messages) {
    (void)link_->Send(m.to, Channel::kReplication, std::move(m.payload));
  }
  out.messages.clear();
  std::vector<ReplicationEvent> events = std::move(out.events);
  out.events.clear();
  for (const ReplicationEvent& e : events) {
    const std::string engine_id = EngineIdOf(e.workflow_id);
    switch (e.kind) {
      case ReplicationEvent::Kind::kBecameOwner:
        StartAdopt(e.workflow_id, e.epoch, now);
        break;
      case ReplicationEvent::Kind::kLostOwnership:
        logged_.erase(engine_id);
        adopting_.erase(e.workflow_id);
        ++stats_.released;
        spdlog::info("replication: workflow {}: {} owns it now (epoch {}); this host stops acting "
                     "for it", engine_id, e.owner, EpochString(e.epoch));
        if (host_ != nullptr) host_->Release(engine_id, e.owner, now);
        break;
      case ReplicationEvent::Kind::kDropped:
        logged_.erase(engine_id);
        if (host_ != nullptr) {
          if (Status st = host_->workflow_store().DeleteReplica(e.workflow_id); !st.ok()) {
            ++stats_.persist_errors;
            spdlog::error("replication: dropping the copy of {}: {}", engine_id, st.message());
          }
        }
        break;
      case ReplicationEvent::Kind::kCommitted:
        break;
    }
  }
  // Adopting and releasing write records the replicator may have to send.
  if (!out.messages.empty() || !out.events.empty()) return Flush(out, now);
  Publish();
}

void WorkflowReplication::OnMessage(const std::string& from, uint32_t channel,
                                    const std::string& payload, int64_t now) {
  now_ns_ = std::max(now_ns_, now);
  if (channel == uint32_t(Channel::kStatus)) {
    auto m = DecodeStatusMessage(payload, o_.replication.max_payload_bytes);
    if (!m) return Malformed(from, m.error(), now);
    if (m->has_transfer()) return OnAnswerTransfer(from, m->transfer(), now);
    return OnStatus(from, *m, now);
  }
  auto m = DecodeReplication(payload, o_.replication.max_payload_bytes);
  if (!m) return Malformed(from, m.error(), now);
  ReplicationOutput out;
  // Who should own what is judged on the membership of now, not of the last tick (a host
  // that has just joined would otherwise take a workflow from an owner it has not seen yet).
  RefreshMembers(now, &out);
  replicator_.Handle(from, *m, now, &out);
  Flush(out, now);
}

void WorkflowReplication::RefreshMembers(int64_t now, ReplicationOutput* out) {
  if (!o_.live) return;
  std::vector<std::string> live = o_.live();
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  if (live == live_) return;
  spdlog::info("replication: live members: {}", fmt::join(live, ", "));
  live_ = live;
  replicator_.SetMembers(std::move(live), now, out);
}

void WorkflowReplication::Tick(int64_t now) {
  now_ns_ = std::max(now_ns_, now);
  ReplicationOutput out;
  RefreshMembers(now, &out);
  replicator_.Tick(now, &out);
  Prune(now);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now < it->second.deadline_ns) {
      ++it;
      continue;
    }
    Pending p = std::move(it->second);
    const uint64_t id = it->first;
    it = pending_.erase(it);
    ++stats_.status_timeouts;
    // Its answer's transfer, if one was on its way, is not wanted any more.
    for (auto a = answers_in_.begin(); a != answers_in_.end();) {
      if (a->second.query_id != id) {
        ++a;
        continue;
      }
      TransferOutput tout;
      (void)answer_receiver_.Reject(a->first.first, a->first.second, "the query timed out", now,
                                    &tout);
      a = answers_in_.erase(a);
      HandleAnswerTransfer(tout, false, now);
    }
    if (p.fallback) {
      p.done(std::move(*p.fallback));
    } else {
      p.done(Err(Status::Unavailable(fmt::format(
          "no host answered for workflow '{}' within {:.1f} s", p.workflow,
          double(o_.status_timeout_ns) / 1e9))));
    }
  }
  TransferOutput sent, received;
  answer_sender_.Tick(now, &sent);
  answer_receiver_.Tick(now, &received);
  HandleAnswerTransfer(sent, true, now);
  HandleAnswerTransfer(received, false, now);
  Flush(out, now);
}

std::optional<int64_t> WorkflowReplication::NextDeadline() const {
  std::optional<int64_t> next = replicator_.NextDeadline();
  for (const auto& [id, p] : pending_) {
    if (!next || p.deadline_ns < *next) next = p.deadline_ns;
  }
  for (std::optional<int64_t> t : {answer_sender_.NextDeadline(), answer_receiver_.NextDeadline()}) {
    if (t && (!next || *t < *next)) next = t;
  }
  return next;
}

std::string WorkflowReplication::HeldId(const std::string& workflow) const {
  std::string by_name;
  int64_t newest = 0;
  for (const std::string& rid : replicator_.Workflows()) {
    if (rid == workflow || EngineIdOf(rid) == workflow) return rid;
    const WorkflowReplica* w = replicator_.Find(rid);
    if (w != nullptr && !w->log.empty() && w->log[0].name() == workflow &&
        (by_name.empty() || w->log[0].at_ns() > newest)) {
      by_name = rid;
      newest = w->log[0].at_ns();
    }
  }
  return by_name;
}

std::string WorkflowReplication::ReplicaStatus(const std::string& rid) const {
  const WorkflowReplica* w = replicator_.Find(rid);
  if (w == nullptr || w->log.empty()) return "[]";
  const wire::StateRecord& sub = w->log[0];
  // Stages in the file's order; then shard counts and merges from the log.
  std::vector<std::string> stages;
  if (auto spec = workflow::ParseWorkflow(sub.text(), EngineIdOf(rid))) {
    for (const auto& st : spec->stages) stages.push_back(st.name);
  }
  std::map<std::string, std::set<std::string>> shards, won;
  std::set<std::string> merged;
  std::string state = "running", error;
  int64_t finished_ns = 0;
  for (const wire::StateRecord& r : w->log) {
    switch (RecordKind(r.kind())) {
      case RecordKind::kShardsPlanned: {
        auto j = nlohmann::json::parse(r.text(), nullptr, false);
        if (!j.is_array()) break;
        for (const auto& e : j) {
          if (e.is_object() && e.contains("i")) shards[r.stage()].insert(e["i"].dump());
        }
        break;
      }
      case RecordKind::kAttemptResult:
        if (r.ok()) won[r.stage()].insert(r.shard());
        break;
      case RecordKind::kStageMerged: merged.insert(r.stage()); break;
      case RecordKind::kWorkflowFinished: {
        auto d = nlohmann::json::parse(r.detail(), nullptr, false);
        state = d.is_object() ? d.value("state", r.ok() ? "succeeded" : "failed")
                              : (r.ok() ? "succeeded" : "failed");
        error = r.text();
        finished_ns = r.at_ns();
        break;
      }
      default: break;
    }
  }
  nlohmann::json st = nlohmann::json::array();
  for (const std::string& name : stages) {
    const size_t total = shards[name].size(), done = won[name].size();
    st.push_back({{"name", name},
                  {"state", merged.contains(name) ? "done" : total > 0 ? "running" : "waiting"},
                  {"shards", total},
                  {"counts", {{"succeeded", done}, {"pending_or_running", total - std::min(total, done)}}}});
  }
  nlohmann::json j = nlohmann::json::array();
  j.push_back({{"id", EngineIdOf(rid)},
               {"name", sub.name()},
               {"state", state},
               {"submitted_ns", sub.at_ns()},
               {"finished_ns", finished_ns},
               {"error", error},
               {"epoch", EpochString(w->epoch)},
               {"log_records", w->log.size()},
               {"committed", w->committed},
               {"stages", std::move(st)}});
  return Annotate(j.dump(), w->epoch.owner, self(), "replica");
}

void WorkflowReplication::RemoteStatus(const std::string& workflow, bool explain,
                                       std::function<void(Result<std::string>)> done,
                                       int64_t now) {
  Ask(
      workflow::QueryKind::kStatus, workflow, "", 0, explain,
      [done = std::move(done)](Result<workflow::RemoteAnswer> r) {
        done(r ? Result<std::string>(std::move(r->body)) : Result<std::string>(Err(r.error())));
      },
      now);
}

void WorkflowReplication::RemoteQuery(workflow::QueryKind kind, const std::string& workflow,
                                      const std::string& stage, size_t limit,
                                      std::function<void(Result<workflow::RemoteAnswer>)> done,
                                      int64_t now) {
  Ask(kind, workflow, stage, limit, false, std::move(done), now);
}

void WorkflowReplication::Ask(workflow::QueryKind kind, const std::string& workflow,
                              const std::string& stage, size_t limit, bool explain,
                              std::function<void(Result<workflow::RemoteAnswer>)> done,
                              int64_t now) {
  const std::string rid = HeldId(workflow);
  std::vector<std::string> ask;
  std::optional<Result<workflow::RemoteAnswer>> fallback;
  if (!rid.empty()) {
    fallback = ReplicaAnswer(rid, kind, stage, limit);
    const std::string& owner = replicator_.Find(rid)->epoch.owner;
    if (owner != self() && std::binary_search(live_.begin(), live_.end(), owner)) ask.push_back(owner);
  } else {
    for (const std::string& h : live_) {
      if (h != self()) ask.push_back(h);
    }
  }
  if (ask.empty()) {
    if (fallback) return done(std::move(*fallback));
    return done(Err(Status::NotFound(fmt::format(
        "no workflow '{}' here, and no other live host to ask", workflow))));
  }
  const uint64_t id = next_query_++;
  Pending& p = pending_[id];
  p.done = std::move(done);
  p.fallback = std::move(fallback);
  p.workflow = workflow;
  p.outstanding = ask.size();
  p.deadline_ns = now + o_.status_timeout_ns;
  for (const std::string& h : ask) {
    wire::StatusMessage m;
    wire::StatusQuery* q = m.mutable_query();
    q->set_query_id(id);
    q->set_workflow(workflow);
    q->set_explain(explain);
    q->set_kind(uint32_t(kind));
    q->set_stage(stage);
    q->set_limit(uint32_t(std::min<size_t>(limit, UINT32_MAX)));
    ++stats_.status_queries;
    SendStatus(h, std::move(m));
  }
  Publish();
}

Result<workflow::RemoteAnswer> WorkflowReplication::ReplicaAnswer(const std::string& rid,
                                                                  workflow::QueryKind kind,
                                                                  const std::string& stage,
                                                                  size_t limit) const {
  const WorkflowReplica* w = replicator_.Find(rid);
  workflow::RemoteAnswer a;
  a.owner = w != nullptr ? w->epoch.owner : "";
  a.answered_by = self();
  if (kind == workflow::QueryKind::kStatus) {
    a.body = ReplicaStatus(rid);
    return a;
  }
  if (w == nullptr || w->log.empty()) return Err(Status::NotFound("no copy of " + rid));
  if (kind == workflow::QueryKind::kHistory) {
    // The attempts' results as the log has them (the owner's history has more columns).
    nlohmann::json rows = nlohmann::json::array();
    for (auto r = w->log.rbegin(); r != w->log.rend() && (limit == 0 || rows.size() < limit); ++r) {
      if (RecordKind(r->kind()) != RecordKind::kAttemptResult) continue;
      auto d = nlohmann::json::parse(r->detail(), nullptr, false);
      rows.push_back({{"attempt", r->attempt_id()},
                      {"workflow", EngineIdOf(rid)},
                      {"name", w->log[0].name()},
                      {"stage", r->stage()},
                      {"shard", std::atoi(r->shard().c_str())},
                      {"state", d.is_object() ? d.value("state", r->ok() ? "succeeded" : "failed")
                                              : (r->ok() ? "succeeded" : "failed")},
                      {"started_ns", r->at_ns()},
                      {"host", r->host()},
                      {"error", r->text()}});
    }
    a.body = Annotate(rows.dump(), a.owner, self(), "replica");
    return a;
  }
  // A stage's merged output, when the copy carries it.
  std::string name = stage;
  if (name.empty()) {
    if (auto spec = workflow::ParseWorkflow(w->log[0].text(), EngineIdOf(rid));
        spec && !spec->stages.empty()) {
      name = spec->stages.back().name;
    }
  }
  for (const wire::StateRecord& r : w->log) {
    if (RecordKind(r.kind()) != RecordKind::kStageMerged || r.stage() != name) continue;
    if (!r.digest().empty() && r.output().size() == r.size() &&
        OutputDigest(r.output()) == r.digest()) {
      a.body = r.output();
      return a;
    }
    return Err(Status::NotFound(fmt::format(
        "workflow {}: the copy on {} does not carry stage {}'s output ({} bytes); its owner {} "
        "does not answer: ask it",
        EngineIdOf(rid), self(), name, r.size(), a.owner)));
  }
  return Err(Status::NotFound(
      fmt::format("workflow {}: stage '{}' has no result yet", EngineIdOf(rid), name)));
}

void WorkflowReplication::SendStatus(const std::string& to, wire::StatusMessage m) {
  auto bytes = EncodeStatusMessage(std::move(m), o_.replication.max_payload_bytes);
  if (!bytes) {
    ++stats_.append_errors;
    spdlog::warn("replication: status message to {} not sent: {}", to, bytes.error().message());
    return;
  }
  (void)link_->Send(to, Channel::kStatus, std::move(*bytes));
}

void WorkflowReplication::Answer(uint64_t id, Result<workflow::RemoteAnswer> r) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  p.done(std::move(r));
}

void WorkflowReplication::OnStatus(const std::string& from, const wire::StatusMessage& m,
                                   int64_t now) {
  if (m.has_query()) {
    const wire::StatusQuery& q = m.query();
    const auto kind = workflow::QueryKind(q.kind());
    wire::StatusMessage rep;
    wire::StatusReply* r = rep.mutable_reply();
    r->set_query_id(q.query_id());
    Result<std::string> local = host_ == nullptr
                                    ? Result<std::string>(Err(Status::NotFound("no engine")))
                                : kind == workflow::QueryKind::kStatus
                                    ? host_->LocalStatus(q.workflow(), q.explain())
                                    : host_->LocalQuery(kind, q.workflow(), q.stage(), q.limit());
    const char* what = kind == workflow::QueryKind::kResult    ? "its result"
                       : kind == workflow::QueryKind::kHistory ? "its history"
                                                               : "its status";
    if (local) {
      r->set_found(true);
      r->set_from_owner(true);
      r->set_owner(self());
      if (kind == workflow::QueryKind::kResult) {
        r->set_data(std::move(*local));
      } else {
        r->set_json(Annotate(*local, self(), self(), "owner"));
      }
    } else if (const std::string rid = HeldId(q.workflow()); !rid.empty()) {
      r->set_found(true);
      auto a = ReplicaAnswer(rid, kind, q.stage(), q.limit());
      r->set_owner(replicator_.Find(rid)->epoch.owner);
      if (!a) {
        r->set_error(a.error().message());
      } else if (kind == workflow::QueryKind::kResult) {
        r->set_data(std::move(a->body));
      } else {
        r->set_json(std::move(a->body));
      }
    }
    // Too big for one message (a long explain or history, a large result): the reply says so
    // and the answer follows by transfer; over kMaxRemoteAnswerBytes it is refused, naming
    // the size and the host that has it.
    if (rep.ByteSizeLong() + 64 > o_.replication.max_payload_bytes) {
      const size_t size = std::max(r->json().size(), r->data().size());
      const bool busy = answer_sender_.active() >= kMaxAnswersSending;
      if (size <= kMaxRemoteAnswerBytes && !busy) {
        std::string body = r->data().empty() ? std::move(*r->mutable_json())
                                             : std::move(*r->mutable_data());
        r->clear_json();
        r->clear_data();
        // Unique per asker and query, also across the asker's restarts (its ids start again).
        const std::string id = fmt::format("answer.{}.{}", q.query_id(), now);
        TransferOutput tout;
        Status st = answer_sender_.Send(from, id, std::move(body), now, &tout);
        if (st.ok()) {
          r->set_answer_bytes(size);
          r->set_answer_transfer(id);
          ++stats_.status_answers;
          ++stats_.answers_sent_by_transfer;
          Publish();  // counted before the asker can have it
          SendStatus(from, std::move(rep));  // before its chunks: the asker then expects them
          HandleAnswerTransfer(tout, true, now);
          return;
        }
        spdlog::warn("replication: {} for {}: not sent by transfer: {}", what, from, st.message());
      }
      ++stats_.answers_refused;
      r->clear_json();
      r->clear_data();
      r->set_error(
          size <= kMaxRemoteAnswerBytes && busy
              ? fmt::format("workflow {}: {} is {} bytes, and {} is sending {} other answers "
                            "that large: try again, or ask {} (augurctl on that host)",
                            q.workflow(), what, size, self(), kMaxAnswersSending, r->owner())
              : fmt::format("workflow {}: {} is {} bytes, more than a mesh message carries "
                            "({} bytes): ask {} (augurctl on that host)",
                            q.workflow(), what, size, o_.replication.max_payload_bytes,
                            r->owner()));
    }
    ++stats_.status_answers;
    SendStatus(from, std::move(rep));
    Publish();
    return;
  }
  const wire::StatusReply& r = m.reply();
  auto it = pending_.find(r.query_id());
  if (it == pending_.end()) return;  // answered already, or timed out
  if (r.answer_bytes() > 0) {
    // The answer follows by transfer: its chunks are expected from now on, and the query
    // waits for them (the reply counts once they are in).
    AnswerIn& a = answers_in_[{from, r.answer_transfer()}];
    a.query_id = r.query_id();
    a.size = r.answer_bytes();
    a.from_owner = r.from_owner();
    a.owner = r.owner();
    it->second.deadline_ns = std::max(it->second.deadline_ns, now + o_.answer_timeout_ns);
    return;
  }
  Result<workflow::RemoteAnswer> got = Err(Status::NotFound(""));
  if (r.found()) {
    if (!r.error().empty()) {
      got = Err(Status::ResourceExhausted(r.error()));
    } else {
      workflow::RemoteAnswer a;
      a.body = r.data().empty() ? r.json() : r.data();
      a.owner = r.owner();
      a.answered_by = from;
      a.from_owner = r.from_owner();
      got = std::move(a);
    }
  }
  Replied(r.query_id(), r.found(), r.from_owner(), std::move(got));
}

void WorkflowReplication::Replied(uint64_t id, bool found, bool from_owner,
                                  Result<workflow::RemoteAnswer> got) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // answered already, or timed out
  Pending& p = it->second;
  if (found && from_owner) return Answer(id, std::move(got));
  if (found && (!p.fallback || !*p.fallback)) p.fallback = std::move(got);
  if (--p.outstanding > 0) return;
  if (p.fallback) return Answer(id, std::move(*p.fallback));
  Answer(id, Err(Status::NotFound(
                 fmt::format("no host of the mesh knows workflow '{}'", p.workflow))));
}

void WorkflowReplication::OnAnswerTransfer(const std::string& from, const std::string& bytes,
                                           int64_t now) {
  auto msg = DecodeTransfer(bytes, o_.replication.max_payload_bytes - kStatusTransferOverheadBytes);
  if (!msg) return Malformed(from, msg.error(), now);
  TransferOutput out;
  if (!ForTransferReceiver(*msg)) {
    answer_sender_.Handle(from, *msg, now, &out);
    return HandleAnswerTransfer(out, true, now);
  }
  // Only the transfers of answers this host waits for (announced by their reply).
  const std::string& id =
      msg->has_chunk() ? msg->chunk().transfer_id() : msg->abort().transfer_id();
  if (!answers_in_.contains({from, id})) return;  // early or stray: a chunk is sent again
  answer_receiver_.Handle(from, *msg, now, &out);
  HandleAnswerTransfer(out, false, now);
}

void WorkflowReplication::HandleAnswerTransfer(TransferOutput& out, bool sender, int64_t now) {
  for (TransferOutgoing& o : out.messages) {
    wire::StatusMessage m;
    m.set_transfer(std::move(o.payload));
    SendStatus(o.to, std::move(m));
  }
  for (TransferEvent& e : out.events) {
    if (sender) {
      if (e.kind == TransferEvent::Kind::kFailed) {
        ++stats_.answer_transfers_failed;
        uint64_t suppressed = 0;
        if (log_limit_.Allow(2, now, &suppressed)) {
          spdlog::warn("replication: an answer for {} was not sent: {}{}", e.peer, e.error,
                       suppressed ? fmt::format(" ({} more since the last such line)", suppressed)
                                  : "");
        }
      }
      continue;
    }
    auto it = answers_in_.find({e.peer, e.transfer_id});
    if (it == answers_in_.end()) continue;
    AnswerIn& a = it->second;
    if (e.kind == TransferEvent::Kind::kData) {
      if (e.offset == a.body.size()) a.body += e.data;
      continue;
    }
    AnswerIn done = std::move(a);
    answers_in_.erase(it);
    Result<workflow::RemoteAnswer> got = Err(Status::Unavailable(""));
    if (e.kind == TransferEvent::Kind::kComplete && done.body.size() == done.size) {
      ++stats_.answers_received_by_transfer;
      workflow::RemoteAnswer r;
      r.body = std::move(done.body);
      r.owner = done.owner;
      r.answered_by = e.peer;
      r.from_owner = done.from_owner;
      got = std::move(r);
    } else {
      ++stats_.answer_transfers_failed;
      got = Err(Status::Unavailable(fmt::format(
          "the answer from {} ({} bytes) did not arrive whole: {}", e.peer, done.size,
          e.kind == TransferEvent::Kind::kFailed
              ? e.error
              : fmt::format("{} bytes came", done.body.size()))));
    }
    Publish();  // the counts are seen by the time the answer is
    Replied(done.query_id, true, done.from_owner, std::move(got));
  }
  Publish();
}

void WorkflowReplication::Malformed(const std::string& from, const Status& why, int64_t now) {
  ++stats_.malformed;
  uint64_t suppressed = 0;
  if (log_limit_.Allow(0, now, &suppressed)) {
    spdlog::warn("replication: dropped a message from {}: {}{}", from, why.message(),
                 suppressed ? fmt::format(" ({} more since the last such line)", suppressed) : "");
  }
  Publish();
}

void WorkflowReplication::Publish() {
  stats_.replication = replicator_.stats();
  stats_.held = replicator_.Workflows().size();
  stats_.owned = 0;
  for (const std::string& rid : replicator_.Workflows()) stats_.owned += replicator_.Owns(rid);
  std::lock_guard lock(stats_mu_);
  published_ = stats_;
}

WorkflowReplicationStats WorkflowReplication::Stats() const {
  std::lock_guard lock(stats_mu_);
  return published_;
}

std::string WorkflowReplication::StatsJson() const {
  const WorkflowReplicationStats s = Stats();
  const ReplicationStats& r = s.replication;
  return nlohmann::json{{"created", s.created},
                        {"adopted", s.adopted},
                        {"released", s.released},
                        {"append_errors", s.append_errors},
                        {"outputs_carried", s.outputs_carried},
                        {"outputs_too_big", s.outputs_too_big},
                        {"outputs_fetched", s.outputs_fetched},
                        {"outputs_rerun", s.outputs_rerun},
                        {"pruned", s.pruned},
                        {"malformed", s.malformed},
                        {"persist_errors", s.persist_errors},
                        {"status_queries", s.status_queries},
                        {"status_answers", s.status_answers},
                        {"status_timeouts", s.status_timeouts},
                        {"answers_sent_by_transfer", s.answers_sent_by_transfer},
                        {"answers_received_by_transfer", s.answers_received_by_transfer},
                        {"answer_transfers_failed", s.answer_transfers_failed},
                        {"answers_refused", s.answers_refused},
                        {"held", s.held},
                        {"owned", s.owned},
                        {"appended", r.appended},
                        {"records_sent", r.records_sent},
                        {"records_resent", r.records_resent},
                        {"catch_up_records", r.catch_up_records},
                        {"acks", r.acks},
                        {"stale_epoch", r.stale_epoch},
                        {"bad_messages", r.bad_messages},
                        {"duplicate_results", r.duplicate_results},
                        {"late_results", r.late_results},
                        {"takeovers", r.takeovers},
                        {"step_downs", r.step_downs},
                        {"takeovers_deferred", r.takeovers_deferred},
                        {"takeovers_abandoned", r.takeovers_abandoned},
                        {"fetched_records", r.fetched_records},
                        {"truncated_records", r.truncated_records},
                        {"orphans_recorded", r.orphans_recorded}}
      .dump();
}

// --- Taking over: outputs the log does not carry are fetched first -----------------------

void WorkflowReplication::StartAdopt(const std::string& rid, const Epoch& epoch, int64_t now) {
  const WorkflowReplica* w = replicator_.Find(rid);
  if (w == nullptr || host_ == nullptr) return;
  const std::string engine_id = EngineIdOf(rid);
  std::vector<UncarriedOutput> want;
  if (o_.fetch_output) want = UncarriedOutputs(w->log);
  const uint64_t generation = ++adopt_generation_;
  Adopting& adopting = adopting_[rid];
  adopting = Adopting();
  adopting.generation = generation;
  adopting.outstanding = 1;
  if (!want.empty()) {
    spdlog::info(
        "replication: workflow {}: this host owns it now (epoch {}); fetching {} shard "
        "outputs the log does not carry from the hosts that ran them",
        engine_id, EpochString(epoch), want.size());
  }
  auto rerun = [this, engine_id](const UncarriedOutput& o, const std::string& why) {
    ++stats_.outputs_rerun;
    spdlog::warn(
        "replication: workflow {}: the output of {} ({} bytes) was not fetched from {}: "
        "{}; the shard runs again",
        engine_id, o.attempt_id, o.size, o.host, why);
  };
  for (const UncarriedOutput& o : want) {
    if (o.host != self() && !std::binary_search(live_.begin(), live_.end(), o.host)) {
      rerun(o, "that host is not live");
      continue;
    }
    ++adopting_[rid].outstanding;
    const std::string dest = FetchedOutputPath(host_->work_root(), engine_id, o);
    o_.fetch_output(
        o.host, o.attempt_id, o.size, dest,
        [this, rid, generation, o, dest, rerun](Status st) {
          auto it = adopting_.find(rid);
          if (it == adopting_.end() || it->second.generation != generation) {
            std::error_code ec;
            fs::remove(dest, ec);  // no longer wanted here
            return;
          }
          if (st.ok()) {
            ++stats_.outputs_fetched;
            it->second.fetched[o.attempt_id] = dest;
          } else {
            rerun(o, st.message());
          }
          if (--it->second.outstanding == 0) FinishAdopt(rid, now_ns_);
        },
        now);
  }
  auto it = adopting_.find(rid);
  if (it != adopting_.end() && it->second.generation == generation &&
      --it->second.outstanding == 0) {
    FinishAdopt(rid, now);
  }
  Publish();
}

void WorkflowReplication::FinishAdopt(const std::string& rid, int64_t now) {
  auto it = adopting_.find(rid);
  if (it == adopting_.end()) return;
  const Adopting a = std::move(it->second);
  adopting_.erase(it);
  const WorkflowReplica* w = replicator_.Find(rid);
  if (w == nullptr || host_ == nullptr || !replicator_.Owns(rid)) return;  // lost meanwhile
  const std::string engine_id = EngineIdOf(rid);
  // What the log holds is logged; what the engine plans from here on is appended.
  logged_[engine_id] = LoggedOf(*w);
  auto adopted = Rebuild(engine_id, w->log, host_->work_root(), a.fetched);
  Status st = adopted ? host_->Adopt(*adopted, now) : adopted.error();
  if (!st.ok()) {
    spdlog::error(
        "replication: workflow {}: this host owns it (epoch {}) but cannot continue "
        "it: {}",
        engine_id, EpochString(w->epoch), st.message());
    return;
  }
  ++stats_.adopted;
  spdlog::info(
      "replication: workflow {}: this host owns it now (epoch {}, {} records, {} of "
      "its outputs carried, {} fetched)",
      engine_id, EpochString(w->epoch), w->log.size(), adopted->files.size(), a.fetched.size());
  Publish();
}

// --- Retention of finished workflows' copies ---------------------------------------------

void WorkflowReplication::Prune(int64_t now) {
  if (o_.retention_ns <= 0 || now < next_prune_ns_ || host_ == nullptr) return;
  next_prune_ns_ = now + o_.prune_interval_ns;
  std::vector<std::string> old;
  for (const std::string& rid : replicator_.Workflows()) {
    const WorkflowReplica* w = replicator_.Find(rid);
    if (w == nullptr || adopting_.contains(rid)) continue;
    for (auto r = w->log.rbegin(); r != w->log.rend(); ++r) {
      if (RecordKind(r->kind()) != RecordKind::kWorkflowFinished) continue;
      if (r->at_ns() < now - o_.retention_ns) old.push_back(rid);
      break;
    }
    if (old.size() >= o_.prune_batch) {
      next_prune_ns_ = now;  // more at the next tick
      break;
    }
  }
  for (const std::string& rid : old) {
    (void)replicator_.Forget(rid);
    logged_.erase(EngineIdOf(rid));
    if (Status st = host_->workflow_store().DeleteReplica(rid); !st.ok()) {
      ++stats_.persist_errors;
      spdlog::error("replication: dropping the copy of {}: {}", EngineIdOf(rid), st.message());
    }
    ++stats_.pruned;
  }
  if (!old.empty()) {
    spdlog::info("replication: dropped the copies of {} workflows that finished more than {} ago",
                 old.size(),
                 yaml::FormatDuration(std::chrono::milliseconds(o_.retention_ns / 1'000'000)));
    Publish();
  }
}

}  // namespace augur::mesh
