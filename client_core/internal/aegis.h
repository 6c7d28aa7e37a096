// Internal entry points of the checksum implementations (PROTOCOL.md §4). Use tb::Checksum()
// from client_core/checksum.h instead; these exist so tests and benchmarks can reach each
// implementation and the general AEGIS-128L AEAD they are built on.
//
// The AES-NI functions execute AES-NI and SSE4.1 instructions: call them only when
// tb::ChecksumAesNiAvailable() is true. Their signatures use plain pointers so that the file
// compiled with -maes -msse4.1 instantiates no shared inline templates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "client_core/u128.h"

namespace tb::internal {

using AegisBlock = std::array<uint8_t, 16>;

// AEGIS-128L AEAD encryption with a 16-byte tag (the tag TigerBeetle's checksum uses).
// `ciphertext` must have room for `message_size` bytes.
struct AegisInput {
  AegisBlock key{};
  AegisBlock nonce{};
  const uint8_t* associated_data = nullptr;
  size_t associated_data_size = 0;
  const uint8_t* message = nullptr;
  size_t message_size = 0;
};

// The checksum in three steps over an explicit state (8 blocks of 16 bytes), for ChecksumStream:
// Init, Absorb whole 32-byte blocks (size % 32 == 0), then Finish with the last partial block
// (tail_size < 32) and the total input size. Both implementations share the state layout.
inline constexpr size_t kAegisStateSize = 128;
void ChecksumInitPortable(uint8_t* state);
void ChecksumAbsorbPortable(uint8_t* state, const uint8_t* data, size_t size);
u128 ChecksumFinishPortable(uint8_t* state, const uint8_t* tail, size_t tail_size,
                            uint64_t total_size);
void ChecksumAbsorbAesNi(uint8_t* state, const uint8_t* data, size_t size);
u128 ChecksumFinishAesNi(uint8_t* state, const uint8_t* tail, size_t tail_size,
                         uint64_t total_size);

u128 ChecksumPortable(const uint8_t* data, size_t size);
void AegisEncryptPortable(const AegisInput& input, uint8_t* ciphertext, AegisBlock* tag);

u128 ChecksumAesNi(const uint8_t* data, size_t size);
void AegisEncryptAesNi(const AegisInput& input, uint8_t* ciphertext, AegisBlock* tag);

}  // namespace tb::internal
