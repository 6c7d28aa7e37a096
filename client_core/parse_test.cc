#include "client_core/parse.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb {
namespace {

using ::testing::HasSubstr;

TEST(ParseU128, AcceptsDecimalAndHex) {
  EXPECT_EQ(*ParseU128("0"), 0u);
  EXPECT_EQ(*ParseU128("42"), 42u);
  EXPECT_EQ(*ParseU128("0x2a"), 42u);
  EXPECT_EQ(*ParseU128("0X2A"), 42u);
  EXPECT_EQ(*ParseU128("340282366920938463463374607431768211455"), kU128Max);
  EXPECT_EQ(*ParseU128("0xffffffffffffffffffffffffffffffff"), kU128Max);
  EXPECT_EQ(*ParseU128("18446744073709551616"), MakeU128(1, 0));
  EXPECT_EQ(*ParseU128("0x00000000000000000000000000000000001"), 1u);  // Leading zeros.
}

TEST(ParseU128, RejectsMalformedAndOverflowingText) {
  for (const char* text : {"", "0x", "-1", "+1", " 1", "1 ", "1.0", "12a", "0xg", "0x-1",
                           "340282366920938463463374607431768211456",
                           "0x100000000000000000000000000000000"}) {
    EXPECT_EQ(ParseU128(text).status().code(), absl::StatusCode::kInvalidArgument) << text;
  }
  EXPECT_THAT(ParseU128("0x1g").status().message(), HasSubstr("0x1g"));
}

TEST(ParseHostPort, AcceptsIpv4Ipv6AndNames) {
  EXPECT_EQ(*ParseHostPort("127.0.0.1:3000", {}), (HostPort{"127.0.0.1", 3000}));
  EXPECT_EQ(*ParseHostPort("[::1]:3000", {}), (HostPort{"::1", 3000}));
  EXPECT_EQ(*ParseHostPort(" db.example:65535 ", {}), (HostPort{"db.example", 65535}));
  EXPECT_EQ(*ParseHostPort("[::]:0", {.port_zero_allowed = true}), (HostPort{"::", 0}));
  EXPECT_EQ(*ParseHostPort("3000", {.default_host = "127.0.0.1"}),
            (HostPort{"127.0.0.1", 3000}));
}

TEST(ParseHostPort, RejectsMalformedAddressesWithAReason) {
  for (const char* text : {"", "3000", "host", "host:", ":3000", "host:0", "host:65536",
                           "host:x", "host:+1", "host:-1", "::1:3000", "[::1]3000", "[::1]",
                           "[]:3000", "host:3000:1"}) {
    EXPECT_EQ(ParseHostPort(text, {}).status().code(), absl::StatusCode::kInvalidArgument)
        << text;
  }
  EXPECT_THAT(ParseHostPort("::1:3000", {}).status().message(), HasSubstr("brackets"));
  EXPECT_THAT(ParseHostPort("h:0", {}).status().message(), HasSubstr("1..65535"));
  EXPECT_THAT(ParseHostPort("h:70000", {.port_zero_allowed = true}).status().message(),
              HasSubstr("0..65535"));
  EXPECT_THAT(ParseHostPort(":1", {}).status().message(), HasSubstr("no host"));
}

TEST(HostPortToString, BracketsIpv6) {
  EXPECT_EQ(HostPortToString({"::1", 3002}), "[::1]:3002");
  EXPECT_EQ(HostPortToString({"db.example", 1}), "db.example:1");
}

TEST(ParseHostPortList, KeepsOrderAndRejectsEmptyItems) {
  absl::StatusOr<std::vector<HostPort>> addresses =
      ParseHostPortList("127.0.0.1:3000, db.example:3001,[::1]:3002,3003",
                        {.default_host = "127.0.0.1"});
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  EXPECT_THAT(*addresses, ::testing::ElementsAre(HostPort{"127.0.0.1", 3000},
                                                 HostPort{"db.example", 3001},
                                                 HostPort{"::1", 3002},
                                                 HostPort{"127.0.0.1", 3003}));
  for (const char* text : {"", ",", "a:1,,b:2", "a:1,", "a:1,b:0"}) {
    EXPECT_EQ(ParseHostPortList(text, {}).status().code(), absl::StatusCode::kInvalidArgument)
        << text;
  }
}

TEST(NormalizeFlagNames, DashesBecomeUnderscoresInNamesOnlyUntilDoubleDash) {
  std::string program = "tbproxy", a = "--cluster-addresses=1.2.3.4:5", b = "-session-budget",
              c = "9-9", d = "--value-dashes=a-b", e = "--", f = "--not-a-flag";
  char* argv[] = {program.data(), a.data(), b.data(), c.data(), d.data(), e.data(), f.data()};
  NormalizeFlagNames(7, argv);
  EXPECT_STREQ(argv[0], "tbproxy");
  EXPECT_STREQ(argv[1], "--cluster_addresses=1.2.3.4:5");
  EXPECT_STREQ(argv[2], "-session_budget");
  EXPECT_STREQ(argv[3], "9-9");
  EXPECT_STREQ(argv[4], "--value_dashes=a-b");
  EXPECT_STREQ(argv[5], "--");
  EXPECT_STREQ(argv[6], "--not-a-flag");
}

}  // namespace
}  // namespace tb
