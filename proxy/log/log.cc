#include "proxy/log/log.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace tb::proxy {
namespace {

std::atomic<int> log_level{static_cast<int>(LogLevel::kInfo)};

absl::Mutex& SinkMutex() {
  static auto* mutex = new absl::Mutex();
  return *mutex;
}

absl::AnyInvocable<void(absl::string_view)>& Sink() ABSL_EXCLUSIVE_LOCKS_REQUIRED(SinkMutex()) {
  static auto* sink = new absl::AnyInvocable<void(absl::string_view)>();
  return *sink;
}

// Key substrings that mark a secret; matched case-insensitively.
constexpr absl::string_view kSecretKeyParts[] = {"token",         "secret",  "password",
                                                 "authorization", "api_key", "private_key",
                                                 "credential"};

bool IsSecretKey(absl::string_view key) {
  const std::string lower = absl::AsciiStrToLower(key);
  for (absl::string_view part : kSecretKeyParts) {
    if (absl::StrContains(lower, part)) return true;
  }
  return false;
}

// Keys are identifiers: anything else becomes '_' so a line always parses.
void AppendKey(std::string* line, absl::string_view key) {
  if (key.empty()) key = "_";
  for (const char c : key) {
    const bool plain = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
    line->push_back(plain ? c : '_');
  }
}

void AppendValue(std::string* line, absl::string_view value) {
  bool needs_quotes = value.empty();
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= ' ' || c == '"' || c == '=' || c == '\\' || byte == 0x7F) needs_quotes = true;
  }
  if (!needs_quotes) {
    line->append(value.data(), value.size());
    return;
  }
  line->push_back('"');
  for (const char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': line->append("\\\""); break;
      case '\\': line->append("\\\\"); break;
      case '\n': line->append("\\n"); break;
      case '\r': line->append("\\r"); break;
      case '\t': line->append("\\t"); break;
      default:
        if (byte < ' ' || byte == 0x7F) {
          absl::StrAppend(line, "\\x", absl::Hex(byte, absl::kZeroPad2));
        } else {
          line->push_back(c);
        }
    }
  }
  line->push_back('"');
}

void AppendField(std::string* line, absl::string_view key, absl::string_view value) {
  line->push_back(' ');
  AppendKey(line, key);
  line->push_back('=');
  AppendValue(line, value);
}

// "ts=2026-11-22T20:51:28.123456Z " is 31 bytes; the rest of a line must leave room for it.
constexpr size_t kTimestampFieldSize = 31;
constexpr absl::string_view kTruncatedMarker = " truncated=true";

}  // namespace

void SetLogLevel(LogLevel level) { log_level.store(static_cast<int>(level)); }

LogLevel GetLogLevel() { return static_cast<LogLevel>(log_level.load()); }

bool ParseLogLevel(absl::string_view text, LogLevel* level) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") {
    *level = LogLevel::kDebug;
  } else if (lower == "info") {
    *level = LogLevel::kInfo;
  } else if (lower == "warning" || lower == "warn") {
    *level = LogLevel::kWarning;
  } else if (lower == "error") {
    *level = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

void SetLogSink(absl::AnyInvocable<void(absl::string_view line)> sink) {
  absl::MutexLock lock(&SinkMutex());
  Sink() = std::move(sink);
}

std::string FormatLogLine(LogLevel level, absl::string_view event,
                          std::initializer_list<LogField> fields) {
  constexpr size_t kBodySizeMax = kLogLineSizeMax - kTimestampFieldSize - kTruncatedMarker.size();
  std::string line;
  AppendField(&line, "level", LogLevelName(level));
  AppendField(&line, "event", event.substr(0, 64));
  // Whole fields only: a field that would cross the bound ends the line, so no quote is cut.
  std::string field_text;
  for (const LogField& field : fields) {
    field_text.clear();
    AppendField(&field_text, field.key.substr(0, 64),
                IsSecretKey(field.key) ? "[redacted]" : field.value);
    if (line.size() + field_text.size() > kBodySizeMax) {
      line.append(kTruncatedMarker.data(), kTruncatedMarker.size());
      break;
    }
    line.append(field_text);
  }
  line.erase(0, 1);  // The leading space.
  return line;
}

void Log(LogLevel level, absl::string_view event, std::initializer_list<LogField> fields) {
  if (static_cast<int>(level) < log_level.load(std::memory_order_relaxed)) return;
  std::string line = absl::StrCat(
      "ts=", absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()), " ",
      FormatLogLine(level, event, fields));
  absl::MutexLock lock(&SinkMutex());
  if (Sink() != nullptr) {
    Sink()(line);
    return;
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace tb::proxy
