#include "client_core/replica/server_messages.h"

#include <cstring>
#include <memory>
#include <vector>

#include "client_core/assert.h"
#include "client_core/constants.h"

namespace tb::replica {
namespace {

Frame MakeFrame(const Sender& sender, Command command) {
  Frame frame{};
  frame.cluster = sender.cluster;
  frame.view = sender.view;
  frame.release = sender.release;
  frame.command = command;
  frame.replica = sender.replica;
  return frame;
}

template <typename View>
MessageBytes HeaderOnly(View view) {
  Header header = AsHeader(view);
  SetChecksums(header, {});
  auto bytes = std::make_shared<std::vector<uint8_t>>(kHeaderSize);
  std::memcpy(bytes->data(), &header, kHeaderSize);
  return bytes;
}

}  // namespace

MessageBytes BuildPong(const Sender& sender, uint64_t ping_timestamp_monotonic) {
  TB_ASSERT(sender.release != 0);
  PongClientHeader pong{};
  pong.frame = MakeFrame(sender, Command::kPongClient);
  pong.ping_timestamp_monotonic = ping_timestamp_monotonic;
  return HeaderOnly(pong);
}

MessageBytes BuildEviction(const Sender& sender, u128 client, EvictionReason reason) {
  TB_ASSERT(sender.release != 0);
  TB_ASSERT(client != 0);
  TB_ASSERT(reason != EvictionReason::kReserved &&
            static_cast<uint8_t>(reason) <= kEvictionReasonMax);
  EvictionHeader eviction{};
  eviction.frame = MakeFrame(sender, Command::kEviction);
  eviction.client = client;
  eviction.reason = reason;
  return HeaderOnly(eviction);
}

MessageBytes BuildReply(const Sender& sender, const ReplyFields& fields,
                        std::span<const uint8_t> body) {
  TB_ASSERT(body.size() <= kMessageBodySizeMax);
  TB_ASSERT(fields.client != 0 && fields.request_release != 0);
  TB_ASSERT(fields.op != 0 && fields.timestamp != 0);
  ReplyHeader reply{};
  reply.frame = MakeFrame(sender, Command::kReply);
  reply.frame.release = fields.request_release;
  reply.request_checksum = fields.request_checksum;
  reply.client = fields.client;
  reply.op = fields.op;
  reply.commit = fields.op;
  reply.timestamp = fields.timestamp;
  reply.request = fields.request;
  reply.operation = fields.operation;
  SetReplyChecksums(reply, body);
  TB_ASSERT(reply.frame.size == kHeaderSize + body.size());
  auto bytes = std::make_shared<std::vector<uint8_t>>(kHeaderSize + body.size());
  std::memcpy(bytes->data(), &reply, kHeaderSize);
  if (!body.empty()) std::memcpy(bytes->data() + kHeaderSize, body.data(), body.size());
  return bytes;
}

Header HeaderOf(const MessageBytes& message) {
  TB_ASSERT(message != nullptr && message->size() >= kHeaderSize);
  Header header;
  std::memcpy(&header, message->data(), kHeaderSize);
  return header;
}

MessageBytes WithRaisedView(const MessageBytes& reply, uint32_t view) {
  Header header = HeaderOf(reply);
  TB_ASSERT(header.frame.command == Command::kReply);
  if (header.frame.view >= view) return reply;
  header.frame.view = view;
  SetHeaderChecksum(header);
  auto bytes = std::make_shared<std::vector<uint8_t>>(*reply);
  std::memcpy(bytes->data(), &header, kHeaderSize);
  return bytes;
}

}  // namespace tb::replica
