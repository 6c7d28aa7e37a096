#include "client_core/checksum.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "client_core/internal/aegis.h"

namespace tb {
namespace {

std::vector<uint8_t> FromHex(const std::string& hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::string ToHex(std::span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string ChecksumWireHex(u128 checksum) {
  uint8_t bytes[16];
  std::memcpy(bytes, &checksum, sizeof(bytes));
  return ToHex(bytes);
}

std::vector<ChecksumImplementation> Implementations() {
  std::vector<ChecksumImplementation> implementations = {ChecksumImplementation::kPortable};
  if (ChecksumAesNiAvailable()) implementations.push_back(ChecksumImplementation::kAesNi);
  return implementations;
}

struct Vector {
  std::vector<uint8_t> input;
  u128 expected;
  const char* wire_hex;
};

std::vector<uint8_t> Iota256() {
  std::vector<uint8_t> bytes(256);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<uint8_t>(i);
  return bytes;
}

std::vector<uint8_t> RegisterResultBody(uint32_t batch_size_limit) {
  std::vector<uint8_t> body(64, 0);
  std::memcpy(body.data(), &batch_size_limit, sizeof(batch_size_limit));
  return body;
}

// PROTOCOL.md §4.4: the repository's vectors and the computed ones.
std::vector<Vector> ProtocolVectors() {
  const std::string tiger_beetle = "TigerBeetle";
  return {
      {{}, MakeU128(0x49f174618255402dULL, 0xe6e7e3c40d60cc83ULL),
       "83cc600dc4e3e7e62d4055826174f149"},
      {std::vector<uint8_t>(16, 0), MakeU128(0x263abed41c103361ULL, 0x65d15dd08dd42af7ULL),
       "f72ad48dd05dd1656133101cd4be3a26"},
      {std::vector<uint8_t>(1, 0), MakeU128(0xbc06b777fe18e474ULL, 0xd5fe644277b8126eULL),
       "6e12b8774264fed574e418fe77b706bc"},
      {std::vector<uint8_t>(32, 0), MakeU128(0xcd15f5d990ef3f72ULL, 0xea71871d99457508ULL),
       "087545991d8771ea723fef90d9f515cd"},
      {std::vector<uint8_t>(33, 0), MakeU128(0x71aee9b388fa072cULL, 0x827cefabd4738e6eULL),
       "6e8e73d4abef7c822c07fa88b3e9ae71"},
      {std::vector<uint8_t>(256, 0), MakeU128(0x3c61ffe89684eb2dULL, 0xbffcd4ddf3821b65ULL),
       "651b82f3ddd4fcbf2deb8496e8ff613c"},
      {Iota256(), MakeU128(0xcd9aaa443699d0f5ULL, 0x76c9a45c491cbad6ULL),
       "d6ba1c495ca4c976f5d0993644aa9acd"},
      {std::vector<uint8_t>(tiger_beetle.begin(), tiger_beetle.end()),
       MakeU128(0x8596037bf901d490ULL, 0x8dc24e823374abdcULL), "dcab7433824ec28d90d401f97b039685"},
      {RegisterResultBody(1048320), MakeU128(0x191cda322bd68ef8ULL, 0x082c67fd040ed2b5ULL),
       "b5d20e04fd672c08f88ed62b32da1c19"},
      {RegisterResultBody(32512), MakeU128(0x4f12ba9334ae028bULL, 0xe110e26f53dbcd0fULL),
       "0fcddb536fe210e18b02ae3493ba124f"},
  };
}

TEST(Checksum, MatchesEveryProtocolVectorWithEachImplementation) {
  for (ChecksumImplementation implementation : Implementations()) {
    for (const Vector& vector : ProtocolVectors()) {
      SCOPED_TRACE(testing::Message() << "implementation " << static_cast<int>(implementation)
                                      << ", input of " << vector.input.size() << " bytes");
      const u128 checksum = ChecksumWith(implementation, vector.input);
      EXPECT_EQ(U128ToHex(checksum), U128ToHex(vector.expected));
      EXPECT_EQ(ChecksumWireHex(checksum), vector.wire_hex);
    }
  }
}

TEST(Checksum, DefaultImplementationMatchesVectors) {
  for (const Vector& vector : ProtocolVectors()) {
    EXPECT_EQ(U128ToHex(Checksum(vector.input)), U128ToHex(vector.expected));
  }
}

TEST(Checksum, EmptyConstantIsTheChecksumOfNothing) {
  EXPECT_EQ(Checksum({}), kChecksumOfEmpty);
  EXPECT_EQ(ChecksumWith(ChecksumImplementation::kPortable, {}), kChecksumOfEmpty);
}

TEST(Checksum, ImplementationsAgreeOnSeededRandomInputs) {
  if (!ChecksumAesNiAvailable()) GTEST_SKIP() << "no AES-NI on this CPU";
  const uint32_t seed = 20261122;
  std::mt19937 random(seed);
  std::vector<uint8_t> buffer(70000 + 64);
  for (uint8_t& byte : buffer) byte = static_cast<uint8_t>(random());
  // Every length up to 300 (all tail sizes), then random lengths, at unaligned offsets too.
  std::vector<size_t> lengths;
  for (size_t length = 0; length <= 300; length++) lengths.push_back(length);
  for (int i = 0; i < 200; i++) lengths.push_back(random() % 70000);
  for (size_t length : lengths) {
    const size_t offset = random() % 64;
    std::span<const uint8_t> input(buffer.data() + offset, length);
    ASSERT_EQ(ChecksumWith(ChecksumImplementation::kPortable, input),
              ChecksumWith(ChecksumImplementation::kAesNi, input))
        << "seed " << seed << ", length " << length << ", offset " << offset;
  }
}

TEST(Checksum, EveryBitOfTheInputMatters) {
  std::vector<uint8_t> input(100, 0x5A);
  const u128 original = Checksum(input);
  for (size_t bit = 0; bit < input.size() * 8; bit++) {
    input[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
    EXPECT_NE(Checksum(input), original) << "bit " << bit;
    input[bit / 8] ^= static_cast<uint8_t>(1 << (bit % 8));
  }
  // Trailing zeros are not padding: the length is part of the checksum.
  input.push_back(0);
  EXPECT_NE(Checksum(input), original);
}

// The published AEGIS-128L AEAD vectors exercise the key, nonce and message paths that the
// checksum (zero key and nonce, empty message) never uses.
struct AeadVector {
  const char* key;
  const char* nonce;
  const char* associated_data;
  const char* message;
  const char* ciphertext;
  const char* tag;
};

constexpr AeadVector kAeadVectors[] = {
    {"10010000000000000000000000000000", "10000200000000000000000000000000", "0001020304050607",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "79d94593d8c2119d7e8fd9b8fc77845c5c077a05b2528b6ac54b563aed8efe84",
     "cc6f3372f6aa1bb82388d695c3962d9a"},
    {"00000000000000000000000000000000", "00000000000000000000000000000000", "",
     "00000000000000000000000000000000", "41de9000a7b5e40e2d68bb64d99ebb19",
     "f4d997cc9b94227ada4fe4165422b1c8"},
};

TEST(AegisAead, MatchesPublishedVectorsWithEachImplementation) {
  for (const AeadVector& vector : kAeadVectors) {
    internal::AegisInput input;
    const std::vector<uint8_t> key = FromHex(vector.key);
    const std::vector<uint8_t> nonce = FromHex(vector.nonce);
    std::memcpy(input.key.data(), key.data(), 16);
    std::memcpy(input.nonce.data(), nonce.data(), 16);
    const std::vector<uint8_t> associated_data = FromHex(vector.associated_data);
    const std::vector<uint8_t> message = FromHex(vector.message);
    input.associated_data = associated_data.data();
    input.associated_data_size = associated_data.size();
    input.message = message.data();
    input.message_size = message.size();

    std::vector<uint8_t> ciphertext(message.size());
    internal::AegisBlock tag{};
    internal::AegisEncryptPortable(input, ciphertext.data(), &tag);
    EXPECT_EQ(ToHex(ciphertext), vector.ciphertext);
    EXPECT_EQ(ToHex(tag), vector.tag);

    if (ChecksumAesNiAvailable()) {
      std::vector<uint8_t> ciphertext_aesni(message.size());
      internal::AegisBlock tag_aesni{};
      internal::AegisEncryptAesNi(input, ciphertext_aesni.data(), &tag_aesni);
      EXPECT_EQ(ToHex(ciphertext_aesni), vector.ciphertext);
      EXPECT_EQ(ToHex(tag_aesni), vector.tag);
    }
  }
}

TEST(AegisAead, ChecksumIsTheTagOfAnEmptyMessageWithInputAsAssociatedData) {
  std::vector<uint8_t> data(77);
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<uint8_t>(i * 7);
  internal::AegisInput input;
  input.associated_data = data.data();
  input.associated_data_size = data.size();
  internal::AegisBlock tag{};
  internal::AegisEncryptPortable(input, nullptr, &tag);
  EXPECT_EQ(ToHex(tag), ChecksumWireHex(Checksum(data)));
}

TEST(AegisAead, ImplementationsAgreeOnSeededRandomKeysAndMessages) {
  if (!ChecksumAesNiAvailable()) GTEST_SKIP() << "no AES-NI on this CPU";
  const uint32_t seed = 77;
  std::mt19937 random(seed);
  for (int round = 0; round < 100; round++) {
    internal::AegisInput input;
    for (uint8_t& byte : input.key) byte = static_cast<uint8_t>(random());
    for (uint8_t& byte : input.nonce) byte = static_cast<uint8_t>(random());
    std::vector<uint8_t> associated_data(random() % 100);
    std::vector<uint8_t> message(random() % 100);
    for (uint8_t& byte : associated_data) byte = static_cast<uint8_t>(random());
    for (uint8_t& byte : message) byte = static_cast<uint8_t>(random());
    input.associated_data = associated_data.data();
    input.associated_data_size = associated_data.size();
    input.message = message.data();
    input.message_size = message.size();
    std::vector<uint8_t> ciphertext_portable(message.size());
    std::vector<uint8_t> ciphertext_aesni(message.size());
    internal::AegisBlock tag_portable{};
    internal::AegisBlock tag_aesni{};
    internal::AegisEncryptPortable(input, ciphertext_portable.data(), &tag_portable);
    internal::AegisEncryptAesNi(input, ciphertext_aesni.data(), &tag_aesni);
    ASSERT_EQ(ciphertext_portable, ciphertext_aesni) << "seed " << seed << ", round " << round;
    ASSERT_EQ(tag_portable, tag_aesni) << "seed " << seed << ", round " << round;
  }
}

}  // namespace
}  // namespace tb

namespace tb {
namespace {

TEST(ChecksumStream, EqualsOneShotChecksumForEverySplit) {
  const uint32_t seed = 8;
  std::mt19937 random(seed);
  std::vector<uint8_t> input(1000);
  for (uint8_t& byte : input) byte = static_cast<uint8_t>(random());
  for (size_t length : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{64},
                        size_t{100}, size_t{1000}}) {
    const std::span<const uint8_t> whole(input.data(), length);
    const u128 expected = ChecksumWith(ChecksumImplementation::kPortable, whole);
    // Two pieces at every split point, with each implementation.
    for (size_t split = 0; split <= length; split++) {
      for (ChecksumImplementation implementation : Implementations()) {
        ChecksumStream stream(implementation);
        stream.Add(whole.first(split));
        stream.Add(whole.subspan(split));
        ASSERT_EQ(stream.Finish(), expected) << "length " << length << " split " << split;
      }
      ChecksumStream stream;
      stream.Add(whole.first(split));
      stream.Add(whole.subspan(split));
      ASSERT_EQ(stream.Finish(), expected) << "length " << length << " split " << split;
    }
    // Many random pieces, including empty ones.
    for (int round = 0; round < 20; round++) {
      ChecksumStream stream;
      size_t offset = 0;
      while (offset < length) {
        const size_t piece = std::min<size_t>(length - offset, random() % 70);
        stream.Add(whole.subspan(offset, piece));
        offset += piece;
      }
      ASSERT_EQ(stream.Finish(), expected) << "seed " << seed << " length " << length;
    }
  }
}

TEST(ChecksumStream, EmptyStreamIsTheChecksumOfEmpty) {
  for (ChecksumImplementation implementation : Implementations()) {
    ChecksumStream stream(implementation);
    EXPECT_EQ(stream.Finish(), kChecksumOfEmpty);
  }
}

TEST(ChecksumStream, HeaderRangeInPiecesMatchesTheProtocolVector) {
  // 256 zero bytes in pieces of 16 (PROTOCOL.md §4.4: the register request body).
  const std::vector<uint8_t> zeros(16, 0);
  ChecksumStream stream;
  for (int i = 0; i < 16; i++) stream.Add(zeros);
  EXPECT_EQ(U128ToHex(stream.Finish()), "0x3c61ffe89684eb2dbffcd4ddf3821b65");
}

}  // namespace
}  // namespace tb
