/*
 * augur provisioning-backend plugin ABI.
 *
 * A backend provisions what a workflow shard runs in (a cgroup on this host, a VM, ...),
 * runs tasks in it and reports what they used. A backend is a shared object that exports
 * one symbol, augur_plugin_entry(), returning a table of function pointers. This header is
 * the whole contract: C only, standard headers only, no C++ types or exceptions across it.
 *
 * Isolation. augurd never dlopens a plugin itself: each plugin runs inside its own
 * augur-plugin-host process, so a plugin that crashes, hangs or returns garbage takes down
 * only that process. A plugin may keep global state and threads, but must not assume it
 * lives as long as augurd: after a restart the host calls recover() with the handles it
 * persisted.
 *
 * Versioning. The table starts with abi_major, abi_minor and struct_size. The host refuses a
 * plugin whose major differs from AUGUR_PLUGIN_ABI_MAJOR or whose minor is greater than the
 * host's. Fields are only ever appended (never inserted or reordered); the host reads a field
 * only when struct_size says the plugin's table has it. Every struct passed across the ABI
 * starts with struct_size for the same reason: set it to sizeof() of your struct.
 *   - Structs the host passes in (augur_task, ...) carry the host's struct_size, which is
 *     never smaller than the plugin's (an older host refuses a newer minor): a plugin reads
 *     the fields it knows and ignores the rest.
 *   - Out-structs are allocated by the host as the plugin's declared minor defines them (a
 *     minor-0 plugin gets ABI 1.0's augur_task_status, 48 bytes). A plugin may write its own
 *     sizeof() back into struct_size; the host then reads only the fields inside it. For
 *     augur_task_status (the one out-struct a minor has grown so far) a value smaller than
 *     ABI 1.0's struct or larger than what the host allocated is a broken answer.
 * Minor versions:
 *   1.0  the functions and structs below without the fields marked "1.1".
 *   1.1  augur_invocation_meta.origin_host; augur_task_status.bytes_read and bytes_written.
 *
 * Ownership (read this once; each declaration repeats what applies):
 *  - Pointers the host passes in (requests, strings, arrays) are host-owned and valid only
 *    for the duration of the call. Copy what you keep.
 *  - Strings and arrays a plugin returns inside an out-struct are plugin-owned and must stay
 *    valid until the next call of the same function on the same augur_plugin, or destroy().
 *    The host copies them at once, and never calls describe() (the one function returning
 *    such strings) from two threads at once, so one per-plugin buffer is enough.
 *  - Out-structs (augur_backend_info, augur_instance_info, augur_task_status) are
 *    host-allocated; the host sets their struct_size to the size it allocated before the
 *    call. A plugin built against a newer minor writes only the fields that fit in it.
 *  - Handles (instance and invocation ids) are written by the plugin into host-provided
 *    char[AUGUR_HANDLE_MAX] buffers, NUL-terminated. They are opaque to the host, persisted
 *    across agent restarts, and must be printable ASCII.
 *  - last_error() returns a plugin-owned string valid until the next call on that plugin
 *    from the same thread.
 *
 * Threading. The host may call any function except init/destroy (and describe, see above)
 * from several threads at once, with the same augur_plugin. A plugin that cannot cope
 * serialises internally.
 * Calls should return promptly; the host treats a call that takes longer than its timeout
 * (default 10 s, poll() excepted for its own timeout_ms) as a hung plugin.
 */
#ifndef AUGUR_PLUGIN_H_
#define AUGUR_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AUGUR_PLUGIN_ABI_MAJOR 1
#define AUGUR_PLUGIN_ABI_MINOR 1

/* Size of every handle buffer, including the terminating NUL. */
#define AUGUR_HANDLE_MAX 128

#if defined(__GNUC__)
#define AUGUR_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define AUGUR_PLUGIN_EXPORT
#endif

/* Result codes. NOTE: values are part of the ABI; append only. */
typedef int32_t augur_rc;
#define AUGUR_OK 0
#define AUGUR_ERR_INVALID 1      /* a bad argument; last_error() says which */
#define AUGUR_ERR_NOT_FOUND 2    /* no such instance or invocation */
#define AUGUR_ERR_UNSUPPORTED 3  /* this backend cannot do that (say why in last_error) */
#define AUGUR_ERR_NO_CAPACITY 4  /* cannot grant even the minimum asked for */
#define AUGUR_ERR_IO 5           /* the system under the backend failed */
#define AUGUR_ERR_INTERNAL 6     /* a bug or an unexpected state in the plugin */
#define AUGUR_ERR_BUSY 7         /* try again later (e.g. instance still starting) */
#define AUGUR_ERR_TIMEOUT 8      /* poll() timed out before the task finished */

/* Log levels for augur_host_api.log. */
#define AUGUR_LOG_DEBUG 0
#define AUGUR_LOG_INFO 1
#define AUGUR_LOG_WARN 2
#define AUGUR_LOG_ERROR 3

typedef struct augur_kv {
  const char* key;
  const char* value;
} augur_kv;

/* An amount of resources. cpu_cores may be fractional (1.5 = one and a half cores). */
typedef struct augur_resources {
  double cpu_cores;
  uint64_t memory_bytes;
} augur_resources;

/* Services the host gives the plugin, through init(). Host-owned; valid until destroy(). */
typedef struct augur_host_api {
  uint32_t struct_size;
  void* host_ctx; /* pass back to the callbacks below */
  /* Logs a line into augurd's log (journald), tagged with the plugin's name. Thread-safe. */
  void (*log)(void* host_ctx, int32_t level, const char* message);
  /* CLOCK_REALTIME in nanoseconds, as the agent sees it. Thread-safe. */
  int64_t (*now_ns)(void* host_ctx);
  /* The plugin's section of the agent config (plugins.config.<name>), flattened to
   * key/value strings ("cgroup_root" -> "augur"). */
  const augur_kv* config;
  uint32_t config_len;
  /* A directory the plugin may keep state in; it survives agent restarts. */
  const char* state_dir;
} augur_host_api;

/* Price of one unit of a resource class, for cost-aware placement. Returned as an array, so
 * its size is frozen (as is augur_kv's): a later minor adds a new array, never a field here. */
typedef struct augur_cost {
  const char* resource_class;  /* "on-demand", "spot", "local", ... */
  double per_core_hour;        /* in the operator's currency unit */
  double per_gib_hour;
  int32_t preemptible;         /* non-zero: instances of this class may be taken away */
} augur_cost;

/* What describe() reports. Strings and arrays are plugin-owned (see header comment). */
typedef struct augur_backend_info {
  uint32_t struct_size;
  const char* name;           /* e.g. "process" */
  const char* version;        /* the plugin's own version, e.g. "1.2.0" */
  int32_t healthy;            /* non-zero when it can provision now */
  const char* health_detail;  /* why not, or "" */
  augur_resources capacity;   /* total this backend can ever grant */
  augur_resources available;  /* not currently granted */
  const augur_cost* costs;
  uint32_t costs_len;
  const augur_kv* labels;     /* e.g. zone=eu-1a, hypervisor=kvm */
  uint32_t labels_len;
} augur_backend_info;

/* A soft reservation: what is wanted and the least that will do. */
typedef struct augur_alloc_request {
  uint32_t struct_size;
  const char* name;          /* host-chosen, unique among live instances; usable in ids */
  augur_resources want;
  augur_resources min;       /* min <= want; the backend may grant anything in between */
  const char* template_ref;  /* image / template / "" for the backend's default */
  const char* resource_class;/* "" for the backend's default */
  const augur_kv* labels;
  uint32_t labels_len;
} augur_alloc_request;

/* Instance states. NOTE: values are part of the ABI; append only. */
#define AUGUR_INSTANCE_PENDING 0
#define AUGUR_INSTANCE_READY 1
#define AUGUR_INSTANCE_FAILED 2
#define AUGUR_INSTANCE_GONE 3

typedef struct augur_instance_info {
  uint32_t struct_size;
  char handle[AUGUR_HANDLE_MAX];  /* written by the plugin */
  augur_resources granted;        /* what the instance actually has */
  int32_t state;                  /* AUGUR_INSTANCE_* */
} augur_instance_info;

/* Who a task belongs to; carried so results can be merged and logs attributed.
 * NOTE: this struct has no struct_size of its own. It is the last member of augur_task, so
 * augur_task.struct_size covers it: a field appended here is present when
 * task->struct_size >= offsetof(augur_task, meta) + offsetof(augur_invocation_meta, field)
 * + sizeof(field). It must stay the last member of augur_task for that to hold. */
typedef struct augur_invocation_meta {
  const char* workflow;
  const char* stage;
  const char* shard_id;
  uint64_t range_begin;  /* the shard's data range [begin, end); 0,0 when not ranged */
  uint64_t range_end;
  uint32_t attempt;      /* 1 for the first try */
  int32_t priority;      /* 1..10, 10 highest */
  /* 1.1: the host that owns the workflow (where it was submitted and its results are
   * merged); "" when unknown. Never NULL. */
  const char* origin_host;
} augur_invocation_meta;

typedef struct augur_task {
  uint32_t struct_size;
  const char* const* argv;  /* argv[0] is the program; argc entries, no NULL needed */
  uint32_t argc;
  const char* const* env;   /* "KEY=VALUE" entries; the task gets only these */
  uint32_t envc;
  const char* workdir;      /* "" for the backend's default */
  const char* stdout_path;  /* "" to discard */
  const char* stderr_path;  /* "" to discard */
  augur_invocation_meta meta; /* NOTE: stays last; see augur_invocation_meta */
} augur_task;

/* Task states. NOTE: values are part of the ABI; append only. */
#define AUGUR_TASK_RUNNING 0
#define AUGUR_TASK_EXITED 1     /* exit_code is valid */
#define AUGUR_TASK_KILLED 2     /* by a signal (term_signal), e.g. cancel() */
#define AUGUR_TASK_OOM 3        /* killed for exceeding the instance's memory */
#define AUGUR_TASK_FAILED 4     /* could not be started or lost; last_error says why */
/* Since 1.1: the instance's cost class took it away (a spot instance reclaimed by its
 * provider). Not the task's failure: augurd runs it again, on a class that is not
 * preemptible, without counting a retry. */
#define AUGUR_TASK_RECLAIMED 5

typedef struct augur_task_status {
  uint32_t struct_size;
  int32_t state;               /* AUGUR_TASK_* */
  int32_t exit_code;
  int32_t term_signal;
  double cpu_seconds;          /* CPU time used so far (user + system) */
  uint64_t peak_memory_bytes;  /* high-water mark so far */
  int64_t started_ns;          /* CLOCK_REALTIME */
  int64_t finished_ns;         /* 0 while running */
  /* 1.1: bytes the task and everything it started read from and wrote to storage, as far
   * as the backend can see it (each backend documents what it counts; 0 when it cannot
   * measure). So far while running, never decreasing; final once finished. At most
   * INT64_MAX: a larger value is refused as garbage (a negative count cast to unsigned). */
  uint64_t bytes_read;
  uint64_t bytes_written;
} augur_task_status;

typedef struct augur_plugin augur_plugin; /* opaque; plugin-owned */

typedef struct augur_plugin_api {
  /* Always first, never moved. */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size;  /* sizeof(augur_plugin_api) as the plugin was built */

  /* Creates the plugin state. `host` stays valid until destroy(). On failure returns NULL
   * and sets *rc; *error_out (plugin-owned static or leaked-once string) says why. */
  augur_plugin* (*init)(const augur_host_api* host, augur_rc* rc, const char** error_out);
  /* Frees everything init() made. Live instances are NOT released (they must survive an
   * agent restart); the host releases what it wants gone before. */
  void (*destroy)(augur_plugin* p);
  /* Message of the last failed call on this thread. Plugin-owned, valid until the next
   * call on this plugin from this thread. Never NULL. */
  const char* (*last_error)(augur_plugin* p);

  augur_rc (*describe)(augur_plugin* p, augur_backend_info* out);

  /* Creates an instance granting between req->min and req->want. Idempotent on req->name:
   * provisioning an existing name returns the existing instance. */
  augur_rc (*provision)(augur_plugin* p, const augur_alloc_request* req,
                        augur_instance_info* out);
  /* Prepares up to `count` instances shaped like `shape` so a later provision is fast.
   * *prepared says how many are ready; 0 with AUGUR_OK means the backend has nothing to
   * pre-warm (say so in last_error). */
  augur_rc (*prewarm)(augur_plugin* p, const augur_alloc_request* shape, uint32_t count,
                      uint32_t* prepared);
  /* Changes a live instance toward `target` (grow or shrink). *granted is what it has
   * after the call, which may be less than target when growing. */
  augur_rc (*resize)(augur_plugin* p, const char* instance, const augur_resources* target,
                     augur_resources* granted);
  /* Starts a task in an instance and writes its invocation handle. */
  augur_rc (*run)(augur_plugin* p, const char* instance, const augur_task* task,
                  char invocation[AUGUR_HANDLE_MAX]);
  /* Reports a task's status, waiting up to timeout_ms (0 = don't wait) for it to finish.
   * Returns AUGUR_OK with the status whether or not it finished. */
  augur_rc (*poll)(augur_plugin* p, const char* invocation, int32_t timeout_ms,
                   augur_task_status* out);
  /* Stops a task (and everything it started). Cancelling a finished task is AUGUR_OK. */
  augur_rc (*cancel)(augur_plugin* p, const char* invocation);
  /* Destroys an instance and what runs in it. Releasing an unknown or already released
   * instance returns AUGUR_ERR_NOT_FOUND and changes nothing. */
  augur_rc (*release)(augur_plugin* p, const char* instance);
  /* After a restart: given the handles the host persisted, re-attach to what still
   * exists. states_out[i] gets AUGUR_INSTANCE_READY or AUGUR_INSTANCE_GONE for instances[i];
   * task_states_out[j] gets an AUGUR_TASK_* state for invocations[j]. */
  augur_rc (*recover)(augur_plugin* p, const char* const* instances, uint32_t n_instances,
                      int32_t* states_out, const char* const* invocations,
                      uint32_t n_invocations, int32_t* task_states_out);
  /* APPEND ONLY below this line; bump AUGUR_PLUGIN_ABI_MINOR when you do. */
} augur_plugin_api;

/* The one symbol a plugin exports. Returns a pointer to a static table. */
typedef const augur_plugin_api* (*augur_plugin_entry_fn)(void);
#define AUGUR_PLUGIN_ENTRY_SYMBOL "augur_plugin_entry"
AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AUGUR_PLUGIN_H_ */
