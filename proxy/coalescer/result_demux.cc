#include "proxy/coalescer/result_demux.h"

#include "absl/strings/str_cat.h"
#include "client_core/multi_batch.h"

namespace tb::proxy {
namespace {

// The most results batch `sent` may receive, and whether it must receive exactly that many.
struct ResultBound {
  uint32_t count_max;
  bool exact;
};

ResultBound BoundFor(const OperationInfo& info, const SentBatch& sent) {
  switch (info.shape) {
    case ResultShape::kDense:
      return {sent.event_count, true};
    case ResultShape::kSparse:
    case ResultShape::kFoundOnly:
      return {sent.event_count, false};
    case ResultShape::kQuery:
      return {sent.expected_results, false};
    case ResultShape::kNone:
      break;
  }
  return {0, true};
}

absl::Status CheckCount(const OperationInfo& info, const SentBatch& sent, size_t batch_index,
                        uint64_t count) {
  const ResultBound bound = BoundFor(info, sent);
  if (bound.exact ? count != bound.count_max : count > bound.count_max) {
    return absl::InternalError(absl::StrCat("reply batch ", batch_index, " of ", info.name,
                                            " holds ", count, " results, expected ",
                                            bound.exact ? "exactly " : "at most ",
                                            bound.count_max));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BatchResults> DemultiplexReply(const OperationInfo& info,
                                              std::span<const SentBatch> sent,
                                              std::span<const uint8_t> body) {
  if (sent.empty() || info.result_size == 0) {
    return absl::InternalError("reply to a message without batches");
  }
  if (!info.multi_batch) {
    if (sent.size() != 1) return absl::InternalError("non-multi-batch message with batches");
    if (body.size() % info.result_size != 0) {
      return absl::InternalError(absl::StrCat("reply of ", info.name, " is ", body.size(),
                                              " bytes, not a whole number of results"));
    }
    absl::Status count = CheckCount(info, sent[0], 0, body.size() / info.result_size);
    if (!count.ok()) return count;
    return BatchResults{body};
  }
  absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(body, info.result_size);
  if (!decoded.ok()) {
    return absl::InternalError(absl::StrCat("reply does not decode: ", decoded.status().message()));
  }
  if (decoded->size() != sent.size()) {
    return absl::InternalError(absl::StrCat("reply has ", decoded->size(), " batches, ",
                                            sent.size(), " were sent"));
  }
  BatchResults results;
  results.reserve(sent.size());
  for (size_t i = 0; i < sent.size(); i++) {
    const std::span<const uint8_t> batch = (*decoded)[i];
    absl::Status count = CheckCount(info, sent[i], i, batch.size() / info.result_size);
    if (!count.ok()) return count;
    results.push_back(batch);
  }
  return results;
}

}  // namespace tb::proxy
