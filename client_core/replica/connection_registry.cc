#include "client_core/replica/connection_registry.h"

#include "client_core/assert.h"

namespace tb::replica {

ConnectionRegistry::ConnectionRegistry(uint8_t replica_count) : registered_(replica_count) {
  TB_ASSERT(replica_count >= 1);
}

void ConnectionRegistry::Open(ConnectionId connection, uint8_t replica) {
  TB_ASSERT(replica < registered_.size());
  const bool inserted = connections_.emplace(connection, Entry{.replica = replica}).second;
  TB_ASSERT(inserted, "connection ids are never reused");
}

void ConnectionRegistry::Close(ConnectionId connection) {
  auto it = connections_.find(connection);
  if (it == connections_.end()) return;
  const Entry entry = it->second;
  connections_.erase(it);
  if (entry.client == 0) return;
  auto& registered = registered_[entry.replica];
  auto bound = registered.find(entry.client);
  if (bound != registered.end() && bound->second == connection) registered.erase(bound);
}

uint8_t ConnectionRegistry::ReplicaOf(ConnectionId connection) const {
  auto it = connections_.find(connection);
  TB_ASSERT(it != connections_.end());
  return it->second.replica;
}

u128 ConnectionRegistry::ClientOf(ConnectionId connection) const {
  auto it = connections_.find(connection);
  TB_ASSERT(it != connections_.end());
  return it->second.client;
}

BindResult ConnectionRegistry::Bind(ConnectionId connection, u128 client, BindKind kind) {
  TB_ASSERT(client != 0);
  auto it = connections_.find(connection);
  TB_ASSERT(it != connections_.end());
  Entry& entry = it->second;
  BindResult result;
  if (entry.client != 0 && entry.client != client) {
    Close(connection);
    result.close_arrival = true;
    return result;
  }
  entry.client = client;
  auto& registered = registered_[entry.replica];
  auto bound = registered.find(client);
  if (bound == registered.end()) {
    registered.emplace(client, connection);
  } else if (bound->second != connection && kind == BindKind::kPing) {
    const ConnectionId replaced = bound->second;
    bound->second = connection;
    // The replaced connection still names this client; forget it entirely so that its Close()
    // cannot unregister the new one.
    connections_.erase(replaced);
    result.close_replaced = replaced;
  }
  return result;
}

std::optional<ConnectionId> ConnectionRegistry::Find(uint8_t replica, u128 client) const {
  TB_ASSERT(replica < registered_.size());
  auto it = registered_[replica].find(client);
  if (it == registered_[replica].end()) return std::nullopt;
  return it->second;
}

}  // namespace tb::replica
