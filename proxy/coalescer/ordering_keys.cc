#include "proxy/coalescer/ordering_keys.h"

#include <algorithm>

#include "client_core/assert.h"

namespace tb::proxy {

void OrderingKeys::Add(uint64_t key, uint64_t call_id) {
  TB_ASSERT(key != 0);
  std::deque<uint64_t>& chain = chains_[key];
  TB_ASSERT(chain.empty() || chain.back() < call_id, "ids grow in submission order");
  chain.push_back(call_id);
}

void OrderingKeys::Remove(uint64_t key, uint64_t call_id) {
  TB_ASSERT(key != 0);
  auto found = chains_.find(key);
  TB_ASSERT(found != chains_.end());
  std::deque<uint64_t>& chain = found->second;
  // Answers usually come in order, so the call is almost always at the front.
  auto position = std::lower_bound(chain.begin(), chain.end(), call_id);
  TB_ASSERT(position != chain.end() && *position == call_id);
  chain.erase(position);
  if (chain.empty()) chains_.erase(found);
}

bool OrderingKeys::IsNext(uint64_t key, uint64_t call_id, uint32_t earlier_in_message) const {
  if (key == 0) return true;
  auto found = chains_.find(key);
  TB_ASSERT(found != chains_.end());
  const std::deque<uint64_t>& chain = found->second;
  TB_ASSERT(earlier_in_message < chain.size());
  return chain[earlier_in_message] == call_id;
}

}  // namespace tb::proxy
