// Multi-batch bodies (PROTOCOL.md §11):
//
//   ┌──────────┬──────────┬─────┬──────────────┬──────────────────────────────────────────────┐
//   │ batch_0  │ batch_1  │  …  │ batch_{n−1}  │ 0xFF… │ count_{n−1} │ … │ count_0 │ n      │
//   └──────────┴──────────┴─────┴──────────────┴──────────────────────────────────────────────┘
//    Σ count_i · x bytes of elements             trailer: T(x, n) = ceil((2n + 2) / x) · x bytes,
//                                                all u16 little-endian, counts stored backwards
//
// The trailer is a whole number of elements, so the body stays a multiple of the element size.
#include "client_core/multi_batch.h"

#include <bit>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/operation.h"

namespace tb {
namespace {

constexpr uint32_t kBatchElementsMax = 65535;  // A count is a u16.
constexpr uint16_t kTrailerPadding = 0xFFFF;   // n = 65,535 is reserved as padding.

uint16_t ReadU16(const uint8_t* bytes) {
  uint16_t value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

// True when every byte of [begin, end) is 0xFF; eight at a time, since a one-event batch's
// trailer is mostly padding (126 of 128 bytes for 128-byte events).
bool AllPadding(const uint8_t* begin, const uint8_t* end) {
  for (; end - begin >= 8; begin += 8) {
    uint64_t word;
    std::memcpy(&word, begin, sizeof(word));
    if (word != ~uint64_t{0}) return false;
  }
  for (; begin < end; begin++) {
    if (*begin != 0xFF) return false;
  }
  return true;
}

void AppendU16(std::vector<uint8_t>* out, uint16_t value) {
  uint8_t bytes[2];
  std::memcpy(bytes, &value, sizeof(value));
  out->insert(out->end(), bytes, bytes + 2);
}

}  // namespace

MultiBatchEncoder::MultiBatchEncoder(uint32_t element_size, std::vector<uint8_t>* out)
    : element_size_(element_size), out_(out), start_(out != nullptr ? out->size() : 0) {
  TB_ASSERT(out != nullptr);
  TB_ASSERT(element_size > 0 && std::has_single_bit(element_size),
            "element sizes are powers of two");
}

void MultiBatchEncoder::AddBatch(std::span<const uint8_t> elements) {
  TB_ASSERT(!finished_, "no batch may follow Finish()");
  TB_ASSERT(elements.size() % element_size_ == 0, "a batch is a whole number of elements");
  TB_ASSERT(counts_.size() < kMultiBatchCountMax);
  const uint64_t count = elements.size() / element_size_;
  TB_ASSERT(count <= kBatchElementsMax);
  out_->insert(out_->end(), elements.begin(), elements.end());
  payload_size_ += elements.size();
  counts_.push_back(static_cast<uint16_t>(count));
}

void MultiBatchEncoder::Finish() {
  TB_ASSERT(!finished_);
  if (counts_.empty()) counts_.push_back(0);
  const auto batch_count = static_cast<uint32_t>(counts_.size());
  const uint32_t trailer_size = TrailerSize(element_size_, batch_count);
  const uint32_t padding_size = trailer_size - (2 * batch_count + 2);
  out_->insert(out_->end(), padding_size, uint8_t{0xFF});
  for (size_t i = counts_.size(); i > 0; i--) AppendU16(out_, counts_[i - 1]);
  AppendU16(out_, static_cast<uint16_t>(batch_count));
  finished_ = true;
  TB_ASSERT(out_->size() - start_ == payload_size_ + trailer_size);
}

uint64_t MultiBatchEncoder::SizeWithBatch(uint32_t element_count) const {
  TB_ASSERT(!finished_);
  return payload_size_ + static_cast<uint64_t>(element_count) * element_size_ +
         TrailerSize(element_size_, batch_count() + 1);
}

std::vector<uint8_t> EncodeMultiBatch(uint32_t element_size,
                                      std::span<const std::span<const uint8_t>> batches) {
  std::vector<uint8_t> body;
  MultiBatchEncoder encoder(element_size, &body);
  for (std::span<const uint8_t> batch : batches) encoder.AddBatch(batch);
  encoder.Finish();
  return body;
}

absl::StatusOr<MultiBatchView> DecodeMultiBatch(std::span<const uint8_t> body,
                                                uint32_t element_size) {
  TB_ASSERT(element_size > 0 && std::has_single_bit(element_size));
  if (body.size() < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("multi-batch body of ", body.size(), " bytes has no batch count"));
  }
  const uint16_t batch_count = ReadU16(body.data() + body.size() - 2);
  if (batch_count == 0 || batch_count == kTrailerPadding) {
    return absl::InvalidArgumentError(
        absl::StrCat("multi-batch count ", batch_count, " outside 1..65534"));
  }
  const uint64_t trailer_size = TrailerSize(element_size, batch_count);
  if (body.size() < trailer_size) {
    return absl::InvalidArgumentError(absl::StrCat("multi-batch body of ", body.size(),
                                                   " bytes is shorter than its trailer (",
                                                   trailer_size, " bytes for ", batch_count,
                                                   " batches)"));
  }
  const size_t trailer_start = body.size() - trailer_size;
  const size_t counts_start = body.size() - 2 - 2 * static_cast<size_t>(batch_count);
  if (!AllPadding(body.data() + trailer_start, body.data() + counts_start)) {
    for (size_t i = trailer_start; i < counts_start; i++) {
      if (body[i] != 0xFF) {
        return absl::InvalidArgumentError(
            absl::StrCat("multi-batch trailer padding byte at offset ", i, " is not 0xFF"));
      }
    }
  }
  // count_i is stored at len − 4 − 2i.
  uint64_t element_count = 0;
  for (size_t i = 0; i < batch_count; i++) {
    element_count += ReadU16(body.data() + body.size() - 4 - 2 * i);
  }
  if (element_count * element_size != trailer_start) {
    return absl::InvalidArgumentError(absl::StrCat(
        "multi-batch counts announce ", element_count, " elements (", element_count * element_size,
        " bytes) but the payload is ", trailer_start, " bytes"));
  }
  MultiBatchView batches;
  batches.reserve(batch_count);
  size_t offset = 0;
  for (size_t i = 0; i < batch_count; i++) {
    const size_t size = static_cast<size_t>(ReadU16(body.data() + body.size() - 4 - 2 * i)) *
                        element_size;
    batches.push_back(body.subspan(offset, size));
    offset += size;
  }
  TB_ASSERT(offset == trailer_start);
  return batches;
}

}  // namespace tb
