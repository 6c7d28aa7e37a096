#include "proxy/log/log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// Captures lines for the duration of a test and restores stderr and the level afterwards.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SetLogSink([this](absl::string_view line) { lines_.emplace_back(line); });
  }
  void TearDown() override {
    SetLogSink(nullptr);
    SetLogLevel(LogLevel::kInfo);
  }
  std::vector<std::string> lines_;
};

TEST_F(LogTest, WritesOneLogfmtLinePerEventWithATimestamp) {
  Log(LogLevel::kInfo, "listening", {{"grpc", "0.0.0.0:50051"}, {"sessions", "4"}});
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0],
              MatchesRegex("ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{6}Z level=info "
                           "event=listening grpc=0.0.0.0:50051 sessions=4"));
}

TEST_F(LogTest, DropsEventsBelowTheLevel) {
  SetLogLevel(LogLevel::kWarning);
  Log(LogLevel::kDebug, "a");
  Log(LogLevel::kInfo, "b");
  Log(LogLevel::kWarning, "c");
  Log(LogLevel::kError, "d");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_THAT(lines_[0], HasSubstr("level=warning event=c"));
  EXPECT_THAT(lines_[1], HasSubstr("level=error event=d"));
}

TEST(LogFormat, QuotesAndEscapesValuesThatWouldBreakTheLine) {
  EXPECT_EQ(FormatLogLine(LogLevel::kError, "failed",
                          {{"status", "UNAVAILABLE: connection refused"},
                           {"path", "a=b"},
                           {"text", "say \"hi\"\nbye\\"},
                           {"empty", ""},
                           {"control", std::string("\x01\x7f", 2)}}),
            "level=error event=failed status=\"UNAVAILABLE: connection refused\" path=\"a=b\" "
            "text=\"say \\\"hi\\\"\\nbye\\\\\" empty=\"\" control=\"\\x01\\x7f\"");
}

TEST(LogFormat, SanitisesKeys) {
  EXPECT_EQ(FormatLogLine(LogLevel::kInfo, "e", {{"bad key=", "v"}, {"", "w"}}),
            "level=info event=e bad_key_=v _=w");
}

TEST(LogFormat, RedactsFieldsThatNameASecret) {
  const std::string line = FormatLogLine(LogLevel::kInfo, "auth",
                                         {{"token", "s3cr3t-value"},
                                          {"Authorization", "Bearer abc"},
                                          {"tls_private_key", "-----BEGIN"},
                                          {"client_secret", "x"},
                                          {"peer", "10.0.0.1"}});
  EXPECT_THAT(line, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(line, Not(HasSubstr("Bearer")));
  EXPECT_THAT(line, Not(HasSubstr("BEGIN")));
  EXPECT_THAT(line, HasSubstr("token=[redacted] Authorization=[redacted] "
                              "tls_private_key=[redacted] client_secret=[redacted] peer=10.0.0.1"));
}

TEST(LogFormat, BoundsTheLineAndKeepsItParseable) {
  const std::string huge(3 * kLogLineSizeMax, 'x');
  const std::string line =
      FormatLogLine(LogLevel::kInfo, "big", {{"a", "1"}, {"b", "with space " + huge}});
  EXPECT_LE(line.size(), kLogLineSizeMax);
  EXPECT_EQ(line, "level=info event=big a=1 truncated=true");
}

TEST(LogLevels, ParseAndName) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("warn", &level));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_FALSE(ParseLogLevel("", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_EQ(LogLevelName(LogLevel::kWarning), "warning");
}

}  // namespace
}  // namespace tb::proxy
