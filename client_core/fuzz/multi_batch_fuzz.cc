// libFuzzer target for the multi-batch codec and the request body rules built on it: arbitrary
// bytes must never crash DecodeMultiBatch or ValidateRequestBody, and every body that decodes
// must re-encode to exactly the same bytes (the encoding has a single form).
//
// Input: byte 0 picks the element size (8, 16, 32, 64 or 128), byte 1 an operation for
// ValidateRequestBody, byte 2 a batch_size_limit; the rest is the body.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint32_t element_size = 8u << (data[0] % 5);
  const std::span<const uint8_t> body(data + 3, size - 3);

  absl::StatusOr<tb::MultiBatchView> batches = tb::DecodeMultiBatch(body, element_size);
  if (batches.ok()) {
    TB_ASSERT(!batches->empty() && batches->size() <= tb::kMultiBatchCountMax);
    std::vector<std::span<const uint8_t>> spans(batches->begin(), batches->end());
    for (std::span<const uint8_t> batch : spans) {
      TB_ASSERT(batch.size() % element_size == 0);
      TB_ASSERT(batch.data() >= body.data() && batch.data() + batch.size() <= body.data() + body.size());
    }
    const std::vector<uint8_t> reencoded = tb::EncodeMultiBatch(element_size, spans);
    TB_ASSERT(reencoded.size() == body.size());
    TB_ASSERT(std::equal(reencoded.begin(), reencoded.end(), body.begin()));
  }

  const tb::OperationInfo* info =
      tb::FindOperation(static_cast<uint8_t>(tb::kStateMachineOperationMin + data[1] % 20));
  TB_ASSERT(info != nullptr);
  // Limits from the minimum to the maximum, and a few invalid ones (0) that must be refused.
  const uint32_t limit = data[2] == 0 ? 0 : tb::kBatchSizeLimitMin + (data[2] - 1) * 4096u;
  const uint32_t batch_size_limit = limit > tb::kBatchSizeLimitMax ? tb::kBatchSizeLimitMax : limit;
  (void)tb::ValidateRequestBody(*info, body, batch_size_limit).ok();
  (void)tb::ValidateBatch(*info, body, batch_size_limit).ok();
  return 0;
}
