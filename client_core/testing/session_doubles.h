// Test doubles for Session (with FakeClock, fake_clock.h): a recording transport, and builders for the messages a
// replica sends (reply, pong, eviction), all checksummed and passed through DecodeHeader() the
// way TcpTransport would before they reach the session. Used by session tests only.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/bytes.h"
#include "client_core/checksum.h"
#include "client_core/header.h"
#include "client_core/session.h"
#include "client_core/testing/messages.h"
#include "client_core/transport.h"
#include "gtest/gtest.h"

namespace tb::client_core::testing {

struct SentMessage {
  uint32_t replica;
  MessageBytes bytes;
  Header header() const { return ParseHeader(*bytes); }
  std::span<const uint8_t> body() const {
    return std::span<const uint8_t>(*bytes).subspan(kHeaderSize);
  }
};

class FakeTransport final : public MessageTransport {
 public:
  explicit FakeTransport(uint32_t replicas) : replicas_(replicas) {}
  uint32_t replica_count() const override { return replicas_; }
  void Send(uint32_t replica, MessageBytes message) override {
    EXPECT_LT(replica, replicas_);
    sent.push_back({replica, std::move(message)});
  }
  // Sent messages of one command, in order.
  std::vector<SentMessage> Sent(Command command) const {
    std::vector<SentMessage> result;
    for (const SentMessage& message : sent) {
      if (message.header().frame.command == command) result.push_back(message);
    }
    return result;
  }
  std::vector<SentMessage> sent;

 private:
  uint32_t replicas_;
};

struct ReplyFields {
  uint32_t view = 0;
  uint64_t op = 0;  // 0: request number + 10.
  uint64_t timestamp = 1'700'000'000'000'000'000;
  uint32_t release = 0;  // 0: the request's release.
};

// A reply to `request` (a sent request message) carrying `body`.
inline std::vector<uint8_t> MakeReply(const SentMessage& request, std::span<const uint8_t> body,
                                      ReplyFields fields = {}) {
  const RequestHeader sent = HeaderAs<RequestHeader>(request.header());
  ReplyHeader reply{};
  reply.frame.cluster = sent.frame.cluster;
  reply.frame.view = fields.view;
  reply.frame.release = fields.release != 0 ? fields.release : sent.frame.release;
  reply.frame.command = Command::kReply;
  reply.request_checksum = sent.frame.checksum;
  reply.client = sent.client;
  reply.op = fields.op != 0 ? fields.op : sent.request + 10;
  reply.commit = reply.op;
  reply.timestamp = fields.timestamp;
  reply.request = sent.request;
  reply.operation = sent.operation;
  SetReplyChecksums(reply, body);
  std::vector<uint8_t> bytes = StructBytes(reply);
  bytes.insert(bytes.end(), body.begin(), body.end());
  return bytes;
}

inline std::vector<uint8_t> RegisterResultBody(uint32_t batch_size_limit) {
  RegisterResult result{};
  result.batch_size_limit = batch_size_limit;
  return StructBytes(result);
}

inline std::vector<uint8_t> MakePong(u128 cluster, uint64_t ping_timestamp, uint32_t view,
                                     uint8_t replica) {
  PongClientHeader pong{};
  pong.frame.cluster = cluster;
  pong.frame.view = view;
  pong.frame.release = MakeRelease(0, 17, 9);
  pong.frame.command = Command::kPongClient;
  pong.frame.replica = replica;
  pong.ping_timestamp_monotonic = ping_timestamp;
  return Serialize(AsHeader(pong), {});
}

inline std::vector<uint8_t> MakeEviction(u128 cluster, u128 client, EvictionReason reason,
                                         uint32_t view) {
  EvictionHeader eviction{};
  eviction.frame.cluster = cluster;
  eviction.frame.view = view;
  eviction.frame.release = MakeRelease(0, 17, 9);
  eviction.frame.command = Command::kEviction;
  eviction.client = client;
  eviction.reason = reason;
  return Serialize(AsHeader(eviction), {});
}

// Frames `bytes` exactly as TcpTransport does, then hands the message to `receiver`.
inline void Deliver(TransportReceiver& receiver, u128 cluster, uint32_t replica,
                    std::span<const uint8_t> bytes) {
  ASSERT_GE(bytes.size(), kHeaderSize);
  absl::StatusOr<Header> header = DecodeHeader(bytes.first(kHeaderSize), cluster);
  ASSERT_TRUE(header.ok()) << header.status();
  ASSERT_EQ(header->frame.size, bytes.size());
  const std::span<const uint8_t> body = bytes.subspan(kHeaderSize);
  ASSERT_TRUE(ValidateBody(*header, body).ok());
  receiver.OnMessage(replica, *header, body);
}

}  // namespace tb::client_core::testing
