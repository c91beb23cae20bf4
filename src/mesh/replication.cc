#include "mesh/replication.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "mesh/checked_codec.h"
#include "mesh/envelope.h"  // IsValidHostName
#include "mesh/rendezvous.h"

namespace augur::mesh {
namespace {

constexpr size_t kMaxSummaryRuns = 64;   // epochs described in a LogSummary (the latest)
constexpr size_t kMaxReplicaNames = 64;  // names in Append.replicas
constexpr size_t kMaxBatchRecords = 512;
constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 4;

bool IsPrintableId(std::string_view id, size_t max) {
  return !id.empty() && id.size() <= max &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c <= 0x7e; });
}

Epoch FromWire(const wire::Epoch& e) { return Epoch{e.number(), e.owner()}; }
wire::Epoch ToWire(const Epoch& e) {
  wire::Epoch w;
  w.set_number(e.number);
  w.set_owner(e.owner);
  return w;
}
Epoch EpochOf(const wire::StateRecord& r) { return FromWire(r.epoch()); }

Status CheckEpoch(const wire::Epoch& e, std::string_view what) {
  if (e.number() == 0 || !IsValidHostName(e.owner())) {
    return Status::Corruption(fmt::format("{}: epoch needs a number >= 1 and a host name", what));
  }
  return Status::OK();
}

Status CheckSummary(const wire::LogSummary& s, std::string_view what) {
  if (size_t(s.runs_size()) > kMaxSummaryRuns) {
    return Status::Corruption(fmt::format("{}: {} epoch runs (at most {})", what, s.runs_size(), kMaxSummaryRuns));
  }
  if (s.last_seq() > 0 && s.runs_size() == 0) {
    return Status::Corruption(fmt::format("{}: a log of {} records without epochs", what, s.last_seq()));
  }
  uint64_t prev_first = 0;
  const wire::EpochRun* prev = nullptr;
  for (const wire::EpochRun& r : s.runs()) {
    AUGUR_RETURN_IF_ERROR(CheckEpoch(r.epoch(), what));
    if (r.first_seq() <= prev_first || r.first_seq() > s.last_seq() ||
        (prev && FromWire(prev->epoch()) >= FromWire(r.epoch()))) {
      return Status::Corruption(fmt::format("{}: epoch runs are not in increasing order inside 1..{}",
                                            what, s.last_seq()));
    }
    prev_first = r.first_seq();
    prev = &r;
  }
  return Status::OK();
}

Status CheckRecords(const google::protobuf::RepeatedPtrField<wire::StateRecord>& rs,
                    uint64_t first_seq, const Epoch* at_most, std::string_view what) {
  uint64_t seq = first_seq;
  Epoch prev;
  for (const wire::StateRecord& r : rs) {
    AUGUR_RETURN_IF_ERROR(CheckRecord(r, true).Annotate(what));
    if (r.seq() != seq++) {
      return Status::Corruption(fmt::format("{}: record seq {} where {} was due", what, r.seq(), seq - 1));
    }
    const Epoch e = EpochOf(r);
    if (e < prev || (at_most && *at_most < e)) {
      return Status::Corruption(fmt::format("{}: record {} has epoch {} out of order", what, r.seq(), EpochString(e)));
    }
    prev = e;
  }
  return Status::OK();
}

Status CheckOrphans(const google::protobuf::RepeatedPtrField<wire::StateRecord>& rs,
                    std::string_view what) {
  if (size_t(rs.size()) > kMaxOrphans) {
    return Status::Corruption(fmt::format("{}: {} orphans (at most {})", what, rs.size(), kMaxOrphans));
  }
  for (const wire::StateRecord& r : rs) {
    AUGUR_RETURN_IF_ERROR(CheckRecord(r, true).Annotate(what));
    if (r.kind() != uint32_t(RecordKind::kAttemptResult)) {
      return Status::Corruption(fmt::format("{}: an orphan that is not a result", what));
    }
  }
  return Status::OK();
}

Status CheckMessage(const wire::ReplicationMessage& m) {
  if (!IsPrintableId(m.workflow_id(), kMaxWorkflowIdBytes)) {
    return Status::Corruption("replication message: workflow id is not 1 to 256 printable characters");
  }
  const std::string what = fmt::format("replication message for '{}'", m.workflow_id());
  AUGUR_RETURN_IF_ERROR(CheckEpoch(m.epoch(), what));
  const Epoch epoch = FromWire(m.epoch());
  using Body = wire::ReplicationMessage::BodyCase;
  switch (m.body_case()) {
    case Body::kAppend: {
      const wire::Append& a = m.append();
      if (a.prev_seq() > 0) AUGUR_RETURN_IF_ERROR(CheckEpoch(a.prev_epoch(), what + ": append's previous record"));
      if (size_t(a.records_size()) > kMaxBatchRecords || size_t(a.replicas_size()) > kMaxReplicaNames) {
        return Status::Corruption(what + ": append with too many records or replicas");
      }
      for (const std::string& h : a.replicas()) {
        if (!IsValidHostName(h)) return Status::Corruption(what + ": append names a bad replica host");
      }
      AUGUR_RETURN_IF_ERROR(CheckRecords(a.records(), a.prev_seq() + 1, &epoch, what + ": append"));
      if (a.records_size() > 0 && a.prev_seq() > 0 &&
          EpochOf(a.records(0)) < FromWire(a.prev_epoch())) {
        return Status::Corruption(what + ": append's records are older than the record before them");
      }
      return Status::OK();
    }
    case Body::kAppendReply:
      AUGUR_RETURN_IF_ERROR(CheckSummary(m.append_reply().summary(), what + ": append reply"));
      return CheckOrphans(m.append_reply().orphans(), what + ": append reply");
    case Body::kProbe:
      return Status::OK();
    case Body::kProbeReply:
      AUGUR_RETURN_IF_ERROR(CheckSummary(m.probe_reply().summary(), what + ": probe reply"));
      return CheckOrphans(m.probe_reply().orphans(), what + ": probe reply");
    case Body::kFetch:
      if (m.fetch().from_seq() == 0) return Status::Corruption(what + ": fetch from seq 0");
      return Status::OK();
    case Body::kFetchReply: {
      const wire::FetchReply& f = m.fetch_reply();
      if (size_t(f.records_size()) > kMaxBatchRecords) return Status::Corruption(what + ": fetch reply with too many records");
      const uint64_t first = f.records_size() > 0 ? f.records(0).seq() : 1;
      AUGUR_RETURN_IF_ERROR(CheckRecords(f.records(), first, &epoch, what + ": fetch reply"));
      if (f.records_size() > 0 && f.records(f.records_size() - 1).seq() > f.last_seq()) {
        return Status::Corruption(what + ": fetch reply past its last seq");
      }
      return Status::OK();
    }
    case Body::kStale:
      return Status::OK();
    case Body::kRelease:
      AUGUR_RETURN_IF_ERROR(CheckSummary(m.release().summary(), what + ": release"));
      if (size_t(m.release().resolved_size()) > kMaxOrphans) return Status::Corruption(what + ": release names too many orphans");
      for (const std::string& a : m.release().resolved()) {
        if (a.empty() || a.size() > kMaxRecordFieldBytes) return Status::Corruption(what + ": release names a bad attempt id");
      }
      return Status::OK();
    case Body::kReleaseReply:
      return CheckOrphans(m.release_reply().orphans(), what + ": release reply");
    case Body::kHint:
      return CheckSummary(m.hint().summary(), what + ": hint");
    case Body::BODY_NOT_SET:
      break;
  }
  return Status::Corruption(what + ": no body");
}

std::string ShardKey(const wire::StateRecord& r) { return r.stage() + '\0' + r.shard(); }

}  // namespace

// --- Records, epochs, codec ------------------------------------------------------------

std::string_view RecordKindName(RecordKind k) {
  switch (k) {
    case RecordKind::kSubmitted: return "submitted";
    case RecordKind::kAttemptStarted: return "attempt_started";
    case RecordKind::kAttemptResult: return "attempt_result";
    case RecordKind::kStageMerged: return "stage_merged";
    case RecordKind::kWorkflowFinished: return "workflow_finished";
    case RecordKind::kTakeover: return "takeover";
    case RecordKind::kShardsPlanned: return "shards_planned";
  }
  return "unknown";
}

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kReplica: return "replica";
    case Role::kRecovering: return "recovering";
    case Role::kOwner: return "owner";
  }
  return "unknown";
}

std::string EpochString(const Epoch& e) { return fmt::format("{}/{}", e.number, e.owner); }

wire::StateRecord MakeSubmitted(std::string_view name, std::string_view spec) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kSubmitted));
  r.set_name(std::string(name));
  r.set_text(std::string(spec));
  return r;
}

wire::StateRecord MakeAttemptStarted(std::string_view stage, std::string_view shard,
                                     std::string_view attempt_id, std::string_view host,
                                     std::string_view lease_id) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kAttemptStarted));
  r.set_stage(std::string(stage));
  r.set_shard(std::string(shard));
  r.set_attempt_id(std::string(attempt_id));
  r.set_host(std::string(host));
  r.set_lease_id(std::string(lease_id));
  return r;
}

wire::StateRecord MakeAttemptResult(std::string_view stage, std::string_view shard,
                                    std::string_view attempt_id, std::string_view host, bool ok,
                                    std::string_view digest, std::string_view transfer_id,
                                    uint64_t size, std::string_view error) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kAttemptResult));
  r.set_stage(std::string(stage));
  r.set_shard(std::string(shard));
  r.set_attempt_id(std::string(attempt_id));
  r.set_host(std::string(host));
  r.set_ok(ok);
  r.set_digest(std::string(digest));
  r.set_transfer_id(std::string(transfer_id));
  r.set_size(size);
  r.set_text(std::string(error));
  return r;
}

wire::StateRecord MakeStageMerged(std::string_view stage, std::string_view digest,
                                  std::string_view transfer_id, uint64_t size) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kStageMerged));
  r.set_stage(std::string(stage));
  r.set_digest(std::string(digest));
  r.set_transfer_id(std::string(transfer_id));
  r.set_size(size);
  return r;
}

wire::StateRecord MakeWorkflowFinished(bool ok, std::string_view error) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kWorkflowFinished));
  r.set_ok(ok);
  r.set_text(std::string(error));
  return r;
}

wire::StateRecord MakeShardsPlanned(std::string_view stage, std::string_view shards) {
  wire::StateRecord r;
  r.set_kind(uint32_t(RecordKind::kShardsPlanned));
  r.set_stage(std::string(stage));
  r.set_text(std::string(shards));
  return r;
}

Status CheckRecord(const wire::StateRecord& r, bool logged) {
  if (r.kind() == 0 || r.kind() > kMaxRecordKind) {
    return Status::Corruption(fmt::format("record of unknown kind {}", r.kind()));
  }
  const auto kind = RecordKind(r.kind());
  const std::string_view name = RecordKindName(kind);
  for (const std::string* f : {&r.name(), &r.stage(), &r.shard(), &r.attempt_id(), &r.host(),
                               &r.lease_id(), &r.digest(), &r.transfer_id()}) {
    if (f->size() > kMaxRecordFieldBytes) {
      return Status::Corruption(fmt::format("{} record: a field of {} bytes (at most {})", name,
                                            f->size(), kMaxRecordFieldBytes));
    }
  }
  for (const auto& [f, field] : {std::pair{&r.text(), "text"}, std::pair{&r.output(), "output"},
                                  std::pair{&r.detail(), "detail"}}) {
    if (f->size() > kMaxRecordBytes) {
      return Status::Corruption(fmt::format("{} record: {} of {} bytes (at most {})", name, field,
                                            f->size(), kMaxRecordBytes));
    }
  }
  auto need = [&](const std::string& v, const char* field) {
    return v.empty() ? Status::Corruption(fmt::format("{} record without {}", name, field)) : Status::OK();
  };
  switch (kind) {
    case RecordKind::kSubmitted:
      AUGUR_RETURN_IF_ERROR(need(r.name(), "a name"));
      break;
    case RecordKind::kAttemptStarted:
      AUGUR_RETURN_IF_ERROR(need(r.host(), "a host"));
      [[fallthrough]];
    case RecordKind::kAttemptResult:
      AUGUR_RETURN_IF_ERROR(need(r.stage(), "a stage"));
      AUGUR_RETURN_IF_ERROR(need(r.shard(), "a shard"));
      AUGUR_RETURN_IF_ERROR(need(r.attempt_id(), "an attempt id"));
      break;
    case RecordKind::kStageMerged:
      AUGUR_RETURN_IF_ERROR(need(r.stage(), "a stage"));
      break;
    case RecordKind::kWorkflowFinished:
      break;
    case RecordKind::kTakeover:
      if (!IsValidHostName(r.host())) return Status::Corruption("takeover record without a valid host");
      break;
    case RecordKind::kShardsPlanned:
      AUGUR_RETURN_IF_ERROR(need(r.stage(), "a stage"));
      break;
  }
  if (logged) {
    if (r.seq() == 0) return Status::Corruption(fmt::format("{} record with seq 0", name));
    AUGUR_RETURN_IF_ERROR(CheckEpoch(r.epoch(), fmt::format("{} record {}", name, r.seq())));
  }
  return Status::OK();
}

Result<std::string> EncodeReplication(wire::ReplicationMessage msg, size_t max_bytes) {
  return EncodeChecked(std::move(msg), kReplicationVersion, max_bytes, "replication message", CheckMessage);
}

Result<wire::ReplicationMessage> DecodeReplication(std::string_view bytes, size_t max_bytes) {
  return DecodeChecked<wire::ReplicationMessage>(bytes, kReplicationVersion, max_bytes, "replication message",
                                                 CheckMessage);
}

// --- Ownership -------------------------------------------------------------------------

std::vector<OwnershipChange> OwnershipView(std::string_view self,
                                           const std::vector<std::string>& workflow_ids,
                                           const std::vector<std::string>& before_live,
                                           const std::vector<std::string>& after_live) {
  auto owns = [&](const std::string& id, const std::vector<std::string>& live) {
    if (live.empty()) return false;
    const std::vector<std::string> set = ReplicaSet(id, live, 0);
    return !set.empty() && set[0] == self;
  };
  std::vector<OwnershipChange> out;
  for (const std::string& id : workflow_ids) {
    const bool before = owns(id, before_live), after = owns(id, after_live);
    if (before != after) out.push_back({id, after});
  }
  return out;
}

// --- Logs ------------------------------------------------------------------------------

namespace {

using Log = std::vector<wire::StateRecord>;

Epoch LastEpoch(const Log& log) { return log.empty() ? Epoch{} : EpochOf(log.back()); }

// (epoch, first seq, last seq) of each epoch's records.
struct Run {
  Epoch epoch;
  uint64_t first = 0, last = 0;
};

std::vector<Run> RunsOf(const Log& log) {
  std::vector<Run> runs;
  for (const wire::StateRecord& r : log) {
    Epoch e = EpochOf(r);
    if (runs.empty() || runs.back().epoch != e) runs.push_back({std::move(e), r.seq(), r.seq()});
    runs.back().last = r.seq();
  }
  return runs;
}

std::vector<Run> RunsOf(const wire::LogSummary& s) {
  std::vector<Run> runs;
  for (int i = 0; i < s.runs_size(); ++i) {
    const uint64_t last = i + 1 < s.runs_size() ? s.runs(i + 1).first_seq() - 1 : s.last_seq();
    runs.push_back({FromWire(s.runs(i).epoch()), s.runs(i).first_seq(), last});
  }
  return runs;
}

wire::LogSummary SummaryOf(const Log& log) {
  wire::LogSummary s;
  std::vector<Run> runs = RunsOf(log);
  // The latest runs only: a longer history is described from its last kMaxSummaryRuns
  // epochs, which makes CommonPrefix conservative (never too long) for what is left out.
  const size_t skip = runs.size() > kMaxSummaryRuns ? runs.size() - kMaxSummaryRuns : 0;
  for (size_t i = skip; i < runs.size(); ++i) {
    wire::EpochRun* r = s.add_runs();
    *r->mutable_epoch() = ToWire(runs[i].epoch);
    r->set_first_seq(runs[i].first);
  }
  s.set_last_seq(log.size());
  return s;
}

// The longest prefix two logs share: records with the same seq and epoch are the same record
// and so are all records before them, so it ends at the highest seq where both hold a record
// of the same epoch.
uint64_t CommonPrefix(const std::vector<Run>& a, const std::vector<Run>& b) {
  uint64_t common = 0;
  for (const Run& x : a) {
    for (const Run& y : b) {
      if (x.epoch != y.epoch) continue;
      const uint64_t lo = std::max(x.first, y.first), hi = std::min(x.last, y.last);
      if (lo <= hi) common = std::max(common, hi);
    }
  }
  return common;
}

std::pair<Epoch, uint64_t> KeyOf(const wire::LogSummary& s) {
  if (s.last_seq() == 0 || s.runs_size() == 0) return {Epoch{}, 0};
  return {FromWire(s.runs(s.runs_size() - 1).epoch()), s.last_seq()};
}

}  // namespace

// --- The replicator --------------------------------------------------------------------

struct Replicator::Impl {
  struct Follower {
    uint64_t match = 0;          // the replica holds the owner's log up to here (confirmed)
    uint64_t next = 1;           // next seq to send
    uint64_t high_sent = 0;      // highest seq ever sent to it
    uint64_t catch_up_until = 0; // records up to here were missed (new or parted replica)
    bool known = false;          // answered since it joined the set
    int64_t sent_ns = kNever;
  };
  struct Releasing {
    int64_t sent_ns = kNever;
    std::vector<std::string> resolved;  // its orphans' attempt ids, taken
  };
  struct Recovery {
    Epoch epoch;
    int64_t sent_ns = kNever;
    std::set<std::string> targets;
    std::map<std::string, wire::LogSummary> answers;
    std::vector<wire::StateRecord> orphans;
    bool fetching = false;
    std::string fetch_from;
    uint64_t fetch_next = 0, fetch_last = 0;
  };
  struct Workflow {
    WorkflowReplica r;
    // Exactly-once index, rebuilt from the log.
    std::set<std::string> results;               // attempt ids with a result
    std::map<std::string, std::string> winners;  // ShardKey -> attempt id
    std::set<std::string> merged;                // stages
    bool finished = false;
    // Owner.
    std::map<std::string, Follower> followers;
    std::map<std::string, Releasing> releasing;
    std::set<std::string> lost;  // former replicas removed while down: released when back
    // Takeover.
    std::optional<Recovery> recovery;
    std::set<std::string> hinted_by;
    uint32_t fences = 0;
    int64_t retry_at_ns = 0;
    int64_t owner_heard_ns = kNever;  // the last message accepted from the epoch's owner
    int64_t owner_since_ns = 0;
    int64_t hint_sent_ns = kNever;
    int64_t hint_interval_ns = 0;  // doubles per hint while the epoch stays the same
    Epoch hint_epoch;
  };

  std::string self;
  ReplicationOptions opt;
  std::vector<std::string> live;
  std::set<std::string> live_set;
  std::map<std::string, Workflow> wfs;
  std::set<std::string> dirty;
  ReplicationStats stats;

  // --- helpers ---

  bool IsLive(const std::string& h) const { return live_set.count(h) > 0; }

  // The host that should own `id` by this host's view; "" before the first view (a host that
  // just restarted takes over nothing until membership has spoken).
  std::string Desired(const std::string& id) const {
    if (live.empty()) return {};
    return ReplicaSet(id, live, 0).front();
  }

  // When a replica that should own `w` may begin taking it over: after a fence's backoff,
  // and, while its owner is not live by membership but has spoken lately (membership lags),
  // once that owner has been quiet for owner_quiet_ns.
  int64_t TakeoverAt(const Workflow& w) const {
    const std::string& owner = w.r.epoch.owner;
    if (owner.empty() || owner == self || IsLive(owner) || w.owner_heard_ns == kNever) {
      return w.retry_at_ns;
    }
    return std::max(w.retry_at_ns, w.owner_heard_ns + opt.owner_quiet_ns);
  }

  // A replica whose owner is gone, or that its view leaves out of the replica set, tells the
  // host that should own the workflow (which may not hold it, or may release this copy).
  bool WantsHint(const Workflow& w) const {
    if (w.r.role != Role::kReplica || live.empty() || Desired(w.r.id) == self) return false;
    if (!IsLive(w.r.epoch.owner)) return true;
    const std::vector<std::string> set = ReplicaSet(w.r.id, live, opt.replicas);
    return std::find(set.begin(), set.end(), self) == set.end();
  }

  // The replica set this host replicates to as owner: the view's, without itself.
  std::vector<std::string> WantedReplicas(const std::string& id) const {
    std::vector<std::string> out;
    if (live.empty()) return out;
    for (std::string& h : ReplicaSet(id, live, opt.replicas)) {
      if (h != self) out.push_back(std::move(h));
    }
    return out;
  }

  void Send(const std::string& to, const Workflow& w, wire::ReplicationMessage m,
            ReplicationOutput* out) {
    m.set_workflow_id(w.r.id);
    *m.mutable_epoch() = ToWire(w.r.epoch);
    auto bytes = EncodeReplication(std::move(m), opt.max_payload_bytes);
    if (bytes) {
      out->messages.push_back({to, std::move(*bytes)});
    } else {
      ++stats.bad_messages;  // a bug here; never sent, counted
    }
  }

  void Event(ReplicationOutput* out, ReplicationEvent::Kind k, const Workflow& w) {
    out->events.push_back({k, w.r.id, w.r.epoch, k == ReplicationEvent::Kind::kCommitted ? w.r.committed : w.r.log.size(),
                           w.r.epoch.owner});
  }

  void Index(Workflow& w, const wire::StateRecord& r) {
    switch (RecordKind(r.kind())) {
      case RecordKind::kAttemptResult:
        w.results.insert(r.attempt_id());
        if (r.ok()) w.winners.emplace(ShardKey(r), r.attempt_id());
        break;
      case RecordKind::kStageMerged: w.merged.insert(r.stage()); break;
      case RecordKind::kWorkflowFinished: w.finished = true; break;
      default: break;
    }
  }
  void Reindex(Workflow& w) {
    w.results.clear();
    w.winners.clear();
    w.merged.clear();
    w.finished = false;
    for (const auto& r : w.r.log) Index(w, r);
  }
  // Orphans the log now accounts for are dropped.
  void ResolveOrphans(Workflow& w) {
    std::erase_if(w.r.orphans, [&](const wire::StateRecord& o) {
      return w.finished || w.results.count(o.attempt_id()) || w.winners.count(ShardKey(o));
    });
  }

  uint64_t Last(const Workflow& w) const { return w.r.log.size(); }

  // As many orphans as fit in half a message (the rest go in later ones).
  void AddOrphans(const Workflow& w, google::protobuf::RepeatedPtrField<wire::StateRecord>* to) const {
    size_t budget = opt.max_payload_bytes / 2;
    for (const wire::StateRecord& o : w.r.orphans) {
      const size_t size = o.ByteSizeLong() + 8;
      if (size > budget) break;
      budget -= size;
      *to->Add() = o;
    }
  }

  void AppendLocal(Workflow& w, wire::StateRecord r, int64_t now_ns) {
    r.set_seq(Last(w) + 1);
    *r.mutable_epoch() = ToWire(w.r.epoch);
    r.set_at_ns(now_ns);
    Index(w, r);
    w.r.log.push_back(std::move(r));
    ++stats.appended;
    dirty.insert(w.r.id);
  }

  // Cuts the log after `seq`; cut results become orphans.
  void TruncateAfter(Workflow& w, uint64_t seq) {
    if (Last(w) <= seq) return;
    for (size_t i = seq; i < w.r.log.size(); ++i) {
      const wire::StateRecord& r = w.r.log[i];
      if (r.kind() != uint32_t(RecordKind::kAttemptResult)) continue;
      const bool known = std::any_of(w.r.orphans.begin(), w.r.orphans.end(), [&](const auto& o) {
        return o.attempt_id() == r.attempt_id();
      });
      if (!known && w.r.orphans.size() < kMaxOrphans) w.r.orphans.push_back(r);
    }
    stats.truncated_records += Last(w) - seq;
    w.r.log.resize(seq);
    w.r.committed = std::min(w.r.committed, seq);
    Reindex(w);
    dirty.insert(w.r.id);
  }

  // Takes `rs` (consecutive, from rs[0].seq()) into the log: records it holds with the same
  // epoch are skipped, the first that differs cuts the log there. Returns the last seq taken.
  uint64_t Merge(Workflow& w, const google::protobuf::RepeatedPtrField<wire::StateRecord>& rs) {
    uint64_t last = 0;
    for (const wire::StateRecord& r : rs) {
      if (r.seq() > Last(w) + 1) break;  // cannot happen after the caller's checks
      if (r.seq() <= Last(w)) {
        if (EpochOf(w.r.log[r.seq() - 1]) == EpochOf(r)) {
          last = r.seq();
          continue;
        }
        TruncateAfter(w, r.seq() - 1);
      }
      Index(w, r);
      w.r.log.push_back(r);
      dirty.insert(w.r.id);
      last = r.seq();
    }
    ResolveOrphans(w);
    return last;
  }

  ResultVerdict Verdict(const Workflow& w, const wire::StateRecord& r) const {
    if (w.results.count(r.attempt_id())) return ResultVerdict::kDuplicate;
    if (w.finished || w.winners.count(ShardKey(r))) return ResultVerdict::kLate;
    return ResultVerdict::kRecorded;
  }

  // The owner's exactly-once append of a result.
  ResultVerdict ApplyResult(Workflow& w, wire::StateRecord r, int64_t now_ns, ReplicationOutput* out) {
    const ResultVerdict v = Verdict(w, r);
    if (v == ResultVerdict::kDuplicate) ++stats.duplicate_results;
    if (v == ResultVerdict::kLate) ++stats.late_results;
    if (v != ResultVerdict::kRecorded) return v;
    AppendLocal(w, std::move(r), now_ns);
    ResolveOrphans(w);
    PumpAll(w, now_ns, out);
    return v;
  }

  void ApplyOrphans(Workflow& w, const google::protobuf::RepeatedPtrField<wire::StateRecord>& os,
                    int64_t now_ns, ReplicationOutput* out) {
    for (const wire::StateRecord& o : os) {
      if (ApplyResult(w, o, now_ns, out) == ResultVerdict::kRecorded) ++stats.orphans_recorded;
    }
  }

  // --- owner: sending the log ---

  void Pump(Workflow& w, const std::string& host, Follower& f, int64_t now_ns, bool force,
            ReplicationOutput* out) {
    if (w.r.role != Role::kOwner) return;
    if (f.next > Last(w) && f.known && !force) return;
    wire::ReplicationMessage m;
    wire::Append* a = m.mutable_append();
    const uint64_t prev = std::min(f.next - 1, Last(w));
    a->set_prev_seq(prev);
    if (prev > 0) *a->mutable_prev_epoch() = w.r.log[prev - 1].epoch();
    a->set_committed_seq(w.r.committed);
    size_t budget = opt.max_payload_bytes > 2048 ? opt.max_payload_bytes - 1024 : 1024;
    for (const std::string& h : w.r.replicas) {
      a->add_replicas(h);
      budget -= std::min(budget, h.size() + 8);
    }
    for (uint64_t s = prev + 1; s <= Last(w) && size_t(a->records_size()) < kMaxBatchRecords; ++s) {
      const size_t size = w.r.log[s - 1].ByteSizeLong() + 8;
      if (a->records_size() > 0 && size > budget) break;
      budget -= std::min(budget, size);
      *a->add_records() = w.r.log[s - 1];
      ++stats.records_sent;
      if (s <= f.high_sent) ++stats.records_resent;
      if (s <= f.catch_up_until) ++stats.catch_up_records;
    }
    f.next = prev + a->records_size() + 1;
    if (a->records_size() > 0) f.high_sent = std::max(f.high_sent, f.next - 1);
    f.sent_ns = now_ns;
    Send(host, w, std::move(m), out);
  }

  void PumpAll(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    for (auto& [host, f] : w.followers) Pump(w, host, f, now_ns, false, out);
  }

  void UpdateCommit(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    if (w.r.role != Role::kOwner) return;
    uint64_t c = Last(w);
    for (const auto& [host, f] : w.followers) c = std::min(c, f.match);
    if (c > w.r.committed) {
      w.r.committed = c;
      dirty.insert(w.r.id);
      Event(out, ReplicationEvent::Kind::kCommitted, w);
    }
    // Former holders drop their copies only once the current set holds everything (the
    // committed seq never goes down, so it is not the test: a new replica may still lag).
    if (c == Last(w)) {
      for (auto& [host, rel] : w.releasing) {
        if (rel.sent_ns == kNever) SendRelease(w, host, rel, now_ns, out);
      }
    }
  }

  void SendRelease(Workflow& w, const std::string& host, Releasing& rel, int64_t now_ns,
                   ReplicationOutput* out) {
    wire::ReplicationMessage m;
    for (const std::string& a : rel.resolved) m.mutable_release()->add_resolved(a);
    *m.mutable_release()->mutable_summary() = SummaryOf(w.r.log);
    rel.sent_ns = now_ns;
    Send(host, w, std::move(m), out);
  }

  // The owner's replica set follows the view: new replicas are caught up, removed ones
  // released once the new set holds everything.
  void UpdateReplicaSet(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    const std::vector<std::string> want = WantedReplicas(w.r.id);
    for (auto it = w.followers.begin(); it != w.followers.end();) {
      if (std::find(want.begin(), want.end(), it->first) != want.end()) {
        ++it;
        continue;
      }
      if (IsLive(it->first)) {
        w.releasing.try_emplace(it->first);
      } else {
        w.lost.insert(it->first);
      }
      it = w.followers.erase(it);
    }
    for (auto it = w.lost.begin(); it != w.lost.end();) {
      if (!IsLive(*it)) {
        ++it;
        continue;
      }
      if (std::find(want.begin(), want.end(), *it) == want.end()) w.releasing.try_emplace(*it);
      it = w.lost.erase(it);
    }
    for (auto it = w.releasing.begin(); it != w.releasing.end();) {
      const bool gone = !IsLive(it->first) || std::find(want.begin(), want.end(), it->first) != want.end();
      if (gone && !IsLive(it->first)) w.lost.insert(it->first);
      it = gone ? w.releasing.erase(it) : std::next(it);
    }
    for (const std::string& h : want) {
      auto [it, added] = w.followers.try_emplace(h);
      if (!added) continue;
      it->second.next = Last(w) + 1;  // an empty append first: it answers where it stands
      it->second.catch_up_until = Last(w);
      Pump(w, h, it->second, now_ns, true, out);
    }
    if (w.r.replicas != want) {
      w.r.replicas = want;
      dirty.insert(w.r.id);
    }
    UpdateCommit(w, now_ns, out);
  }

  // --- roles ---

  void StepDown(Workflow& w, const Epoch& newer, int64_t now_ns, ReplicationOutput* out) {
    const bool was_owner = w.r.role == Role::kOwner;
    if (w.r.role != Role::kReplica) {
      // Fenced while it should own: back off if it happens again soon (views disagree).
      if (w.r.role == Role::kOwner && now_ns - w.owner_since_ns > 20 * opt.retransmit_ns) w.fences = 0;
      const int64_t backoff =
          w.fences == 0 ? 0
                        : std::min(opt.max_fence_backoff_ns,
                                   opt.retransmit_ns << std::min<uint32_t>(w.fences - 1, 20));
      w.retry_at_ns = now_ns + backoff;
      ++w.fences;
    }
    w.r.role = Role::kReplica;
    w.recovery.reset();
    w.followers.clear();
    w.releasing.clear();
    w.lost.clear();
    if (newer > w.r.epoch) w.r.epoch = newer;
    dirty.insert(w.r.id);
    if (was_owner) {
      ++stats.step_downs;
      Event(out, ReplicationEvent::Kind::kLostOwnership, w);
    }
  }

  void BeginRecovery(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    Recovery rec;
    const std::string old_owner = w.r.epoch.owner;
    rec.epoch = Epoch{w.r.epoch.number + 1, self};
    w.r.epoch = rec.epoch;
    w.r.role = Role::kRecovering;
    w.recovery = std::move(rec);
    AddTargets(w, old_owner);
    dirty.insert(w.r.id);
    if (w.recovery->targets.empty()) {
      Decide(w, now_ns, out);
      return;
    }
    SendProbes(w, now_ns, out);
  }

  // Who a takeover asks: the view's replica set, the replicas the last owner named, hosts
  // that hinted, and the last owner; only live ones.
  void AddTargets(Workflow& w, const std::string& old_owner) {
    auto add = [&](const std::string& h) {
      if (h != self && IsLive(h)) w.recovery->targets.insert(h);
    };
    for (const std::string& h : ReplicaSet(w.r.id, live, opt.replicas)) add(h);
    for (const std::string& h : w.r.replicas) add(h);
    for (const std::string& h : w.hinted_by) add(h);
    add(old_owner);
  }

  void SendProbes(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    Recovery& rec = *w.recovery;
    rec.sent_ns = now_ns;
    for (const std::string& h : rec.targets) {
      if (rec.answers.count(h)) continue;
      wire::ReplicationMessage m;
      m.mutable_probe();
      Send(h, w, std::move(m), out);
    }
  }

  void SendFetch(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    Recovery& rec = *w.recovery;
    rec.sent_ns = now_ns;
    wire::ReplicationMessage m;
    m.mutable_fetch()->set_from_seq(rec.fetch_next);
    Send(rec.fetch_from, w, std::move(m), out);
  }

  // Every target answered, or the wait is over: take the log furthest ahead.
  void Decide(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    Recovery& rec = *w.recovery;
    std::pair<Epoch, uint64_t> best{LastEpoch(w.r.log), Last(w)};
    std::string from;
    for (const auto& [host, s] : rec.answers) {
      if (KeyOf(s) > best) {
        best = KeyOf(s);
        from = host;
      }
    }
    if (from.empty()) {
      Complete(w, now_ns, out);
      return;
    }
    const wire::LogSummary& s = rec.answers.at(from);
    rec.fetching = true;
    rec.fetch_from = from;
    rec.fetch_next = CommonPrefix(RunsOf(w.r.log), RunsOf(s)) + 1;
    rec.fetch_last = s.last_seq();
    SendFetch(w, now_ns, out);
  }

  void Complete(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    if (w.r.log.empty() || RecordKind(w.r.log.front().kind()) != RecordKind::kSubmitted) {
      // No holder it could reach has the log from its start: owning it would be owning a
      // workflow nobody can run. Stay a replica and try again later (the holder that has it,
      // the owner membership may not know yet, catches up or takes over meanwhile).
      ++stats.takeovers_abandoned;
      w.recovery.reset();
      w.r.role = Role::kReplica;
      w.retry_at_ns = now_ns + opt.max_fence_backoff_ns;
      dirty.insert(w.r.id);
      return;
    }
    Recovery rec = std::move(*w.recovery);
    w.recovery.reset();
    w.r.role = Role::kOwner;
    w.owner_since_ns = now_ns;
    w.hinted_by.clear();
    wire::StateRecord t;
    t.set_kind(uint32_t(RecordKind::kTakeover));
    t.set_host(self);
    AppendLocal(w, std::move(t), now_ns);
    ++stats.takeovers;
    // Results cut from logs (this host's and the holders') are recorded unless the log has them.
    std::vector<wire::StateRecord> orphans = std::move(w.r.orphans);
    w.r.orphans.clear();
    orphans.insert(orphans.end(), rec.orphans.begin(), rec.orphans.end());
    for (wire::StateRecord& o : orphans) {
      if (Verdict(w, o) != ResultVerdict::kRecorded) continue;
      AppendLocal(w, std::move(o), now_ns);
      ++stats.orphans_recorded;
    }
    // Replicas that answered are where their summary says; the others are asked.
    w.followers.clear();
    const std::vector<std::string> want = WantedReplicas(w.r.id);
    const std::vector<Run> mine = RunsOf(w.r.log);
    for (const std::string& h : want) {
      Follower& f = w.followers[h];
      auto a = rec.answers.find(h);
      if (a != rec.answers.end()) {
        f.match = CommonPrefix(mine, RunsOf(a->second));
        f.known = true;
        f.next = f.match + 1;
      } else {
        f.next = Last(w) + 1;
      }
      f.catch_up_until = Last(w);
    }
    w.r.replicas = want;
    // Holders outside the new set drop their copies once it holds everything.
    for (const std::string& h : rec.targets) {
      if (std::find(want.begin(), want.end(), h) == want.end()) w.releasing.try_emplace(h);
    }
    dirty.insert(w.r.id);
    Event(out, ReplicationEvent::Kind::kBecameOwner, w);
    for (auto& [host, f] : w.followers) Pump(w, host, f, now_ns, true, out);
    UpdateCommit(w, now_ns, out);
  }

  // What membership (or a fence's backoff) asks of this workflow now.
  void Reconcile(Workflow& w, int64_t now_ns, ReplicationOutput* out) {
    const std::string desired = Desired(w.r.id);
    switch (w.r.role) {
      case Role::kOwner:
        // Kept until a newer epoch fences it, also when another host should own it: that
        // host takes over (it is in this owner's replica set, so it holds the log).
        UpdateReplicaSet(w, now_ns, out);
        return;
      case Role::kRecovering:
        if (desired != self) {
          w.recovery.reset();
          w.r.role = Role::kReplica;
          dirty.insert(w.r.id);
          return;
        }
        for (auto it = w.recovery->targets.begin(); it != w.recovery->targets.end();) {
          it = IsLive(*it) ? std::next(it) : w.recovery->targets.erase(it);
        }
        if (!w.recovery->fetching) {  // a holder that came back is asked too
          const size_t before = w.recovery->targets.size();
          AddTargets(w, {});
          if (w.recovery->targets.size() > before) SendProbes(w, now_ns, out);
        }
        if (w.recovery->fetching && !w.recovery->targets.count(w.recovery->fetch_from) &&
            !IsLive(w.recovery->fetch_from)) {
          BeginRecovery(w, now_ns, out);  // the host it was fetching from died: ask again
          return;
        }
        if (!w.recovery->fetching && w.recovery->answers.size() >= w.recovery->targets.size()) {
          Decide(w, now_ns, out);
        }
        return;
      case Role::kReplica:
        if (desired == self) {
          if (now_ns < TakeoverAt(w)) {
            if (now_ns >= w.retry_at_ns) ++stats.takeovers_deferred;
            return;
          }
          BeginRecovery(w, now_ns, out);
          return;
        }
        if (!WantsHint(w)) return;
        if (w.hint_epoch != w.r.epoch) {
          w.hint_epoch = w.r.epoch;
          w.hint_interval_ns = opt.retransmit_ns;
          w.hint_sent_ns = kNever;
        }
        if (now_ns - w.hint_sent_ns >= w.hint_interval_ns) {
          w.hint_sent_ns = now_ns;
          w.hint_interval_ns = std::min(opt.max_fence_backoff_ns, 2 * w.hint_interval_ns);
          wire::ReplicationMessage m;
          *m.mutable_hint()->mutable_summary() = SummaryOf(w.r.log);
          Send(desired, w, std::move(m), out);
        }
        return;
    }
  }

  // --- messages ---

  Workflow* Admit(const std::string& id) {
    auto it = wfs.find(id);
    if (it != wfs.end()) return &it->second;
    if (wfs.size() >= opt.max_workflows) {
      ++stats.over_capacity;
      return nullptr;
    }
    Workflow& w = wfs[id];
    w.r.id = id;
    dirty.insert(id);
    return &w;
  }

  void Reply(const std::string& to, Workflow& w, wire::ReplicationMessage m, ReplicationOutput* out) {
    Send(to, w, std::move(m), out);
  }

  void SendStale(const std::string& to, Workflow& w, ReplicationOutput* out) {
    ++stats.stale_epoch;
    wire::ReplicationMessage m;
    m.mutable_stale();
    Send(to, w, std::move(m), out);
  }

  // A holder's side of a message from a newer or equal epoch's owner (appends, probes,
  // fetches, releases): false when it is refused (stale, answered) or impossible.
  bool Accept(const std::string& from, Workflow& w, const Epoch& e, int64_t now_ns,
              ReplicationOutput* out) {
    if (e < w.r.epoch) {
      SendStale(from, w, out);
      return false;
    }
    if (from != e.owner || (e == w.r.epoch && w.r.role != Role::kReplica)) {
      ++stats.bad_messages;  // only an epoch's owner speaks for it, and this host is that owner
      return false;
    }
    if (e > w.r.epoch) {
      StepDown(w, e, now_ns, out);
    }
    w.owner_heard_ns = now_ns;
    return true;
  }

  void OnAppend(const std::string& from, Workflow& w, const Epoch& e, const wire::Append& a,
                int64_t now_ns, ReplicationOutput* out) {
    if (!Accept(from, w, e, now_ns, out)) return;
    if (std::vector<std::string>(a.replicas().begin(), a.replicas().end()) != w.r.replicas) {
      w.r.replicas.assign(a.replicas().begin(), a.replicas().end());
      dirty.insert(w.r.id);
    }
    wire::ReplicationMessage m;
    wire::AppendReply* rep = m.mutable_append_reply();
    const bool prev_ok = a.prev_seq() == 0 ||
                         (a.prev_seq() <= Last(w) && EpochOf(w.r.log[a.prev_seq() - 1]) == FromWire(a.prev_epoch()));
    if (!prev_ok) {
      ++stats.mismatches;
      rep->set_ok(false);
      *rep->mutable_summary() = SummaryOf(w.r.log);
    } else {
      Merge(w, a.records());
      const uint64_t acked = a.prev_seq() + a.records_size();
      const uint64_t committed = std::min(acked, a.committed_seq());
      if (committed > w.r.committed) {
        w.r.committed = committed;
        dirty.insert(w.r.id);
      }
      rep->set_ok(true);
      rep->set_acked_seq(acked);
    }
    AddOrphans(w, rep->mutable_orphans());
    Reply(from, w, std::move(m), out);
  }

  void OnAppendReply(const std::string& from, Workflow& w, const Epoch& e, const wire::AppendReply& a,
                     int64_t now_ns, ReplicationOutput* out) {
    if (w.r.role != Role::kOwner || e != w.r.epoch) {
      if (e > w.r.epoch) StepDown(w, e, now_ns, out);
      else ++stats.stale_epoch;
      return;
    }
    auto it = w.followers.find(from);
    if (it == w.followers.end()) return;  // no longer a replica: its answer changes nothing
    Follower& f = it->second;
    ++stats.acks;
    f.known = true;
    if (a.ok()) {
      if (a.acked_seq() > Last(w)) {
        ++stats.bad_messages;
        return;
      }
      f.match = std::max(f.match, a.acked_seq());
      f.next = std::max(f.next, f.match + 1);
    } else {
      f.match = CommonPrefix(RunsOf(w.r.log), RunsOf(a.summary()));
      f.next = f.match + 1;
      f.catch_up_until = std::max(f.catch_up_until, Last(w));
    }
    ApplyOrphans(w, a.orphans(), now_ns, out);
    Pump(w, from, w.followers.at(from), now_ns, false, out);
    UpdateCommit(w, now_ns, out);
  }

  void OnProbe(const std::string& from, Workflow& w, const Epoch& e, int64_t now_ns,
               ReplicationOutput* out) {
    if (!Accept(from, w, e, now_ns, out)) return;
    wire::ReplicationMessage m;
    *m.mutable_probe_reply()->mutable_summary() = SummaryOf(w.r.log);
    AddOrphans(w, m.mutable_probe_reply()->mutable_orphans());
    Reply(from, w, std::move(m), out);
  }

  // A reply to this host's recovery (probe or fetch): from its epoch, to a recovery under way.
  bool ForRecovery(Workflow& w, const Epoch& e, int64_t now_ns, ReplicationOutput* out) {
    if (e > w.r.epoch) {
      StepDown(w, e, now_ns, out);
      Reconcile(w, now_ns, out);
      return false;
    }
    if (w.r.role != Role::kRecovering || e != w.r.epoch) {
      ++stats.stale_epoch;
      return false;
    }
    return true;
  }

  void OnProbeReply(const std::string& from, Workflow& w, const Epoch& e, const wire::ProbeReply& p,
                    int64_t now_ns, ReplicationOutput* out) {
    if (!ForRecovery(w, e, now_ns, out)) return;
    Recovery& rec = *w.recovery;
    if (rec.fetching || !rec.targets.count(from) || rec.answers.count(from)) return;
    rec.answers[from] = p.summary();
    for (const wire::StateRecord& o : p.orphans()) {
      if (rec.orphans.size() < kMaxOrphans) rec.orphans.push_back(o);
    }
    if (rec.answers.size() >= rec.targets.size()) Decide(w, now_ns, out);
  }

  void OnFetch(const std::string& from, Workflow& w, const Epoch& e, const wire::Fetch& f,
               int64_t now_ns, ReplicationOutput* out) {
    if (!Accept(from, w, e, now_ns, out)) return;
    wire::ReplicationMessage m;
    wire::FetchReply* rep = m.mutable_fetch_reply();
    rep->set_last_seq(Last(w));
    size_t budget = opt.max_payload_bytes > 2048 ? opt.max_payload_bytes - 1024 : 1024;
    for (uint64_t s = f.from_seq(); s <= Last(w) && size_t(rep->records_size()) < kMaxBatchRecords; ++s) {
      const size_t size = w.r.log[s - 1].ByteSizeLong() + 8;
      if (rep->records_size() > 0 && size > budget) break;
      budget -= std::min(budget, size);
      *rep->add_records() = w.r.log[s - 1];
      ++stats.records_sent;
    }
    Reply(from, w, std::move(m), out);
  }

  void OnFetchReply(const std::string& from, Workflow& w, const Epoch& e, const wire::FetchReply& f,
                    int64_t now_ns, ReplicationOutput* out) {
    if (!ForRecovery(w, e, now_ns, out)) return;
    Recovery& rec = *w.recovery;
    if (!rec.fetching || from != rec.fetch_from) return;
    if (f.records_size() > 0) {
      if (f.records(0).seq() != rec.fetch_next) return;  // an answer to an earlier fetch
      const uint64_t last = Merge(w, f.records());
      stats.fetched_records += f.records_size();
      rec.fetch_next = last + 1;
    }
    if (f.records_size() == 0 || rec.fetch_next > std::min(rec.fetch_last, f.last_seq())) {
      Complete(w, now_ns, out);
      return;
    }
    SendFetch(w, now_ns, out);
  }

  void OnStale(Workflow& w, const Epoch& e, int64_t now_ns, ReplicationOutput* out) {
    if (e <= w.r.epoch) return;  // old news
    StepDown(w, e, now_ns, out);
    Reconcile(w, now_ns, out);
  }

  void OnRelease(const std::string& from, Workflow& w, const Epoch& e, const wire::ReplicaRelease& r,
                 int64_t now_ns, ReplicationOutput* out) {
    if (!Accept(from, w, e, now_ns, out)) return;
    // Results past where this log and the owner's part are not lost with the copy: they
    // become orphans, which the owner takes before this host lets go.
    TruncateAfter(w, CommonPrefix(RunsOf(w.r.log), RunsOf(r.summary())));
    std::set<std::string> resolved(r.resolved().begin(), r.resolved().end());
    std::erase_if(w.r.orphans, [&](const wire::StateRecord& o) { return resolved.count(o.attempt_id()) > 0; });
    wire::ReplicationMessage m;
    wire::ReplicaReleaseReply* rep = m.mutable_release_reply();
    if (!w.r.orphans.empty()) {
      AddOrphans(w, rep->mutable_orphans());
      Reply(from, w, std::move(m), out);
      return;
    }
    rep->set_dropped(true);
    Reply(from, w, std::move(m), out);
    ++stats.released;
    Event(out, ReplicationEvent::Kind::kDropped, w);
    dirty.erase(w.r.id);
    wfs.erase(w.r.id);
  }

  void OnReleaseReply(const std::string& from, Workflow& w, const Epoch& e, const wire::ReplicaReleaseReply& r,
                      int64_t now_ns, ReplicationOutput* out) {
    if (w.r.role != Role::kOwner || e != w.r.epoch) return;
    auto it = w.releasing.find(from);
    if (it == w.releasing.end()) return;
    if (r.dropped()) {
      w.releasing.erase(it);
      return;
    }
    for (const wire::StateRecord& o : r.orphans()) it->second.resolved.push_back(o.attempt_id());
    ApplyOrphans(w, r.orphans(), now_ns, out);
    if (w.releasing.count(from)) w.releasing.at(from).sent_ns = kNever;  // sent again once committed
    UpdateCommit(w, now_ns, out);
  }

  void OnHint(const std::string& from, Workflow& w, const Epoch& e, int64_t now_ns,
              ReplicationOutput* out) {
    if (w.r.role == Role::kOwner) {
      // A holder outside the replica set: released once the set holds everything.
      if (!w.followers.count(from)) w.releasing.try_emplace(from);
      UpdateCommit(w, now_ns, out);
      return;
    }
    w.hinted_by.insert(from);
    if (e > w.r.epoch && w.r.role == Role::kReplica) {
      w.r.epoch = e;  // its next epoch must be above the one the holder knows
      dirty.insert(w.r.id);
    }
    Reconcile(w, now_ns, out);
  }

  void Handle(const std::string& from, const wire::ReplicationMessage& m, int64_t now_ns,
              ReplicationOutput* out) {
    if (from == self) {
      ++stats.bad_messages;
      return;
    }
    using Body = wire::ReplicationMessage::BodyCase;
    const Body body = m.body_case();
    Workflow* w = nullptr;
    if (body == Body::kAppend || body == Body::kProbe || body == Body::kHint) {
      w = Admit(m.workflow_id());
    } else if (auto it = wfs.find(m.workflow_id()); it != wfs.end()) {
      w = &it->second;
    }
    if (!w) {
      if (body == Body::kRelease) {  // already dropped: say so again
        wire::ReplicationMessage rep;
        rep.set_workflow_id(m.workflow_id());
        *rep.mutable_epoch() = m.epoch();
        rep.mutable_release_reply()->set_dropped(true);
        if (auto bytes = EncodeReplication(std::move(rep), opt.max_payload_bytes)) {
          out->messages.push_back({from, std::move(*bytes)});
        }
      }
      return;
    }
    const Epoch e = FromWire(m.epoch());
    const std::string id = m.workflow_id();
    switch (body) {
      case Body::kAppend: OnAppend(from, *w, e, m.append(), now_ns, out); break;
      case Body::kAppendReply: OnAppendReply(from, *w, e, m.append_reply(), now_ns, out); break;
      case Body::kProbe: OnProbe(from, *w, e, now_ns, out); break;
      case Body::kProbeReply: OnProbeReply(from, *w, e, m.probe_reply(), now_ns, out); break;
      case Body::kFetch: OnFetch(from, *w, e, m.fetch(), now_ns, out); break;
      case Body::kFetchReply: OnFetchReply(from, *w, e, m.fetch_reply(), now_ns, out); break;
      case Body::kStale: OnStale(*w, e, now_ns, out); break;
      case Body::kRelease: OnRelease(from, *w, e, m.release(), now_ns, out); return;  // may erase
      case Body::kReleaseReply: OnReleaseReply(from, *w, e, m.release_reply(), now_ns, out); break;
      case Body::kHint: OnHint(from, *w, e, now_ns, out); break;
      case Body::BODY_NOT_SET: ++stats.bad_messages; break;
    }
    if (auto it = wfs.find(id); it != wfs.end() && it->second.r.role == Role::kReplica &&
                                body != Body::kStale && body != Body::kHint) {
      Reconcile(it->second, now_ns, out);  // e.g. the first append for a workflow it should own
    }
  }

  void Tick(int64_t now_ns, ReplicationOutput* out) {
    for (auto& [id, w] : wfs) {
      switch (w.r.role) {
        case Role::kOwner:
          for (auto& [host, f] : w.followers) {
            if ((f.match < Last(w) || !f.known) && now_ns - f.sent_ns >= opt.retransmit_ns) {
              if (f.known) f.next = f.match + 1;  // go back to what it acknowledged
              Pump(w, host, f, now_ns, true, out);
            }
          }
          for (auto& [host, rel] : w.releasing) {
            if (rel.sent_ns != kNever && now_ns - rel.sent_ns >= opt.retransmit_ns) {
              SendRelease(w, host, rel, now_ns, out);
            }
          }
          break;
        case Role::kRecovering: {
          // No deadline: a holder that membership says is live may be the only one with the
          // records, so it is asked until it answers or is declared dead (Reconcile).
          Recovery& rec = *w.recovery;
          if (now_ns - rec.sent_ns >= opt.retransmit_ns) {
            if (rec.fetching) SendFetch(w, now_ns, out);
            else SendProbes(w, now_ns, out);
          }
          break;
        }
        case Role::kReplica:
          if ((!live.empty() && Desired(id) == self && now_ns >= TakeoverAt(w)) || WantsHint(w)) {
            Reconcile(w, now_ns, out);
          }
          break;
      }
    }
  }

  std::optional<int64_t> NextDeadline() const {
    std::optional<int64_t> next;
    auto consider = [&](int64_t at) { if (!next || at < *next) next = at; };
    for (const auto& [id, w] : wfs) {
      switch (w.r.role) {
        case Role::kOwner:
          for (const auto& [host, f] : w.followers) {
            if (f.match < Last(w) || !f.known) consider(f.sent_ns + opt.retransmit_ns);
          }
          for (const auto& [host, rel] : w.releasing) {
            if (rel.sent_ns != kNever) consider(rel.sent_ns + opt.retransmit_ns);
          }
          break;
        case Role::kRecovering:
          consider(w.recovery->sent_ns + opt.retransmit_ns);
          break;
        case Role::kReplica:
          if (live.empty()) break;
          if (Desired(id) == self) consider(TakeoverAt(w));
          else if (WantsHint(w)) {
            consider(w.hint_epoch == w.r.epoch ? w.hint_sent_ns + w.hint_interval_ns : kNever);
          }
          break;
      }
    }
    return next;
  }
};

Replicator::Replicator(std::string self, ReplicationOptions options)
    : self_(self), impl_(std::make_unique<Impl>()) {
  impl_->self = std::move(self);
  impl_->opt = options;
  impl_->opt.retransmit_ns = std::max<int64_t>(1, impl_->opt.retransmit_ns);
}
Replicator::Replicator(Replicator&&) noexcept = default;
Replicator& Replicator::operator=(Replicator&&) noexcept = default;
Replicator::~Replicator() = default;

Status Replicator::Create(const std::string& workflow_id, wire::StateRecord submitted, int64_t now_ns,
                          ReplicationOutput* out) {
  if (!IsPrintableId(workflow_id, kMaxWorkflowIdBytes)) {
    return Status::InvalidArgument("workflow id is not 1 to 256 printable characters");
  }
  if (impl_->wfs.count(workflow_id)) {
    return Status::AlreadyExists(fmt::format("workflow '{}' is held here already", workflow_id));
  }
  if (submitted.kind() != uint32_t(RecordKind::kSubmitted)) {
    return Status::InvalidArgument(fmt::format("workflow '{}': the first record must be a submitted record", workflow_id));
  }
  if (Status s = CheckRecord(submitted, false); !s.ok()) {
    return Status::InvalidArgument(fmt::format("workflow '{}': {}", workflow_id, s.message()));
  }
  if (submitted.ByteSizeLong() > kMaxRecordBytes) {
    return Status::ResourceExhausted(fmt::format("workflow '{}': a record of {} bytes is over the limit of {}",
                                                 workflow_id, submitted.ByteSizeLong(), kMaxRecordBytes));
  }
  Impl::Workflow* w = impl_->Admit(workflow_id);
  if (!w) {
    return Status::ResourceExhausted(fmt::format("workflow '{}': this host holds {} workflows already",
                                                 workflow_id, impl_->wfs.size()));
  }
  w->r.role = Role::kOwner;
  w->r.epoch = Epoch{1, self_};
  w->owner_since_ns = now_ns;
  impl_->AppendLocal(*w, std::move(submitted), now_ns);
  impl_->UpdateReplicaSet(*w, now_ns, out);
  return Status::OK();
}

Result<uint64_t> Replicator::Append(const std::string& workflow_id, wire::StateRecord record,
                                    int64_t now_ns, ReplicationOutput* out) {
  auto it = impl_->wfs.find(workflow_id);
  if (it == impl_->wfs.end()) return Err(Status::NotFound(fmt::format("workflow '{}' is not held here", workflow_id)));
  Impl::Workflow& w = it->second;
  if (w.r.role != Role::kOwner) {
    return Err(Status::FailedPrecondition(fmt::format(
        "workflow '{}' is owned by {}, not {} (epoch {})", workflow_id,
        w.r.role == Role::kRecovering ? "nobody yet (this host is taking it over)" : w.r.epoch.owner,
        self_, EpochString(w.r.epoch))));
  }
  if (Status s = CheckRecord(record, false); !s.ok()) {
    return Err(Status::InvalidArgument(fmt::format("workflow '{}': {}", workflow_id, s.message())));
  }
  const auto kind = RecordKind(record.kind());
  if (kind == RecordKind::kSubmitted || kind == RecordKind::kTakeover) {
    return Err(Status::InvalidArgument(fmt::format("workflow '{}': a {} record is written by the replicator",
                                                   workflow_id, RecordKindName(kind))));
  }
  if (record.ByteSizeLong() > kMaxRecordBytes) {
    return Err(Status::ResourceExhausted(fmt::format("workflow '{}': a record of {} bytes is over the limit of {}",
                                                     workflow_id, record.ByteSizeLong(), kMaxRecordBytes)));
  }
  if (kind == RecordKind::kAttemptResult) {
    return Err(Status::InvalidArgument(fmt::format("workflow '{}': results go through AppendResult", workflow_id)));
  }
  if (kind == RecordKind::kStageMerged && w.merged.count(record.stage())) {
    return Err(Status::AlreadyExists(fmt::format("workflow '{}': stage '{}' was merged already", workflow_id, record.stage())));
  }
  if (kind == RecordKind::kWorkflowFinished && w.finished) {
    return Err(Status::AlreadyExists(fmt::format("workflow '{}' finished already", workflow_id)));
  }
  impl_->AppendLocal(w, std::move(record), now_ns);
  impl_->PumpAll(w, now_ns, out);
  impl_->UpdateCommit(w, now_ns, out);
  return w.r.log.size();
}

Result<ResultVerdict> Replicator::AppendResult(const std::string& workflow_id, wire::StateRecord result,
                                               int64_t now_ns, ReplicationOutput* out) {
  auto it = impl_->wfs.find(workflow_id);
  if (it == impl_->wfs.end()) return Err(Status::NotFound(fmt::format("workflow '{}' is not held here", workflow_id)));
  Impl::Workflow& w = it->second;
  if (w.r.role != Role::kOwner) {
    return Err(Status::FailedPrecondition(fmt::format("workflow '{}' is owned by {}, not {} (epoch {})", workflow_id,
                                                      w.r.epoch.owner, self_, EpochString(w.r.epoch))));
  }
  if (result.kind() != uint32_t(RecordKind::kAttemptResult)) {
    return Err(Status::InvalidArgument(fmt::format("workflow '{}': not a result record", workflow_id)));
  }
  if (Status s = CheckRecord(result, false); !s.ok()) {
    return Err(Status::InvalidArgument(fmt::format("workflow '{}': {}", workflow_id, s.message())));
  }
  if (result.ByteSizeLong() > kMaxRecordBytes) {
    return Err(Status::ResourceExhausted(fmt::format("workflow '{}': a record of {} bytes is over the limit of {}",
                                                     workflow_id, result.ByteSizeLong(), kMaxRecordBytes)));
  }
  const ResultVerdict v = impl_->ApplyResult(w, std::move(result), now_ns, out);
  impl_->UpdateCommit(w, now_ns, out);
  return v;
}

void Replicator::SetMembers(std::vector<std::string> live, int64_t now_ns, ReplicationOutput* out) {
  if (std::find(live.begin(), live.end(), self_) == live.end()) live.push_back(self_);
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  impl_->live_set = std::set<std::string>(live.begin(), live.end());
  impl_->live = std::move(live);
  std::vector<std::string> ids;
  for (const auto& [id, w] : impl_->wfs) ids.push_back(id);
  for (const std::string& id : ids) {
    if (auto it = impl_->wfs.find(id); it != impl_->wfs.end()) impl_->Reconcile(it->second, now_ns, out);
  }
}

void Replicator::Handle(const std::string& from, const wire::ReplicationMessage& msg, int64_t now_ns,
                        ReplicationOutput* out) {
  impl_->Handle(from, msg, now_ns, out);
}

void Replicator::Tick(int64_t now_ns, ReplicationOutput* out) { impl_->Tick(now_ns, out); }

std::optional<int64_t> Replicator::NextDeadline() const { return impl_->NextDeadline(); }

const WorkflowReplica* Replicator::Find(const std::string& workflow_id) const {
  auto it = impl_->wfs.find(workflow_id);
  return it == impl_->wfs.end() ? nullptr : &it->second.r;
}

std::vector<std::string> Replicator::Workflows() const {
  std::vector<std::string> ids;
  for (const auto& [id, w] : impl_->wfs) ids.push_back(id);
  return ids;
}

bool Replicator::Owns(const std::string& workflow_id) const {
  const WorkflowReplica* w = Find(workflow_id);
  return w && w->role == Role::kOwner;
}

std::optional<std::string> Replicator::Winner(const std::string& workflow_id, const std::string& stage,
                                              const std::string& shard) const {
  auto it = impl_->wfs.find(workflow_id);
  if (it == impl_->wfs.end()) return std::nullopt;
  auto w = it->second.winners.find(stage + '\0' + shard);
  if (w == it->second.winners.end()) return std::nullopt;
  return w->second;
}

std::vector<std::string> Replicator::DrainDirty() {
  std::vector<std::string> out;
  for (const std::string& id : impl_->dirty) {
    if (impl_->wfs.count(id)) out.push_back(id);
  }
  impl_->dirty.clear();
  return out;
}

Result<std::string> Replicator::Snapshot(const std::string& workflow_id) const {
  auto it = impl_->wfs.find(workflow_id);
  if (it == impl_->wfs.end()) return Err(Status::NotFound(fmt::format("workflow '{}' is not held here", workflow_id)));
  const WorkflowReplica& r = it->second.r;
  wire::WorkflowSnapshot s;
  s.set_version(kReplicationVersion);
  s.set_workflow_id(r.id);
  *s.mutable_promised() = ToWire(r.epoch);
  for (const auto& rec : r.log) *s.add_records() = rec;
  s.set_committed_seq(r.committed);
  for (const auto& o : r.orphans) *s.add_orphans() = o;
  for (const auto& h : r.replicas) s.add_replicas(h);
  return s.SerializeAsString();
}

Status Replicator::Restore(std::string_view bytes) {
  wire::WorkflowSnapshot s;
  if (!s.ParseFromArray(bytes.data(), int(bytes.size()))) {
    return Status::Corruption(fmt::format("{} bytes are not a workflow snapshot", bytes.size()));
  }
  if (s.version() != kReplicationVersion) {
    return Status::Corruption(fmt::format("workflow snapshot version {} (this build reads {})", s.version(),
                                          kReplicationVersion));
  }
  if (!IsPrintableId(s.workflow_id(), kMaxWorkflowIdBytes)) {
    return Status::Corruption("workflow snapshot: workflow id is not 1 to 256 printable characters");
  }
  const std::string what = fmt::format("workflow snapshot of '{}'", s.workflow_id());
  const bool has_epoch = s.promised().number() > 0;
  if (has_epoch) AUGUR_RETURN_IF_ERROR(CheckEpoch(s.promised(), what));
  const Epoch promised = FromWire(s.promised());
  AUGUR_RETURN_IF_ERROR(CheckRecords(s.records(), 1, has_epoch ? &promised : nullptr, what));
  if (!has_epoch && s.records_size() > 0) return Status::Corruption(what + ": records without an epoch");
  if (s.committed_seq() > uint64_t(s.records_size())) return Status::Corruption(what + ": committed past its log");
  AUGUR_RETURN_IF_ERROR(CheckOrphans(s.orphans(), what));
  for (const std::string& h : s.replicas()) {
    if (!IsValidHostName(h)) return Status::Corruption(what + ": a bad replica host name");
  }
  Impl::Workflow w;
  w.r.id = s.workflow_id();
  w.r.role = Role::kReplica;
  w.r.epoch = promised;
  w.r.log.assign(s.records().begin(), s.records().end());
  w.r.committed = s.committed_seq();
  w.r.orphans.assign(s.orphans().begin(), s.orphans().end());
  w.r.replicas.assign(s.replicas().begin(), s.replicas().end());
  impl_->Reindex(w);
  impl_->wfs.insert_or_assign(w.r.id, std::move(w));
  return Status::OK();
}

Status Replicator::Forget(const std::string& workflow_id) {
  if (!impl_->wfs.erase(workflow_id)) {
    return Status::NotFound(fmt::format("workflow '{}' is not held here", workflow_id));
  }
  impl_->dirty.erase(workflow_id);
  return Status::OK();
}

const ReplicationStats& Replicator::stats() const { return impl_->stats; }

}  // namespace augur::mesh
