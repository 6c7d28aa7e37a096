#include "client_core/replica/echo_executor.h"

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "client_core/assert.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/types.h"

namespace tb::replica {

ExecuteResult EchoExecutor::Execute(uint8_t operation, std::span<const uint8_t> body,
                                    uint64_t now_ns) {
  const OperationInfo* info = FindOperation(operation);
  TB_ASSERT(info != nullptr, "the caller validated the operation");
  const uint64_t base = std::max(timestamp_ + 1, now_ns);
  ExecuteResult result{.timestamp = base, .body = {}};

  if (!info->multi_batch) {
    // 128..137: the whole body is one batch; creates report no failures (sparse), the rest
    // find nothing.
    if (info->shape == ResultShape::kSparse) result.timestamp = base + body.size() / info->event_size;
    timestamp_ = result.timestamp;
    return result;
  }

  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(body, info->event_size);
  TB_ASSERT(batches.ok(), "the caller validated the body");
  uint64_t events_total = 0;
  if (info->shape == ResultShape::kDense || info->shape == ResultShape::kSparse) {
    for (const auto& batch : *batches) events_total += batch.size() / info->event_size;
  }
  result.timestamp = base + events_total;

  MultiBatchEncoder encoder(info->result_size, &result.body);
  uint64_t slot = base;
  std::vector<uint8_t> results;
  for (const auto& batch : *batches) {
    if (info->shape != ResultShape::kDense) {
      encoder.AddBatch({});
      continue;
    }
    const size_t count = batch.size() / info->event_size;
    results.resize(count * sizeof(CreateResult));
    for (size_t i = 0; i < count; i++) {
      const CreateResult created{.timestamp = ++slot, .status = 0xFFFFFFFF, .reserved = 0};
      std::memcpy(results.data() + i * sizeof(CreateResult), &created, sizeof(created));
    }
    encoder.AddBatch(results);
  }
  encoder.Finish();
  TB_ASSERT(slot == base + (info->shape == ResultShape::kDense ? events_total : 0));
  timestamp_ = result.timestamp;
  return result;
}

}  // namespace tb::replica
