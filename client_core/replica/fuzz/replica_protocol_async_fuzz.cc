// libFuzzer target: arbitrary message sequences on a few connections of a one-replica
// ReplicaProtocol with an AsyncExecutor (tbproxy's native front end), interleaved with the
// completion of pending requests (results, drops, evictions), connection closes and tokens that
// are unknown or already completed. The protocol must never crash and every answer must be a
// whole message.
//
// Input: repeated records of [connection byte][flags byte][body length u16][256 header bytes]
// [body bytes]. Flags: bit 0 keeps the checksums as given; bit 1 closes the connection first;
// bits 2..3 complete the oldest pending request (0 none, 1 result, 2 drop, 3 session lost or
// invalid body, chosen by bit 4); bit 5 completes a stale token; bit 6 replaces the message by a
// well-formed one from a client that follows its replies (register, then create_accounts with
// the record's body as events), so that requests really become pending.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/replica/testing/fuzz_message.h"
#include "client_core/replica/replica_protocol.h"
#include "client_core/replica/testing/test_client.h"
#include "client_core/types.h"

namespace {

class QueueExecutor final : public tb::replica::AsyncExecutor {
 public:
  void Start(uint64_t token, tb::u128 client, uint8_t operation,
             std::span<const uint8_t> body) override {
    TB_ASSERT(token != 0);
    pending.push_back(token);
  }
  std::deque<uint64_t> pending;
};

struct FollowingClient {
  explicit FollowingClient(uint64_t id) : client(id) {}
  tb::replica::testing::TestClient client;
  tb::u128 in_flight = 0;  // Checksum of the request awaiting its reply, 0 if none.
  bool registered = false;
};

std::deque<FollowingClient>* clients = nullptr;

void CheckDecision(const tb::replica::Decision& decision) {
  for (const tb::replica::Send& send : decision.sends) {
    TB_ASSERT(send.message != nullptr && send.message->size() >= tb::kHeaderSize);
    const auto header = tb::client_core::testing::ParseHeader(*send.message);
    if (header.frame.command != tb::Command::kReply) continue;
    const auto reply = tb::HeaderAs<tb::ReplyHeader>(header);
    for (FollowingClient& following : *clients) {
      if (following.client.id() == reply.client && following.in_flight != 0 &&
          reply.request_checksum == following.in_flight) {
        following.client.OnReply(*send.message);
        following.in_flight = 0;
        if (reply.operation == static_cast<uint8_t>(tb::Operation::kRegister)) {
          following.registered = true;
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tb;
  using namespace tb::replica;
  QueueExecutor executor;
  ReplicaProtocol protocol({.clients_max = 3, .batch_size_limit = kBatchSizeLimitMin},
                           &executor);
  ConnectionId next_connection = 1;
  ConnectionId connections[4];
  for (ConnectionId& connection : connections) {
    connection = next_connection++;
    protocol.OnConnectionOpened(connection, 0);
  }
  std::span<const uint8_t> input(data, size);
  uint64_t now_ns = 1;
  uint64_t last_completed = 0;
  std::deque<FollowingClient> following;
  for (uint64_t id = 1; id <= 4; id++) following.emplace_back(id);
  clients = &following;
  while (input.size() >= 4 + kHeaderSize) {
    const uint8_t slot = input[0] % 4;
    const uint8_t flags = input[1];
    const size_t body_size = (input[2] | (input[3] << 8)) % 8192;
    input = input.subspan(4);
    if (flags & 2) {
      protocol.OnConnectionClosed(connections[slot]);
      connections[slot] = next_connection++;
      protocol.OnConnectionOpened(connections[slot], 0);
    }
    const int complete = (flags >> 2) & 3;
    if (complete != 0 && !executor.pending.empty()) {
      const uint64_t token = executor.pending.front();
      executor.pending.pop_front();
      if (complete == 1) {
        CheckDecision(protocol.Complete(token, ExecuteResult{.timestamp = now_ns, .body = {}}));
      } else if (complete == 2) {
        CheckDecision(protocol.Complete(token, CompletionFailure::kDrop));
      } else {
        CheckDecision(protocol.Complete(token, (flags & 16) ? CompletionFailure::kSessionLost
                                                            : CompletionFailure::kInvalidRequestBody));
      }
      last_completed = token;
    }
    if ((flags & 32) && last_completed != 0) {
      CheckDecision(protocol.Complete(last_completed, CompletionFailure::kSessionLost));
    }
    std::vector<uint8_t> message =
        testing::TakeMessage(input, body_size, /*reseal=*/(flags & 1) == 0);
    if (flags & 64) {
      // The fuzzed body supplies the events; it is read before `message` is replaced.
      const std::span<const uint8_t> body = std::span<const uint8_t>(message).subspan(kHeaderSize);
      FollowingClient& sender = following[slot];
      if (!sender.registered) {
        message = sender.client.Register();
      } else {
        const size_t events = std::min<size_t>(body.size() / sizeof(Account), 16);
        const std::span<const uint8_t> batches[] = {body.first(events * sizeof(Account))};
        message = sender.client.Request(146, EncodeMultiBatch(sizeof(Account), batches));
      }
      sender.in_flight = HeaderAs<RequestHeader>(client_core::testing::ParseHeader(message)).frame.checksum;
    }
    const Decision decision = protocol.OnMessage(connections[slot], message, now_ns++);
    CheckDecision(decision);
    for (ConnectionId closed : decision.closes) {
      for (ConnectionId& connection : connections) {
        if (connection == closed) {
          connection = next_connection++;
          protocol.OnConnectionOpened(connection, 0);
        }
      }
    }
    TB_ASSERT(protocol.pending_count() == executor.pending.size());
  }
  clients = nullptr;
  return 0;
}
