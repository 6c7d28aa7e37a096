// Hands the allocator's free pages back to the kernel now and then, so that tbproxy's RSS falls
// again after a burst. gperftools' tcmalloc returns pages only while the program frees memory:
// when 10,000 idle streams close, about 170 MiB stays free inside tcmalloc and in RSS for as
// long as tbproxy then stays quiet (bench/PROFILE.md, "Idle streams, memory").
//
//   MemoryReleaser releaser(kMemoryReleaseInterval);  // stops and joins when destroyed
#pragma once

#include <functional>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace tb::proxy {

// Often enough that RSS follows a burst within seconds, rarely enough that pages freed and
// reused under load are seldom returned in between (a page returned and then reused costs a
// page fault).
inline constexpr absl::Duration kMemoryReleaseInterval = absl::Seconds(10);

// Returns tcmalloc's free pages to the kernel; does nothing when tcmalloc is not linked
// (sanitizer builds, or glibc malloc where the library is missing). Any thread.
void ReleaseFreeMallocMemory();

// A thread, tb-mem-release, that calls `release` every `interval` until destroyed.
class MemoryReleaser {
 public:
  explicit MemoryReleaser(absl::Duration interval,
                          std::function<void()> release = ReleaseFreeMallocMemory);
  ~MemoryReleaser();
  MemoryReleaser(const MemoryReleaser&) = delete;
  MemoryReleaser& operator=(const MemoryReleaser&) = delete;

 private:
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace tb::proxy
