/* Test plugin: describes itself normally and dies with SIGSEGV in provision(). */
#include <signal.h>

#include "testing_common.h"

static augur_rc describe(augur_plugin* p, augur_backend_info* out) {
  (void)p;
  return t_describe_named(out, "test_crash");
}
static augur_rc crash_provision(augur_plugin* p, const augur_alloc_request* req,
                                augur_instance_info* out) {
  (void)p; (void)req; (void)out;
  /* The default action first: under ASan (make test SANITIZE=...) the runtime's SIGSEGV
   * handler would turn the signal into a report and exit(1), and the host would not die by
   * the signal this plugin exists to deliver. Without a sanitizer the action is already the
   * default (augur-plugin-host installs no SIGSEGV handler), so this changes nothing there. */
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV); /* as a NULL dereference would, without the compiler's opinion of one */
  return AUGUR_OK;
}

AUGUR_PLUGIN_EXPORT const augur_plugin_api* augur_plugin_entry(void) {
  static augur_plugin_api api = T_DEFAULT_API(describe);
  api.provision = crash_provision;
  return &api;
}
