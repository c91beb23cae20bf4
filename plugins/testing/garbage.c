/* Test plugin: answers every call with something the ABI forbids.
 *   describe   NULL name
 *   provision  a handle with no NUL in AUGUR_HANDLE_MAX bytes
 *   prewarm    more instances prepared than asked for
 *   resize     a NaN granted cpu_cores
 *   run        OK with an empty invocation handle
 *   poll       task state 99; for invocation "inv-io-huge" a valid status whose bytes_written
 *              is 2^64-1, for "inv-size-big" one whose struct_size claims 4096 bytes; and for
 *              "inv-io-short" (not garbage) counters set beyond the struct_size it writes
 *              back, which the host must not read
 *   cancel     result code 12345
 *   release    fails with a 1 MiB last_error()
 *   recover    leaves states unset */
#include "testing_common.h"

#include <stddef.h>

static char huge[1 << 20];

static augur_rc g_describe(augur_plugin* p, augur_backend_info* out) {
  (void)p;
  t_describe_named(out, "garbage");
  out->name = NULL;
  return AUGUR_OK;
}
static augur_rc g_provision(augur_plugin* p, const augur_alloc_request* req, augur_instance_info* out) {
  (void)p; (void)req;
  memset(out->handle, 'A', AUGUR_HANDLE_MAX);
  out->state = AUGUR_INSTANCE_READY;
  return AUGUR_OK;
}
static augur_rc g_prewarm(augur_plugin* p, const augur_alloc_request* s, uint32_t c, uint32_t* n) {
  (void)p; (void)s; *n = c + 5; return AUGUR_OK;
}
static augur_rc g_resize(augur_plugin* p, const char* i, const augur_resources* t, augur_resources* g) {
  (void)p; (void)i; (void)t;
  g->cpu_cores = __builtin_nan("");
  g->memory_bytes = 0;
  return AUGUR_OK;
}
static augur_rc g_run(augur_plugin* p, const char* i, const augur_task* t, char inv[AUGUR_HANDLE_MAX]) {
  (void)p; (void)i; (void)t; inv[0] = '\0'; return AUGUR_OK;
}
static augur_rc g_poll(augur_plugin* p, const char* i, int32_t ms, augur_task_status* out) {
  (void)p; (void)ms;
  out->state = AUGUR_TASK_EXITED;
  if (i != NULL && strcmp(i, "inv-io-huge") == 0) {
    out->bytes_written = UINT64_MAX;
  } else if (i != NULL && strcmp(i, "inv-size-big") == 0) {
    out->struct_size = 4096;
  } else if (i != NULL && strcmp(i, "inv-io-short") == 0) {
    out->bytes_read = 5;
    out->bytes_written = 7;
    out->struct_size = offsetof(augur_task_status, bytes_read); /* "my answer ends before" */
  } else {
    out->state = 99;
  }
  return AUGUR_OK;
}
static augur_rc g_cancel(augur_plugin* p, const char* i) { (void)p; (void)i; return 12345; }
static augur_rc g_release(augur_plugin* p, const char* i) {
  (void)p; (void)i;
  memset(huge, 'x', sizeof huge - 1);
  t_error = huge;
  return AUGUR_ERR_IO;
}
static augur_rc g_recover(augur_plugin* p, const char* const* a, uint32_t na, int32_t* sa,
                          const char* const* b, uint32_t nb, int32_t* sb) {
  (void)p; (void)a; (void)na; (void)sa; (void)b; (void)nb; (void)sb;
  return AUGUR_OK;
}

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  static augur_plugin_api api = T_DEFAULT_API(g_describe);
  api.provision = g_provision;
  api.prewarm = g_prewarm;
  api.resize = g_resize;
  api.run = g_run;
  api.poll = g_poll;
  api.cancel = g_cancel;
  api.release = g_release;
  api.recover = g_recover;
  return &api;
}
