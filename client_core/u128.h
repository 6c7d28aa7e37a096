// The 128-bit unsigned integer of TigerBeetle's wire format (ids, amounts, checksums).
//
// On the wire a u128 is 16 bytes, least significant byte first. The project builds only for
// little-endian hosts, so a u128 in memory has exactly its wire layout and structures can be
// copied to and from the wire with memcpy.
//
//   tb::u128 id = tb::MakeU128(/*high=*/0, /*low=*/42);
//   uint64_t low = tb::U128Low(id);
#pragma once

#include <bit>
#include <cstdint>
#include <string>

namespace tb {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian and structures are copied as they are");

using u128 = unsigned __int128;

inline constexpr u128 kU128Max = ~static_cast<u128>(0);

constexpr u128 MakeU128(uint64_t high, uint64_t low) {
  return (static_cast<u128>(high) << 64) | static_cast<u128>(low);
}
constexpr uint64_t U128Low(u128 value) { return static_cast<uint64_t>(value); }
constexpr uint64_t U128High(u128 value) { return static_cast<uint64_t>(value >> 64); }

// Decimal text, e.g. for logs and JSON ("340282366920938463463374607431768211455").
std::string U128ToDecimal(u128 value);
// Fixed-width lowercase hex of the value (32 digits, most significant first), e.g. "0x0123…".
std::string U128ToHex(u128 value);

}  // namespace tb
