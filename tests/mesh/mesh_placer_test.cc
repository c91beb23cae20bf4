// Shards of one host's workflow run on another (docs/MESH.md, "Running shards on other
// hosts"): real executors in one process (testing/mesh_hosts.h), joined by a hub that stands
// in for the mesh node (transport and membership) and can cut a host off, lose, duplicate and
// corrupt messages. Skipped, with the reason, where cgroups cannot be made.
#include "mesh/mesh_placer.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/hash.h"
#include "mesh/remote_run_codec.h"
#include "mesh/transfer.h"
#include "testing/mesh_hosts.h"
#include "workflow/executor.h"

namespace augur::mesh {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using workflow::Executor;
using workflow::Resources;

// Hosts in one process: what each sends goes to the other's executor, unless either is cut
// off. Membership's view: every host alive unless cut, with a fixed headroom.
class Hub {
 public:
  void Add(const std::string& name, const Resources& room) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    HeadroomSummary h;
    h.horizons = {{0, room, room}, {600, room, room}};
    h.backends = {{"process", {}}};
    hosts_[name].headroom = h;
  }
  void Attach(const std::string& name, Executor* e) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    hosts_[name].executor = e;
    hosts_[name].desk = nullptr;  // AttachDesk gives the new executor's placer's
  }
  // Placement messages to `name` are first shown to its desk, as augurd's mesh thread does
  // (mesh/bid_desk.h): an answer it makes goes back to the sender at once.
  void AttachDesk(const std::string& name, BidDesk* desk) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    hosts_[name].desk = desk;
  }
  void Cut(const std::string& name) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    cut_.insert(name);
  }
  // From now on each message is dropped with probability `drop` and else delivered twice
  // with probability `dup` (seeded).
  void SetLoss(double drop, double dup, uint64_t seed) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    drop_ = drop;
    dup_ = dup;
    rng_.seed(seed);
  }
  // From now on, besides, every n-th transfer chunk is dropped (0: none).
  void DropEveryChunk(uint64_t n) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    chunk_every_ = n;
  }
  // The next transfer chunk with data has one byte changed and its chunk checksum made
  // again to match: only the whole-blob checksum can tell.
  void CorruptNextChunk() {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    corrupt_ = true;
  }
  // Delivers (under the lock, so that a host is never delivered to after Detach).
  Status Deliver(const std::string& from, const std::string& to, Channel ch, std::string payload) {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (cut_.contains(from) || cut_.contains(to)) return Status::OK();  // dropped on the way
    auto it = hosts_.find(to);
    if (it == hosts_.end()) return Status::NotFound("no host " + to);
    if (ch == Channel::kData && corrupt_) {
      auto m = DecodeTransfer(payload, kDefaultMaxPayloadBytes);
      if (m && m->has_chunk() && !m->chunk().data().empty()) {
        wire::Chunk* c = m->mutable_chunk();
        (*c->mutable_data())[0] ^= 0x20;
        c->set_crc32c(ChunkChecksum(c->transfer_id(), c->offset(), c->total_size(), c->data()));
        payload = *EncodeTransfer(*m, kDefaultMaxPayloadBytes);
        corrupt_ = false;
      }
    }
    if (ch == Channel::kData && chunk_every_ > 0) {
      auto m = DecodeTransfer(payload, kDefaultMaxPayloadBytes);
      if (m && m->has_chunk() && ++chunks_ % chunk_every_ == 0) {
        ++dropped_;
        return Status::OK();
      }
    }
    std::uniform_real_distribution<double> u(0, 1);
    if (drop_ > 0 && u(rng_) < drop_) {
      ++dropped_;
      return Status::OK();
    }
    if (dup_ > 0 && u(rng_) < dup_ && it->second.executor != nullptr) {
      ++duplicated_;
      it->second.executor->OnMeshMessage(from, uint32_t(ch), payload);
    }
    if (ch == Channel::kRun) {
      auto m = DecodeRemoteRun(payload);
      if (m && m->has_result()) results_.push_back({from, to, payload});
    }
    if (it->second.executor != nullptr) {
      if (ch == Channel::kPlacement && it->second.desk != nullptr) {
        auto back = hosts_.find(from);
        std::optional<std::string> answer = it->second.desk->Answer(from, payload, 0);
        if (answer && back != hosts_.end() && back->second.executor != nullptr &&
            !(drop_ > 0 && u(rng_) < drop_)) {
          back->second.executor->OnMeshMessage(to, uint32_t(ch), std::move(*answer));
        }
      }
      it->second.executor->OnMeshMessage(from, uint32_t(ch), std::move(payload));
    }
    return Status::OK();
  }
  std::vector<PlacementPeer> Peers(const std::string& /*self*/) const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::vector<PlacementPeer> out;
    for (const auto& [name, h] : hosts_) {
      PlacementPeer p;
      p.name = name;
      p.alive = !cut_.contains(name);
      p.headroom_version = 1;
      p.headroom = h.headroom;
      out.push_back(std::move(p));
    }
    return out;
  }
  void DetachAll() {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    for (auto& [name, h] : hosts_) {
      h.executor = nullptr;
      h.desk = nullptr;
    }
  }
  struct Sent {
    std::string from, to, payload;
  };
  std::vector<Sent> results() const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return results_;
  }
  std::pair<uint64_t, uint64_t> dropped_and_duplicated() const {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return {dropped_, duplicated_};
  }

 private:
  struct Host {
    Executor* executor = nullptr;
    BidDesk* desk = nullptr;
    HeadroomSummary headroom;
  };
  mutable std::recursive_mutex mu_;  // a receiver may answer at once (Placer::OnReceipt)
  std::map<std::string, Host> hosts_;
  std::set<std::string> cut_;
  std::vector<Sent> results_;
  double drop_ = 0, dup_ = 0;
  std::mt19937_64 rng_{1};
  uint64_t dropped_ = 0, duplicated_ = 0;
  uint64_t chunk_every_ = 0, chunks_ = 0;
  bool corrupt_ = false;
};

class MeshPlacerTest : public testing::MeshHostsTest<Hub> {
 protected:
  MeshPlacerTest() : MeshHostsTest("augur-mesh-placer-test") {}

  // A host with `capacity` for shards, showing `room` to the others.
  Host* AddHost(const std::string& name, Resources capacity, Resources room,
                int64_t lease_ttl_ns = 10'000'000'000) {
    hub_.Add(name, room);
    return StartExecutor(name, capacity, lease_ttl_ns, 7);
  }

  // Starts (or restarts, on its state) host `name`'s placer and executor and attaches it.
  Host* StartExecutor(const std::string& name, Resources capacity, int64_t lease_ttl_ns,
                      uint64_t seed) {
    Host* h = StartHost(name, capacity, [&](Host& h, workflow::ExecutorOptions& o) {
      MeshPlacerOptions po;
      po.work_dir = h.dir + "/remote";
      po.negotiator.lease_ttl_ns = lease_ttl_ns;
      po.negotiator.seed = seed;
      po.transfer.max_blob_bytes = max_transfer_;
      po.max_kept_bytes = max_kept_;
      h.placer = std::make_shared<MeshPlacer>(h.link.get(), po);
      o.placer = h.placer;
    });
    if (h != nullptr) hub_.AttachDesk(name, &h->placer->desk());
    return h;
  }

  // Waits (at most 5 s) until the mesh counter `key` of `e` is `value`.
  static void WaitStat(Executor& e, const std::string& key, int value) {
    for (int i = 0; i < 500 && Stats(e)[key] != value; ++i) {
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  // The workflow's state once it is no longer running (or "running" after 20 s).
  std::string WaitDone(Executor& e, const std::string& id) {
    std::string state;
    WaitFor([&] { return (state = StatusOf(e, id).value("state", "running")) != "running"; },
            20s);
    return state;
  }

  static nlohmann::json Stats(Executor& e) { return nlohmann::json::parse(e.MeshStatsJson()); }
  static nlohmann::json History(Executor& e, const std::string& id) {
    auto h = e.HistoryJson(id, 100);
    EXPECT_TRUE(h) << h.error().ToString();
    return h ? nlohmann::json::parse(*h) : nlohmann::json::array();
  }

  uint64_t max_transfer_ = 1ULL << 30;  // mesh.max_transfer_bytes of the hosts added next
  uint64_t max_kept_ = 10ULL << 30;     // mesh.max_kept_bytes of the hosts started next
  Hub& hub_ = net_;
};

// Each shard wants a quarter core: A runs one at a time, B has room for four.
constexpr Resources kOneShard{0.25, 64ULL << 20};
constexpr Resources kFourShards{1.0, 256ULL << 20};

// Workflow `name`: one stage "work" of four quarter-core shards, each running `sh -c run`.
std::string FourShards(const std::string& name, const std::string& run) {
  return fmt::format(R"(workflow: {}
stages:
  - name: work
    resources: {{cpu: 0.25, memory: 48Mi}}
    shards: {{range: [0, 4], count: 4}}
    canary: false
    run: [sh, -c, "{}"]
)", name, run);
}

std::string Workflow(const std::string& sleep) {
  return FourShards("spread", "sleep " + sleep + "; echo shard {shard.index} of {shard.count}");
}

constexpr char kMerged[] = "shard 0 of 4\nshard 1 of 4\nshard 2 of 4\nshard 3 of 4\n";

TEST_F(MeshPlacerTest, AWorkflowFinishesWithShardsOnBothHostsAndADuplicateResultIsIgnored) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("0.3"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  auto out = a->executor->Output(*id, "");
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(*out, kMerged);

  nlohmann::json rows = History(*a->executor, *id);
  std::map<std::string, int> by_host;
  for (const auto& r : rows) {
    EXPECT_EQ(r["state"], "succeeded") << r.dump();
    by_host[r["host"]]++;
  }
  EXPECT_EQ(rows.size(), 4u) << rows.dump(2);
  EXPECT_GE(by_host["host-a"], 1) << rows.dump(2);
  EXPECT_GE(by_host["host-b"], 1) << rows.dump(2);
  EXPECT_EQ(by_host["host-a"] + by_host["host-b"], 4) << rows.dump(2);
  nlohmann::json sa = Stats(*a->executor), sb = Stats(*b->executor);
  EXPECT_EQ(sa["remote_results"], by_host["host-b"]) << sa.dump();
  EXPECT_EQ(sb["leased_runs"], by_host["host-b"]) << sb.dump();
  // B's leases at once were answered by its desk (as on augurd's mesh thread) and each
  // promise taken up by its bidder.
  EXPECT_GE(sb["desk"]["answered"], 1) << sb.dump();
  EXPECT_EQ(sb["desk_kept"], sb["desk"]["answered"]) << sb.dump();
  EXPECT_EQ(sb["desk_broken"], 0) << sb.dump();

  // Every lease was released: B's ledger is empty again, and so are its task directories.
  WaitFor([&] { return Stats(*b->executor)["bidder_leases"] == 0; }, 2s);
  EXPECT_EQ(Stats(*b->executor)["bidder_leases"], 0) << Stats(*b->executor).dump();
  EXPECT_EQ(Stats(*b->executor)["leased_here"], 0) << Stats(*b->executor).dump();

  // A result sent again (a resend that crossed the release, or a duplicated packet) is
  // ignored: nothing merged twice, no second history row.
  std::vector<Hub::Sent> results = hub_.results();
  ASSERT_FALSE(results.empty());
  a->executor->OnMeshMessage(results.front().from, uint32_t(Channel::kRun), results.front().payload);
  WaitFor([&] { return Stats(*a->executor)["duplicate_results"] != 0; }, 2s);
  EXPECT_EQ(Stats(*a->executor)["duplicate_results"], 1) << Stats(*a->executor).dump();
  EXPECT_EQ(History(*a->executor, *id).size(), 4u);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
}

// Starts run off the engine thread (src/workflow/start_pool.h): while the owner's own start
// and the candidate's first leased starts are held in the backend (a slow start), the owner
// still negotiates, the candidate still answers and takes the next lease, and both of its
// start workers are busy at once. Before, each host's engine thread started its tasks itself
// and every placement message waited for the start.
TEST_F(MeshPlacerTest, AStartHeldInTheBackendHoldsUpNoPlacementOnOwnerOrCandidate) {
  gate_ = true;
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("0.1"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_TRUE(a->gated->WaitInRun(1)) << "the owner's own shard did not start";
  ASSERT_TRUE(b->gated->WaitInRun(2)) << Stats(*a->executor).dump() << Stats(*b->executor).dump();
  EXPECT_EQ(a->gated->runs() + b->gated->runs(), 0);
  EXPECT_GE(Stats(*b->executor)["leased_runs"], 2) << Stats(*b->executor).dump();
  a->gated->Open();
  b->gated->Open();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(a->executor->Output(*id, "").value_or("?"), kMerged);
  std::map<std::string, int> by_host;
  for (const auto& r : History(*a->executor, *id)) by_host[r["host"]]++;
  EXPECT_GE(by_host["host-b"], 2);
  EXPECT_EQ(by_host["host-a"] + by_host["host-b"], 4);
}

TEST_F(MeshPlacerTest, ALostLeaseRerunsTheShardOnTheOwner) {
  Host* a = AddHost("host-a", kOneShard, {}, 800'000'000);
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards, 800'000'000);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("0.5"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  // B stops answering (and membership stops showing it alive) once it holds a lease.
  WaitFor([&] { return Stats(*a->executor)["awarded"] != 0; }, 4s, 2ms);
  ASSERT_GE(Stats(*a->executor)["awarded"], 1) << Stats(*a->executor).dump();
  hub_.Cut("host-b");
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
  nlohmann::json sa = Stats(*a->executor);
  EXPECT_GE(sa["lost"], 1) << sa.dump();
  EXPECT_EQ(sa["remote_results"], 0) << sa.dump();
  nlohmann::json rows = History(*a->executor, *id);
  int lost_on_b = 0, won_on_a = 0;
  for (const auto& r : rows) {
    if (r["state"] == "lost" && r["host"] == "host-b") ++lost_on_b;
    if (r["state"] == "succeeded" && r["host"] == "host-a") ++won_on_a;
  }
  EXPECT_EQ(lost_on_b, sa["lost"].get<int>()) << rows.dump(2);
  EXPECT_EQ(won_on_a, 4) << rows.dump(2);
  // B, no longer renewed, reclaimed its leases and stopped the tasks.
  WaitFor([&] { return Stats(*b->executor)["bidder_leases"] == 0; }, 3s);
  EXPECT_EQ(Stats(*b->executor)["bidder_leases"], 0) << Stats(*b->executor).dump();
}

}  // namespace
}  // namespace augur::mesh

namespace augur::mesh {
namespace {

TEST_F(MeshPlacerTest, UnderLossAndDuplicationEveryShardIsMergedOnce) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  hub_.SetLoss(0.1, 0.1, 17);
  auto id = a->executor->Submit(Workflow("0.2"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
  auto [dropped, duplicated] = hub_.dropped_and_duplicated();
  EXPECT_GT(dropped + duplicated, 0u) << "the loss was exercised";
  nlohmann::json sa = Stats(*a->executor);
  // Each shard has one winner: the results accepted from B and the local successes add up
  // to the four shards (a result resent or duplicated on the way is counted, not merged).
  int local_wins = 0;
  for (const auto& r : History(*a->executor, *id)) {
    if (r["state"] == "succeeded" && r["host"] == "host-a") ++local_wins;
  }
  EXPECT_EQ(local_wins + sa["remote_results"].get<int>(), 4) << sa.dump();
}

}  // namespace
}  // namespace augur::mesh

// Inputs and outputs larger than the inline threshold move as transfers on the data channel
// (docs/MESH.md, "Moving shard data").
namespace augur::mesh {
namespace {

// What `seq 1 n | sed s/^/I:/` prints, for shard I.
std::string Numbered(int shard, int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += fmt::format("{}:{}\n", shard, i);
  return out;
}

// Four shards printing n numbered lines each (NumberedRun), merged.
std::string FourNumbered(int n) {
  std::string out;
  for (int k = 0; k < 4; ++k) out += Numbered(k, n);
  return out;
}
std::string NumberedRun(int n) { return fmt::format("seq 1 {} | sed s/^/{{shard.index}}:/", n); }

// The merged output of stage "work" (more than `augurctl result` carries), read where it lies.
std::string MergedWork(const std::string& host_dir, const std::string& id) {
  std::ifstream f(fmt::format("{}/work/{}/work.out", host_dir, id), std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The files left in a placer's work directory for transfers (none once all is done).
size_t TransferFiles(const std::string& work_dir) {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(work_dir + "/incoming", ec)) n += e.is_regular_file();
  return n;
}

TEST_F(MeshPlacerTest, MultiMiBOutputsComeBackByTransferFromTwoHostsUnderLoss) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  Host* c = AddHost("host-c", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  hub_.SetLoss(0.03, 0.03, 23);
  hub_.DropEveryChunk(10);
  // Each shard prints about 2.1 MiB.
  constexpr int kLines = 260'000;
  auto id = a->executor->Submit(FourShards("big", NumberedRun(kLines)), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  const std::string want = FourNumbered(kLines), out = MergedWork(a->dir, *id);
  EXPECT_EQ(out.size(), want.size());
  EXPECT_EQ(Fnv1a64(out), Fnv1a64(want)) << "the merged output's checksum differs";

  auto [dropped, duplicated] = hub_.dropped_and_duplicated();
  EXPECT_GT(dropped, 0u) << "the loss was exercised";
  nlohmann::json sa = Stats(*a->executor);
  int remote = 0;
  for (const auto& r : History(*a->executor, *id)) {
    if (r["state"] == "succeeded" && r["host"] != "host-a") ++remote;
  }
  EXPECT_GE(remote, 1) << History(*a->executor, *id).dump(2);
  // Every remote output came by transfer, checked whole on arrival.
  EXPECT_GE(sa["transfer"]["received_completed"].get<int>(), remote) << sa.dump();
  EXPECT_GE(sa["transfer"]["bytes_received"].get<uint64_t>(), uint64_t(remote) * 2'000'000)
      << sa.dump();
  // (Started: a sender whose last ack was lost hears of the end as the lease's release.)
  const int sent = Stats(*b->executor)["transfer"]["sent_started"].get<int>() +
                   Stats(*c->executor)["transfer"]["sent_started"].get<int>();
  EXPECT_GE(sent, remote);
  const int resent = Stats(*b->executor)["transfer"]["chunks_resent"].get<int>() +
                     Stats(*c->executor)["transfer"]["chunks_resent"].get<int>();
  EXPECT_GT(resent, 0) << "the lost chunks (one in ten at least) were sent again";
  EXPECT_EQ(TransferFiles(a->dir + "/remote"), 0u);
  EXPECT_EQ(a->placer->transfer_stats().receiver.completed,
            sa["transfer"]["received_completed"].get<uint64_t>());
}

TEST_F(MeshPlacerTest, LargeInputsGoToTheHostByTransferAndStrayChunksAreRefused) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  // The first stage (one shard, here) writes the numbers 1..lines; each shard of the second
  // counts its quarter of the lines (and says the last), most of them on B with the file
  // sent over. 1.9 MB arrives after its RunShard (the window holds 16 chunks); 109 KB (two
  // chunks, sent before the RunShard) arrives before it and waits for it.
  for (int lines : {300'000, 20'000}) {
    auto id = a->executor->Submit(fmt::format(R"(workflow: fan
stages:
  - name: make
    resources: {{cpu: 0.25, memory: 48Mi}}
    run: [sh, -c, "seq 1 {}"]
  - name: count
    needs: [make]
    resources: {{cpu: 0.25, memory: 48Mi}}
    shards: {{range: [0, 4], count: 4}}
    canary: false
    run: [sh, -c, "sleep 0.2; awk 'NR % 4 == {{shard.index}} {{n++; last = $1}} END {{print n, last}}' {{input}}"]
)", lines), "test");
    ASSERT_TRUE(id) << id.error().ToString();
    ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
    // Every line arrived: each quarter has lines/4 of them, and its last number.
    const int q = lines / 4;
    const std::string want = fmt::format("{0} {1}\n{0} {2}\n{0} {3}\n{0} {4}\n", q, lines,
                                         lines - 3, lines - 2, lines - 1);
    auto out = a->executor->Output(*id, "");
    ASSERT_TRUE(out) << out.error().ToString();
    EXPECT_EQ(*out, want) << lines;
  }
  nlohmann::json sb = Stats(*b->executor);
  EXPECT_GE(sb["leased_runs"].get<int>(), 1) << sb.dump();
  EXPECT_EQ(sb["transfer"]["received_completed"], sb["leased_runs"]) << sb.dump();
  EXPECT_GE(sb["transfer"]["bytes_received"].get<uint64_t>(), 1'900'000u) << sb.dump();

  // A chunk of a transfer no lease on B waits for is refused, not written down.
  wire::TransferMessage m;
  wire::Chunk* chunk = m.mutable_chunk();
  chunk->set_transfer_id("0123456789abcdef.in.0");
  chunk->set_total_size(5);
  chunk->set_data("hello");
  chunk->set_crc32c(ChunkChecksum("0123456789abcdef.in.0", 0, 5, "hello"));
  auto bytes = EncodeTransfer(m, kDefaultMaxPayloadBytes);
  ASSERT_TRUE(bytes) << bytes.error().ToString();
  b->executor->OnMeshMessage("host-a", uint32_t(Channel::kData), *bytes);
  WaitFor([&] { return Stats(*b->executor)["transfer"]["refused"] != 0; }, 2s);
  EXPECT_EQ(Stats(*b->executor)["transfer"]["refused"], 1) << Stats(*b->executor).dump();
  EXPECT_EQ(TransferFiles(b->dir + "/remote"), 0u);
}

TEST_F(MeshPlacerTest, AnOutputOverTheTransferLimitFailsNamingFileSizeAndLimit) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  max_transfer_ = 100'000;
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(FourShards("toobig", "sleep 0.3; seq 1 40000"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(WaitDone(*a->executor, *id), "failed");
  // seq 1 40000 prints 228,894 bytes; the error names the owner's output file.
  const std::string status = *a->executor->StatusJson(*id, true);
  EXPECT_THAT(status, ::testing::ContainsRegex(
                          "output /[^ ]*work[^ ]* is 228894 bytes, over mesh.max_transfer_bytes "
                          "\\(100000 bytes\\)"))
      << status;
  EXPECT_GE(Stats(*b->executor)["transfer"]["over_limit"].get<int>(), 1);
}

// A transfer whose whole checksum fails ends its attempt kLost; the shard is placed again and
// its output merged once, whole.
TEST_F(MeshPlacerTest, AnOutputThatArrivesCorruptedIsPlacedAgain) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  hub_.CorruptNextChunk();
  constexpr int kLines = 20'000;  // about 150 KB a shard: three chunks
  auto id = a->executor->Submit(FourShards("corrupt", "sleep 0.2; " + NumberedRun(kLines)), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  const std::string want = FourNumbered(kLines), out = MergedWork(a->dir, *id);
  EXPECT_EQ(Fnv1a64(out), Fnv1a64(want)) << out.size() << " bytes, want " << want.size();
  nlohmann::json sa = Stats(*a->executor);
  EXPECT_EQ(sa["transfer"]["received_failed"], 1) << sa.dump();
  EXPECT_EQ(a->placer->transfer_stats().receiver.bad_blob_checksum, 1u);
  int lost = 0;
  for (const auto& r : History(*a->executor, *id)) lost += r["state"] == "lost";
  EXPECT_EQ(lost, 1) << History(*a->executor, *id).dump(2);
  EXPECT_EQ(TransferFiles(a->dir + "/remote"), 0u);
}

}  // namespace
}  // namespace augur::mesh

// Restarts while shards run on other hosts (docs/MESH.md, "Running shards on other hosts",
// re-attaching): an executor is stopped (its tasks keep running, as when augurd stops) and
// started again on the same state directory with a new placer; the process backend, like
// its plugin host across a restart, still knows the tasks.
namespace augur::mesh {
namespace {

class MeshRestartTest : public MeshPlacerTest {
 protected:
  // Stops `name`'s executor and starts a new one (and a new placer) on its state.
  Host* Restart(const std::string& name, int64_t lease_ttl_ns, milliseconds down = milliseconds(0)) {
    Host& h = hosts_.at(name);
    hub_.Attach(name, nullptr);  // messages to it are lost while it is down
    h.executor.reset();
    h.placer.reset();
    std::this_thread::sleep_for(down);
    return StartExecutor(name, capacity_.at(name), lease_ttl_ns, 8);
  }

  // Waits until every shard A placed runs on B (nothing still being negotiated); the number.
  int WaitAllPlacedRun(Host* a, Host* b) {
    for (int i = 0; i < 2000; ++i) {
      nlohmann::json sa = Stats(*a->executor), sb = Stats(*b->executor);
      if (sa["awarded"].get<int>() >= 1 && sa["negotiator_pending"] == 0 &&
          sb["leased_runs"] == sa["awarded"]) {
        return sa["awarded"].get<int>();
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
    ADD_FAILURE() << Stats(*a->executor).dump() << "\n" << Stats(*b->executor).dump();
    return 0;
  }

  // The workflow's history on its owner: rows by (state, host).
  std::map<std::pair<std::string, std::string>, int> Rows(Executor& e, const std::string& id) {
    std::map<std::pair<std::string, std::string>, int> n;
    for (const auto& r : History(e, id)) n[{r["state"], r["host"]}]++;
    return n;
  }

  // The lease directories left under a placer's work directory.
  static size_t LeaseDirs(const std::string& work_dir) {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(work_dir, ec)) {
      n += e.is_directory() && e.path().filename() != "incoming";
    }
    return n;
  }

  std::map<std::string, Resources> capacity_ = {{"host-a", kOneShard}, {"host-b", kFourShards}};
};

TEST_F(MeshRestartTest, AnOwnerRestartedMidRunResumesItsLeasesAndMergesEachShardOnce) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("1.5"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  const int placed = WaitAllPlacedRun(a, b);
  ASSERT_GE(placed, 1);
  // (On a loaded machine a placed shard may end before the restart: its result came then.)
  const int before = Stats(*a->executor)["remote_results"].get<int>();
  a = Restart("host-a", 10'000'000'000);
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
  // Each shard ran once: the placed ones on B (never again, nowhere else), the rest here.
  nlohmann::json sa = Stats(*a->executor), sb = Stats(*b->executor);
  EXPECT_GE(sa["resumed"].get<int>(), 1) << sa.dump();
  EXPECT_EQ(sa["resumed"], placed - before) << sa.dump();
  EXPECT_EQ(sa["remote_results"], placed - before) << sa.dump();
  EXPECT_EQ(sa["lost"], 0) << sa.dump();
  EXPECT_EQ(sb["leased_runs"], placed) << sb.dump();
  auto rows = Rows(*a->executor, *id);
  EXPECT_EQ((rows[{"succeeded", "host-b"}]), placed) << History(*a->executor, *id).dump(2);
  EXPECT_EQ((rows[{"succeeded", "host-a"}]), 4 - placed) << History(*a->executor, *id).dump(2);
  EXPECT_EQ(History(*a->executor, *id).size(), 4u) << History(*a->executor, *id).dump(2);
  WaitStat(*b->executor, "leased_here", 0);
  EXPECT_EQ(Stats(*b->executor)["bidder_leases"], 0) << Stats(*b->executor).dump();
  EXPECT_EQ(Stats(*b->executor)["leased_here"], 0) << Stats(*b->executor).dump();
}

TEST_F(MeshRestartTest, AHostRestartedMidRunKeepsItsLeasedTasksAndSendsTheirResults) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("2"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  const int placed = WaitAllPlacedRun(a, b);
  ASSERT_GE(placed, 1);
  b = Restart("host-b", 10'000'000'000);
  ASSERT_NE(b, nullptr);
  nlohmann::json sb = Stats(*b->executor);
  EXPECT_EQ(sb["leases_recovered"], placed) << sb.dump();
  EXPECT_EQ(sb["leased_reattached"], placed) << sb.dump();
  EXPECT_EQ(sb["bidder_leases"], placed) << sb.dump();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
  nlohmann::json sa = Stats(*a->executor);
  EXPECT_EQ(sa["lost"], 0) << sa.dump();
  EXPECT_EQ(sa["remote_results"], placed) << sa.dump();
  EXPECT_EQ(Stats(*b->executor)["leased_runs"], 0) << "nothing started again on B";
  auto rows = Rows(*a->executor, *id);
  EXPECT_EQ((rows[{"succeeded", "host-b"}]), placed) << History(*a->executor, *id).dump(2);
  EXPECT_EQ(History(*a->executor, *id).size(), 4u) << History(*a->executor, *id).dump(2);
  WaitStat(*b->executor, "leased_here", 0);
  EXPECT_EQ(Stats(*b->executor)["bidder_leases"], 0) << Stats(*b->executor).dump();
  EXPECT_EQ(Stats(*b->executor)["leased_here"], 0) << Stats(*b->executor).dump();
  EXPECT_EQ(LeaseDirs(b->dir + "/remote"), 0u);
}

TEST_F(MeshRestartTest, AHostBackAfterItsLeasesWereGivenUpStopsTheirTasksAndKeepsNothing) {
  constexpr int64_t kTtl = 800'000'000;
  Host* a = AddHost("host-a", kOneShard, {}, kTtl);
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards, kTtl);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(Workflow("3"), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  const int placed = WaitAllPlacedRun(a, b);
  ASSERT_GE(placed, 1);
  // B is down for longer than the ttl: A gives its leases up and runs the shards again.
  b = Restart("host-b", kTtl, milliseconds(1500));
  ASSERT_NE(b, nullptr);
  EXPECT_GE(Stats(*a->executor)["lost"].get<int>(), placed);
  // Back, B holds its leases again and asks A, which holds none of them: their tasks are
  // stopped, the leases and their directories dropped.
  WaitStat(*b->executor, "leased_here", 0);
  nlohmann::json sb = Stats(*b->executor);
  EXPECT_EQ(sb["leases_recovered"], placed) << sb.dump();
  EXPECT_EQ(sb["leased_stopped"], placed) << sb.dump();
  EXPECT_EQ(sb["leased_here"], 0) << sb.dump();
  EXPECT_EQ(sb["bidder_leases"], 0) << sb.dump();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
  auto rows = Rows(*a->executor, *id);
  EXPECT_EQ((rows[{"lost", "host-b"}]), placed) << History(*a->executor, *id).dump(2);
  int succeeded = 0;
  for (const auto& [key, n] : rows) succeeded += key.first == "succeeded" ? n : 0;
  EXPECT_EQ(succeeded, 4) << History(*a->executor, *id).dump(2);
  WaitStat(*b->executor, "leased_here", 0);
  EXPECT_EQ(LeaseDirs(b->dir + "/remote"), 0u);
}

}  // namespace
}  // namespace augur::mesh

// A lease shrunk on its host (here for a local shard of higher priority) resizes the leased
// task there live, as a local attempt's grant change does.
namespace augur::mesh {
namespace {

TEST_F(MeshPlacerTest, ALeaseShrunkOnItsHostResizesItsTaskThere) {
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  // Half a core each, a quarter at least: B leases two and is full.
  auto id = a->executor->Submit(R"(workflow: wide
stages:
  - name: work
    resources: {cpu: 0.5, min_cpu: 0.25, memory: 48Mi}
    shards: {range: [0, 4], count: 4}
    canary: false
    run: [sh, -c, "sleep 1.5; echo shard {shard.index} of {shard.count}"]
)", "test");
  ASSERT_TRUE(id) << id.error().ToString();
  for (int i = 0; i < 2000 && Stats(*b->executor)["leased_runs"] < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  ASSERT_EQ(Stats(*b->executor)["leased_runs"], 2) << Stats(*b->executor).dump();
  // A shard of B's own, of a higher priority, wants half a core: the leases shrink for it.
  auto local = b->executor->Submit(R"(workflow: urgent
priority: 10
stages:
  - name: now
    resources: {cpu: 0.5, memory: 48Mi}
    run: [sh, -c, "echo done"]
)", "test");
  ASSERT_TRUE(local) << local.error().ToString();
  EXPECT_EQ(WaitDone(*b->executor, *local), "succeeded") << *b->executor->StatusJson(*local, true);
  nlohmann::json sb = Stats(*b->executor);
  EXPECT_GE(sb["leased_resized"].get<int>(), 1) << sb.dump();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(*a->executor->Output(*id, ""), kMerged);
}

}  // namespace
}  // namespace augur::mesh

// The byte cap on kept outputs (mesh.max_kept_bytes; docs/MESH.md, "Outputs after a
// takeover"): B keeps the outputs it sent A by transfer, only as many as fit, the newest; a
// restart lists the kept directory again, so a smaller cap then deletes what is over it.
namespace augur::mesh {
namespace {

// Regular files under `dir`, recursively.
size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    n += it->is_regular_file();
  }
  return n;
}

TEST_F(MeshRestartTest, KeptOutputsStayUnderTheirByteCapAlsoAfterARestart) {
  // Each shard prints 33893 bytes (over the 16 KiB inline: by transfer, so kept on B); the
  // cap holds one.
  constexpr uint64_t kOutput = 33893;
  max_kept_ = 50'000;
  Host* a = AddHost("host-a", kOneShard, {});
  if (!skip_.empty()) GTEST_SKIP() << skip_;
  ASSERT_NE(a, nullptr);
  Host* b = AddHost("host-b", kFourShards, kFourShards);
  ASSERT_NE(b, nullptr);
  auto id = a->executor->Submit(FourShards("kept", "sleep 0.3; " + NumberedRun(5000)), "test");
  ASSERT_TRUE(id) << id.error().ToString();
  ASSERT_EQ(WaitDone(*a->executor, *id), "succeeded") << *a->executor->StatusJson(*id, true);
  EXPECT_EQ(MergedWork(a->dir, *id).size(), 4 * kOutput);
  const int remote = Rows(*a->executor, *id)[{"succeeded", "host-b"}];
  ASSERT_GE(remote, 1) << History(*a->executor, *id).dump(2);
  // Each output is kept when its lease ends, after the result reached A.
  auto kept = [&] { return Stats(*b->executor)["kept_outputs"]; };
  WaitFor([&] { return kept()["kept"] == remote; }, 5s);
  nlohmann::json k = kept();
  EXPECT_EQ(k["kept"], remote) << k.dump();
  EXPECT_EQ(k["evicted"], remote - 1) << k.dump();
  EXPECT_EQ(k["files"], 1) << k.dump();
  EXPECT_EQ(k["bytes"], kOutput) << k.dump();
  EXPECT_EQ(FilesUnder(b->dir + "/remote/kept"), 1u);

  // Back with no cap: the kept file is found again and counted.
  max_kept_ = 0;
  b = Restart("host-b", 10'000'000'000);
  ASSERT_NE(b, nullptr);
  k = kept();
  EXPECT_EQ(k["files"], 1) << k.dump();
  EXPECT_EQ(k["bytes"], kOutput) << k.dump();
  EXPECT_EQ(k["evicted"], 0) << k.dump();
  // Back with a cap below it: it goes at start, directory and all.
  max_kept_ = 1024;
  b = Restart("host-b", 10'000'000'000);
  ASSERT_NE(b, nullptr);
  k = kept();
  EXPECT_EQ(k["files"], 0) << k.dump();
  EXPECT_EQ(k["bytes"], 0) << k.dump();
  EXPECT_EQ(k["evicted"], 1) << k.dump();
  EXPECT_EQ(FilesUnder(b->dir + "/remote/kept"), 0u);
}

}  // namespace
}  // namespace augur::mesh
