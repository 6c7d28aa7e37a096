#include "proxy/grpc/grpc_auth.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace tb::proxy {
namespace {

bool IsNameCharacter(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::Status LineError(size_t line_number, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("token file line ", line_number, ": ", problem));
}

}  // namespace

size_t TokenAuthenticator::DigestHash::operator()(const Digest& digest) const {
  // The digest is already uniformly distributed.
  size_t value;
  std::memcpy(&value, digest.data(), sizeof(value));
  return value;
}

absl::StatusOr<TokenAuthenticator> TokenAuthenticator::Parse(absl::string_view text) {
  if (text.size() > kFileSizeMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("token file: larger than ", kFileSizeMax, " bytes"));
  }
  TokenAuthenticator authenticator;
  absl::flat_hash_set<std::string> names;
  size_t line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (line.size() > kLineSizeMax) return LineError(line_number, "line too long");
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ':');
    if (parts.size() != 4 || parts[2] != "sha256") {
      return LineError(line_number, "expected name:permission:sha256:<hex digest>");
    }
    Identity identity;
    if (parts[0].empty() || !std::all_of(parts[0].begin(), parts[0].end(), IsNameCharacter)) {
      return LineError(line_number, "name must be [A-Za-z0-9_.-]+");
    }
    identity.name = std::string(parts[0]);
    if (parts[1] == "read") {
      identity.permission = Permission::kRead;
    } else if (parts[1] == "write") {
      identity.permission = Permission::kWrite;
    } else {
      return LineError(line_number, "permission must be read or write");
    }
    Digest digest;
    if (parts[3].size() != 2 * digest.size()) {
      return LineError(line_number, "digest must be 64 hex digits");
    }
    for (size_t i = 0; i < digest.size(); ++i) {
      const int high = HexValue(parts[3][2 * i]);
      const int low = HexValue(parts[3][2 * i + 1]);
      if (high < 0 || low < 0) return LineError(line_number, "digest must be 64 hex digits");
      digest[i] = static_cast<uint8_t>(high * 16 + low);
    }
    if (!names.insert(identity.name).second) {
      return LineError(line_number, absl::StrCat("duplicate name ", identity.name));
    }
    if (authenticator.identities_.size() >= kTokensMax) {
      return LineError(line_number, absl::StrCat("more than ", kTokensMax, " tokens"));
    }
    if (!authenticator.identities_.emplace(digest, std::move(identity)).second) {
      return LineError(line_number, "the same token appears twice");
    }
  }
  return authenticator;
}

absl::StatusOr<TokenAuthenticator> TokenAuthenticator::FromFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("token file: cannot open ", path));
  std::string text(kFileSizeMax + 1, '\0');
  file.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (file.bad()) return absl::InternalError(absl::StrCat("token file: cannot read ", path));
  text.resize(static_cast<size_t>(file.gcount()));
  return Parse(text);
}

absl::StatusOr<const TokenAuthenticator::Identity*> TokenAuthenticator::Authenticate(
    absl::string_view authorization) const {
  if (authorization.empty()) {
    return absl::UnauthenticatedError("missing authorization metadata (Bearer token)");
  }
  absl::string_view token = authorization;
  if (!absl::ConsumePrefix(&token, "Bearer ") || token.empty() ||
      token.size() > kLineSizeMax) {
    return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
  }
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  // Looking up the digest reveals nothing useful about the token through timing.
  auto it = identities_.find(digest);
  if (it == identities_.end()) return absl::UnauthenticatedError("unknown token");
  return &it->second;
}

}  // namespace tb::proxy
