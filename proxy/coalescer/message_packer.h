// Batch arithmetic for one outgoing message: decides whether one more caller's batch still fits
// every limit a replica checks (PROTOCOL.md §10.3, §11.4, §14.3). Pure computation, no I/O.
//
//   tb::proxy::MessagePacker packer(info, batch_size_limit);
//   if (packer.TryAdd(event_count, expected_results)) { ...the batch joins the message... }
#pragma once

#include <cstdint>

#include "client_core/operation.h"

namespace tb::proxy {

class MessagePacker {
 public:
  // `batch_size_limit` is in [kBatchSizeLimitMin, kBatchSizeLimitMax] (asserted).
  MessagePacker(const OperationInfo& info, uint32_t batch_size_limit);

  // Whether a batch of `event_count` events expecting `expected_results` results fits this
  // message together with everything added so far:
  //   Σ events·E + T(E, n+1) <= L,  Σ expected·R + T(R, n+1) <= kMessageBodySizeMax,
  //   n+1 <= kMultiBatchCountMax, every batch <= EventMax(L) events.
  // A non-multi-batch operation (137) holds exactly one batch, without a trailer.
  bool Fits(uint32_t event_count, uint32_t expected_results) const;
  // Fits() and, if so, records the batch. Returns whether it was added.
  bool TryAdd(uint32_t event_count, uint32_t expected_results);

  uint32_t batch_count() const { return batch_count_; }
  uint64_t event_count() const { return event_count_; }
  // Size of the request body with the batches added so far.
  uint64_t body_size() const;
  // Size of the largest reply those batches allow.
  uint64_t reply_size_max() const;
  // True when no further batch of any size can join (saves scanning the queue).
  bool full() const;

 private:
  uint64_t BodySize(uint64_t event_count, uint32_t batch_count) const;
  uint64_t ReplySize(uint64_t expected_count, uint32_t batch_count) const;

  const OperationInfo& info_;
  uint32_t batch_size_limit_;
  uint32_t event_max_;
  uint32_t batch_count_ = 0;
  uint64_t event_count_ = 0;
  uint64_t expected_count_ = 0;
};

}  // namespace tb::proxy
