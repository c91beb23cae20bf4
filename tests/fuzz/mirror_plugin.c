/* Test-only plugin for tests/fuzz/plugin_request_fuzz.cc: answers each call with values taken
 * from the request, so that fuzzed requests become fuzzed plugin output for the ABI adapter
 * to check. It does nothing else: no files, no processes. Some answers break the ABI on
 * purpose (an unterminated handle, a NaN, an undefined result code) when the request asks
 * for it; the adapter must turn those into faults. */
#include <augur/plugin.h>

#include <stdlib.h>
#include <string.h>

struct augur_plugin {
  int unused;
};

static __thread char t_error[64];
static char t_name[AUGUR_HANDLE_MAX + 1];

static size_t len_of(const char* s) { return s ? strlen(s) : 0; }

static augur_plugin* m_init(const augur_host_api* host, augur_rc* rc, const char** error_out) {
  (void)host; (void)error_out;
  *rc = AUGUR_OK;
  return calloc(1, sizeof(augur_plugin));
}
static void m_destroy(augur_plugin* p) { free(p); }
static const char* m_last_error(augur_plugin* p) {
  (void)p;
  strcpy(t_error, "mirror: asked to fail");
  return t_error;
}
static augur_rc m_describe(augur_plugin* p, augur_backend_info* out) {
  static const augur_kv labels[] = {{"zone", "fuzz"}};
  static const augur_cost costs[] = {{"local", 0.0, 0.0, 0}};
  (void)p;
  out->name = "mirror";
  out->version = "1.0.0";
  out->healthy = 1;
  out->health_detail = "";
  out->capacity.cpu_cores = 4;
  out->capacity.memory_bytes = 1u << 30;
  out->available = out->capacity;
  out->costs = costs;
  out->costs_len = 1;
  out->labels = labels;
  out->labels_len = 1;
  return AUGUR_OK;
}
/* A handle copied from `s`: as long as it is (truncated to the buffer, unterminated when it
 * fills it). */
static void copy_handle(char out[AUGUR_HANDLE_MAX], const char* s) {
  strncpy(out, s ? s : "", AUGUR_HANDLE_MAX);
}
static augur_rc m_provision(augur_plugin* p, const augur_alloc_request* req, augur_instance_info* out) {
  (void)p;
  if (req->labels_len > 0 && req->labels[0].value && strcmp(req->labels[0].value, "fail") == 0) {
    return (augur_rc)len_of(req->labels[0].key); /* any code, defined or not */
  }
  copy_handle(out->handle, req->name);
  out->granted = req->want;
  out->state = (int32_t)req->labels_len - 1; /* -1 with no labels: not an AUGUR_INSTANCE_* */
  return AUGUR_OK;
}
static augur_rc m_prewarm(augur_plugin* p, const augur_alloc_request* s, uint32_t c, uint32_t* n) {
  (void)p;
  *n = c + (uint32_t)s->labels_len; /* more than asked when there are labels */
  return AUGUR_OK;
}
static augur_rc m_resize(augur_plugin* p, const char* i, const augur_resources* t, augur_resources* g) {
  (void)p;
  if (len_of(i) == 0) return AUGUR_ERR_NOT_FOUND;
  *g = *t;
  return AUGUR_OK;
}
static augur_rc m_run(augur_plugin* p, const char* i, const augur_task* t, char inv[AUGUR_HANDLE_MAX]) {
  (void)p; (void)i;
  /* With no argv, the origin host (ABI 1.1) becomes the handle. */
  copy_handle(inv, t->argc > 0 ? t->argv[0] : t->meta.origin_host);
  return AUGUR_OK;
}
static augur_rc m_poll(augur_plugin* p, const char* i, int32_t ms, augur_task_status* out) {
  (void)p;
  out->state = (int32_t)(len_of(i) % 6); /* 5 is not an AUGUR_TASK_* */
  out->exit_code = ms;
  out->cpu_seconds = ms / 1000.0; /* negative when ms is */
  out->started_ns = ms;
  /* I/O counters: past INT64_MAX when ms is negative. */
  out->bytes_read = (uint64_t)(int64_t)ms;
  out->bytes_written = len_of(i) * 4096u;
  /* The struct_size written back: as given, 1.0's size (counters not to be read), too small
   * or too large, by the invocation's length. */
  switch (len_of(i) % 7) {
    case 1: out->struct_size = 48; break;
    case 2: out->struct_size = 8; break;
    case 3: out->struct_size = out->struct_size + 8; break;
    default: break;
  }
  return AUGUR_OK;
}
static augur_rc m_cancel(augur_plugin* p, const char* i) {
  (void)p;
  return (augur_rc)(len_of(i) % 10); /* 9 is not an AUGUR_ERR_* */
}
static augur_rc m_release(augur_plugin* p, const char* i) {
  (void)p;
  strncpy(t_name, i ? i : "", sizeof t_name - 1);
  return len_of(i) % 2 ? AUGUR_ERR_NOT_FOUND : AUGUR_OK;
}
static augur_rc m_recover(augur_plugin* p, const char* const* instances, uint32_t n_instances,
                          int32_t* states_out, const char* const* invocations,
                          uint32_t n_invocations, int32_t* task_states_out) {
  (void)p;
  for (uint32_t k = 0; k < n_instances; ++k) states_out[k] = (int32_t)(len_of(instances[k]) % 5);
  for (uint32_t k = 0; k < n_invocations; ++k) {
    task_states_out[k] = (int32_t)(len_of(invocations[k]) % 6);
  }
  return AUGUR_OK;
}

static const augur_plugin_api kApi = {
    AUGUR_PLUGIN_ABI_MAJOR, AUGUR_PLUGIN_ABI_MINOR, sizeof(augur_plugin_api),
    m_init, m_destroy, m_last_error, m_describe, m_provision, m_prewarm, m_resize, m_run,
    m_poll, m_cancel, m_release, m_recover,
};

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) { return &kApi; }
