// The wire's fixed-size structs (types.h, header.h) as bytes: appended to a byte vector, copied
// into one, viewed as one, read back. Every struct here is trivially copyable and laid out as on
// the wire (little-endian hosts only, see types.h), so a memcpy is the whole encoding.
//
//   std::vector<uint8_t> events;
//   AppendStruct(&events, account);
//   std::vector<Account> accounts = StructsFromBytes<Account>(events);
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "client_core/assert.h"

namespace tb {

// Appends the bytes of `value` to `out`.
template <typename T>
void AppendStruct(std::vector<uint8_t>* out, const T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  const size_t offset = out->size();
  out->resize(offset + sizeof(T));
  std::memcpy(out->data() + offset, &value, sizeof(T));
}

// The bytes of one value.
template <typename T>
std::vector<uint8_t> StructBytes(const T& value) {
  std::vector<uint8_t> bytes;
  AppendStruct(&bytes, value);
  return bytes;
}

// The bytes of `values`, one after the other, as a view that lives as long as `values`.
template <typename T>
std::span<const uint8_t> StructsAsBytes(std::span<const T> values) {
  static_assert(std::is_trivially_copyable_v<T>);
  return {reinterpret_cast<const uint8_t*>(values.data()), values.size() * sizeof(T)};
}
template <typename T>
std::span<const uint8_t> StructsAsBytes(const std::vector<T>& values) {
  return StructsAsBytes(std::span<const T>(values));
}

// A copy of the bytes of `values`.
template <typename T>
std::vector<uint8_t> StructsBytes(const std::vector<T>& values) {
  const std::span<const uint8_t> bytes = StructsAsBytes(values);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// The `index`-th struct of `bytes`, which must hold it.
template <typename T>
T StructAt(std::span<const uint8_t> bytes, size_t index) {
  static_assert(std::is_trivially_copyable_v<T>);
  TB_ASSERT(bytes.size() >= (index + 1) * sizeof(T));
  T value;
  std::memcpy(&value, bytes.data() + index * sizeof(T), sizeof(T));
  return value;
}

// `bytes` read back as whole structs; its size must be a multiple of sizeof(T).
template <typename T>
std::vector<T> StructsFromBytes(std::span<const uint8_t> bytes) {
  static_assert(std::is_trivially_copyable_v<T>);
  TB_ASSERT(bytes.size() % sizeof(T) == 0);
  std::vector<T> values(bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

}  // namespace tb
