/* Test plugin: a shared object that exports something, but not augur_plugin_entry. */
#include <augur/plugin.h>

AUGUR_PLUGIN_EXPORT int augur_plugin_entry_point_misspelt(void) { return AUGUR_PLUGIN_ABI_MAJOR; }
