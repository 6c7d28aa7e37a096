// The cluster's client session table (PROTOCOL.md §9.3): one entry per registered client id,
// at most `capacity` of them, holding what a replica needs to answer duplicates and to check the
// next request (last request number and checksum, the reply `context`, the release, the stored
// reply itself).
//
// When a register commits while the table is full, the session whose last committed reply has
// the lowest op number (the least recently *committed*, not the least recently seen) is removed.
// Its client is told nothing at that moment; it learns `no_session` on its next request or ping.
//
//   tb::replica::SessionTable sessions(64);
//   std::optional<tb::u128> removed = sessions.Add(std::move(new_session));
//   if (tb::replica::Session* session = sessions.Find(client)) { ... }
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "client_core/u128.h"

namespace tb::replica {

// One complete message (header and body) as it goes on the wire. Immutable once built, so the
// same bytes can be stored for duplicates and queued on several connections without copies.
using MessageBytes = std::shared_ptr<const std::vector<uint8_t>>;

struct Session {
  u128 client = 0;
  uint64_t session = 0;   // The op number at which the register committed.
  uint64_t last_op = 0;   // The op of the last committed reply: the eviction order.
  uint32_t request = 0;   // Request number of the last committed request (0 = the register).
  u128 request_checksum = 0;  // Checksum of that request (duplicates must match it).
  u128 reply_context = 0;     // `context` of its reply: the next request's `parent`.
  uint32_t release = 0;       // Release of the last reply (= of the session's requests).
  MessageBytes reply;         // The last reply, re-sent to duplicates.
  // A request handed to an AsyncExecutor and not yet completed (pending_token != 0).
  uint64_t pending_token = 0;
  uint32_t pending_request = 0;
  u128 pending_checksum = 0;
};

struct ClientIdHash {
  size_t operator()(u128 value) const {
    return absl::Hash<std::pair<uint64_t, uint64_t>>{}({U128High(value), U128Low(value)});
  }
};

class SessionTable {
 public:
  // `capacity` >= 1 (asserted; callers validate configuration first).
  explicit SessionTable(uint32_t capacity);

  // The session of `client`, or nullptr. The pointer is valid until the next Add().
  Session* Find(u128 client);
  const Session* Find(u128 client) const;

  // Inserts a session for a client that has none (asserted). If the table is full, first
  // removes the least recently committed session and returns its client id.
  std::optional<u128> Add(Session session);

  // Removes the session of `client`; returns whether there was one.
  bool Remove(u128 client);

  size_t size() const { return sessions_.size(); }
  uint32_t capacity() const { return capacity_; }

 private:
  uint32_t capacity_;
  absl::flat_hash_map<u128, Session, ClientIdHash> sessions_;
};

}  // namespace tb::replica
