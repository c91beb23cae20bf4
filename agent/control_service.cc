#include "agent/control_service.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "plugin/plugin_client.h"
#include "workflow/executor.h"

namespace augur::agent {
namespace {

control::Reply Ok(std::string message, std::string json = "") {
  control::Reply r;
  r.set_code(0);
  r.set_message(std::move(message));
  r.set_json(std::move(json));
  return r;
}

control::Reply FromStatus(const Status& s) {
  control::Reply r;
  r.set_code(static_cast<int32_t>(s.code()));
  r.set_message(s.message());
  return r;
}

}  // namespace

std::string BackendsJson(const std::vector<plugin::BackendHealth>& backends,
                         std::chrono::system_clock::time_point now) {
  nlohmann::json out = nlohmann::json::array();
  for (const plugin::BackendHealth& h : backends) {
    const bool checked = h.last_check.time_since_epoch().count() != 0;
    out.push_back({{"name", h.name},
                   {"state", std::string(plugin::HostStateName(h.state))},
                   {"up", h.up},
                   {"healthy", h.healthy},
                   {"reason", std::string(plugin::HealthReasonName(h.reason))},
                   {"detail", h.health_detail},
                   {"restarts", h.restarts},
                   {"host_pid", h.host_pid},
                   {"last_error", h.last_error},
                   {"abi", fmt::format("{}.{}", h.abi_major, h.abi_minor)},
                   {"last_check_age_s",
                    checked ? std::chrono::duration<double>(now - h.last_check).count() : -1.0}});
  }
  return out.dump();
}

control::Reply HandleControl(const ControlTargets& t, const control::Request& req,
                             const PeerCredentials& peer) {
  if (req.command_case() == control::Request::kPeers) {
    if (!t.peers_json) return FromStatus(Status::FailedPrecondition("the mesh is off: " + t.mesh_off));
    return Ok("", t.peers_json());
  }
  if (req.command_case() == control::Request::kBackends) {
    return Ok("", t.backends ? BackendsJson(t.backends(), std::chrono::system_clock::now())
                             : std::string("[]"));
  }
  workflow::Executor* ex = t.executor;
  if (ex == nullptr) {
    return FromStatus(
        Status::FailedPrecondition("the workflow engine is off: " + t.workflows_off));
  }
  switch (req.command_case()) {
    case control::Request::kSubmit: {
      const std::string origin =
          req.submit().origin().empty() ? "<submitted>" : req.submit().origin();
      auto id = ex->Submit(req.submit().yaml(), origin);
      if (!id) return FromStatus(id.error());
      spdlog::info("workflow {} submitted by uid {} (pid {})", *id, peer.uid, peer.pid);
      return Ok(fmt::format("submitted {}", *id), nlohmann::json{{"id", *id}}.dump());
    }
    case control::Request::kStatus: {
      auto j = ex->StatusJson(req.status().workflow(), req.status().explain());
      return j ? Ok("", *j) : FromStatus(j.error());
    }
    case control::Request::kResult: {
      workflow::RemoteAnswer remote;
      auto out = ex->Output(req.result().workflow(), req.result().stage(), &remote);
      if (!out) return FromStatus(out.error());
      // Answered by another host (this one does not run the workflow): said on stderr.
      control::Reply r =
          Ok(remote.answered_by.empty()
                 ? ""
                 : fmt::format("answered by {} ({}owner {})", remote.answered_by,
                               remote.from_owner ? "" : "a replica; ", remote.owner));
      r.set_output(std::move(*out));
      return r;
    }
    case control::Request::kCancel: {
      Status s = ex->Cancel(req.cancel().workflow());
      if (!s.ok()) return FromStatus(s);
      spdlog::info("workflow {} cancelled by uid {}", req.cancel().workflow(), peer.uid);
      return Ok(fmt::format("cancelled {}", req.cancel().workflow()));
    }
    case control::Request::kBoost: {
      const control::Boost& b = req.boost();
      Status s = ex->Boost(b.workflow(), b.points(), std::chrono::milliseconds(b.for_ms()));
      if (!s.ok()) return FromStatus(s);
      return Ok(b.for_ms() > 0 ? fmt::format("boosted {} by {:g} for {:g}s", b.workflow(),
                                             b.points(), b.for_ms() / 1000.0)
                               : fmt::format("boosted {} by {:g}", b.workflow(), b.points()));
    }
    case control::Request::kHistory: {
      auto j = ex->HistoryJson(req.history().workflow(),
                               req.history().limit() == 0 ? 100 : req.history().limit());
      return j ? Ok("", *j) : FromStatus(j.error());
    }
    case control::Request::kProfile: {
      auto j = ex->ProfileJson(req.profile().workflow(), req.profile().stage());
      return j ? Ok("", *j) : FromStatus(j.error());
    }
    case control::Request::kEvent: {
      const control::Event& e = req.event();
      Status s = ex->AddEvent(e.name(), e.workflow(), e.expected(), e.at_ns());
      if (!s.ok()) return FromStatus(s);
      spdlog::info("event {} for {} stored by uid {}", e.name(), e.workflow(), peer.uid);
      return Ok(fmt::format("event {}: {:g} submissions of {} expected", e.name(), e.expected(),
                            e.workflow()));
    }
    case control::Request::kEvents: {
      auto j = ex->EventsJson(req.events().workflow());
      return j ? Ok("", *j) : FromStatus(j.error());
    }
    case control::Request::kPeers:  // answered above
    case control::Request::kBackends:
    case control::Request::COMMAND_NOT_SET:
      break;
  }
  return FromStatus(Status::InvalidArgument("the request names no command"));
}

}  // namespace augur::agent
