#include "mesh/peer_address.h"

#include <charconv>

#include <fmt/format.h>

#include "mesh/envelope.h"

namespace augur::mesh {
namespace {

bool IsAddressChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == ':';
}

}  // namespace

Result<PeerAddress> ParsePeerAddress(std::string_view text, int default_port) {
  auto bad = [&](std::string_view why) {
    return Err(Status::InvalidArgument(fmt::format(
        "peer '{}': {} (expected name@addr:port, e.g. node-2@10.0.0.2:7946)", text, why)));
  };
  const size_t at = text.find('@');
  if (at == std::string_view::npos) return bad("no host name before '@'");
  const std::string_view name = text.substr(0, at);
  std::string_view rest = text.substr(at + 1);
  if (!IsValidHostName(name)) return bad(fmt::format("'{}' is not a host name", name));
  std::string_view host;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("'[' without ']'");
    host = rest.substr(0, close + 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("text after ']' that is not ':port'");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
    if (host.size() < 3) return bad("empty address in brackets");
    for (char c : host.substr(1, host.size() - 2)) {
      if (!IsAddressChar(c)) return bad("bad character in the IPv6 address");
    }
  } else {
    const size_t colon = rest.rfind(':');
    host = colon == std::string_view::npos ? rest : rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("no address after '@'");
    for (char c : host) {
      if (!IsAddressChar(c) || c == ':') {
        return bad("bad character in the address (write IPv6 in brackets)");
      }
    }
  }
  int port = default_port;
  if (!port_text.empty()) {
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size()) {
      return bad(fmt::format("port '{}' is not a number", port_text));
    }
  }
  if (port < 1 || port > 65535) return bad(fmt::format("port {} is out of range 1-65535", port));
  return PeerAddress{std::string(name), fmt::format("tcp://{}:{}", host, port)};
}

}  // namespace augur::mesh
