// Structured logs: one line per event, logfmt (key=value), on stderr.
//
//   tb::proxy::Log(tb::proxy::LogLevel::kWarning, "session_evicted",
//                  {{"client", client_hex}, {"reason", "no_session"}});
//   // ts=2026-11-22T20:51:28.123456Z level=warning event=session_evicted client=... reason=...
//
// Lines are for operators and log pipelines (Loki, Elasticsearch): the event name is a fixed
// snake_case word, values are quoted when they contain spaces, quotes, '=' or control characters,
// and a line never exceeds kLogLineSizeMax bytes. Secrets never reach a line: a field whose key
// names one (token, secret, password, authorization, api_key, private_key,
// credential) is written as "[redacted]" whatever
// its value. Logging is for rare events (start, stop, sessions, failures), never per request.
//
// Thread-safe. Lines from different threads never interleave.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"

namespace tb::proxy {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

inline constexpr size_t kLogLineSizeMax = 4096;

struct LogField {
  absl::string_view key;
  std::string value;
};

// Events below `level` are dropped (default kInfo).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// "debug", "info", "warning" (or "warn"), "error"; false for anything else.
bool ParseLogLevel(absl::string_view text, LogLevel* level);
absl::string_view LogLevelName(LogLevel level);

// Where whole lines go (without the trailing newline). Null restores stderr. For tests and for
// embedding; the sink is called with the log lock held and must not log itself.
void SetLogSink(absl::AnyInvocable<void(absl::string_view line)> sink);

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields = {});

// The line Log() would write, without the timestamp (pure, for tests and for the sink).
std::string FormatLogLine(LogLevel level, absl::string_view event,
                          std::initializer_list<LogField> fields);

}  // namespace tb::proxy
