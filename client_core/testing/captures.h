// Test helper: the byte-exact messages captured from a real TigerBeetle 0.17.9 cluster
// (shared/spec/captures/real-0.17.9, see its README). Tests only; needs TB_SHARED_DIR, which
// tb_test() defines, and nlohmann_json (Debian's nlohmann-json3-dev) on the test's link line.
//
//   for (const tb::client_core::testing::CapturedMessage& message : tb::client_core::testing::LoadCapturedMessages()) …
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace tb::client_core::testing {

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

inline void AppendMessagesOfFile(const std::filesystem::path& path, const std::string& name,
                                 std::vector<CapturedMessage>* messages) {
  std::ifstream stream(path);
  const nlohmann::json document = nlohmann::json::parse(stream, nullptr, /*allow_exceptions=*/false);
  if (!document.is_object() || !document.contains("messages")) return;
  for (const nlohmann::json& item : document["messages"]) {
    CapturedMessage message;
    message.file = name;
    message.direction = item.value("direction", "");
    message.header = BytesFromHex(item.value("header_hex", ""));
    if (item.contains("body_hex") && item["body_hex"].is_string()) {
      message.body = BytesFromHex(item["body_hex"].get<std::string>());
    }
    if (item.contains("header") && item["header"].contains("context_ok") &&
        item["header"]["context_ok"].is_boolean()) {
      message.context_ok = item["header"]["context_ok"].get<bool>();
    }
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

}  // namespace tb::client_core::testing
