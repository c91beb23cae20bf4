// WorkflowLog: what a workflow's replicated log (replication.h) says in the workflow engine's
// terms (docs/MESH.md, "Replication and failover"). The owner turns the engine's records
// (engine.h Changes) into log records; a host that takes the workflow over rebuilds the
// engine's records from the log (Rebuild) and continues it through Engine::Restore, the path
// a restart takes.
//
// What each record carries:
//   submitted       name, text = the spec as submitted, detail = {"origin", "submitted_ns",
//                   "deadline_ns"}
//   shards_planned  stage, text = the shards planned for it (a stage's or a straggler's
//                   pieces), as a JSON array; a stage with many shards takes several
//   attempt_started stage, shard (its index), attempt id, host
//   attempt_result  stage, shard, attempt id, host, ok, error; a success carries its output
//                   (output, with digest and size) when it is at most kMaxInlineOutputBytes
//   stage_merged    stage, and its merged output the same way
//   workflow_finished  ok, error, detail = {"state"}
// A successful shard whose output was not carried (larger than the limit) is fetched by the
// new owner from the host that ran it and kept it (UncarriedOutputs, MeshPlacer::FetchOutput)
// and runs again only when that fails; a stage merged without its output is merged again
// from its shards' outputs: nothing is lost, some work may be redone.
//
// Replica ids. A workflow's log is keyed "<engine id>~<n>", with n the smallest number that
// makes the submitting host the first of the rendezvous order (rendezvous.h) among the live
// members when it is submitted: the host where a workflow is submitted owns it (DESIGN.md),
// and the next in that order, which holds a replica, takes over when it dies.
//
// Pure functions; thread safety: none needed.
#ifndef AUGUR_MESH_WORKFLOW_LOG_H_
#define AUGUR_MESH_WORKFLOW_LOG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "augur/status.h"
#include "mesh/replication.pb.h"
#include "workflow/replication.h"
#include "workflow/store.h"

namespace augur::mesh {

// The largest shard or stage output carried in the log (a record is at most 32 KiB).
inline constexpr size_t kMaxInlineOutputBytes = 16 * 1024;
// Shards described per shards_planned record.
inline constexpr size_t kShardsPerRecord = 64;

std::string OutputDigest(std::string_view bytes);  // "fnv1a64:<16 hex>"

// "<engine id>~<n>" for the smallest n (below 4096) whose rendezvous order among `live`
// (with `self`) puts `self` first.
std::string ChooseReplicaId(const std::string& engine_id, const std::string& self,
                            const std::vector<std::string>& live);
// The engine id of a replica id ("" when it is not one).
std::string EngineIdOf(std::string_view replica_id);

// Records of the engine's records.
wire::StateRecord SubmittedRecord(const workflow::WorkflowRecord& w);
// The shards of one stage, kShardsPerRecord per record.
std::vector<wire::StateRecord> ShardsPlannedRecords(const std::vector<workflow::ShardRecord>& shards);
wire::StateRecord AttemptStartedRecord(const workflow::AttemptRecord& a, std::string_view self);
// `output`: the attempt's output when it succeeded and is small enough to carry, else null.
wire::StateRecord AttemptResultRecord(const workflow::AttemptRecord& a, std::string_view self,
                                      const std::string* output, uint64_t size);
wire::StateRecord StageMergedRecord(std::string_view stage, const std::string* output,
                                    uint64_t size);
wire::StateRecord WorkflowFinishedRecord(const workflow::WorkflowRecord& w);

// A shard's successful result whose output the log does not carry (over
// kMaxInlineOutputBytes): a new owner fetches it from `host`, the host that ran it.
struct UncarriedOutput {
  std::string stage, shard, attempt_id, host;
  uint64_t size = 0;
};
// Those of a log that a new owner needs: each shard's winning result without its output,
// unless its stage was merged with a carried output or the workflow has finished.
std::vector<UncarriedOutput> UncarriedOutputs(const std::vector<wire::StateRecord>& log);
// The hosts that ran a shard of the log whose output it does not carry (they may keep it).
std::vector<std::string> OutputHolders(const std::vector<wire::StateRecord>& log);
// Where a new owner puts a fetched output: work_root/<id>/<stage>/fetched.<hash>.out.
std::string FetchedOutputPath(const std::string& work_root, const std::string& engine_id,
                              const UncarriedOutput& o);

// The workflow as its log says, for a host that owns it now: shards with a carried
// successful output are done (their files among `files`, under work_root/<id>/), and so are
// those whose output was fetched (`fetched`: attempt id -> the file, already in place); a
// stage merged with a carried output is done, everything else is pending. Corruption when
// the log does not start with a submitted record or a record cannot be read.
Result<workflow::AdoptedWorkflow> Rebuild(const std::string& engine_id,
                                          const std::vector<wire::StateRecord>& log,
                                          const std::string& work_root,
                                          const std::map<std::string, std::string>& fetched = {});

}  // namespace augur::mesh

#endif  // AUGUR_MESH_WORKFLOW_LOG_H_
