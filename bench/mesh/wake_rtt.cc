// mesh-wake-rtt: the floor under a placement's round trip on a machine: the round-trip time
// of one small message between two processes over plain TCP, over ZeroMQ (DEALER to ROUTER,
// as the mesh's links) and over ZeroMQ with CURVE, each back to back and after the sender
// slept (`--idle-us`, as the mesh's threads sleep between placements). Run the server in one
// network namespace and the client in another (bench/mesh/wake_rtt.sh does, on the bed of
// bench/mesh/netns.sh) to cross the veth and bridge the agents cross.
//
// Every hop of a message from one thread to another may find the other's CPU idle; on a
// virtual machine waking an idle vCPU is a trip through the hypervisor. TCP has two such
// hops per round trip (the server's thread, the client's), ZeroMQ six (each side's I/O
// thread both ways, then the application threads), so the gap between back to back and
// after idle is what the machine charges per wake-up (docs/MESH.md, "The hops").
//
// Usage: mesh-wake-rtt server --mode tcp|zmq|curve --bind ADDR:PORT
//        mesh-wake-rtt client --mode tcp|zmq|curve --connect ADDR:PORT [--count N]
//                             [--idle-us U]
// The client prints one line: mode, idle, count, and the RTT's p50 / p90 / p99 in us.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <zmq.h>

namespace {

constexpr size_t kBytes = 100;  // about a placement message
// A fixed test key pair for the CURVE server (Z85; the libzmq test suite's): both ends of
// the benchmark know it, nothing else does.
constexpr const char* kServerSecret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "mesh-wake-rtt: %s\n", what.c_str());
  std::exit(1);
}

sockaddr_in Parse(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  if (colon == std::string::npos) Die("address '" + addr + "' is not ADDR:PORT");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(std::stoi(addr.substr(colon + 1))));
  if (inet_pton(AF_INET, addr.substr(0, colon).c_str(), &a.sin_addr) != 1) {
    Die("address '" + addr + "' is not IPv4");
  }
  return a;
}

bool ReadAll(int fd, char* buf, size_t n) {
  for (size_t got = 0; got < n;) {
    const ssize_t r = ::recv(fd, buf + got, n - got, 0);
    if (r <= 0) return false;
    got += size_t(r);
  }
  return true;
}

void TcpServer(const std::string& bind) {
  const sockaddr_in a = Parse(bind);
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(s, 4) != 0) {
    Die("cannot listen on " + bind);
  }
  for (;;) {
    const int c = ::accept(s, nullptr, nullptr);
    if (c < 0) continue;
    ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[kBytes];
    while (ReadAll(c, buf, kBytes) && ::send(c, buf, kBytes, 0) == ssize_t(kBytes)) {
    }
    ::close(c);
  }
}

void ZmqServer(const std::string& bind, bool curve) {
  void* ctx = zmq_ctx_new();
  void* r = zmq_socket(ctx, ZMQ_ROUTER);
  if (curve) {
    const int one = 1;
    zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, kServerSecret, 40);
  }
  if (zmq_bind(r, ("tcp://" + bind).c_str()) != 0) Die("cannot bind tcp://" + bind);
  for (;;) {
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    zmq_msg_init(&body);
    if (zmq_msg_recv(&id, r, 0) < 0 || zmq_msg_recv(&body, r, 0) < 0) continue;
    zmq_msg_send(&id, r, ZMQ_SNDMORE);
    zmq_msg_send(&body, r, 0);
  }
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Round trips between two processes: TCP, ZeroMQ, ZeroMQ with CURVE"};
  std::string mode = "curve", bind, connect;
  int count = 400, idle_us = 5000;
  auto* server = app.add_subcommand("server", "answer every message");
  server->add_option("--mode", mode, "tcp, zmq or curve")->required();
  server->add_option("--bind", bind, "ADDR:PORT")->required();
  auto* client = app.add_subcommand("client", "send, wait for the answer, sleep, again");
  client->add_option("--mode", mode, "tcp, zmq or curve")->required();
  client->add_option("--connect", connect, "ADDR:PORT")->required();
  client->add_option("--count", count, "round trips measured")->capture_default_str();
  client->add_option("--idle-us", idle_us, "sleep before each round trip (0: back to back)")
      ->capture_default_str();
  app.require_subcommand(1);
  CLI11_PARSE(app, argc, argv);
  if (mode != "tcp" && mode != "zmq" && mode != "curve") Die("--mode is tcp, zmq or curve");
  if (*server) {
    if (mode == "tcp") TcpServer(bind);
    ZmqServer(bind, mode == "curve");
  }

  using Clock = std::chrono::steady_clock;
  std::vector<double> rtt_us;
  char buf[kBytes] = {};
  const int warmup = 20;  // the connection and CURVE handshake, and the first wake-ups
  auto measure = [&](auto round_trip) {
    for (int i = 0; i < warmup + count; ++i) {
      if (idle_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(idle_us));
      const auto t0 = Clock::now();
      round_trip();
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
      if (i >= warmup) rtt_us.push_back(us);
    }
  };
  if (mode == "tcp") {
    const sockaddr_in a = Parse(connect);
    const int s = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    if (::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      Die("cannot connect to " + connect);
    }
    ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    measure([&] {
      if (::send(s, buf, kBytes, 0) != ssize_t(kBytes) || !ReadAll(s, buf, kBytes)) {
        Die("the server went away");
      }
    });
  } else {
    void* ctx = zmq_ctx_new();
    void* d = zmq_socket(ctx, ZMQ_DEALER);
    if (mode == "curve") {
      char server_public[41], pub[41], sec[41];
      zmq_curve_public(server_public, kServerSecret);
      zmq_curve_keypair(pub, sec);
      zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, server_public, 40);
      zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 40);
      zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, sec, 40);
    }
    if (zmq_connect(d, ("tcp://" + connect).c_str()) != 0) Die("cannot connect to " + connect);
    measure([&] {
      zmq_send(d, buf, kBytes, 0);
      if (zmq_recv(d, buf, kBytes, 0) < 0) Die("receive failed");
    });
  }
  fmt::print("{} idle {} us, {} round trips: p50 {:.1f} us, p90 {:.1f}, p99 {:.1f}\n", mode,
             idle_us, count, Quantile(rtt_us, 0.5), Quantile(rtt_us, 0.9),
             Quantile(rtt_us, 0.99));
  return 0;
}
