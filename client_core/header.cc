// Header codec of the TigerBeetle 0.17.x client protocol (PROTOCOL.md §3, §4.2, §4.3, §6).
//
//   0        16       32            48       64        80       96                         128
//   checksum │ pad    │ checksum_body │ pad    │ nonce   │ cluster │ size epoch view release
//                                                                   protocol command replica
//                                                                   reserved_frame[12]
//   128..255: command-specific part (request, reply, ping_client, pong_client, eviction)
//
// `checksum` covers bytes 16..255, so it authenticates checksum_body and through it the body.
// Every check reads fields of a structure that was memcpy'd from the input, so no input byte
// pattern can cause an out-of-bounds read or undefined behaviour (the enum fields are
// uint8_t-backed and hold any value).
#include "client_core/header.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/checksum.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/status_macros.h"

namespace tb {
namespace {

constexpr size_t kChecksumCoveredOffset = 16;  // `checksum` covers bytes 16..255.

template <size_t kSize>
bool IsZero(const uint8_t (&bytes)[kSize]) {
  return std::all_of(bytes, bytes + kSize, [](uint8_t byte) { return byte == 0; });
}

u128 HeaderChecksumOf(const Header& header) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(&header);
  return Checksum(
      std::span<const uint8_t>(bytes + kChecksumCoveredOffset, kHeaderSize - kChecksumCoveredOffset));
}

absl::Status Invalid(absl::string_view command, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(command, " header invalid: ", rule));
}

// The rules shared by the three header-only commands a client exchanges (§6.3–§6.5).
absl::Status ValidateHeaderOnly(const Frame& frame, absl::string_view command) {
  if (frame.size != kHeaderSize) return Invalid(command, "size != 256");
  if (frame.checksum_body != kChecksumOfEmpty) {
    return Invalid(command, "checksum_body != checksum of the empty body");
  }
  if (frame.release == 0) return Invalid(command, "release == 0");
  return absl::OkStatus();
}

absl::Status ValidateCommand(const Frame& frame, Command expected) {
  if (frame.command != expected) {
    return absl::InvalidArgumentError(absl::StrCat("expected a ", CommandName(expected),
                                                   " header, got command ",
                                                   static_cast<int>(frame.command)));
  }
  return absl::OkStatus();
}

// Operations 2..6 are the VSR operations a request may carry by header rules (§6.1).
absl::Status ValidateRequestOperation(const RequestHeader& header) {
  const uint8_t operation = header.operation;
  if (operation == 0) return Invalid("request", "operation == reserved");
  if (operation == 1) return Invalid("request", "operation == root");
  if (operation == 2) {  // register
    if (header.frame.replica != 0) return Invalid("request", "register: replica != 0");
    if (header.client == 0) return Invalid("request", "register: client == 0");
    if (header.parent != 0) return Invalid("request", "register: parent != 0");
    if (header.session != 0) return Invalid("request", "register: session != 0");
    if (header.request != 0) return Invalid("request", "register: request != 0");
    if (header.frame.size != kHeaderSize && header.frame.size != kHeaderSize + kRegisterRequestBodySize) {
      return Invalid("request", "register: size is neither 256 nor 512");
    }
    return absl::OkStatus();
  }
  // Pulse and upgrade are the primary's own requests with client = 0, and client = 0 crashes a
  // replica's message bus (§2.3): never valid from a client. Stricter than the replica.
  if (operation == 4) return Invalid("request", "operation == pulse (replica-internal)");
  if (operation == 5) return Invalid("request", "operation == upgrade (replica-internal)");
  if (operation == 3 && header.frame.size != kHeaderSize + 256) {
    return Invalid("request", "reconfigure: size != 512");
  }
  if (operation == 6 && header.frame.size != kHeaderSize) {
    return Invalid("request", "noop: size != 256");
  }
  if (operation > 6 && operation < kStateMachineOperationMin) {
    return Invalid("request", absl::StrCat("operation ", operation, " is reserved for VSR"));
  }
  if (header.frame.replica != 0) return Invalid("request", "replica != 0");
  if (header.client == 0) return Invalid("request", "client == 0");
  if (header.session == 0) return Invalid("request", "session == 0");
  if (header.request == 0) return Invalid("request", "request == 0");
  return absl::OkStatus();
}

}  // namespace

const char* EvictionReasonName(EvictionReason reason) {
  switch (reason) {
    case EvictionReason::kReserved: return "reserved";
    case EvictionReason::kNoSession: return "no_session";
    case EvictionReason::kClientReleaseTooLow: return "client_release_too_low";
    case EvictionReason::kClientReleaseTooHigh: return "client_release_too_high";
    case EvictionReason::kInvalidRequestOperation: return "invalid_request_operation";
    case EvictionReason::kInvalidRequestBody: return "invalid_request_body";
    case EvictionReason::kInvalidRequestBodySize: return "invalid_request_body_size";
    case EvictionReason::kSessionTooLow: return "session_too_low";
    case EvictionReason::kSessionReleaseMismatch: return "session_release_mismatch";
  }
  return "unknown";
}

const char* CommandName(Command command) {
  static constexpr const char* kNames[kCommandMax + 1] = {
      "reserved",      "ping",          "pong",          "ping_client", "pong_client",
      "request",       "prepare",       "prepare_ok",    "reply",       "commit",
      "exit_view",     "join_view",     "deprecated_12", "get_view",    "get_headers",
      "get_prepare",   "get_reply",     "headers",       "eviction",    "get_blocks",
      "block",         "deprecated_21", "deprecated_22", "deprecated_23", "view",
  };
  const auto index = static_cast<uint8_t>(command);
  if (index > kCommandMax) return "unknown";
  return kNames[index];
}

// ---- Receiving -------------------------------------------------------------------------------

absl::StatusOr<Header> DecodeHeader(std::span<const uint8_t> bytes, u128 cluster) {
  if (bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("header truncated: ", bytes.size(), " of 256 bytes"));
  }
  Header header;
  std::memcpy(&header, bytes.data(), sizeof(header));
  const Frame& frame = header.frame;
  const u128 expected = HeaderChecksumOf(header);
  if (frame.checksum != expected) {
    return absl::DataLossError(absl::StrCat("header checksum mismatch: carried ",
                                            U128ToHex(frame.checksum), ", computed ",
                                            U128ToHex(expected)));
  }
  if (frame.checksum_padding != 0) return Invalid("frame", "checksum_padding != 0");
  if (frame.checksum_body_padding != 0) return Invalid("frame", "checksum_body_padding != 0");
  if (frame.nonce_reserved != 0) return Invalid("frame", "nonce_reserved != 0");
  if (frame.epoch != 0) return Invalid("frame", "epoch != 0");
  if (frame.protocol != 0) return Invalid("frame", "protocol != 0");
  if (!IsZero(frame.reserved_frame)) return Invalid("frame", "reserved_frame != 0");
  if (frame.size < kHeaderSize || frame.size > kMessageSizeMax) {
    return Invalid("frame", absl::StrCat("size ", frame.size, " outside 256..1048576"));
  }
  if (frame.cluster != cluster) {
    return absl::InvalidArgumentError(absl::StrCat("message for cluster ",
                                                   U128ToDecimal(frame.cluster),
                                                   ", this is cluster ", U128ToDecimal(cluster)));
  }
  const auto command = static_cast<uint8_t>(frame.command);
  if (command == 0 || command > kCommandMax) {
    return Invalid("frame", absl::StrCat("unknown command ", command));
  }
  return header;
}

absl::Status ValidateBody(const Header& header, std::span<const uint8_t> body) {
  if (header.frame.size < kHeaderSize || body.size() != header.frame.size - kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat("body is ", body.size(), " bytes, header size ",
                                                   header.frame.size, " announces ",
                                                   header.frame.size - std::min(header.frame.size, kHeaderSize)));
  }
  const u128 computed = Checksum(body);
  if (computed != header.frame.checksum_body) {
    return absl::DataLossError(absl::StrCat("body checksum mismatch: carried ",
                                            U128ToHex(header.frame.checksum_body), ", computed ",
                                            U128ToHex(computed)));
  }
  return absl::OkStatus();
}

// A non-zero `timestamp` is not a header rule: the replica drops such requests only after its
// release, size, body and session checks (§9.1 step 15), so it is left to the caller.
absl::Status ValidateRequest(const RequestHeader& header) {
  TB_RETURN_IF_ERROR(ValidateCommand(header.frame, Command::kRequest));
  if (header.frame.release == 0) return Invalid("request", "release == 0");
  if (header.parent_padding != 0) return Invalid("request", "parent_padding != 0");
  if (!IsZero(header.previous_request_latency_padding)) {
    return Invalid("request", "previous_request_latency_padding != 0");
  }
  if (!IsZero(header.reserved)) return Invalid("request", "reserved != 0");
  return ValidateRequestOperation(header);
}

absl::Status ValidateReply(const ReplyHeader& header) {
  TB_RETURN_IF_ERROR(ValidateCommand(header.frame, Command::kReply));
  if (header.frame.release == 0) return Invalid("reply", "release == 0");
  if (header.request_checksum_padding != 0) return Invalid("reply", "request_checksum_padding != 0");
  if (header.context_padding != 0) return Invalid("reply", "context_padding != 0");
  if (header.client == 0) return Invalid("reply", "client == 0");
  if (header.op != header.commit) return Invalid("reply", "op != commit");
  if (header.commit == 0) return Invalid("reply", "commit == 0");
  if (header.timestamp == 0) return Invalid("reply", "timestamp == 0");
  if (!IsZero(header.reserved)) return Invalid("reply", "reserved != 0");
  if (header.operation == static_cast<uint8_t>(Operation::kRegister)) {
    if (header.frame.size != kHeaderSize + kRegisterResultBodySize) {
      return Invalid("reply", "register: size != 320");
    }
    if (header.request != 0) return Invalid("reply", "register: request != 0");
  } else if (header.request == 0) {
    return Invalid("reply", "request == 0");
  }
  return absl::OkStatus();
}

absl::Status ValidatePingClient(const PingClientHeader& header) {
  TB_RETURN_IF_ERROR(ValidateCommand(header.frame, Command::kPingClient));
  TB_RETURN_IF_ERROR(ValidateHeaderOnly(header.frame, "ping_client"));
  if (header.frame.replica != 0) return Invalid("ping_client", "replica != 0");
  if (header.frame.view != 0) return Invalid("ping_client", "view != 0");
  if (header.client == 0) return Invalid("ping_client", "client == 0");
  if (!IsZero(header.reserved)) return Invalid("ping_client", "reserved != 0");
  return absl::OkStatus();
}

absl::Status ValidatePongClient(const PongClientHeader& header) {
  TB_RETURN_IF_ERROR(ValidateCommand(header.frame, Command::kPongClient));
  TB_RETURN_IF_ERROR(ValidateHeaderOnly(header.frame, "pong_client"));
  if (!IsZero(header.reserved)) return Invalid("pong_client", "reserved != 0");
  // The official client indexes a 6-entry array with `replica` (§6.4); refuse what it can't.
  if (header.frame.replica >= kReplicaCountMax) {
    return Invalid("pong_client", absl::StrCat("replica ", header.frame.replica, " >= 6"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEviction(const EvictionHeader& header) {
  TB_RETURN_IF_ERROR(ValidateCommand(header.frame, Command::kEviction));
  TB_RETURN_IF_ERROR(ValidateHeaderOnly(header.frame, "eviction"));
  if (header.client == 0) return Invalid("eviction", "client == 0");
  if (!IsZero(header.reserved)) return Invalid("eviction", "reserved != 0");
  const auto reason = static_cast<uint8_t>(header.reason);
  if (reason == 0 || reason > kEvictionReasonMax) {
    return Invalid("eviction", absl::StrCat("reason ", reason, " outside 1..8"));
  }
  return absl::OkStatus();
}

// ---- Sending ---------------------------------------------------------------------------------

void SetHeaderChecksum(Header& header) { header.frame.checksum = HeaderChecksumOf(header); }

void SetChecksums(Header& header, std::span<const uint8_t> body) {
  TB_ASSERT(body.size() <= kMessageBodySizeMax);
  header.frame.size = static_cast<uint32_t>(kHeaderSize + body.size());
  header.frame.checksum_body = Checksum(body);
  SetHeaderChecksum(header);
}

void SetReplyChecksums(ReplyHeader& reply, std::span<const uint8_t> body) {
  TB_ASSERT(reply.frame.command == Command::kReply);
  TB_ASSERT(body.size() <= kMessageBodySizeMax);
  reply.frame.size = static_cast<uint32_t>(kHeaderSize + body.size());
  reply.frame.checksum_body = Checksum(body);
  // §4.3: `context` is the header checksum computed while `context` itself is zero.
  reply.context = 0;
  Header header = AsHeader(reply);
  reply.context = HeaderChecksumOf(header);
  header = AsHeader(reply);
  SetHeaderChecksum(header);
  reply = HeaderAs<ReplyHeader>(header);
}

std::string HeaderToString(const Header& header) {
  const Frame& frame = header.frame;
  std::string text = absl::StrCat(CommandName(frame.command), " size=", frame.size,
                                  " view=", frame.view, " release=", ReleaseToString(frame.release),
                                  " replica=", frame.replica);
  switch (frame.command) {
    case Command::kRequest: {
      const auto request = HeaderAs<RequestHeader>(header);
      absl::StrAppend(&text, " client=", U128ToHex(request.client), " session=", request.session,
                      " request=", request.request, " operation=", request.operation);
      break;
    }
    case Command::kReply: {
      const auto reply = HeaderAs<ReplyHeader>(header);
      absl::StrAppend(&text, " client=", U128ToHex(reply.client), " request=", reply.request,
                      " operation=", reply.operation, " op=", reply.op,
                      " timestamp=", reply.timestamp);
      break;
    }
    case Command::kPingClient: {
      const auto ping = HeaderAs<PingClientHeader>(header);
      absl::StrAppend(&text, " client=", U128ToHex(ping.client), " session=", ping.session,
                      " ping_timestamp_monotonic=", ping.ping_timestamp_monotonic);
      break;
    }
    case Command::kPongClient: {
      const auto pong = HeaderAs<PongClientHeader>(header);
      absl::StrAppend(&text, " ping_timestamp_monotonic=", pong.ping_timestamp_monotonic);
      break;
    }
    case Command::kEviction: {
      const auto eviction = HeaderAs<EvictionHeader>(header);
      absl::StrAppend(&text, " client=", U128ToHex(eviction.client),
                      " reason=", EvictionReasonName(eviction.reason));
      break;
    }
    default:
      break;
  }
  return text;
}

}  // namespace tb
