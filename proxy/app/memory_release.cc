#include "proxy/app/memory_release.h"

#include <pthread.h>

#include <utility>

#include "client_core/assert.h"

// gperftools' C entry point (gperftools/malloc_extension_c.h), declared weak: it resolves to
// tcmalloc's when the binary links tcmalloc (tb_use_fast_malloc) and is null otherwise, so the
// same code serves builds with and without it.
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));

namespace tb::proxy {

void ReleaseFreeMallocMemory() {
  if (MallocExtension_ReleaseFreeMemory != nullptr) MallocExtension_ReleaseFreeMemory();
}

MemoryReleaser::MemoryReleaser(absl::Duration interval, std::function<void()> release) {
  TB_ASSERT(interval > absl::ZeroDuration());
  TB_ASSERT(release != nullptr);
  thread_ = std::thread([this, interval, release = std::move(release)] {
    pthread_setname_np(pthread_self(), "tb-mem-release");
    while (!stop_.WaitForNotificationWithTimeout(interval)) release();
  });
}

MemoryReleaser::~MemoryReleaser() {
  stop_.Notify();
  thread_.join();
}

}  // namespace tb::proxy
