// Release numbers as TigerBeetle encodes them (PROTOCOL.md §7): major·65536 + minor·256 + patch,
// compared as plain integers.
//
//   static_assert(tb::MakeRelease(0, 17, 9) == 4361);
#pragma once

#include <cstdint>
#include <string>

namespace tb {

constexpr uint32_t MakeRelease(uint32_t major, uint32_t minor, uint32_t patch) {
  return major * 65536 + minor * 256 + patch;
}
constexpr uint32_t ReleaseMajor(uint32_t release) { return release >> 16; }
constexpr uint32_t ReleaseMinor(uint32_t release) { return (release >> 8) & 0xFF; }
constexpr uint32_t ReleasePatch(uint32_t release) { return release & 0xFF; }

// What tbproxy announces to a cluster: the lowest release whose wire behaviour it implements
// (§7.4), so every 0.17.x cluster accepts it and a 0.16.x cluster refuses it cleanly.
inline constexpr uint32_t kReleaseClient = MakeRelease(0, 17, 0);
// What the dev cluster reports as its own release, and the oldest client release it serves.
inline constexpr uint32_t kReleaseServer = MakeRelease(0, 17, 9);
inline constexpr uint32_t kReleaseClientMin = MakeRelease(0, 16, 4);

static_assert(MakeRelease(0, 17, 9) == 4361);
static_assert(MakeRelease(0, 16, 4) == 4100);
static_assert(kReleaseClientMin <= kReleaseClient && kReleaseClient <= kReleaseServer);

// "0.17.9".
std::string ReleaseToString(uint32_t release);

}  // namespace tb
