// The asio state of one ReplicaConnection: its socket and the buffer sequence of the write in
// flight. Kept out of replica_connection.h so asio stays in .cc files (STYLE.md §2).
#pragma once

#include <utility>
#include <vector>

#include "asio.hpp"

namespace tb::replica::internal {

struct ConnectionIo {
  explicit ConnectionIo(asio::ip::tcp::socket socket_in) : socket(std::move(socket_in)) {}

  asio::ip::tcp::socket socket;
  std::vector<asio::const_buffer> write_buffers;  // Refers to queued messages while writing.
};

}  // namespace tb::replica::internal
