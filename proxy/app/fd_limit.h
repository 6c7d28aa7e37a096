// tbproxy's file descriptors against the process's limit (RLIMIT_NOFILE). Every connection
// bound (gRPC, native, cluster sessions) holds one descriptor per connection; when the limit is
// lower than the bounds allow, accepts start failing with EMFILE (counted, retried after 100 ms)
// before a bound refuses anything, and new cluster sessions cannot connect.
//
// At start tbproxy raises its soft limit to the hard one, as Go's runtime does for its
// programs, since the usual soft default (1024) is below the default bounds, and warns when even
// the hard limit is below what the bounds need.
//
//   absl::StatusOr<FileDescriptorLimit> limit = RaiseFileDescriptorLimit();
//   if (limit.ok() && limit->soft < FileDescriptorsNeeded(config)) { ... warn ... }
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "proxy/app/config.h"

namespace tb::proxy {

// tbproxy's own descriptors besides its connections: listeners, epoll and event descriptors,
// gRPC's internal ones, metrics requests, logs (about 30 at rest).
inline constexpr uint64_t kFileDescriptorsOwn = 64;

// Descriptors tbproxy may hold with every bound of `config` reached: its gRPC and native
// connections, its cluster sessions (both ends of each with the embedded dev cluster) and
// kFileDescriptorsOwn.
uint64_t FileDescriptorsNeeded(const Config& config);

struct FileDescriptorLimit {
  uint64_t soft_before = 0;
  uint64_t soft = 0;  // After the raise; RLIM_INFINITY shows as UINT64_MAX.
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit. kInternal if the limit cannot be read or
// set.
absl::StatusOr<FileDescriptorLimit> RaiseFileDescriptorLimit();

}  // namespace tb::proxy
