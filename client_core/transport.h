// The seam between one cluster session (session.h) and the bytes on the network.
//
// A session never touches a socket: it hands complete messages (header + body) to a
// MessageTransport and receives framed, checksum-verified messages through TransportReceiver.
// TcpTransport (tcp_transport.h) is the real implementation; tests use a fake that records what
// was sent and feeds replies back.
//
//   tb::MessageBytes message = tb::MakeMessageBytes(std::move(bytes));
//   transport->Send(/*replica=*/0, message);   // Later: receiver->OnMessage(0, header, body).
//
// Threading: both interfaces are used on one thread only, the thread that owns the session (the
// pool's I/O thread). Nothing here is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "client_core/header.h"

namespace tb {

// The bytes of one complete message: the 256-byte header followed by the body, exactly as they go
// on the wire. Shared and immutable because one request is written to two replicas (primary and a
// hedge), re-sent byte-identically on every retry, and may still sit in a connection's send queue
// after the session has moved on; sharing avoids copying up to 1 MiB per transmission.
using MessageBytes = std::shared_ptr<const std::vector<uint8_t>>;

inline MessageBytes MakeMessageBytes(std::vector<uint8_t> bytes) {
  return std::make_shared<const std::vector<uint8_t>>(std::move(bytes));
}

// Outgoing direction: session -> network.
class MessageTransport {
 public:
  virtual ~MessageTransport() = default;

  // Number of replicas this transport addresses; replica indexes are 0..replica_count()-1 in the
  // cluster's configured address order.
  virtual uint32_t replica_count() const = 0;

  // Queues `message` for `replica` (< replica_count()) and returns at once. Best effort: if the
  // connection is down and its small pre-connect queue is full, or the send queue is full, the
  // message is dropped (the session's retry timer covers every loss). The transport keeps the
  // shared bytes alive until written. `message` must be a complete, checksummed message of at
  // most kMessageSizeMax bytes (asserted).
  virtual void Send(uint32_t replica, MessageBytes message) = 0;
};

// Incoming direction: network -> session.
class TransportReceiver {
 public:
  virtual ~TransportReceiver() = default;

  // A connection to `replica` has just been established (first connect or reconnect). The
  // receiver typically sends a ping_client so the replica binds the new connection to its client
  // id (PROTOCOL.md §2.3) and can deliver replies over it.
  virtual void OnConnected(uint32_t replica) = 0;

  // A complete message arrived from `replica`. Precondition (the transport guarantees it):
  // `header` was returned by DecodeHeader() for the session's cluster (header checksum, frame
  // rules, known command, 256 <= size <= 1 MiB) and ValidateBody(header, body) passed, so
  // body.size() == header.frame.size - 256. Per-command validation (ValidateReply and friends) is
  // left to the receiver. `body` is only valid during the call.
  virtual void OnMessage(uint32_t replica, const Header& header,
                         std::span<const uint8_t> body) = 0;
};

}  // namespace tb
