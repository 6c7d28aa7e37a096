// Chooses the checksum implementation once per process (PROTOCOL.md §4).
#include "client_core/checksum.h"

#include <algorithm>
#include <cstring>

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

ChecksumStream::ChecksumStream()
    : ChecksumStream(ChecksumAesNiAvailable() ? ChecksumImplementation::kAesNi
                                              : ChecksumImplementation::kPortable) {}

ChecksumStream::ChecksumStream(ChecksumImplementation implementation)
    : aesni_(implementation == ChecksumImplementation::kAesNi) {
  TB_ASSERT(!aesni_ || ChecksumAesNiAvailable(), "this CPU lacks AES-NI or SSE4.1");
  static_assert(sizeof(state_) == internal::kAegisStateSize);
  internal::ChecksumInitPortable(state_);  // The same initial state for both implementations.
}

void ChecksumStream::Add(std::span<const uint8_t> bytes) {
  TB_ASSERT(!finished_, "Add() after Finish()");
  total_size_ += bytes.size();
  if (pending_size_ > 0) {
    const size_t taken = std::min<size_t>(bytes.size(), sizeof(pending_) - pending_size_);
    std::memcpy(pending_ + pending_size_, bytes.data(), taken);
    pending_size_ += static_cast<uint32_t>(taken);
    bytes = bytes.subspan(taken);
    if (pending_size_ < sizeof(pending_)) return;
    if (aesni_) {
      internal::ChecksumAbsorbAesNi(state_, pending_, sizeof(pending_));
    } else {
      internal::ChecksumAbsorbPortable(state_, pending_, sizeof(pending_));
    }
    pending_size_ = 0;
  }
  const size_t whole = bytes.size() - bytes.size() % sizeof(pending_);
  if (whole > 0) {
    if (aesni_) {
      internal::ChecksumAbsorbAesNi(state_, bytes.data(), whole);
    } else {
      internal::ChecksumAbsorbPortable(state_, bytes.data(), whole);
    }
  }
  const size_t rest = bytes.size() - whole;
  if (rest > 0) std::memcpy(pending_, bytes.data() + whole, rest);
  pending_size_ = static_cast<uint32_t>(rest);
}

u128 ChecksumStream::Finish() {
  TB_ASSERT(!finished_, "Finish() called twice");
  finished_ = true;
  if (aesni_) {
    return internal::ChecksumFinishAesNi(state_, pending_, pending_size_, total_size_);
  }
  return internal::ChecksumFinishPortable(state_, pending_, pending_size_, total_size_);
}

}  // namespace tb
