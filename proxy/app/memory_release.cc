#include "proxy/app/memory_release.h"

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "client_core/assert.h"

// gperftools' C entry points (gperftools/malloc_extension_c.h), declared weak: they resolve to
// tcmalloc's when the binary links tcmalloc (tb_use_fast_malloc) and are null otherwise, so the
// same code serves builds with and without it.
extern "C" int MallocExtension_GetNumericProperty(const char* property, size_t* value)
    __attribute__((weak));
extern "C" void MallocExtension_ReleaseToSystem(size_t num_bytes) __attribute__((weak));

namespace tb::proxy {
namespace {

// tcmalloc holds its page heap lock while it returns pages, and every thread that needs a new
// span waits for it: 170 MiB in one go took 125-200 ms here, a 4 MiB step at most 17 ms.
constexpr size_t kReleaseStepBytes = size_t{4} << 20;
constexpr int kReleaseStepsMax = 4096;  // 16 GiB: far above any heap tbproxy keeps.

}  // namespace

void ReleaseFreeMallocMemory() {
  if (MallocExtension_GetNumericProperty == nullptr || MallocExtension_ReleaseToSystem == nullptr) {
    return;
  }
  for (int step = 0; step < kReleaseStepsMax; ++step) {
    size_t free_bytes = 0;  // Free and still backed by memory.
    if (MallocExtension_GetNumericProperty("tcmalloc.pageheap_free_bytes", &free_bytes) == 0 ||
        free_bytes == 0) {
      return;
    }
    MallocExtension_ReleaseToSystem(std::min(free_bytes, kReleaseStepBytes));
  }
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
