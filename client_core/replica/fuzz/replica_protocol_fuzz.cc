// libFuzzer target: arbitrary message sequences on a few connections of a three-replica
// ReplicaProtocol. Headers are resealed with valid checksums most of the time so that the checks
// behind the checksum are reached. The protocol must never crash and every answer must be a whole
// message.
//
// Input: repeated records of [connection byte][flags byte][body length u16][256 header bytes]
// [body bytes].
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/header.h"
#include "client_core/replica/echo_executor.h"
#include "client_core/replica/testing/fuzz_message.h"
#include "client_core/replica/replica_protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tb;
  using namespace tb::replica;
  EchoExecutor executor;
  ReplicaProtocol protocol({.replica_count = 3, .clients_max = 4,
                            .batch_size_limit = kBatchSizeLimitMin},
                           &executor);
  ConnectionId next_connection = 1;
  ConnectionId connections[4];
  for (ConnectionId& connection : connections) {
    connection = next_connection++;
    protocol.OnConnectionOpened(connection, static_cast<uint8_t>(connection % 3));
  }
  std::span<const uint8_t> input(data, size);
  uint64_t now_ns = 1;
  while (input.size() >= 4 + kHeaderSize) {
    const uint8_t slot = input[0] % 4;
    const uint8_t flags = input[1];
    const size_t body_size = (input[2] | (input[3] << 8)) % 8192;
    input = input.subspan(4);
    const std::vector<uint8_t> message =
        testing::TakeMessage(input, body_size, /*reseal=*/(flags & 1) == 0);
    if (flags & 2) protocol.SetView(protocol.view() + 1);
    const Decision decision = protocol.OnMessage(connections[slot], message, now_ns++);
    for (const Send& send : decision.sends) TB_ASSERT(send.message->size() >= kHeaderSize);
    for (ConnectionId closed : decision.closes) {
      for (ConnectionId& connection : connections) {
        if (connection == closed) {
          connection = next_connection++;
          protocol.OnConnectionOpened(connection, static_cast<uint8_t>(connection % 3));
        }
      }
    }
  }
  return 0;
}
