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

AttemptOutcome Failed(std::string why) {
  AttemptOutcome o;
  o.state = AttemptState::kFailed;
  o.error = std::move(why);
  return o;
}

AttemptOutcome OutcomeOf(const wire::ShardResult& r) {
  AttemptOutcome o;
  o.state = *workflow::AttemptStateFromName(r.state());  // checked by the decoder
  o.exit_code = r.exit_code();
  o.term_signal = r.term_signal();
  o.cpu_seconds = r.cpu_seconds();
  o.peak_memory_bytes = r.peak_memory_bytes();
  o.bytes_read = r.bytes_read();
  o.bytes_written = r.bytes_written();
  o.error = r.error();
  return o;
}

// Transfer ids (unique per sending host): the owner sends a lease's inputs, the host its
// output. The lease id is hashed (ids are printable and short; lease ids need not be).
std::string InputTransferPrefix(const std::string& lease_id) {
  return fmt::format("{:016x}.in.", Fnv1a64(lease_id));
}
std::string InputTransferId(const std::string& lease_id, int index) {
  return InputTransferPrefix(lease_id) + std::to_string(index);
}
std::string OutputTransferId(const std::string& lease_id) {
  return fmt::format("{:016x}.out", Fnv1a64(lease_id));
}

std::string OverLimit(std::string_view what, const std::string& path, uint64_t size,
                      uint64_t limit) {
  return fmt::format("{} {} is {} bytes, over mesh.max_transfer_bytes ({} bytes)", what, path,
                     size, limit);
}

// Bytes read from a file into a transfer at once (the window bounds how much is pending).
constexpr size_t kReadPiece = 256 * 1024;

constexpr size_t kRememberEnded = 4096;

// The transfer a host sends a kept output under, to the host that asked (FetchOutput).
std::string KeptTransferId(const std::string& asker, const std::string& attempt_id,
                           uint64_t nonce) {
  return fmt::format("{:016x}.kept", Fnv1a64(fmt::format("{}\n{}\n{}", asker, attempt_id, nonce)));
}

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
        if (o_.bidder.backends.empty()) o_.bidder.backends = {{"process", {}}};
        return o_.bidder;
      }()),
      desk_(o_.bidder),
      sender_(link->self(), o_.transfer),
      receiver_(link->self(), o_.transfer) {
  o_.inline_bytes = std::min(o_.inline_bytes, kMaxInlineBytes);
  // Temporary files of transfers an earlier run left.
  std::error_code ec;
  fs::remove_all(o_.work_dir + "/incoming", ec);
  kept_index_ = KeptOutputs(o_.max_kept_bytes);
  LoadKept(0);
}

std::vector<workflow::Resources> MeshPlacer::PeerRoom(double predicted_s) const {
  std::vector<workflow::Resources> room;
  const PeerView peers = link_->Peers();  // held: a range-for over *Peers() would dangle
  for (const PlacementPeer& p : *peers) {
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

template <typename Fn>
void MeshPlacer::Negotiate(int64_t now, Fn&& fn) {
  std::vector<NegotiatorOutput> earlier;
  NegotiatorOutput out;
  {
    std::lock_guard lock(negotiation_mu_);
    earlier.swap(receipts_);
    fn(negotiator_, &out);
  }
  stats_.send_errors += receipt_send_errors_.exchange(0, std::memory_order_relaxed);
  // A receipt's answer waited for no thread here.
  const int64_t wait = std::exchange(handling_wait_ns_, 0);
  for (NegotiatorOutput& r : earlier) Handle(r, now);
  handling_wait_ns_ = wait;
  Handle(out, now);
}

bool MeshPlacer::OnReceipt(const std::string& from, uint32_t channel, const std::string& payload,
                           int64_t now) {
  if (channel != uint32_t(Channel::kPlacement)) return false;
  auto msg = DecodePlacement(payload);
  if (!msg || ForBidder(*msg)) return false;  // malformed (OnMessage counts it), or a request
  NegotiatorOutput out;
  {
    std::unique_lock lock(negotiation_mu_, std::try_to_lock);
    if (!lock.owns_lock() || left_pending_.load(std::memory_order_relaxed) > 0) {
      left_pending_.fetch_add(1, std::memory_order_relaxed);
      receipts_left_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    negotiator_.Handle(from, *msg, now, &out);
    // The events, and a message to ourselves, wait for the engine thread.
    NegotiatorOutput later;
    later.events = std::move(out.events);
    std::erase_if(out.messages, [&](PlacementOutgoing& m) {
      if (m.to != link_->self()) return false;
      later.messages.push_back(std::move(m));
      return true;
    });
    if (!later.events.empty() || !later.messages.empty()) receipts_.push_back(std::move(later));
    receipts_taken_.fetch_add(1, std::memory_order_relaxed);
  }
  for (const PlacementOutgoing& m : out.messages) {
    if (!SendToPeer(m)) receipt_send_errors_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void MeshPlacer::TakeUpReceipts(int64_t now) {
  Negotiate(now, [](Negotiator&, NegotiatorOutput*) {});
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
  // Up to inline_bytes of them in all go inline; the others as transfers from the award on.
  size_t total = 0;
  for (const std::string& path : named) {
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return fail(fmt::format("cannot read input {}: {}", path, ec.message()));
    wire::RemoteFile* f = run.add_inputs();
    f->set_path(path.substr(prefix.size()));
    if (size <= o_.inline_bytes - total) {
      uint64_t now_size = 0;
      auto data = ReadUpTo(path, o_.inline_bytes - total, &now_size);
      if (!data) return fail(data.error().message());
      if (!*data) return fail(fmt::format("input {} grew while it was read", path));
      total += (*data)->size();
      f->set_data(std::move(**data));
    } else if (size > o_.transfer.max_blob_bytes) {
      ++over_limit_;
      return fail(OverLimit("input", path, size, o_.transfer.max_blob_bytes));
    } else {
      f->set_size(size);
      p.transfer_inputs.emplace_back(run.inputs_size() - 1, path);
    }
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
  Status submitted = Status::OK();
  Negotiate(now, [&](Negotiator& n, NegotiatorOutput*) { submitted = n.Submit(req, now); });
  if (!submitted.ok()) return fail("placement: " + submitted.message());
  placed_.emplace(id, std::move(p));
  submitted_ = true;
  ++stats_.placed;
}

bool MeshPlacer::Resume(const workflow::AttemptRecord& a, int64_t now) {
  const std::string prefix = link_->self() + "/";
  if (a.lease_id.size() <= prefix.size() || !a.lease_id.starts_with(prefix) || a.host.empty() ||
      placed_.contains(a.attempt_id)) {
    return false;
  }
  ShardRequest req;
  req.shard = a.attempt_id;
  req.workflow = a.workflow_id;
  req.want = req.min = a.grant;
  req.backend = a.backend;
  Status resumed = Status::OK();
  Negotiate(now, [&](Negotiator& n, NegotiatorOutput*) {
    resumed = n.Resume(req, a.host, a.lease_id.substr(prefix.size()), a.grant, now);
  });
  if (!resumed.ok()) {
    spdlog::warn("mesh: {}", resumed.message());
    return false;
  }
  Placed p;
  p.workflow = a.workflow_id;
  p.want = a.grant;
  p.run.set_lease_id(a.lease_id);
  p.run.set_attempt_id(a.attempt_id);
  p.host = a.host;
  p.lease_id = a.lease_id;
  p.awarded = true;
  p.resumed = true;
  p.output_transfer = OutputTransferId(a.lease_id);
  p.next_send_ns = now;
  p.ready_ns = a.started_ns;
  placed_.emplace(a.attempt_id, std::move(p));
  ++stats_.resumed;
  spdlog::info("mesh: resuming {} on {} under lease {}", a.attempt_id, a.host, a.lease_id);
  return true;
}

void MeshPlacer::SaveLease(const std::string& lease_id, const Leased& l) {
  unsaved_.erase(lease_id);  // written now, in full
  workflow::LeaseRecord r = l;
  r.lease_id = lease_id;
  if (Status st = host_->workflow_store().PutLease(r); !st.ok()) {
    // A restart then forgets it (as before leases were kept): the owner re-places the shard.
    spdlog::error("mesh placer: {}", st.message());
  }
}

void MeshPlacer::Recover(int64_t now) {
  // The engine has restored its own attempts: the desk may promise from the room left,
  // also when there is nothing to hold again here.
  PublishRoom();
  auto rows = host_->workflow_store().Leases();
  if (!rows) {
    spdlog::error("mesh placer: leases granted before the restart: {}", rows.error().message());
    return;
  }
  for (const workflow::LeaseRecord& r : *rows) {
    Leased l;
    static_cast<workflow::LeaseRecord&>(l) = r;
    l.ended = !r.result.empty();
    BidderOutput out;
    Status held;
    WithDesk("", [&] { held = bidder_.Restore(r, now, host_->ledger(), &out); });
    if (const workflow::Grant* g = host_->ledger().Find(r.lease_id); g != nullptr && held.ok()) {
      l.grant = g->granted;
    }
    const bool running = r.started && !l.ended &&
                         host_->ReattachLeased(r.lease_id, r.backend, r.instance, r.invocation,
                                               r.output_path);
    Leased& lease = leased_.insert_or_assign(r.lease_id, std::move(l)).first->second;
    if (!held.ok()) {
      // Not held here any more: its task is stopped if it runs (dropped at its end), else
      // dropped now; the owner, renewing, hears Reclaimed and places the shard again.
      spdlog::warn("mesh: lease {} of {} not taken up again after the restart: {}", r.lease_id,
                   r.owner, held.message());
      if (running) {
        lease.released = true;
        host_->StopLeased(r.lease_id, "its lease could not be held again after a restart");
      } else {
        DropLeased(r.lease_id, now);
      }
      continue;
    }
    ++stats_.leases_recovered;
    if (running) {
      ++stats_.leased_reattached;
      // Held with less than before (the capacity shrank meanwhile): it runs so from now on.
      if (!(lease.grant == r.grant)) host_->ResizeLeased(r.lease_id, lease.grant);
    } else if (r.started && !lease.ended) {
      // It had not started (inputs still coming, or the start itself cut off): lost.
      LoseLeased(r.lease_id, lease, "this host restarted before the task started", now);
    } else if (lease.ended) {
      lease.next_send_ns = now;  // resent from Tick until released
      // An output that went by transfer goes again, from its file.
      auto m = DecodeRemoteRun(lease.result);
      if (m && m->has_result() && !m->result().output_transfer().empty()) {
        Outgoing o;
        o.lease_id = r.lease_id;
        if (Status st = SendFile(r.owner, m->result().output_transfer(), lease.output_path,
                                 m->result().output_size(), std::move(o), now);
            !st.ok()) {
          LoseLeased(r.lease_id, lease, "sending the output after a restart: " + st.message(),
                     now);
        }
      }
    }
    spdlog::info("mesh: lease {} of {} held again after the restart ({})", r.lease_id, r.owner,
                 running ? "its task re-attached" : lease.ended ? "its result resent" : "not started");
    Handle(out, now);
  }
}

bool MeshPlacer::Cancel(const std::string& attempt_id, const std::string& reason, int64_t now) {
  if (!placed_.contains(attempt_id)) return false;
  AttemptOutcome o;
  o.state = AttemptState::kCancelled;
  o.error = reason;
  EndPlaced(attempt_id, o, "", now);
  return true;
}

void MeshPlacer::EndPlaced(std::string attempt_id, const AttemptOutcome& outcome,
                           const std::string& output, int64_t now,
                           const std::string& output_file) {
  if (auto it = placed_.find(attempt_id); it != placed_.end()) {
    Placed& p = it->second;
    for (const auto& [index, path] : p.transfer_inputs) {
      const std::string& id = p.run.inputs(index).transfer_id();
      if (!id.empty()) StopSending(id, "the attempt ended", now);
    }
    if (!p.output_transfer.empty()) {
      StopReceiving({p.host, p.output_transfer}, "the attempt ended", now);
    }
    std::error_code ec;
    if (!p.output_file.empty() && p.output_file != output_file) fs::remove(p.output_file, ec);
    placed_.erase(it);
  }
  if (ended_.size() >= kRememberEnded) ended_.erase(ended_.begin());
  ended_.insert(attempt_id);
  // NotFound once the lease was lost.
  Negotiate(now, [&](Negotiator& n, NegotiatorOutput* out) { (void)n.Release(attempt_id, now, out); });
  if (output_file.empty()) {
    host_->RemoteEnded(attempt_id, outcome, output, now);
  } else {
    host_->RemoteEndedWithFile(attempt_id, outcome, output_file, now);
  }
}

void MeshPlacer::SendPlacement(const std::vector<PlacementOutgoing>& messages, int64_t now) {
  for (const PlacementOutgoing& m : messages) {
    if (m.to == link_->self()) {
      // Not expected (include_self is off), but a message to ourselves goes straight in.
      BidderOutput b;
      if (ForBidder(m.msg)) {
        WithDesk("", [&] { bidder_.Handle(m.to, m.msg, now, host_->ledger(), &b); });
        Handle(b, now);
      } else {
        Negotiate(now, [&](Negotiator& neg, NegotiatorOutput* out) {
          neg.Handle(m.to, m.msg, now, out);
        });
      }
      continue;
    }
    if (!SendToPeer(m)) ++stats_.send_errors;
  }
}

bool MeshPlacer::SendToPeer(const PlacementOutgoing& m) {
  auto bytes = EncodePlacement(m.msg);
  if (!bytes) {
    spdlog::error("mesh placer: {}", bytes.error().message());
    return false;
  }
  return link_->Send(m.to, Channel::kPlacement, std::move(*bytes)).ok();
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
        // starts when the executor hands it over (Place). Granted: when the negotiator took
        // the Leased (at_ns), on the mesh thread as it came (OnReceipt) or here.
        const int64_t granted = e.at_ns > 0 ? e.at_ns : now;
        stats_.placement_latency.Record(double(granted - p.ready_ns) / 1e9);
        // One line per placement, as the executor logs each attempt's end; the bench
        // (bench/mesh/placement_bench.sh) reads the latency from it.
        // The hops (docs/MESH.md, "Placement benchmarks"), on this host's clock: handed to
        // the negotiator, its last round's probes out, the first answer in, the award out,
        // the Leased in; then what the winner said it waited before answering the probe
        // and the award, and what the Leased waited here; then how long after the grant this
        // thread took it up (the negotiator took it on the mesh thread: OnReceipt).
        auto ms = [](int64_t from_ns, int64_t to_ns) {
          return from_ns > 0 && to_ns >= from_ns ? double(to_ns - from_ns) / 1e6 : -1.0;
        };
        spdlog::info("mesh: placed {} on {} ({}) {:.3f} ms after it was ready ({:.3f} ms "
                     "negotiating), {} round(s); hops ms: handed {:.3f} probed {:.3f} "
                     "answered {:.3f} decided {:.3f} ({}) leased {:.3f}; waits ms: offer {:.3f} "
                     "award {:.3f} leased {:.3f}; taken up {:.3f}",
                     e.shard, e.host, e.grant.ToString(), double(granted - p.ready_ns) / 1e6,
                     double(e.at_ns - e.ready_ns) / 1e6, e.rounds, ms(p.ready_ns, e.ready_ns),
                     ms(e.ready_ns, e.probed_ns), ms(e.probed_ns, e.first_answer_ns),
                     ms(e.first_answer_ns > 0 ? e.first_answer_ns : e.probed_ns, e.decided_ns),
                     e.leased_at_once ? "once" : e.decided_by_timer ? "timer" : "all",
                     ms(e.decided_ns, e.at_ns),
                     e.offer_wait_us / 1e3, e.award_wait_us / 1e3,
                     double(handling_wait_ns_) / 1e6, ms(granted, std::max(granted, now)));
        p.awarded = true;
        p.host = e.host;
        p.lease_id = e.lease_id;
        p.run.set_lease_id(e.lease_id);
        p.output_transfer = OutputTransferId(e.lease_id);
        p.next_send_ns = now;  // sent below, in Tick's resend pass
        host_->Awarded(e.shard, e.host, e.grant, e.lease_id, now);
        for (const auto& [index, path] : p.transfer_inputs) {
          p.run.mutable_inputs(index)->set_transfer_id(InputTransferId(e.lease_id, index));
        }
        wire::RemoteRunMessage m;
        *m.mutable_run() = p.run;
        if (auto bytes = EncodeRemoteRun(m); !bytes) {
          // Too large for one message (its argv or env): it cannot run elsewhere.
          EndPlaced(e.shard, Failed(bytes.error().message()), "", now);
          break;
        }
        // The RunShard goes from the next Tick's resend pass, once the executor has written
        // the award (PlacerHost::Awarded), with the other awards of the same burst.
        // The inputs that go by transfer start now, beside the RunShard that names them.
        Status started = Status::OK();
        for (const auto& [index, path] : p.transfer_inputs) {
          const wire::RemoteFile& f = p.run.inputs(index);
          Outgoing o;
          o.attempt_id = e.shard;
          started = SendFile(p.host, f.transfer_id(), path, f.size(), std::move(o), now);
          if (!started.ok()) break;
        }
        if (!started.ok()) {
          EndPlaced(e.shard, Failed("input: " + started.message()), "", now);
          break;
        }
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
        AttemptOutcome lost = Lost(fmt::format("lease on {} lost: {}", e.host, e.reason));
        lost.host_down = e.host_down;  // re-queued at once (engine.h)
        EndPlaced(e.shard, lost, "", now);
        break;
    }
  }
}

void MeshPlacer::PublishRoom() {
  if (host_ != nullptr) desk_.Publish(bidder_.RoomNow(host_->ledger()));
}

std::optional<wire::Offer> MeshPlacer::WithDesk(const std::string& holder,
                                                const std::function<void()>& act) {
  return desk_.Settle(
      holder,
      [&](const workflow::Resources& promised) {
        bidder_.SetPromised(promised);
        act();
      },
      [&] { return bidder_.RoomNow(host_->ledger()); });
}

void MeshPlacer::SettlePromise(const std::string& from, const wire::Offer& promised, int64_t now,
                               BidderOutput* out) {
  const std::string& rid = promised.request_id();
  auto answers_it = [&](const PlacementOutgoing& m) {
    return m.to == from && m.msg.has_offer() && m.msg.offer().request_id() == rid;
  };
  auto answer = std::find_if(out->messages.begin(), out->messages.end(), answers_it);
  if (answer != out->messages.end() && answer->msg.offer().leased() &&
      FromAmount(answer->msg.offer().grant()) == FromAmount(promised.grant())) {
    ++stats_.desk_kept;
    out->messages.erase(answer);  // the desk sent it already
    return;
  }
  // The local engine took the room between the desk's answer and now. Whatever the
  // bidder made of the request (a lesser hold, a queued request, nothing) is declined, and
  // the owner, which holds the promise as a lease, is told it is gone: it places the shard
  // again.
  ++stats_.desk_broken;
  std::erase_if(out->messages, answers_it);
  wire::PlacementMessage decline;
  decline.mutable_decline()->set_request_id(rid);
  WithDesk("", [&] { bidder_.Handle(from, decline, now, host_->ledger(), out); });
  out->messages.push_back({from, {}});
  wire::Reclaimed* r = out->messages.back().msg.mutable_reclaimed();
  r->set_request_id(rid);
  r->set_reason("promised at once, but this host's room was taken meanwhile");
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
        l.request_id = e.request_id;
        l.cost_class = e.cost_class;
        if (const workflow::Grant* g = host_->ledger().Find(e.lease_id)) {
          l.want = g->want;
          l.min = g->min;
          l.score = g->score;
        }
        l.ttl_ns = bidder_.TtlLeft(e.lease_id, now);
        // Written at the next Tick, with the other leases of the same burst: one commit for
        // them all, after their answers went (a lease not written when this host stops is
        // not held again after its restart, and its owner places the shard again).
        unsaved_.insert(e.lease_id);
        break;
      }
      case BidderEvent::Kind::kReleased:
      case BidderEvent::Kind::kReclaimed: {
        auto it = leased_.find(e.lease_id);
        if (it == leased_.end()) break;
        if (Running(it->second)) {
          ++stats_.leased_stopped;
          it->second.released = true;
          host_->StopLeased(e.lease_id, e.reason.empty() ? "its lease ended" : e.reason);
        } else {
          DropLeased(e.lease_id, now);
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
    } else if (c.kind == workflow::GrantChange::Kind::kPreempt && Running(it->second)) {
      ++stats_.leased_stopped;
      it->second.released = true;
      host_->StopLeased(c.holder, "pre-empted: " + c.reason);
    } else if (c.kind == workflow::GrantChange::Kind::kPreempt) {
      DropLeased(c.holder, now);
    } else {
      // Shrunk for higher-score work, or grown back: the task runs under its new grant.
      it->second.grant = c.to;
      if (it->second.task) it->second.task->grant = c.to;  // not started yet: starts so
      SaveLease(c.holder, it->second);
      if (Running(it->second)) {
        ++stats_.leased_resized;
        host_->ResizeLeased(c.holder, c.to);
      }
    }
  }
  if (!local.empty()) host_->LedgerChanged(local, now);
}

void MeshPlacer::DropLeased(const std::string& lease_id, int64_t now) {
  auto it = leased_.find(lease_id);
  if (it == leased_.end()) return;
  unsaved_.erase(lease_id);
  const std::string owner = it->second.owner;
  if (it->second.keep) KeepOutput(it->second, now);  // before its directory goes
  if (!it->second.dir.empty()) {
    std::error_code ec;
    fs::remove_all(it->second.dir, ec);
  }
  leased_.erase(it);
  if (Status st = host_->workflow_store().DeleteLease(lease_id); !st.ok()) {
    spdlog::error("mesh placer: {}", st.message());
  }
  // Its transfers: the output going out, the inputs coming in or waiting for the RunShard.
  StopSending(OutputTransferId(lease_id), "its lease ended", now);
  const std::string prefix = InputTransferPrefix(lease_id);
  std::vector<TransferKey> coming;
  for (const auto& [key, in] : receiving_) {
    if (key.first == owner && key.second.starts_with(prefix)) coming.push_back(key);
  }
  for (const TransferKey& key : coming) StopReceiving(key, "its lease ended", now);
  for (auto a = arrived_.begin(); a != arrived_.end();) {
    if (a->first.first == owner && a->first.second.starts_with(prefix)) {
      std::error_code ec;
      fs::remove(a->second, ec);
      a = arrived_.erase(a);
    } else {
      ++a;
    }
  }
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
                           int64_t now, int64_t received) {
  if (channel == uint32_t(Channel::kPlacement)) {
    const int64_t wait = std::max<int64_t>(0, now - received);
    stats_.message_wait.Record(double(wait) / 1e9);
    auto msg = DecodePlacement(payload);
    if (!msg) return Malformed(from, msg.error(), now);
    handling_wait_ns_ = wait;
    if (ForBidder(*msg)) {
      BidderOutput out;
      const std::string holder =
          msg->has_bid_request() ? LeaseId(from, msg->bid_request().request_id()) : "";
      const std::optional<wire::Offer> promised =
          WithDesk(holder, [&] { bidder_.Handle(from, *msg, now, host_->ledger(), &out); });
      if (promised) SettlePromise(from, *promised, now, &out);
      // The answers to it say how long it waited here (Offer/Leased wait_us): the owner's
      // log splits its round trip with it.
      const auto wait_us = uint32_t(std::min<int64_t>(wait / 1000, std::numeric_limits<uint32_t>::max()));
      const std::string& rid = RequestIdOf(*msg);
      for (PlacementOutgoing& m : out.messages) {
        if (m.to != from) continue;
        if (m.msg.has_offer() && m.msg.offer().request_id() == rid) {
          m.msg.mutable_offer()->set_wait_us(wait_us);
        } else if (m.msg.has_leased() && m.msg.leased().request_id() == rid) {
          m.msg.mutable_leased()->set_wait_us(wait_us);
        }
      }
      Handle(out, now);
    } else {
      Negotiate(now, [&](Negotiator& n, NegotiatorOutput* out) {
        n.Handle(from, *msg, now, out);
        // Handled: OnReceipt may take the next answers itself (tests call OnMessage alone).
        int64_t left = left_pending_.load(std::memory_order_relaxed);
        while (left > 0 && !left_pending_.compare_exchange_weak(left, left - 1)) {
        }
      });
    }
    handling_wait_ns_ = 0;
    return;
  }
  if (channel == uint32_t(Channel::kData)) return OnData(from, payload, now);
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
    case wire::RemoteRunMessage::kResume: return OnResume(from, msg->resume(), now);
    case wire::RemoteRunMessage::kFetch: return OnFetch(from, msg->fetch(), now);
    case wire::RemoteRunMessage::kFetchRefused: return OnFetchRefused(from, msg->fetch_refused());
    case wire::RemoteRunMessage::kForget: return OnForget(msg->forget());
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

MeshPlacer::Leased* MeshPlacer::LeaseFor(const std::string& from, const std::string& lease,
                                         const std::string& attempt) {
  auto it = leased_.find(lease);
  if (it != leased_.end() && it->second.owner == from && it->second.attempt_id == attempt) {
    return &it->second;
  }
  ++stats_.stale;
  Leased none;
  none.attempt_id = attempt;
  none.start_error = fmt::format("{} holds no lease {} for {}", link_->self(), lease, attempt);
  SendStatus(from, lease, none);
  return nullptr;
}

void MeshPlacer::OnResume(const std::string& from, const wire::ResumeShard& r, int64_t /*now*/) {
  Leased* l = LeaseFor(from, r.lease_id(), r.attempt_id());
  if (l == nullptr) return;
  if (!l->started) {
    // Its RunShard never came, and the owner no longer has it to send.
    l->started = true;
    l->start_error = "its owner restarted before it sent the task";
    SaveLease(r.lease_id(), *l);
  }
  SendStatus(from, r.lease_id(), *l);
  if (l->ended && !l->result.empty()) (void)link_->Send(from, Channel::kRun, l->result);
}

void MeshPlacer::OnRun(const std::string& from, const wire::RunShard& run, int64_t /*now*/) {
  Leased* found = LeaseFor(from, run.lease_id(), run.attempt_id());
  if (found == nullptr) return;
  Leased& l = *found;
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
    const std::string prefix = InputTransferPrefix(run.lease_id());
    for (const wire::RemoteFile& f : run.inputs()) {
      const fs::path path = fs::path(l.dir) / f.path();
      fs::create_directories(path.parent_path(), ec);
      if (!f.transfer_id().empty()) {
        // Comes by transfer: taken from where it arrived, or awaited.
        if (!f.transfer_id().starts_with(prefix)) {
          return Status::InvalidArgument(fmt::format(
              "input {} names transfer {}, not one of lease {}", f.path(), f.transfer_id(),
              run.lease_id()));
        }
        if (f.size() > o_.transfer.max_blob_bytes) {
          ++over_limit_;
          return Status::ResourceExhausted(
              OverLimit("input", run.workdir() + "/" + f.path(), f.size(),
                        o_.transfer.max_blob_bytes));
        }
        auto a = arrived_.find({from, f.transfer_id()});
        if (a == arrived_.end()) {
          l.awaiting[f.transfer_id()] = path.string();
          continue;
        }
        fs::rename(a->second, path, ec);
        arrived_.erase(a);
        if (ec) return Status::IOError(fmt::format("cannot move input to {}: {}", path.string(),
                                                   ec.message()));
        continue;
      }
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
    l.owner_output = run.output();
    l.task = std::move(t);
    // Inputs still coming: it starts when the last arrives (Arrived).
    return l.awaiting.empty() ? StartLeased(l) : Status::OK();
  };
  if (Status st = start(); !st.ok()) {
    l.start_error = st.message();
    l.task.reset();
    l.awaiting.clear();  // inputs still coming are not wanted (refused when they do)
    spdlog::warn("mesh: cannot run {} for {}: {}", run.attempt_id(), from, l.start_error);
  }
  SaveLease(run.lease_id(), l);
  SendStatus(from, run.lease_id(), l);
}

Status MeshPlacer::StartLeased(Leased& l) {
  workflow::LeasedTask t = std::move(*l.task);
  l.task.reset();
  AUGUR_RETURN_IF_ERROR(host_->RunLeased(t));
  ++stats_.leased_runs;
  return Status::OK();
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
  Placed& p = it->second;
  if (p.host != from || p.lease_id != r.lease_id()) {
    ++stats_.stale;
    return;
  }
  if (r.output_transfer().empty()) {
    ++stats_.remote_results;
    EndPlaced(r.attempt_id(), OutcomeOf(r), r.output(), now);
    return;
  }
  if (r.output_transfer() != p.output_transfer) {
    ++stats_.stale;
    return;
  }
  if (p.output_file.empty()) {
    p.result = r;  // its output is still coming (Arrived ends it)
    return;
  }
  EndWithOutputFile(r.attempt_id(), r, now);
}

void MeshPlacer::EndWithOutputFile(const std::string& attempt_id, const wire::ShardResult& r,
                                   int64_t now) {
  Placed& p = placed_.at(attempt_id);
  const std::string file = std::move(p.output_file);
  p.output_file.clear();
  AttemptOutcome o = OutcomeOf(r);
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec || size != r.output_size()) {
    o = Lost(fmt::format("the output from {} is {} bytes, its result says {}", p.host,
                         ec ? 0 : size, r.output_size()));
  }
  ++stats_.remote_results;
  EndPlaced(attempt_id, o, "", now, file);
}

void MeshPlacer::LeasedEnded(const std::string& lease_id, const AttemptOutcome& outcome,
                             int64_t now) {
  auto it = leased_.find(lease_id);
  if (it == leased_.end()) return;
  Leased& l = it->second;
  if (l.released) {
    DropLeased(lease_id, now);
    return;
  }
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
  auto fail = [&](std::string why) {
    r->set_state(std::string(workflow::AttemptStateName(AttemptState::kFailed)));
    error = std::move(why);
  };
  // The output: inline up to inline_bytes, else a transfer the result names.
  std::error_code ec;
  const uint64_t size = fs::file_size(l.output_path, ec);
  if (ec) {
    fail(fmt::format("cannot read the output {}: {}", l.output_path, ec.message()));
  } else if (size <= o_.inline_bytes) {
    uint64_t now_size = 0;
    auto data = ReadUpTo(l.output_path, o_.inline_bytes, &now_size);
    if (!data) {
      fail(data.error().message());
    } else if (!*data) {
      fail(fmt::format("the output {} grew after its task ended", l.output_path));
    } else {
      r->set_output(std::move(**data));
    }
  } else if (size > o_.transfer.max_blob_bytes) {
    ++over_limit_;
    fail(OverLimit("output", l.owner_output, size, o_.transfer.max_blob_bytes));
  } else {
    const std::string id = OutputTransferId(lease_id);
    Outgoing o;
    o.lease_id = lease_id;
    if (Status st = SendFile(l.owner, id, l.output_path, size, std::move(o), now); !st.ok()) {
      fail("output: " + st.message());
    } else {
      r->set_output_transfer(id);
      r->set_output_size(size);
      l.keep = outcome.state == AttemptState::kSucceeded;
    }
  }
  r->set_error(error.substr(0, kMaxRemoteRunErrorBytes));
  SendResult(l, m, now);
}

void MeshPlacer::SendResult(Leased& l, const wire::RemoteRunMessage& m, int64_t now) {
  l.ended = true;
  auto bytes = EncodeRemoteRun(m);
  if (!bytes) {
    spdlog::error("mesh placer: {}", bytes.error().message());
    return;
  }
  l.result = std::move(*bytes);
  SaveLease(m.result().lease_id(), l);
  if (!link_->Send(l.owner, Channel::kRun, l.result).ok()) ++stats_.send_errors;
  l.next_send_ns = now + o_.result_resend_ns;
}

// A leased task that cannot finish here after its ShardStatus said it could: the owner hears
// it as a lost result and places the shard again.
void MeshPlacer::LoseLeased(const std::string& lease_id, Leased& l, const std::string& why,
                            int64_t now) {
  spdlog::warn("mesh: {} for {}: {}", l.attempt_id, l.owner, why);
  l.task.reset();
  l.awaiting.clear();
  StopSending(OutputTransferId(lease_id), why, now);
  wire::RemoteRunMessage m;
  wire::ShardResult* r = m.mutable_result();
  r->set_lease_id(lease_id);
  r->set_attempt_id(l.attempt_id);
  r->set_state(std::string(workflow::AttemptStateName(AttemptState::kLost)));
  r->set_error(why.substr(0, kMaxRemoteRunErrorBytes));
  SendResult(l, m, now);
}

// --- Transfers (docs/MESH.md, "Moving shard data") ----------------------------------------

void MeshPlacer::OnData(const std::string& from, const std::string& payload, int64_t now) {
  auto msg = DecodeTransfer(payload, o_.transfer.max_payload_bytes);
  if (!msg) return Malformed(from, msg.error(), now);
  TransferOutput out;
  if (ForTransferReceiver(*msg)) {
    receiver_.Handle(from, *msg, now, &out);
    Handle(out, /*sent=*/false, now);
  } else {
    sender_.Handle(from, *msg, now, &out);
    Handle(out, /*sent=*/true, now);
    Pump(now);
  }
}

void MeshPlacer::Handle(TransferOutput& out, bool sent, int64_t now) {
  for (TransferOutgoing& m : out.messages) {
    if (!link_->Send(m.to, Channel::kData, std::move(m.payload)).ok()) ++stats_.send_errors;
  }
  for (const TransferEvent& e : out.events) {
    if (sent) {
      OnSent(e, now);
    } else {
      OnReceived(e, now);
    }
  }
}

Status MeshPlacer::SendFile(const std::string& to, const std::string& id, const std::string& path,
                            uint64_t size, Outgoing o, int64_t now) {
  o.path = path;
  o.file.open(path, std::ios::binary);
  if (!o.file) {
    ++file_errors_;
    return Status::IOError("cannot read " + path);
  }
  TransferOutput out;
  AUGUR_RETURN_IF_ERROR(sender_.Begin(to, id, size, now, &out));
  sending_.emplace(id, std::move(o));
  Handle(out, /*sent=*/true, now);
  Pump(now);
  return Status::OK();
}

void MeshPlacer::Pump(int64_t now) {
  TransferOutput out;
  std::vector<std::pair<std::string, std::string>> broken;  // (id, why)
  std::string piece;
  for (auto& [id, o] : sending_) {
    for (uint64_t room = sender_.Room(id); room > 0; room = sender_.Room(id)) {
      piece.resize(size_t(std::min<uint64_t>(room, kReadPiece)));
      o.file.read(piece.data(), std::streamsize(piece.size()));
      if (size_t(o.file.gcount()) != piece.size()) {
        ++file_errors_;
        broken.emplace_back(id, fmt::format("cannot read {} (did it shrink?)", o.path));
        break;
      }
      if (Status st = sender_.Append(id, piece, now, &out); !st.ok()) {
        broken.emplace_back(id, st.message());
        break;
      }
    }
  }
  Handle(out, /*sent=*/true, now);
  for (const auto& [id, why] : broken) {
    TransferEvent e;
    e.kind = TransferEvent::Kind::kFailed;
    e.transfer_id = id;
    e.error = why;
    if (sending_.contains(id)) {
      TransferOutput cancel;
      (void)sender_.Cancel(id, why, now, &cancel);
      Handle(cancel, /*sent=*/true, now);
      OnSent(e, now);
    }
  }
}

void MeshPlacer::OnSent(const TransferEvent& e, int64_t now) {
  auto it = sending_.find(e.transfer_id);
  if (it == sending_.end()) return;
  const Outgoing o = {it->second.path, {}, it->second.attempt_id, it->second.lease_id};
  sending_.erase(it);
  if (e.kind != TransferEvent::Kind::kFailed) return;
  if (!o.attempt_id.empty() && placed_.contains(o.attempt_id)) {
    // An input that did not get there: the shard is placed again.
    const Placed& p = placed_.at(o.attempt_id);
    EndPlaced(o.attempt_id, Lost(fmt::format("input {} to {}: {}", o.path, p.host, e.error)), "",
              now);
  } else if (auto l = leased_.find(o.lease_id); l != leased_.end() && l->second.ended) {
    LoseLeased(o.lease_id, l->second, "sending the output failed: " + e.error, now);
  }
}

bool MeshPlacer::Expected(const TransferKey& key) const {
  if (fetching_.contains(key)) return true;
  for (const auto& [id, p] : placed_) {
    if (p.awarded && p.host == key.first && p.output_transfer == key.second) return true;
  }
  for (const auto& [lease, l] : leased_) {
    if (l.owner == key.first && !l.ended && l.start_error.empty() &&
        key.second.starts_with(InputTransferPrefix(lease))) {
      return true;
    }
  }
  return false;
}

void MeshPlacer::OnReceived(const TransferEvent& e, int64_t now) {
  const TransferKey key{e.peer, e.transfer_id};
  auto it = receiving_.find(key);
  // The first bytes (or a 0-byte blob's end): only what an attempt or a lease here waits for
  // is written down.
  const bool first = it == receiving_.end() &&
                     ((e.kind == TransferEvent::Kind::kData && e.offset == 0) ||
                      (e.kind == TransferEvent::Kind::kComplete && e.total_bytes == 0));
  if (first) {
    if (!Expected(key)) {
      ++refused_;
      TransferOutput out;
      (void)receiver_.Reject(key.first, key.second, "no attempt or lease there expects it", now,
                             &out);
      out.events.clear();
      Handle(out, /*sent=*/false, now);
      return;
    }
    Incoming in;
    in.tmp = fmt::format("{}/incoming/{:016x}.part", o_.work_dir,
                         Fnv1a64(key.first + "\n" + key.second));
    std::error_code ec;
    fs::create_directories(o_.work_dir + "/incoming", ec);
    in.file.open(in.tmp, std::ios::binary | std::ios::trunc);
    it = receiving_.emplace(key, std::move(in)).first;
  }
  switch (e.kind) {
    case TransferEvent::Kind::kData: {
      if (it == receiving_.end()) return;  // refused
      it->second.file.write(e.data.data(), std::streamsize(e.data.size()));
      if (!it->second.file) {
        ++file_errors_;
        const std::string why = "cannot write " + it->second.tmp + " (disk full?)";
        StopReceiving(key, why, now);
        ReceiveFailed(key, why, now);
        return;
      }
      bytes_received_ += e.data.size();
      return;
    }
    case TransferEvent::Kind::kComplete: {
      if (it == receiving_.end()) return;
      Incoming& in = it->second;
      in.file.close();
      const std::string done = in.tmp.substr(0, in.tmp.size() - std::string_view(".part").size());
      std::error_code ec;
      if (!in.file.good()) ec = std::make_error_code(std::errc::io_error);
      if (!ec) fs::rename(in.tmp, done, ec);
      if (ec) {
        ++file_errors_;
        fs::remove(in.tmp, ec);
        receiving_.erase(it);
        ReceiveFailed(key, "cannot keep the received file " + done, now);
        return;
      }
      receiving_.erase(it);
      Arrived(key, done, now);
      return;
    }
    case TransferEvent::Kind::kFailed: {
      if (it != receiving_.end()) {
        std::error_code ec;
        it->second.file.close();
        fs::remove(it->second.tmp, ec);
        receiving_.erase(it);
      }
      ReceiveFailed(key, e.error, now);
      return;
    }
  }
}

void MeshPlacer::Arrived(const TransferKey& key, const std::string& file, int64_t now) {
  if (fetching_.contains(key)) return FetchArrived(key, file);
  for (auto& [id, p] : placed_) {
    if (!p.awarded || p.host != key.first || p.output_transfer != key.second) continue;
    p.output_file = file;
    if (p.result) EndWithOutputFile(id, *p.result, now);  // (a copy: p goes)
    return;
  }
  for (auto& [lease, l] : leased_) {
    if (l.owner != key.first || !key.second.starts_with(InputTransferPrefix(lease))) continue;
    std::error_code ec;
    auto a = l.awaiting.find(key.second);
    if (a == l.awaiting.end()) {
      if (!l.started) {
        arrived_[key] = file;  // before its RunShard
      } else {
        fs::remove(file, ec);
      }
      return;
    }
    fs::rename(file, a->second, ec);
    if (ec) {
      ++file_errors_;
      fs::remove(file, ec);
      LoseLeased(lease, l, "cannot move input to " + a->second, now);
      return;
    }
    l.awaiting.erase(a);
    if (l.awaiting.empty() && l.task) {
      if (Status st = StartLeased(l); !st.ok()) LoseLeased(lease, l, "could not run it: " + st.message(), now);
    }
    return;
  }
  std::error_code ec;
  fs::remove(file, ec);  // its attempt or lease ended meanwhile
}

void MeshPlacer::ReceiveFailed(const TransferKey& key, const std::string& why, int64_t now) {
  if (fetching_.contains(key)) return EndFetch(key, Status::Unavailable(why), now);
  for (auto& [id, p] : placed_) {
    if (!p.awarded || p.host != key.first || p.output_transfer != key.second) continue;
    EndPlaced(id, Lost(fmt::format("its output from {}: {}", p.host, why)), "", now);
    return;
  }
  for (auto& [lease, l] : leased_) {
    if (l.owner != key.first || !l.awaiting.contains(key.second)) continue;
    LoseLeased(lease, l, "an input did not arrive: " + why, now);
    return;
  }
}

void MeshPlacer::StopSending(const std::string& id, const std::string& why, int64_t now) {
  if (sending_.erase(id) == 0) return;
  TransferOutput out;
  (void)sender_.Cancel(id, why, now, &out);
  Handle(out, /*sent=*/true, now);
}

void MeshPlacer::StopReceiving(const TransferKey& key, const std::string& why, int64_t now) {
  if (auto it = receiving_.find(key); it != receiving_.end()) {
    std::error_code ec;
    it->second.file.close();
    fs::remove(it->second.tmp, ec);
    receiving_.erase(it);
  }
  TransferOutput out;
  (void)receiver_.Reject(key.first, key.second, why, now, &out);  // NotFound once it ended
  out.events.clear();  // the caller deals with the end
  Handle(out, /*sent=*/false, now);
}

MeshTransferStats MeshPlacer::transfer_stats() const {
  std::lock_guard lock(transfer_mu_);
  return transfer_snapshot_;
}

MeshPlacementStats MeshPlacer::placement_stats() const {
  std::lock_guard lock(transfer_mu_);
  return placement_snapshot_;
}

void MeshPlacer::ForeignChanges(const std::vector<workflow::GrantChange>& changes, int64_t now) {
  BidderOutput out;
  bidder_.NoteLedgerChanges(changes, now, &out);
  Handle(out, now);
}

void MeshPlacer::PeerDown(const std::string& host, int64_t now) {
  Negotiate(now, [&](Negotiator& n, NegotiatorOutput* out) { n.PeerDown(host, now, out); });
  TransferOutput t;
  sender_.PeerDown(host, now, &t);
  Handle(t, /*sent=*/true, now);
  std::vector<TransferKey> fetches;
  for (const auto& [key, f] : fetching_) {
    if (key.first == host) fetches.push_back(key);
  }
  for (const TransferKey& key : fetches) {
    EndFetch(key, Status::Unavailable(host + " was declared dead"), now);
  }
}

void MeshPlacer::SaveLeases() {
  if (unsaved_.empty()) return;
  Status st = host_->workflow_store().Transaction([&]() -> Status {
    for (const std::string& id : unsaved_) {
      auto it = leased_.find(id);
      if (it == leased_.end()) continue;
      workflow::LeaseRecord r = it->second;
      r.lease_id = id;
      AUGUR_RETURN_IF_ERROR(host_->workflow_store().PutLease(r));
    }
    return Status::OK();
  });
  // A restart then forgets them (as before leases were kept): their owners place the
  // shards again.
  if (!st.ok()) spdlog::error("mesh placer: {}", st.message());
  unsaved_.clear();
}

void MeshPlacer::Tick(int64_t now) {
  submitted_ = false;
  SaveLeases();
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
    Negotiate(now, [&](Negotiator& n, NegotiatorOutput* out) { (void)n.Release(id, now, out); });
    ++stats_.taken_back;
    host_->Unplaced(id, now);
  }
  const PeerView peers = link_->Peers();
  Negotiate(now, [&](Negotiator& n, NegotiatorOutput* out) { n.Tick(now, *peers, out); });
  BidderOutput b;
  WithDesk("", [&] { bidder_.Tick(now, host_->ledger(), &b); });
  Handle(b, now);
  for (auto& [id, p] : placed_) {
    if (!p.awarded || p.started || p.next_send_ns > now) continue;
    wire::RemoteRunMessage m;
    if (p.resumed) {
      m.mutable_resume()->set_lease_id(p.lease_id);
      m.mutable_resume()->set_attempt_id(id);
    } else {
      *m.mutable_run() = p.run;
    }
    SendRun(p.host, m);
    p.next_send_ns = now + o_.run_resend_ns;
  }
  for (auto& [lease, l] : leased_) {
    if (!l.ended || l.result.empty() || l.next_send_ns > now) continue;
    if (!link_->Send(l.owner, Channel::kRun, l.result).ok()) ++stats_.send_errors;
    l.next_send_ns = now + o_.result_resend_ns;
  }
  // Transfers: retransmissions and give-ups, idle inbound ones, and the files read on.
  TransferOutput sent, received;
  sender_.Tick(now, &sent);
  Handle(sent, /*sent=*/true, now);
  receiver_.Tick(now, &received);
  Handle(received, /*sent=*/false, now);
  Pump(now);
  TickKept(now);
  MeshTransferStats t;
  t.sender = sender_.stats();
  t.receiver = receiver_.stats();
  t.sending = sender_.active();
  t.receiving = receiver_.active();
  t.bytes_received = bytes_received_;
  t.over_limit = over_limit_;
  t.refused = refused_;
  t.file_errors = file_errors_;
  NegotiatorStats negotiated;
  {
    std::lock_guard lock(negotiation_mu_);
    negotiated = negotiator_.stats();
  }
  MeshPlacementStats p{stats_.placement_latency, stats_.message_wait, negotiated, bidder_.stats()};
  std::lock_guard lock(transfer_mu_);
  transfer_snapshot_ = t;
  placement_snapshot_ = p;
}

std::optional<int64_t> MeshPlacer::NextDeadline() const {
  std::optional<int64_t> due;
  auto take = [&](std::optional<int64_t> t) {
    if (t && (!due || *t < *due)) due = t;
  };
  if (submitted_ || !unsaved_.empty()) take(0);
  {
    std::lock_guard lock(negotiation_mu_);
    take(negotiator_.NextDeadline());
  }
  take(bidder_.NextDeadline());
  for (const auto& [id, p] : placed_) {
    if (p.awarded && !p.started) take(p.next_send_ns);
  }
  for (const auto& [lease, l] : leased_) {
    if (l.ended && !l.result.empty()) take(l.next_send_ns);
  }
  take(sender_.NextDeadline());
  take(receiver_.NextDeadline());
  for (const auto& [key, f] : fetching_) take(std::min(f.next_send_ns, f.deadline_ns));
  return due;
}

std::string MeshPlacer::StatsJson() const {
  const MeshPlacerStats& s = stats_;
  std::unique_lock negotiation(negotiation_mu_);
  const NegotiatorStats n = negotiator_.stats();
  const size_t pending = negotiator_.pending(), leased = negotiator_.leased();
  negotiation.unlock();
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
                      {"resumed", s.resumed},
                      {"leases_recovered", s.leases_recovered},
                      {"leased_reattached", s.leased_reattached},
                      {"leased_resized", s.leased_resized},
                      {"desk_kept", s.desk_kept},
                      {"desk_broken", s.desk_broken},
                      {"taken_on_receipt", receipts_taken_.load(std::memory_order_relaxed)},
                      {"left_to_engine", receipts_left_.load(std::memory_order_relaxed)},
                      {"placing", placed_.size()},
                      {"leased_here", leased_.size()},
                      {"negotiator_pending", pending},
                      {"negotiator_leased", leased},
                      {"bidder_leases", bidder_.leases()}};
  auto histogram = [](const LatencyHistogram& h) {
    nlohmann::json buckets = nlohmann::json::array();
    for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
      buckets.push_back({{"le", LatencyHistogram::kBounds[i]}, {"count", h.Cumulative(i)}});
    }
    return nlohmann::json{{"count", h.count()}, {"sum", h.sum()}, {"buckets", buckets}};
  };
  j["placement_seconds"] = histogram(s.placement_latency);
  j["placement_message_wait_seconds"] = histogram(s.message_wait);
  j["negotiator"] = {{"rounds", n.rounds},     {"probes", n.probes},     {"offers", n.offers},
                     {"refusals", n.refusals}, {"no_answer", n.no_answer}, {"awards", n.awards},
                     {"renewals", n.renewals}, {"leases_lost", n.leases_lost},
                     {"no_candidates", n.no_candidates}, {"deferred", n.deferred},
                     {"leased_at_once", n.leased_at_once}};
  const BidderStats& bs = bidder_.stats();
  j["bidder"] = {{"requests", bs.requests}, {"offers", bs.offers},     {"refusals", bs.refusals},
                 {"leases", bs.leases},     {"releases", bs.releases},
                 {"leases_reclaimed", bs.leases_reclaimed}, {"leased_at_once", bs.leased_at_once}};
  const BidDeskStats ds = desk_.stats();
  j["desk"] = {{"answered", ds.answered}, {"forwarded", ds.forwarded}};
  const TransferSenderStats& ts = sender_.stats();
  const TransferReceiverStats& tr = receiver_.stats();
  j["transfer"] = {{"sending", sender_.active()},       {"receiving", receiver_.active()},
                   {"sent_started", ts.started},        {"sent_completed", ts.completed},
                   {"sent_failed", ts.failed},          {"bytes_sent", ts.bytes_sent},
                   {"chunks_sent", ts.chunks_sent},     {"chunks_resent", ts.chunks_resent},
                   {"received_started", tr.started},    {"received_completed", tr.completed},
                   {"received_failed", tr.failed},      {"bytes_received", bytes_received_},
                   {"bad_checksum", tr.bad_checksum},   {"duplicates", tr.duplicates},
                   {"over_limit", over_limit_},         {"refused", refused_},
                   {"file_errors", file_errors_}};
  j["kept_outputs"] = {{"kept", kept_.kept},
                       {"served", kept_.served},
                       {"refused", kept_.refused},
                       {"forgotten", kept_.forgotten},
                       {"pruned", kept_.pruned},
                       {"evicted", kept_.evicted},
                       {"bytes", kept_index_.bytes()},
                       {"files", kept_index_.files()},
                       {"fetched", kept_.fetched},
                       {"fetch_failed", kept_.fetch_failed},
                       {"fetching", fetching_.size()}};
  return j.dump();
}

// --- Kept outputs (docs/MESH.md, "Replication and failover", "Outputs after a takeover") ---

std::string MeshPlacer::KeptPath(const std::string& attempt_id) const {
  // Attempt ids are "<workflow>/<stage>/<shard>#<n>": one directory per workflow, so that
  // its end drops them together.
  const std::string workflow = attempt_id.substr(0, attempt_id.find('/'));
  return fmt::format("{}/kept/{:016x}/{:016x}.out", o_.work_dir, Fnv1a64(workflow),
                     Fnv1a64(attempt_id));
}

namespace {

// A file's modification time as a count, for the kept outputs' order.
int64_t FileTimeNs(fs::file_time_type t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void MeshPlacer::LoadKept(int64_t now) {
  std::error_code ec;
  for (auto dir = fs::directory_iterator(o_.work_dir + "/kept", ec);
       !ec && dir != fs::directory_iterator(); dir.increment(ec)) {
    std::error_code e2;
    for (auto f = fs::directory_iterator(dir->path(), e2); !e2 && f != fs::directory_iterator();
         f.increment(e2)) {
      std::error_code e3;
      const uint64_t size = f->file_size(e3);
      const auto t = e3 ? fs::file_time_type() : f->last_write_time(e3);
      if (!e3) kept_index_.Add({f->path().string(), size, FileTimeNs(t)});
    }
  }
  EvictKept(now);
}

void MeshPlacer::EvictKept(int64_t now) {
  for (const KeptFile& f : kept_index_.Evict()) {
    std::error_code ec;
    fs::remove(f.path, ec);
    // The workflow's directory goes with its last file.
    if (!ec) fs::remove(fs::path(f.path).parent_path(), ec);  // fails while not empty: fine
    ++kept_.evicted;
    uint64_t suppressed = 0;
    if (log_limit_.Allow(1, now, &suppressed)) {
      spdlog::warn("mesh: deleted the kept output {} ({} bytes), the oldest: kept outputs came to "
                   "more than mesh.max_kept_bytes ({} bytes); a takeover that needs it runs its "
                   "shard again{}",
                   f.path, f.bytes, o_.max_kept_bytes,
                   suppressed ? fmt::format(" ({} more since the last such line)", suppressed)
                              : "");
    }
  }
}

void MeshPlacer::KeepOutput(const Leased& l, int64_t now) {
  const std::string path = KeptPath(l.attempt_id);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (!ec) fs::rename(l.output_path, path, ec);
  if (ec) {
    ++file_errors_;
    spdlog::warn("mesh: the output of {} is not kept for a takeover: {} to {}: {}", l.attempt_id,
                 l.output_path, path, ec.message());
    return;
  }
  // Its age counts from now (the rename keeps the task's time).
  const fs::file_time_type t = fs::file_time_type::clock::now();
  fs::last_write_time(path, t, ec);
  ++kept_.kept;
  const uint64_t size = fs::file_size(path, ec);
  kept_index_.Add({path, ec ? 0 : size, FileTimeNs(t)});
  EvictKept(now);
}

void MeshPlacer::FetchOutput(const std::string& host, const std::string& attempt_id, uint64_t size,
                             const std::string& dest, std::function<void(Status)> done,
                             int64_t now) {
  std::error_code ec;
  fs::create_directories(fs::path(dest).parent_path(), ec);
  if (host == link_->self()) {
    // This host ran it for the owner that died: a copy of what it kept.
    const std::string path = KeptPath(attempt_id);
    const uint64_t have = fs::file_size(path, ec);
    if (ec || have != size) {
      ++kept_.fetch_failed;
      return done(Status::NotFound(
          fmt::format("{} keeps no output of {} ({})", host, attempt_id,
                      ec ? ec.message() : fmt::format("{} bytes, the log says {}", have, size))));
    }
    fs::remove(dest, ec);
    fs::create_hard_link(path, dest, ec);
    if (ec) fs::copy_file(path, dest, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      ++kept_.fetch_failed;
      ++file_errors_;
      return done(
          Status::IOError(fmt::format("cannot copy {} to {}: {}", path, dest, ec.message())));
    }
    ++kept_.fetched;
    return done(Status::OK());
  }
  next_nonce_ = std::max(next_nonce_ + 1, uint64_t(std::max<int64_t>(now, 0)));
  const TransferKey key{host, KeptTransferId(link_->self(), attempt_id, next_nonce_)};
  Fetching& f = fetching_[key];
  f.attempt_id = attempt_id;
  f.dest = dest;
  f.size = size;
  f.nonce = next_nonce_;
  f.done = std::move(done);
  f.next_send_ns = now;  // sent by TickKept
  f.deadline_ns = now + o_.fetch_timeout_ns;
  TickKept(now);
}

void MeshPlacer::ForgetOutputs(const std::string& workflow_id,
                               const std::vector<std::string>& hosts) {
  wire::RemoteRunMessage m;
  m.mutable_forget()->set_workflow_id(workflow_id);
  for (const std::string& h : hosts) {
    if (h == link_->self()) {
      OnForget(m.forget());
    } else {
      SendRun(h, m);
    }
  }
}

void MeshPlacer::OnFetch(const std::string& from, const wire::FetchOutput& f, int64_t now) {
  const std::string id = KeptTransferId(from, f.attempt_id(), f.nonce());
  if (sending_.contains(id)) return;  // a resend: it is on its way
  const std::string path = KeptPath(f.attempt_id());
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  Status st =
      ec ? Status::NotFound(fmt::format("{} keeps no output of {}", link_->self(), f.attempt_id()))
         : SendFile(from, id, path, size, Outgoing{}, now);
  if (st.ok()) {
    ++kept_.served;
    return;
  }
  ++kept_.refused;
  wire::RemoteRunMessage m;
  wire::FetchRefused* r = m.mutable_fetch_refused();
  r->set_attempt_id(f.attempt_id());
  r->set_nonce(f.nonce());
  r->set_error(st.message().substr(0, kMaxRemoteRunErrorBytes));
  SendRun(from, m);
}

void MeshPlacer::OnFetchRefused(const std::string& from, const wire::FetchRefused& r) {
  const TransferKey key{from, KeptTransferId(link_->self(), r.attempt_id(), r.nonce())};
  if (fetching_.contains(key)) EndFetch(key, Status::NotFound(r.error()), 0);
}

void MeshPlacer::OnForget(const wire::ForgetOutputs& f) {
  const std::string dir = fs::path(KeptPath(f.workflow_id() + "/")).parent_path().string();
  std::error_code ec;
  const auto removed = fs::remove_all(dir, ec);
  if (!ec && removed != static_cast<std::uintmax_t>(-1) && removed > 0)
    kept_.forgotten += removed - 1;
  kept_index_.RemoveUnder(dir);
}

void MeshPlacer::FetchArrived(const TransferKey& key, const std::string& file) {
  const Fetching& f = fetching_.at(key);
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  Status st = Status::OK();
  if (ec || size != f.size) {
    st = Status::Corruption(fmt::format("the output from {} is {} bytes, the log says {}",
                                        key.first, ec ? 0 : size, f.size));
  } else {
    fs::rename(file, f.dest, ec);
    if (ec) {
      ++file_errors_;
      st = Status::IOError(fmt::format("cannot move it to {}: {}", f.dest, ec.message()));
    }
  }
  if (!st.ok()) fs::remove(file, ec);
  EndFetch(key, st, 0);
}

void MeshPlacer::EndFetch(const TransferKey& key, Status st, int64_t now) {
  auto it = fetching_.find(key);
  if (it == fetching_.end()) return;
  Fetching f = std::move(it->second);
  fetching_.erase(it);
  if (!st.ok() && receiving_.contains(key)) StopReceiving(key, st.message(), now);
  ++(st.ok() ? kept_.fetched : kept_.fetch_failed);
  f.done(std::move(st));
}

void MeshPlacer::TickKept(int64_t now) {
  std::vector<TransferKey> late;
  for (auto& [key, f] : fetching_) {
    if (receiving_.contains(key)) continue;  // on its way: the transfer's own limits apply
    if (now >= f.deadline_ns) {
      late.push_back(key);
      continue;
    }
    if (now < f.next_send_ns) continue;
    wire::RemoteRunMessage m;
    m.mutable_fetch()->set_attempt_id(f.attempt_id);
    m.mutable_fetch()->set_nonce(f.nonce);
    SendRun(key.first, m);
    f.next_send_ns = now + o_.run_resend_ns;
  }
  for (const TransferKey& key : late) {
    EndFetch(key,
             Status::Unavailable(fmt::format("{} did not answer within {:.0f} s", key.first,
                                             double(o_.fetch_timeout_ns) / 1e9)),
             now);
  }
  // Retention: kept outputs older than keep_outputs_ns go, a bounded batch a minute.
  if (o_.keep_outputs_ns <= 0 || now < next_kept_prune_ns_) return;
  next_kept_prune_ns_ = now + 60'000'000'000;
  constexpr size_t kBatch = 256;
  const auto cutoff =
      fs::file_time_type::clock::now() - std::chrono::nanoseconds(o_.keep_outputs_ns);
  std::error_code ec;
  size_t removed = 0;
  for (auto dir = fs::directory_iterator(o_.work_dir + "/kept", ec);
       !ec && dir != fs::directory_iterator() && removed < kBatch; dir.increment(ec)) {
    std::error_code e2;
    size_t left = 0;
    for (auto f = fs::directory_iterator(dir->path(), e2); !e2 && f != fs::directory_iterator();
         f.increment(e2)) {
      std::error_code e3;
      if (removed < kBatch && fs::last_write_time(f->path(), e3) < cutoff && !e3 &&
          fs::remove(f->path(), e3)) {
        kept_index_.Remove(f->path().string());
        ++removed;
      } else {
        ++left;
      }
    }
    if (left == 0) fs::remove(dir->path(), e2);
  }
  kept_.pruned += removed;
  if (removed == kBatch) next_kept_prune_ns_ = now;  // more next tick
}

}  // namespace augur::mesh
