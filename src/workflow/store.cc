// WorkflowStore on SQLite (src/workflow/store.h): one connection in WAL mode, prepared
// statements cached for the connection's life, every SQLite error turned into a Status that
// names the file and what was being done.
#include "workflow/store.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace augur::workflow {
namespace {

// The schema this build writes. A database with a higher version was written by a newer
// augur and is refused (FailedPrecondition); lower versions are migrated when opened.
constexpr int64_t kSchemaVersion = 5;

// Version 1's schema. A new database gets it and then every migration below, so that the
// path old files take is the one every new file takes too.
constexpr std::string_view kSchema = R"sql(
CREATE TABLE augur_schema (version INTEGER NOT NULL);
CREATE TABLE workflows (
  id TEXT PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  spec_yaml TEXT NOT NULL,
  origin TEXT NOT NULL,
  state TEXT NOT NULL,
  submitted_ns INTEGER NOT NULL,
  finished_ns INTEGER NOT NULL,
  deadline_ns INTEGER NOT NULL,
  boost REAL NOT NULL,
  boost_until_ns INTEGER NOT NULL,
  spent REAL NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX workflows_by_submitted ON workflows (submitted_ns);
CREATE TABLE shards (
  workflow_id TEXT NOT NULL,
  stage TEXT NOT NULL,
  idx INTEGER NOT NULL,
  shard_id TEXT NOT NULL,
  range_begin INTEGER NOT NULL,
  range_end INTEGER NOT NULL,
  items TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  want_cpu REAL NOT NULL,
  want_memory INTEGER NOT NULL,
  min_cpu REAL NOT NULL,
  min_memory INTEGER NOT NULL,
  not_before_ns INTEGER NOT NULL,
  winner TEXT NOT NULL,
  output_path TEXT NOT NULL,
  PRIMARY KEY (workflow_id, stage, idx)
);
CREATE TABLE attempts (
  attempt_id TEXT PRIMARY KEY NOT NULL,
  workflow_id TEXT NOT NULL,
  stage TEXT NOT NULL,
  shard_index INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  backend TEXT NOT NULL,
  instance TEXT NOT NULL,
  invocation TEXT NOT NULL,
  grant_cpu REAL NOT NULL,
  grant_memory INTEGER NOT NULL,
  state TEXT NOT NULL,
  started_ns INTEGER NOT NULL,
  finished_ns INTEGER NOT NULL,
  exit_code INTEGER NOT NULL,
  term_signal INTEGER NOT NULL,
  cpu_seconds REAL NOT NULL,
  peak_memory_bytes INTEGER NOT NULL,
  bytes_read INTEGER NOT NULL,
  bytes_written INTEGER NOT NULL,
  output_path TEXT NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX attempts_by_workflow ON attempts (workflow_id);
CREATE TABLE stage_outputs (
  workflow_id TEXT NOT NULL,
  stage TEXT NOT NULL,
  output_path TEXT NOT NULL,
  PRIMARY KEY (workflow_id, stage)
);
CREATE TABLE history (
  attempt_id TEXT PRIMARY KEY NOT NULL,
  workflow_id TEXT NOT NULL,
  workflow_name TEXT NOT NULL,
  stage TEXT NOT NULL,
  shard_index INTEGER NOT NULL,
  range_begin INTEGER NOT NULL,
  range_end INTEGER NOT NULL,
  items INTEGER NOT NULL,
  state TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  started_ns INTEGER NOT NULL,
  wall_seconds REAL NOT NULL,
  cpu_seconds REAL NOT NULL,
  peak_memory_bytes INTEGER NOT NULL,
  bytes_read INTEGER NOT NULL,
  bytes_written INTEGER NOT NULL,
  grant_cpu REAL NOT NULL,
  grant_memory INTEGER NOT NULL
);
CREATE INDEX history_by_workflow ON history (workflow_id, started_ns);
CREATE INDEX history_by_name ON history (workflow_name, started_ns);
CREATE INDEX history_by_started ON history (started_ns);
)sql";

// kMigrations[i] takes a database from version i + 1 to i + 2, in the transaction that
// records the new version. Never edit one that has shipped: append.
constexpr std::string_view kMigrations[] = {
    // 2: the cost of each attempt and the cost class it ran on; demand events; retention's
    // lookups (finished workflows oldest first) and `augurctl profile`'s (the newest
    // workflow of a name).
    R"sql(
ALTER TABLE history ADD COLUMN cost REAL NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN resource_class TEXT NOT NULL DEFAULT '';
CREATE TABLE events (
  name TEXT PRIMARY KEY NOT NULL,
  workflow TEXT NOT NULL,
  expected REAL NOT NULL,
  at_ns INTEGER NOT NULL,
  created_ns INTEGER NOT NULL
);
CREATE INDEX events_by_at ON events (at_ns);
CREATE INDEX workflows_by_finished ON workflows (finished_ns);
CREATE INDEX workflows_by_name ON workflows (name, submitted_ns);
)sql",
    // 3: the host each attempt runs on (shards placed on other hosts through the mesh).
    R"sql(
ALTER TABLE attempts ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN host TEXT NOT NULL DEFAULT '';
)sql",
    // 4: the replicated workflows this host owns or holds copies of (mesh replication:
    // a WorkflowSnapshot per replica id).
    R"sql(
CREATE TABLE replicas (
  id TEXT PRIMARY KEY NOT NULL,
  snapshot BLOB NOT NULL
);
)sql",
    // 5: re-attaching mesh work after a restart: the lease a placed attempt runs under (owner
    // side), and the leases this host granted other hosts' shards with their tasks (host side).
    R"sql(
ALTER TABLE attempts ADD COLUMN lease_id TEXT NOT NULL DEFAULT '';
CREATE TABLE leases (
  lease_id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  request_id TEXT NOT NULL,
  attempt_id TEXT NOT NULL,
  backend TEXT NOT NULL,
  cost_class TEXT NOT NULL,
  want_cpu REAL NOT NULL,
  want_memory INTEGER NOT NULL,
  min_cpu REAL NOT NULL,
  min_memory INTEGER NOT NULL,
  grant_cpu REAL NOT NULL,
  grant_memory INTEGER NOT NULL,
  score REAL NOT NULL,
  ttl_ns INTEGER NOT NULL,
  started INTEGER NOT NULL,
  dir TEXT NOT NULL,
  output_path TEXT NOT NULL,
  owner_output TEXT NOT NULL,
  result BLOB NOT NULL,
  instance TEXT NOT NULL DEFAULT '',
  invocation TEXT NOT NULL DEFAULT ''
);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion - 1);
// Tables added after version 1 without changing what version 1 means: created when missing
// at every open, so that a database written before them gains them, and ignored by an augur
// that does not know them.
constexpr std::string_view kAddedTables = R"sql(
CREATE TABLE IF NOT EXISTS prewarm (
  name TEXT PRIMARY KEY NOT NULL,
  backend TEXT NOT NULL,
  instance TEXT NOT NULL,
  cpu REAL NOT NULL,
  memory INTEGER NOT NULL,
  created_ns INTEGER NOT NULL
);
)sql";

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Items (arbitrary bytes, file names among them) as one TEXT value: each item followed by
// '\n', with '\\' and '\n' inside an item escaped as "\\\\" and "\\n". [] is "", [""] is "\n".
std::string EncodeList(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    for (char c : item) {
      if (c == '\\') {
        out += "\\\\";
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '\n';
  }
  return out;
}

std::optional<std::vector<std::string>> DecodeList(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\n') {
      out.push_back(std::move(cur));
      cur.clear();
    } else if (c == '\\') {
      if (++i == s.size()) return std::nullopt;
      if (s[i] == '\\') {
        cur += '\\';
      } else if (s[i] == 'n') {
        cur += '\n';
      } else {
        return std::nullopt;
      }
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) return std::nullopt;  // an item without its terminator
  return out;
}

// Creates `dir` and its missing parents, each 0750.
Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::OK();
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return Status::IOError(fmt::format("{}: not a directory", dir));
    return Status::OK();
  }
  if (errno != ENOENT) return Status::FromErrno(dir, errno);
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    AUGUR_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  }
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) {
    return Status::FromErrno(fmt::format("creating {}", dir), errno);
  }
  return Status::OK();
}

template <typename E, size_t N>
std::string_view NameOf(const std::array<std::string_view, N>& names, E e) {
  auto i = static_cast<size_t>(e);
  return i < N ? names[i] : std::string_view("unknown");
}
template <typename E, size_t N>
std::optional<E> FromName(const std::array<std::string_view, N>& names, std::string_view s) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == s) return static_cast<E>(i);
  }
  return std::nullopt;
}

constexpr std::array<std::string_view, 4> kWorkflowStates = {"running", "succeeded", "failed",
                                                             "cancelled"};
constexpr std::array<std::string_view, 5> kShardStates = {"pending", "running", "succeeded",
                                                          "failed", "cancelled"};
constexpr std::array<std::string_view, 9> kAttemptStates = {
    "starting", "running",   "succeeded", "failed",   "oom",
    "timed_out", "cancelled", "lost",     "reclaimed"};

}  // namespace

std::string_view WorkflowStateName(WorkflowState s) { return NameOf(kWorkflowStates, s); }
std::string_view ShardStateName(ShardState s) { return NameOf(kShardStates, s); }
std::string_view AttemptStateName(AttemptState s) { return NameOf(kAttemptStates, s); }
std::optional<WorkflowState> WorkflowStateFromName(std::string_view s) {
  return FromName<WorkflowState>(kWorkflowStates, s);
}
std::optional<ShardState> ShardStateFromName(std::string_view s) {
  return FromName<ShardState>(kShardStates, s);
}
std::optional<AttemptState> AttemptStateFromName(std::string_view s) {
  return FromName<AttemptState>(kAttemptStates, s);
}

namespace {

// The connection and its statement cache (WorkflowStore::Impl adds the transaction state).
struct Connection {
  std::string path;
  DbPtr db;
  // Keyed by the SQL text (string literals and function-local statics of this file); the
  // statements are finalized before the connection is closed (declared after it).
  std::unordered_map<std::string_view, StmtPtr> stmts;

  // "<file>: <what>: <sqlite message>", with a Status code by SQLite's result code.
  Status Error(int rc, std::string_view what) const {
    std::string msg = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    int sys = db ? sqlite3_system_errno(db.get()) : 0;
    switch (rc & 0xff) {
      case SQLITE_FULL:
        return Status::IOError(fmt::format("{}: {}: the disk is full ({})", path, what, msg));
      case SQLITE_NOTADB:
      case SQLITE_CORRUPT:
        return Status::Corruption(fmt::format("{}: {}: {}", path, what, msg));
      case SQLITE_IOERR:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
      case SQLITE_PERM:
        if (sys != 0) msg += fmt::format(" ({})", std::strerror(sys));
        return Status::IOError(fmt::format("{}: {}: {}", path, what, msg));
      case SQLITE_BUSY:
      case SQLITE_LOCKED:
        return Status::Unavailable(fmt::format("{}: {}: {}", path, what, msg));
      default:
        return Status::Internal(fmt::format("{}: {}: {}", path, what, msg));
    }
  }

  Result<sqlite3_stmt*> Prepare(std::string_view sql, std::string_view what) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return it->second.get();
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    StmtPtr s(raw);
    if (rc != SQLITE_OK) return Err(Error(rc, what));
    return stmts.emplace(sql, std::move(s)).first->second.get();
  }

  // Runs statements that return no rows (schema, BEGIN/COMMIT), uncached.
  Status Exec(const char* sql, std::string_view what) {
    int rc = sqlite3_exec(db.get(), sql, nullptr, nullptr, nullptr);
    return rc == SQLITE_OK ? Status::OK() : Error(rc, what);
  }
};

// One use of a cached statement: binds in order, steps, reads columns, and resets the
// statement (clearing its bindings) when it goes out of scope.
class Stmt {
 public:
  Stmt(const Connection& impl, sqlite3_stmt* s, std::string what)
      : impl_(impl), s_(s), what_(std::move(what)) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Strings are bound without a copy: they must outlive the Stmt (they do: the caller's).
  Stmt& Text(std::string_view v) {
    return Check(sqlite3_bind_text(s_, ++n_, v.data(), static_cast<int>(v.size()),
                                   SQLITE_STATIC));
  }
  Stmt& Int(int64_t v) { return Check(sqlite3_bind_int64(s_, ++n_, v)); }
  Stmt& U64(uint64_t v) { return Int(static_cast<int64_t>(v)); }  // the bits, wrapped
  Stmt& Real(double v) { return Check(sqlite3_bind_double(s_, ++n_, v)); }
  Stmt& Blob(std::string_view v) {
    return Check(sqlite3_bind_blob(s_, ++n_, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
  }

  // True with a row to read, false when done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return Err(impl_.Error(bind_rc_, what_));
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Err(impl_.Error(rc, what_));
  }
  Status Run() {
    auto r = Step();
    if (!r) return r.error();
    return Status::OK();
  }

  std::string ColText(int i) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }
  int64_t ColInt(int i) const { return sqlite3_column_int64(s_, i); }
  uint64_t ColU64(int i) const { return static_cast<uint64_t>(ColInt(i)); }
  uint32_t ColU32(int i) const { return static_cast<uint32_t>(ColInt(i)); }
  int32_t ColI32(int i) const { return static_cast<int32_t>(ColInt(i)); }
  double ColReal(int i) const { return sqlite3_column_double(s_, i); }
  std::string ColBlob(int i) const {
    const auto* p = static_cast<const char*>(sqlite3_column_blob(s_, i));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, i))) : std::string();
  }

  const std::string& what() const { return what_; }

 private:
  Stmt& Check(int rc) {
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    return *this;
  }
  const Connection& impl_;
  sqlite3_stmt* s_;
  std::string what_;
  int n_ = 0;
  int bind_rc_ = SQLITE_OK;
};

Status BadValue(const std::string& path, std::string_view what, std::string_view column,
                std::string_view value) {
  return Status::Corruption(
      fmt::format("{}: {}: unknown {} '{}' (written by another augur?)", path, what, column,
                  value));
}

constexpr std::string_view kWorkflowColumns =
    "id, name, spec_yaml, origin, state, submitted_ns, finished_ns, deadline_ns, boost, "
    "boost_until_ns, spent, error";

Result<WorkflowRecord> ReadWorkflow(const std::string& path, const Stmt& q) {
  WorkflowRecord w;
  w.id = q.ColText(0);
  w.name = q.ColText(1);
  w.spec_yaml = q.ColText(2);
  w.origin = q.ColText(3);
  std::string state = q.ColText(4);
  auto s = WorkflowStateFromName(state);
  if (!s) return Err(BadValue(path, q.what(), "workflow state", state));
  w.state = *s;
  w.submitted_ns = q.ColInt(5);
  w.finished_ns = q.ColInt(6);
  w.deadline_ns = q.ColInt(7);
  w.boost = q.ColReal(8);
  w.boost_until_ns = q.ColInt(9);
  w.spent = q.ColReal(10);
  w.error = q.ColText(11);
  return w;
}

}  // namespace

struct WorkflowStore::Impl : Connection {
  int tx_depth = 0;
  Status tx_failed;  // an inner Transaction's failure: the outer one rolls back
};

// AUGUR_RETURN_IF_ERROR for functions returning a Result.
#define AUGUR_STORE_RETURN_ERR(expr)          \
  do {                                        \
    ::augur::Status _augur_st = (expr);       \
    if (!_augur_st.ok()) return Err(_augur_st); \
  } while (0)

namespace {

// Brings a database of an older schema up to kSchemaVersion, one migration per transaction
// (each re-reads the version under the write lock: another process may have migrated it).
// `created`: the file is new (its migrations are not news for the log).
Status Migrate(Connection& impl, bool created) {
  for (;;) {
    AUGUR_RETURN_IF_ERROR(impl.Exec("BEGIN IMMEDIATE", "migrating the schema"));
    auto version = [&]() -> Result<int64_t> {
      auto st = impl.Prepare("SELECT max(version) FROM augur_schema", "reading the schema version");
      if (!st) return Err(st.error());
      Stmt q(impl, *st, "reading the schema version");
      auto row = q.Step();
      if (!row) return Err(row.error());
      return q.ColInt(0);
    }();
    Status st = version.has_value() ? Status::OK() : version.error();
    if (st.ok() && *version >= kSchemaVersion) {
      return impl.Exec("COMMIT", "migrating the schema");
    }
    if (st.ok()) {
      const int64_t to = *version + 1;
      st = impl.Exec(std::string(kMigrations[*version - 1]).c_str(),
                     fmt::format("migrating the schema to version {}", to));
      if (st.ok()) {
        st = impl.Exec(fmt::format("UPDATE augur_schema SET version = {}", to).c_str(),
                       fmt::format("migrating the schema to version {}", to));
      }
      if (st.ok()) st = impl.Exec("COMMIT", "migrating the schema");
      if (st.ok()) {
        if (!created) spdlog::info("{}: schema migrated to version {}", impl.path, to);
        continue;
      }
    }
    if (!sqlite3_get_autocommit(impl.db.get())) (void)impl.Exec("ROLLBACK", "migrating");
    return st;
  }
}

}  // namespace

WorkflowStore::WorkflowStore(std::unique_ptr<Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {}

WorkflowStore::~WorkflowStore() = default;

Result<std::unique_ptr<WorkflowStore>> WorkflowStore::Open(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    AUGUR_STORE_RETURN_ERR(MakeDirs(path.substr(0, slash)));
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) {
    if (!impl->db) return Err(Status::Internal(fmt::format("{}: opening: out of memory", path)));
    return Err(impl->Error(rc, "opening"));
  }
  sqlite3_extended_result_codes(impl->db.get(), 1);
  sqlite3_busy_timeout(impl->db.get(), 5000);

  // Look before writing anything: nothing below may change a file that is not ours.
  auto tables = [&]() -> Result<std::pair<int64_t, bool>> {  // (tables, has augur_schema)
    auto st = impl->Prepare(
        "SELECT count(*), coalesce(sum(name = 'augur_schema'), 0) FROM sqlite_schema "
        "WHERE type = 'table'",
        "reading the schema");
    if (!st) return Err(st.error());
    Stmt q(*impl, *st, "reading the schema");
    auto row = q.Step();
    if (!row) return Err(row.error());
    return std::pair{q.ColInt(0), q.ColInt(1) != 0};
  };
  auto t = tables();
  if (!t) {
    if (t.error().IsCorruption()) {
      return Err(Status::Corruption(fmt::format(
          "{}: not an augur workflow store ({}); left untouched", path,
          sqlite3_errmsg(impl->db.get()))));
    }
    return Err(t.error());
  }
  const bool created = t->first == 0;
  if (created) {
    // A new database. Incremental vacuum first (it can only be chosen before the first
    // table, and, in WAL mode, before WAL), so that retention can give pages back in bounded
    // steps; then WAL (it cannot change inside a transaction), then the schema under a write
    // lock, checking again in case another process created it meanwhile.
    AUGUR_STORE_RETURN_ERR(
        impl->Exec("PRAGMA auto_vacuum=INCREMENTAL", "choosing incremental vacuum"));
    auto jm = impl->Prepare("PRAGMA journal_mode=WAL", "switching to WAL");
    if (!jm) return Err(jm.error());
    {
      Stmt q(*impl, *jm, "switching to WAL");
      auto row = q.Step();
      if (!row) return Err(row.error());
      if (!*row || q.ColText(0) != "wal") {
        return Err(Status::Unavailable(fmt::format(
            "{}: switching to WAL: the file system does not allow it (journal mode {})", path,
            *row ? q.ColText(0) : std::string("unknown"))));
      }
    }
    AUGUR_STORE_RETURN_ERR(impl->Exec("BEGIN IMMEDIATE", "creating the schema"));
    auto again = tables();
    Status st;
    if (!again) {
      st = again.error();
    } else if (again->first == 0) {
      st = impl->Exec(std::string(kSchema).c_str(), "creating the schema");
      // Version 1; the migrations below bring it up to this build's.
      if (st.ok()) {
        st = impl->Exec("INSERT INTO augur_schema (version) VALUES (1)", "creating the schema");
      }
    }
    if (!st.ok()) {
      (void)impl->Exec("ROLLBACK", "creating the schema");
      return Err(st);
    }
    AUGUR_STORE_RETURN_ERR(impl->Exec("COMMIT", "creating the schema"));
    t = tables();
    if (!t) return Err(t.error());
  }
  if (!t->second) {
    return Err(Status::Corruption(fmt::format(
        "{}: an SQLite database that is not an augur workflow store (no augur_schema table); "
        "left untouched",
        path)));
  }
  {
    auto st = impl->Prepare("SELECT max(version), count(*) FROM augur_schema",
                            "reading the schema version");
    if (!st) return Err(st.error());
    Stmt q(*impl, *st, "reading the schema version");
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (q.ColInt(1) == 0) {
      return Err(Status::Corruption(fmt::format(
          "{}: the augur_schema table has no version row; left untouched", path)));
    }
    int64_t version = q.ColInt(0);
    if (version > kSchemaVersion) {
      return Err(Status::FailedPrecondition(fmt::format(
          "{}: schema version {} was written by a newer augur (this one knows up to {}); left "
          "untouched",
          path, version, kSchemaVersion)));
    }
    if (version < 1) {
      return Err(Status::Corruption(
          fmt::format("{}: bad schema version {}; left untouched", path, version)));
    }
  }
  AUGUR_STORE_RETURN_ERR(Migrate(*impl, created));
  AUGUR_STORE_RETURN_ERR(impl->Exec(std::string(kAddedTables).c_str(), "adding tables"));
  // Ours: the connection's settings. journal_mode is persistent; set again in case the file
  // was copied or restored without it.
  // A 16 MiB page cache: a big transaction (a year of history) stays in memory until COMMIT.
  // The WAL file is cut back to 16 MiB after each checkpoint, so that one big transaction
  // does not leave a WAL as big as itself for good.
  for (const char* pragma : {"PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL",
                             "PRAGMA cache_size=-16384", "PRAGMA journal_size_limit=16777216"}) {
    auto st = impl->Prepare(pragma, "setting up the connection");
    if (!st) return Err(st.error());
    Stmt q(*impl, *st, fmt::format("setting up the connection ({})", pragma));
    while (true) {
      auto row = q.Step();
      if (!row) return Err(row.error());
      if (!*row) break;
    }
  }
  return std::unique_ptr<WorkflowStore>(new WorkflowStore(std::move(impl), path));
}

Status WorkflowStore::Transaction(const std::function<Status()>& body) {
  Impl& d = *impl_;
  if (d.tx_depth > 0) {
    // Joined: a failure here fails the outer transaction even if its body ignores it.
    ++d.tx_depth;
    Status st = body();
    --d.tx_depth;
    if (!st.ok() && d.tx_failed.ok()) d.tx_failed = st;
    return st;
  }
  AUGUR_RETURN_IF_ERROR(d.Exec("BEGIN IMMEDIATE", "starting a transaction"));
  d.tx_depth = 1;
  d.tx_failed = Status::OK();
  struct Guard {  // rolls back when `body` throws
    Impl& d;
    bool done = false;
    ~Guard() {
      if (!done) {
        d.tx_depth = 0;
        if (!sqlite3_get_autocommit(d.db.get())) (void)d.Exec("ROLLBACK", "rolling back");
      }
    }
  } guard{d};
  Status st = body();
  guard.done = true;
  d.tx_depth = 0;
  if (st.ok() && !d.tx_failed.ok()) st = d.tx_failed;
  d.tx_failed = Status::OK();
  if (st.ok()) {
    st = d.Exec("COMMIT", "committing");
    if (st.ok()) return st;
  }
  // SQLite may already have rolled back (a full disk does that); roll back what is left.
  if (!sqlite3_get_autocommit(d.db.get())) (void)d.Exec("ROLLBACK", "rolling back");
  return st;
}

Status WorkflowStore::PutWorkflow(const WorkflowRecord& w) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO workflows (id, name, spec_yaml, origin, state, submitted_ns, "
      "finished_ns, deadline_ns, boost, boost_until_ns, spent, error) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  std::string what = fmt::format("saving workflow {}", w.id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(w.id).Text(w.name).Text(w.spec_yaml).Text(w.origin).Text(WorkflowStateName(w.state));
  q.Int(w.submitted_ns).Int(w.finished_ns).Int(w.deadline_ns).Real(w.boost);
  q.Int(w.boost_until_ns).Real(w.spent).Text(w.error);
  return q.Run();
}

Status WorkflowStore::PutShard(const ShardRecord& s) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO shards (workflow_id, stage, idx, shard_id, range_begin, "
      "range_end, items, state, attempts, want_cpu, want_memory, min_cpu, min_memory, "
      "not_before_ns, winner, output_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?)";
  std::string what = fmt::format("saving shard {}/{}/{}", s.workflow_id, s.stage, s.index);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  std::string items = EncodeList(s.items);
  Stmt q(*impl_, *st, std::move(what));
  q.Text(s.workflow_id).Text(s.stage).Int(s.index).Text(s.shard_id).U64(s.begin).U64(s.end);
  q.Text(items).Text(ShardStateName(s.state)).Int(s.attempts);
  q.Real(s.want.cpu).U64(s.want.memory).Real(s.min.cpu).U64(s.min.memory);
  q.Int(s.not_before_ns).Text(s.winner).Text(s.output_path);
  return q.Run();
}

Status WorkflowStore::PutAttempt(const AttemptRecord& a) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO attempts (attempt_id, workflow_id, stage, shard_index, attempt, "
      "backend, instance, invocation, grant_cpu, grant_memory, state, started_ns, finished_ns, "
      "exit_code, term_signal, cpu_seconds, peak_memory_bytes, bytes_read, bytes_written, "
      "output_path, error, resource_class, host, lease_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  std::string what = fmt::format("saving attempt {}", a.attempt_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(a.attempt_id).Text(a.workflow_id).Text(a.stage).Int(a.shard_index).Int(a.attempt);
  q.Text(a.backend).Text(a.instance).Text(a.invocation).Real(a.grant.cpu).U64(a.grant.memory);
  q.Text(AttemptStateName(a.state)).Int(a.started_ns).Int(a.finished_ns).Int(a.exit_code);
  q.Int(a.term_signal).Real(a.cpu_seconds).U64(a.peak_memory_bytes).U64(a.bytes_read);
  q.U64(a.bytes_written).Text(a.output_path).Text(a.error).Text(a.resource_class).Text(a.host);
  q.Text(a.lease_id);
  return q.Run();
}

Status WorkflowStore::PutStageOutput(const std::string& workflow_id, const std::string& stage,
                                     const std::string& output_path) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO stage_outputs (workflow_id, stage, output_path) VALUES (?, ?, ?)";
  std::string what = fmt::format("saving the output of stage {}/{}", workflow_id, stage);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(workflow_id).Text(stage).Text(output_path);
  return q.Run();
}

Status WorkflowStore::AppendHistory(const HistoryRecord& h) {
  // History is append-only: a second append of the same attempt keeps the first row.
  static constexpr std::string_view kSql =
      "INSERT OR IGNORE INTO history (attempt_id, workflow_id, workflow_name, stage, "
      "shard_index, range_begin, range_end, items, state, exit_code, started_ns, wall_seconds, "
      "cpu_seconds, peak_memory_bytes, bytes_read, bytes_written, grant_cpu, grant_memory, "
      "cost, host) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  std::string what = fmt::format("appending history of attempt {}", h.attempt_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(h.attempt_id).Text(h.workflow_id).Text(h.workflow_name).Text(h.stage);
  q.Int(h.shard_index).U64(h.range_begin).U64(h.range_end).Int(h.items);
  q.Text(AttemptStateName(h.state)).Int(h.exit_code).Int(h.started_ns).Real(h.wall_seconds);
  q.Real(h.cpu_seconds).U64(h.peak_memory_bytes).U64(h.bytes_read).U64(h.bytes_written);
  q.Real(h.grant.cpu).U64(h.grant.memory).Real(h.cost).Text(h.host);
  return q.Run();
}

Status WorkflowStore::PutEvent(const EventRecord& e) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO events (name, workflow, expected, at_ns, created_ns) "
      "VALUES (?, ?, ?, ?, ?)";
  std::string what = fmt::format("saving event {}", e.name);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(e.name).Text(e.workflow).Real(e.expected).Int(e.at_ns).Int(e.created_ns);
  return q.Run();
}

Result<std::vector<EventRecord>> WorkflowStore::Events(const std::string& workflow) const {
  static constexpr std::string_view kAll =
      "SELECT name, workflow, expected, at_ns, created_ns FROM events ORDER BY at_ns, name";
  static constexpr std::string_view kOne =
      "SELECT name, workflow, expected, at_ns, created_ns FROM events WHERE workflow = ? "
      "ORDER BY at_ns, name";
  std::string what =
      workflow.empty() ? "listing events" : fmt::format("listing the events of {}", workflow);
  auto st = impl_->Prepare(workflow.empty() ? kAll : kOne, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  if (!workflow.empty()) q.Text(workflow);
  std::vector<EventRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    EventRecord e;
    e.name = q.ColText(0);
    e.workflow = q.ColText(1);
    e.expected = q.ColReal(2);
    e.at_ns = q.ColInt(3);
    e.created_ns = q.ColInt(4);
    out.push_back(std::move(e));
  }
  return out;
}

Result<PruneResult> WorkflowStore::PruneHistory(int64_t cutoff_ns, size_t max_rows) {
  Impl& d = *impl_;
  max_rows = std::max<size_t>(max_rows, 1);
  PruneResult r;
  int64_t budget = static_cast<int64_t>(std::min<size_t>(max_rows, INT32_MAX));
  // Runs a DELETE bound to (cutoff or id, limit); returns the rows it deleted.
  auto del = [&](std::string_view sql, std::string_view what, auto bind) -> Result<int64_t> {
    auto st = d.Prepare(sql, what);
    if (!st) return Err(st.error());
    Stmt q(d, *st, std::string(what));
    bind(q);
    AUGUR_STORE_RETURN_ERR(q.Run());
    return int64_t{sqlite3_changes(d.db.get())};
  };
  Status st = Transaction([&]() -> Status {
    auto h =
        del("DELETE FROM history WHERE rowid IN (SELECT rowid FROM history WHERE "
            "started_ns < ?1 ORDER BY started_ns LIMIT ?2)",
            "pruning history", [&](Stmt& q) { q.Int(cutoff_ns).Int(budget); });
    if (!h) return h.error();
    r.history_rows = size_t(*h);
    budget -= *h;
    // Finished workflows, oldest first: a workflow's rows go before its own row, so that a
    // batch that runs out of budget midway leaves it to the next.
    while (budget > 0) {
      std::string id;
      {
        static constexpr std::string_view kSql =
            "SELECT id FROM workflows WHERE finished_ns > 0 AND finished_ns < ? AND "
            "state != 'running' ORDER BY finished_ns LIMIT 1";
        auto sel = d.Prepare(kSql, "finding finished workflows to prune");
        if (!sel) return sel.error();
        Stmt q(d, *sel, "finding finished workflows to prune");
        q.Int(cutoff_ns);
        auto row = q.Step();
        if (!row) return row.error();
        if (!*row) break;
        id = q.ColText(0);
      }
      bool whole = true;
      for (std::string_view sql :
           {std::string_view("DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts "
                             "WHERE workflow_id = ?1 LIMIT ?2)"),
            std::string_view("DELETE FROM shards WHERE rowid IN (SELECT rowid FROM shards "
                             "WHERE workflow_id = ?1 LIMIT ?2)"),
            std::string_view("DELETE FROM stage_outputs WHERE rowid IN (SELECT rowid FROM "
                             "stage_outputs WHERE workflow_id = ?1 LIMIT ?2)")}) {
        const int64_t limit = budget;
        auto n = del(sql, fmt::format("pruning workflow {}", id),
                     [&](Stmt& q) { q.Text(id).Int(limit); });
        if (!n) return n.error();
        r.other_rows += size_t(*n);
        budget -= *n;
        if (*n == limit) {  // maybe more of them: the next batch goes on
          whole = false;
          break;
        }
      }
      if (!whole) break;
      auto n = del("DELETE FROM workflows WHERE id = ?1", fmt::format("pruning workflow {}", id),
                   [&](Stmt& q) { q.Text(id); });
      if (!n) return n.error();
      --budget;
      ++r.workflows;
      r.workflow_ids.push_back(std::move(id));
    }
    if (budget > 0) {
      const int64_t limit = budget;
      auto n =
          del("DELETE FROM events WHERE rowid IN (SELECT rowid FROM events WHERE "
              "at_ns < ?1 ORDER BY at_ns LIMIT ?2)",
              "pruning events", [&](Stmt& q) { q.Int(cutoff_ns).Int(limit); });
      if (!n) return n.error();
      r.other_rows += size_t(*n);
      budget -= *n;
    }
    return Status::OK();
  });
  if (!st.ok()) return Err(st);
  r.more = budget <= 0;
  // Give free pages back when many are free (a backlog was pruned); a few are better left
  // for the next inserts to reuse. Only files created with incremental vacuum can.
  auto pragma = [&](const char* sql) -> Result<int64_t> {
    auto p = d.Prepare(sql, "reading the page counts");
    if (!p) return Err(p.error());
    Stmt q(d, *p, "reading the page counts");
    auto row = q.Step();
    if (!row) return Err(row.error());
    return *row ? q.ColInt(0) : 0;
  };
  auto mode = pragma("PRAGMA auto_vacuum");
  auto free_pages = pragma("PRAGMA freelist_count");
  auto pages = pragma("PRAGMA page_count");
  if (!mode || !free_pages || !pages) {
    return Err(!mode ? mode.error() : !free_pages ? free_pages.error() : pages.error());
  }
  if (*mode == 2 && *free_pages > int64_t(max_rows) && *free_pages * 4 > *pages) {
    AUGUR_STORE_RETURN_ERR(d.Exec(fmt::format("PRAGMA incremental_vacuum({})", max_rows).c_str(),
                                  "giving free pages back"));
    auto after = pragma("PRAGMA freelist_count");
    if (!after) return Err(after.error());
    r.pages_released = size_t(std::max<int64_t>(0, *free_pages - *after));
    if (*after > int64_t(max_rows)) r.more = true;
  }
  return r;
}

Result<std::vector<WorkflowRecord>> WorkflowStore::Submissions(int64_t since_ns,
                                                              size_t limit) const {
  static constexpr std::string_view kSql =
      "SELECT id, name, submitted_ns FROM workflows WHERE submitted_ns >= ? "
      "ORDER BY submitted_ns DESC, id DESC LIMIT ?";
  auto st = impl_->Prepare(kSql, "reading the submissions");
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, "reading the submissions");
  q.Int(since_ns).Int(limit == 0 ? -1 : int64_t(limit));
  std::vector<WorkflowRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    WorkflowRecord w;
    w.id = q.ColText(0);
    w.name = q.ColText(1);
    w.submitted_ns = q.ColInt(2);
    out.push_back(std::move(w));
  }
  return out;
}

Result<std::optional<WorkflowRecord>> WorkflowStore::LatestNamed(const std::string& name) const {
  static const std::string kSql = fmt::format(
      "SELECT {} FROM workflows WHERE name = ? ORDER BY submitted_ns DESC, id DESC LIMIT 1",
      kWorkflowColumns);
  return OneWorkflow(kSql, name, fmt::format("reading the newest workflow named {}", name));
}

Result<std::optional<WorkflowRecord>> WorkflowStore::GetWorkflow(const std::string& id) const {
  static const std::string kSql =
      fmt::format("SELECT {} FROM workflows WHERE id = ?", kWorkflowColumns);
  return OneWorkflow(kSql, id, fmt::format("reading workflow {}", id));
}

Result<std::optional<WorkflowRecord>> WorkflowStore::OneWorkflow(const std::string& sql,
                                                                 const std::string& key,
                                                                 std::string what) const {
  auto st = impl_->Prepare(sql, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  q.Text(key);
  auto row = q.Step();
  if (!row) return Err(row.error());
  if (!*row) return std::optional<WorkflowRecord>();
  auto w = ReadWorkflow(path_, q);
  if (!w) return Err(w.error());
  return std::optional<WorkflowRecord>(std::move(*w));
}

Result<std::vector<WorkflowRecord>> WorkflowStore::Workflows(bool running_only) const {
  static const std::string kAll = fmt::format(
      "SELECT {} FROM workflows ORDER BY submitted_ns DESC, id DESC", kWorkflowColumns);
  static const std::string kRunning = fmt::format(
      "SELECT {} FROM workflows WHERE state = 'running' ORDER BY submitted_ns DESC, id DESC",
      kWorkflowColumns);
  std::string what = running_only ? "listing running workflows" : "listing workflows";
  auto st = impl_->Prepare(running_only ? kRunning : kAll, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  std::vector<WorkflowRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    auto w = ReadWorkflow(path_, q);
    if (!w) return Err(w.error());
    out.push_back(std::move(*w));
  }
  return out;
}

Result<std::vector<ShardRecord>> WorkflowStore::Shards(const std::string& workflow_id) const {
  static constexpr std::string_view kSql =
      "SELECT workflow_id, stage, idx, shard_id, range_begin, range_end, items, state, "
      "attempts, want_cpu, want_memory, min_cpu, min_memory, not_before_ns, winner, "
      "output_path FROM shards WHERE workflow_id = ? ORDER BY stage, idx";
  std::string what = fmt::format("reading the shards of {}", workflow_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  q.Text(workflow_id);
  std::vector<ShardRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    ShardRecord s;
    s.workflow_id = q.ColText(0);
    s.stage = q.ColText(1);
    s.index = q.ColU32(2);
    s.shard_id = q.ColText(3);
    s.begin = q.ColU64(4);
    s.end = q.ColU64(5);
    auto items = DecodeList(q.ColText(6));
    if (!items) {
      return Err(Status::Corruption(fmt::format("{}: {}: shard {}/{}: malformed items", path_,
                                                q.what(), s.stage, s.index)));
    }
    s.items = std::move(*items);
    std::string state = q.ColText(7);
    auto ss = ShardStateFromName(state);
    if (!ss) return Err(BadValue(path_, q.what(), "shard state", state));
    s.state = *ss;
    s.attempts = q.ColU32(8);
    s.want = {q.ColReal(9), q.ColU64(10)};
    s.min = {q.ColReal(11), q.ColU64(12)};
    s.not_before_ns = q.ColInt(13);
    s.winner = q.ColText(14);
    s.output_path = q.ColText(15);
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<AttemptRecord>> WorkflowStore::Attempts(
    const std::string& workflow_id) const {
  static constexpr std::string_view kSql =
      "SELECT attempt_id, workflow_id, stage, shard_index, attempt, backend, instance, "
      "invocation, grant_cpu, grant_memory, state, started_ns, finished_ns, exit_code, "
      "term_signal, cpu_seconds, peak_memory_bytes, bytes_read, bytes_written, output_path, "
      "error, resource_class, host, lease_id FROM attempts WHERE workflow_id = ? "
      "ORDER BY stage, shard_index, attempt, "
      "attempt_id";
  std::string what = fmt::format("reading the attempts of {}", workflow_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  q.Text(workflow_id);
  std::vector<AttemptRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    AttemptRecord a;
    a.attempt_id = q.ColText(0);
    a.workflow_id = q.ColText(1);
    a.stage = q.ColText(2);
    a.shard_index = q.ColU32(3);
    a.attempt = q.ColU32(4);
    a.backend = q.ColText(5);
    a.instance = q.ColText(6);
    a.invocation = q.ColText(7);
    a.grant = {q.ColReal(8), q.ColU64(9)};
    std::string state = q.ColText(10);
    auto as = AttemptStateFromName(state);
    if (!as) return Err(BadValue(path_, q.what(), "attempt state", state));
    a.state = *as;
    a.started_ns = q.ColInt(11);
    a.finished_ns = q.ColInt(12);
    a.exit_code = q.ColI32(13);
    a.term_signal = q.ColI32(14);
    a.cpu_seconds = q.ColReal(15);
    a.peak_memory_bytes = q.ColU64(16);
    a.bytes_read = q.ColU64(17);
    a.bytes_written = q.ColU64(18);
    a.output_path = q.ColText(19);
    a.error = q.ColText(20);
    a.resource_class = q.ColText(21);
    a.host = q.ColText(22);
    a.lease_id = q.ColText(23);
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::optional<std::string>> WorkflowStore::StageOutput(const std::string& workflow_id,
                                                              const std::string& stage) const {
  static constexpr std::string_view kSql =
      "SELECT output_path FROM stage_outputs WHERE workflow_id = ? AND stage = ?";
  std::string what = fmt::format("reading the output of stage {}/{}", workflow_id, stage);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  q.Text(workflow_id).Text(stage);
  auto row = q.Step();
  if (!row) return Err(row.error());
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(q.ColText(0));
}

Result<std::vector<HistoryRecord>> WorkflowStore::History(
    const std::optional<std::string>& workflow, size_t limit) const {
  static constexpr std::string_view kColumns =
      "attempt_id, workflow_id, workflow_name, stage, shard_index, range_begin, range_end, "
      "items, state, exit_code, started_ns, wall_seconds, cpu_seconds, peak_memory_bytes, "
      "bytes_read, bytes_written, grant_cpu, grant_memory, cost, host";
  static const std::string kAll = fmt::format(
      "SELECT {} FROM history ORDER BY started_ns DESC, attempt_id DESC LIMIT ?", kColumns);
  // By id or by name: the newest `limit` of each through its (key, started_ns) index, then
  // merged (a plain OR would read every row of a busy name, or scan the whole table).
  static const std::string kOne = fmt::format(
      "SELECT {} FROM history WHERE attempt_id IN ("
      "SELECT attempt_id FROM (SELECT attempt_id FROM history WHERE workflow_id = ?1 "
      "ORDER BY started_ns DESC, attempt_id DESC LIMIT ?2) UNION ALL "
      "SELECT attempt_id FROM (SELECT attempt_id FROM history WHERE workflow_name = ?1 "
      "ORDER BY started_ns DESC, attempt_id DESC LIMIT ?2)) "
      "ORDER BY started_ns DESC, attempt_id DESC LIMIT ?2",
      kColumns);
  std::string what =
      workflow ? fmt::format("reading the history of {}", *workflow) : "reading the history";
  auto st = impl_->Prepare(workflow ? kOne : kAll, what);
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, std::move(what));
  if (workflow) q.Text(*workflow);
  // 0: no limit (SQLite's LIMIT -1).
  q.Int(limit == 0 || limit > static_cast<size_t>(INT64_MAX) ? -1 : static_cast<int64_t>(limit));
  std::vector<HistoryRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    HistoryRecord h;
    h.attempt_id = q.ColText(0);
    h.workflow_id = q.ColText(1);
    h.workflow_name = q.ColText(2);
    h.stage = q.ColText(3);
    h.shard_index = q.ColU32(4);
    h.range_begin = q.ColU64(5);
    h.range_end = q.ColU64(6);
    h.items = q.ColU32(7);
    std::string state = q.ColText(8);
    auto as = AttemptStateFromName(state);
    if (!as) return Err(BadValue(path_, q.what(), "attempt state", state));
    h.state = *as;
    h.exit_code = q.ColI32(9);
    h.started_ns = q.ColInt(10);
    h.wall_seconds = q.ColReal(11);
    h.cpu_seconds = q.ColReal(12);
    h.peak_memory_bytes = q.ColU64(13);
    h.bytes_read = q.ColU64(14);
    h.bytes_written = q.ColU64(15);
    h.grant = {q.ColReal(16), q.ColU64(17)};
    h.cost = q.ColReal(18);
    h.host = q.ColText(19);
    out.push_back(std::move(h));
  }
  return out;
}

Status WorkflowStore::PutWarm(const WarmRecord& w) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO prewarm (name, backend, instance, cpu, memory, created_ns) "
      "VALUES (?, ?, ?, ?, ?, ?)";
  std::string what = fmt::format("saving warm instance {}", w.name);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(w.name).Text(w.backend).Text(w.instance).Real(w.shape.cpu).U64(w.shape.memory);
  q.Int(w.created_ns);
  return q.Run();
}

Status WorkflowStore::DeleteWarm(const std::string& name) {
  static constexpr std::string_view kSql = "DELETE FROM prewarm WHERE name = ?";
  std::string what = fmt::format("forgetting warm instance {}", name);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(name);
  return q.Run();
}

Result<std::vector<WarmRecord>> WorkflowStore::Warm() const {
  static constexpr std::string_view kSql =
      "SELECT name, backend, instance, cpu, memory, created_ns FROM prewarm ORDER BY name";
  auto st = impl_->Prepare(kSql, "listing warm instances");
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, "listing warm instances");
  std::vector<WarmRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    WarmRecord w;
    w.name = q.ColText(0);
    w.backend = q.ColText(1);
    w.instance = q.ColText(2);
    w.shape = {q.ColReal(3), q.ColU64(4)};
    w.created_ns = q.ColInt(5);
    out.push_back(std::move(w));
  }
  return out;
}


}  // namespace augur::workflow

namespace augur::workflow {

// --- Replicated workflows (schema 4) ---------------------------------------------------

Status WorkflowStore::PutReplica(const std::string& id, std::string_view snapshot) {
  static constexpr std::string_view kSql =
      "INSERT OR REPLACE INTO replicas (id, snapshot) VALUES (?, ?)";
  std::string what = fmt::format("saving the replicated state of {}", id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(id).Blob(snapshot);
  return q.Run();
}

Status WorkflowStore::DeleteReplica(const std::string& id) {
  static constexpr std::string_view kSql = "DELETE FROM replicas WHERE id = ?";
  std::string what = fmt::format("forgetting the replicated state of {}", id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(id);
  return q.Run();
}

Result<std::vector<std::pair<std::string, std::string>>> WorkflowStore::Replicas() const {
  static constexpr std::string_view kSql = "SELECT id, snapshot FROM replicas ORDER BY id";
  auto st = impl_->Prepare(kSql, "listing replicated workflows");
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, "listing replicated workflows");
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    out.emplace_back(q.ColText(0), q.ColBlob(1));
  }
  return out;
}

Status WorkflowStore::DeleteWorkflow(const std::string& id) {
  return Transaction([&]() -> Status {
    for (std::string_view sql : {std::string_view("DELETE FROM attempts WHERE workflow_id = ?"),
                                 std::string_view("DELETE FROM shards WHERE workflow_id = ?"),
                                 std::string_view("DELETE FROM stage_outputs WHERE workflow_id = ?"),
                                 std::string_view("DELETE FROM workflows WHERE id = ?")}) {
      std::string what = fmt::format("forgetting workflow {}", id);
      auto st = impl_->Prepare(sql, what);
      if (!st) return st.error();
      Stmt q(*impl_, *st, std::move(what));
      q.Text(id);
      AUGUR_RETURN_IF_ERROR(q.Run());
    }
    return Status::OK();
  });
}

}  // namespace augur::workflow

namespace augur::workflow {

// --- Leases granted to other hosts' shards (schema 5) ---------------------------------------

Status WorkflowStore::PutLease(const LeaseRecord& l) {
  // The task's backend handles are the executor's (SetLeaseHandles): kept on a replace.
  static constexpr std::string_view kSql =
      "INSERT INTO leases (lease_id, owner, request_id, attempt_id, backend, cost_class, "
      "want_cpu, want_memory, min_cpu, min_memory, grant_cpu, grant_memory, score, ttl_ns, "
      "started, dir, output_path, owner_output, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
      "?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (lease_id) DO UPDATE SET owner = excluded.owner, "
      "request_id = excluded.request_id, attempt_id = excluded.attempt_id, "
      "backend = excluded.backend, cost_class = excluded.cost_class, "
      "want_cpu = excluded.want_cpu, want_memory = excluded.want_memory, "
      "min_cpu = excluded.min_cpu, min_memory = excluded.min_memory, "
      "grant_cpu = excluded.grant_cpu, grant_memory = excluded.grant_memory, "
      "score = excluded.score, ttl_ns = excluded.ttl_ns, started = excluded.started, "
      "dir = excluded.dir, output_path = excluded.output_path, "
      "owner_output = excluded.owner_output, result = excluded.result";
  std::string what = fmt::format("saving lease {}", l.lease_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(l.lease_id).Text(l.owner).Text(l.request_id).Text(l.attempt_id).Text(l.backend);
  q.Text(l.cost_class).Real(l.want.cpu).U64(l.want.memory).Real(l.min.cpu).U64(l.min.memory);
  q.Real(l.grant.cpu).U64(l.grant.memory).Real(l.score).Int(l.ttl_ns).Int(l.started ? 1 : 0);
  q.Text(l.dir).Text(l.output_path).Text(l.owner_output).Blob(l.result);
  return q.Run();
}

Status WorkflowStore::SetLeaseHandles(const std::string& lease_id, const std::string& instance,
                                      const std::string& invocation) {
  static constexpr std::string_view kSql =
      "UPDATE leases SET instance = ?, invocation = ? WHERE lease_id = ?";
  std::string what = fmt::format("saving the task handles of lease {}", lease_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(instance).Text(invocation).Text(lease_id);
  return q.Run();
}

Status WorkflowStore::DeleteLease(const std::string& lease_id) {
  static constexpr std::string_view kSql = "DELETE FROM leases WHERE lease_id = ?";
  std::string what = fmt::format("forgetting lease {}", lease_id);
  auto st = impl_->Prepare(kSql, what);
  if (!st) return st.error();
  Stmt q(*impl_, *st, std::move(what));
  q.Text(lease_id);
  return q.Run();
}

Result<std::vector<LeaseRecord>> WorkflowStore::Leases() const {
  static constexpr std::string_view kSql =
      "SELECT lease_id, owner, request_id, attempt_id, backend, cost_class, want_cpu, "
      "want_memory, min_cpu, min_memory, grant_cpu, grant_memory, score, ttl_ns, started, dir, "
      "output_path, owner_output, result, instance, invocation FROM leases ORDER BY lease_id";
  auto st = impl_->Prepare(kSql, "listing leases");
  if (!st) return Err(st.error());
  Stmt q(*impl_, *st, "listing leases");
  std::vector<LeaseRecord> out;
  while (true) {
    auto row = q.Step();
    if (!row) return Err(row.error());
    if (!*row) break;
    LeaseRecord l;
    l.lease_id = q.ColText(0);
    l.owner = q.ColText(1);
    l.request_id = q.ColText(2);
    l.attempt_id = q.ColText(3);
    l.backend = q.ColText(4);
    l.cost_class = q.ColText(5);
    l.want = {q.ColReal(6), q.ColU64(7)};
    l.min = {q.ColReal(8), q.ColU64(9)};
    l.grant = {q.ColReal(10), q.ColU64(11)};
    l.score = q.ColReal(12);
    l.ttl_ns = q.ColInt(13);
    l.started = q.ColInt(14) != 0;
    l.dir = q.ColText(15);
    l.output_path = q.ColText(16);
    l.owner_output = q.ColText(17);
    l.result = q.ColBlob(18);
    l.instance = q.ColText(19);
    l.invocation = q.ColText(20);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace augur::workflow
