#include "proxy/grpc/grpc_auth.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// printf '%s' test | sha256sum
constexpr char kTestHash[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
// printf '%s' reader | sha256sum
constexpr char kReaderHash[] = "3d0941964aa3ebdcb00ccef58b1bb399f9f898465e9886d5aec7f31090a0fb30";

TEST(TokenAuthenticator, AcceptsKnownTokensWithTheirPermission) {
  absl::StatusOr<TokenAuthenticator> tokens = TokenAuthenticator::Parse(
      absl::StrCat("# comment\n\nbilling:write:sha256:", kTestHash, "\n  reports:read:sha256:",
                   kReaderHash, "  \n"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 2u);
  auto writer = tokens->Authenticate("Bearer test");
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ((*writer)->name, "billing");
  EXPECT_EQ((*writer)->permission, Permission::kWrite);
  auto reader = tokens->Authenticate("Bearer reader");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->permission, Permission::kRead);
}

TEST(TokenAuthenticator, RefusesMissingMalformedAndUnknownTokens) {
  auto tokens = TokenAuthenticator::Parse(absl::StrCat("a:write:sha256:", kTestHash));
  ASSERT_TRUE(tokens.ok());
  for (absl::string_view header : {"", "test", "Bearer ", "Basic test", "bearer test",
                                   "Bearer test2", "Bearer tes"}) {
    auto identity = tokens->Authenticate(header);
    EXPECT_EQ(identity.status().code(), absl::StatusCode::kUnauthenticated) << header;
    // The presented token never appears in the error.
    if (header.size() > 7) {
      EXPECT_THAT(identity.status().message(), Not(HasSubstr(header.substr(7))));
    }
  }
}

TEST(TokenAuthenticator, FileErrorsNameTheLineAndNeverTheDigest) {
  const std::string bad_lines[] = {
      "a:write:test",                                         // Not four fields.
      absl::StrCat("a:admin:sha256:", kTestHash),             // Unknown permission.
      absl::StrCat("a b:write:sha256:", kTestHash),           // Bad name.
      absl::StrCat("a:write:md5:", kTestHash),                // Unknown digest.
      "a:write:sha256:abcd",                                  // Short digest.
      absl::StrCat("a:write:sha256:", std::string(64, 'g')),  // Not hex.
  };
  for (const std::string& line : bad_lines) {
    auto tokens = TokenAuthenticator::Parse(absl::StrCat("# header\n", line, "\n"));
    EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(tokens.status().message(), HasSubstr("line 2"));
    EXPECT_THAT(tokens.status().message(), Not(HasSubstr(kTestHash)));
  }
  auto duplicate_name = TokenAuthenticator::Parse(
      absl::StrCat("a:write:sha256:", kTestHash, "\na:read:sha256:", kReaderHash));
  EXPECT_THAT(duplicate_name.status().message(), HasSubstr("duplicate name"));
  auto duplicate_token = TokenAuthenticator::Parse(
      absl::StrCat("a:write:sha256:", kTestHash, "\nb:read:sha256:", kTestHash));
  EXPECT_THAT(duplicate_token.status().message(), HasSubstr("twice"));
  EXPECT_EQ(TokenAuthenticator::FromFile("/nonexistent/tokens").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tb::proxy
