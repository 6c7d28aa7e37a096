#include "client_core/parse.h"

#include <cstring>

#include "absl/numeric/int128.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tb {
namespace {

bool AllOf(absl::string_view text, int (*predicate)(int)) {
  for (const char c : text) {
    if (predicate(static_cast<unsigned char>(c)) == 0) return false;
  }
  return true;
}

absl::Status AddressError(absl::string_view text, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("address \"", text, "\": ", problem));
}

}  // namespace

std::string HostPortToString(const HostPort& address) {
  if (absl::StrContains(address.host, ':')) {
    return absl::StrCat("[", address.host, "]:", address.port);
  }
  return absl::StrCat(address.host, ":", address.port);
}

absl::StatusOr<u128> ParseU128(absl::string_view text) {
  absl::string_view digits = text;
  const bool hex = absl::ConsumePrefix(&digits, "0x") || absl::ConsumePrefix(&digits, "0X");
  // absl's parsers also accept signs and spaces; ids are written without either.
  const bool well_formed = !digits.empty() && AllOf(digits, hex ? isxdigit : isdigit);
  absl::uint128 value = 0;
  if (!well_formed) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\" is not a u128 (decimal, or hex with 0x)"));
  }
  if (hex ? !absl::SimpleHexAtoi(digits, &value) : !absl::SimpleAtoi(digits, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is larger than a u128"));
  }
  return MakeU128(absl::Uint128High64(value), absl::Uint128Low64(value));
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view text, const HostPortRules& rules) {
  const absl::string_view item = absl::StripAsciiWhitespace(text);
  HostPort address;
  absl::string_view port_text;
  absl::string_view rest = item;
  if (absl::ConsumePrefix(&rest, "[")) {
    const size_t close = rest.find("]:");
    if (close == absl::string_view::npos) return AddressError(item, "expected [IPv6]:port");
    address.host = std::string(rest.substr(0, close));
    port_text = rest.substr(close + 2);
  } else if (const size_t colon = item.rfind(':'); colon != absl::string_view::npos) {
    address.host = std::string(item.substr(0, colon));
    port_text = item.substr(colon + 1);
    if (absl::StrContains(address.host, ':')) {
      return AddressError(item, "write IPv6 addresses in brackets: [host]:port");
    }
  } else if (!rules.default_host.empty()) {
    address.host = rules.default_host;
    port_text = item;
  } else {
    return AddressError(item, "expected host:port");
  }
  if (address.host.empty()) return AddressError(item, "no host before the port");
  uint32_t port = 0;
  const uint32_t port_min = rules.port_zero_allowed ? 0 : 1;
  if (port_text.empty() || !AllOf(port_text, isdigit) || !absl::SimpleAtoi(port_text, &port) ||
      port < port_min || port > 65535) {
    return AddressError(item, absl::StrCat("the port must be a number in ", port_min, "..65535"));
  }
  address.port = static_cast<uint16_t>(port);
  return address;
}

absl::StatusOr<std::vector<HostPort>> ParseHostPortList(absl::string_view text,
                                                        const HostPortRules& rules) {
  std::vector<HostPort> addresses;
  for (const absl::string_view item : absl::StrSplit(text, ',')) {
    absl::StatusOr<HostPort> address = ParseHostPort(item, rules);
    if (!address.ok()) return address.status();
    addresses.push_back(*std::move(address));
  }
  return addresses;
}

void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* argument = argv[i];
    if (std::strcmp(argument, "--") == 0) return;
    if (argument[0] != '-') continue;
    char* name = argument + (argument[1] == '-' ? 2 : 1);
    for (char* c = name; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

}  // namespace tb
