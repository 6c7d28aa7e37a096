// Splits a TCP byte stream into whole messages (PROTOCOL.md §2.1), with strict size checks.
//
// Each message is a 256-byte header followed by `size − 256` body bytes. The header checksum and
// the frame rules are verified (CheckFrame) before `size` is trusted, so a hostile peer can
// never make the framer wait for, or allocate, more than one maximal message (1 MiB). The body
// checksum is left to the consumer (ReplicaProtocol verifies the whole message again).
//
// The buffer starts small and grows on demand up to kMessageSizeMax; it never holds more than
// one incomplete message plus whatever one read delivered. Once a large message is consumed and
// nothing is buffered, it shrinks back to its initial size, so an idle connection holds only
// that much however large its past messages were (thousands of client connections stay cheap).
//
//   std::span<uint8_t> space = framer.WritableSpan();        // read up to space.size() bytes
//   framer.Commit(bytes_read);
//   while (true) {
//     absl::StatusOr<std::span<const uint8_t>> message = framer.Next();
//     if (!message.ok()) { Close(); break; }                 // frame error: close
//     if (message->empty()) break;                           // need more bytes
//     Handle(*message);                                      // valid until WritableSpan()
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "client_core/header.h"
#include "client_core/u128.h"

namespace tb::replica {

// The frame checks whose failure closes a connection (PROTOCOL.md §2.1): the header checksum,
// 256 <= size <= 1 MiB, the cluster id, and a command number that exists other than 0 (a real
// replica crashes on those). Returns the header, whose other fields are not validated here: a
// non-zero epoch, protocol, padding or reserved byte only makes the message dropped (§3.2,
// §9.1 step 0), with the connection kept, as on a real replica.
absl::StatusOr<Header> CheckFrame(std::span<const uint8_t> header_bytes, u128 cluster);
// CheckFrame's rules but the header checksum: for a header already checked once (a message the
// framer delivered), so that the checksum is not computed twice.
absl::Status CheckFrameFields(const Header& header, u128 cluster);

class MessageFramer {
 public:
  explicit MessageFramer(u128 cluster, size_t initial_capacity = 4096);

  // Free space to read into; never empty. Call only after Next() returned an empty span, so no
  // complete message is left unread (asserted).
  std::span<uint8_t> WritableSpan();
  // `size` bytes were written at the start of the last WritableSpan() (asserted to fit).
  void Commit(size_t size);

  // The next complete message, an empty span if more bytes are needed, or an error when the
  // stream is broken (bad header checksum, size out of range, wrong cluster, bad command): the
  // connection must be closed, and the framer must not be used again.
  absl::StatusOr<std::span<const uint8_t>> Next();

  size_t buffered_size() const { return end_ - begin_; }
  size_t capacity() const { return buffer_.size(); }

 private:
  u128 cluster_;
  size_t initial_capacity_;
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  uint32_t pending_size_ = 0;  // `size` of the message at begin_, once its header was verified.
  bool broken_ = false;
};

}  // namespace tb::replica
