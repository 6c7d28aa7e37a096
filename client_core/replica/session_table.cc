#include "client_core/replica/session_table.h"

#include <algorithm>
#include <utility>

#include "client_core/assert.h"

namespace tb::replica {

SessionTable::SessionTable(uint32_t capacity) : capacity_(capacity) {
  TB_ASSERT(capacity >= 1);
  sessions_.reserve(std::min<uint32_t>(capacity, 1024));
}

Session* SessionTable::Find(u128 client) {
  auto it = sessions_.find(client);
  return it == sessions_.end() ? nullptr : &it->second;
}

const Session* SessionTable::Find(u128 client) const {
  auto it = sessions_.find(client);
  return it == sessions_.end() ? nullptr : &it->second;
}

std::optional<u128> SessionTable::Add(Session session) {
  TB_ASSERT(session.client != 0);
  TB_ASSERT(session.session != 0 && session.last_op >= session.session);
  TB_ASSERT(!sessions_.contains(session.client), "a client id has at most one session");
  std::optional<u128> removed;
  if (sessions_.size() >= capacity_) {
    // A linear scan over at most clients_max entries, once per register: cheap and obvious.
    auto oldest = sessions_.begin();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      if (it->second.last_op < oldest->second.last_op) oldest = it;
    }
    removed = oldest->first;
    sessions_.erase(oldest);
  }
  const u128 client = session.client;
  sessions_.emplace(client, std::move(session));
  TB_ASSERT(sessions_.size() <= capacity_);
  return removed;
}

bool SessionTable::Remove(u128 client) { return sessions_.erase(client) > 0; }

}  // namespace tb::replica
