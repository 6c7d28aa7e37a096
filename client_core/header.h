// The 256-byte message header of the TigerBeetle 0.17.x client protocol (PROTOCOL.md §3, §6).
//
// `Header` is the wire layout of the frame (bytes 0..127) followed by the command-specific part
// (bytes 128..255). The typed views RequestHeader, ReplyHeader, PingClientHeader,
// PongClientHeader and EvictionHeader give that part its fields. All are plain structures
// copied with memcpy; nothing here reads a socket.
//
// Receiving: DecodeHeader() checks the header checksum and the frame rules (any failure means
// the connection must be closed), then ValidateXxx() checks the per-command rules (a failure
// means the message is dropped and logged). Sending: fill a header, then SetChecksums().
//
//   TB_ASSIGN_OR_RETURN(tb::Header header, tb::DecodeHeader(bytes, cluster));
//   if (header.command == tb::Command::kReply) { auto reply = tb::AsReply(header); ... }
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/constants.h"
#include "client_core/u128.h"

namespace tb {

enum class Command : uint8_t {
  kReserved = 0,
  kPing = 1,
  kPong = 2,
  kPingClient = 3,
  kPongClient = 4,
  kRequest = 5,
  kPrepare = 6,
  kPrepareOk = 7,
  kReply = 8,
  kCommit = 9,
  kExitView = 10,
  kJoinView = 11,
  kDeprecated12 = 12,
  kGetView = 13,
  kGetHeaders = 14,
  kGetPrepare = 15,
  kGetReply = 16,
  kHeaders = 17,
  kEviction = 18,
  kGetBlocks = 19,
  kBlock = 20,
  kDeprecated21 = 21,
  kDeprecated22 = 22,
  kDeprecated23 = 23,
  kView = 24,
};
inline constexpr uint8_t kCommandMax = 24;

enum class EvictionReason : uint8_t {
  kReserved = 0,
  kNoSession = 1,
  kClientReleaseTooLow = 2,
  kClientReleaseTooHigh = 3,
  kInvalidRequestOperation = 4,
  kInvalidRequestBody = 5,
  kInvalidRequestBodySize = 6,
  kSessionTooLow = 7,
  kSessionReleaseMismatch = 8,
};
inline constexpr uint8_t kEvictionReasonMax = 8;
// "no_session", "invalid_request_body", … ; "unknown" outside 1..8.
const char* EvictionReasonName(EvictionReason reason);
const char* CommandName(Command command);

// Bytes 0..127, identical for every command.
struct Frame {
  u128 checksum;
  u128 checksum_padding;
  u128 checksum_body;
  u128 checksum_body_padding;
  u128 nonce_reserved;
  u128 cluster;
  uint32_t size;
  uint32_t epoch;
  uint32_t view;
  uint32_t release;
  uint16_t protocol;
  Command command;
  uint8_t replica;
  uint8_t reserved_frame[12];
};

struct Header {
  Frame frame;
  uint8_t command_specific[128];
};

struct RequestHeader {
  Frame frame;
  u128 parent;
  u128 parent_padding;
  u128 client;
  uint64_t session;
  uint64_t timestamp;
  uint32_t request;
  uint8_t operation;
  uint8_t previous_request_latency_padding[3];
  uint32_t previous_request_latency;  // Microseconds.
  uint8_t reserved[52];
};

struct ReplyHeader {
  Frame frame;
  u128 request_checksum;
  u128 request_checksum_padding;
  u128 context;
  u128 context_padding;
  u128 client;
  uint64_t op;
  uint64_t commit;
  uint64_t timestamp;
  uint32_t request;
  uint8_t operation;
  uint8_t reserved[19];
};

struct PingClientHeader {
  Frame frame;
  u128 client;
  uint64_t ping_timestamp_monotonic;
  uint64_t session;
  uint8_t reserved[96];
};

struct PongClientHeader {
  Frame frame;
  uint64_t ping_timestamp_monotonic;
  uint8_t reserved[120];
};

struct EvictionHeader {
  Frame frame;
  u128 client;
  uint8_t reserved[111];
  EvictionReason reason;
};

// The RegisterResult body of a register reply (64 bytes).
struct RegisterResult {
  uint32_t batch_size_limit;
  uint8_t reserved[60];
};

#define TB_CHECK_HEADER_LAYOUT(type)                                        \
  static_assert(sizeof(type) == kHeaderSize, #type " must be 256 bytes");   \
  static_assert(std::is_trivially_copyable_v<type>);                         \
  static_assert(std::is_standard_layout_v<type>)
static_assert(sizeof(Frame) == 128);
static_assert(offsetof(Frame, cluster) == 80);
static_assert(offsetof(Frame, size) == 96);
static_assert(offsetof(Frame, epoch) == 100);
static_assert(offsetof(Frame, view) == 104);
static_assert(offsetof(Frame, release) == 108);
static_assert(offsetof(Frame, protocol) == 112);
static_assert(offsetof(Frame, command) == 114);
static_assert(offsetof(Frame, replica) == 115);
static_assert(offsetof(Frame, reserved_frame) == 116);
TB_CHECK_HEADER_LAYOUT(Header);
TB_CHECK_HEADER_LAYOUT(RequestHeader);
static_assert(offsetof(RequestHeader, parent) == 128);
static_assert(offsetof(RequestHeader, client) == 160);
static_assert(offsetof(RequestHeader, session) == 176);
static_assert(offsetof(RequestHeader, timestamp) == 184);
static_assert(offsetof(RequestHeader, request) == 192);
static_assert(offsetof(RequestHeader, operation) == 196);
static_assert(offsetof(RequestHeader, previous_request_latency) == 200);
static_assert(offsetof(RequestHeader, reserved) == 204);
TB_CHECK_HEADER_LAYOUT(ReplyHeader);
static_assert(offsetof(ReplyHeader, request_checksum) == 128);
static_assert(offsetof(ReplyHeader, context) == 160);
static_assert(offsetof(ReplyHeader, client) == 192);
static_assert(offsetof(ReplyHeader, op) == 208);
static_assert(offsetof(ReplyHeader, commit) == 216);
static_assert(offsetof(ReplyHeader, timestamp) == 224);
static_assert(offsetof(ReplyHeader, request) == 232);
static_assert(offsetof(ReplyHeader, operation) == 236);
static_assert(offsetof(ReplyHeader, reserved) == 237);
TB_CHECK_HEADER_LAYOUT(PingClientHeader);
static_assert(offsetof(PingClientHeader, client) == 128);
static_assert(offsetof(PingClientHeader, ping_timestamp_monotonic) == 144);
static_assert(offsetof(PingClientHeader, session) == 152);
TB_CHECK_HEADER_LAYOUT(PongClientHeader);
static_assert(offsetof(PongClientHeader, ping_timestamp_monotonic) == 128);
TB_CHECK_HEADER_LAYOUT(EvictionHeader);
static_assert(offsetof(EvictionHeader, client) == 128);
static_assert(offsetof(EvictionHeader, reason) == 255);
static_assert(sizeof(RegisterResult) == kRegisterResultBodySize);
#undef TB_CHECK_HEADER_LAYOUT

// ---- Conversions between the generic header and the typed views (plain byte copies) -------

template <typename View>
View HeaderAs(const Header& header) {
  static_assert(sizeof(View) == sizeof(Header));
  View view;
  std::memcpy(&view, &header, sizeof(view));
  return view;
}
template <typename View>
Header AsHeader(const View& view) {
  static_assert(sizeof(View) == sizeof(Header));
  Header header;
  std::memcpy(&header, &view, sizeof(header));
  return header;
}

// ---- Receiving -------------------------------------------------------------------------------

// Frame checks of PROTOCOL.md §2.1 and §3.2 on the first 256 bytes of a message: header checksum,
// paddings, epoch, protocol, reserved_frame, 256 <= size <= 1 MiB, cluster, a known command
// number other than 0. Any error here means the connection must be closed.
// The body checksum is checked separately with ValidateBody() once `size` bytes have arrived.
absl::StatusOr<Header> DecodeHeader(std::span<const uint8_t> bytes, u128 cluster);
// Body checksum check: `body` must be `header.frame.size - 256` bytes.
absl::Status ValidateBody(const Header& header, std::span<const uint8_t> body);

// Per-command validity (§6). A failure means the message is dropped; the connection stays.
absl::Status ValidateRequest(const RequestHeader& header);
absl::Status ValidateReply(const ReplyHeader& header);
absl::Status ValidatePingClient(const PingClientHeader& header);
absl::Status ValidatePongClient(const PongClientHeader& header);
absl::Status ValidateEviction(const EvictionHeader& header);

// ---- Sending ---------------------------------------------------------------------------------

// Sets frame.size = 256 + body.size(), checksum_body = Checksum(body), then checksum over bytes
// 16..255. For a reply, call SetReplyContext() first (context must be computed with checksum_body
// already set): SetReplyChecksums() does both in the right order.
void SetChecksums(Header& header, std::span<const uint8_t> body);
void SetReplyChecksums(ReplyHeader& reply, std::span<const uint8_t> body);
// Recomputes only `checksum` (e.g. a stored reply re-sent with a raised view).
void SetHeaderChecksum(Header& header);

// Debug text of a header for logs: command, size, client, request numbers. Never the body.
std::string HeaderToString(const Header& header);

}  // namespace tb
