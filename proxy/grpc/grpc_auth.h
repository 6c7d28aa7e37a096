// Bearer-token authentication and per-token permissions for the gRPC API.
//
// The token file never holds a token, only its SHA-256, so reading the file (or a backup of it)
// does not let anybody call the proxy. One token per line:
//
//   # name:permission:sha256:<64 lowercase or uppercase hex digits>
//   billing:write:sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//   reports:read:sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752
//
// Create the hash with `printf '%s' "$TOKEN" | sha256sum`. Blank lines and lines starting with
// '#' are ignored. Names are [A-Za-z0-9_.-]+ and unique; hashes are unique.
// Permissions: "read" may look up, query and read change events; "write" may also create
// accounts and transfers (typed, raw and on streams).
// Callers send the metadata "authorization: Bearer <token>". Tokens never appear in logs or
// error messages; names may.
//
//   TB_ASSIGN_OR_RETURN(TokenAuthenticator authenticator, TokenAuthenticator::FromFile(path));
//   absl::StatusOr<const TokenAuthenticator::Identity*> who = authenticator.Authenticate(header);
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tb::proxy {

enum class Permission { kRead, kWrite };

class TokenAuthenticator {
 public:
  struct Identity {
    std::string name;
    Permission permission;
  };

  // At most this many tokens, each line at most kLineSizeMax bytes.
  static constexpr size_t kTokensMax = 10000;
  static constexpr size_t kLineSizeMax = 1024;
  static constexpr size_t kFileSizeMax = kTokensMax * 128;

  // Errors name the line ("token file line 3: ...") and never echo a hash or a token.
  static absl::StatusOr<TokenAuthenticator> Parse(absl::string_view text);
  static absl::StatusOr<TokenAuthenticator> FromFile(const std::string& path);

  // `authorization` is the metadata value, "Bearer <token>". kUnauthenticated when it is
  // missing, malformed or unknown. Thread-safe (the table is immutable).
  absl::StatusOr<const Identity*> Authenticate(absl::string_view authorization) const;

  size_t size() const { return identities_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& digest) const;
  };

  absl::flat_hash_map<Digest, Identity, DigestHash> identities_;
};

}  // namespace tb::proxy
