// Which client id is on which connection, per replica (PROTOCOL.md §2.3).
//
// There is no hello message: a replica learns a connection's client from the `client` field of
// the requests and pings that arrive on it. The rules kept here:
//   - One client id per connection. A message for a second id closes the connection (the
//     simplest correct rule of §18; a real replica closes only ping-identified connections and
//     silently loses replies on request-identified ones).
//   - A `ping_client` makes its connection *the* connection of that client on its replica; an
//     older connection registered for the same client is closed.
//   - A `request` registers its connection only if the client has no connection registered yet
//     (a request on a second connection is answered on the first, as a real replica does).
//   - Messages are only ever sent on the connection registered for a client, so a connection is
//     written to only after that client spoke on it.
//
//   tb::replica::ConnectionRegistry registry(/*replica_count=*/1);
//   registry.Open(7, /*replica=*/0);
//   BindResult bind = registry.Bind(7, client, BindKind::kPing);
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "client_core/u128.h"
#include "client_core/replica/session_table.h"

namespace tb::replica {

// Assigned by the transport; never reused while the process lives.
using ConnectionId = uint64_t;

enum class BindKind : uint8_t { kPing, kRequest };

struct BindResult {
  bool close_arrival = false;                 // The connection carried a second client id.
  std::optional<ConnectionId> close_replaced;  // An older connection a ping replaced.
};

class ConnectionRegistry {
 public:
  explicit ConnectionRegistry(uint8_t replica_count);

  // `connection` must be new (asserted); `replica` < replica_count (asserted).
  void Open(ConnectionId connection, uint8_t replica);
  // Forgets the connection and its binding. Unknown ids are ignored (closing is idempotent).
  void Close(ConnectionId connection);

  bool Contains(ConnectionId connection) const { return connections_.contains(connection); }
  // The replica a known connection belongs to (asserted known).
  uint8_t ReplicaOf(ConnectionId connection) const;
  // The client a connection carries, 0 while unknown.
  u128 ClientOf(ConnectionId connection) const;

  // Applies the rules above for a message from `client` (non-zero, asserted) on a known
  // connection. When close_arrival or close_replaced is set, that connection has already been
  // forgotten here; the caller must close its socket.
  BindResult Bind(ConnectionId connection, u128 client, BindKind kind);

  // The connection registered for `client` on `replica`, if any.
  std::optional<ConnectionId> Find(uint8_t replica, u128 client) const;

  size_t size() const { return connections_.size(); }

 private:
  struct Entry {
    uint8_t replica = 0;
    u128 client = 0;
  };
  absl::flat_hash_map<ConnectionId, Entry> connections_;
  // Per replica: the connection registered for each client id.
  std::vector<absl::flat_hash_map<u128, ConnectionId, ClientIdHash>> registered_;
};

}  // namespace tb::replica
