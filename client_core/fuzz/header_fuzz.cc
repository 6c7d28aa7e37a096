// libFuzzer target for the header codec: arbitrary bytes must never crash DecodeHeader, the
// per-command validators or ValidateBody, and every message that decodes must re-encode to the
// same bytes.
//
// Input: one mode byte, then the message (256-byte header and body). Random bytes almost never
// carry a valid checksum, so mode bit 0 makes the target set the header checksum and bit 1 the
// body checksum first; the fuzzer then explores the frame and command rules behind them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/checksum.h"
#include "client_core/header.h"

namespace {

void ExerciseValidators(const tb::Header& header) {
  // Results do not matter here, only that no input can crash or misbehave under sanitizers.
  (void)tb::ValidateRequest(tb::HeaderAs<tb::RequestHeader>(header)).ok();
  (void)tb::ValidateReply(tb::HeaderAs<tb::ReplyHeader>(header)).ok();
  (void)tb::ValidatePingClient(tb::HeaderAs<tb::PingClientHeader>(header)).ok();
  (void)tb::ValidatePongClient(tb::HeaderAs<tb::PongClientHeader>(header)).ok();
  (void)tb::ValidateEviction(tb::HeaderAs<tb::EvictionHeader>(header)).ok();
  TB_ASSERT(!tb::HeaderToString(header).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::vector<uint8_t> message(data + 1, data + size);
  if (message.size() >= tb::kHeaderSize) {
    tb::Header header;
    std::memcpy(&header, message.data(), sizeof(header));
    const std::span<const uint8_t> body = std::span(message).subspan(tb::kHeaderSize);
    if ((mode & 2) != 0) header.frame.checksum_body = tb::Checksum(body);
    if ((mode & 1) != 0) tb::SetHeaderChecksum(header);
    std::memcpy(message.data(), &header, sizeof(header));
  }

  absl::StatusOr<tb::Header> decoded = tb::DecodeHeader(message, /*cluster=*/0);
  if (!decoded.ok()) return 0;
  TB_ASSERT(message.size() >= tb::kHeaderSize);
  TB_ASSERT(decoded->frame.size >= tb::kHeaderSize && decoded->frame.size <= tb::kMessageSizeMax);
  ExerciseValidators(*decoded);

  // Round trip: the decoded header re-encodes to the input bytes.
  tb::Header reencoded = *decoded;
  tb::SetHeaderChecksum(reencoded);
  TB_ASSERT(std::memcmp(&reencoded, message.data(), tb::kHeaderSize) == 0);

  const std::span<const uint8_t> body = std::span(message).subspan(tb::kHeaderSize);
  if (!tb::ValidateBody(*decoded, body).ok()) return 0;
  // A complete, intact message: building it again from its fields and body gives its bytes.
  tb::Header rebuilt = *decoded;
  rebuilt.frame.checksum = 0;
  rebuilt.frame.checksum_body = 0;
  tb::SetChecksums(rebuilt, body);
  TB_ASSERT(std::memcmp(&rebuilt, message.data(), tb::kHeaderSize) == 0);
  return 0;
}
