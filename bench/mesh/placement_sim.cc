// mesh-placement-sim: the mesh's placement negotiation (Negotiator, Bidder, each host's
// Ledger, the headroom summaries) at N hosts in virtual time over a simulated network with
// 0.2-0.8 ms links (PlacementCluster, SimNetwork), driven by a stream of WfCommons workflow
// executions: each arrives at a random owner host, which places its ready tasks by
// negotiation; a task runs for its measured run time (stretched if granted less CPU than it
// wants) on the host that won it; its end releases the lease and readies its children.
//
//   mesh-placement-sim --hosts 8 32 100 1000 --load 0.7 TRACES/wfcommons-*.json
//   mesh-placement-sim --hosts 100 1000 10000 --workflows-per-host 0.4 TRACES/wfcommons-*.json
//
// The stream has --workflows-per-host x N workflows (one value, or one per N). At 10,000
// hosts with 0.4 per host (414,000 tasks) a run takes about 580 s of one core, most of it
// the owners weighing every live peer per shard (the negotiator's sampling is O(N)).
//
// Reported per N: placement latency from a task becoming ready to its lease confirmed (p50,
// p99, max, in virtual ms), sampling rounds, messages per placement (negotiation only, and
// with lease renewals and releases), messages per host per second, makespan against a lower
// bound and the utilisation it implies, and the mean workflow stretch (its run time over its
// critical path). Bound: no schedule on N hosts beats one on a single host of their pooled
// capacity, so max(total work / total cores, over workflows: arrival + its own
// ComputeMakespanBound on the pooled capacity) is a lower bound (makespan_bound.h).
// Simplifications: a task's end reaches its owner at once (no result transfer), predictions
// are exact, every task asks for its measured CPU and memory as both want and min.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "../workflow/wfcommons.h"
#include "mesh/placement_cluster.h"
#include "workflow/makespan_bound.h"
#include "workflow/replay.h"

namespace {

using augur::mesh::BidderEvent;
using augur::mesh::ClusterHost;
using augur::mesh::ClusterOptions;
using augur::mesh::NegotiatorOptions;
using augur::mesh::PlacementCluster;
using augur::mesh::PlacementEvent;
using augur::mesh::ShardRequest;
using augur::workflow::ReplayTask;
using augur::workflow::Resources;

constexpr double kNs = 1e9;
constexpr uint64_t kGiB = 1ULL << 30;

struct Template {
  std::string name;
  std::vector<ReplayTask> tasks;
  std::vector<std::vector<int>> children;
  double work = 0;  // core-seconds
};

Template FromTrace(const augur::bench::WfTrace& trace, const Resources& host) {
  Template t{trace.name, {}, std::vector<std::vector<int>>(trace.tasks.size()), 0};
  for (size_t i = 0; i < trace.tasks.size(); ++i) {
    const augur::bench::WfTask& w = trace.tasks[i];
    ReplayTask r;
    r.actual_s = r.predicted_s = w.runtime_s;
    r.want = {std::min(host.cpu, std::max(0.05, w.avg_cpu_percent / 100)),
              std::min<uint64_t>(host.memory, uint64_t(std::max(1.0, w.memory_kb.value_or(1024))) * 1024)};
    r.min = r.want;
    r.preds = w.parents;
    for (int p : w.parents) t.children[size_t(p)].push_back(int(i));
    t.work += r.want.cpu * r.actual_s;
    t.tasks.push_back(std::move(r));
  }
  return t;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

struct RunResult {
  uint64_t seed = 0;
  size_t hosts = 0, workflows = 0, tasks = 0;
  uint32_t d = 0;
  std::vector<double> latency_ms;
  // Of the tasks that had room when they became ready (a host whose ledger fitted their min,
  // and free CPU across the cluster for them beyond what the tasks already waiting need):
  // the protocol's own delay, without waiting for capacity.
  std::vector<double> latency_room_ms;
  double rounds_mean = 0, first_round = 0;
  double msgs_negotiation = 0, msgs_all = 0;  // per placement
  double host_msgs_mean = 0, host_msgs_max = 0;  // per host per second
  double makespan_s = 0, bound_s = 0, utilisation = 0, stretch_mean = 0;
  uint64_t lost = 0, gossip_bytes = 0;
  double wall_s = 0;
};

RunResult Run(const std::vector<Template>& templates, size_t n_hosts, uint32_t d, double load,
              size_t instances, double loss, int64_t queue_ms, uint64_t seed,
              const Resources& host_cap, bool lease_at_once, int64_t first_retry_ms,
              uint32_t at_once_probes) {
  const auto wall0 = std::chrono::steady_clock::now();
  std::mt19937_64 rng(seed);
  std::vector<ClusterHost> hosts;
  const char* zones[] = {"za", "zb", "zc"};
  for (size_t i = 0; i < n_hosts; ++i) {
    hosts.push_back({fmt::format("h{:04}", i), zones[i % 3], host_cap, {{"process", {}}}});
  }
  ClusterOptions o;
  o.seed = seed;
  o.faults = {loss, 0, 200, 800};
  o.negotiator.probes_per_shard = d;
  o.negotiator.queue_ns = queue_ms * 1'000'000;
  o.negotiator.lease_at_once = lease_at_once;
  o.negotiator.first_retry_ns = first_retry_ms * 1'000'000;
  o.negotiator.at_once_probes = at_once_probes;
  PlacementCluster c(hosts, o);

  // Arrivals: a Poisson stream whose CPU work is `load` of the cluster's cores.
  struct Instance {
    const Template* t;
    std::string owner;
    double submit_s = 0, finish_s = -1;
    std::vector<int> waiting;  // unfinished parents per task
    std::vector<int> attempt;  // current attempt per task
    std::vector<bool> done;
    size_t remaining = 0;
  };
  std::vector<Instance> inst(instances);
  double mean_work = 0;
  for (const Template& t : templates) mean_work += t.work / double(templates.size());
  const double rate = load * host_cap.cpu * double(n_hosts) / mean_work;  // workflows per s
  std::exponential_distribution<double> gap(rate);
  double at = 0;
  for (size_t i = 0; i < instances; ++i) {
    Instance& w = inst[i];
    w.t = &templates[i % templates.size()];
    w.owner = hosts[rng() % n_hosts].name;
    w.submit_s = at;
    at += gap(rng);
    w.remaining = w.t->tasks.size();
    w.attempt.assign(w.remaining, 1);
    w.done.assign(w.remaining, false);
    for (const ReplayTask& r : w.t->tasks) w.waiting.push_back(int(r.preds.size()));
  }
  auto shard_id = [](size_t wi, size_t ti, int attempt) {
    return fmt::format("w{}/t{}#{}", wi, ti, attempt);
  };
  auto parse = [](const std::string& id, size_t* wi, size_t* ti, int* attempt) {
    return std::sscanf(id.c_str(), "w%zu/t%zu#%d", wi, ti, attempt) == 3;
  };
  std::map<std::string, std::pair<bool, double>> waiting;  // by shard id: (had room, min cpu)
  double waiting_cpu = 0;
  // Every ledger's free room, read once per instant of virtual time (the tasks a workflow's
  // arrival or a task's end readies come at one instant) and only for the hosts whose
  // bidder ran since (PlacementCluster::ledger_epoch): at N = 10,000 reading all ledgers per
  // task was most of the run. Nothing runs between submissions at one instant.
  int64_t free_at = -1;
  std::vector<Resources> free_now(n_hosts);
  std::vector<uint64_t> epoch_seen(n_hosts, UINT64_MAX);
  std::vector<const augur::workflow::Ledger*> ledgers;
  for (const ClusterHost& h : hosts) ledgers.push_back(&c.ledger(h.name));
  double free_cpu = 0;
  auto submit = [&](size_t wi, size_t ti) {
    const Instance& w = inst[wi];
    const ReplayTask& r = w.t->tasks[ti];
    ShardRequest s;
    s.shard = shard_id(wi, ti, w.attempt[ti]);
    if (free_at != c.now_ns()) {
      free_at = c.now_ns();
      free_cpu = 0;
      for (size_t h = 0; h < n_hosts; ++h) {
        if (epoch_seen[h] != c.ledger_epoch(h)) {
          epoch_seen[h] = c.ledger_epoch(h);
          free_now[h] = ledgers[h]->Free();
        }
        free_cpu += free_now[h].cpu;
      }
    }
    const bool fits = std::any_of(free_now.begin(), free_now.end(),
                                  [&](const Resources& f) { return r.min.FitsIn(f); });
    waiting[s.shard] = {fits && free_cpu - waiting_cpu >= r.min.cpu, r.min.cpu};
    waiting_cpu += r.min.cpu;
    s.workflow = fmt::format("w{}", wi);
    s.want = r.want;
    s.min = r.min;
    s.score = 5;
    s.predicted_s = r.predicted_s;
    if (!c.Submit(w.owner, s).ok()) std::abort();
  };
  for (size_t wi = 0; wi < instances; ++wi) {
    c.At(int64_t(inst[wi].submit_s * kNs), [&, wi] {
      for (size_t ti = 0; ti < inst[wi].t->tasks.size(); ++ti) {
        if (inst[wi].waiting[ti] == 0) submit(wi, ti);
      }
    });
  }

  RunResult res;
  res.seed = seed;
  res.hosts = n_hosts;
  res.d = d;
  res.workflows = instances;
  std::vector<double> rounds;
  size_t finished = 0;
  c.on_placement = [&](const std::string&, const PlacementEvent& e) {
    if (e.kind == PlacementEvent::Kind::kAwarded) {
      res.latency_ms.push_back(double(e.at_ns - e.ready_ns) / 1e6);
      if (auto it = waiting.find(e.shard); it != waiting.end()) {
        if (it->second.first) res.latency_room_ms.push_back(res.latency_ms.back());
        waiting_cpu -= it->second.second;
        waiting.erase(it);
      }
      rounds.push_back(e.rounds);
    } else if (e.kind == PlacementEvent::Kind::kLost) {
      ++res.lost;
      size_t wi, ti;
      int a;
      if (!parse(e.shard, &wi, &ti, &a) || inst[wi].done[ti]) return;
      ++inst[wi].attempt[ti];
      c.At(c.now_ns(), [&, wi, ti] { submit(wi, ti); });
    }
  };
  // Leases whose task runs: one that ends before its task (declined after it was leased at
  // once, reclaimed) stops it, as the executor stops a leased task. By host and lease: a
  // shard's probes that lease at once make leases of one id on two hosts.
  std::set<std::pair<std::string, std::string>> running;
  c.on_bidder = [&](const std::string& host, const BidderEvent& e) {
    if (e.kind != BidderEvent::Kind::kLeased) {
      running.erase({host, e.lease_id});
      return;
    }
    running.insert({host, e.lease_id});
    size_t wi, ti;
    int a;
    if (!parse(e.shard, &wi, &ti, &a)) return;
    const ReplayTask& r = inst[wi].t->tasks[ti];
    const double stretch = e.grant.cpu < r.want.cpu ? r.want.cpu / e.grant.cpu : 1;
    const std::string owner = inst[wi].owner, shard = e.shard;
    const std::pair<std::string, std::string> lease{host, e.lease_id};
    c.At(c.now_ns() + int64_t(r.actual_s * stretch * kNs), [&, wi, ti, a, owner, shard, lease] {
      if (running.erase(lease) == 0) return;  // its lease ended first: it was stopped
      (void)c.Release(owner, shard);  // NotFound for an attempt already given up
      Instance& w = inst[wi];
      if (a != w.attempt[ti] || w.done[ti]) return;  // a late result of a lost attempt
      w.done[ti] = true;
      for (int ch : w.t->children[ti]) {
        if (--w.waiting[size_t(ch)] == 0) submit(wi, size_t(ch));
      }
      if (--w.remaining == 0) {
        w.finish_s = double(c.now_ns()) / kNs;
        ++finished;
      }
    });
  };
  while (finished < instances) {
    std::optional<int64_t> next = c.NextAt();
    if (!next) break;
    c.RunUntil(*next);
  }

  // Results.
  double first = 1e300, last = 0, stretch = 0, work = 0;
  std::map<const Template*, double> path, own_bound;
  const Resources pooled{host_cap.cpu * double(n_hosts), host_cap.memory * n_hosts};
  for (const Template& t : templates) {
    auto b = augur::workflow::ComputeMakespanBound(t.tasks, pooled);
    own_bound[&t] = b ? b->bound_s : 0;
    path[&t] = b ? b->critical_path_s : 0;
  }
  for (const Instance& w : inst) {
    first = std::min(first, w.submit_s);
    last = std::max(last, w.finish_s);
    stretch += (w.finish_s - w.submit_s) / path[w.t] / double(instances);
    work += w.t->work;
    res.tasks += w.t->tasks.size();
  }
  res.makespan_s = last - first;
  res.bound_s = work / pooled.cpu;
  for (const Instance& w : inst) res.bound_s = std::max(res.bound_s, w.submit_s - first + own_bound[w.t]);
  res.utilisation = work / (pooled.cpu * res.makespan_s);
  res.stretch_mean = stretch;
  double r_sum = 0;
  for (double r : rounds) {
    r_sum += r;
    res.first_round += r == 1;
  }
  res.rounds_mean = rounds.empty() ? 0 : r_sum / double(rounds.size());
  res.first_round = rounds.empty() ? 0 : res.first_round / double(rounds.size());
  auto sent = [&](const char* k) {
    auto it = c.sent_by_kind().find(k);
    return it == c.sent_by_kind().end() ? 0.0 : double(it->second);
  };
  const double placements = double(res.latency_ms.size());
  const double renewals = sent("renew");
  const double negotiation = sent("bid_request") + sent("offer") + sent("award") + sent("decline") +
                             sent("reclaimed") + sent("lease_changed") + sent("leased") - renewals;
  res.msgs_negotiation = negotiation / placements;
  res.msgs_all = double(c.messages_sent()) / placements;
  double total = 0, most = 0;
  for (size_t i = 0; i < n_hosts; ++i) {
    const double per_s = double(c.net().SentBy(hosts[i].name)) / res.makespan_s;
    total += per_s;
    most = std::max(most, per_s);
  }
  res.host_msgs_mean = total / double(n_hosts);
  res.host_msgs_max = most;
  res.gossip_bytes = c.gossip_bytes_max();
  if (c.bad_messages() || c.encode_errors()) {
    fmt::print(stderr, "bad messages {} encode errors {}\n", c.bad_messages(), c.encode_errors());
  }
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mesh-placement-sim: placement negotiation at N hosts in virtual time"};
  std::vector<std::string> files;
  std::vector<size_t> hosts_list = {8, 32, 100, 1000};
  std::vector<uint32_t> d_list = {2};
  double load = 0.7, loss = 0, cores = 4, memory_gib = 16;
  std::vector<double> per_host = {0.4};
  size_t min_instances = 12;
  int64_t queue_ms = 2000;
  std::vector<uint64_t> seeds = {1};
  bool lease_at_once = true;
  int64_t first_retry_ms = NegotiatorOptions{}.first_retry_ns / 1'000'000;
  uint32_t at_once_probes = NegotiatorOptions{}.at_once_probes;
  app.add_option("FILES", files, "WfCommons JSON files")->required()->check(CLI::ExistingFile);
  app.add_option("--hosts", hosts_list, "cluster sizes")->capture_default_str();
  app.add_option("--d", d_list, "probes per shard (several: a row each)")->capture_default_str();
  app.add_option("--load", load, "offered CPU load, a share of all cores")->capture_default_str();
  app.add_option("--loss", loss, "message loss on every link")->capture_default_str();
  app.add_option("--cores", cores, "cores per host")->capture_default_str();
  app.add_option("--memory-gib", memory_gib, "memory per host")->capture_default_str();
  app.add_option("--workflows-per-host", per_host,
                 "workflows in the stream per host: one value for every N, or one per N")
      ->capture_default_str();
  app.add_option("--min-workflows", min_instances, "at least this many")->capture_default_str();
  app.add_option("--queue-ms", queue_ms, "candidates queue requests this long (0: refuse)")
      ->capture_default_str();
  app.add_option("--seeds", seeds, "a row per seed (arrivals, owners, sampling)")
      ->capture_default_str();
  app.add_option("--lease-at-once", lease_at_once,
                 "owners ask candidates for a lease at once (NegotiatorOptions)")
      ->capture_default_str();
  app.add_option("--first-retry-ms", first_retry_ms,
                 "owners wait this long before a shard's second round (NegotiatorOptions)")
      ->capture_default_str();
  app.add_option("--at-once-probes", at_once_probes,
                 "how many of a shard's probes may ask for a lease at once (NegotiatorOptions)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const Resources host_cap{cores, uint64_t(memory_gib * double(kGiB))};
  std::vector<Template> templates;
  for (const std::string& f : files) {
    augur::bench::WfTrace trace;
    std::string error;
    if (!augur::bench::LoadWfCommons(f, &trace, &error)) {
      fmt::print(stderr, "{}\n", error);
      return 1;
    }
    templates.push_back(FromTrace(trace, host_cap));
  }
  fmt::print("| hosts | d | seed | workflows | tasks | latency p50 / p99 / max (ms) "
             "| with room: share, p50 / p99 / max (ms) | rounds (1st-round share) "
             "| msgs/placement: negotiation, all | msgs/host/s: mean, max | makespan / bound (s) "
             "| utilisation | stretch | lost | wall (s) |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  if (per_host.size() != 1 && per_host.size() != hosts_list.size()) {
    fmt::print(stderr, "--workflows-per-host: one value, or one per --hosts value\n");
    return 2;
  }
  for (size_t ni = 0; ni < hosts_list.size(); ++ni) {
    const size_t n = hosts_list[ni];
    const double wph = per_host.size() == 1 ? per_host[0] : per_host[ni];
    for (uint32_t d : d_list) {
      for (uint64_t seed : seeds) {
        const size_t instances = std::max(min_instances, size_t(std::lround(wph * double(n))));
        RunResult r = Run(templates, n, d, load, instances, loss, queue_ms, seed, host_cap,
                          lease_at_once, first_retry_ms, at_once_probes);
        fmt::print("| {} | {} | {} | {} | {} | {:.2f} / {:.2f} / {:.1f} "
                   "| {:.0f}%, {:.2f} / {:.2f} / {:.1f} | {:.2f} ({:.0f}%) | {:.1f}, {:.1f} "
                   "| {:.2f}, {:.2f} | {:.0f} / {:.0f} = {:.2f} | {:.0f}% | {:.2f} | {} | {:.1f} |\n",
                   r.hosts, r.d, r.seed, r.workflows, r.tasks, Percentile(r.latency_ms, 0.5),
                   Percentile(r.latency_ms, 0.99), Percentile(r.latency_ms, 1.0),
                   100.0 * double(r.latency_room_ms.size()) /
                       double(std::max<size_t>(1, r.latency_ms.size())),
                   Percentile(r.latency_room_ms, 0.5), Percentile(r.latency_room_ms, 0.99),
                   Percentile(r.latency_room_ms, 1.0), r.rounds_mean, 100 * r.first_round,
                   r.msgs_negotiation, r.msgs_all, r.host_msgs_mean, r.host_msgs_max,
                   r.makespan_s, r.bound_s, r.makespan_s / r.bound_s, 100 * r.utilisation,
                   r.stretch_mean, r.lost, r.wall_s);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
