#include "plugin/plugin_host.h"

#include <unistd.h>

#include <atomic>
#include <iterator>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "plugin/abi_adapter.h"
#include "plugin/abi_loader.h"
#include "plugin/plugin_protocol.h"

namespace augur::plugin {
namespace {

constexpr char kWorkersEndpoint[] = "inproc://workers";
constexpr char kControlEndpoint[] = "inproc://control";

void SetStatus(const Status& s, wire::Reply* reply) {
  if (s.ok()) return;
  // Corruption from the adapter means the plugin broke the contract: a fault, after which
  // augurd restarts this process. Everything else is the plugin's ordinary error.
  if (s.IsCorruption()) {
    reply->set_fault(s.message());
    return;
  }
  reply->set_code(static_cast<int32_t>(s.code()));
  reply->set_message(s.message());
}

class HostServer {
 public:
  explicit HostServer(zmq::context_t& ctx) : ctx_(ctx) {}

  // One worker: REP socket on the inproc side of the proxy. Returns on context shutdown.
  void Work() {
    try {
      zmq::socket_t rep(ctx_, zmq::socket_type::rep);
      rep.set(zmq::sockopt::linger, 0);
      rep.connect(kWorkersEndpoint);
      for (;;) {
        zmq::message_t msg;
        if (!rep.recv(msg)) continue;
        wire::Request req;
        wire::Reply reply;
        if (!req.ParseFromArray(msg.data(), static_cast<int>(msg.size()))) {
          reply.set_code(static_cast<int32_t>(Status::Code::kInvalidArgument));
          reply.set_message("plugin host: request is not a valid protobuf message");
        } else if (req.has_shutdown()) {
          // No reply: augurd waits for the process to exit instead. The proxy is stopped from
          // here; main() then ends the workers and destroys the plugin.
          zmq::socket_t control(ctx_, zmq::socket_type::pair);
          control.set(zmq::sockopt::linger, 0);
          control.connect(kControlEndpoint);
          control.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::none);
          return;
        } else {
          reply = Handle(req);
        }
        reply.set_id(req.id());
        std::string out = reply.SerializeAsString();
        rep.send(zmq::buffer(out), zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) spdlog::error("worker stopped: {}", e.what());
    }
  }

  // The calls answered on the socket thread itself, skipping the hop to a worker: they are
  // short queries, and the hop (two thread switches) is most of a round trip's cost. A
  // plugin that hangs in one hangs this thread too, which is no worse: augurd kills the
  // whole host on a timeout either way.
  static bool Inline(const wire::Request& req) {
    return req.has_describe() || (req.has_poll() && req.poll().timeout_ms() == 0);
  }

  // The ROUTER loop: parses each request, answers inline ones here and passes the rest to
  // the workers over the DEALER; relays workers' replies back. Returns on shutdown.
  void Serve(zmq::socket_t& frontend, zmq::socket_t& backend, zmq::socket_t& control) {
    for (;;) {
      zmq::pollitem_t items[3] = {{frontend.handle(), 0, ZMQ_POLLIN, 0},
                                  {backend.handle(), 0, ZMQ_POLLIN, 0},
                                  {control.handle(), 0, ZMQ_POLLIN, 0}};
      zmq::poll(items, 3, std::chrono::milliseconds(-1));
      if (items[2].revents & ZMQ_POLLIN) return;
      if (items[1].revents & ZMQ_POLLIN) Relay(backend, frontend);
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(frontend, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        continue;
      }
      // REQ envelope: [identity, empty, body].
      if (frames.size() != 3) continue;
      wire::Request req;
      if (!req.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size())) ||
          !Inline(req)) {
        zmq::send_multipart(backend, frames);
        continue;
      }
      wire::Reply reply = Handle(req);
      reply.set_id(req.id());
      const std::string out = reply.SerializeAsString();
      frames[2].rebuild(out.data(), out.size());
      zmq::send_multipart(frontend, frames);
    }
  }

  void DestroyPlugin() {
    std::lock_guard<std::mutex> lock(mu_);
    backend_.reset();
  }

 private:
  static void Relay(zmq::socket_t& from, zmq::socket_t& to) {
    std::vector<zmq::message_t> frames;
    if (zmq::recv_multipart(from, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
      zmq::send_multipart(to, frames);
    }
  }

  wire::Reply Hello(const wire::HelloRequest& hello) {
    wire::Reply reply;
    std::lock_guard<std::mutex> lock(mu_);
    if (backend_) {
      reply.set_code(static_cast<int32_t>(Status::Code::kFailedPrecondition));
      reply.set_message("plugin host: a plugin is already loaded");
      return reply;
    }
    auto loaded = LoadedPlugin::Load(hello.plugin_path(), hello.name());
    if (!loaded) {
      // A refusal is final: restarting will not change what the file declares.
      reply.set_refused(loaded.error().message());
      return reply;
    }
    const uint32_t major = (*loaded)->api().abi_major, minor = (*loaded)->api().abi_minor;
    AbiBackendOptions opts;
    for (const wire::KeyValue& kv : hello.config()) opts.config.emplace_back(kv.key(), kv.value());
    opts.state_dir = hello.state_dir();
    auto backend = AbiBackend::Create(std::move(*loaded), std::move(opts));
    if (!backend) {
      SetStatus(backend.error(), &reply);
      return reply;
    }
    backend_ = std::move(*backend);
    wire::HelloReply* h = reply.mutable_hello();
    h->set_abi_major(major);
    h->set_abi_minor(minor);
    h->set_host_pid(::getpid());
    spdlog::info("loaded plugin '{}' ({}), ABI {}.{}", hello.name(), hello.plugin_path(), major,
                 minor);
    return reply;
  }

  wire::Reply Handle(const wire::Request& req) {
    if (req.has_hello()) return Hello(req.hello());
    std::shared_ptr<AbiBackend> b;
    {
      std::lock_guard<std::mutex> lock(mu_);
      b = backend_;
    }
    if (!b) {
      wire::Reply reply;
      reply.set_code(static_cast<int32_t>(Status::Code::kFailedPrecondition));
      reply.set_message("plugin host: no plugin loaded yet (send hello first)");
      return reply;
    }
    return HandleRequest(*b, req);
  }

  zmq::context_t& ctx_;
  std::mutex mu_;
  std::shared_ptr<AbiBackend> backend_;  // set once by Hello
};

}  // namespace

wire::Reply HandleRequest(Backend& b, const wire::Request& req) {
  wire::Reply reply;
  switch (req.op_case()) {
    case wire::Request::kDescribe: {
      auto r = b.Describe();
      if (r) ToWire(*r, reply.mutable_info()); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kProvision: {
      auto r = b.Provision(FromWire(req.provision().request()));
      if (r) ToWire(*r, reply.mutable_instance()); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kPrewarm: {
      auto r = b.Prewarm(FromWire(req.prewarm().shape()), req.prewarm().count());
      if (r) reply.set_prepared(*r); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kResize: {
      auto r = b.Resize(req.resize().instance(), FromWire(req.resize().target()));
      if (r) ToWire(*r, reply.mutable_granted()); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kRun: {
      auto r = b.Run(req.run().instance(), FromWire(req.run().task()));
      if (r) reply.set_invocation(*r); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kPoll: {
      auto r = b.Poll(req.poll().invocation(), std::chrono::milliseconds(req.poll().timeout_ms()));
      if (r) ToWire(*r, reply.mutable_status()); else SetStatus(r.error(), &reply);
      break;
    }
    case wire::Request::kCancel:
      SetStatus(b.Cancel(req.cancel().handle()), &reply);
      break;
    case wire::Request::kRelease:
      SetStatus(b.Release(req.release().handle()), &reply);
      break;
    case wire::Request::kRecover: {
      std::vector<std::string> inst(req.recover().instances().begin(),
                                    req.recover().instances().end());
      std::vector<std::string> inv(req.recover().invocations().begin(),
                                   req.recover().invocations().end());
      auto r = b.Recover(inst, inv);
      if (r) {
        wire::RecoverReply* out = reply.mutable_recovered();
        for (InstanceState s : r->instances) out->add_instance_states(static_cast<int32_t>(s));
        for (TaskState s : r->invocations) out->add_task_states(static_cast<int32_t>(s));
      } else {
        SetStatus(r.error(), &reply);
      }
      break;
    }
    default:
      reply.set_code(static_cast<int32_t>(Status::Code::kInvalidArgument));
      reply.set_message("plugin host: request names no known operation");
  }
  return reply;
}

int RunPluginHost(const PluginHostOptions& options) {
  zmq::context_t ctx(1);
  HostServer server(ctx);
  std::vector<std::thread> workers;
  try {
    zmq::socket_t frontend(ctx, zmq::socket_type::router);
    zmq::socket_t backend(ctx, zmq::socket_type::dealer);
    zmq::socket_t control(ctx, zmq::socket_type::pair);
    for (zmq::socket_t* s : {&frontend, &backend, &control}) s->set(zmq::sockopt::linger, 0);
    frontend.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxMessageBytes));
    frontend.bind(options.endpoint);
    backend.bind(kWorkersEndpoint);
    control.bind(kControlEndpoint);
    const int threads = std::clamp(options.threads, 1, 64);
    for (int i = 0; i < threads; ++i) workers.emplace_back([&server] { server.Work(); });
    // Returns when a worker sends TERMINATE on the control socket (shutdown request).
    server.Serve(frontend, backend, control);
  } catch (const zmq::error_t& e) {
    spdlog::error("cannot serve on {}: {}", options.endpoint, e.what());
    ctx.shutdown();
    for (std::thread& t : workers) t.join();
    return 1;
  }
  // Wakes the workers blocked in recv() with ETERM. One stuck inside the plugin keeps the
  // process alive until augurd loses patience and sends SIGKILL.
  ctx.shutdown();
  for (std::thread& t : workers) t.join();
  server.DestroyPlugin();
  return 0;
}

}  // namespace augur::plugin
