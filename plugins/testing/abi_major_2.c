/* Test plugin: declares a future ABI major, which the agent must refuse before any call. */
#include "testing_common.h"

static augur_rc describe(augur_plugin* p, augur_backend_info* out) {
  (void)p;
  return t_describe_named(out, "abi_major_2");
}

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  static augur_plugin_api api = T_DEFAULT_API(describe);
  api.abi_major = 2;
  api.abi_minor = 3;
  return &api;
}
