// CPU time and resident memory of another process, from /proc/<pid>/stat and /proc/<pid>/status
// (Linux): how much tbproxy itself costs while the load generator drives it.
//
//   TB_ASSIGN_OR_RETURN(tb::bench::ProcessSample before, tb::bench::SampleProcess(pid));
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace tb::bench {

struct ProcessSample {
  double cpu_seconds = 0;  // utime + stime, all threads.
  uint64_t rss_kb = 0;     // VmRSS.
};

absl::StatusOr<ProcessSample> SampleProcess(int pid);

// Parsers, exposed for tests: the text of /proc/<pid>/stat and of /proc/<pid>/status.
absl::StatusOr<double> ParseCpuSeconds(const std::string& stat, long clock_ticks_per_second);
absl::StatusOr<uint64_t> ParseRssKb(const std::string& status);

}  // namespace tb::bench
