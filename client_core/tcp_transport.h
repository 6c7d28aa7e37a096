// The TCP MessageTransport of one session: one connection per replica address, on an
// asio::io_context owned by the caller (PROTOCOL.md §2).
//
//   TB_ASSIGN_OR_RETURN(auto addresses, tb::ParseHostPortList("127.0.0.1:3000,127.0.0.1:3001", {}));
//   TB_ASSIGN_OR_RETURN(auto transport, tb::TcpTransport::Create(&io_context, {.cluster = 0,
//                                                                 .addresses = addresses}));
//   transport->Start(&session);  ...  transport->Shutdown();
//
// Each connection connects with backoff and jitter (attempt k waits connect_delay_min +
// uniform[0, min(connect_delay_max - min, min·2^k)]), reconnects after any error, sets
// TCP_NODELAY, and frames strictly: it reads the 256-byte header, checks it with DecodeHeader()
// for this cluster, reads exactly size - 256 body bytes and checks ValidateBody(); any failure
// closes the connection (and a reconnect follows). A TigerBeetle replica binds a connection to
// one client id (§2.3), so every Session needs its own TcpTransport.
//
// Sending is best effort and bounded: while a connection is being established at most
// connecting_queue_max messages wait for it (like the official client's 2); once connected at
// most send_queue_max messages may be queued; beyond that a message is dropped and counted (the
// session's retry re-sends it).
//
// Threading: every method, and the destructor, must be called on the io_context's thread (or
// while the io_context is not running). Receiver callbacks run on that thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/parse.h"
#include "client_core/transport.h"
#include "client_core/u128.h"

namespace asio {
class io_context;
}  // namespace asio

namespace tb {

// Parsed with ParseHostPortList (client_core/parse.h), in the cluster's replica order.
using ReplicaAddress = HostPort;

struct TcpTransportOptions {
  u128 cluster = 0;
  std::vector<ReplicaAddress> addresses;
  uint32_t send_queue_max = 16;       // Messages queued on a connected connection, 1..1024.
  uint32_t connecting_queue_max = 2;  // Messages kept for a connection being established, 0..16.
  absl::Duration connect_delay_min = absl::Milliseconds(50);
  absl::Duration connect_delay_max = absl::Milliseconds(1000);
  uint64_t seed = 0;  // Jitter PRNG seed; 0: random.
};

class TcpTransport final : public MessageTransport {
 public:
  struct Stats {
    uint64_t connects = 0;           // Connections established.
    uint64_t disconnects = 0;        // Connections closed after an error or EOF.
    uint64_t frame_errors = 0;       // Connections closed because a message failed framing.
    uint64_t messages_sent = 0;
    uint64_t messages_received = 0;
    uint64_t messages_dropped = 0;   // Send() calls dropped (queue full or no connection).
  };

  // Validates `options` (kInvalidArgument naming the bad field). `io_context` must outlive it.
  static absl::StatusOr<std::unique_ptr<TcpTransport>> Create(asio::io_context* io_context,
                                                              TcpTransportOptions options);
  // Shuts down if still running. Pending asynchronous operations finish on their own later
  // without touching the receiver.
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  // Starts connecting to every replica; messages go to `receiver` (non-null, must outlive the
  // transport or Shutdown()). Call once.
  void Start(TransportReceiver* receiver);
  // Closes every connection and stops reconnecting; no receiver callback runs after it returns.
  // Messages still queued are dropped. Idempotent.
  void Shutdown();

  // MessageTransport.
  uint32_t replica_count() const override;
  void Send(uint32_t replica, MessageBytes message) override;

  bool connected(uint32_t replica) const;
  Stats stats() const;

 private:
  class Connection;
  TcpTransport(asio::io_context* io_context, TcpTransportOptions options);

  asio::io_context* const io_context_;
  const TcpTransportOptions options_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::shared_ptr<Stats> stats_;
  bool started_ = false;
  bool shut_down_ = false;
};

}  // namespace tb
