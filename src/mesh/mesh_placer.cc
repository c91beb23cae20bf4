#include "mesh/mesh_placer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "workflow/store.h"

namespace augur::mesh {
namespace {

namespace fs = std::filesystem;
using workflow::AttemptOutcome;
using workflow::AttemptState;

// Replaces every occurrence of `from` in `s` with `to`.
std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// Reads a file of at most `limit` bytes. nullopt (with *size set) when it is larger.
Result<std::optional<std::string>> ReadUpTo(const std::string& path, size_t limit,
                                            uint64_t* size) {
  std::error_code ec;
  *size = fs::file_size(path, ec);
  if (ec) return Err(Status::IOError(fmt::format("cannot read {}: {}", path, ec.message())));
  if (*size > limit) return std::optional<std::string>();
  std::ifstream f(path, std::ios::binary);
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!f.eof() && f.fail()) return Err(Status::IOError("cannot read " + path));
  return std::optional<std::string>(std::move(data));
}

AttemptOutcome Lost(std::string why) {
  AttemptOutcome o;
  o.state = AttemptState::kLost;
  o.error = std::move(why);
  return o;
}

constexpr size_t kRememberEnded = 4096;

}  // namespace

MeshPlacer::MeshPlacer(MeshLink* link, MeshPlacerOptions options)
    : link_(link),
      o_(std::move(options)),
      negotiator_(link->self(), [&] {
        NegotiatorOptions n = o_.negotiator;
        n.include_self = false;
        return n;
      }()),
      bidder_(link->self(), [&] {
        BidderOptions b = o_.bidder;
        if (b.backends.empty()) b.backends = {{"process", {}}};
        return b;
      }()) {}

std::vector<workflow::Resources> MeshPlacer::PeerRoom(double predicted_s) const {
  std::vector<workflow::Resources> room;
  for (const PlacementPeer& p : link_->Peers()) {
    if (!p.alive || p.name == link_->self()) continue;
    const workflow::Resources free = p.headroom.FreeOver(predicted_s);
    if (free.cpu > 0 && free.memory > 0) room.push_back(free);
  }
  // Shards being negotiated are not in any host's gossip yet: their wants come off the
  // room first (each where it fits), so that the engine does not send out more than the
  // view shows while they are placed.
  for (const auto& [id, p] : placed_) {
    if (p.awarded) continue;
    auto it = std::find_if(room.begin(), room.end(),
                           [&](const workflow::Resources& r) { return p.want.FitsIn(r); });
    if (it != room.end()) *it -= p.want;
  }
  return room;
}

void MeshPlacer::Place(const workflow::Action& a, int64_t now) {
  const std::string& id = a.attempt.attempt_id;
  auto fail = [&](std::string why) {
    AttemptOutcome o;
    o.state = AttemptState::kFailed;
    o.error = std::move(why);
    ended_.insert(id);
    host_->RemoteEnded(id, o, "", now);
  };
  Placed p;
  p.ready_ns = a.attempt.started_ns > 0 && a.attempt.started_ns <= now ? a.attempt.started_ns : now;
  p.workflow = a.attempt.workflow_id;
  p.want = a.attempt.grant;
  wire::RunShard& run = p.run;
  run.set_attempt_id(id);
  for (const std::string& arg : a.argv) run.add_argv(arg);
  for (const std::string& e : a.env) run.add_env(e);
  run.set_workdir(a.workdir);
  run.set_output(a.attempt.output_path);
  run.set_backend(a.attempt.backend);
  run.set_priority(uint32_t(std::max(0, a.priority)));
  run.set_range_begin(a.range_begin);
  run.set_range_end(a.range_end);
  // The files under the work directory that the task names (its inputs: earlier stages'
  // outputs), inline.
  const std::string prefix = a.workdir + "/";
  std::set<std::string> named;
  auto scan = [&](const std::string& s) {
    for (size_t at = s.find(prefix); at != std::string::npos; at = s.find(prefix, at + 1)) {
      size_t end = at;
      while (end < s.size() && s[end] != ' ' && s[end] != '\t' && s[end] != '\n' &&
             s[end] != '"' && s[end] != '\'' && s[end] != ';' && s[end] != '>' && s[end] != '<') {
        ++end;
      }
      const std::string path = s.substr(at, end - at);
      std::error_code ec;
      if (path != a.attempt.output_path && fs::is_regular_file(path, ec)) named.insert(path);
    }
  };
  for (const std::string& arg : a.argv) scan(arg);
  for (const std::string& e : a.env) scan(e);
  size_t total = 0;
  for (const std::string& path : named) {
    uint64_t size = 0;
    auto data = ReadUpTo(path, kMaxInlineBytes - total, &size);
    if (!data) return fail(data.error().message());
    if (!*data) {
      return fail(fmt::format("input {} ({} bytes) exceeds the inline limit of {} bytes with the "
                              "other inputs; chunked transfer not wired yet",
                              path, size, kMaxInlineBytes));
    }
    total += (*data)->size();
    wire::RemoteFile* f = run.add_inputs();
    f->set_path(path.substr(prefix.size()));
    f->set_data(std::move(**data));
  }
  ShardRequest req;
  req.shard = id;
  req.workflow = a.attempt.workflow_id;
  req.want = a.attempt.grant;
  req.min = a.min;
  req.score = a.score;
  req.predicted_s = a.predicted_s;
  req.budget_left = a.budget_left;
  req.backend = a.attempt.backend;
  if (Status st = negotiator_.Submit(req, now); !st.ok()) return fail("placement: " + st.message());
  placed_.emplace(id, std::move(p));
  submitted_ = true;
  ++stats_.placed;
}

bool MeshPlacer::Cancel(const std::string& attempt_id, const std::string& reason, int64_t now) {
  if (!placed_.contains(attempt_id)) return false;
  AttemptOutcome o;
  o.state = AttemptState::kCancelled;
  o.error = reason;
  EndPlaced(attempt_id, o, "", now);
  return true;
}

void MeshPlacer::EndPlaced(const std::string& attempt_id, const AttemptOutcome& outcome,
                           const std::string& output, int64_t now) {
  placed_.erase(attempt_id);
  if (ended_.size() >= kRememberEnded) ended_.erase(ended_.begin());
  ended_.insert(attempt_id);
  NegotiatorOutput out;
  (void)negotiator_.Release(attempt_id, now, &out);  // NotFound once the lease was lost
  Handle(out, now);
  host_->RemoteEnded(attempt_id, outcome, output, now);
}

void MeshPlacer::SendPlacement(const std::vector<PlacementOutgoing>& messages, int64_t now) {
  for (const PlacementOutgoing& m : messages) {
    if (m.to == link_->self()) {
      // Not expected (include_self is off), but a message to ourselves goes straight in.
      BidderOutput b;
      NegotiatorOutput n;
      if (ForBidder(m.msg)) {
        bidder_.Handle(m.to, m.msg, now, host_->ledger(), &b);
        Handle(b, now);
      } else {
        negotiator_.Handle(m.to, m.msg, now, &n);
        Handle(n, now);
      }
      continue;
    }
    auto bytes = EncodePlacement(m.msg);
    if (!bytes) {
      ++stats_.send_errors;
      spdlog::error("mesh placer: {}", bytes.error().message());
      continue;
    }
    if (!link_->Send(m.to, Channel::kPlacement, std::move(*bytes)).ok()) ++stats_.send_errors;
  }
}

void MeshPlacer::SendRun(const std::string& to, const wire::RemoteRunMessage& msg) {
  auto bytes = EncodeRemoteRun(msg);
  if (!bytes) {
    ++stats_.send_errors;
    spdlog::error("mesh placer: {}", bytes.error().message());
    return;
  }
  if (!link_->Send(to, Channel::kRun, std::move(*bytes)).ok()) ++stats_.send_errors;
}

void MeshPlacer::Handle(NegotiatorOutput& out, int64_t now) {
  SendPlacement(out.messages, now);
  for (const PlacementEvent& e : out.events) {
    auto it = placed_.find(e.shard);
    if (it == placed_.end()) continue;
    Placed& p = it->second;
    switch (e.kind) {
      case PlacementEvent::Kind::kAwarded: {
        ++stats_.awarded;
        // Ready: when the engine decided to place it (its Tick); the negotiation itself
        // starts when the executor hands it over (Place).
        stats_.placement_latency.Record(double(now - p.ready_ns) / 1e9);
        // One line per placement, as the executor logs each attempt's end; the bench
        // (bench/mesh/placement_bench.sh) reads the latency from it.
        spdlog::info("mesh: placed {} on {} ({}) {:.3f} ms after it was ready ({:.3f} ms "
                     "negotiating), {} round(s)",
                     e.shard, e.host, e.grant.ToString(), double(now - p.ready_ns) / 1e6,
                     double(e.at_ns - e.ready_ns) / 1e6, e.rounds);
        p.awarded = true;
        p.host = e.host;
        p.lease_id = e.lease_id;
        p.run.set_lease_id(e.lease_id);
        p.next_send_ns = now;  // sent below, in Tick's resend pass
        host_->Awarded(e.shard, e.host, e.grant, now);
        wire::RemoteRunMessage m;
        *m.mutable_run() = p.run;
        if (auto bytes = EncodeRemoteRun(m); !bytes) {
          // Too large for one message (its argv): it cannot run elsewhere.
          AttemptOutcome o;
          o.state = AttemptState::kFailed;
          o.error = bytes.error().message() + "; chunked transfer not wired yet";
          EndPlaced(e.shard, o, "", now);
          break;
        }
        SendRun(p.host, m);
        p.next_send_ns = now + o_.run_resend_ns;
        break;
      }
      case PlacementEvent::Kind::kChanged:
        // The host shrank (or grew back) the lease; the task there runs under its new grant.
        spdlog::info("mesh: {} on {} now granted {} ({})", e.shard, e.host, e.grant.ToString(),
                     e.reason);
        break;
      case PlacementEvent::Kind::kLost:
        ++stats_.lost;
        spdlog::info("mesh: lease of {} on {} lost: {}", e.shard, e.host, e.reason);
        EndPlaced(e.shard, Lost(fmt::format("lease on {} lost: {}", e.host, e.reason)), "", now);
        break;
    }
  }
}

void MeshPlacer::Handle(BidderOutput& out, int64_t now) {
  SendPlacement(out.messages, now);
  for (const BidderEvent& e : out.events) {
    switch (e.kind) {
      case BidderEvent::Kind::kLeased: {
        Leased& l = leased_[e.lease_id];
        l.owner = e.owner;
        l.attempt_id = e.shard;
        l.backend = e.backend;
        l.grant = e.grant;
        break;
      }
      case BidderEvent::Kind::kReleased:
      case BidderEvent::Kind::kReclaimed: {
        auto it = leased_.find(e.lease_id);
        if (it == leased_.end()) break;
        if (it->second.started && !it->second.ended && it->second.start_error.empty()) {
          ++stats_.leased_stopped;
          it->second.released = true;
          host_->StopLeased(e.lease_id, e.reason.empty() ? "its lease ended" : e.reason);
        } else {
          DropLeased(e.lease_id);
        }
        break;
      }
    }
  }
  // Changes to our leases (a pre-emption ends one); the rest are the executor's attempts.
  std::vector<workflow::GrantChange> local;
  for (const workflow::GrantChange& c : out.changes) {
    auto it = leased_.find(c.holder);
    if (it == leased_.end()) {
      local.push_back(c);
    } else if (c.kind == workflow::GrantChange::Kind::kPreempt && it->second.started &&
               !it->second.ended) {
      ++stats_.leased_stopped;
      it->second.released = true;
      host_->StopLeased(c.holder, "pre-empted: " + c.reason);
    } else if (c.kind == workflow::GrantChange::Kind::kPreempt) {
      DropLeased(c.holder);
    }
  }
  if (!local.empty()) host_->LedgerChanged(local, now);
}

void MeshPlacer::DropLeased(const std::string& lease_id) {
  auto it = leased_.find(lease_id);
  if (it == leased_.end()) return;
  if (!it->second.dir.empty()) {
    std::error_code ec;
    fs::remove_all(it->second.dir, ec);
  }
  leased_.erase(it);
}

void MeshPlacer::Malformed(const std::string& from, const Status& why, int64_t now) {
  ++stats_.malformed;
  uint64_t suppressed = 0;
  if (log_limit_.Allow(0, now, &suppressed)) {
    spdlog::warn("mesh placer: dropped a message from {}: {}{}", from, why.message(),
                 suppressed ? fmt::format(" ({} more since the last such line)", suppressed) : "");
  }
}

void MeshPlacer::OnMessage(const std::string& from, uint32_t channel, const std::string& payload,
                           int64_t now) {
  if (channel == uint32_t(Channel::kPlacement)) {
    auto msg = DecodePlacement(payload);
    if (!msg) return Malformed(from, msg.error(), now);
    if (ForBidder(*msg)) {
      BidderOutput out;
      bidder_.Handle(from, *msg, now, host_->ledger(), &out);
      Handle(out, now);
    } else {
      NegotiatorOutput out;
      negotiator_.Handle(from, *msg, now, &out);
      Handle(out, now);
    }
    return;
  }
  if (channel != uint32_t(Channel::kRun)) {
    return Malformed(from, Status::InvalidArgument(fmt::format("channel {} is not ours", channel)),
                     now);
  }
  auto msg = DecodeRemoteRun(payload);
  if (!msg) return Malformed(from, msg.error(), now);
  switch (msg->body_case()) {
    case wire::RemoteRunMessage::kRun: return OnRun(from, msg->run(), now);
    case wire::RemoteRunMessage::kStatus: return OnStatus(from, msg->status(), now);
    case wire::RemoteRunMessage::kResult: return OnResult(from, msg->result(), now);
    default: return;
  }
}

void MeshPlacer::SendStatus(const std::string& to, const std::string& lease, const Leased& l) {
  wire::RemoteRunMessage m;
  wire::ShardStatus* st = m.mutable_status();
  st->set_lease_id(lease);
  st->set_attempt_id(l.attempt_id);
  st->set_error(l.start_error.substr(0, kMaxRemoteRunErrorBytes));
  SendRun(to, m);
}

void MeshPlacer::OnRun(const std::string& from, const wire::RunShard& run, int64_t /*now*/) {
  auto it = leased_.find(run.lease_id());
  if (it == leased_.end() || it->second.owner != from || it->second.attempt_id != run.attempt_id()) {
    ++stats_.stale;
    Leased none;
    none.attempt_id = run.attempt_id();
    none.start_error = fmt::format("{} holds no lease {} for {}", link_->self(), run.lease_id(),
                                   run.attempt_id());
    SendStatus(from, run.lease_id(), none);
    return;
  }
  Leased& l = it->second;
  if (l.started) {  // a resend: answer as before (and the result again once there is one)
    SendStatus(from, run.lease_id(), l);
    if (l.ended) (void)link_->Send(from, Channel::kRun, l.result);
    return;
  }
  l.started = true;
  l.dir = fmt::format("{}/{:016x}", o_.work_dir, Fnv1a64(run.lease_id()));
  auto start = [&]() -> Status {
    std::error_code ec;
    fs::remove_all(l.dir, ec);
    fs::create_directories(l.dir, ec);
    if (ec) return Status::IOError(fmt::format("cannot create {}: {}", l.dir, ec.message()));
    for (const wire::RemoteFile& f : run.inputs()) {
      const fs::path path = fs::path(l.dir) / f.path();
      fs::create_directories(path.parent_path(), ec);
      std::ofstream out(path, std::ios::binary | std::ios::trunc);
      out.write(f.data().data(), std::streamsize(f.data().size()));
      out.flush();
      if (!out) return Status::IOError("cannot write " + path.string());
    }
    workflow::LeasedTask t;
    t.lease_id = run.lease_id();
    t.owner = from;
    t.attempt_id = run.attempt_id();
    t.backend = run.backend();
    t.grant = l.grant;
    for (const std::string& arg : run.argv()) t.argv.push_back(ReplaceAll(arg, run.workdir(), l.dir));
    for (const std::string& e : run.env()) t.env.push_back(ReplaceAll(e, run.workdir(), l.dir));
    t.workdir = l.dir;
    t.output_path = l.dir + run.output().substr(run.workdir().size());
    fs::create_directories(fs::path(t.output_path).parent_path(), ec);
    t.priority = int(run.priority());
    t.range_begin = run.range_begin();
    t.range_end = run.range_end();
    l.output_path = t.output_path;
    return host_->RunLeased(t);
  };
  if (Status st = start(); !st.ok()) {
    l.start_error = st.message();
    spdlog::warn("mesh: cannot run {} for {}: {}", run.attempt_id(), from, l.start_error);
  } else {
    ++stats_.leased_runs;
  }
  SendStatus(from, run.lease_id(), l);
}

void MeshPlacer::OnStatus(const std::string& from, const wire::ShardStatus& st, int64_t now) {
  auto it = placed_.find(st.attempt_id());
  if (it == placed_.end() || it->second.host != from || it->second.lease_id != st.lease_id()) {
    ++stats_.stale;
    return;
  }
  if (!st.error().empty()) {
    EndPlaced(st.attempt_id(), Lost(fmt::format("{} could not run it: {}", from, st.error())), "",
              now);
    return;
  }
  it->second.started = true;
}

void MeshPlacer::OnResult(const std::string& from, const wire::ShardResult& r, int64_t now) {
  auto it = placed_.find(r.attempt_id());
  if (it == placed_.end()) {
    if (ended_.contains(r.attempt_id())) {
      ++stats_.duplicate_results;
      spdlog::info("mesh: duplicate result of {} from {}: ignored", r.attempt_id(), from);
    } else {
      ++stats_.stale;
    }
    return;
  }
  if (it->second.host != from || it->second.lease_id != r.lease_id()) {
    ++stats_.stale;
    return;
  }
  AttemptOutcome o;
  o.state = *workflow::AttemptStateFromName(r.state());  // checked by the decoder
  o.exit_code = r.exit_code();
  o.term_signal = r.term_signal();
  o.cpu_seconds = r.cpu_seconds();
  o.peak_memory_bytes = r.peak_memory_bytes();
  o.bytes_read = r.bytes_read();
  o.bytes_written = r.bytes_written();
  o.error = r.error();
  ++stats_.remote_results;
  EndPlaced(r.attempt_id(), o, r.output(), now);
}

void MeshPlacer::LeasedEnded(const std::string& lease_id, const AttemptOutcome& outcome,
                             int64_t now) {
  auto it = leased_.find(lease_id);
  if (it == leased_.end()) return;
  Leased& l = it->second;
  if (l.released) {
    DropLeased(lease_id);
    return;
  }
  l.ended = true;
  wire::RemoteRunMessage m;
  wire::ShardResult* r = m.mutable_result();
  r->set_lease_id(lease_id);
  r->set_attempt_id(l.attempt_id);
  r->set_state(std::string(workflow::AttemptStateName(outcome.state)));
  r->set_exit_code(outcome.exit_code);
  r->set_term_signal(outcome.term_signal);
  r->set_cpu_seconds(outcome.cpu_seconds);
  r->set_peak_memory_bytes(outcome.peak_memory_bytes);
  r->set_bytes_read(outcome.bytes_read);
  r->set_bytes_written(outcome.bytes_written);
  std::string error = outcome.error;
  uint64_t size = 0;
  auto data = ReadUpTo(l.output_path, kMaxInlineBytes, &size);
  if (!data) {
    r->set_state(std::string(workflow::AttemptStateName(AttemptState::kFailed)));
    error = data.error().message();
  } else if (!*data) {
    r->set_state(std::string(workflow::AttemptStateName(AttemptState::kFailed)));
    error = fmt::format("output {} bytes exceeds the inline limit of {} bytes; chunked transfer "
                        "not wired yet", size, kMaxInlineBytes);
  } else {
    r->set_output(std::move(**data));
  }
  r->set_error(error.substr(0, kMaxRemoteRunErrorBytes));
  auto bytes = EncodeRemoteRun(m);
  if (!bytes) {
    spdlog::error("mesh placer: {}", bytes.error().message());
    return;
  }
  l.result = std::move(*bytes);
  if (!link_->Send(l.owner, Channel::kRun, l.result).ok()) ++stats_.send_errors;
  l.next_send_ns = now + o_.result_resend_ns;
}

void MeshPlacer::ForeignChanges(const std::vector<workflow::GrantChange>& changes, int64_t now) {
  BidderOutput out;
  bidder_.NoteLedgerChanges(changes, now, &out);
  Handle(out, now);
}

void MeshPlacer::PeerDown(const std::string& host, int64_t now) {
  NegotiatorOutput out;
  negotiator_.PeerDown(host, now, &out);
  Handle(out, now);
}

void MeshPlacer::Tick(int64_t now) {
  submitted_ = false;
  // Room freed here before any host took a placed shard: it starts here instead (the
  // engine admits it at once), and its negotiation is stopped.
  workflow::Resources free = host_->ledger().Free();
  std::vector<std::string> back;
  for (const auto& [id, p] : placed_) {
    if (p.awarded || !p.want.FitsIn(free)) continue;
    free -= p.want;
    back.push_back(id);
  }
  for (const std::string& id : back) {
    placed_.erase(id);
    if (ended_.size() >= kRememberEnded) ended_.erase(ended_.begin());
    ended_.insert(id);
    NegotiatorOutput out;
    (void)negotiator_.Release(id, now, &out);
    Handle(out, now);
    ++stats_.taken_back;
    host_->Unplaced(id, now);
  }
  const std::vector<PlacementPeer> peers = link_->Peers();
  NegotiatorOutput n;
  negotiator_.Tick(now, peers, &n);
  Handle(n, now);
  BidderOutput b;
  bidder_.Tick(now, host_->ledger(), &b);
  Handle(b, now);
  for (auto& [id, p] : placed_) {
    if (!p.awarded || p.started || p.next_send_ns > now) continue;
    wire::RemoteRunMessage m;
    *m.mutable_run() = p.run;
    SendRun(p.host, m);
    p.next_send_ns = now + o_.run_resend_ns;
  }
  for (auto& [lease, l] : leased_) {
    if (!l.ended || l.result.empty() || l.next_send_ns > now) continue;
    if (!link_->Send(l.owner, Channel::kRun, l.result).ok()) ++stats_.send_errors;
    l.next_send_ns = now + o_.result_resend_ns;
  }
}

std::optional<int64_t> MeshPlacer::NextDeadline() const {
  std::optional<int64_t> due;
  auto take = [&](std::optional<int64_t> t) {
    if (t && (!due || *t < *due)) due = t;
  };
  if (submitted_) take(0);
  take(negotiator_.NextDeadline());
  take(bidder_.NextDeadline());
  for (const auto& [id, p] : placed_) {
    if (p.awarded && !p.started) take(p.next_send_ns);
  }
  for (const auto& [lease, l] : leased_) {
    if (l.ended && !l.result.empty()) take(l.next_send_ns);
  }
  return due;
}

std::string MeshPlacer::StatsJson() const {
  const MeshPlacerStats& s = stats_;
  nlohmann::json j = {{"placed", s.placed},
                      {"awarded", s.awarded},
                      {"lost", s.lost},
                      {"remote_results", s.remote_results},
                      {"duplicate_results", s.duplicate_results},
                      {"stale", s.stale},
                      {"malformed", s.malformed},
                      {"send_errors", s.send_errors},
                      {"leased_runs", s.leased_runs},
                      {"leased_stopped", s.leased_stopped},
                      {"taken_back", s.taken_back},
                      {"placing", placed_.size()},
                      {"leased_here", leased_.size()},
                      {"negotiator_pending", negotiator_.pending()},
                      {"negotiator_leased", negotiator_.leased()},
                      {"bidder_leases", bidder_.leases()}};
  const LatencyHistogram& h = s.placement_latency;
  nlohmann::json buckets = nlohmann::json::array();
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    buckets.push_back({{"le", LatencyHistogram::kBounds[i]}, {"count", h.Cumulative(i)}});
  }
  j["placement_seconds"] = {{"count", h.count()}, {"sum", h.sum()}, {"buckets", buckets}};
  const NegotiatorStats& n = negotiator_.stats();
  j["negotiator"] = {{"rounds", n.rounds},     {"probes", n.probes},     {"offers", n.offers},
                     {"refusals", n.refusals}, {"no_answer", n.no_answer}, {"awards", n.awards},
                     {"renewals", n.renewals}, {"leases_lost", n.leases_lost},
                     {"no_candidates", n.no_candidates}, {"deferred", n.deferred}};
  const BidderStats& bs = bidder_.stats();
  j["bidder"] = {{"requests", bs.requests}, {"offers", bs.offers},     {"refusals", bs.refusals},
                 {"leases", bs.leases},     {"releases", bs.releases},
                 {"leases_reclaimed", bs.leases_reclaimed}};
  return j.dump();
}

}  // namespace augur::mesh
