#include "bench/loadgen/proc_stat.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tb::bench {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

}  // namespace

absl::StatusOr<double> ParseCpuSeconds(const std::string& stat, long clock_ticks_per_second) {
  // "pid (comm) state ppid ..." — comm may hold spaces and parentheses: fields start after the
  // last ')'. utime and stime are fields 14 and 15 (1-based), i.e. 12th and 13th after comm.
  const size_t close = stat.rfind(')');
  if (close == std::string::npos || clock_ticks_per_second <= 0) {
    return absl::InvalidArgumentError("not a /proc/<pid>/stat line");
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
  uint64_t utime = 0, stime = 0;
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return absl::InvalidArgumentError("/proc/<pid>/stat: no utime/stime");
  }
  return static_cast<double>(utime + stime) / static_cast<double>(clock_ticks_per_second);
}

absl::StatusOr<uint64_t> ParseRssKb(const std::string& status) {
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    line = absl::StripAsciiWhitespace(line);
    absl::ConsumeSuffix(&line, "kB");
    uint64_t kb = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb)) break;
    return kb;
  }
  return absl::InvalidArgumentError("/proc/<pid>/status: no VmRSS");
}

absl::StatusOr<ProcessSample> SampleProcess(int pid) {
  absl::StatusOr<std::string> stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  absl::StatusOr<std::string> status = ReadFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status.ok()) return status.status();
  absl::StatusOr<double> cpu = ParseCpuSeconds(*stat, sysconf(_SC_CLK_TCK));
  if (!cpu.ok()) return cpu.status();
  absl::StatusOr<uint64_t> rss = ParseRssKb(*status);
  if (!rss.ok()) return rss.status();
  return ProcessSample{.cpu_seconds = *cpu, .rss_kb = *rss};
}

}  // namespace tb::bench
