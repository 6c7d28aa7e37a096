// Splits a cluster reply into each caller's results by batch index (PROTOCOL.md §11.3, §13.3).
// Pure computation: checks the reply against what was sent and never trusts it further.
//
//   std::vector<tb::proxy::SentBatch> sent = {{.event_count = 2, .expected_results = 2}};
//   absl::StatusOr<tb::proxy::BatchResults> results = tb::proxy::DemultiplexReply(info, sent, body);
//   // (*results)[i] are the result bytes of request batch i.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "client_core/operation.h"

namespace tb::proxy {

// What one batch of the request held.
struct SentBatch {
  uint32_t event_count = 0;
  uint32_t expected_results = 0;  // tb::ExpectedResultCount of the batch.
};

using BatchResults = std::vector<std::span<const uint8_t>>;

// Returns one view into `body` per sent batch, in order. kInternal when the reply does not
// match the request: it does not decode; its batch count differs from the batches sent; a dense
// create batch does not hold exactly one result per event; a batch holds more results than it
// could (found-only: more than its events; queries: more than expected); for 137, the body is
// not a whole number of results or holds more than expected.
absl::StatusOr<BatchResults> DemultiplexReply(const OperationInfo& info,
                                              std::span<const SentBatch> sent,
                                              std::span<const uint8_t> body);

}  // namespace tb::proxy
