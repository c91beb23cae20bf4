// A backend that runs everything through a real one (the process backend, process_backend.h)
// but holds every Run at a gate until the test opens it: a start through it is "slow" for as
// long as the test wants, and the test knows when one is in flight. It counts what went
// through it (instances provisioned and released, tasks run, invocations cancelled).
//
//   testing::GatedBackend gated(real.get());
//   ... submit; ASSERT_TRUE(gated.WaitInRun(1));  // a start is held in Run
//   gated.Open();                                  // it goes on (as do later ones)
//
// Thread-safety: every method may be called from several threads at once (backend.h).
#ifndef AUGUR_TESTS_TESTING_GATED_BACKEND_H_
#define AUGUR_TESTS_TESTING_GATED_BACKEND_H_

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "plugin/backend.h"

namespace augur::testing {

class GatedBackend : public plugin::Backend {
 public:
  // A Run held longer than this goes on anyway (a test that never opens the gate fails on
  // its own assertions, not by hanging).
  static constexpr std::chrono::seconds kMaxHold{30};

  explicit GatedBackend(plugin::Backend* real) : real_(real) {}

  const std::string& name() const override { return real_->name(); }
  Result<plugin::BackendInfo> Describe() override { return real_->Describe(); }
  Result<plugin::Instance> Provision(const plugin::AllocRequest& req) override {
    auto inst = real_->Provision(req);
    std::lock_guard<std::mutex> lock(mu_);
    if (inst) provisioned_.insert(inst->handle);
    return inst;
  }
  Result<uint32_t> Prewarm(const plugin::AllocRequest& shape, uint32_t count) override {
    return real_->Prewarm(shape, count);
  }
  Result<plugin::Resources> Resize(const std::string& instance,
                                   const plugin::Resources& target) override {
    return real_->Resize(instance, target);
  }
  Result<std::string> Run(const std::string& instance, const plugin::Task& task) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++held_;
      cv_.notify_all();
      cv_.wait_for(lock, kMaxHold, [&] { return open_; });
      --held_;
    }
    auto inv = real_->Run(instance, task);
    std::lock_guard<std::mutex> lock(mu_);
    if (inv) invocations_.push_back(*inv);
    ++runs_;
    cv_.notify_all();
    return inv;
  }
  Result<plugin::TaskStatus> Poll(const std::string& invocation,
                                  std::chrono::milliseconds wait) override {
    return real_->Poll(invocation, wait);
  }
  Status Cancel(const std::string& invocation) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      cancelled_.insert(invocation);
    }
    return real_->Cancel(invocation);
  }
  Status Release(const std::string& instance) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      released_.insert(instance);
    }
    return real_->Release(instance);
  }
  Result<plugin::RecoverResult> Recover(const std::vector<std::string>& instances,
                                        const std::vector<std::string>& invocations) override {
    return real_->Recover(instances, invocations);
  }

  // True once `n` Runs are held at the gate at the same time (false after 20 s).
  bool WaitInRun(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return held_ >= n; });
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // Runs that returned (whether they started a task or not).
  int runs() {
    std::lock_guard<std::mutex> lock(mu_);
    return runs_;
  }
  std::vector<std::string> invocations() {
    std::lock_guard<std::mutex> lock(mu_);
    return invocations_;
  }
  bool cancelled(const std::string& invocation) {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_.contains(invocation);
  }
  // Instances provisioned and not released.
  std::set<std::string> held_instances() {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> out;
    for (const std::string& i : provisioned_) {
      if (!released_.contains(i)) out.insert(i);
    }
    return out;
  }

 private:
  plugin::Backend* real_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int held_ = 0;
  int runs_ = 0;
  std::vector<std::string> invocations_;
  std::set<std::string> provisioned_, released_, cancelled_;
};

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_GATED_BACKEND_H_
