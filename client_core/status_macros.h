// Early-return helpers for absl::Status and absl::StatusOr (Abseil 20220623 has none).
//
//   TB_RETURN_IF_ERROR(ValidateHeader(header));
//   TB_ASSIGN_OR_RETURN(auto batches, DecodeMultiBatch(body, element_size));
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define TB_STATUS_CONCAT_INNER(a, b) a##b
#define TB_STATUS_CONCAT(a, b) TB_STATUS_CONCAT_INNER(a, b)

#define TB_RETURN_IF_ERROR(expression)                  \
  do {                                                  \
    ::absl::Status tb_status_ = (expression);           \
    if (!tb_status_.ok()) [[unlikely]] return tb_status_; \
  } while (false)

#define TB_ASSIGN_OR_RETURN(declaration, expression) \
  TB_ASSIGN_OR_RETURN_IMPL(TB_STATUS_CONCAT(tb_statusor_, __LINE__), declaration, expression)

#define TB_ASSIGN_OR_RETURN_IMPL(statusor, declaration, expression) \
  auto statusor = (expression);                                     \
  if (!statusor.ok()) [[unlikely]] return std::move(statusor).status(); \
  declaration = std::move(statusor).value()
