/* Test plugin: works, but describe() says it cannot provision now (healthy = 0). */
#include "testing_common.h"

static augur_rc u_describe(augur_plugin* p, augur_backend_info* out) {
  (void)p;
  t_describe_named(out, "unhealthy");
  out->healthy = 0;
  out->health_detail = "scratch disk full";
  return AUGUR_OK;
}

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  static const augur_plugin_api api = T_DEFAULT_API(u_describe);
  return &api;
}
