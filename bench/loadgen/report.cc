#include "bench/loadgen/report.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tb::bench {

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string ReportJson(const ReportConfig& config, const RunResult& result,
                       const ProxyCost& proxy) {
  const double seconds = result.seconds > 0 ? result.seconds : 1;
  const Histogram& h = result.latency_ns;
  auto us = [](uint64_t ns) { return absl::StrFormat("%.1f", static_cast<double>(ns) / 1e3); };
  std::vector<std::string> errors;
  for (const auto& [code, count] : result.error_counts) {
    errors.push_back(absl::StrCat(JsonString(code), ": ", count));
  }
  std::vector<std::string> samples;
  for (const std::string& sample : result.error_samples) samples.push_back(JsonString(sample));
  return absl::StrCat(
      "{\"label\": ", JsonString(config.label), ", \"target\": ", JsonString(config.target),
      ", \"path\": ", JsonString(config.path), ", \"mix\": ", JsonString(config.mix),
      ", \"events_per_call\": ", config.events_per_call, ", \"callers\": ", config.callers,
      ", \"sessions\": ", config.sessions, ", \"channels\": ", config.channels,
      ", \"loop\": ", JsonString(config.rate > 0 ? "open" : "closed"),
      ", \"rate\": ", absl::StrFormat("%.1f", config.rate),
      ", \"loadavg_1m\": ", config.loadavg.empty() ? "null" : config.loadavg,
      ", \"seconds\": ", absl::StrFormat("%.3f", result.seconds),
      ", \"calls\": ", result.calls, ", \"events\": ", result.events,
      ", \"calls_per_s\": ", absl::StrFormat("%.1f", static_cast<double>(result.calls) / seconds),
      ", \"events_per_s\": ",
      absl::StrFormat("%.1f", static_cast<double>(result.events) / seconds),
      ", \"latency_us\": {\"p50\": ", us(h.ValueAtPercentile(50)),
      ", \"p99\": ", us(h.ValueAtPercentile(99)), ", \"p999\": ", us(h.ValueAtPercentile(99.9)),
      ", \"max\": ", us(h.max()), ", \"mean\": ", absl::StrFormat("%.1f", h.mean() / 1e3), "}",
      ", \"completed\": ", result.completed, ", \"failures\": ", result.failures,
      ", \"unfinished\": ", result.unfinished, ", \"not_started\": ", result.not_started,
      ", \"errors\": {", absl::StrJoin(errors, ", "), "}",
      ", \"error_samples\": [", absl::StrJoin(samples, ", "), "]",
      proxy.sampled
          ? absl::StrCat(", \"proxy_cpu_seconds\": ", absl::StrFormat("%.3f", proxy.cpu_seconds),
                         ", \"loadgen_cpu_seconds\": ",
                         absl::StrFormat("%.3f", proxy.loadgen_cpu_seconds),
                         ", \"proxy_rss_kb\": ", proxy.rss_kb, ", \"events_per_proxy_cpu_second\": ",
                         absl::StrFormat("%.1f", proxy.cpu_seconds > 0
                                                     ? static_cast<double>(result.events) /
                                                           proxy.cpu_seconds
                                                     : 0.0))
          : std::string(),
      ", \"ok\": ", (result.failures == 0 && result.unfinished == 0 && result.calls > 0)
                        ? "true" : "false",
      "}");
}

}  // namespace tb::bench
