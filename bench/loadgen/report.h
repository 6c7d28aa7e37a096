// The JSON report of one load run (one object, stable field names; bench/run.sh reads it).
#pragma once

#include <cstdint>
#include <string>

#include "bench/loadgen/runner.h"

namespace tb::bench {

struct ReportConfig {
  std::string label;
  std::string target;  // "tbproxy" or "direct".
  std::string path;    // typed, raw, stream or direct.
  std::string mix;
  uint32_t events_per_call = 0;
  uint32_t callers = 0;
  uint32_t sessions = 0;  // direct only.
  uint32_t channels = 0;  // gRPC only.
  double rate = 0;        // 0: closed loop.
  std::string loadavg;    // /proc/loadavg's 1-minute figure at the end of the run (noise).
};

// tbproxy's own cost over the measured window (--proxy-pid), when sampled.
struct ProxyCost {
  bool sampled = false;
  double cpu_seconds = 0;
  uint64_t rss_kb = 0;  // At the end of the window.
  double loadgen_cpu_seconds = 0;  // The load generator's own CPU time over the same window.
};

std::string ReportJson(const ReportConfig& config, const RunResult& result,
                       const ProxyCost& proxy);

// `text` as a JSON string literal, quotes included.
std::string JsonString(const std::string& text);

}  // namespace tb::bench
