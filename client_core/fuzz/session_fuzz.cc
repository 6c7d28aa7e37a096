// libFuzzer target for Session: no sequence of network messages, ticks and calls may trip an
// assertion or a sanitizer, and every accepted request's callback runs exactly once.
//
// Input: a script of one-byte steps. Messages are built from the input's bytes and then given
// valid checksums and, on request of a flag bit, the session's own client id and the checksum of
// the request in flight, so the fuzzer reaches reply matching instead of stopping at framing.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/session.h"
#include "client_core/testing/fake_clock.h"
#include "client_core/transport.h"

namespace {

constexpr tb::u128 kCluster = 3;

class Transport final : public tb::MessageTransport {
 public:
  uint32_t replica_count() const override { return 3; }
  void Send(uint32_t replica, tb::MessageBytes message) override {
    TB_ASSERT(replica < 3);
    TB_ASSERT(message->size() >= tb::kHeaderSize);
    tb::Header header;
    std::memcpy(&header, message->data(), sizeof(header));
    TB_ASSERT(tb::DecodeHeader(std::span(*message).first(tb::kHeaderSize), kCluster).ok());
    if (header.frame.command == tb::Command::kRequest) last_request = header;
  }
  tb::Header last_request{};
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return position_ >= size_; }
  uint8_t Byte() { return empty() ? 0 : data_[position_++]; }
  void Bytes(void* target, size_t count) {
    auto* bytes = static_cast<uint8_t*>(target);
    for (size_t i = 0; i < count; i++) bytes[i] = Byte();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
};

void DeliverMessage(Reader& input, tb::Session& session, Transport& transport) {
  static constexpr tb::Command kCommands[] = {tb::Command::kReply, tb::Command::kPongClient,
                                              tb::Command::kEviction, tb::Command::kPingClient,
                                              tb::Command::kRequest, tb::Command::kPing};
  const uint8_t flags = input.Byte();
  tb::Header header{};
  header.frame.cluster = kCluster;
  header.frame.command = kCommands[flags % 6];
  input.Bytes(&header.frame.view, sizeof(header.frame.view));
  input.Bytes(&header.frame.release, sizeof(header.frame.release));
  header.frame.replica = input.Byte();
  input.Bytes(header.command_specific, sizeof(header.command_specific));
  std::vector<uint8_t> body(input.Byte() % 128);
  if ((flags & 0x40) != 0 && header.frame.command == tb::Command::kReply) body.resize(64);
  input.Bytes(body.data(), body.size());
  if (header.frame.command == tb::Command::kReply) {
    tb::ReplyHeader reply = tb::HeaderAs<tb::ReplyHeader>(header);
    const tb::RequestHeader request = tb::HeaderAs<tb::RequestHeader>(transport.last_request);
    if ((flags & 0x08) != 0) reply.client = session.client_id();
    if ((flags & 0x10) != 0) {
      reply.request_checksum = request.frame.checksum;
      reply.request = request.request;
      reply.operation = request.operation;
    }
    if ((flags & 0x20) != 0) {
      std::memset(reply.reserved, 0, sizeof(reply.reserved));
      reply.request_checksum_padding = 0;
      reply.context_padding = 0;
      reply.commit = reply.op;
    }
    tb::SetReplyChecksums(reply, body);
    header = tb::AsHeader(reply);
  } else {
    if ((flags & 0x08) != 0) {
      const tb::u128 client = session.client_id();
      std::memcpy(header.command_specific, &client, sizeof(client));  // Eviction's client.
    }
    if ((flags & 0x20) != 0) {
      std::memset(header.command_specific + 16, 0, 111);  // Reserved bytes of pong/eviction.
      body.clear();
    }
    tb::SetChecksums(header, body);
  }
  std::vector<uint8_t> bytes(tb::kHeaderSize + body.size());
  std::memcpy(bytes.data(), &header, tb::kHeaderSize);
  if (!body.empty()) std::memcpy(bytes.data() + tb::kHeaderSize, body.data(), body.size());
  absl::StatusOr<tb::Header> decoded =
      tb::DecodeHeader(std::span(bytes).first(tb::kHeaderSize), kCluster);
  if (!decoded.ok()) return;
  const std::span<const uint8_t> received = std::span(bytes).subspan(tb::kHeaderSize);
  if (!tb::ValidateBody(*decoded, received).ok()) return;
  session.OnMessage(flags % 3, *decoded, received);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader input(data, size);
  tb::client_core::testing::FakeClock clock(/*now_ns=*/1'000'000);
  Transport transport;
  int accepted = 0;
  int completed = 0;
  {
    tb::Session session({.cluster = kCluster, .client_id = 0x1234, .seed = 1}, &transport, &clock,
                        nullptr);
    for (int step = 0; step < 256 && !input.empty(); step++) {
      const uint8_t action = input.Byte();
      switch (action % 6) {
        case 0:
        case 1:
          DeliverMessage(input, session, transport);
          break;
        case 2:
          for (uint32_t tick = input.Byte() * 8u; tick > 0; tick--) session.Tick();
          clock.AdvanceNs(uint64_t{input.Byte()} * 1'000'000);
          break;
        case 3:
          if (session.state() == tb::Session::State::kIdle) session.Register();
          break;
        case 4: {
          std::vector<uint8_t> events(16 * (input.Byte() % 4));
          input.Bytes(events.data(), events.size());
          const std::span<const uint8_t> batches[] = {events};
          const uint8_t operation = (action & 0x80) != 0 ? input.Byte() : 140;
          absl::Status sent = session.SendRequest(
              operation, tb::EncodeMultiBatch(16, batches),
              [&completed](absl::StatusOr<tb::SessionReply>) { completed++; });
          if (sent.ok()) accepted++;
          break;
        }
        case 5:
          if ((action & 0x80) != 0) session.Close(absl::CancelledError("fuzz"));
          break;
      }
      TB_ASSERT(completed <= accepted);
    }
  }
  TB_ASSERT(completed == accepted, "every accepted request completes exactly once");
  return 0;
}
