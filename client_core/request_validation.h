// The checks a replica applies to a request body before executing it (PROTOCOL.md §10.3, §11.4)
// — failing one gets the whole session evicted with `invalid_request_body`. The dev cluster uses
// them to decide evictions, and tbproxy uses them to refuse a caller's input alone, before it can
// reach a session.
//
//   const tb::OperationInfo* info = tb::FindOperation(header.operation);
//   absl::Status valid = tb::ValidateRequestBody(*info, body, batch_size_limit);
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "client_core/operation.h"

namespace tb {

// Whole-body validation as the replica does it: for multi-batch operations the body decodes
// (§11.4 step 1), every batch holds at most EventMax(L) events (exactly one filter for queries),
// and the reply fits: Σ expected·R + T(R, n) <= kMessageBodySizeMax. For the other operations
// the body is a whole number of events within EventMax (exactly one for query-like ones), and
// 128 must be empty. Does not check the request size against 256 + L (that is a separate,
// earlier eviction reason, invalid_request_body_size).
absl::Status ValidateRequestBody(const OperationInfo& info, std::span<const uint8_t> body,
                                 uint32_t batch_size_limit);

// The checks for one caller's batch before it is queued (§13.1, §14.4): a whole number of
// events, at most EventMax(L) of them, exactly one filter for queries, query limit within
// ResultMax. Returns kInvalidArgument with a message that says which rule failed.
absl::Status ValidateBatch(const OperationInfo& info, std::span<const uint8_t> events,
                           uint32_t batch_size_limit);

}  // namespace tb
