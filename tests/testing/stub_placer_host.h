// For tests of one MeshPlacer without an executor: a PlacerHost that holds a ledger and a
// workflow store and does nothing else (override what the test watches), and a temporary
// directory with a store in it, removed when it goes.
//
//   testing::TempStore tmp("bid-desk");
//   ASSERT_TRUE(tmp.ok()) << tmp.error();
//   testing::StubPlacerHost host(tmp.store(), {0.5, 1ULL << 30});
#ifndef AUGUR_TESTS_TESTING_STUB_PLACER_HOST_H_
#define AUGUR_TESTS_TESTING_STUB_PLACER_HOST_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "workflow/placer.h"
#include "workflow/store.h"

namespace augur::testing {

class StubPlacerHost : public workflow::PlacerHost {
 public:
  StubPlacerHost(workflow::WorkflowStore* store, const workflow::Resources& capacity)
      : ledger_(capacity), store_(store) {}
  workflow::Ledger& ledger() override { return ledger_; }
  void Awarded(const std::string&, const std::string&, const workflow::Resources&,
               const std::string&, int64_t) override {}
  void RemoteEnded(const std::string&, const workflow::AttemptOutcome&, const std::string&,
                   int64_t) override {}
  void RemoteEndedWithFile(const std::string&, const workflow::AttemptOutcome&,
                           const std::string&, int64_t) override {}
  void Unplaced(const std::string&, int64_t) override {}
  Status RunLeased(const workflow::LeasedTask&) override { return Status::OK(); }
  void StopLeased(const std::string&, const std::string&) override {}
  void ResizeLeased(const std::string&, const workflow::Resources&) override {}
  void LedgerChanged(const std::vector<workflow::GrantChange>&, int64_t) override {}
  workflow::WorkflowStore& workflow_store() override { return *store_; }
  bool ReattachLeased(const std::string&, const std::string&, const std::string&,
                      const std::string&, const std::string&) override {
    return false;
  }

  workflow::Ledger ledger_;

 private:
  workflow::WorkflowStore* store_;
};

// /tmp/augur-<name>-test.XXXXXX with state.db opened in it; removed with everything in it.
class TempStore {
 public:
  explicit TempStore(const std::string& name) {
    std::string tmpl = "/tmp/augur-" + name + "-test.XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      error_ = "mkdtemp " + tmpl + " failed";
      return;
    }
    dir_ = tmpl;
    auto store = workflow::WorkflowStore::Open(dir_ + "/state.db");
    if (!store) {
      error_ = store.error().ToString();
      return;
    }
    store_ = std::move(*store);
  }
  ~TempStore() {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TempStore(const TempStore&) = delete;
  TempStore& operator=(const TempStore&) = delete;

  bool ok() const { return store_ != nullptr; }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_; }
  workflow::WorkflowStore* store() const { return store_.get(); }

 private:
  std::string dir_, error_;
  std::unique_ptr<workflow::WorkflowStore> store_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_STUB_PLACER_HOST_H_
