// Per-key submission order (SubmitOptions::ordering_key): remembers, for every non-zero key, the
// calls not yet answered in the order they were submitted. A call may travel once every earlier
// call with its key has been answered, or travels earlier in the same message. Not thread-safe:
// the coalescer holds its lock around every call.
//
//   keys.Add(key, call_id);
//   if (keys.IsNext(key, call_id, /*earlier_in_message=*/0)) { ...may be sent... }
//   keys.Remove(key, call_id);   // answered, or failed before it was sent
#pragma once

#include <cstdint>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"

namespace tb::proxy {

class OrderingKeys {
 public:
  // `call_id` is larger than every id added before for this key (asserted). key != 0.
  void Add(uint64_t key, uint64_t call_id);
  // Forgets the call wherever it stands in its key's order. The call must have been added.
  void Remove(uint64_t key, uint64_t call_id);
  // True when `call_id` is the first unanswered call of `key` once the first
  // `earlier_in_message` of them are counted as already sent in the message being built.
  // Always true for key 0.
  bool IsNext(uint64_t key, uint64_t call_id, uint32_t earlier_in_message) const;

  size_t key_count() const { return chains_.size(); }

 private:
  // The unanswered calls of one key: ids[head..] in submission order. Answers mostly come in
  // order, so removing the first call only advances `head`; a key usually has one or two calls
  // at a time, which fit inline, so a key that comes and goes allocates nothing.
  struct Chain {
    absl::InlinedVector<uint64_t, 2> ids;
    size_t head = 0;
  };

  absl::flat_hash_map<uint64_t, Chain> chains_;
};

}  // namespace tb::proxy
