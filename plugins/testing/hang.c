/* Test plugin: loads fine, then never returns from describe(). */
#include <unistd.h>

#include "testing_common.h"

static augur_rc hang_describe(augur_plugin* p, augur_backend_info* out) {
  (void)p; (void)out;
  for (;;) pause();
  return AUGUR_OK;
}

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  static const augur_plugin_api api = T_DEFAULT_API(hang_describe);
  return &api;
}
