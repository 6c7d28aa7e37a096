// Counts the sockets this process accepted and handed to a library that closes them without
// telling us (gRPC's external connection acceptor): an entry stays counted until its socket is
// closed. A socket is known by its number and its kernel cookie (SO_COOKIE, unique per socket
// for the kernel's lifetime), so a number closed and reused for another socket is not mistaken
// for the one handed off.
//
//   HandedOffSockets sockets;
//   sockets.Add(fd);        // just before handing `fd` off
//   ...
//   sockets.Sweep();        // drops the closed ones; sockets.size() is the open count
//
// Not thread-safe: one owner thread (the gRPC listener's).
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace tb::proxy {

class HandedOffSockets {
 public:
  // Records `fd`, an open socket about to be handed off. An entry under the same number is stale
  // (the kernel gives out a number only after its last close) and is replaced. kInternal if `fd`
  // is not a socket (its cookie cannot be read); nothing is recorded then.
  absl::Status Add(int fd);
  // Drops every entry whose socket is closed: its number is closed or names another socket.
  // One getsockopt per entry.
  void Sweep();
  size_t size() const { return cookies_.size(); }

 private:
  absl::flat_hash_map<int, uint64_t> cookies_;  // fd -> SO_COOKIE at Add.
};

}  // namespace tb::proxy
