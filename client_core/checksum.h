// TigerBeetle's 128-bit checksum (PROTOCOL.md §4): the AEGIS-128L tag of an empty message with
// the input as associated data, under an all-zero key and nonce.
//
// Two implementations give the same result: one on AES-NI, selected at run time when the CPU
// has it, and a portable one for every other CPU. Both are exposed so tests can prove them equal.
//
//   tb::u128 body_checksum = tb::Checksum(body);
//   tb::ChecksumStream stream; stream.Add(part_1); stream.Add(part_2); stream.Finish();
#pragma once

#include <cstdint>
#include <span>

#include "client_core/u128.h"

namespace tb {

// Checksum of `input` using the fastest implementation this CPU supports.
u128 Checksum(std::span<const uint8_t> input);

// Checksum of the empty input, which every header-only message carries as `checksum_body`.
inline constexpr u128 kChecksumOfEmpty = MakeU128(0x49f174618255402dULL, 0xe6e7e3c40d60cc83ULL);

enum class ChecksumImplementation : uint8_t { kPortable, kAesNi };

// True when this CPU has the AES-NI and SSE4.1 instructions the fast path uses.
bool ChecksumAesNiAvailable();
// Checksum with a chosen implementation; kAesNi asserts ChecksumAesNiAvailable().
u128 ChecksumWith(ChecksumImplementation implementation, std::span<const uint8_t> input);

// Checksum of input that arrives in pieces: Add() them in order, then Finish(). The result equals
// Checksum() of their concatenation. Whole 32-byte blocks are hashed straight from each piece;
// at most 31 bytes are held back between calls. Not thread-safe; one Finish() per stream.
class ChecksumStream {
 public:
  ChecksumStream();
  // With a chosen implementation; kAesNi asserts ChecksumAesNiAvailable().
  explicit ChecksumStream(ChecksumImplementation implementation);

  void Add(std::span<const uint8_t> bytes);
  u128 Finish();

 private:
  alignas(16) uint8_t state_[128];
  uint8_t pending_[32];
  uint32_t pending_size_ = 0;
  uint64_t total_size_ = 0;
  bool aesni_;
  bool finished_ = false;
};

}  // namespace tb
