// Portable AEGIS-128L (PROTOCOL.md §4) for CPUs without AES instructions.
//
// The AES round is computed with four 256-entry tables that merge SubBytes and MixColumns
// (one 32-bit word per output column). The tables are derived at compile time from the field
// arithmetic of FIPS-197 rather than written out, so there is nothing to mistype. Table lookups
// are not constant-time; that does not matter here because the key is public (all zero) and
// the checksum guards integrity, not secrecy.
//
// A 16-byte block is held as four little-endian 32-bit words, word c being AES column c
// (bytes 4c..4c+3, row r in bits 8r..8r+7), which is exactly the byte order of the wire.
#include <array>
#include <cstring>

#include "client_core/assert.h"
#include "client_core/internal/aegis.h"

namespace tb::internal {
namespace {

// ---- GF(2^8) and the AES tables, all computed at compile time --------------------------------

constexpr uint8_t GaloisDouble(uint8_t value) {
  return static_cast<uint8_t>((value << 1) ^ ((value & 0x80) != 0 ? 0x1B : 0x00));
}

constexpr uint8_t RotateLeft8(uint8_t value, int shift) {
  return static_cast<uint8_t>((value << shift) | (value >> (8 - shift)));
}

// S-box: multiplicative inverse in GF(2^8) followed by the affine map of FIPS-197 §5.1.1.
// Inverses come from exponent/logarithm tables of the generator 3.
constexpr std::array<uint8_t, 256> MakeSubstitutionBox() {
  std::array<uint8_t, 256> exponent{};
  std::array<uint8_t, 256> logarithm{};
  uint8_t power = 1;
  for (int i = 0; i < 255; i++) {
    exponent[i] = power;
    logarithm[power] = static_cast<uint8_t>(i);
    power = static_cast<uint8_t>(power ^ GaloisDouble(power));  // power · 3
  }
  std::array<uint8_t, 256> box{};
  for (int value = 0; value < 256; value++) {
    uint8_t inverse = 0;
    if (value != 0) inverse = exponent[(255 - logarithm[value]) % 255];
    box[value] = static_cast<uint8_t>(inverse ^ RotateLeft8(inverse, 1) ^ RotateLeft8(inverse, 2) ^
                                      RotateLeft8(inverse, 3) ^ RotateLeft8(inverse, 4) ^ 0x63);
  }
  return box;
}

constexpr std::array<uint8_t, 256> kSubstitutionBox = MakeSubstitutionBox();
static_assert(kSubstitutionBox[0x00] == 0x63);
static_assert(kSubstitutionBox[0x01] == 0x7C);
static_assert(kSubstitutionBox[0x53] == 0xED);  // The worked example of FIPS-197 §5.1.1.
static_assert(kSubstitutionBox[0xFF] == 0x16);

constexpr uint32_t RotateLeft32(uint32_t value, int shift) {
  return shift == 0 ? value : (value << shift) | (value >> (32 - shift));
}

// Table `row` gives the contribution of a byte in AES row `row` to its output column:
// MixColumns multiplies by (2, 1, 1, 3) rotated down by `row` rows.
constexpr std::array<uint32_t, 256> MakeRoundTable(int row) {
  std::array<uint32_t, 256> table{};
  for (int value = 0; value < 256; value++) {
    const uint8_t substituted = kSubstitutionBox[value];
    const uint8_t doubled = GaloisDouble(substituted);
    const uint8_t tripled = static_cast<uint8_t>(doubled ^ substituted);
    const uint32_t column = static_cast<uint32_t>(doubled) |
                            (static_cast<uint32_t>(substituted) << 8) |
                            (static_cast<uint32_t>(substituted) << 16) |
                            (static_cast<uint32_t>(tripled) << 24);
    table[value] = RotateLeft32(column, 8 * row);
  }
  return table;
}

constexpr std::array<std::array<uint32_t, 256>, 4> kRoundTables = {
    MakeRoundTable(0), MakeRoundTable(1), MakeRoundTable(2), MakeRoundTable(3)};

// ---- Blocks and the AEGIS-128L state -----------------------------------------------------------

struct Block {
  uint32_t words[4];
};

Block LoadBlock(const uint8_t* bytes) {
  Block block;
  std::memcpy(block.words, bytes, sizeof(block.words));
  return block;
}

Block LoadBlock(const AegisBlock& bytes) { return LoadBlock(bytes.data()); }

Block Xor(const Block& a, const Block& b) {
  return {{a.words[0] ^ b.words[0], a.words[1] ^ b.words[1], a.words[2] ^ b.words[2],
           a.words[3] ^ b.words[3]}};
}

Block And(const Block& a, const Block& b) {
  return {{a.words[0] & b.words[0], a.words[1] & b.words[1], a.words[2] & b.words[2],
           a.words[3] & b.words[3]}};
}

uint8_t ByteOf(uint32_t word, int row) { return static_cast<uint8_t>(word >> (8 * row)); }

// SubBytes, ShiftRows, MixColumns on `state`, then XOR `round_key`: the x86 AESENC instruction.
// ShiftRows moves row r left by r columns, so output column c reads row r from column c + r.
Block AesRound(const Block& state, const Block& round_key) {
  Block result;
  for (int column = 0; column < 4; column++) {
    result.words[column] = kRoundTables[0][ByteOf(state.words[column], 0)] ^
                           kRoundTables[1][ByteOf(state.words[(column + 1) % 4], 1)] ^
                           kRoundTables[2][ByteOf(state.words[(column + 2) % 4], 2)] ^
                           kRoundTables[3][ByteOf(state.words[(column + 3) % 4], 3)] ^
                           round_key.words[column];
  }
  return result;
}

constexpr AegisBlock kConstant0 = {0x00, 0x01, 0x01, 0x02, 0x03, 0x05, 0x08, 0x0d,
                                   0x15, 0x22, 0x37, 0x59, 0x90, 0xe9, 0x79, 0x62};
constexpr AegisBlock kConstant1 = {0xdb, 0x3d, 0x18, 0x55, 0x6d, 0xc2, 0x2f, 0xf1,
                                   0x20, 0x11, 0x31, 0x42, 0x73, 0xb5, 0x28, 0xdd};

class AegisState {
 public:
  AegisState(const AegisBlock& key_bytes, const AegisBlock& nonce_bytes) {
    const Block key = LoadBlock(key_bytes);
    const Block nonce = LoadBlock(nonce_bytes);
    const Block constant_0 = LoadBlock(kConstant0);
    const Block constant_1 = LoadBlock(kConstant1);
    blocks_[0] = Xor(key, nonce);
    blocks_[1] = constant_1;
    blocks_[2] = constant_0;
    blocks_[3] = constant_1;
    blocks_[4] = Xor(key, nonce);
    blocks_[5] = Xor(key, constant_0);
    blocks_[6] = Xor(key, constant_1);
    blocks_[7] = Xor(key, constant_0);
    for (int i = 0; i < 10; i++) Update(nonce, key);
  }

  // The state as 8 × 16 bytes, the layout ChecksumStream keeps between calls.
  void Store(uint8_t* raw) const { std::memcpy(raw, blocks_, sizeof(blocks_)); }
  static AegisState FromRaw(const uint8_t* raw) {
    AegisState state;
    std::memcpy(state.blocks_, raw, sizeof(state.blocks_));
    return state;
  }

  void Update(const Block& message_0, const Block& message_1) {
    const Block last = blocks_[7];
    for (int i = 7; i >= 1; i--) blocks_[i] = AesRound(blocks_[i - 1], blocks_[i]);
    blocks_[0] = Xor(AesRound(last, blocks_[0]), message_0);
    blocks_[4] = Xor(blocks_[4], message_1);
  }

  // Absorbs associated data, zero-padding the last partial 32-byte block.
  void Absorb(const uint8_t* data, size_t size) {
    size_t offset = 0;
    for (; offset + 32 <= size; offset += 32) {
      Update(LoadBlock(data + offset), LoadBlock(data + offset + 16));
    }
    if (offset < size) {
      uint8_t padded[32] = {};
      std::memcpy(padded, data + offset, size - offset);
      Update(LoadBlock(padded), LoadBlock(padded + 16));
    }
  }

  void Encrypt(const uint8_t* message, size_t size, uint8_t* ciphertext) {
    for (size_t offset = 0; offset < size; offset += 32) {
      const size_t chunk = size - offset < 32 ? size - offset : 32;
      uint8_t padded[32] = {};
      std::memcpy(padded, message + offset, chunk);
      const Block plain_0 = LoadBlock(padded);
      const Block plain_1 = LoadBlock(padded + 16);
      const Block key_0 = Xor(Xor(blocks_[6], blocks_[1]), And(blocks_[2], blocks_[3]));
      const Block key_1 = Xor(Xor(blocks_[2], blocks_[5]), And(blocks_[6], blocks_[7]));
      const Block cipher_0 = Xor(plain_0, key_0);
      const Block cipher_1 = Xor(plain_1, key_1);
      uint8_t cipher[32];
      std::memcpy(cipher, cipher_0.words, 16);
      std::memcpy(cipher + 16, cipher_1.words, 16);
      std::memcpy(ciphertext + offset, cipher, chunk);
      Update(plain_0, plain_1);
    }
  }

  Block Finish(uint64_t associated_data_size, uint64_t message_size) {
    uint8_t lengths[16];
    const uint64_t associated_data_bits = associated_data_size * 8;
    const uint64_t message_bits = message_size * 8;
    std::memcpy(lengths, &associated_data_bits, 8);
    std::memcpy(lengths + 8, &message_bits, 8);
    const Block final_block = Xor(blocks_[2], LoadBlock(lengths));
    for (int i = 0; i < 7; i++) Update(final_block, final_block);
    Block tag = blocks_[0];
    for (int i = 1; i < 7; i++) tag = Xor(tag, blocks_[i]);
    return tag;
  }

 private:
  AegisState() = default;

  Block blocks_[8];
};

}  // namespace

void AegisEncryptPortable(const AegisInput& input, uint8_t* ciphertext, AegisBlock* tag) {
  TB_ASSERT(tag != nullptr);
  TB_ASSERT(input.message_size == 0 || ciphertext != nullptr);
  AegisState state(input.key, input.nonce);
  state.Absorb(input.associated_data, input.associated_data_size);
  state.Encrypt(input.message, input.message_size, ciphertext);
  const Block tag_block = state.Finish(input.associated_data_size, input.message_size);
  std::memcpy(tag->data(), tag_block.words, 16);
}

static_assert(sizeof(Block) * 8 == kAegisStateSize);

void ChecksumInitPortable(uint8_t* state) { AegisState(AegisBlock{}, AegisBlock{}).Store(state); }

void ChecksumAbsorbPortable(uint8_t* state, const uint8_t* data, size_t size) {
  TB_ASSERT(size % 32 == 0);
  AegisState aegis = AegisState::FromRaw(state);
  aegis.Absorb(data, size);
  aegis.Store(state);
}

u128 ChecksumFinishPortable(uint8_t* state, const uint8_t* tail, size_t tail_size,
                            uint64_t total_size) {
  TB_ASSERT(tail_size < 32);
  AegisState aegis = AegisState::FromRaw(state);
  aegis.Absorb(tail, tail_size);
  const Block tag = aegis.Finish(total_size, 0);
  u128 checksum;
  std::memcpy(&checksum, tag.words, sizeof(checksum));
  return checksum;
}

u128 ChecksumPortable(const uint8_t* data, size_t size) {
  TB_ASSERT(size == 0 || data != nullptr);
  AegisState state(AegisBlock{}, AegisBlock{});
  state.Absorb(data, size);
  const Block tag = state.Finish(size, 0);
  u128 checksum;
  std::memcpy(&checksum, tag.words, sizeof(checksum));
  return checksum;
}

}  // namespace tb::internal
