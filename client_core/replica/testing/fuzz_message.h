// Shared by the replica protocol fuzz targets: cuts one message out of the fuzzer's input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/constants.h"
#include "client_core/header.h"

namespace tb::replica::testing {

// Takes a 256-byte header and up to `body_size` body bytes off the front of `input` and returns
// them as one message. With `reseal`, the header gets valid checksums for that body, so that the
// checks behind the checksums are reached. `input` must hold at least a header.
inline std::vector<uint8_t> TakeMessage(std::span<const uint8_t>& input, size_t body_size,
                                        bool reseal) {
  TB_ASSERT(input.size() >= kHeaderSize);
  Header header;
  std::memcpy(&header, input.data(), kHeaderSize);
  input = input.subspan(kHeaderSize);
  const size_t available = std::min(body_size, input.size());
  const std::span<const uint8_t> body = input.first(available);
  input = input.subspan(available);
  if (reseal) SetChecksums(header, body);
  std::vector<uint8_t> message = StructBytes(header);
  message.insert(message.end(), body.begin(), body.end());
  return message;
}

}  // namespace tb::replica::testing
