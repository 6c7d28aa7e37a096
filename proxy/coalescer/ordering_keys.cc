#include "proxy/coalescer/ordering_keys.h"

#include <algorithm>

#include "client_core/assert.h"

namespace tb::proxy {

void OrderingKeys::Add(uint64_t key, uint64_t call_id) {
  TB_ASSERT(key != 0);
  Chain& chain = chains_[key];
  TB_ASSERT(chain.ids.size() == chain.head || chain.ids.back() < call_id,
            "ids grow in submission order");
  chain.ids.push_back(call_id);
}

void OrderingKeys::Remove(uint64_t key, uint64_t call_id) {
  TB_ASSERT(key != 0);
  auto found = chains_.find(key);
  TB_ASSERT(found != chains_.end());
  Chain& chain = found->second;
  auto first = chain.ids.begin() + static_cast<ptrdiff_t>(chain.head);
  auto position = std::lower_bound(first, chain.ids.end(), call_id);
  TB_ASSERT(position != chain.ids.end() && *position == call_id);
  if (position == first) {
    chain.head++;
  } else {
    chain.ids.erase(position);
  }
  if (chain.head == chain.ids.size()) {
    chains_.erase(found);
    return;
  }
  // Drop the answered prefix once it outweighs the rest, so a busy key's chain stays bounded
  // by its unanswered calls and each removal stays O(1) amortised.
  if (chain.head * 2 > chain.ids.size()) {
    chain.ids.erase(chain.ids.begin(), chain.ids.begin() + static_cast<ptrdiff_t>(chain.head));
    chain.head = 0;
  }
}

bool OrderingKeys::IsNext(uint64_t key, uint64_t call_id, uint32_t earlier_in_message) const {
  if (key == 0) return true;
  auto found = chains_.find(key);
  TB_ASSERT(found != chains_.end());
  const Chain& chain = found->second;
  TB_ASSERT(chain.head + earlier_in_message < chain.ids.size());
  return chain.ids[chain.head + earlier_in_message] == call_id;
}

}  // namespace tb::proxy
