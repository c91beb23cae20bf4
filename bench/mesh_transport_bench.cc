// The mesh transport on loopback (src/mesh/transport.h): round-trip latency and one-way
// messages per second between two transports in one process, with CURVE (as augurd runs it:
// encryption, ZAP, every envelope check) and without (TransportOptions::curve = false: plain
// ZMTP, same envelope checks), so the difference is what CURVE costs.
//
//   round trip  A sends to B, B receives and answers, A receives; one thread drives both
//   after idle  the same, each round trip after `idle_ms` of nothing (every thread asleep,
//               as between a mesh's placements): what waking the threads adds
//   throughput  a thread sends as fast as Send takes messages (retrying when the link's queue
//               is full), another receives; messages/s counted at the receiver
//
//   envelope    encode, decode with every check and the replay window, no sockets
//
// Usage: mesh_transport_bench [round_trips] [messages] [repetitions] [idle_ms]
//        (default 5000 200000 3 5; round trips after idle: round_trips / 10).
// Prints the median of the repetitions and each repetition's figure.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "mesh/envelope.h"
#include "mesh/keys.h"
#include "mesh/replay_window.h"
#include "mesh/transport.h"

namespace {

using augur::mesh::Channel;
using augur::mesh::Transport;
using augur::mesh::TransportOptions;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "mesh_transport_bench: %s\n", what.c_str());
  std::exit(1);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1))];
}

// Two hosts' key files and authorized_keys (each lists the other) under `dir`.
std::pair<TransportOptions, TransportOptions> MakeHosts(const std::string& dir, bool curve) {
  TransportOptions o[2];
  std::string lines[2];
  const char* names[2] = {"bench-a", "bench-b"};
  for (int i = 0; i < 2; ++i) {
    const std::string hdir = dir + "/" + names[i];
    std::filesystem::remove_all(hdir);
    auto k = augur::mesh::WriteKeyFiles({hdir, names[i], false});
    if (!k) Die(k.error().ToString());
    lines[i] = k->public_line;
    o[i].host_name = names[i];
    o[i].listen = "tcp://127.0.0.1:0";
    o[i].secret_key_file = k->secret_path;
    o[i].authorized_keys_file = hdir + "/authorized_keys";
    o[i].curve = curve;
  }
  for (int i = 0; i < 2; ++i) std::ofstream(o[i].authorized_keys_file) << lines[1 - i] << "\n";
  return {o[0], o[1]};
}

std::unique_ptr<Transport> StartOrDie(const TransportOptions& o) {
  auto t = Transport::Start(o);
  if (!t) Die(t.error().ToString());
  return std::move(*t);
}

// Sends until the link is up and the message arrives.
void Link(Transport& from, const std::string& to_name, Transport& to) {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (from.Send(to_name, to.endpoint(), Channel::kMembership, "hello").ok()) {
      if (to.Receive(std::chrono::seconds(10))) return;
      Die("a linked message did not arrive");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Die("no link to " + to_name);
}

struct RoundTrip {
  double p50_us, p99_us;
};

RoundTrip RunRoundTrips(Transport& a, Transport& b, int n, const std::string& payload,
                        std::chrono::milliseconds idle = std::chrono::milliseconds(0)) {
  std::vector<double> us;
  us.reserve(n);
  for (int i = 0; i < n; ++i) {
    if (idle.count() > 0) std::this_thread::sleep_for(idle);
    const auto t0 = Clock::now();
    if (!a.Send("bench-b", b.endpoint(), Channel::kMembership, payload).ok()) Die("send a->b");
    auto at_b = b.Receive(std::chrono::seconds(10));
    if (!at_b) Die("round trip: nothing at b");
    if (!b.Send("bench-a", a.endpoint(), Channel::kMembership, at_b->payload).ok()) {
      Die("send b->a");
    }
    if (!a.Receive(std::chrono::seconds(10))) Die("round trip: nothing back at a");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return {Quantile(us, 0.5), Quantile(us, 0.99)};
}

// One-way: messages per second received, and how many Sends the full queue refused.
std::pair<double, uint64_t> RunThroughput(Transport& a, Transport& b, int n,
                                          const std::string& payload) {
  uint64_t refused = 0;
  const auto t0 = Clock::now();
  std::thread sender([&] {
    for (int i = 0; i < n; ++i) {
      while (!a.Send("bench-b", b.endpoint(), Channel::kData, payload).ok()) {
        ++refused;
        std::this_thread::yield();
      }
    }
  });
  int got = 0;
  while (got < n) {
    if (!b.Receive(std::chrono::seconds(10))) Die("throughput: receiver starved");
    ++got;
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  sender.join();
  return {n / s, refused};
}

// The transport's own CPU per message, without sockets: encode, decode with every check, and
// the replay window, in ns per message.
double EnvelopeNs(size_t size, int n) {
  augur::mesh::Envelope e;
  e.sender = "bench-a";
  e.boot_id = 1;
  e.channel = Channel::kMembership;
  e.payload.assign(size, 'p');
  augur::mesh::ReplayWindow window;
  size_t sink = 0;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    e.seq = static_cast<uint64_t>(i) + 1;
    auto d = augur::mesh::DecodeEnvelope(augur::mesh::EncodeEnvelope(e), 64 * 1024);
    if (!d || window.Check(d->boot_id, d->seq) != augur::mesh::ReplayWindow::Verdict::kAccept) {
      Die("envelope round trip failed");
    }
    sink += d->payload.size();
  }
  const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;
  if (sink != size * static_cast<size_t>(n)) Die("envelope payload lost");
  return ns;
}

}  // namespace

int main(int argc, char** argv) {
  const int round_trips = argc > 1 ? std::atoi(argv[1]) : 5000;
  const int messages = argc > 2 ? std::atoi(argv[2]) : 200000;
  const int reps = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::chrono::milliseconds idle(argc > 4 ? std::atoi(argv[4]) : 5);
  spdlog::set_level(spdlog::level::err);
  char tmpl[] = "/tmp/augur-mesh-bench.XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp");
  const std::string dir = tmpl;

  for (size_t size : {100, 1000}) {
    std::vector<double> ns;
    for (int r = 0; r < reps; ++r) ns.push_back(EnvelopeNs(size, 200000));
    std::printf("envelope encode + decode + replay check, payload %4zu B: %.0f ns (median of %d)\n",
                size, Median(ns), reps);
  }
  for (bool curve : {true, false}) {
    for (size_t size : {100, 1000}) {
      const std::string payload(size, 'p');
      std::vector<double> p50, p99, idle_p50, idle_p99, rate;
      std::vector<uint64_t> refused;
      for (int r = 0; r < reps; ++r) {
        auto [oa, ob] = MakeHosts(dir, curve);
        auto a = StartOrDie(oa);
        auto b = StartOrDie(ob);
        Link(*a, "bench-b", *b);
        Link(*b, "bench-a", *a);
        RunRoundTrips(*a, *b, std::max(1, round_trips / 10), payload);  // warm-up
        const RoundTrip rt = RunRoundTrips(*a, *b, round_trips, payload);
        p50.push_back(rt.p50_us);
        p99.push_back(rt.p99_us);
        const RoundTrip after_idle =
            RunRoundTrips(*a, *b, std::max(1, round_trips / 10), payload, idle);
        idle_p50.push_back(after_idle.p50_us);
        idle_p99.push_back(after_idle.p99_us);
        auto [per_s, full] = RunThroughput(*a, *b, messages, payload);
        rate.push_back(per_s);
        refused.push_back(full);
      }
      std::printf("%-9s payload %4zu B: round trip p50 %6.1f us p99 %7.1f us, after %lld ms "
                  "idle p50 %6.1f us p99 %7.1f us | %8.0f msg/s (%.1f MB/s)   [runs: ",
                  curve ? "CURVE" : "plaintext", size, Median(p50), Median(p99),
                  static_cast<long long>(idle.count()), Median(idle_p50), Median(idle_p99),
                  Median(rate), Median(rate) * size / 1e6);
      for (int r = 0; r < reps; ++r) {
        std::printf("%s%.1f/%.1f us %.0f msg/s, %llu sends refused (queue full)", r ? "; " : "",
                    p50[r], p99[r], rate[r], static_cast<unsigned long long>(refused[r]));
      }
      std::printf("]\n");
    }
  }
  std::filesystem::remove_all(dir);
  return 0;
}
