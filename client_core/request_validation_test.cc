#include "client_core/request_validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/types.h"

namespace tb {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kLimitDefault = kBatchSizeLimitMax;  // 1,048,320.
constexpr uint32_t kLimitDevelopment = 32512;
constexpr uint32_t kLimitMinimum = kBatchSizeLimitMin;  // 3,840.

const OperationInfo& Info(Operation operation) { return GetOperationInfo(operation); }

std::vector<uint8_t> Events(const OperationInfo& info, uint32_t count) {
  return std::vector<uint8_t>(static_cast<size_t>(info.event_size) * count, 0);
}

// One query filter of `info` with the given limit.
std::vector<uint8_t> Filter(const OperationInfo& info, uint32_t limit) {
  std::vector<uint8_t> filter(info.event_size, 0);
  std::memcpy(filter.data() + info.limit_offset, &limit, sizeof(limit));
  return filter;
}

std::vector<uint8_t> Body(const OperationInfo& info, const std::vector<std::vector<uint8_t>>& batches) {
  std::vector<std::span<const uint8_t>> spans(batches.begin(), batches.end());
  return EncodeMultiBatch(info.event_size, spans);
}

void ExpectInvalid(const absl::Status& status, const char* reason) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << reason;
  EXPECT_THAT(std::string(status.message()), HasSubstr(reason));
}

// ---- ValidateRequestBody: multi-batch operations (§11.4) ------------------------------------

TEST(ValidateRequestBody, CreateEventCountBoundaryAtEachLimit) {
  const struct {
    uint32_t limit;
    uint32_t event_max;
  } rows[] = {{kLimitDefault, 8189}, {kLimitDevelopment, 253}, {kLimitMinimum, 29}};
  for (Operation operation : {Operation::kCreateAccounts, Operation::kCreateTransfers,
                              Operation::kDeprecatedCreateAccountsSparse}) {
    const OperationInfo& info = Info(operation);
    for (const auto& row : rows) {
      EXPECT_TRUE(ValidateRequestBody(info, Body(info, {Events(info, row.event_max)}), row.limit)
                      .ok())
          << info.name << " " << row.limit;
      ExpectInvalid(
          ValidateRequestBody(info, Body(info, {Events(info, row.event_max + 1)}), row.limit),
          "events in one batch");
    }
  }
}

TEST(ValidateRequestBody, LookupEventCountBoundaryAtEachLimit) {
  const struct {
    uint32_t limit;
    uint32_t event_max;
  } rows[] = {{kLimitDefault, 8189}, {kLimitDevelopment, 2031}, {kLimitMinimum, 239}};
  const OperationInfo& info = Info(Operation::kLookupAccounts);
  for (const auto& row : rows) {
    EXPECT_TRUE(
        ValidateRequestBody(info, Body(info, {Events(info, row.event_max)}), row.limit).ok());
    ExpectInvalid(
        ValidateRequestBody(info, Body(info, {Events(info, row.event_max + 1)}), row.limit),
        "at most");
  }
}

TEST(ValidateRequestBody, EmptyBatchesAreValidForCreatesAndLookups) {
  for (Operation operation : {Operation::kCreateAccounts, Operation::kLookupTransfers}) {
    const OperationInfo& info = Info(operation);
    EXPECT_TRUE(ValidateRequestBody(info, Body(info, {{}}), kLimitDefault).ok());
    EXPECT_TRUE(ValidateRequestBody(info, Body(info, {{}, Events(info, 3), {}}), kLimitDefault).ok());
  }
}

TEST(ValidateRequestBody, RefusesUndecodableBodies) {
  const OperationInfo& info = Info(Operation::kCreateAccounts);
  ExpectInvalid(ValidateRequestBody(info, {}, kLimitDefault), "create_accounts");
  std::vector<uint8_t> body = Body(info, {Events(info, 1)});
  body[body.size() - 10] = 0;  // A padding byte.
  ExpectInvalid(ValidateRequestBody(info, body, kLimitDefault), "0xFF");
  // A plain array of events without a trailer.
  ExpectInvalid(ValidateRequestBody(info, Events(info, 2), kLimitDefault), "create_accounts");
}

TEST(ValidateRequestBody, QueryBatchesNeedExactlyOneFilter) {
  for (Operation operation : {Operation::kGetAccountTransfers, Operation::kGetAccountBalances,
                              Operation::kQueryAccounts, Operation::kQueryTransfers}) {
    const OperationInfo& info = Info(operation);
    EXPECT_TRUE(ValidateRequestBody(info, Body(info, {Filter(info, 10)}), kLimitDefault).ok());
    EXPECT_TRUE(ValidateRequestBody(info, Body(info, {Filter(info, 10), Filter(info, 0)}),
                                    kLimitDefault)
                    .ok());
    ExpectInvalid(ValidateRequestBody(info, Body(info, {{}}), kLimitDefault), "exactly one filter");
    std::vector<uint8_t> two = Filter(info, 1);
    const std::vector<uint8_t> second = Filter(info, 1);
    two.insert(two.end(), second.begin(), second.end());
    ExpectInvalid(ValidateRequestBody(info, Body(info, {two}), kLimitDefault), "exactly one filter");
    ExpectInvalid(ValidateRequestBody(info, Body(info, {Filter(info, 1), {}}), kLimitDefault),
                  "exactly one filter");
  }
}

TEST(ValidateRequestBody, QueryRepliesMustFitOneMessage) {
  // 128-byte results: one batch with limit 8,189 fills the reply exactly (8189·128 + 128).
  const OperationInfo& info = Info(Operation::kQueryAccounts);
  EXPECT_TRUE(ValidateRequestBody(info, Body(info, {Filter(info, 8189)}), kLimitDefault).ok());
  // A huge limit is capped at result_max when the replica checks (observed: 0xFFFFFFFF passes).
  EXPECT_TRUE(
      ValidateRequestBody(info, Body(info, {Filter(info, 0xFFFFFFFF)}), kLimitDefault).ok());
  ExpectInvalid(
      ValidateRequestBody(info, Body(info, {Filter(info, 8189), Filter(info, 1)}), kLimitDefault),
      "reply could reach");
  // Exactly full: results 8,188 + 1 in two batches need a 128-byte trailer, like one batch.
  EXPECT_TRUE(
      ValidateRequestBody(info, Body(info, {Filter(info, 8188), Filter(info, 1)}), kLimitDefault)
          .ok());
  // The trailer grows with the batch count: 64 batches need a 256-byte result trailer.
  std::vector<std::vector<uint8_t>> batches(64, Filter(info, 1));
  batches[0] = Filter(info, 8189 - 64);
  EXPECT_TRUE(ValidateRequestBody(info, Body(info, batches), kLimitDefault).ok());
  batches[0] = Filter(info, 8189 - 63);
  ExpectInvalid(ValidateRequestBody(info, Body(info, batches), kLimitDefault), "reply could reach");
}

TEST(ValidateRequestBody, CreateRepliesMustFitOneMessage) {
  // 146 has 16-byte results. Nine batches need a 32-byte result trailer, so at most
  // (1,048,320 − 32) / 16 = 65,518 results: 8 full batches of 8,189 and one of 6.
  const OperationInfo& info = Info(Operation::kCreateAccounts);
  std::vector<std::vector<uint8_t>> batches(8, Events(info, 8189));
  batches.push_back(Events(info, 6));
  EXPECT_TRUE(ValidateRequestBody(info, Body(info, batches), kLimitDefault).ok());
  batches.back() = Events(info, 7);
  ExpectInvalid(ValidateRequestBody(info, Body(info, batches), kLimitDefault), "reply could reach");
}

// ---- ValidateRequestBody: operations that are not multi-batch -------------------------------

TEST(ValidateRequestBody, PulseBodyMustBeEmpty) {
  const OperationInfo& info = Info(Operation::kStateMachinePulse);
  EXPECT_TRUE(ValidateRequestBody(info, {}, kLimitDefault).ok());
  const uint8_t one[] = {0};
  ExpectInvalid(ValidateRequestBody(info, one, kLimitDefault), "must be empty");
}

TEST(ValidateRequestBody, GetChangeEventsIsOneFilterWithoutTrailer) {
  const OperationInfo& info = Info(Operation::kGetChangeEvents);
  EXPECT_FALSE(info.multi_batch);
  EXPECT_TRUE(ValidateRequestBody(info, Filter(info, 10), kLimitDefault).ok());
  ExpectInvalid(ValidateRequestBody(info, {}, kLimitDefault), "exactly one filter");
  ExpectInvalid(ValidateRequestBody(info, Events(info, 2), kLimitDefault), "exactly one filter");
  // One filter followed by a multi-batch trailer is 128 bytes: two "filters".
  ExpectInvalid(ValidateRequestBody(info, Body(info, {Filter(info, 10)}), kLimitDefault),
                "exactly one filter");
  const std::vector<uint8_t> partial(63, 0);
  ExpectInvalid(ValidateRequestBody(info, partial, kLimitDefault), "whole number");
}

TEST(ValidateRequestBody, UnbatchedDeprecatedOperationsUseTheirOwnLimits) {
  const struct {
    Operation operation;
    uint32_t limit;
    uint32_t event_max;
  } rows[] = {
      {Operation::kDeprecatedCreateAccountsUnbatched, kLimitDefault, 8190},
      {Operation::kDeprecatedCreateTransfersUnbatched, kLimitDevelopment, 254},
      {Operation::kDeprecatedCreateAccountsUnbatched, kLimitMinimum, 30},
      {Operation::kDeprecatedLookupAccountsUnbatched, kLimitDefault, 8190},
      {Operation::kDeprecatedLookupTransfersUnbatched, kLimitDevelopment, 2032},
      {Operation::kDeprecatedLookupAccountsUnbatched, kLimitMinimum, 240},
  };
  for (const auto& row : rows) {
    const OperationInfo& info = Info(row.operation);
    EXPECT_TRUE(ValidateRequestBody(info, Events(info, row.event_max), row.limit).ok())
        << info.name << " " << row.limit;
    ExpectInvalid(ValidateRequestBody(info, Events(info, row.event_max + 1), row.limit),
                  "events in one batch");
    EXPECT_TRUE(ValidateRequestBody(info, {}, row.limit).ok()) << info.name;
  }
  const OperationInfo& query = Info(Operation::kDeprecatedQueryAccountsUnbatched);
  EXPECT_TRUE(ValidateRequestBody(query, Filter(query, 8190), kLimitDefault).ok());
  ExpectInvalid(ValidateRequestBody(query, Events(query, 2), kLimitDefault), "exactly one filter");
}

TEST(ValidateRequestBody, RefusesABatchSizeLimitOutsideItsRange) {
  const OperationInfo& info = Info(Operation::kCreateAccounts);
  const std::vector<uint8_t> body = Body(info, {{}});
  ExpectInvalid(ValidateRequestBody(info, body, 0), "batch_size_limit");
  ExpectInvalid(ValidateRequestBody(info, body, kBatchSizeLimitMax + 1), "batch_size_limit");
  ExpectInvalid(ValidateBatch(info, {}, 0), "batch_size_limit");
}

// ---- ValidateBatch: one caller's batch before it is queued (§13.1, §14.4) ------------------

TEST(ValidateBatch, EventCountBoundaryAtEachLimit) {
  const OperationInfo& create = Info(Operation::kCreateTransfers);
  EXPECT_TRUE(ValidateBatch(create, Events(create, 8189), kLimitDefault).ok());
  ExpectInvalid(ValidateBatch(create, Events(create, 8190), kLimitDefault), "at most 8189");
  EXPECT_TRUE(ValidateBatch(create, Events(create, 253), kLimitDevelopment).ok());
  ExpectInvalid(ValidateBatch(create, Events(create, 254), kLimitDevelopment), "at most 253");
  EXPECT_TRUE(ValidateBatch(create, Events(create, 29), kLimitMinimum).ok());
  ExpectInvalid(ValidateBatch(create, Events(create, 30), kLimitMinimum), "at most 29");
  const OperationInfo& lookup = Info(Operation::kLookupTransfers);
  EXPECT_TRUE(ValidateBatch(lookup, Events(lookup, 2031), kLimitDevelopment).ok());
  ExpectInvalid(ValidateBatch(lookup, Events(lookup, 2032), kLimitDevelopment), "at most 2031");
  EXPECT_TRUE(ValidateBatch(create, {}, kLimitDefault).ok());
}

TEST(ValidateBatch, RefusesPartialEvents) {
  const OperationInfo& info = Info(Operation::kLookupAccounts);
  ExpectInvalid(ValidateBatch(info, std::vector<uint8_t>(17, 0), kLimitDefault), "whole number");
  ExpectInvalid(ValidateBatch(info, std::vector<uint8_t>(15, 0), kLimitDefault), "whole number");
}

TEST(ValidateBatch, QueryNeedsOneFilterWithALimitWithinResultMax) {
  for (Operation operation : {Operation::kGetAccountTransfers, Operation::kGetAccountBalances,
                              Operation::kQueryAccounts, Operation::kQueryTransfers}) {
    const OperationInfo& info = Info(operation);
    EXPECT_TRUE(ValidateBatch(info, Filter(info, 8189), kLimitDefault).ok()) << info.name;
    EXPECT_TRUE(ValidateBatch(info, Filter(info, 0), kLimitDefault).ok()) << info.name;
    ExpectInvalid(ValidateBatch(info, Filter(info, 8190), kLimitDefault), "limit 8190");
    ExpectInvalid(ValidateBatch(info, {}, kLimitDefault), "exactly one filter");
    ExpectInvalid(ValidateBatch(info, Events(info, 2), kLimitDefault), "exactly one filter");
  }
  const OperationInfo& changes = Info(Operation::kGetChangeEvents);
  EXPECT_TRUE(ValidateBatch(changes, Filter(changes, 2730), kLimitDefault).ok());
  ExpectInvalid(ValidateBatch(changes, Filter(changes, 2731), kLimitDefault), "limit 2731");
}

TEST(ValidateBatch, RefusesPulse) {
  ExpectInvalid(ValidateBatch(Info(Operation::kStateMachinePulse), {}, kLimitDefault),
                "never forwarded");
}

}  // namespace
}  // namespace tb
