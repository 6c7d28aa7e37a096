// Request body rules of a 0.17.x replica (PROTOCOL.md §10.3, §11.4) and the per-caller batch
// rules of the official client (§13.1, §14.4). Sizes are summed in 64 bits so that no body,
// however large or malformed, can overflow the arithmetic.
#include "client_core/request_validation.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/status_macros.h"

namespace tb {
namespace {

absl::Status CheckBatchSizeLimit(uint32_t batch_size_limit) {
  if (batch_size_limit == 0 || batch_size_limit > kBatchSizeLimitMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch_size_limit ", batch_size_limit, " outside 1..", kBatchSizeLimitMax));
  }
  return absl::OkStatus();
}

absl::Status CheckWholeEvents(const OperationInfo& info, std::span<const uint8_t> events) {
  if (events.size() % info.event_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": ", events.size(),
                                                   " bytes are not a whole number of ",
                                                   info.event_size, "-byte events"));
  }
  return absl::OkStatus();
}

// Event count of one batch (or of a whole non-multi-batch body): at most `event_max`
// (EventMax(L), computed once per body by the caller), and exactly one filter for query-like
// operations.
absl::Status CheckEventCount(const OperationInfo& info, uint64_t event_count, uint32_t event_max,
                             uint32_t batch_size_limit) {
  if (info.shape == ResultShape::kQuery) {
    if (event_count != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          info.name, ": a batch must hold exactly one filter, not ", event_count));
    }
    return absl::OkStatus();
  }
  if (event_count > event_max) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": ", event_count,
                                                   " events in one batch, at most ", event_max,
                                                   " allowed at batch_size_limit ",
                                                   batch_size_limit));
  }
  return absl::OkStatus();
}

absl::Status ValidateMultiBatchBody(const OperationInfo& info, std::span<const uint8_t> body,
                                    uint32_t batch_size_limit) {
  absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(body, info.event_size);
  if (!batches.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(info.name, ": ", batches.status().message()));
  }
  const uint32_t event_max = EventMax(info, batch_size_limit);
  uint64_t reply_size = TrailerSize(info.result_size, static_cast<uint32_t>(batches->size()));
  for (std::span<const uint8_t> batch : *batches) {
    TB_RETURN_IF_ERROR(
        CheckEventCount(info, batch.size() / info.event_size, event_max, batch_size_limit));
    reply_size += static_cast<uint64_t>(ExpectedResultCount(info, batch)) * info.result_size;
  }
  if (reply_size > kMessageBodySizeMax) {
    return absl::InvalidArgumentError(absl::StrCat(info.name, ": the reply could reach ",
                                                   reply_size, " bytes, more than ",
                                                   kMessageBodySizeMax));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequestBody(const OperationInfo& info, std::span<const uint8_t> body,
                                 uint32_t batch_size_limit) {
  TB_RETURN_IF_ERROR(CheckBatchSizeLimit(batch_size_limit));
  if (info.shape == ResultShape::kNone) {
    if (!body.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(info.name, ": the body must be empty, it has ", body.size(), " bytes"));
    }
    return absl::OkStatus();
  }
  if (info.multi_batch) return ValidateMultiBatchBody(info, body, batch_size_limit);
  // Not multi-batch (129..137): the whole body is one batch, without a trailer. A count within
  // EventMax also keeps the reply within the body maximum (EventMax ≤ B / R).
  TB_RETURN_IF_ERROR(CheckWholeEvents(info, body));
  return CheckEventCount(info, body.size() / info.event_size, EventMax(info, batch_size_limit),
                         batch_size_limit);
}

absl::Status ValidateBatch(const OperationInfo& info, std::span<const uint8_t> events,
                           uint32_t batch_size_limit) {
  TB_RETURN_IF_ERROR(CheckBatchSizeLimit(batch_size_limit));
  if (info.shape == ResultShape::kNone) {
    return absl::InvalidArgumentError(
        absl::StrCat(info.name, ": operation ", static_cast<int>(info.operation),
                     " carries no events and is never forwarded"));
  }
  TB_RETURN_IF_ERROR(CheckWholeEvents(info, events));
  TB_RETURN_IF_ERROR(CheckEventCount(info, events.size() / info.event_size,
                                     EventMax(info, batch_size_limit), batch_size_limit));
  if (info.shape == ResultShape::kQuery) {
    uint32_t limit = 0;
    std::memcpy(&limit, events.data() + info.limit_offset, sizeof(limit));
    const uint32_t result_max = ResultMax(info);
    if (limit > result_max) {
      return absl::InvalidArgumentError(absl::StrCat(
          info.name, ": limit ", limit, " exceeds the ", result_max, " results one reply holds"));
    }
  }
  return absl::OkStatus();
}

}  // namespace tb
