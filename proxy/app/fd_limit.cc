#include "proxy/app/fd_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace tb::proxy {

uint64_t FileDescriptorsNeeded(const Config& config) {
  const uint64_t session_ends = config.embedded_cluster() ? 2 : 1;
  return uint64_t{config.grpc_connections_max} +
         (config.native_listen.has_value() ? config.native_connections_max : 0) +
         session_ends * config.session_budget + kFileDescriptorsOwn;
}

absl::StatusOr<FileDescriptorLimit> RaiseFileDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("getrlimit(RLIMIT_NOFILE): ", std::strerror(errno)));
  }
  FileDescriptorLimit result{.soft_before = limit.rlim_cur, .soft = limit.rlim_cur,
                             .hard = limit.rlim_max};
  if (limit.rlim_cur == limit.rlim_max) return result;
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return absl::InternalError(absl::StrCat("setrlimit(RLIMIT_NOFILE, ", limit.rlim_max,
                                            "): ", std::strerror(errno)));
  }
  result.soft = limit.rlim_max;
  return result;
}

}  // namespace tb::proxy
