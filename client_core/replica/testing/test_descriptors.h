// Test-only helpers for accept failures: exhausting the process's file descriptors so the next
// accept fails with EMFILE, and a raw blocking loopback connect that needs no io_context.
//
//   tb::replica::testing::DescriptorExhaustion exhaustion;  // accept() now fails
//   exhaustion.FreeOne();
//   const int fd = tb::replica::testing::ConnectLoopback(port);  // waits in the backlog
//   exhaustion.Release();                                       // the server accepts it
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "client_core/assert.h"

namespace tb::replica::testing {

// Sanitizer runtimes open descriptors for their own checks (UBSan's vptr check probes memory
// through a pipe); with the table full they report false errors. Tests that exhaust it skip in
// sanitizer builds and run in the plain build.
#ifdef TBPROXY_SANITIZED
inline constexpr bool kDescriptorExhaustionSupported = false;
#else
inline constexpr bool kDescriptorExhaustionSupported = true;
#endif

// Lowers the soft descriptor limit to 64 above the lowest free descriptor and fills the table up
// to it; Release(), or the destructor, gives everything back.
class DescriptorExhaustion {
 public:
  DescriptorExhaustion() {
    TB_ASSERT(getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    const int lowest_free = open("/dev/null", O_RDONLY);
    TB_ASSERT(lowest_free >= 0);
    close(lowest_free);
    rlimit lowered = saved_;
    lowered.rlim_cur = static_cast<rlim_t>(lowest_free) + 64;
    TB_ASSERT(setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    for (int fd = open("/dev/null", O_RDONLY); fd >= 0; fd = open("/dev/null", O_RDONLY)) {
      fillers_.push_back(fd);
    }
  }
  ~DescriptorExhaustion() { Release(); }
  DescriptorExhaustion(const DescriptorExhaustion&) = delete;
  DescriptorExhaustion& operator=(const DescriptorExhaustion&) = delete;

  // Frees one descriptor, for the test's own socket.
  void FreeOne() {
    TB_ASSERT(!fillers_.empty());
    close(fillers_.back());
    fillers_.pop_back();
  }
  void Release() {
    for (int fd : fillers_) close(fd);
    fillers_.clear();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
};

// A blocking IPv4 connect to 127.0.0.1:port; the kernel completes it from the listen backlog
// before the server accepts. Returns the socket, or -1.
inline int ConnectLoopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace tb::replica::testing
