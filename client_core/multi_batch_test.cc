#include "client_core/multi_batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "client_core/constants.h"
#include "client_core/operation.h"

namespace tb {
namespace {

using ::testing::HasSubstr;

std::string Hex(std::span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::vector<uint8_t> FromHex(absl::string_view hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// `count` elements of `element_size` bytes, each filled with its own tag byte.
std::vector<uint8_t> Elements(uint32_t element_size, uint32_t count, uint8_t tag) {
  std::vector<uint8_t> bytes(static_cast<size_t>(element_size) * count);
  for (size_t i = 0; i < bytes.size(); i++) bytes[i] = static_cast<uint8_t>(tag + i / element_size);
  return bytes;
}

std::vector<uint8_t> Encode(uint32_t element_size, const std::vector<std::vector<uint8_t>>& batches) {
  std::vector<std::span<const uint8_t>> spans(batches.begin(), batches.end());
  return EncodeMultiBatch(element_size, spans);
}

// ---- PROTOCOL.md §11.2 ------------------------------------------------------------------------

TEST(MultiBatch, FourBatchesOf128ByteEventsMatchTheProtocolExample) {
  const std::vector<std::vector<uint8_t>> batches = {
      Elements(128, 8, 0x10), Elements(128, 1, 0x20), {}, Elements(128, 4, 0x30)};
  const std::vector<uint8_t> body = Encode(128, batches);
  ASSERT_EQ(body.size(), 1792u);
  const std::span<const uint8_t> trailer = std::span(body).subspan(1664);
  EXPECT_EQ(Hex(trailer), std::string(118 * 2, 'f') + "0400" "0000" "0100" "0800" "0400");
  size_t offset = 0;
  for (const std::vector<uint8_t>& batch : batches) {
    EXPECT_EQ(Hex(std::span(body).subspan(offset, batch.size())), Hex(batch));
    offset += batch.size();
  }
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, 128);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 4u);
  for (size_t i = 0; i < batches.size(); i++) EXPECT_EQ(Hex((*decoded)[i]), Hex(batches[i]));
}

TEST(MultiBatch, CapturedLookupAccountsBodyDecodesAndReencodes) {
  const std::vector<uint8_t> body =
      FromHex("01000000000000000000000000000000ffffffffffffffffffffffff01000100");
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, 16);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ(Hex((*decoded)[0]), "01000000000000000000000000000000");
  const std::vector<uint8_t> id = FromHex("01000000000000000000000000000000");
  EXPECT_EQ(Encode(16, {id}), body);
}

TEST(MultiBatch, CapturedCoalescedCreateAccountsTrailer) {
  const std::vector<uint8_t> body = Encode(128, {Elements(128, 2, 11), {}});
  ASSERT_EQ(body.size(), 384u);
  EXPECT_EQ(Hex(std::span(body).subspan(384 - 8)), "ffff000002000200");
  EXPECT_EQ(Hex(std::span(body).subspan(256, 120)), std::string(240, 'f'));
}

TEST(MultiBatch, NoBatchEncodesOneEmptyBatchThatIsJustTheTrailer) {
  std::vector<uint8_t> body;
  MultiBatchEncoder encoder(16, &body);
  encoder.Finish();
  EXPECT_EQ(Hex(body), std::string(24, 'f') + "00000100");
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, 16);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_TRUE((*decoded)[0].empty());
}

TEST(MultiBatch, TrailerSizeFollowsTheTableOfTheProtocol) {
  // §11.1: batches that fit in one element-sized trailer: 3, 7, 31, 63.
  const struct {
    uint32_t element_size;
    uint32_t batches_in_one_element;
  } rows[] = {{8, 3}, {16, 7}, {64, 31}, {128, 63}};
  for (const auto& row : rows) {
    EXPECT_EQ(TrailerSize(row.element_size, 1), row.element_size);
    EXPECT_EQ(TrailerSize(row.element_size, row.batches_in_one_element), row.element_size);
    EXPECT_EQ(TrailerSize(row.element_size, row.batches_in_one_element + 1),
              2 * row.element_size);
    std::vector<std::vector<uint8_t>> batches(row.batches_in_one_element + 1);
    EXPECT_EQ(Encode(row.element_size, batches).size(), 2 * row.element_size);
  }
}

TEST(MultiBatchEncoder, AppendsAfterExistingBytesAndPredictsItsSize) {
  std::vector<uint8_t> out = {0xAA, 0xBB};
  MultiBatchEncoder encoder(64, &out);
  EXPECT_EQ(encoder.SizeWithBatch(0), 64u);
  EXPECT_EQ(encoder.SizeWithBatch(3), 3 * 64u + 64);
  encoder.AddBatch(Elements(64, 3, 1));
  EXPECT_EQ(encoder.batch_count(), 1u);
  EXPECT_EQ(encoder.SizeWithBatch(2), 5 * 64u + 64);
  // 31 batches fit a 64-byte trailer, the 32nd needs a second element of trailer.
  for (int i = 1; i < 31; i++) encoder.AddBatch({});
  EXPECT_EQ(encoder.SizeWithBatch(0), 3 * 64u + 128);
  const uint64_t predicted = encoder.SizeWithBatch(1);
  encoder.AddBatch(Elements(64, 1, 9));
  encoder.Finish();
  EXPECT_EQ(out.size(), 2 + predicted);
  EXPECT_EQ(out[0], 0xAA);
  EXPECT_EQ(out[1], 0xBB);
  absl::StatusOr<MultiBatchView> decoded =
      DecodeMultiBatch(std::span(out).subspan(2), 64);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), 32u);
}

TEST(MultiBatch, MaximumBatchCountRoundTrips) {
  std::vector<uint8_t> body;
  MultiBatchEncoder encoder(8, &body);
  for (uint32_t i = 0; i < kMultiBatchCountMax; i++) {
    encoder.AddBatch(i % 1000 == 0 ? Elements(8, 1, static_cast<uint8_t>(i)) : std::vector<uint8_t>{});
  }
  encoder.Finish();
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, 8);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->size(), kMultiBatchCountMax);
  EXPECT_EQ((*decoded)[1000].size(), 8u);
}

TEST(MultiBatch, SeededRandomRoundTrips) {
  const uint32_t seed = 4242;
  std::mt19937 random(seed);
  const uint32_t element_sizes[] = {8, 16, 64, 128, 256};
  for (int round = 0; round < 500; round++) {
    const uint32_t element_size = element_sizes[random() % 5];
    const size_t batch_count = 1 + random() % (round % 10 == 0 ? 300 : 12);
    std::vector<std::vector<uint8_t>> batches(batch_count);
    for (std::vector<uint8_t>& batch : batches) {
      const uint32_t count = random() % 4 == 0 ? 0 : random() % 20;
      batch.resize(static_cast<size_t>(count) * element_size);
      for (uint8_t& byte : batch) byte = static_cast<uint8_t>(random());
    }
    const std::vector<uint8_t> body = Encode(element_size, batches);
    ASSERT_EQ(body.size() % element_size, 0u);
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, element_size);
    ASSERT_TRUE(decoded.ok()) << "seed " << seed << " round " << round << ": " << decoded.status();
    ASSERT_EQ(decoded->size(), batches.size()) << "seed " << seed << " round " << round;
    for (size_t i = 0; i < batches.size(); i++) {
      ASSERT_TRUE(std::equal((*decoded)[i].begin(), (*decoded)[i].end(), batches[i].begin(),
                             batches[i].end()))
          << "seed " << seed << " round " << round << " batch " << i;
    }
  }
}

// ---- §11.4 step 1: every malformed body is refused ------------------------------------------

void ExpectRejected(std::span<const uint8_t> body, uint32_t element_size, const char* reason) {
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, element_size);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << reason;
  EXPECT_THAT(std::string(decoded.status().message()), HasSubstr(reason));
}

TEST(DecodeMultiBatch, RejectsBodiesShorterThanTwoBytes) {
  ExpectRejected({}, 16, "no batch count");
  const uint8_t one[] = {1};
  ExpectRejected(one, 16, "no batch count");
}

TEST(DecodeMultiBatch, RejectsBatchCountZeroAndTheReservedPaddingValue) {
  std::vector<uint8_t> body = Encode(16, {Elements(16, 1, 1)});
  body[body.size() - 2] = 0;
  body[body.size() - 1] = 0;
  ExpectRejected(body, 16, "outside 1..65534");
  body[body.size() - 2] = 0xFF;
  body[body.size() - 1] = 0xFF;
  ExpectRejected(body, 16, "outside 1..65534");
  std::vector<uint8_t> padding_only(128, 0xFF);
  ExpectRejected(padding_only, 128, "outside 1..65534");
}

TEST(DecodeMultiBatch, RejectsABodyShorterThanItsTrailer) {
  // n = 8 batches of 16-byte elements needs a 32-byte trailer.
  std::vector<uint8_t> body(16, 0);
  body[14] = 8;
  ExpectRejected(body, 16, "shorter than its trailer");
  const uint8_t two[] = {1, 0};  // n = 1 needs 16 bytes.
  ExpectRejected(two, 16, "shorter than its trailer");
  std::vector<uint8_t> large_n(128, 0);  // n = 65,534 needs a 131,072-byte trailer.
  large_n[126] = 0xFE;
  large_n[127] = 0xFF;
  ExpectRejected(large_n, 128, "shorter than its trailer");
}

TEST(DecodeMultiBatch, RejectsEveryPaddingByteThatIsNotFF) {
  const std::vector<uint8_t> body = Encode(128, {Elements(128, 2, 3), {}});
  const size_t trailer_start = body.size() - 128;
  const size_t counts_start = body.size() - 6;
  for (size_t i = trailer_start; i < counts_start; i++) {
    std::vector<uint8_t> bad = body;
    bad[i] = 0x00;
    ExpectRejected(bad, 128, "is not 0xFF");
    bad[i] = 0xFE;
    ExpectRejected(bad, 128, "is not 0xFF");
  }
}

TEST(DecodeMultiBatch, RejectsCountsThatDoNotMatchThePayload) {
  const std::vector<uint8_t> body = Encode(16, {Elements(16, 2, 1), Elements(16, 1, 5)});
  std::vector<uint8_t> more = body;
  more[body.size() - 4] = 3;  // count_0 = 3 instead of 2.
  ExpectRejected(more, 16, "but the payload is");
  std::vector<uint8_t> fewer = body;
  fewer[body.size() - 6] = 0;  // count_1 = 0 instead of 1.
  ExpectRejected(fewer, 16, "but the payload is");
  std::vector<uint8_t> huge = body;
  huge[body.size() - 3] = 0xFF;  // count_0 += 65,280.
  ExpectRejected(huge, 16, "but the payload is");
  // Extra bytes before the payload, or a payload that is not whole elements.
  std::vector<uint8_t> prefixed(16, 0);
  prefixed.insert(prefixed.end(), body.begin(), body.end());
  ExpectRejected(prefixed, 16, "but the payload is");
  std::vector<uint8_t> odd(5, 0);
  odd.insert(odd.end(), body.begin(), body.end());
  ExpectRejected(odd, 16, "but the payload is");
}

TEST(DecodeMultiBatch, AnEventBodyIsNotAValidResultBodyAndViceVersa) {
  // The element size decides the trailer: a 16-byte-element body read with 128-byte elements.
  const std::vector<uint8_t> body = Encode(16, {Elements(16, 1, 1)});
  EXPECT_FALSE(DecodeMultiBatch(body, 128).ok());
}

// Valid bodies with a few bytes changed, cut or extended: whatever still decodes must re-encode
// to exactly the same bytes (the encoding has one form), and nothing may crash.
TEST(DecodeMultiBatch, SeededMutatedBodiesNeverCrashAndWhatDecodesReencodesExactly) {
  const uint32_t seed = 31337;
  std::mt19937 random(seed);
  int decoded_count = 0;
  int rejected_count = 0;
  for (int round = 0; round < 20000; round++) {
    const uint32_t element_size = 8u << (random() % 5);
    std::vector<std::vector<uint8_t>> batches(1 + random() % 6);
    for (std::vector<uint8_t>& batch : batches) batch.resize(element_size * (random() % 3));
    std::vector<uint8_t> body = Encode(element_size, batches);
    switch (random() % 4) {
      case 0:
        body[random() % body.size()] = static_cast<uint8_t>(random() % 3);
        break;
      case 1:
        body[random() % body.size()] = 0xFF;
        break;
      case 2:
        body.resize(random() % body.size());
        break;
      default:
        body.insert(body.begin() + random() % body.size(), element_size, 0);
        break;
    }
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, element_size);
    if (!decoded.ok()) {
      rejected_count++;
      continue;
    }
    decoded_count++;
    std::vector<std::span<const uint8_t>> spans(decoded->begin(), decoded->end());
    ASSERT_EQ(EncodeMultiBatch(element_size, spans), body) << "seed " << seed << " round " << round;
  }
  EXPECT_GT(decoded_count, 1000) << "seed " << seed;
  EXPECT_GT(rejected_count, 1000) << "seed " << seed;
}

TEST(DecodeMultiBatch, SeededRandomBytesNeverCrash) {
  const uint32_t seed = 5;
  std::mt19937 random(seed);
  for (int round = 0; round < 20000; round++) {
    std::vector<uint8_t> body(random() % 300);
    for (uint8_t& byte : body) byte = static_cast<uint8_t>(random());
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, 8u << (random() % 5));
    if (decoded.ok()) {
      size_t total = 0;
      for (std::span<const uint8_t> batch : *decoded) total += batch.size();
      EXPECT_LE(total, body.size());
    }
  }
}

}  // namespace
}  // namespace tb
