#include "proxy/grpc/grpc_status.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/outcome.h"

namespace tb::proxy {
namespace {

const char* OutcomeWord(Outcome outcome) {
  return outcome == Outcome::kNotApplied ? "not_applied" : "unknown";
}

std::string MessageWithOutcome(const absl::Status& status, std::optional<Outcome> outcome) {
  if (!outcome.has_value()) return std::string(status.message());
  return absl::StrCat(status.message(), " (outcome: ", OutcomeWord(*outcome), ")");
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status, grpc::ServerContextBase* context) {
  if (status.ok()) return grpc::Status::OK;
  const std::optional<Outcome> outcome = GetOutcome(status);
  if (outcome.has_value() && context != nullptr) {
    context->AddTrailingMetadata(kOutcomeMetadataKey, OutcomeWord(*outcome));
  }
  // absl::StatusCode and grpc::StatusCode use the same canonical numbers 0..16.
  static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
                static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  static_assert(static_cast<int>(absl::StatusCode::kResourceExhausted) ==
                static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  int code = static_cast<int>(status.code());
  if (code < 0 || code > static_cast<int>(grpc::StatusCode::UNAUTHENTICATED)) {
    code = static_cast<int>(grpc::StatusCode::UNKNOWN);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(code), MessageWithOutcome(status, outcome));
}

void ToCallError(const absl::Status& status, ::tbproxy::v1::CallError* error) {
  TB_ASSERT(!status.ok());
  const grpc::Status mapped = ToGrpcStatus(status, nullptr);
  error->set_code(static_cast<int32_t>(mapped.error_code()));
  error->set_message(mapped.error_message());
  const std::optional<Outcome> outcome = GetOutcome(status);
  if (!outcome.has_value()) {
    error->set_outcome(::tbproxy::v1::OUTCOME_UNSPECIFIED);
  } else if (*outcome == Outcome::kNotApplied) {
    error->set_outcome(::tbproxy::v1::OUTCOME_NOT_APPLIED);
  } else {
    error->set_outcome(::tbproxy::v1::OUTCOME_UNKNOWN);
  }
}

}  // namespace tb::proxy
