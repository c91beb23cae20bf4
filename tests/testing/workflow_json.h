// Reading a workflow's status object (`augurctl status --json`, Executor::StatusJson: one
// element of the array) in tests.
//
// Thread-safety: plain functions.
#ifndef AUGUR_TESTS_TESTING_WORKFLOW_JSON_H_
#define AUGUR_TESTS_TESTING_WORKFLOW_JSON_H_

#include <nlohmann/json.hpp>

namespace augur::testing {

// The shards the status object counts as succeeded, over all its stages (0 without stages).
inline int SucceededShards(const nlohmann::json& w) {
  int n = 0;
  if (!w.is_object() || !w.contains("stages")) return 0;
  for (const auto& st : w["stages"]) n += st["counts"].value("succeeded", 0);
  return n;
}

}  // namespace augur::testing

#endif  // AUGUR_TESTS_TESTING_WORKFLOW_JSON_H_
