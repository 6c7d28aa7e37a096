// The three messages a replica sends to clients, built byte-exactly (PROTOCOL.md §6.2, §6.4,
// §6.5, §18): `reply`, `pong_client` and `eviction`. Pure functions over client_core/header.h.
//
//   MessageBytes pong = BuildPong({.cluster = 0, .view = 0, .release = tb::kReleaseServer,
//                                  .replica = 0}, ping.ping_timestamp_monotonic);
#pragma once

#include <cstdint>
#include <span>

#include "client_core/header.h"
#include "client_core/u128.h"
#include "client_core/replica/session_table.h"

namespace tb::replica {

// Who is speaking: the frame fields every server message shares.
struct Sender {
  u128 cluster = 0;
  uint32_t view = 0;
  uint32_t release = 0;  // The cluster's release (pongs, evictions); replies use the request's.
  uint8_t replica = 0;
};

MessageBytes BuildPong(const Sender& sender, uint64_t ping_timestamp_monotonic);
MessageBytes BuildEviction(const Sender& sender, u128 client, EvictionReason reason);

// The fields of a reply that come from the request and from the commit.
struct ReplyFields {
  u128 request_checksum = 0;
  u128 client = 0;
  uint32_t request_release = 0;
  uint32_t request = 0;
  uint8_t operation = 0;
  uint64_t op = 0;         // = commit.
  uint64_t timestamp = 0;  // The prepare timestamp, > 0.
};

// A reply with `context` and both checksums set (SetReplyChecksums). `sender.release` is
// ignored: a reply carries the request's release. Body at most kMessageBodySizeMax (asserted).
MessageBytes BuildReply(const Sender& sender, const ReplyFields& fields,
                        std::span<const uint8_t> body);

// The header of a message built here (asserted at least 256 bytes).
Header HeaderOf(const MessageBytes& message);

// A stored reply re-sent in a newer view: only `view` and `checksum` change; `context`, body and
// everything else stay, which keeps the client's hash chain valid (§9.5). Returns `reply` itself
// if its view is already >= `view`.
MessageBytes WithRaisedView(const MessageBytes& reply, uint32_t view);

}  // namespace tb::replica
