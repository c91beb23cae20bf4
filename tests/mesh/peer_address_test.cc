#include "mesh/peer_address.h"

#include <gtest/gtest.h>

namespace augur::mesh {
namespace {

TEST(PeerAddress, ParsesNameAddressAndPort) {
  struct Case {
    const char* text;
    const char* name;
    const char* endpoint;
  };
  const Case cases[] = {
      {"node-2@10.0.0.2:7000", "node-2", "tcp://10.0.0.2:7000"},
      {"node-2@10.0.0.2", "node-2", "tcp://10.0.0.2:7946"},
      {"n3@[fd00::3]:7946", "n3", "tcp://[fd00::3]:7946"},
      {"n3@[::1]", "n3", "tcp://[::1]:7946"},
      {"h.example@host4.example:65535", "h.example", "tcp://host4.example:65535"},
  };
  for (const Case& c : cases) {
    auto p = ParsePeerAddress(c.text);
    ASSERT_TRUE(p.has_value()) << c.text << ": " << p.error().ToString();
    EXPECT_EQ(p->name, c.name);
    EXPECT_EQ(p->endpoint, c.endpoint);
  }
  EXPECT_EQ(ParsePeerAddress("a@b", 1234)->endpoint, "tcp://b:1234");
}

TEST(PeerAddress, ErrorsSayWhichPartIsWrong) {
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"10.0.0.2:7946", "no host name before '@'"},
      {"@10.0.0.2", "'' is not a host name"},
      {"bad name@10.0.0.2", "'bad name' is not a host name"},
      {"n@", "no address after '@'"},
      {"n@:7946", "no address after '@'"},
      {"n@host:", "empty port"},
      {"n@host:http", "port 'http' is not a number"},
      {"n@host:0", "port 0 is out of range"},
      {"n@host:70000", "port 70000 is out of range"},
      {"n@fd00::3", "write IPv6 in brackets"},
      {"n@[fd00::3", "'[' without ']'"},
      {"n@[]:1", "empty address in brackets"},
      {"n@[::1]x", "not ':port'"},
      {"n@ho st:1", "bad character"},
  };
  for (const Case& c : cases) {
    auto p = ParsePeerAddress(c.text);
    ASSERT_FALSE(p.has_value()) << c.text;
    EXPECT_NE(p.error().message().find(c.expect), std::string::npos)
        << c.text << ": " << p.error().message();
    EXPECT_NE(p.error().message().find("name@addr:port"), std::string::npos);
  }
}

}  // namespace
}  // namespace augur::mesh
