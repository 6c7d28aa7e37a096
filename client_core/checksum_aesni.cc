// AEGIS-128L on AES-NI (PROTOCOL.md §4). This file alone is compiled with -maes -msse4.1, and
// its functions may run only after ChecksumAesNiAvailable() said yes. It calls no standard
// library function but memcpy, so that no shared inline function is emitted here with those
// instruction sets enabled (the linker could otherwise pick that copy for the whole program).
//
// The checksum hashes every message body, so its loop reads each 32-byte block straight from
// the input with unaligned loads and keeps the eight state blocks in registers; only the final
// partial block (< 32 bytes) is copied, to pad it with zeros.
#include <immintrin.h>

#include <cstring>

#include "client_core/internal/aegis.h"

namespace tb::internal {
namespace {

// The eight 16-byte state blocks, passed by reference so the compiler keeps them in registers.
struct State {
  __m128i s0, s1, s2, s3, s4, s5, s6, s7;
};

// Update(M0, M1) of AEGIS-128L: every new block is computed from the old state.
[[gnu::always_inline]] inline void Update(State& state, __m128i message_0, __m128i message_1) {
  const __m128i last = state.s7;
  state.s7 = _mm_aesenc_si128(state.s6, state.s7);
  state.s6 = _mm_aesenc_si128(state.s5, state.s6);
  state.s5 = _mm_aesenc_si128(state.s4, state.s5);
  state.s4 = _mm_xor_si128(_mm_aesenc_si128(state.s3, state.s4), message_1);
  state.s3 = _mm_aesenc_si128(state.s2, state.s3);
  state.s2 = _mm_aesenc_si128(state.s1, state.s2);
  state.s1 = _mm_aesenc_si128(state.s0, state.s1);
  state.s0 = _mm_xor_si128(_mm_aesenc_si128(last, state.s0), message_0);
}

[[gnu::always_inline]] inline __m128i Load(const uint8_t* bytes) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
}

[[gnu::always_inline]] inline State Initialize(__m128i key, __m128i nonce) {
  const uint8_t constant_0_bytes[16] = {0x00, 0x01, 0x01, 0x02, 0x03, 0x05, 0x08, 0x0d,
                                        0x15, 0x22, 0x37, 0x59, 0x90, 0xe9, 0x79, 0x62};
  const uint8_t constant_1_bytes[16] = {0xdb, 0x3d, 0x18, 0x55, 0x6d, 0xc2, 0x2f, 0xf1,
                                        0x20, 0x11, 0x31, 0x42, 0x73, 0xb5, 0x28, 0xdd};
  const __m128i constant_0 = Load(constant_0_bytes);
  const __m128i constant_1 = Load(constant_1_bytes);
  State state;
  state.s0 = _mm_xor_si128(key, nonce);
  state.s1 = constant_1;
  state.s2 = constant_0;
  state.s3 = constant_1;
  state.s4 = _mm_xor_si128(key, nonce);
  state.s5 = _mm_xor_si128(key, constant_0);
  state.s6 = _mm_xor_si128(key, constant_1);
  state.s7 = _mm_xor_si128(key, constant_0);
  for (int i = 0; i < 10; i++) Update(state, nonce, key);
  return state;
}

[[gnu::always_inline]] inline void Absorb(State& state, const uint8_t* data, size_t size) {
  size_t offset = 0;
  for (; offset + 32 <= size; offset += 32) {
    Update(state, Load(data + offset), Load(data + offset + 16));
  }
  if (offset < size) {
    uint8_t padded[32] = {};
    std::memcpy(padded, data + offset, size - offset);
    Update(state, Load(padded), Load(padded + 16));
  }
}

[[gnu::always_inline]] inline __m128i Finish(State& state, uint64_t associated_data_size,
                                             uint64_t message_size) {
  const __m128i lengths = _mm_set_epi64x(static_cast<long long>(message_size * 8),
                                         static_cast<long long>(associated_data_size * 8));
  const __m128i final_block = _mm_xor_si128(state.s2, lengths);
  for (int i = 0; i < 7; i++) Update(state, final_block, final_block);
  __m128i tag = _mm_xor_si128(state.s0, state.s1);
  tag = _mm_xor_si128(tag, state.s2);
  tag = _mm_xor_si128(tag, state.s3);
  tag = _mm_xor_si128(tag, state.s4);
  tag = _mm_xor_si128(tag, state.s5);
  return _mm_xor_si128(tag, state.s6);
}

// ChecksumStream keeps the state between calls as 8 × 16 bytes.
[[gnu::always_inline]] inline State LoadState(const uint8_t* raw) {
  return State{Load(raw),      Load(raw + 16), Load(raw + 32), Load(raw + 48),
               Load(raw + 64), Load(raw + 80), Load(raw + 96), Load(raw + 112)};
}

[[gnu::always_inline]] inline void StoreState(const State& state, uint8_t* raw) {
  const __m128i blocks[8] = {state.s0, state.s1, state.s2, state.s3,
                             state.s4, state.s5, state.s6, state.s7};
  for (int i = 0; i < 8; i++) _mm_storeu_si128(reinterpret_cast<__m128i*>(raw + 16 * i), blocks[i]);
}

}  // namespace

void ChecksumAbsorbAesNi(uint8_t* state, const uint8_t* data, size_t size) {
  State loaded = LoadState(state);
  Absorb(loaded, data, size);
  StoreState(loaded, state);
}

u128 ChecksumFinishAesNi(uint8_t* state, const uint8_t* tail, size_t tail_size,
                         uint64_t total_size) {
  State loaded = LoadState(state);
  Absorb(loaded, tail, tail_size);
  const __m128i tag = Finish(loaded, total_size, 0);
  u128 checksum;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&checksum), tag);
  return checksum;
}

// A checksum's key and nonce are zero, so its state after initialization is always the same:
// computed once instead of ten updates per checksum (as many as a 320-byte input costs).
const State& ZeroKeyState() {
  static const State state = Initialize(_mm_setzero_si128(), _mm_setzero_si128());
  return state;
}

u128 ChecksumAesNi(const uint8_t* data, size_t size) {
  State state = ZeroKeyState();
  Absorb(state, data, size);
  const __m128i tag = Finish(state, size, 0);
  u128 checksum;
  _mm_storeu_si128(reinterpret_cast<__m128i*>(&checksum), tag);
  return checksum;
}

void AegisEncryptAesNi(const AegisInput& input, uint8_t* ciphertext, AegisBlock* tag) {
  State state = Initialize(Load(reinterpret_cast<const uint8_t*>(&input.key)),
                             Load(reinterpret_cast<const uint8_t*>(&input.nonce)));
  Absorb(state, input.associated_data, input.associated_data_size);
  for (size_t offset = 0; offset < input.message_size; offset += 32) {
    const size_t remaining = input.message_size - offset;
    const size_t chunk = remaining < 32 ? remaining : 32;
    uint8_t padded[32] = {};
    std::memcpy(padded, input.message + offset, chunk);
    const __m128i plain_0 = Load(padded);
    const __m128i plain_1 = Load(padded + 16);
    const __m128i key_0 = _mm_xor_si128(_mm_xor_si128(state.s6, state.s1),
                                        _mm_and_si128(state.s2, state.s3));
    const __m128i key_1 = _mm_xor_si128(_mm_xor_si128(state.s2, state.s5),
                                        _mm_and_si128(state.s6, state.s7));
    uint8_t cipher[32];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(cipher), _mm_xor_si128(plain_0, key_0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(cipher + 16), _mm_xor_si128(plain_1, key_1));
    std::memcpy(ciphertext + offset, cipher, chunk);
    Update(state, plain_0, plain_1);
  }
  const __m128i tag_block = Finish(state, input.associated_data_size, input.message_size);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(tag), tag_block);
}

}  // namespace tb::internal
