// Parsers for the text every binary reads from its command line: u128 ids, host:port addresses
// and lists of them, and dashed flag names. One parser each, so that tbproxy, the probe, the dev
// cluster and the load generator accept (and refuse) exactly the same spellings.
//
//   TB_ASSIGN_OR_RETURN(tb::u128 cluster, tb::ParseU128("0x2a"));
//   TB_ASSIGN_OR_RETURN(tb::HostPort listen, tb::ParseHostPort("[::1]:3000", {}));
//   TB_ASSIGN_OR_RETURN(auto replicas, tb::ParseHostPortList("a:3000,b:3001", {}));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client_core/u128.h"

namespace tb {

// A parsed address. `host` is a numeric IPv4 or IPv6 address (without brackets) or a host name.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

// "host:port", with IPv6 hosts in brackets ("[::1]:3000").
std::string HostPortToString(const HostPort& address);

struct HostPortRules {
  // Port 0 ("any free port") is accepted: for addresses to listen on.
  bool port_zero_allowed = false;
  // A bare port ("3000") means default_host:3000; empty: a host is required.
  std::string default_host;
};

// Decimal ("42") or hexadecimal with 0x ("0x2A"); no sign, no spaces. kInvalidArgument otherwise
// or on overflow.
absl::StatusOr<u128> ParseU128(absl::string_view text);

// "host:port", "[v6]:port" or (with rules.default_host) "port". Surrounding spaces are ignored.
// kInvalidArgument names the text and what is wrong: no host, a bad or out-of-range port, an
// IPv6 address without brackets.
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, const HostPortRules& rules);

// A comma-separated list of ParseHostPort items, in order; at least one.
absl::StatusOr<std::vector<HostPort>> ParseHostPortList(absl::string_view text,
                                                        const HostPortRules& rules);

// Rewrites "--some-flag[=v]" (and "-some-flag") to "--some_flag[=v]" in place, so that Abseil's
// flag parser accepts the documented dashed names. Values are left alone, and so is everything
// after a "--" argument (positional arguments).
void NormalizeFlagNames(int argc, char** argv);

}  // namespace tb
