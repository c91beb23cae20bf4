// PluginHost: the server half of plugin isolation, run by augur-plugin-host. It binds a
// ZeroMQ ROUTER socket at the endpoint augurd gave it, waits for a Hello naming the plugin,
// loads it (abi_loader.h) and answers each Request by calling the plugin through an
// AbiBackend on one of a few worker threads, so slow calls (poll with a wait) do not hold up
// others, as the ABI's threading rules allow.
//
// The host has no state worth saving: augurd kills it (SIGKILL) whenever a call times out,
// the plugin returns garbage or the process dies, and starts a new one.
#ifndef AUGUR_PLUGIN_PLUGIN_HOST_H_
#define AUGUR_PLUGIN_PLUGIN_HOST_H_

#include <string>

namespace augur::plugin {

class Backend;
namespace wire {
class Request;
class Reply;
}  // namespace wire

struct PluginHostOptions {
  std::string endpoint;  // e.g. ipc:///run/augur/plugins/process.3.sock
  int threads = 4;       // calls served at once; 1..64
};

// Serves until a shutdown request (after which the plugin's destroy() runs) and returns the
// process exit code: 0 after shutdown, 1 when the endpoint cannot be bound.
int RunPluginHost(const PluginHostOptions& options);

// Answers one parsed Request other than hello and shutdown (which need the host's state) by
// calling `backend`: what each worker does with a request. A Corruption from the backend
// becomes the reply's `fault`. Exposed for tests/fuzz/plugin_request_fuzz.cc, which drives
// it without a socket.
wire::Reply HandleRequest(Backend& backend, const wire::Request& req);

}  // namespace augur::plugin

#endif  // AUGUR_PLUGIN_PLUGIN_HOST_H_
