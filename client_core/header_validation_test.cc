// Rejection of malformed headers: frame rules (§3.2), per-command rules (§6), and arbitrary bytes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "client_core/checksum.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/testing/headers.h"

namespace tb {
namespace {

using ::testing::HasSubstr;

constexpr u128 kCluster = 7;
template <typename View>
View MakeView(Command command) {
  return client_core::testing::EmptyHeader<View>(command, kCluster);
}

RequestHeader ValidRequest() { return client_core::testing::TestRequest(kCluster); }

ReplyHeader ValidReply() { return client_core::testing::TestReply(kCluster); }

std::vector<uint8_t> Encode(Header header) {
  SetHeaderChecksum(header);
  std::vector<uint8_t> bytes(kHeaderSize);
  std::memcpy(bytes.data(), &header, kHeaderSize);
  return bytes;
}

// ---- Frame ---------------------------------------------------------------------------------

TEST(DecodeHeader, AcceptsAValidFrameAndIgnoresBytesAfterTheHeader) {
  std::vector<uint8_t> bytes = Encode(AsHeader(ValidRequest()));
  bytes.resize(kHeaderSize + 100, 0xEE);
  absl::StatusOr<Header> decoded = DecodeHeader(bytes, kCluster);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(std::memcmp(&*decoded, bytes.data(), kHeaderSize), 0);
}

TEST(DecodeHeader, RejectsEveryTruncation) {
  const std::vector<uint8_t> bytes = Encode(AsHeader(ValidRequest()));
  for (size_t length = 0; length < kHeaderSize; length++) {
    absl::StatusOr<Header> decoded = DecodeHeader(std::span(bytes).first(length), kCluster);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << length;
  }
}

TEST(DecodeHeader, RejectsEverySingleBitFlipAsDataLoss) {
  const std::vector<uint8_t> original = Encode(AsHeader(ValidRequest()));
  for (size_t bit = 0; bit < kHeaderSize * 8; bit++) {
    std::vector<uint8_t> bytes = original;
    bytes[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    absl::StatusOr<Header> decoded = DecodeHeader(bytes, kCluster);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << "bit " << bit;
  }
}

// Each frame rule alone, with a correct checksum, so the rule itself is what refuses it.
TEST(DecodeHeader, RejectsEachFrameRuleViolation) {
  const struct {
    const char* rule;
    std::function<void(Header&)> mutate;
  } cases[] = {
      {"checksum_padding", [](Header& h) { h.frame.checksum_padding = 1; }},
      {"checksum_body_padding", [](Header& h) { h.frame.checksum_body_padding = u128{1} << 127; }},
      {"nonce_reserved", [](Header& h) { h.frame.nonce_reserved = 5; }},
      {"epoch", [](Header& h) { h.frame.epoch = 1; }},
      {"protocol", [](Header& h) { h.frame.protocol = 1; }},
      {"reserved_frame", [](Header& h) { h.frame.reserved_frame[0] = 1; }},
      {"reserved_frame", [](Header& h) { h.frame.reserved_frame[11] = 0x80; }},
      {"size", [](Header& h) { h.frame.size = kHeaderSize - 1; }},
      {"size", [](Header& h) { h.frame.size = 0; }},
      {"size", [](Header& h) { h.frame.size = kMessageSizeMax + 1; }},
      {"size", [](Header& h) { h.frame.size = 0xFFFFFFFF; }},
      {"cluster", [](Header& h) { h.frame.cluster = kCluster + 1; }},
      {"command", [](Header& h) { h.frame.command = Command::kReserved; }},
      {"command", [](Header& h) { h.frame.command = static_cast<Command>(kCommandMax + 1); }},
      {"command", [](Header& h) { h.frame.command = static_cast<Command>(255); }},
  };
  for (const auto& test_case : cases) {
    Header header = AsHeader(ValidRequest());
    test_case.mutate(header);
    absl::StatusOr<Header> decoded = DecodeHeader(Encode(header), kCluster);
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << test_case.rule;
    EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(test_case.rule));
  }
}

TEST(DecodeHeader, AcceptsTheSizeBoundsAndEveryKnownCommand) {
  for (uint32_t size : {kHeaderSize, kHeaderSize + 1, kMessageSizeMax}) {
    Header header = AsHeader(ValidRequest());
    header.frame.size = size;
    EXPECT_TRUE(DecodeHeader(Encode(header), kCluster).ok()) << size;
  }
  for (int command = 1; command <= kCommandMax; command++) {
    Header header = AsHeader(ValidRequest());
    header.frame.command = static_cast<Command>(command);
    EXPECT_TRUE(DecodeHeader(Encode(header), kCluster).ok()) << command;
  }
}

TEST(DecodeHeader, NeverAcceptsRandomBytesAndNeverCrashesOnThem) {
  const uint32_t seed = 1234;
  std::mt19937 random(seed);
  std::vector<uint8_t> bytes(kHeaderSize);
  for (int round = 0; round < 20000; round++) {
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
    EXPECT_FALSE(DecodeHeader(bytes, kCluster).ok()) << "seed " << seed << " round " << round;
  }
}

// Random headers with a correct checksum reach every later check; none may crash, and the
// per-command validators must be safe on whatever decodes.
TEST(DecodeHeader, RandomHeadersWithValidChecksumsNeverCrashAnyValidator) {
  const uint32_t seed = 99;
  std::mt19937 random(seed);
  int decoded_count = 0;
  for (int round = 0; round < 20000; round++) {
    Header header = AsHeader(ValidRequest());
    auto* bytes = reinterpret_cast<uint8_t*>(&header);
    // Randomise a few bytes anywhere past the checksum, so some frames stay valid.
    const int changes = 1 + static_cast<int>(random() % 4);
    for (int i = 0; i < changes; i++) bytes[16 + random() % (kHeaderSize - 16)] = random();
    absl::StatusOr<Header> decoded = DecodeHeader(Encode(header), kCluster);
    if (!decoded.ok()) continue;
    decoded_count++;
    (void)ValidateRequest(HeaderAs<RequestHeader>(*decoded)).ok();
    (void)ValidateReply(HeaderAs<ReplyHeader>(*decoded)).ok();
    (void)ValidatePingClient(HeaderAs<PingClientHeader>(*decoded)).ok();
    (void)ValidatePongClient(HeaderAs<PongClientHeader>(*decoded)).ok();
    (void)ValidateEviction(HeaderAs<EvictionHeader>(*decoded)).ok();
    EXPECT_FALSE(HeaderToString(*decoded).empty());
  }
  EXPECT_GT(decoded_count, 1000) << "seed " << seed;
}

TEST(ValidateBody, RejectsWrongLengthAndFlippedBits) {
  std::vector<uint8_t> body(300, 0x42);
  Header header = AsHeader(ValidRequest());
  SetChecksums(header, body);
  EXPECT_TRUE(ValidateBody(header, body).ok());
  EXPECT_EQ(ValidateBody(header, std::span(body).first(299)).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<uint8_t> longer = body;
  longer.push_back(0);
  EXPECT_EQ(ValidateBody(header, longer).code(), absl::StatusCode::kInvalidArgument);
  for (size_t bit = 0; bit < body.size() * 8; bit += 7) {
    body[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_EQ(ValidateBody(header, body).code(), absl::StatusCode::kDataLoss) << bit;
    body[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
  }
  header.frame.size = 10;  // Not a decodable header: still no crash.
  EXPECT_FALSE(ValidateBody(header, {}).ok());
}

TEST(SetChecksums, SizeAndBothChecksumsAndEmptyBody) {
  Header header = AsHeader(ValidRequest());
  SetChecksums(header, {});
  EXPECT_EQ(header.frame.size, kHeaderSize);
  EXPECT_EQ(header.frame.checksum_body, kChecksumOfEmpty);
  EXPECT_TRUE(DecodeHeader(Encode(header), kCluster).ok());
  const std::vector<uint8_t> body(kMessageBodySizeMax, 1);
  SetChecksums(header, body);
  EXPECT_EQ(header.frame.size, kMessageSizeMax);
  EXPECT_TRUE(ValidateBody(header, body).ok());
}

TEST(SetReplyChecksums, ContextIsTheChecksumWithContextZeroAndSurvivesAViewChange) {
  ReplyHeader reply = ValidReply();
  reply.context = 12345;  // Whatever was there before is replaced.
  const std::vector<uint8_t> body = {1, 2, 3};
  SetReplyChecksums(reply, body);
  ReplyHeader zeroed = reply;
  zeroed.context = 0;
  Header zeroed_header = AsHeader(zeroed);
  const auto* zeroed_bytes = reinterpret_cast<const uint8_t*>(&zeroed_header);
  EXPECT_EQ(reply.context, Checksum(std::span(zeroed_bytes + 16, kHeaderSize - 16)));
  EXPECT_NE(reply.context, reply.frame.checksum);
  EXPECT_EQ(reply.frame.size, kHeaderSize + 3);

  // Re-sent with a raised view: only view and checksum change; it still decodes.
  const u128 context = reply.context;
  const u128 checksum = reply.frame.checksum;
  Header resent = AsHeader(reply);
  resent.frame.view += 1;
  SetHeaderChecksum(resent);
  EXPECT_EQ(HeaderAs<ReplyHeader>(resent).context, context);
  EXPECT_NE(resent.frame.checksum, checksum);
  EXPECT_TRUE(DecodeHeader(Encode(resent), kCluster).ok());
  EXPECT_TRUE(ValidateReply(HeaderAs<ReplyHeader>(resent)).ok());
}

}  // namespace
}  // namespace tb
