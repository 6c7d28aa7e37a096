#include "proxy/grpc/handed_off_sockets.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"

namespace tb::proxy {
namespace {

// The socket's cookie, or 0 (never a cookie) when `fd` is closed or not a socket.
uint64_t CookieOf(int fd) {
  uint64_t cookie = 0;
  socklen_t size = sizeof(cookie);
  if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &size) != 0) return 0;
  TB_ASSERT(size == sizeof(cookie));
  return cookie;
}

}  // namespace

absl::Status HandedOffSockets::Add(int fd) {
  TB_ASSERT(fd >= 0);
  const uint64_t cookie = CookieOf(fd);
  if (cookie == 0) {
    return absl::InternalError(
        absl::StrCat("cannot read the cookie of socket ", fd, ": ", std::strerror(errno)));
  }
  cookies_[fd] = cookie;
  return absl::OkStatus();
}

void HandedOffSockets::Sweep() {
  for (auto it = cookies_.begin(); it != cookies_.end();) {
    // erase(it++) keeps the other iterators of an absl::flat_hash_map valid.
    if (CookieOf(it->first) != it->second) {
      cookies_.erase(it++);
    } else {
      ++it;
    }
  }
}

}  // namespace tb::proxy
