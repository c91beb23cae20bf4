// mesh-transfer-sim: moving shard data and replicating workflow state, in virtual time over a
// simulated network (SimNetwork), with the real cores (TransferSender/Receiver, Replicator).
//
//   mesh-transfer-sim [--seeds 5] [--link-mbps 1000] [--detect-ms 0 1000 3000]
//
// Transfers: one blob of 64 KiB, 1 MiB or 16 MiB from host a to host b at 0, 1 and 10 % loss
// per message (both ways), 1 % duplication, 100-300 us propagation delay (messages overtake
// each other), on a link of --link-mbps each way: a message leaves when the link is free and
// takes its size over the rate to serialize (a lost one takes its slot too). Reported per
// size and loss, over the seeds: goodput (blob bytes over virtual time from Send to the
// sender's kComplete; median and min), link utilisation (goodput over link rate), chunks
// sent again per chunk (retransmission overhead), and retransmission timeouts.
//
// Replication: 5 hosts, r = 2, 10 % loss, 0.2-3 ms delay, retransmit every 20 ms.
//  - Takeover: the owner of a workflow with 200 records is killed; membership tells the others
//    --detect-ms later. Reported: virtual time from the kill to the next replica's
//    kBecameOwner, and from detection to it (the protocol's own part).
//  - Catch-up: a replica is down while the owner appends N records (10, 100, 1000), then comes
//    back. Reported: records sent to it to catch up (of them, resent ones) against the N it
//    missed, and the time until it holds the whole log.
#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mesh/rendezvous.h"
#include "mesh/replication.h"
#include "mesh/replication_cluster.h"
#include "mesh/sim_network.h"
#include "mesh/transfer.h"

namespace {

using namespace augur::mesh;

constexpr int64_t kMs = 1'000'000;

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}
double Min(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }
double Max(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }

// --- Transfers -------------------------------------------------------------------------

struct TransferRun {
  bool ok = false;
  double seconds = 0;
  uint64_t chunks = 0, resent = 0, timeouts = 0;
};

TransferRun RunTransfer(size_t size, double loss, uint64_t seed, double link_bps) {
  SimNetwork net(seed, SimLinkFaults{loss, 0.01, 100, 300});
  TransferOptions o;
  TransferSender sender("a", o);
  TransferReceiver receiver("b", o);
  std::map<std::string, int64_t> busy;  // when each host's outbound link is free
  int64_t now = 0;
  auto send = [&](const std::string& from, TransferOutput& out) {
    for (auto& m : out.messages) {
      // The envelope's bytes count on the link too.
      const double bits = double(m.payload.size() + kEnvelopeOverheadBytes) * 8;
      const int64_t depart = std::max(now, busy[from]);
      busy[from] = depart + int64_t(bits / link_bps * 1e9);
      net.Send(busy[from] / 1000, from, m.to, std::move(m.payload));
    }
    out.messages.clear();
  };
  std::mt19937_64 rng(seed);
  std::string blob(size, '\0');
  for (char& c : blob) c = char(rng());
  TransferOutput out;
  TransferRun run;
  if (!sender.Send("b", "blob", blob, 0, &out).ok()) return run;
  bool done = false;
  auto events = [&](TransferOutput& o) {
    for (const auto& e : o.events) {
      if (e.peer == "b" && e.transfer_id == "blob") {
        done = true;
        run.ok = e.kind == TransferEvent::Kind::kComplete;
      }
    }
    o.events.clear();
  };
  send("a", out);
  while (!done && now < 600'000 * kMs) {
    std::optional<int64_t> next;
    auto consider = [&](std::optional<int64_t> t) { if (t && (!next || *t < *next)) next = *t; };
    if (auto at = net.NextAt()) consider(*at * 1000);
    consider(sender.NextDeadline());
    consider(receiver.NextDeadline());
    if (!next) break;
    now = std::max(now, *next);
    while (auto d = net.Pop(now / 1000)) {
      auto msg = DecodeTransfer(d->bytes, o.max_payload_bytes);
      if (!msg) continue;
      if (d->to == "b") {
        receiver.Handle(d->from, *msg, now, &out);
        send("b", out);
      } else {
        sender.Handle(d->from, *msg, now, &out);
        send("a", out);
      }
      events(out);
    }
    sender.Tick(now, &out);
    send("a", out);
    receiver.Tick(now, &out);
    send("b", out);
    events(out);
  }
  run.seconds = double(now) / 1e9;
  run.chunks = sender.stats().chunks_sent;
  run.resent = sender.stats().chunks_resent;
  run.timeouts = sender.stats().timeouts;
  return run;
}

void Transfers(int seeds, double link_mbps) {
  const double bps = link_mbps * 1e6;
  fmt::print("## Transfers (link {} Mbit/s each way, 100-300 us delay, 1 % duplication, {} seeds)\n\n",
             link_mbps, seeds);
  fmt::print("| blob | loss | completed | goodput MB/s (median, min) | link utilisation | chunks resent per chunk | RTO timeouts (median) |\n");
  fmt::print("|---|---|---|---|---|---|---|\n");
  for (size_t size : {size_t{64} << 10, size_t{1} << 20, size_t{16} << 20}) {
    for (double loss : {0.0, 0.01, 0.10}) {
      std::vector<double> goodput, overhead, timeouts;
      int ok = 0;
      for (int s = 1; s <= seeds; ++s) {
        const TransferRun r = RunTransfer(size, loss, uint64_t(s) * 7919 + size, bps);
        if (!r.ok) continue;
        ++ok;
        goodput.push_back(double(size) / r.seconds / 1e6);
        overhead.push_back(double(r.resent) / double(r.chunks));
        timeouts.push_back(double(r.timeouts));
      }
      const std::string label = size >= (1 << 20) ? fmt::format("{} MiB", size >> 20) : fmt::format("{} KiB", size >> 10);
      fmt::print("| {} | {:.0f} % | {}/{} | {:.1f}, {:.1f} | {:.0f} % | {:.3f} | {:.0f} |\n", label, loss * 100, ok,
                 seeds, Median(goodput), Min(goodput), Median(goodput) * 8e6 / bps * 100, Median(overhead),
                 Median(timeouts));
    }
  }
  fmt::print("\n");
}

// --- Replication -----------------------------------------------------------------------

ReplicationOptions ReplOptions() {
  ReplicationOptions o;
  o.replicas = 2;
  o.retransmit_ns = 20 * kMs;
  return o;
}

const SimLinkFaults kReplLink{0.10, 0.01, 200, 3'000};

std::string Create(ReplicationCluster& c, const std::string& id, int records) {
  const std::string owner = ReplicaSet(id, c.names(), 0).front();
  (void)c.Do(owner, [&](Replicator& r, ReplicationOutput* out) {
    return r.Create(id, MakeSubmitted("wf", "spec"), c.now(), out);
  });
  for (int i = 0; i < records; ++i) {
    (void)c.Do(owner, [&](Replicator& r, ReplicationOutput* out) {
      return r.Append(id, MakeAttemptStarted("s", std::to_string(i), id + "/s/" + std::to_string(i) + "#1", "hx", "l"),
                      c.now(), out);
    });
    c.RunFor(1 * kMs);
  }
  c.RunFor(2000 * kMs);
  return owner;
}

void Takeover(int seeds, const std::vector<int>& detect_ms) {
  fmt::print("## Replication: owner killed, next replica takes over (5 hosts, r = 2, 10 % loss, 200 records, {} seeds)\n\n", seeds);
  fmt::print("| detection | kill to takeover ms (median, max) | detection to takeover ms (median, max) | records fetched (median) | lost committed records |\n");
  fmt::print("|---|---|---|---|---|\n");
  for (int d : detect_ms) {
    std::vector<double> total, protocol, fetched;
    uint64_t lost = 0;
    for (int s = 1; s <= seeds; ++s) {
      ReplicationCluster c(5, uint64_t(s) * 31 + d, kReplLink, ReplOptions(), int64_t(d) * kMs);
      c.RunFor(int64_t(d) * kMs + 1);  // membership has spoken once
      const std::string id = "wf-" + std::to_string(s);
      const std::string owner = Create(c, id, 200);
      const uint64_t committed = c.at(owner).Find(id)->committed;
      const std::string next = RendezvousOrder(id, c.names())[1];
      const int64_t killed = c.now();
      c.Kill(owner);
      int64_t became = -1;
      while (became < 0 && c.now() < killed + 60'000 * kMs) {
        c.RunFor(1 * kMs);
        for (const auto& e : c.events(next)) {
          if (e.kind == ReplicationEvent::Kind::kBecameOwner && e.workflow_id == id) became = c.now();
        }
      }
      if (became < 0) continue;
      total.push_back(double(became - killed) / kMs);
      protocol.push_back(double(became - killed - int64_t(d) * kMs) / kMs);
      fetched.push_back(double(c.at(next).stats().fetched_records));
      const WorkflowReplica* w = c.at(next).Find(id);
      if (w->log.size() < committed) lost += committed - w->log.size();
    }
    fmt::print("| {} ms | {:.1f}, {:.1f} | {:.1f}, {:.1f} | {:.0f} | {} |\n", d, Median(total), Max(total),
               Median(protocol), Max(protocol), Median(fetched), lost);
  }
  fmt::print("\n");
}

void CatchUp(int seeds) {
  fmt::print("## Replication: a replica down while N records are appended, then back (5 hosts, r = 2, 10 % loss, {} seeds)\n\n", seeds);
  fmt::print("| N missed | catch-up records sent (median, max) | of them resent (median) | back to in sync ms (median, max) |\n");
  fmt::print("|---|---|---|---|\n");
  for (int n : {10, 100, 1000}) {
    std::vector<double> sent, resent, ms;
    for (int s = 1; s <= seeds; ++s) {
      ReplicationCluster c(5, uint64_t(s) * 97 + n, kReplLink, ReplOptions());
      const std::string id = "wf-" + std::to_string(s);
      const std::string owner = Create(c, id, 50);
      const std::string replica = c.at(owner).Find(id)->replicas.front();
      c.Kill(replica);
      c.RunFor(500 * kMs);
      for (int i = 0; i < n; ++i) {
        (void)c.Do(owner, [&](Replicator& r, ReplicationOutput* out) {
          return r.Append(id, MakeAttemptStarted("t", std::to_string(i), id + "/t/" + std::to_string(i) + "#1", "hx", "l"),
                          c.now(), out);
        });
        if (i % 10 == 9) c.RunFor(1 * kMs);
      }
      c.RunFor(2000 * kMs);  // the stand-in replica is caught up first
      const ReplicationStats before = c.at(owner).stats();
      const int64_t back = c.now();
      c.Restart(replica);
      int64_t synced = -1;
      const size_t want = c.at(owner).Find(id)->log.size();
      while (synced < 0 && c.now() < back + 60'000 * kMs) {
        c.RunFor(1 * kMs);
        const WorkflowReplica* w = c.at(replica).Find(id);
        if (w && w->log.size() == want) synced = c.now();
      }
      c.RunFor(1000 * kMs);
      const ReplicationStats& after = c.at(owner).stats();
      sent.push_back(double(after.catch_up_records - before.catch_up_records));
      resent.push_back(double(after.records_resent - before.records_resent));
      if (synced >= 0) ms.push_back(double(synced - back) / kMs);
    }
    fmt::print("| {} | {:.0f}, {:.0f} | {:.0f} | {:.1f}, {:.1f} |\n", n, Median(sent), Max(sent), Median(resent),
               Median(ms), Max(ms));
  }
  fmt::print("\n");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mesh-transfer-sim: shard data transfer and workflow state replication in virtual time"};
  int seeds = 5;
  double link_mbps = 1000;
  std::vector<int> detect_ms = {0, 1000, 3000};
  app.add_option("--seeds", seeds, "runs per configuration");
  app.add_option("--link-mbps", link_mbps, "simulated link rate each way, Mbit/s");
  app.add_option("--detect-ms", detect_ms, "membership detection times to simulate");
  CLI11_PARSE(app, argc, argv);
  Transfers(seeds, link_mbps);
  Takeover(seeds, detect_ms);
  CatchUp(seeds);
  return 0;
}
