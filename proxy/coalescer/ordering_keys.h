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
#include <deque>

#include "absl/container/flat_hash_map.h"

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
  absl::flat_hash_map<uint64_t, std::deque<uint64_t>> chains_;
};

}  // namespace tb::proxy
