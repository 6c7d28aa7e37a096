// Test helper: the byte-exact messages captured from a real TigerBeetle 0.17.9 cluster
// (shared/spec/captures/real-0.17.9, see its README). Tests only; needs TB_SHARED_DIR, which
// tb_test() defines.
//
// The capture files are JSON written by one generator with a fixed layout, so instead of a JSON
// library this reads the few fields it needs by key: every message object has "direction",
// then "header_hex", and after it "body_hex" (hex or null) and, for replies, "context_ok".
//
//   for (const tb::capture::CapturedMessage& message : tb::capture::LoadCapturedMessages()) …
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace tb::capture {

struct CapturedMessage {
  std::string file;       // Path relative to the captures folder.
  std::string direction;  // "client->replica" or "replica->client".
  std::vector<uint8_t> header;
  std::optional<std::vector<uint8_t>> body;  // Absent when the capture omitted a large body.
  std::optional<bool> context_ok;            // Replies only.
};

inline std::string CapturesDirectory() {
  return std::string(TB_SHARED_DIR) + "/spec/captures/real-0.17.9";
}

inline std::vector<uint8_t> BytesFromHex(const std::string& hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

namespace internal {

// The JSON value after `"key":` at or after `from`, as raw text: a string's contents without
// quotes, or a bare literal (null, true, false, a number). npos when the key is absent.
inline std::optional<std::string> ValueAfter(const std::string& text, const std::string& key,
                                             size_t from, size_t until) {
  const std::string needle = "\"" + key + "\":";
  const size_t found = text.find(needle, from);
  if (found == std::string::npos || found >= until) return std::nullopt;
  size_t position = found + needle.size();
  while (position < text.size() && text[position] == ' ') position++;
  if (position < text.size() && text[position] == '"') {
    const size_t end = text.find('"', position + 1);
    if (end == std::string::npos) return std::nullopt;
    return text.substr(position + 1, end - position - 1);
  }
  size_t end = position;
  while (end < text.size() && text[end] != ',' && text[end] != '\n' && text[end] != '}') end++;
  return text.substr(position, end - position);
}

inline void AppendMessagesOfFile(const std::filesystem::path& path, const std::string& name,
                                 std::vector<CapturedMessage>* messages) {
  std::ifstream stream(path);
  std::stringstream buffer;
  buffer << stream.rdbuf();
  const std::string text = buffer.str();
  const std::string marker = "\"header_hex\":";
  std::vector<size_t> starts;
  for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + 1)) {
    starts.push_back(at);
  }
  for (size_t i = 0; i < starts.size(); i++) {
    const size_t until = i + 1 < starts.size() ? starts[i + 1] : text.size();
    CapturedMessage message;
    message.file = name;
    const size_t direction_at = text.rfind("\"direction\":", starts[i]);
    if (direction_at != std::string::npos) {
      message.direction = ValueAfter(text, "direction", direction_at, starts[i]).value_or("");
    }
    message.header = BytesFromHex(ValueAfter(text, "header_hex", starts[i], until).value_or(""));
    const std::optional<std::string> body = ValueAfter(text, "body_hex", starts[i], until);
    if (body.has_value() && *body != "null") message.body = BytesFromHex(*body);
    const std::optional<std::string> context_ok = ValueAfter(text, "context_ok", starts[i], until);
    if (context_ok.has_value()) message.context_ok = *context_ok == "true";
    messages->push_back(std::move(message));
  }
}

}  // namespace internal

// Every message of every exchange file (timelines, indexes and scripts are skipped), in a
// stable order.
inline std::vector<CapturedMessage> LoadCapturedMessages() {
  const std::filesystem::path root = CapturesDirectory();
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
    const std::string name = entry.path().filename().string();
    if (name == "index.json" || name == "session_timeline.json") continue;
    if (absl::StrContains(entry.path().string(), "/scripts/")) continue;
    files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<CapturedMessage> messages;
  for (const std::filesystem::path& file : files) {
    internal::AppendMessagesOfFile(file, std::filesystem::relative(file, root).string(), &messages);
  }
  return messages;
}

}  // namespace tb::capture
