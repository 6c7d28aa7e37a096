// Whole messages as bytes in tests: a header sealed with its body's checksums and serialized,
// and the header read back from the front of a message.
//
//   std::vector<uint8_t> bytes = Serialize(AsHeader(ping), {});
//   const Header header = ParseHeader(bytes);
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/constants.h"
#include "client_core/header.h"

namespace tb::client_core::testing {

// `header` with valid checksums for `body`, followed by `body`.
inline std::vector<uint8_t> Serialize(Header header, std::span<const uint8_t> body) {
  SetChecksums(header, body);
  std::vector<uint8_t> bytes = StructBytes(header);
  bytes.insert(bytes.end(), body.begin(), body.end());
  return bytes;
}

// The header at the front of `message`, which must hold at least one.
inline Header ParseHeader(std::span<const uint8_t> message) {
  TB_ASSERT(message.size() >= kHeaderSize);
  Header header;
  std::memcpy(&header, message.data(), kHeaderSize);
  return header;
}

}  // namespace tb::client_core::testing
