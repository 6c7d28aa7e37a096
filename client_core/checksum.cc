// Chooses the checksum implementation once per process (PROTOCOL.md §4).
#include "client_core/checksum.h"

#include "client_core/assert.h"
#include "client_core/internal/aegis.h"

namespace tb {
namespace {

bool DetectAesNi() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
#else
  return false;
#endif
}

}  // namespace

bool ChecksumAesNiAvailable() {
  static const bool available = DetectAesNi();
  return available;
}

u128 ChecksumWith(ChecksumImplementation implementation, std::span<const uint8_t> input) {
  switch (implementation) {
    case ChecksumImplementation::kAesNi:
      TB_ASSERT(ChecksumAesNiAvailable(), "this CPU lacks AES-NI or SSE4.1");
      return internal::ChecksumAesNi(input.data(), input.size());
    case ChecksumImplementation::kPortable:
      return internal::ChecksumPortable(input.data(), input.size());
  }
  TB_ASSERT(false, "unknown checksum implementation");
  return 0;
}

u128 Checksum(std::span<const uint8_t> input) {
  if (ChecksumAesNiAvailable()) [[likely]] {
    return internal::ChecksumAesNi(input.data(), input.size());
  }
  return internal::ChecksumPortable(input.data(), input.size());
}

}  // namespace tb
