/*
 * augur-example: a minimal provisioning backend, the one docs/PLUGINS.md builds step by step.
 *
 * An "instance" here is bookkeeping only: a grant of CPU and memory out of this host's
 * capacity (sysconf), written to a file in the state directory. Tasks run with fork/exec
 * under a small monitor process that records how they ended, so a task survives the plugin
 * host being killed and a new host can report its exit code. No cgroups, so the grant is
 * not enforced: that is the process backend's job.
 *
 * It reports no I/O counters (bytes_read = bytes_written = 0): without a cgroup or a look at
 * every process the task started, it cannot see what they read and wrote.
 *
 * ABI minor. Built as is, it speaks this header's minor. Built with -DEXAMPLE_ABI_MINOR=0
 * (plugins/testing builds it so, as augur-test_example_abi_1_0.so) it is a plugin of ABI 1.0:
 * it declares minor 0, expects only ABI 1.0's struct sizes and touches no field of 1.1, which
 * is how the agent's support for older plugins is tested.
 *
 * Files in the state directory (all written to a temporary name and renamed into place):
 *   inst-<handle>       "<cpu_cores> <memory_bytes> <request name>"
 *   run-<id>.pid        "<monitor pid> <task pid> <started_ns> <instance handle>"
 *   run-<id>.status     "<AUGUR_TASK_*> <exit code> <signal> <cpu usec> <peak KiB> <finished_ns>"
 */
#define _GNU_SOURCE
#include <augur/plugin.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXAMPLE_VERSION "1.1.0"

#ifndef EXAMPLE_ABI_MINOR
#define EXAMPLE_ABI_MINOR AUGUR_PLUGIN_ABI_MINOR
#endif
/* The structs as this plugin knows them. A field is there when struct_size reaches past it;
 * ABI 1.0's augur_task ended with meta.priority and its augur_task_status with finished_ns. */
#if EXAMPLE_ABI_MINOR >= 1
#define EX_TASK_SIZE sizeof(augur_task)
#define EX_STATUS_SIZE sizeof(augur_task_status)
#else
#define EX_TASK_SIZE (offsetof(augur_task, meta) + offsetof(augur_invocation_meta, origin_host))
#define EX_STATUS_SIZE offsetof(augur_task_status, bytes_read)
#endif

struct augur_plugin {
  const augur_host_api* host;
  char state_dir[PATH_MAX];
  augur_resources capacity;
  pthread_mutex_t mu; /* guards the inst-* files: grants must not race each other */
  /* describe()'s answer lives here until the next describe() (the host serialises them). */
  char hostname[256];
  char health_detail[512];
  augur_kv labels[2];
  augur_cost costs[1];
};

/* last_error() text, one per thread as the ABI asks. */
static __thread char t_error[1024];

static augur_rc fail(augur_rc rc, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t_error, sizeof t_error, fmt, ap);
  va_end(ap);
  return rc;
}

static void logf_(augur_plugin* p, int32_t level, const char* fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  p->host->log(p->host->host_ctx, level, line);
}

static int64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- files ------------------------------------------------------------------------------ */

static int path_of(augur_plugin* p, char* out, size_t n, const char* prefix, const char* id,
                   const char* suffix) {
  int len = snprintf(out, n, "%s/%s%s%s", p->state_dir, prefix, id, suffix);
  return len > 0 && (size_t)len < n;
}

/* Replaces `path` with `text` atomically. Uses only async-signal-safe calls, because the
 * monitor process (forked from a multithreaded host) calls it too. */
static int write_file_atomic(const char* path, const char* text, size_t len) {
  char tmp[PATH_MAX];
  size_t pl = strlen(path);
  if (pl + 5 >= sizeof tmp) return -1;
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", 5);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      close(fd);
      return -1;
    }
    off += (size_t)w;
  }
  close(fd);
  return rename(tmp, path);
}

static int read_file(const char* path, char* buf, size_t n) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t r = read(fd, buf, n - 1);
  close(fd);
  if (r < 0) return -1;
  buf[r] = '\0';
  return 0;
}

/* ---- validation ------------------------------------------------------------------------- */

static int resources_ok(const augur_resources* r) { return isfinite(r->cpu_cores) && r->cpu_cores >= 0; }

/* Handles we hand out are [A-Za-z0-9_.-]; anything else cannot be ours. Also keeps a
 * hostile handle from naming a path outside the state directory. */
static int handle_ok(const char* h, const char* prefix) {
  if (h == NULL || strncmp(h, prefix, strlen(prefix)) != 0) return 0;
  size_t n = strnlen(h, AUGUR_HANDLE_MAX);
  if (n == 0 || n >= AUGUR_HANDLE_MAX) return 0;
  for (size_t i = 0; i < n; ++i) {
    char c = h[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return strstr(h, "..") == NULL;
}

/* ---- instances -------------------------------------------------------------------------- */

typedef struct {
  augur_resources granted;
  char name[256];
} inst_record;

static int read_instance(augur_plugin* p, const char* handle, inst_record* rec) {
  char path[PATH_MAX], buf[512];
  if (!path_of(p, path, sizeof path, "inst-", handle, "") || read_file(path, buf, sizeof buf) != 0)
    return -1;
  unsigned long long mem = 0;
  int name_at = 0;
  if (sscanf(buf, "%lf %llu %n", &rec->granted.cpu_cores, &mem, &name_at) < 2) return -1;
  rec->granted.memory_bytes = mem;
  snprintf(rec->name, sizeof rec->name, "%s", buf + name_at);
  return 0;
}

static int write_instance(augur_plugin* p, const char* handle, const inst_record* rec) {
  char path[PATH_MAX], buf[512];
  if (!path_of(p, path, sizeof path, "inst-", handle, "")) return -1;
  int n = snprintf(buf, sizeof buf, "%.17g %llu %s", rec->granted.cpu_cores,
                   (unsigned long long)rec->granted.memory_bytes, rec->name);
  return write_file_atomic(path, buf, (size_t)n);
}

/* What all instances hold, except `skip` (NULL for none). REQUIRES: p->mu held. */
static augur_resources granted_total(augur_plugin* p, const char* skip) {
  augur_resources sum = {0, 0};
  DIR* d = opendir(p->state_dir);
  if (d == NULL) return sum;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "inst-", 5) != 0 || strstr(e->d_name, ".tmp") != NULL) continue;
    const char* handle = e->d_name + 5;
    if (skip != NULL && strcmp(handle, skip) == 0) continue;
    inst_record rec;
    if (read_instance(p, handle, &rec) == 0) {
      sum.cpu_cores += rec.granted.cpu_cores;
      sum.memory_bytes += rec.granted.memory_bytes;
    }
  }
  closedir(d);
  return sum;
}

/* The instance handle for a request name: "i-" + the name with unsafe bytes replaced, then
 * a hash of the exact name so that "a b" and "a_b" do not share a handle. */
static void handle_for_name(const char* name, char out[AUGUR_HANDLE_MAX]) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const char* c = name; *c; ++c) h = (h ^ (unsigned char)*c) * 1099511628211ULL;
  char safe[80];
  size_t i = 0;
  for (; name[i] != '\0' && i < sizeof safe - 1; ++i) {
    char c = name[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '-';
    safe[i] = ok ? c : '_';
  }
  safe[i] = '\0';
  snprintf(out, AUGUR_HANDLE_MAX, "i-%s-%016llx", safe, (unsigned long long)h);
}

/* ---- the ABI ---------------------------------------------------------------------------- */

static augur_plugin* ex_init(const augur_host_api* host, augur_rc* rc, const char** error_out) {
  static const char kNoStateDir[] = "example backend needs a state_dir from the host";
  static const char kNoMemory[] = "example backend: out of memory";
  if (host == NULL || host->struct_size < sizeof(augur_host_api) || host->state_dir == NULL ||
      host->state_dir[0] == '\0') {
    *rc = AUGUR_ERR_INVALID;
    *error_out = kNoStateDir;
    return NULL;
  }
  augur_plugin* p = calloc(1, sizeof *p);
  if (p == NULL) {
    *rc = AUGUR_ERR_INTERNAL;
    *error_out = kNoMemory;
    return NULL;
  }
  p->host = host;
  snprintf(p->state_dir, sizeof p->state_dir, "%s", host->state_dir);
  pthread_mutex_init(&p->mu, NULL);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  p->capacity.cpu_cores = cpus > 0 ? (double)cpus : 1.0;
  p->capacity.memory_bytes = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
  /* A config key, to show how plugins.config.<name> arrives. */
  for (uint32_t i = 0; i < host->config_len; ++i) {
    if (strcmp(host->config[i].key, "cpu_cores") == 0) {
      double v = strtod(host->config[i].value, NULL);
      if (v > 0) p->capacity.cpu_cores = v;
    }
  }
  logf_(p, AUGUR_LOG_INFO, "example backend ready: %.1f cores, %llu bytes, state in %s",
        p->capacity.cpu_cores, (unsigned long long)p->capacity.memory_bytes, p->state_dir);
  *rc = AUGUR_OK;
  return p;
}

static void ex_destroy(augur_plugin* p) {
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static const char* ex_last_error(augur_plugin* p) {
  (void)p;
  return t_error;
}

static augur_rc ex_describe(augur_plugin* p, augur_backend_info* out) {
  if (out == NULL) return fail(AUGUR_ERR_INVALID, "out is NULL");
  int writable = access(p->state_dir, W_OK) == 0;
  snprintf(p->health_detail, sizeof p->health_detail, "%s",
           writable ? "" : "state directory is not writable");
  if (gethostname(p->hostname, sizeof p->hostname) != 0) snprintf(p->hostname, sizeof p->hostname, "unknown");
  p->hostname[sizeof p->hostname - 1] = '\0';
  p->labels[0] = (augur_kv){"host", p->hostname};
  p->labels[1] = (augur_kv){"isolation", "none"};
  p->costs[0] = (augur_cost){"local", 0.0, 0.0, 0};
  pthread_mutex_lock(&p->mu);
  augur_resources used = granted_total(p, NULL);
  pthread_mutex_unlock(&p->mu);
  out->name = "example";
  out->version = EXAMPLE_VERSION;
  out->healthy = writable;
  out->health_detail = p->health_detail;
  out->capacity = p->capacity;
  out->available.cpu_cores = fmax(0.0, p->capacity.cpu_cores - used.cpu_cores);
  out->available.memory_bytes =
      used.memory_bytes < p->capacity.memory_bytes ? p->capacity.memory_bytes - used.memory_bytes : 0;
  out->costs = p->costs;
  out->costs_len = 1;
  out->labels = p->labels;
  out->labels_len = 2;
  return AUGUR_OK;
}

/* Grants the most of `want` that fits in `free_`, or fails when even `min` does not. */
static int grant(const augur_resources* want, const augur_resources* min, augur_resources free_,
                 augur_resources* out) {
  out->cpu_cores = fmin(want->cpu_cores, free_.cpu_cores);
  out->memory_bytes = want->memory_bytes < free_.memory_bytes ? want->memory_bytes : free_.memory_bytes;
  return out->cpu_cores >= min->cpu_cores && out->memory_bytes >= min->memory_bytes;
}

static augur_resources free_of(augur_plugin* p, augur_resources used) {
  augur_resources f;
  f.cpu_cores = fmax(0.0, p->capacity.cpu_cores - used.cpu_cores);
  f.memory_bytes = used.memory_bytes < p->capacity.memory_bytes ? p->capacity.memory_bytes - used.memory_bytes : 0;
  return f;
}

static augur_rc ex_provision(augur_plugin* p, const augur_alloc_request* req,
                             augur_instance_info* out) {
  if (req == NULL || out == NULL) return fail(AUGUR_ERR_INVALID, "NULL argument");
  if (req->name == NULL || req->name[0] == '\0') return fail(AUGUR_ERR_INVALID, "empty name");
  if (strlen(req->name) > 200) return fail(AUGUR_ERR_INVALID, "name longer than 200 bytes");
  if (!resources_ok(&req->want) || !resources_ok(&req->min))
    return fail(AUGUR_ERR_INVALID, "cpu_cores must be a finite number >= 0");
  if (req->min.cpu_cores > req->want.cpu_cores || req->min.memory_bytes > req->want.memory_bytes)
    return fail(AUGUR_ERR_INVALID, "min (%.2f cores, %llu bytes) exceeds want (%.2f, %llu)",
                req->min.cpu_cores, (unsigned long long)req->min.memory_bytes, req->want.cpu_cores,
                (unsigned long long)req->want.memory_bytes);
  if (req->template_ref != NULL && req->template_ref[0] != '\0')
    return fail(AUGUR_ERR_UNSUPPORTED, "the example backend has no templates ('%s')",
                req->template_ref);
  char handle[AUGUR_HANDLE_MAX];
  handle_for_name(req->name, handle);
  pthread_mutex_lock(&p->mu);
  inst_record rec;
  augur_rc rc = AUGUR_OK;
  if (read_instance(p, handle, &rec) == 0) {
    /* Idempotent on the name: the same request twice is the same instance. */
    if (strcmp(rec.name, req->name) != 0) {
      rc = fail(AUGUR_ERR_INTERNAL, "handle %s already used by '%s'", handle, rec.name);
    }
  } else {
    augur_resources free_ = free_of(p, granted_total(p, NULL));
    if (!grant(&req->want, &req->min, free_, &rec.granted)) {
      rc = fail(AUGUR_ERR_NO_CAPACITY, "%.2f cores and %llu bytes free, minimum asked is %.2f and %llu",
                free_.cpu_cores, (unsigned long long)free_.memory_bytes, req->min.cpu_cores,
                (unsigned long long)req->min.memory_bytes);
    } else {
      snprintf(rec.name, sizeof rec.name, "%s", req->name);
      if (write_instance(p, handle, &rec) != 0)
        rc = fail(AUGUR_ERR_IO, "cannot write state: %s", strerror(errno));
    }
  }
  pthread_mutex_unlock(&p->mu);
  if (rc != AUGUR_OK) return rc;
  memcpy(out->handle, handle, sizeof handle);
  out->granted = rec.granted;
  out->state = AUGUR_INSTANCE_READY;
  return AUGUR_OK;
}

static augur_rc ex_prewarm(augur_plugin* p, const augur_alloc_request* shape, uint32_t count,
                           uint32_t* prepared) {
  (void)p; (void)shape; (void)count;
  if (prepared == NULL) return fail(AUGUR_ERR_INVALID, "prepared is NULL");
  *prepared = 0;
  fail(AUGUR_OK, "the example backend has nothing to pre-warm: provisioning is already instant");
  return AUGUR_OK;
}

static augur_rc ex_resize(augur_plugin* p, const char* instance, const augur_resources* target,
                          augur_resources* granted) {
  if (target == NULL || granted == NULL) return fail(AUGUR_ERR_INVALID, "NULL argument");
  if (!resources_ok(target)) return fail(AUGUR_ERR_INVALID, "cpu_cores must be finite and >= 0");
  if (!handle_ok(instance, "i-")) return fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance ? instance : "(NULL)");
  pthread_mutex_lock(&p->mu);
  inst_record rec;
  augur_rc rc = AUGUR_OK;
  if (read_instance(p, instance, &rec) != 0) {
    rc = fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance);
  } else {
    /* Shrinking always succeeds exactly; growing gets what is free, never less than now. */
    augur_resources free_ = free_of(p, granted_total(p, instance));
    augur_resources zero = {0, 0};
    grant(target, &zero, free_, &rec.granted);
    if (write_instance(p, instance, &rec) != 0)
      rc = fail(AUGUR_ERR_IO, "cannot write state: %s", strerror(errno));
    else
      *granted = rec.granted;
  }
  pthread_mutex_unlock(&p->mu);
  return rc;
}

/* ---- tasks ------------------------------------------------------------------------------ */

/* Async-signal-safe decimal formatting for the monitor process. */
static char* put_i64(char* s, int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) *s++ = '-';
  while (n) *s++ = tmp[--n];
  *s++ = ' ';
  return s;
}

static void write_status(const char* path, int state, int code, int sig, int64_t cpu_us,
                         int64_t peak_kib) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char buf[160], *s = buf;
  s = put_i64(s, state); s = put_i64(s, code); s = put_i64(s, sig);
  s = put_i64(s, cpu_us); s = put_i64(s, peak_kib);
  s = put_i64(s, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
  write_file_atomic(path, buf, (size_t)(s - buf));
}

struct spawn_report {
  pid_t monitor;
  pid_t task;
};

/* The monitor: runs in its own session so it outlives the plugin host, starts the task, waits
 * for it and writes run-<id>.status. Only async-signal-safe calls from here on. */
static void monitor_main(int report_fd, const char* status_path, const augur_task* t,
                         char* const* argv, char* const* envp) {
  setsid();
  int keep = report_fd;
  if (keep > 3) close_range(3, (unsigned)keep - 1, 0);
  close_range((unsigned)keep + 1, ~0U, 0);
  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) _exit(1);
  pid_t task = fork();
  if (task == 0) {
    setpgid(0, 0); /* its own group: cancel kills the task and everything it started */
    int in = open("/dev/null", O_RDONLY);
    const char* outp = (t->stdout_path && t->stdout_path[0]) ? t->stdout_path : "/dev/null";
    const char* errp = (t->stderr_path && t->stderr_path[0]) ? t->stderr_path : "/dev/null";
    int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = 0;
    if (in < 0 || out < 0 || err < 0) e = errno;
    if (!e && (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)) e = errno;
    if (!e && t->workdir && t->workdir[0] && chdir(t->workdir) != 0) e = errno;
    if (!e) {
      execvpe(argv[0], argv, envp);
      e = errno;
    }
    (void)!write(errpipe[1], &e, sizeof e);
    _exit(127);
  }
  /* The task's own group, set from this side too: run() returns once the pid is reported,
   * and a cancel() right after must find the group even if the child has not run yet. */
  if (task > 0) setpgid(task, task);
  close(errpipe[1]);
  struct spawn_report rep = {getpid(), task};
  (void)!write(report_fd, &rep, sizeof rep);
  close(report_fd);
  if (task < 0) {
    write_status(status_path, AUGUR_TASK_FAILED, 0, 0, 0, 0);
    _exit(0);
  }
  int exec_errno = 0;
  ssize_t got = read(errpipe[0], &exec_errno, sizeof exec_errno);
  int st = 0;
  struct rusage ru;
  memset(&ru, 0, sizeof ru);
  while (wait4(task, &st, 0, &ru) < 0 && errno == EINTR) {
  }
  int64_t cpu_us = (int64_t)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec +
                   (int64_t)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec;
  if (got == (ssize_t)sizeof exec_errno) {
    write_status(status_path, AUGUR_TASK_FAILED, exec_errno, 0, 0, 0);
  } else if (WIFSIGNALED(st)) {
    write_status(status_path, AUGUR_TASK_KILLED, 0, WTERMSIG(st), cpu_us, ru.ru_maxrss);
  } else {
    write_status(status_path, AUGUR_TASK_EXITED, WEXITSTATUS(st), 0, cpu_us, ru.ru_maxrss);
  }
  _exit(0);
}

/* "" for a NULL string, so a careless host cannot crash a log line. */
static const char* str_or_empty(const char* s) { return s != NULL ? s : ""; }

static augur_rc ex_run(augur_plugin* p, const char* instance, const augur_task* t,
                       char invocation[AUGUR_HANDLE_MAX]) {
  if (t == NULL || invocation == NULL) return fail(AUGUR_ERR_INVALID, "NULL argument");
  if (t->struct_size < EX_TASK_SIZE)
    return fail(AUGUR_ERR_INVALID, "task.struct_size is %u, less than this plugin's %u",
                t->struct_size, (unsigned)EX_TASK_SIZE);
  if (t->argc == 0 || t->argv == NULL) return fail(AUGUR_ERR_INVALID, "argv is empty");
  for (uint32_t i = 0; i < t->argc; ++i)
    if (t->argv[i] == NULL) return fail(AUGUR_ERR_INVALID, "argv[%u] is NULL", i);
  if (t->argv[0][0] == '\0') return fail(AUGUR_ERR_INVALID, "argv[0] is empty");
  for (uint32_t i = 0; i < t->envc; ++i)
    if (t->env == NULL || t->env[i] == NULL || strchr(t->env[i], '=') == NULL)
      return fail(AUGUR_ERR_INVALID, "env[%u] is not KEY=VALUE", i);
  if (!handle_ok(instance, "i-")) return fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance ? instance : "(NULL)");
  inst_record rec;
  pthread_mutex_lock(&p->mu);
  int found = read_instance(p, instance, &rec) == 0;
  pthread_mutex_unlock(&p->mu);
  if (!found) return fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance);

  /* Unique across host restarts: wall-clock time plus a per-process counter. */
  static _Atomic uint32_t seq;
  char id[64];
  snprintf(id, sizeof id, "run-%llx-%x-%u", (unsigned long long)realtime_ns(), (unsigned)getpid(), ++seq);
  char status_path[PATH_MAX], pid_path[PATH_MAX];
  if (!path_of(p, status_path, sizeof status_path, "", id, ".status") ||
      !path_of(p, pid_path, sizeof pid_path, "", id, ".pid"))
    return fail(AUGUR_ERR_INVALID, "state directory path too long");

  /* Built before fork(): the children may not allocate. */
  char** argv = calloc(t->argc + 1, sizeof *argv);
  char** envp = calloc(t->envc + 1, sizeof *envp);
  if (argv == NULL || envp == NULL) {
    free(argv); free(envp);
    return fail(AUGUR_ERR_INTERNAL, "out of memory");
  }
  for (uint32_t i = 0; i < t->argc; ++i) argv[i] = (char*)t->argv[i];
  for (uint32_t i = 0; i < t->envc; ++i) envp[i] = (char*)t->env[i];
  const int64_t started = realtime_ns();
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) {
    free(argv); free(envp);
    return fail(AUGUR_ERR_IO, "pipe: %s", strerror(errno));
  }
  /* Double fork: the monitor is re-parented to init, so the host never has zombies and the
   * monitor is not killed with the host. */
  pid_t mid = fork();
  if (mid == 0) {
    close(report[0]);
    pid_t m = fork();
    if (m == 0) monitor_main(report[1], status_path, t, argv, envp);
    _exit(m < 0 ? 1 : 0);
  }
  close(report[1]);
  free(argv);
  free(envp);
  if (mid < 0) {
    close(report[0]);
    return fail(AUGUR_ERR_IO, "fork: %s", strerror(errno));
  }
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR) {
  }
  struct spawn_report rep;
  ssize_t got;
  do { got = read(report[0], &rep, sizeof rep); } while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got != (ssize_t)sizeof rep || rep.task <= 0)
    return fail(AUGUR_ERR_IO, "could not start the task monitor");
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%d %d %lld %s", (int)rep.monitor, (int)rep.task,
                   (long long)started, instance);
  if (write_file_atomic(pid_path, buf, (size_t)n) != 0) {
    kill(-rep.task, SIGKILL);
    return fail(AUGUR_ERR_IO, "cannot write %s: %s", pid_path, strerror(errno));
  }
  snprintf(invocation, AUGUR_HANDLE_MAX, "%s", id);
  /* The metadata is for logs like this one (and accounting). */
#if EXAMPLE_ABI_MINOR >= 1
  logf_(p, AUGUR_LOG_DEBUG, "%s: workflow '%s' stage '%s' shard '%s' attempt %u from host '%s'", id,
        str_or_empty(t->meta.workflow), str_or_empty(t->meta.stage), str_or_empty(t->meta.shard_id),
        t->meta.attempt, str_or_empty(t->meta.origin_host));
#else
  logf_(p, AUGUR_LOG_DEBUG, "%s: workflow '%s' stage '%s' shard '%s' attempt %u", id,
        str_or_empty(t->meta.workflow), str_or_empty(t->meta.stage),
        str_or_empty(t->meta.shard_id), t->meta.attempt);
#endif
  return AUGUR_OK;
}

typedef struct {
  pid_t monitor, task;
  int64_t started_ns;
  char instance[AUGUR_HANDLE_MAX];
} run_record;

static int read_run(augur_plugin* p, const char* id, run_record* r) {
  char path[PATH_MAX], buf[512];
  if (!path_of(p, path, sizeof path, "", id, ".pid") || read_file(path, buf, sizeof buf) != 0) return -1;
  int m, t;
  long long s;
  if (sscanf(buf, "%d %d %lld %127s", &m, &t, &s, r->instance) != 4) return -1;
  r->monitor = m;
  r->task = t;
  r->started_ns = s;
  return 0;
}

/* Reads run-<id>.status into *out; 0 when the task has finished. */
static int read_status(augur_plugin* p, const char* id, augur_task_status* out) {
  char path[PATH_MAX], buf[256];
  if (!path_of(p, path, sizeof path, "", id, ".status") || read_file(path, buf, sizeof buf) != 0) return -1;
  long long state, code, sig, cpu_us, kib, fin;
  if (sscanf(buf, "%lld %lld %lld %lld %lld %lld", &state, &code, &sig, &cpu_us, &kib, &fin) != 6) return -1;
  out->state = (int32_t)state;
  out->exit_code = (int32_t)code;
  out->term_signal = (int32_t)sig;
  out->cpu_seconds = cpu_us / 1e6;
  out->peak_memory_bytes = (uint64_t)kib * 1024;
  out->finished_ns = fin;
  return 0;
}

/* Alive and not a zombie: a monitor whose parent (init in a container) does not reap is
 * still finished. */
static int process_alive(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_file(path, buf, sizeof buf) != 0) return 0;
  const char* close_paren = strrchr(buf, ')');
  return close_paren != NULL && close_paren[1] == ' ' && close_paren[2] != 'Z' && close_paren[2] != 'X';
}

/* CPU time and peak memory of a running task, from /proc; zeros when unreadable. */
static void live_usage(pid_t pid, augur_task_status* out) {
  char path[64], buf[2048];
  long hz = sysconf(_SC_CLK_TCK);
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  if (read_file(path, buf, sizeof buf) == 0) {
    const char* s = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    /* Fields after the command: state(3) ... utime(14) stime(15). */
    if (s != NULL && sscanf(s + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2 && hz > 0)
      out->cpu_seconds = (double)(ut + st) / (double)hz;
  }
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if (read_file(path, buf, sizeof buf) == 0) {
    const char* hwm = strstr(buf, "VmHWM:");
    unsigned long long kib = 0;
    if (hwm != NULL && sscanf(hwm + 6, "%llu", &kib) == 1) out->peak_memory_bytes = kib * 1024;
  }
}

static augur_rc task_state_now(augur_plugin* p, const char* id, augur_task_status* out) {
  run_record r;
  if (!handle_ok(id, "run-") || read_run(p, id, &r) != 0)
    return fail(AUGUR_ERR_NOT_FOUND, "no invocation '%s'", id ? id : "(NULL)");
  out->started_ns = r.started_ns;
  if (read_status(p, id, out) == 0) return AUGUR_OK;
  if (process_alive(r.monitor)) {
    out->state = AUGUR_TASK_RUNNING;
    out->finished_ns = 0;
    live_usage(r.task, out);
    return AUGUR_OK;
  }
  /* The monitor may have written the file between the two reads. */
  if (read_status(p, id, out) == 0) return AUGUR_OK;
  out->state = AUGUR_TASK_FAILED;
  out->finished_ns = realtime_ns();
  fail(AUGUR_OK, "the monitor of '%s' vanished without recording how the task ended", id);
  return AUGUR_OK;
}

static augur_rc wait_state(augur_plugin* p, const char* invocation, int32_t timeout_ms,
                           augur_task_status* out) {
  int64_t deadline = realtime_ns() + (int64_t)timeout_ms * 1000000;
  for (;;) {
    augur_rc rc = task_state_now(p, invocation, out);
    if (rc != AUGUR_OK || out->state != AUGUR_TASK_RUNNING || realtime_ns() >= deadline) return rc;
    struct timespec ts = {0, 5 * 1000000};
    nanosleep(&ts, NULL);
  }
}

static augur_rc ex_poll(augur_plugin* p, const char* invocation, int32_t timeout_ms,
                        augur_task_status* out) {
  if (out == NULL) return fail(AUGUR_ERR_INVALID, "out is NULL");
  /* The host allocated out; it must hold every field this plugin writes. */
  if (out->struct_size < EX_STATUS_SIZE)
    return fail(AUGUR_ERR_INVALID, "out.struct_size is %u, less than this plugin's %u",
                out->struct_size, (unsigned)EX_STATUS_SIZE);
  if (timeout_ms < 0) return fail(AUGUR_ERR_INVALID, "negative timeout %d", timeout_ms);
  augur_rc rc = wait_state(p, invocation, timeout_ms, out);
#if EXAMPLE_ABI_MINOR >= 1
  out->bytes_read = 0; /* this backend cannot see the task's I/O */
  out->bytes_written = 0;
#endif
  out->struct_size = EX_STATUS_SIZE; /* how far this answer reaches */
  return rc;
}

static augur_rc ex_cancel(augur_plugin* p, const char* invocation) {
  augur_task_status st;
  memset(&st, 0, sizeof st);
  augur_rc rc = task_state_now(p, invocation, &st);
  if (rc != AUGUR_OK || st.state != AUGUR_TASK_RUNNING) return rc;
  run_record r;
  if (read_run(p, invocation, &r) != 0) return fail(AUGUR_ERR_NOT_FOUND, "no invocation '%s'", invocation);
  kill(-r.task, SIGKILL);
  /* Wait (briefly) for the monitor to record it, so that a poll right after says KILLED. */
  (void)wait_state(p, invocation, 2000, &st);
  return AUGUR_OK;
}

static augur_rc ex_release(augur_plugin* p, const char* instance) {
  if (!handle_ok(instance, "i-")) return fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance ? instance : "(NULL)");
  char path[PATH_MAX];
  if (!path_of(p, path, sizeof path, "inst-", instance, "")) return fail(AUGUR_ERR_NOT_FOUND, "bad handle");
  pthread_mutex_lock(&p->mu);
  int gone = unlink(path) != 0;
  int err = errno;
  pthread_mutex_unlock(&p->mu);
  if (gone) {
    if (err == ENOENT) return fail(AUGUR_ERR_NOT_FOUND, "no instance '%s'", instance);
    return fail(AUGUR_ERR_IO, "cannot remove %s: %s", path, strerror(err));
  }
  /* Everything that ran in it goes too. */
  DIR* d = opendir(p->state_dir);
  if (d == NULL) return AUGUR_OK;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (strncmp(e->d_name, "run-", 4) != 0 || n < 5 || strcmp(e->d_name + n - 4, ".pid") != 0) continue;
    char id[256];
    snprintf(id, sizeof id, "%.*s", (int)(n - 4), e->d_name);
    run_record r;
    if (read_run(p, id, &r) != 0 || strcmp(r.instance, instance) != 0) continue;
    ex_cancel(p, id);
    char f[PATH_MAX];
    if (path_of(p, f, sizeof f, "", id, ".status")) unlink(f);
    if (path_of(p, f, sizeof f, "", id, ".pid")) unlink(f);
  }
  closedir(d);
  return AUGUR_OK;
}

static augur_rc ex_recover(augur_plugin* p, const char* const* instances, uint32_t n_instances,
                           int32_t* states_out, const char* const* invocations,
                           uint32_t n_invocations, int32_t* task_states_out) {
  if ((n_instances && (instances == NULL || states_out == NULL)) ||
      (n_invocations && (invocations == NULL || task_states_out == NULL)))
    return fail(AUGUR_ERR_INVALID, "NULL array");
  /* Everything lives in files, so re-attaching is just looking. */
  for (uint32_t i = 0; i < n_instances; ++i) {
    inst_record rec;
    states_out[i] = handle_ok(instances[i], "i-") && read_instance(p, instances[i], &rec) == 0
                        ? AUGUR_INSTANCE_READY : AUGUR_INSTANCE_GONE;
  }
  for (uint32_t j = 0; j < n_invocations; ++j) {
    augur_task_status st;
    memset(&st, 0, sizeof st);
    task_states_out[j] = task_state_now(p, invocations[j], &st) == AUGUR_OK ? st.state : AUGUR_TASK_FAILED;
  }
  return AUGUR_OK;
}

static const augur_plugin_api kApi = {
    .abi_major = AUGUR_PLUGIN_ABI_MAJOR,
    .abi_minor = EXAMPLE_ABI_MINOR,
    .struct_size = sizeof(augur_plugin_api),
    .init = ex_init,
    .destroy = ex_destroy,
    .last_error = ex_last_error,
    .describe = ex_describe,
    .provision = ex_provision,
    .prewarm = ex_prewarm,
    .resize = ex_resize,
    .run = ex_run,
    .poll = ex_poll,
    .cancel = ex_cancel,
    .release = ex_release,
    .recover = ex_recover,
};

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) { return &kApi; }
