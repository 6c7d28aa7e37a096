// Invariant checks that stay on in release builds.
//
// TB_ASSERT guards programmer errors only: state, arguments and results that our own code
// controls. Anything the outside world controls (bytes from a socket, a caller's request,
// configuration) is validated and reported with absl::Status instead, never asserted.
//
//   TB_ASSERT(batch_count <= kBatchCountMax);
//   TB_ASSERT(session_ != 0, "a request needs a registered session");
#pragma once

#include <cstdio>
#include <cstdlib>

namespace tb::internal {

[[noreturn]] inline void AssertFailed(const char* condition, const char* message, const char* file,
                                      int line) {
  std::fprintf(stderr, "%s:%d: assertion failed: %s%s%s\n", file, line, condition,
               message[0] != '\0' ? ": " : "", message);
  std::fflush(stderr);
  std::abort();
}

}  // namespace tb::internal

#define TB_ASSERT_WITH_MESSAGE(condition, message)                                   \
  do {                                                                               \
    if (!(condition)) [[unlikely]] {                                                 \
      ::tb::internal::AssertFailed(#condition, message, __FILE__, __LINE__);        \
    }                                                                                \
  } while (false)

#define TB_ASSERT_SELECT(_1, _2, name, ...) name
// TB_ASSERT(condition) or TB_ASSERT(condition, "why it must hold").
#define TB_ASSERT(...) \
  TB_ASSERT_SELECT(__VA_ARGS__, TB_ASSERT_WITH_MESSAGE, TB_ASSERT_ONLY)(__VA_ARGS__)
#define TB_ASSERT_ONLY(condition) TB_ASSERT_WITH_MESSAGE(condition, "")
