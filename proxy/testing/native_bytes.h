// Native TigerBeetle structs (client_core/types.h) as the bytes of events and results, for tests
// that build a request or an answer by hand and read one back.
//
//   std::vector<uint8_t> events;
//   AppendNative(account, &events);
//   const Account first = NativeAt<Account>(events, 0);
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "client_core/assert.h"

namespace tb::proxy::testing {

template <typename Native>
void AppendNative(const Native& native, std::vector<uint8_t>* bytes) {
  static_assert(std::is_trivially_copyable_v<Native>);
  const size_t offset = bytes->size();
  bytes->resize(offset + sizeof(Native));
  std::memcpy(bytes->data() + offset, &native, sizeof(Native));
}

// One struct's bytes.
template <typename Native>
std::vector<uint8_t> NativeBytes(const Native& native) {
  std::vector<uint8_t> bytes;
  AppendNative(native, &bytes);
  return bytes;
}

// The `index`-th struct of `bytes`, which must hold it.
template <typename Native>
Native NativeAt(std::span<const uint8_t> bytes, size_t index) {
  static_assert(std::is_trivially_copyable_v<Native>);
  TB_ASSERT(bytes.size() >= (index + 1) * sizeof(Native));
  Native native;
  std::memcpy(&native, bytes.data() + index * sizeof(Native), sizeof(Native));
  return native;
}

}  // namespace tb::proxy::testing
