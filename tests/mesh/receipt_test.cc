// MeshPlacer::OnReceipt (mesh_placer.h): the owner's negotiator takes the answers to its
// placements on the thread that receives them; what needs the executor waits for the engine
// thread (TakeUpReceipts). The candidates are real Bidders answering the probes the placer
// sent.
#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mesh/bidder.h"
#include "mesh/mesh_link.h"
#include "mesh/mesh_placer.h"
#include "testing/stub_placer_host.h"

namespace augur::mesh {
namespace {

using workflow::Ledger;
using workflow::Resources;

constexpr uint64_t kGiB = 1ULL << 30;
constexpr Resources kQuarter{0.25, kGiB / 4};
constexpr uint32_t kPlacement = uint32_t(Channel::kPlacement);

// The owner's side of the mesh: what it sends is kept, in order, for the test's network;
// every candidate shows room for many quarters.
class OwnerLink : public MeshLink {
 public:
  explicit OwnerLink(std::vector<std::string> candidates) {
    HeadroomSummary h;
    const Resources room{8, 8 * kGiB};
    h.horizons = {{0, room, room}, {600, room, room}};
    h.backends = {{"process", {}}};
    for (const std::string& c : candidates) {
      PlacementPeer p;
      p.name = c;
      p.alive = true;
      p.headroom_version = 1;
      p.headroom = h;
      peers_.push_back(p);
    }
  }
  const std::string& self() const override { return self_; }
  Status Send(const std::string& host, Channel ch, std::string payload) override {
    if (ch != Channel::kPlacement) return Status::OK();  // RunShards: no host runs them here
    auto m = DecodePlacement(payload);
    if (!m) return m.error();
    std::lock_guard lock(mu_);
    sent_.push_back({host, *m});
    return Status::OK();
  }
  PeerView Peers() const override { return std::make_shared<std::vector<PlacementPeer>>(peers_); }
  std::deque<std::pair<std::string, wire::PlacementMessage>> Take() {
    std::lock_guard lock(mu_);
    return std::exchange(sent_, {});
  }

 private:
  std::string self_ = "owner";
  std::vector<PlacementPeer> peers_;
  std::mutex mu_;
  std::deque<std::pair<std::string, wire::PlacementMessage>> sent_;
};

// The executor's side: its ledger has no room (every shard goes elsewhere), and it notes
// the awards and on which thread they came.
class OwnerHost : public testing::StubPlacerHost {
 public:
  explicit OwnerHost(workflow::WorkflowStore* store)
      : StubPlacerHost(store, Resources{0.1, kGiB / 8}) {}
  void Awarded(const std::string& attempt, const std::string& host, const Resources&,
               const std::string&, int64_t) override {
    std::lock_guard lock(mu);
    ++awards[attempt];
    awarded_on[attempt] = host;
    threads.insert(std::this_thread::get_id());
  }
  void RemoteEnded(const std::string& attempt, const workflow::AttemptOutcome& o,
                   const std::string&, int64_t) override {
    std::lock_guard lock(mu);
    ended[attempt] = o.error;
  }

  std::mutex mu;
  std::map<std::string, int> awards;
  std::map<std::string, std::string> awarded_on, ended;
  std::set<std::thread::id> threads;
};

class ReceiptTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok()) << tmp_.error();
    host_ = std::make_unique<OwnerHost>(tmp_.store());
    for (const char* c : {"c1", "c2", "c3", "c4"}) {
      BidderOptions o;
      o.backends = {{"process", {}}};
      bidders_.emplace(c, std::make_unique<Bidder>(c, o));
      ledgers_.emplace(c, Ledger({64, 64 * kGiB}));
    }
  }
  void Start(std::vector<std::string> candidates) {
    link_ = std::make_unique<OwnerLink>(std::move(candidates));
    MeshPlacerOptions o;
    o.work_dir = tmp_.dir() + "/remote";
    placer_ = std::make_unique<MeshPlacer>(link_.get(), o);
    placer_->Bind(host_.get());
  }
  void TearDown() override { placer_.reset(); }
  workflow::Action Place(const std::string& id, int64_t ready_ns) {
    workflow::Action a;
    a.kind = workflow::Action::Kind::kPlace;
    a.attempt.attempt_id = id;
    a.attempt.workflow_id = "wf";
    a.attempt.grant = kQuarter;
    a.attempt.backend = "process";
    a.attempt.started_ns = ready_ns;
    a.attempt.output_path = tmp_.dir() + "/work/" + std::to_string(std::hash<std::string>{}(id));
    a.min = kQuarter;
    a.budget_left = std::numeric_limits<double>::infinity();  // no budget
    a.argv = {"true"};
    a.workdir = tmp_.dir() + "/work";
    return a;
  }
  // The candidates' answers to what the owner sent (a probe, an award, a release...).
  std::vector<std::pair<std::string, std::string>> Answer(int64_t now) {
    std::vector<std::pair<std::string, std::string>> answers;
    for (auto& [to, m] : link_->Take()) {
      BidderOutput out;
      bidders_.at(to)->Handle("owner", m, now, ledgers_.at(to), &out);
      for (const PlacementOutgoing& a : out.messages) {
        answers.emplace_back(to, *EncodePlacement(a.msg));
      }
    }
    return answers;
  }
  nlohmann::json Stats() const { return nlohmann::json::parse(placer_->StatsJson()); }

  testing::TempStore tmp_{"receipt"};
  std::unique_ptr<OwnerHost> host_;
  std::map<std::string, std::unique_ptr<Bidder>> bidders_;
  std::map<std::string, Ledger> ledgers_;
  std::unique_ptr<OwnerLink> link_;
  std::unique_ptr<MeshPlacer> placer_;
};

TEST_F(ReceiptTest, TheGrantIsTakenAsItComesAndTheEngineThreadRecordsTheAwardAfter) {
  Start({"c1", "c2"});
  constexpr int64_t kReady = 1'000'000'000;
  placer_->Place(Place("wf/s/0#1", kReady), kReady);
  placer_->Tick(kReady + 100'000);
  // Both candidates are probed, each asked for a lease at once.
  std::vector<std::pair<std::string, std::string>> answers = Answer(kReady + 200'000);
  ASSERT_EQ(answers.size(), 2u);
  for (const auto& [from, bytes] : answers) {
    auto m = DecodePlacement(bytes);
    ASSERT_TRUE(m && m->has_offer() && m->offer().leased()) << from << ": " << (m ? m->DebugString() : "");
  }
  // The first lease, taken on the receiving thread, places the shard; the second, come a
  // little later, is released at once from the same thread.
  constexpr int64_t kFirst = kReady + 1'500'000;
  ASSERT_TRUE(placer_->OnReceipt(answers[0].first, kPlacement, answers[0].second, kFirst));
  ASSERT_TRUE(placer_->OnReceipt(answers[1].first, kPlacement, answers[1].second, kFirst + 1000));
  bool released = false;
  for (const auto& [to, m] : link_->Take()) {
    EXPECT_EQ(to, answers[1].first) << m.DebugString();
    released = released || m.has_release();
  }
  EXPECT_TRUE(released);
  EXPECT_TRUE(host_->awards.empty()) << "the executor is called on its own thread only";
  // The engine thread takes it up later: the award is recorded then, the latency is the
  // grant's (at its receipt), not the take-up's.
  placer_->TakeUpReceipts(kFirst + 5'000'000);
  EXPECT_EQ(host_->awards["wf/s/0#1"], 1);
  EXPECT_EQ(host_->awarded_on["wf/s/0#1"], answers[0].first);
  const MeshPlacementStats p = [&] {
    placer_->Tick(kFirst + 6'000'000);  // the stats' copy is taken at Tick
    return placer_->placement_stats();
  }();
  EXPECT_EQ(p.latency.count(), 1u);
  EXPECT_NEAR(p.latency.sum(), double(kFirst - kReady) / 1e9, 1e-9);
  EXPECT_EQ(Stats()["taken_on_receipt"], 2);
  EXPECT_EQ(Stats()["left_to_engine"], 0);
  EXPECT_EQ(Stats()["awarded"], 1);
  // Not a negotiator's answer: a bid request, and bytes that do not decode, stay with
  // OnMessage.
  wire::PlacementMessage request;
  request.mutable_bid_request()->set_request_id("x@1");
  EXPECT_FALSE(placer_->OnReceipt("c1", kPlacement, *EncodePlacement(request), kFirst));
  EXPECT_FALSE(placer_->OnReceipt("c1", kPlacement, "\xff\x01garbage", kFirst));
  EXPECT_FALSE(placer_->OnReceipt("c1", uint32_t(Channel::kRun), answers[0].second, kFirst));
}

// The engine thread places, ticks and handles what was left to it while the test's network
// thread delivers every answer where it comes (OnReceipt), or leaves it to the engine
// thread as augurd's executor does: every shard is awarded exactly once, on the engine
// thread, and each answer is taken in one place or the other.
TEST_F(ReceiptTest, AnswersTakenOnTheReceivingThreadWhileTheEngineNegotiatesPlaceEveryShardOnce) {
  Start({"c1", "c2", "c3", "c4"});
  constexpr int kShards = 300;
  std::mutex mu;
  std::deque<std::pair<std::string, std::string>> left;  // the engine thread's queue
  std::atomic<int> takeups{0};
  std::atomic<bool> placing_done{false}, stop{false};
  auto now = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  const std::thread::id engine_id = [&] {
    std::thread engine([&] {
      for (int i = 0; !stop; ++i) {
        if (i < kShards) {
          placer_->Place(Place("wf/s/" + std::to_string(i) + "#1", now()), now());
        } else {
          placing_done = true;
        }
        placer_->Tick(now());
        std::deque<std::pair<std::string, std::string>> batch;
        {
          std::lock_guard lock(mu);
          batch.swap(left);
        }
        for (const auto& [from, bytes] : batch) {
          placer_->OnMessage(from, kPlacement, bytes, now(), now());
        }
        for (int n = takeups.exchange(0); n > 0; --n) placer_->TakeUpReceipts(now());
      }
    });
    const std::thread::id id = engine.get_id();
    // This thread is the network and the mesh thread: every answer goes where it would.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      int awarded = 0;
      {
        std::lock_guard lock(host_->mu);
        awarded = int(host_->awards.size());
      }
      if ((placing_done && awarded == kShards) || std::chrono::steady_clock::now() > deadline) {
        break;
      }
      for (const auto& [from, bytes] : Answer(now())) {
        if (placer_->OnReceipt(from, kPlacement, bytes, now())) {
          ++takeups;
        } else {
          std::lock_guard lock(mu);
          left.emplace_back(from, bytes);
        }
      }
      std::this_thread::yield();
    }
    stop = true;
    engine.join();
    (void)Answer(now());  // the releases sent last
    return id;
  }();
  std::lock_guard lock(host_->mu);
  EXPECT_EQ(host_->awards.size(), size_t(kShards));
  for (const auto& [attempt, n] : host_->awards) EXPECT_EQ(n, 1) << attempt;
  EXPECT_TRUE(host_->ended.empty()) << host_->ended.begin()->first << ": "
                                    << host_->ended.begin()->second;
  ASSERT_EQ(host_->threads.size(), 1u);
  EXPECT_EQ(*host_->threads.begin(), engine_id);
  const nlohmann::json s = Stats();
  EXPECT_GT(s["taken_on_receipt"].get<uint64_t>(), 0u);
  std::printf("taken on receipt %lu, left to the engine thread %lu\n",
              s["taken_on_receipt"].get<uint64_t>(), s["left_to_engine"].get<uint64_t>());
  EXPECT_EQ(s["awarded"], kShards);
  // Every lease a candidate holds is a shard's, the others released.
  size_t held = 0;
  for (auto& [name, b] : bidders_) held += b->leases();
  EXPECT_EQ(held, size_t(kShards));
}

}  // namespace
}  // namespace augur::mesh
