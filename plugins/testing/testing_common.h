/* Shared parts of the misbehaving test plugins: a well-behaved default for every function,
 * so each plugin overrides only the call it breaks. Header-only; each plugin is one .c. */
#ifndef AUGUR_PLUGINS_TESTING_COMMON_H_
#define AUGUR_PLUGINS_TESTING_COMMON_H_

#include <augur/plugin.h>
#include <stdlib.h>
#include <string.h>

struct augur_plugin {
  const augur_host_api* host;
};

static __thread const char* t_error = "";

static augur_plugin* t_init(const augur_host_api* host, augur_rc* rc, const char** err) {
  (void)err;
  augur_plugin* p = calloc(1, sizeof *p);
  p->host = host;
  *rc = AUGUR_OK;
  return p;
}
static void t_destroy(augur_plugin* p) { free(p); }
static const char* t_last_error(augur_plugin* p) { (void)p; return t_error; }

__attribute__((unused)) static augur_rc t_describe_named(augur_backend_info* out, const char* name) {
  static const augur_kv labels[] = {{"test", "yes"}};
  out->name = name;
  out->version = "0.0.1";
  out->healthy = 1;
  out->health_detail = "";
  out->capacity = (augur_resources){1.0, 1 << 30};
  out->available = out->capacity;
  out->costs = NULL;
  out->costs_len = 0;
  out->labels = labels;
  out->labels_len = 1;
  return AUGUR_OK;
}
static augur_rc t_provision(augur_plugin* p, const augur_alloc_request* req, augur_instance_info* out) {
  (void)p;
  strncpy(out->handle, "inst-1", AUGUR_HANDLE_MAX);
  out->granted = req->want;
  out->state = AUGUR_INSTANCE_READY;
  return AUGUR_OK;
}
static augur_rc t_prewarm(augur_plugin* p, const augur_alloc_request* s, uint32_t c, uint32_t* n) {
  (void)p; (void)s; (void)c; *n = 0; return AUGUR_OK;
}
static augur_rc t_resize(augur_plugin* p, const char* i, const augur_resources* t, augur_resources* g) {
  (void)p; (void)i; *g = *t; return AUGUR_OK;
}
static augur_rc t_run(augur_plugin* p, const char* i, const augur_task* t, char inv[AUGUR_HANDLE_MAX]) {
  (void)p; (void)i; (void)t; strncpy(inv, "inv-1", AUGUR_HANDLE_MAX); return AUGUR_OK;
}
static augur_rc t_poll(augur_plugin* p, const char* i, int32_t ms, augur_task_status* out) {
  (void)p; (void)i; (void)ms; out->state = AUGUR_TASK_EXITED; out->exit_code = 0; return AUGUR_OK;
}
static augur_rc t_cancel(augur_plugin* p, const char* i) { (void)p; (void)i; return AUGUR_OK; }
static augur_rc t_release(augur_plugin* p, const char* i) { (void)p; (void)i; return AUGUR_OK; }
static augur_rc t_recover(augur_plugin* p, const char* const* a, uint32_t na, int32_t* sa,
                          const char* const* b, uint32_t nb, int32_t* sb) {
  (void)p; (void)a; (void)b;
  for (uint32_t i = 0; i < na; ++i) sa[i] = AUGUR_INSTANCE_READY;
  for (uint32_t i = 0; i < nb; ++i) sb[i] = AUGUR_TASK_RUNNING;
  return AUGUR_OK;
}

/* A table with the defaults; a plugin copies it and replaces what it breaks. */
#define T_DEFAULT_API(describe_fn)                                                          \
  {.abi_major = AUGUR_PLUGIN_ABI_MAJOR, .abi_minor = AUGUR_PLUGIN_ABI_MINOR,                \
   .struct_size = sizeof(augur_plugin_api), .init = t_init, .destroy = t_destroy,           \
   .last_error = t_last_error, .describe = describe_fn, .provision = t_provision,           \
   .prewarm = t_prewarm, .resize = t_resize, .run = t_run, .poll = t_poll,                  \
   .cancel = t_cancel, .release = t_release, .recover = t_recover}

#endif /* AUGUR_PLUGINS_TESTING_COMMON_H_ */
