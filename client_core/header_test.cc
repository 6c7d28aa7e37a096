#include "client_core/header.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client_core/checksum.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/testing/captures.h"
#include "client_core/testing/events.h"
#include "client_core/testing/headers.h"
#include "client_core/types.h"

namespace tb {
namespace {

using client_core::testing::BytesFromHex;
using ::testing::HasSubstr;

constexpr u128 kClient = MakeU128(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
constexpr uint32_t kRelease = client_core::testing::kTestRelease;

template <typename View>
std::vector<uint8_t> BytesOf(const View& view) {
  static_assert(sizeof(View) == kHeaderSize);
  std::vector<uint8_t> bytes(kHeaderSize);
  std::memcpy(bytes.data(), &view, kHeaderSize);
  return bytes;
}

std::string Hex(std::span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

// A dump in the layout of PROTOCOL.md §15 ("  0: <64 hex digits>" per 32 bytes).
std::vector<uint8_t> FromDump(const std::string& dump) {
  std::string hex;
  for (absl::string_view line : absl::StrSplit(dump, '\n', absl::SkipWhitespace())) {
    const size_t colon = line.find(':');
    absl::string_view digits = colon == absl::string_view::npos ? line : line.substr(colon + 1);
    for (char c : digits) {
      if (c != ' ') hex.push_back(c);
    }
  }
  return BytesFromHex(hex);
}

template <typename View>
View ViewFromBytes(std::span<const uint8_t> bytes) {
  EXPECT_GE(bytes.size(), kHeaderSize);
  View view;
  std::memcpy(&view, bytes.data(), kHeaderSize);
  return view;
}

template <typename View>
View MakeView(Command command) {
  return client_core::testing::EmptyHeader<View>(command);
}

// ---- The deterministic session of PROTOCOL.md §15.4 ----------------------------------------

struct Session154 {
  RequestHeader register_request;
  std::vector<uint8_t> register_body = std::vector<uint8_t>(kRegisterRequestBodySize, 0);
  ReplyHeader register_reply;
  std::vector<uint8_t> register_reply_body;
  RequestHeader create_request;
  std::vector<uint8_t> create_body;
  ReplyHeader create_reply;
  std::vector<uint8_t> create_reply_body;
};

Session154 BuildSession154() {
  Session154 session;
  session.register_request = MakeView<RequestHeader>(Command::kRequest);
  session.register_request.client = kClient;
  session.register_request.operation = static_cast<uint8_t>(Operation::kRegister);
  Header header = AsHeader(session.register_request);
  SetChecksums(header, session.register_body);
  session.register_request = HeaderAs<RequestHeader>(header);

  RegisterResult result{};
  result.batch_size_limit = kBatchSizeLimitMax;
  session.register_reply_body.resize(sizeof(result));
  std::memcpy(session.register_reply_body.data(), &result, sizeof(result));
  session.register_reply = MakeView<ReplyHeader>(Command::kReply);
  session.register_reply.request_checksum = session.register_request.frame.checksum;
  session.register_reply.client = kClient;
  session.register_reply.op = 1;
  session.register_reply.commit = 1;
  session.register_reply.timestamp = 1700000000000000000ULL;
  session.register_reply.operation = static_cast<uint8_t>(Operation::kRegister);
  SetReplyChecksums(session.register_reply, session.register_reply_body);

  session.create_body = client_core::testing::CreateAccountsBody(1, 1);
  session.create_request = MakeView<RequestHeader>(Command::kRequest);
  session.create_request.parent = session.register_reply.context;
  session.create_request.client = kClient;
  session.create_request.session = 1;
  session.create_request.request = 1;
  session.create_request.operation = static_cast<uint8_t>(Operation::kCreateAccounts);
  header = AsHeader(session.create_request);
  SetChecksums(header, session.create_body);
  session.create_request = HeaderAs<RequestHeader>(header);

  const CreateResult created{1700000000000000001ULL, 0xFFFFFFFF, 0};
  std::vector<uint8_t> results(sizeof(created));
  std::memcpy(results.data(), &created, sizeof(created));
  const std::span<const uint8_t> result_batches[] = {results};
  session.create_reply_body = EncodeMultiBatch(sizeof(CreateResult), result_batches);
  session.create_reply = MakeView<ReplyHeader>(Command::kReply);
  session.create_reply.request_checksum = session.create_request.frame.checksum;
  session.create_reply.client = kClient;
  session.create_reply.op = 2;
  session.create_reply.commit = 2;
  session.create_reply.timestamp = 1700000000000000001ULL;
  session.create_reply.request = 1;
  session.create_reply.operation = static_cast<uint8_t>(Operation::kCreateAccounts);
  SetReplyChecksums(session.create_reply, session.create_reply_body);
  return session;
}

TEST(HeaderVectors, RegisterRequestMatchesProtocolBytes) {
  const Session154 session = BuildSession154();
  EXPECT_EQ(U128ToHex(session.register_request.frame.checksum),
            "0x8cca487e567b4b8e6efb7cb74bf11cd8");
  EXPECT_EQ(U128ToHex(session.register_request.frame.checksum_body),
            "0x3c61ffe89684eb2dbffcd4ddf3821b65");
  EXPECT_EQ(Hex(BytesOf(session.register_request)), Hex(FromDump(R"(
  0: d81cf14bb77cfb6e8e4b7b567e48ca8c00000000000000000000000000000000
 32: 651b82f3ddd4fcbf2deb8496e8ff613c00000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 0002000000000000000000000911000000000500000000000000000000000000
128: 0000000000000000000000000000000000000000000000000000000000000000
160: 1032547698badcfeefcdab896745230100000000000000000000000000000000
192: 0000000002000000000000000000000000000000000000000000000000000000
224: 0000000000000000000000000000000000000000000000000000000000000000)")));
}

TEST(HeaderVectors, RegisterReplyMatchesProtocolBytesAndContext) {
  const Session154 session = BuildSession154();
  EXPECT_EQ(U128ToHex(session.register_reply.context), "0x3b10c97bfe00b4e0c617d519232b0c2a");
  EXPECT_EQ(U128ToHex(session.register_reply.frame.checksum), "0xd35979c385b23b1ca76ae5bd7fe9fbca");
  EXPECT_EQ(U128ToHex(session.register_reply.frame.checksum_body),
            "0x191cda322bd68ef8082c67fd040ed2b5");
  EXPECT_EQ(Hex(BytesOf(session.register_reply)), Hex(FromDump(R"(
  0: cafbe97fbde56aa71c3bb285c37959d300000000000000000000000000000000
 32: b5d20e04fd672c08f88ed62b32da1c1900000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 4001000000000000000000000911000000000800000000000000000000000000
128: d81cf14bb77cfb6e8e4b7b567e48ca8c00000000000000000000000000000000
160: 2a0c2b2319d517c6e0b400fe7bc9103b00000000000000000000000000000000
192: 1032547698badcfeefcdab896745230101000000000000000100000000000000
224: 00002a36fe9c9717000000000200000000000000000000000000000000000000)")));
  EXPECT_EQ(Hex(session.register_reply_body), Hex(FromDump(R"(
  0: 00ff0f0000000000000000000000000000000000000000000000000000000000
 32: 0000000000000000000000000000000000000000000000000000000000000000)")));
}

TEST(HeaderVectors, CreateAccountsRequestMatchesProtocolBytes) {
  const Session154 session = BuildSession154();
  EXPECT_EQ(U128ToHex(session.create_request.frame.checksum), "0x8e4a8acba27c7685f4e5a919bc4298f5");
  EXPECT_EQ(U128ToHex(session.create_request.frame.checksum_body),
            "0xf5ac028b27486f9b55ee8bab633a87ae");
  EXPECT_EQ(Hex(BytesOf(session.create_request)), Hex(FromDump(R"(
  0: f59842bc19a9e5f485767ca2cb8a4a8e00000000000000000000000000000000
 32: ae873a63ab8bee559b6f48278b02acf500000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 0002000000000000000000000911000000000500000000000000000000000000
128: 2a0c2b2319d517c6e0b400fe7bc9103b00000000000000000000000000000000
160: 1032547698badcfeefcdab896745230101000000000000000000000000000000
192: 0100000092000000000000000000000000000000000000000000000000000000
224: 0000000000000000000000000000000000000000000000000000000000000000)")));
  EXPECT_EQ(Hex(session.create_body), Hex(FromDump(R"(
  0: 0100000000000000000000000000000000000000000000000000000000000000
 32: 0000000000000000000000000000000000000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 0000000000000000000000000000000001000000010000000000000000000000
128: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
160: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
192: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
224: ffffffffffffffffffffffffffffffffffffffffffffffffffffffff01000100)")));
}

TEST(HeaderVectors, CreateAccountsReplyMatchesProtocolBytes) {
  const Session154 session = BuildSession154();
  EXPECT_EQ(U128ToHex(session.create_reply.context), "0x11642294e22289365f0f9b66b0093867");
  EXPECT_EQ(U128ToHex(session.create_reply.frame.checksum), "0x91f1de6ef3a99c3eb2da0fad18dd87d1");
  EXPECT_EQ(U128ToHex(session.create_reply.frame.checksum_body),
            "0x11d934f98375af11be2484515da2b0e8");
  EXPECT_EQ(Hex(BytesOf(session.create_reply)), Hex(FromDump(R"(
  0: d187dd18ad0fdab23e9ca9f36edef19100000000000000000000000000000000
 32: e8b0a25d518424be11af7583f934d91100000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 2001000000000000000000000911000000000800000000000000000000000000
128: f59842bc19a9e5f485767ca2cb8a4a8e00000000000000000000000000000000
160: 673809b0669b0f5f368922e29422641100000000000000000000000000000000
192: 1032547698badcfeefcdab896745230102000000000000000200000000000000
224: 01002a36fe9c9717010000009200000000000000000000000000000000000000)")));
  EXPECT_EQ(Hex(session.create_reply_body),
            "01002a36fe9c9717ffffffff00000000ffffffffffffffffffffffff01000100");
}

TEST(HeaderVectors, EveryMessageOfTheSessionDecodesAndValidates) {
  const Session154 session = BuildSession154();
  const struct {
    Header header;
    std::span<const uint8_t> body;
  } messages[] = {
      {AsHeader(session.register_request), session.register_body},
      {AsHeader(session.register_reply), session.register_reply_body},
      {AsHeader(session.create_request), session.create_body},
      {AsHeader(session.create_reply), session.create_reply_body},
  };
  for (const auto& message : messages) {
    const std::vector<uint8_t> bytes = BytesOf(message.header);
    absl::StatusOr<Header> decoded = DecodeHeader(bytes, /*cluster=*/0);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(BytesOf(*decoded), bytes);
    EXPECT_TRUE(ValidateBody(*decoded, message.body).ok());
  }
  EXPECT_TRUE(ValidateRequest(session.register_request).ok());
  EXPECT_TRUE(ValidateRequest(session.create_request).ok());
  EXPECT_TRUE(ValidateReply(session.register_reply).ok());
  EXPECT_TRUE(ValidateReply(session.create_reply).ok());
  EXPECT_EQ(session.create_request.parent, session.register_reply.context);
}

TEST(HeaderVectors, PingPongAndEvictionMatchProtocolChecksums) {
  auto ping = MakeView<PingClientHeader>(Command::kPingClient);
  ping.client = kClient;
  ping.ping_timestamp_monotonic = 123456789;
  ping.session = 1;
  Header header = AsHeader(ping);
  SetChecksums(header, {});
  ping = HeaderAs<PingClientHeader>(header);
  EXPECT_EQ(U128ToHex(ping.frame.checksum), "0x3d51b73f9a4862abbd6fd4d7d56ac264");
  const std::vector<uint8_t> ping_bytes = BytesOf(ping);
  EXPECT_EQ(Hex(std::span(ping_bytes).subspan(96, 64)),
            "0001000000000000000000000911000000000300000000000000000000000000"
            "1032547698badcfeefcdab896745230115cd5b07000000000100000000000000");
  EXPECT_EQ(ping.frame.checksum_body, kChecksumOfEmpty);
  EXPECT_TRUE(ValidatePingClient(ping).ok());

  auto pong = MakeView<PongClientHeader>(Command::kPongClient);
  pong.ping_timestamp_monotonic = 123456789;
  header = AsHeader(pong);
  SetChecksums(header, {});
  pong = HeaderAs<PongClientHeader>(header);
  EXPECT_EQ(U128ToHex(pong.frame.checksum), "0x05c571b6c726d2c57ff4e1e7d0d16fdb");
  const std::vector<uint8_t> pong_bytes = BytesOf(pong);
  EXPECT_EQ(Hex(std::span(pong_bytes).subspan(96, 40)),
            "0001000000000000000000000911000000000400000000000000000000000000"
            "15cd5b0700000000");
  EXPECT_TRUE(ValidatePongClient(pong).ok());

  auto eviction = MakeView<EvictionHeader>(Command::kEviction);
  eviction.client = kClient;
  eviction.reason = EvictionReason::kNoSession;
  header = AsHeader(eviction);
  SetChecksums(header, {});
  eviction = HeaderAs<EvictionHeader>(header);
  EXPECT_EQ(U128ToHex(eviction.frame.checksum), "0xace08885b8df4d9a9d1d0d8280fbef27");
  const std::vector<uint8_t> bytes = BytesOf(eviction);
  EXPECT_EQ(Hex(std::span(bytes).subspan(96, 32)),
            "0001000000000000000000000911000000001200000000000000000000000000");
  EXPECT_EQ(bytes[255], 0x01);
  EXPECT_TRUE(ValidateEviction(eviction).ok());
}

// ---- Captured from the official 0.17.9 client (PROTOCOL.md §15.3) --------------------------

TEST(HeaderCaptured, RegisterRequestDecodesAndReencodes) {
  const std::vector<uint8_t> bytes = FromDump(R"(
  0: fd7ddbd00ca71fe8a197dc5eb6e22a0b00000000000000000000000000000000
 32: 651b82f3ddd4fcbf2deb8496e8ff613c00000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 0002000000000000000000000911000000000500000000000000000000000000
128: 0000000000000000000000000000000000000000000000000000000000000000
160: 4538ea46ebe506f692852fbbd7bca48600000000000000000000000000000000
192: 0000000002000000000000000000000000000000000000000000000000000000
224: 0000000000000000000000000000000000000000000000000000000000000000)");
  absl::StatusOr<Header> decoded = DecodeHeader(bytes, 0);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const auto request = HeaderAs<RequestHeader>(*decoded);
  EXPECT_EQ(U128ToHex(request.frame.checksum), "0x0b2ae2b65edc97a1e81fa70cd0db7dfd");
  EXPECT_EQ(request.frame.size, 512u);
  EXPECT_EQ(request.frame.release, kRelease);
  EXPECT_EQ(request.operation, 2);
  EXPECT_EQ(U128ToHex(request.client), "0x86a4bcd7bb2f8592f606e5eb46ea3845");
  EXPECT_TRUE(ValidateRequest(request).ok());
  EXPECT_TRUE(ValidateBody(*decoded, std::vector<uint8_t>(256, 0)).ok());

  auto rebuilt = MakeView<RequestHeader>(Command::kRequest);
  rebuilt.client = request.client;
  rebuilt.operation = 2;
  Header header = AsHeader(rebuilt);
  SetChecksums(header, std::vector<uint8_t>(256, 0));
  EXPECT_EQ(Hex(BytesOf(header)), Hex(bytes));
}

TEST(HeaderCaptured, LookupAccountsRequestDecodesAndReencodes) {
  const std::vector<uint8_t> message = FromDump(R"(
  0: 4658655719ee86734a900eebd5713b3f00000000000000000000000000000000
 32: 364924b6d51314fbb29a07f3279036a400000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 2001000000000000000000000911000000000500000000000000000000000000
128: a525d9c07fccf503393247982167894e00000000000000000000000000000000
160: 4e2e6019b7b758ddc56fbff26834213a01000000000000000000000000000000
192: 010000008c0000001e5109000000000000000000000000000000000000000000
224: 0000000000000000000000000000000000000000000000000000000000000000
256: 01000000000000000000000000000000ffffffffffffffffffffffff01000100)");
  const std::span<const uint8_t> body = std::span(message).subspan(kHeaderSize);
  absl::StatusOr<Header> decoded = DecodeHeader(message, 0);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(ValidateBody(*decoded, body).ok());
  const auto request = HeaderAs<RequestHeader>(*decoded);
  EXPECT_EQ(request.session, 1u);
  EXPECT_EQ(request.request, 1u);
  EXPECT_EQ(request.operation, static_cast<uint8_t>(Operation::kLookupAccounts));
  EXPECT_EQ(request.previous_request_latency, 610590u);
  EXPECT_TRUE(ValidateRequest(request).ok());

  auto rebuilt = MakeView<RequestHeader>(Command::kRequest);
  rebuilt.parent = request.parent;
  rebuilt.client = request.client;
  rebuilt.session = 1;
  rebuilt.request = 1;
  rebuilt.operation = request.operation;
  rebuilt.previous_request_latency = 610590;
  Header header = AsHeader(rebuilt);
  SetChecksums(header, body);
  EXPECT_EQ(Hex(BytesOf(header)), Hex(std::span(message).first(kHeaderSize)));
}

TEST(HeaderCaptured, PingClientDecodesAndReencodes) {
  const std::vector<uint8_t> bytes = FromDump(R"(
  0: aa5d8c4925f1e8779dcac317ff6414db00000000000000000000000000000000
 32: 83cc600dc4e3e7e62d4055826174f14900000000000000000000000000000000
 64: 0000000000000000000000000000000000000000000000000000000000000000
 96: 0001000000000000000000000911000000000300000000000000000000000000
128: 4e2e6019b7b758ddc56fbff26834213ae169f800480300000100000000000000
160: 0000000000000000000000000000000000000000000000000000000000000000
192: 0000000000000000000000000000000000000000000000000000000000000000
224: 0000000000000000000000000000000000000000000000000000000000000000)");
  absl::StatusOr<Header> decoded = DecodeHeader(bytes, 0);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  const auto ping = HeaderAs<PingClientHeader>(*decoded);
  EXPECT_EQ(ping.session, 1u);
  EXPECT_TRUE(ValidatePingClient(ping).ok());
  auto rebuilt = MakeView<PingClientHeader>(Command::kPingClient);
  rebuilt.client = ping.client;
  rebuilt.ping_timestamp_monotonic = ping.ping_timestamp_monotonic;
  rebuilt.session = 1;
  Header header = AsHeader(rebuilt);
  SetChecksums(header, {});
  EXPECT_EQ(Hex(BytesOf(header)), Hex(bytes));
}

}  // namespace
}  // namespace tb
