// mesh-membership-sim: the membership core (src/mesh/membership.h), SWIM with Lifeguard,
// driven at N hosts through the seeded lossy SimNetwork in virtual time
// (src/mesh/membership_sim.h), to measure what the targets ask at 32 hosts and how
// it grows with N:
//
//   mesh-membership-sim --n 32 100 300 1000 --kills 400 200 100 20
//       --changes 400 200 100 50 --fp-host-minutes 1000
//   mesh-membership-sim --n 10000 --kills 10 --changes 20 --fp-host-minutes 1000
//
// For each N: hosts join (staggered, through three seeds) until all know all, or from
// --preload-from hosts up (default 5,000) start as long-standing members, each handed the
// whole mesh's state as a seed's join answer gives it (MembershipSim::AddKnownHosts): a join
// burst of N hosts costs the simulation N^2 log N deliveries of gossiped updates, some 3e9 at
// 10,000, hours of CPU here; then
//   rates     messages and payload bytes sent per host per second, quiet and at 1 % loss;
//   kills     kill -9 of a random host: time until some host suspects it and until every
//             running host holds it Dead; then it restarts with incarnation 0 and must refute
//             its old death (time until all hold it alive again);
//   changes   a host's metadata changes: time until every host has the new version;
//   false     1 % loss on every link and one slow host (a saturated CPU: each message it
//   positives receives waits 50-300 ms, in order, and each of its timers fires 50-300 ms
//             late) for --fp-host-minutes host-minutes: live hosts declared dead, and the
//             false suspicions raised.
// Kills and changes run at --event-loss (default 1 %); every host carries --meta-bytes of
// metadata (default 153, a typical headroom summary). Two markdown tables go to stdout,
// progress to stderr. Virtual time: a seed repeats exactly. Every host holds every member,
// so the simulation holds N^2 member records, each a 48-byte entry with its name and card
// shared (membership.h), ~100 bytes all told: 10 GB at N = 10,000 (the peak resident size is
// in the table).
// A size that would not fit in the memory available is skipped with a line that says so (at
// the end of stdout and on stderr).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "mesh/membership_sim.h"

namespace {

using augur::mesh::MembershipConfig;
using augur::mesh::MembershipEvent;
using augur::mesh::MembershipEventKind;
using augur::mesh::MembershipSim;
using augur::mesh::MemberState;
using augur::mesh::SimLinkFaults;

constexpr int64_t kSec = 1'000'000;

struct Options {
  std::vector<int> ns{32, 100, 1000};
  std::vector<int> kills{40};  // per N (one value: the same for every N)
  std::vector<int> changes{100};
  double fp_host_minutes = 1000;
  double loss = 0.01;
  double event_loss = 0.01;
  int64_t slow_min_ms = 50, slow_max_ms = 300;
  int meta_bytes = 153;  // a typical headroom summary (docs/MESH.md, "Headroom gossip")
  uint64_t seed = 1;
  double rate_window_s = 60;
  int preload_from = 5000;
  int64_t clock_skew_us = 0;
  MembershipConfig config;
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

std::string Name(int i) { return fmt::format("h{:05d}", i); }

// The simulation's memory per (host, member) record, all told: peak resident size / N^2,
// 0.90 GB at N = 3,000 (preloaded). It was ~760 before records were compacted (0.76 GB at
// N = 1,000).
constexpr double kBytesPerRecord = 100;

// The peak resident size of this process so far, in GB.
double MaxRssGb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) * 1024 / 1e9;
}

// MemAvailable from /proc/meminfo in GB, or 0 when unknown.
double AvailableGb() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f == nullptr) return 0;
  char key[64];
  unsigned long long kb = 0;
  double gb = 0;
  while (std::fscanf(f, "%63s %llu kB", key, &kb) == 2) {
    if (std::string(key) == "MemAvailable:") {
      gb = double(kb) * 1024 / 1e9;
      break;
    }
  }
  std::fclose(f);
  return gb;
}

struct Rates {
  double msgs = 0, bytes = 0;            // per host per second, mean over hosts
  double max_msgs = 0, max_bytes = 0;    // the busiest host but the slow one
  double slow_msgs = 0, slow_bytes = 0;  // the slow host's own
  double io_msgs = 0;                    // sent + received per host per second, mean
};

struct Result {
  int n = 0;
  double converge_s = 0;
  Rates quiet, lossy, fp;
  std::vector<double> suspect_s, dead_all_s, rejoin_s, change_s;
  int kills_unfinished = 0, changes_unfinished = 0;
  double fp_host_minutes = 0;
  int fp_dead = 0;
  uint64_t refutations = 0;
  uint64_t slow_raised = 0;    // suspicions the slow host raised
  uint64_t others_raised = 0;  // and the others
  int slow_lhm_max = 0;
  uint64_t unaddressed = 0;  // replies to a host the sender did not know yet (not sent)
  double wall_s = 0;
  double max_rss_gb = 0;
  bool preloaded = false;
};

class Bench {
 public:
  Bench(const Options& o, int n, int kills, int changes)
      : o_(o),
        n_(n),
        kills_(kills),
        changes_(changes),
        sim_(o.seed * 1000 + n, o.config),
        rng_(o.seed) {
    sim_.on_event = [this](const std::string& host, const MembershipEvent& e) { OnEvent(host, e); };
    sim_.SetClockSkew(o.clock_skew_us);
  }

  Result Run() {
    auto wall0 = std::chrono::steady_clock::now();
    Result r;
    r.n = n_;
    Build(r);
    r.quiet = MeasureRates(o_.rate_window_s);
    sim_.net().SetFaults(SimLinkFaults{o_.loss, 0, 200, 800});
    r.lossy = MeasureRates(o_.rate_window_s);
    sim_.net().SetFaults(SimLinkFaults{o_.event_loss, 0, 200, 800});
    Kills(r);
    Changes(r);
    FalsePositives(r);
    r.unaddressed = sim_.unaddressed();
    r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    r.max_rss_gb = MaxRssGb();
    return r;
  }

 private:
  std::string Meta(int version) {
    std::string m = fmt::format("headroom v{} ", version);
    m.resize(static_cast<size_t>(o_.meta_bytes), '.');
    return m;
  }

  void Build(Result& r) {
    if (n_ >= o_.preload_from) {
      std::vector<std::string> names, zones, metas;
      for (int i = 0; i < n_; ++i) {
        names.push_back(Name(i));
        zones.push_back(fmt::format("z{}", i % 3));
        metas.push_back(Meta(0));
      }
      sim_.AddKnownHosts(names, zones, metas);
      r.preloaded = true;
      sim_.RunUntil(sim_.now() + 40 * kSec);  // as below: the first probes and syncs settle
      return;
    }
    int64_t spread = std::min<int64_t>(10 * kSec, int64_t(n_) * 10'000);
    for (int i = 0; i < n_; ++i) {
      std::vector<std::string> seeds;
      for (int s = 0; s < std::min(i, 3); ++s) seeds.push_back(Name(s));
      sim_.AddHost(Name(i), fmt::format("z{}", i % 3), spread * i / n_, seeds, 0, Meta(0));
    }
    int64_t t = 0;
    while (true) {
      t += kSec / 2;
      sim_.RunUntil(t);
      if (t < spread) continue;
      bool all = true;
      for (int i = 0; i < n_ && all; ++i) all = sim_.host(Name(i))->LiveCount() == n_;
      if (all) break;
      if (t > 600 * kSec) {
        fmt::print(stderr, "N={}: not converged after 600 s\n", n_);
        break;
      }
    }
    r.converge_s = double(t) / kSec;
    sim_.RunUntil(sim_.now() + 40 * kSec);  // let the join gossip and first syncs settle
  }

  Rates MeasureRates(double seconds, const std::function<void()>& each_second = {}) {
    std::map<std::string, uint64_t> received;
    auto snapshot = [&] {
      std::map<std::string, std::pair<uint64_t, uint64_t>> s;
      for (const auto& h : sim_.RunningHosts()) {
        auto t = sim_.host(h)->stats().TotalSent();
        s[h] = {t.msgs, t.bytes};
        received[h] = sim_.host(h)->stats().TotalReceived().msgs;
      }
      return s;
    };
    auto a = snapshot();
    const auto received0 = received;
    int64_t end = sim_.now() + int64_t(seconds * kSec);
    while (sim_.now() < end) {
      sim_.RunUntil(std::min(end, sim_.now() + kSec));
      if (each_second) each_second();
    }
    auto b = snapshot();
    Rates r;
    int hosts = 0;
    for (const auto& [h, v] : b) {
      auto it = a.find(h);
      if (it == a.end()) continue;
      double m = double(v.first - it->second.first) / seconds;
      double by = double(v.second - it->second.second) / seconds;
      r.msgs += m;
      r.bytes += by;
      if (auto r0 = received0.find(h); r0 != received0.end()) {
        r.io_msgs += m + double(received[h] - r0->second) / seconds;
      }
      if (h == slow_) {
        r.slow_msgs = m;
        r.slow_bytes = by;
      } else {
        if (m > r.max_msgs) busiest_ = h;
        r.max_msgs = std::max(r.max_msgs, m);
        r.max_bytes = std::max(r.max_bytes, by);
      }
      ++hosts;
    }
    r.msgs /= std::max(hosts, 1);
    r.io_msgs /= std::max(hosts, 1);
    r.bytes /= std::max(hosts, 1);
    return r;
  }

  void OnEvent(const std::string& host, const MembershipEvent& e) {
    if (host == e.name) return;
    if (!victim_.empty() && e.name == victim_) {
      if (e.state == MemberState::kSuspect && first_suspect_ < 0) first_suspect_ = e.at_us;
      if (e.state == MemberState::kDead || e.state == MemberState::kLeft) dead_at_.insert(host);
      if (rejoining_ && (e.kind == MembershipEventKind::kJoined)) rejoined_.insert(host);
    }
    if (!changer_.empty() && e.name == changer_) {
      const auto* m = sim_.host(host)->Find(changer_);
      if (m && m->meta_version >= change_version_) changed_.insert(host);
    }
    if (counting_fp_ && sim_.IsRunning(e.name) && e.name != victim_) {
      if (e.state == MemberState::kDead || e.state == MemberState::kLeft) {
        ++fp_dead_;
        fmt::print(stderr, "N={} t={:.3f}s: {} declared live {} {}\n", n_, double(e.at_us) / kSec,
                   host, e.name, augur::mesh::MemberStateName(e.state));
      }
    }
  }

  std::string RandomHost(bool avoid_seeds) {
    auto hosts = sim_.RunningHosts();
    while (true) {
      const std::string& h =
          hosts[std::uniform_int_distribution<size_t>(0, hosts.size() - 1)(rng_)];
      if (avoid_seeds && h <= Name(2)) continue;
      if (h == slow_) continue;
      return h;
    }
  }

  void Kills(Result& r) {
    for (int k = 0; k < kills_; ++k) {
      victim_ = RandomHost(true);
      uint64_t old_inc = sim_.host(victim_)->incarnation();
      (void)old_inc;
      first_suspect_ = -1;
      dead_at_.clear();
      int64_t t0 = sim_.now();
      sim_.Kill(victim_);
      size_t others = sim_.RunningHosts().size();
      int64_t dead_all = -1;
      while (sim_.now() - t0 < 60 * kSec) {
        sim_.RunUntil(sim_.now() + 10'000);
        if (dead_at_.size() >= others) {
          dead_all = sim_.now();
          break;
        }
      }
      if (first_suspect_ >= 0) r.suspect_s.push_back(double(first_suspect_ - t0) / kSec);
      if (dead_all >= 0) {
        r.dead_all_s.push_back(double(dead_all - t0) / kSec);
      } else {
        ++r.kills_unfinished;
      }
      // Back with incarnation 0: it must refute the death the mesh remembers.
      sim_.RunUntil(sim_.now() + kSec);
      rejoined_.clear();
      rejoining_ = true;
      int64_t t1 = sim_.now();
      sim_.Restart(victim_, 0, {Name(0), Name(1), Name(2)});
      while (sim_.now() - t1 < 60 * kSec && rejoined_.size() < others) {
        sim_.RunUntil(sim_.now() + 10'000);
      }
      if (rejoined_.size() >= others) r.rejoin_s.push_back(double(sim_.now() - t1) / kSec);
      rejoining_ = false;
      victim_.clear();
      sim_.RunUntil(sim_.now() + 3 * kSec);
    }
  }

  void Changes(Result& r) {
    for (int c = 0; c < changes_; ++c) {
      changer_ = RandomHost(false);
      change_version_ = sim_.host(changer_)->Find(changer_)->meta_version + 1;
      changed_.clear();
      int64_t t0 = sim_.now();
      (void)sim_.SetMeta(changer_, Meta(int(change_version_)));
      size_t others = sim_.RunningHosts().size() - 1;
      while (sim_.now() - t0 < 30 * kSec && changed_.size() < others) {
        sim_.RunUntil(sim_.now() + 5'000);
      }
      if (changed_.size() >= others) {
        r.change_s.push_back(double(sim_.now() - t0) / kSec);
      } else {
        ++r.changes_unfinished;
      }
      changer_.clear();
      sim_.RunUntil(sim_.now() + kSec / 2);
    }
  }

  void FalsePositives(Result& r) {
    slow_ = Name(n_ - 1);
    sim_.SetSlow(slow_, o_.slow_min_ms * 1000, o_.slow_max_ms * 1000);
    sim_.net().SetFaults(SimLinkFaults{o_.loss, 0, 200, 800});
    uint64_t ref0 = 0;
    for (const auto& h : sim_.RunningHosts()) ref0 += sim_.host(h)->stats().refutations;
    uint64_t slow_raised0 = sim_.host(slow_)->stats().suspicions_raised;
    uint64_t raised0 = 0;
    for (const auto& h : sim_.RunningHosts()) raised0 += sim_.host(h)->stats().suspicions_raised;
    counting_fp_ = true;
    double seconds = o_.fp_host_minutes * 60.0 / n_;
    // The slow host's local health is sampled every second along the way.
    Rates total = MeasureRates(seconds, [&] {
      r.slow_lhm_max = std::max(r.slow_lhm_max, sim_.host(slow_)->LocalHealth());
    });
    counting_fp_ = false;
    uint64_t ref1 = 0;
    for (const auto& h : sim_.RunningHosts()) ref1 += sim_.host(h)->stats().refutations;
    r.slow_raised = sim_.host(slow_)->stats().suspicions_raised - slow_raised0;
    uint64_t raised1 = 0;
    for (const auto& h : sim_.RunningHosts()) raised1 += sim_.host(h)->stats().suspicions_raised;
    r.others_raised = raised1 - raised0 - r.slow_raised;
    if (verbose_) {
      for (const auto& h : {busiest_, slow_}) {
        const auto& st = sim_.host(h)->stats();
        fmt::print(stderr, "N={} {}{}:", n_, h, h == slow_ ? " (slow)" : " (busiest)");
        for (size_t k = 0; k < st.sent.size(); ++k) {
          fmt::print(stderr, " {} {}/{}B",
                     augur::mesh::MessageKindName(augur::mesh::MessageKind(k)), st.sent[k].msgs,
                     st.sent[k].bytes);
        }
        fmt::print(stderr, " relayed {} raised {} lhm {}\n", st.relayed_pings, st.suspicions_raised,
                   sim_.host(h)->LocalHealth());
      }
    }
    r.fp = total;
    r.fp_host_minutes = seconds * n_ / 60.0;
    r.fp_dead = fp_dead_;
    r.refutations = ref1 - ref0;
  }

  const Options& o_;
  int n_, kills_, changes_;
  MembershipSim sim_;
  std::mt19937_64 rng_;
  std::string victim_, changer_, slow_;
  int64_t first_suspect_ = -1;
  std::set<std::string> dead_at_, rejoined_, changed_;
  bool rejoining_ = false, counting_fp_ = false;
  uint64_t change_version_ = 0;
  int fp_dead_ = 0;
  std::string busiest_;

 public:
  bool verbose_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"SWIM/Lifeguard membership at N hosts in virtual time"};
  app.add_option("--n", o.ns, "cluster sizes");
  app.add_option("--kills", o.kills, "kill -9 experiments, one count for all N or one per N");
  app.add_option("--changes", o.changes, "metadata changes, one count for all N or one per N");
  app.add_option("--fp-host-minutes", o.fp_host_minutes, "host-minutes at loss with a slow host");
  app.add_option("--loss", o.loss, "packet loss for the rates and false-positive runs");
  app.add_option("--event-loss", o.event_loss, "packet loss during kills and changes");
  app.add_option("--slow-min-ms", o.slow_min_ms);
  app.add_option("--slow-max-ms", o.slow_max_ms);
  app.add_option("--meta-bytes", o.meta_bytes, "each host's metadata size");
  app.add_option("--seed", o.seed);
  bool verbose = false;
  app.add_flag("--verbose", verbose, "per-kind counts of the busiest and the slow host");
  app.add_option("--rate-window-s", o.rate_window_s);
  app.add_option("--preload-from", o.preload_from,
                 "from this N up, hosts start knowing the whole mesh (no join burst)");
  app.add_option("--probe-interval-ms", o.config.probe_interval_us)->transform([](std::string s) {
    return std::to_string(std::stoll(s) * 1000);
  });
  app.add_option("--probe-timeout-ms", o.config.probe_timeout_us)->transform([](std::string s) {
    return std::to_string(std::stoll(s) * 1000);
  });
  app.add_option("--indirect-timeout-ms", o.config.indirect_timeout_us)
      ->transform([](std::string s) { return std::to_string(std::stoll(s) * 1000); });
  app.add_option("--gossip-interval-ms", o.config.gossip_interval_us)->transform([](std::string s) {
    return std::to_string(std::stoll(s) * 1000);
  });
  app.add_option("--gossip-fanout", o.config.gossip_fanout);
  app.add_option("--indirect-probes", o.config.indirect_probes);
  app.add_option("--suspicion-mult", o.config.suspicion_mult);
  app.add_option("--suspicion-max-mult", o.config.suspicion_max_mult);
  app.add_option("--retransmit-mult", o.config.retransmit_mult);
  app.add_option("--suspicion-unit-ms", o.config.suspicion_unit_us)->transform([](std::string s) {
    return std::to_string(std::stoll(s) * 1000);
  });
  app.add_option("--refute-fanout", o.config.refute_fanout);
  app.add_option("--sync-interval-s", o.config.sync_interval_us)->transform([](std::string s) {
    return std::to_string(std::stoll(s) * 1'000'000);
  });
  bool no_defer = false;
  app.add_flag("--no-defer", no_defer, "declare a suspect dead on time even while heard from");
  bool random_probes = false;
  app.add_flag("--random-probes", random_probes, "SWIM's randomized round-robin, not staggered");
  int64_t clock_skew_ms = 2;
  app.add_option("--clock-skew-ms", clock_skew_ms, "each host's shared clock off by up to this");
  app.add_option("--max-local-health", o.config.max_local_health);
  CLI11_PARSE(app, argc, argv);
  o.config.staggered_probes = !random_probes;
  o.config.defer_verdict_while_heard = !no_defer;
  o.clock_skew_us = clock_skew_ms * 1000;
  if (auto s = o.config.Validate(); !s.ok()) {
    fmt::print(stderr, "{}\n", s.ToString());
    return 2;
  }

  auto per_n = [&](const std::vector<int>& v, size_t i) { return v.size() == 1 ? v[0] : v.at(i); };
  if ((o.kills.size() != 1 && o.kills.size() != o.ns.size()) ||
      (o.changes.size() != 1 && o.changes.size() != o.ns.size())) {
    fmt::print(stderr, "--kills and --changes take one count, or one per --n\n");
    return 2;
  }
  std::vector<Result> results;
  std::vector<std::string> not_run;
  for (size_t i = 0; i < o.ns.size(); ++i) {
    // Every host holds every member: N^2 records of about kBytesPerRecord. A size that would
    // not fit in the memory available now is not started (the machine is shared).
    const double need_gb = double(o.ns[i]) * double(o.ns[i]) * kBytesPerRecord / 1e9;
    if (const double avail_gb = AvailableGb(); avail_gb > 0 && need_gb > 0.8 * avail_gb) {
      not_run.push_back(fmt::format(
          "N = {}: not run: {} hosts each holding {} member records need ~{:.0f} GB "
          "({:.0f} bytes a record, measured at N = 3,000); {:.1f} GB available",
          o.ns[i], o.ns[i], o.ns[i], need_gb, kBytesPerRecord, avail_gb));
      fmt::print(stderr, "{}\n", not_run.back());
      continue;
    }
    Bench b(o, o.ns[i], per_n(o.kills, i), per_n(o.changes, i));
    b.verbose_ = verbose;
    results.push_back(b.Run());
    fmt::print(stderr, "N={} done in {:.0f} s, max RSS {:.2f} GB\n", o.ns[i],
               results.back().wall_s, results.back().max_rss_gb);
  }
  auto pair = [](const std::vector<double>& v) {
    return fmt::format("{:.2f} / {:.2f}", Pct(v, 50), Pct(v, 99));
  };
  fmt::print(
      "| N | kills | suspected (any host) p50 / p99 s | dead everywhere p50 / p99 s | "
      "restart alive everywhere p50 / p99 s | changes | change at all hosts p50 / p99 s | "
      "join converged s |\n|---|---|---|---|---|---|---|---|\n");
  for (const Result& r : results) {
    fmt::print("| {} | {}{} | {} | {} | {} | {}{} | {} | {} |\n", r.n, r.dead_all_s.size(),
               r.kills_unfinished ? fmt::format(" ({} unfinished)", r.kills_unfinished) : "",
               pair(r.suspect_s), pair(r.dead_all_s), pair(r.rejoin_s), r.change_s.size(),
               r.changes_unfinished ? fmt::format(" ({} unfinished)", r.changes_unfinished) : "",
               pair(r.change_s),
               r.preloaded ? std::string("preloaded") : fmt::format("{:.1f}", r.converge_s));
  }
  fmt::print(
      "\n| N | msgs sent/host/s quiet / 1 % / 1 % + slow | msgs sent+received/host/s quiet / 1 % "
      "/ 1 % + slow | bytes sent/host/s quiet / 1 % / 1 % + slow | "
      "busiest other host msgs/s, B/s | slow host msgs/s, B/s | host-minutes | live hosts "
      "declared dead | false suspicions by slow / others | slow LHM max | unaddressed | wall s "
      "| max RSS GB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const Result& r : results) {
    fmt::print(
        "| {} | {:.1f} / {:.1f} / {:.1f} | {:.1f} / {:.1f} / {:.1f} | {:.0f} / {:.0f} / {:.0f} | "
        "{:.1f}, {:.0f} | {:.1f}, {:.0f} | {:.0f} | {} | {} / {} | {} | {} | {:.0f} | {:.2f} |\n",
        r.n, r.quiet.msgs, r.lossy.msgs, r.fp.msgs, r.quiet.io_msgs, r.lossy.io_msgs,
        r.fp.io_msgs, r.quiet.bytes, r.lossy.bytes, r.fp.bytes,
        r.fp.max_msgs, r.fp.max_bytes, r.fp.slow_msgs, r.fp.slow_bytes, r.fp_host_minutes,
        r.fp_dead, r.slow_raised, r.others_raised, r.slow_lhm_max, r.unaddressed, r.wall_s,
        r.max_rss_gb);
  }
  for (const std::string& line : not_run) fmt::print("\n{}\n", line);
  return 0;
}
