// Multi-batch encoding of request and reply bodies (PROTOCOL.md §11, operations 138..147).
//
//   body    = batch_0 ‖ batch_1 ‖ … ‖ batch_{n−1} ‖ trailer
//   trailer = 0xFF padding ‖ count_{n−1} ‖ … ‖ count_1 ‖ count_0 ‖ n        (all u16)
//   |trailer| = ceil((2n + 2) / x) · x, x = element size (event size E or result size R)
//
// The encoder writes into a caller-owned buffer and never allocates per batch; the decoder
// returns views into the body it was given and rejects every malformed body with a Status.
//
//   tb::MultiBatchEncoder encoder(/*element_size=*/128, &buffer);
//   encoder.AddBatch(events_of_caller_a);  encoder.AddBatch(events_of_caller_b);
//   encoder.Finish();
//   TB_ASSIGN_OR_RETURN(auto batches, tb::DecodeMultiBatch(reply_body, /*element_size=*/16));
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"

namespace tb {

class MultiBatchEncoder {
 public:
  // Appends to `*out` (which keeps any bytes it already holds). element_size is a power of two.
  MultiBatchEncoder(uint32_t element_size, std::vector<uint8_t>* out);

  // Appends one batch; `elements.size()` must be a multiple of element_size (asserted: callers
  // validate input first). At most kMultiBatchCountMax batches and 65,535 elements per batch.
  void AddBatch(std::span<const uint8_t> elements);
  // Writes the trailer. No batch may be added afterwards. With no batch added, encodes one empty
  // batch (a body must hold at least one batch).
  void Finish();

  // Room for `count` batches' counts, so that adding them allocates nothing (up to
  // kInlineBatches need no room at all).
  void ReserveBatches(size_t count) { counts_.reserve(count); }

  uint32_t batch_count() const { return static_cast<uint32_t>(counts_.size()); }
  // Body size if Finish() were called now with one more batch of `element_count` elements.
  uint64_t SizeWithBatch(uint32_t element_count) const;

 private:
  uint32_t element_size_;
  std::vector<uint8_t>* out_;
  size_t start_;
  uint64_t payload_size_ = 0;
  // Inline for the common small bodies (a native reply is one batch): no heap block for them.
  static constexpr size_t kInlineBatches = 16;
  absl::InlinedVector<uint16_t, kInlineBatches> counts_;
  bool finished_ = false;
};

// Encodes a complete body from a list of batches (convenience for tests and small messages).
std::vector<uint8_t> EncodeMultiBatch(uint32_t element_size,
                                      std::span<const std::span<const uint8_t>> batches);

// Decodes a body with the rules a replica applies (§11.4 step 1): at least 2 bytes,
// 1 <= n <= 65,534, body >= trailer, padding all 0xFF, payload = Σ count_i · element_size exactly.
// The returned spans point into `body`.
using MultiBatchView = absl::InlinedVector<std::span<const uint8_t>, 4>;
absl::StatusOr<MultiBatchView> DecodeMultiBatch(std::span<const uint8_t> body,
                                                uint32_t element_size);

}  // namespace tb
