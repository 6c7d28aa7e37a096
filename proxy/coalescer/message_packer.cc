#include "proxy/coalescer/message_packer.h"

#include "client_core/assert.h"
#include "client_core/constants.h"

namespace tb::proxy {

MessagePacker::MessagePacker(const OperationInfo& info, uint32_t batch_size_limit)
    : info_(info), batch_size_limit_(batch_size_limit) {
  TB_ASSERT(batch_size_limit >= kBatchSizeLimitMin && batch_size_limit <= kBatchSizeLimitMax);
  TB_ASSERT(info.event_size > 0 && info.result_size > 0);
  event_max_ = EventMax(info, batch_size_limit);
}

uint64_t MessagePacker::BodySize(uint64_t event_count, uint32_t batch_count) const {
  const uint64_t payload = event_count * info_.event_size;
  if (!info_.multi_batch) return payload;
  return payload + TrailerSize(info_.event_size, batch_count);
}

uint64_t MessagePacker::ReplySize(uint64_t expected_count, uint32_t batch_count) const {
  const uint64_t payload = expected_count * info_.result_size;
  if (!info_.multi_batch) return payload;
  return payload + TrailerSize(info_.result_size, batch_count);
}

bool MessagePacker::Fits(uint32_t event_count, uint32_t expected_results) const {
  if (event_count > event_max_) return false;
  if (!info_.multi_batch) {
    // Never coalesced (§14.2): one batch is the whole body.
    if (batch_count_ > 0) return false;
    return BodySize(event_count, 1) <= batch_size_limit_ &&
           ReplySize(expected_results, 1) <= kMessageBodySizeMax;
  }
  if (batch_count_ + 1 > kMultiBatchCountMax) return false;
  const uint32_t batches = batch_count_ + 1;
  if (BodySize(event_count_ + event_count, batches) > batch_size_limit_) return false;
  if (ReplySize(expected_count_ + expected_results, batches) > kMessageBodySizeMax) return false;
  return true;
}

bool MessagePacker::TryAdd(uint32_t event_count, uint32_t expected_results) {
  if (!Fits(event_count, expected_results)) return false;
  batch_count_++;
  event_count_ += event_count;
  expected_count_ += expected_results;
  TB_ASSERT(body_size() <= batch_size_limit_);
  TB_ASSERT(reply_size_max() <= kMessageBodySizeMax);
  return true;
}

uint64_t MessagePacker::body_size() const {
  if (batch_count_ == 0) return 0;
  return BodySize(event_count_, batch_count_);
}

uint64_t MessagePacker::reply_size_max() const {
  if (batch_count_ == 0) return 0;
  return ReplySize(expected_count_, batch_count_);
}

bool MessagePacker::full() const {
  // An empty batch (create/lookup with zero events) is the smallest possible addition; queries
  // need one event and may expect zero results.
  const uint32_t smallest_events = info_.shape == ResultShape::kQuery ? 1 : 0;
  return !Fits(smallest_events, 0);
}

}  // namespace tb::proxy
