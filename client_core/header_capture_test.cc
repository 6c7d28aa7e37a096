// Every message captured between the official 0.17.9 Node client and a real 0.17.9 replica, and
// every raw probe sent to one (shared/spec/captures/real-0.17.9): checksums verify, the reply
// `context` rule holds, and re-encoding from the decoded fields reproduces the bytes.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client_core/testing/captures.h"
#include "client_core/checksum.h"
#include "client_core/header.h"

namespace tb {
namespace {

using client_core::testing::CapturedMessage;

// The probes that corrupt a checksum on purpose (README "Checking your implementation").
bool HeaderCorruptedOnPurpose(const CapturedMessage& message) {
  return absl::StrContains(message.file, "71_bad_header_checksum") &&
         message.direction == "client->replica";
}
bool BodyCorruptedOnPurpose(const CapturedMessage& message) {
  return (absl::StrContains(message.file, "72_bad_body_checksum") ||
          absl::StrContains(message.file, "76_ping_bad_checksum_body")) &&
         message.direction == "client->replica";
}

const std::vector<CapturedMessage>& Messages() {
  static const auto* messages = new std::vector<CapturedMessage>(client_core::testing::LoadCapturedMessages());
  return *messages;
}

Header HeaderOf(const CapturedMessage& message) {
  Header header;
  std::memcpy(&header, message.header.data(), sizeof(header));
  return header;
}

TEST(HeaderCaptures, AreLoaded) {
  // 1,172 messages in the exchange files at the time of writing; new captures only add.
  EXPECT_GE(Messages().size(), 1100u);
  for (const CapturedMessage& message : Messages()) {
    ASSERT_EQ(message.header.size(), kHeaderSize) << message.file;
  }
}

TEST(HeaderCaptures, EveryHeaderChecksumVerifiesExceptTheCorruptedProbe) {
  int verified = 0;
  int corrupted = 0;
  for (const CapturedMessage& message : Messages()) {
    const Header header = HeaderOf(message);
    const u128 computed = Checksum(std::span(message.header).subspan(16));
    if (HeaderCorruptedOnPurpose(message)) {
      EXPECT_NE(computed, header.frame.checksum) << message.file;
      EXPECT_EQ(DecodeHeader(message.header, 0).status().code(), absl::StatusCode::kDataLoss);
      corrupted++;
    } else {
      EXPECT_EQ(computed, header.frame.checksum) << message.file;
      verified++;
    }
  }
  EXPECT_GE(corrupted, 2);
  EXPECT_GE(verified, 1100);
}

TEST(HeaderCaptures, EveryBodyChecksumVerifiesExceptTheCorruptedProbes) {
  int verified = 0;
  int corrupted = 0;
  for (const CapturedMessage& message : Messages()) {
    if (!message.body.has_value() || HeaderCorruptedOnPurpose(message)) continue;
    const Header header = HeaderOf(message);
    if (header.frame.size != kHeaderSize + message.body->size()) continue;  // Size probes.
    const absl::Status valid = ValidateBody(header, *message.body);
    if (BodyCorruptedOnPurpose(message)) {
      EXPECT_EQ(valid.code(), absl::StatusCode::kDataLoss) << message.file;
      corrupted++;
    } else {
      EXPECT_TRUE(valid.ok()) << message.file << ": " << valid;
      verified++;
    }
  }
  EXPECT_GE(corrupted, 4);
  EXPECT_GE(verified, 1100);
}

TEST(HeaderCaptures, EveryMessageFromAReplicaDecodesAndValidates) {
  int replies = 0;
  for (const CapturedMessage& message : Messages()) {
    if (message.direction != "replica->client") continue;
    absl::StatusOr<Header> decoded = DecodeHeader(message.header, 0);
    ASSERT_TRUE(decoded.ok()) << message.file << ": " << decoded.status();
    switch (decoded->frame.command) {
      case Command::kReply:
        EXPECT_TRUE(ValidateReply(HeaderAs<ReplyHeader>(*decoded)).ok()) << message.file;
        replies++;
        break;
      case Command::kPongClient:
        EXPECT_TRUE(ValidatePongClient(HeaderAs<PongClientHeader>(*decoded)).ok()) << message.file;
        break;
      case Command::kEviction:
        EXPECT_TRUE(ValidateEviction(HeaderAs<EvictionHeader>(*decoded)).ok()) << message.file;
        break;
      default:
        ADD_FAILURE() << message.file << ": unexpected " << CommandName(decoded->frame.command);
    }
  }
  EXPECT_GE(replies, 300);
}

TEST(HeaderCaptures, EveryMessageOfTheOfficialClientDecodesAndValidates) {
  int checked = 0;
  for (const CapturedMessage& message : Messages()) {
    if (message.direction != "client->replica" || absl::StartsWith(message.file, "raw-probes")) {
      continue;
    }
    absl::StatusOr<Header> decoded = DecodeHeader(message.header, 0);
    ASSERT_TRUE(decoded.ok()) << message.file << ": " << decoded.status();
    if (decoded->frame.command == Command::kRequest) {
      EXPECT_TRUE(ValidateRequest(HeaderAs<RequestHeader>(*decoded)).ok()) << message.file;
    } else {
      ASSERT_EQ(decoded->frame.command, Command::kPingClient) << message.file;
      EXPECT_TRUE(ValidatePingClient(HeaderAs<PingClientHeader>(*decoded)).ok()) << message.file;
    }
    checked++;
  }
  EXPECT_GE(checked, 50);
}

// A reply's context is the checksum of its header with context zeroed (§4.3), except for
// replies re-sent later with a raised view, which keep the context of the original.
TEST(HeaderCaptures, ReplyContextRuleHoldsUnlessTheReplyWasResentInANewView) {
  int recomputed = 0;
  int kept = 0;
  for (const CapturedMessage& message : Messages()) {
    const Header header = HeaderOf(message);
    if (header.frame.command != Command::kReply || !message.body.has_value()) continue;
    if (header.frame.size != kHeaderSize + message.body->size()) continue;
    ASSERT_TRUE(message.context_ok.has_value()) << message.file;
    ReplyHeader rebuilt = HeaderAs<ReplyHeader>(header);
    SetReplyChecksums(rebuilt, *message.body);
    if (*message.context_ok) {
      EXPECT_EQ(std::memcmp(&rebuilt, message.header.data(), kHeaderSize), 0) << message.file;
      recomputed++;
    } else {
      EXPECT_NE(rebuilt.context, HeaderAs<ReplyHeader>(header).context) << message.file;
      // Re-sent replies: the original context with only view and checksum changed; the header
      // checksum still verifies and the message is valid.
      Header resent = header;
      SetHeaderChecksum(resent);
      EXPECT_EQ(std::memcmp(&resent, message.header.data(), kHeaderSize), 0) << message.file;
      kept++;
    }
  }
  EXPECT_GE(recomputed, 300);
  EXPECT_GE(kept, 5);
}

// Re-encoding every non-reply message from its own fields and body gives the same bytes.
TEST(HeaderCaptures, ReencodingReproducesEveryIntactMessage) {
  int reencoded = 0;
  for (const CapturedMessage& message : Messages()) {
    if (!message.body.has_value() || HeaderCorruptedOnPurpose(message) ||
        BodyCorruptedOnPurpose(message)) {
      continue;
    }
    Header header = HeaderOf(message);
    if (header.frame.size != kHeaderSize + message.body->size()) continue;
    if (header.frame.command == Command::kReply) continue;  // Covered by the context test.
    std::memset(&header.frame.checksum, 0, sizeof(u128));
    std::memset(&header.frame.checksum_body, 0, sizeof(u128));
    SetChecksums(header, *message.body);
    EXPECT_EQ(std::memcmp(&header, message.header.data(), kHeaderSize), 0) << message.file;
    reencoded++;
  }
  EXPECT_GE(reencoded, 600);
}

}  // namespace
}  // namespace tb
