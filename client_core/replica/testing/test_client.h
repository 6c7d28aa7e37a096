// Test-only helpers: a minimal client that builds byte-exact requests and pings and follows its
// session from the replies (register → session, context → parent). Used by the dev cluster's
// socket-free and TCP tests; not part of any library.
//
//   tb::replica::testing::TestClient client(/*id=*/42);
//   std::vector<uint8_t> bytes = client.Register();
//   client.OnReply(reply_bytes);
//   bytes = client.Request(146, body);
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/testing/messages.h"
#include "client_core/types.h"
#include "client_core/u128.h"

namespace tb::replica::testing {

class TestClient {
 public:
  explicit TestClient(u128 id, uint32_t release = kReleaseServer, u128 cluster = 0)
      : id_(id), release_(release), cluster_(cluster) {}

  // The request header this client would send next, for tests that want to bend a field.
  RequestHeader NextHeader(uint8_t operation) const {
    RequestHeader header{};
    header.frame.cluster = cluster_;
    header.frame.view = view_;
    header.frame.release = release_;
    header.frame.command = Command::kRequest;
    header.parent = parent_;
    header.client = id_;
    header.session = session_;
    header.request = operation == static_cast<uint8_t>(Operation::kRegister) ? 0 : request_ + 1;
    header.operation = operation;
    return header;
  }

  std::vector<uint8_t> Register() {
    const std::vector<uint8_t> body(kRegisterRequestBodySize, 0);
    return Send(NextHeader(static_cast<uint8_t>(Operation::kRegister)), body);
  }
  std::vector<uint8_t> Request(uint8_t operation, std::span<const uint8_t> body) {
    return Send(NextHeader(operation), body);
  }
  // Serializes `header` with `body` and remembers it as the request in flight.
  std::vector<uint8_t> Send(const RequestHeader& header, std::span<const uint8_t> body) {
    std::vector<uint8_t> bytes = client_core::testing::Serialize(AsHeader(header), body);
    in_flight_ = HeaderAs<RequestHeader>(client_core::testing::ParseHeader(bytes));
    return bytes;
  }

  std::vector<uint8_t> Ping(uint64_t ping_timestamp_monotonic, uint64_t session) const {
    PingClientHeader ping{};
    ping.frame.cluster = cluster_;
    ping.frame.release = release_;
    ping.frame.command = Command::kPingClient;
    ping.client = id_;
    ping.ping_timestamp_monotonic = ping_timestamp_monotonic;
    ping.session = session;
    return client_core::testing::Serialize(AsHeader(ping), {});
  }
  std::vector<uint8_t> Ping(uint64_t ping_timestamp_monotonic = 1) const {
    return Ping(ping_timestamp_monotonic, session_);
  }

  // Follows a reply to the request in flight, as a client does: session from the register's
  // commit, parent = context, request number advances.
  void OnReply(std::span<const uint8_t> message) {
    const auto reply = HeaderAs<ReplyHeader>(client_core::testing::ParseHeader(message));
    TB_ASSERT(reply.frame.command == Command::kReply);
    TB_ASSERT(reply.request_checksum == in_flight_.frame.checksum);
    if (reply.operation == static_cast<uint8_t>(Operation::kRegister)) session_ = reply.commit;
    request_ = reply.request;
    parent_ = reply.context;
    if (reply.frame.view > view_) view_ = reply.frame.view;
  }

  u128 id() const { return id_; }
  uint64_t session() const { return session_; }
  uint32_t request() const { return request_; }
  void set_release(uint32_t release) { release_ = release; }
  void set_session(uint64_t session) { session_ = session; }

 private:
  u128 id_;
  uint32_t release_;
  u128 cluster_;
  uint32_t view_ = 0;
  uint64_t session_ = 0;
  uint32_t request_ = 0;
  u128 parent_ = 0;
  RequestHeader in_flight_{};
};

}  // namespace tb::replica::testing
