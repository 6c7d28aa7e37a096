#include "proxy/grpc/grpc_convert.h"

#include <cstring>

#include "client_core/bytes.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;

template <typename Native>
Native EventAt(const SubmitRequest& request, size_t index) {
  Native native;
  EXPECT_GE(request.events.size(), (index + 1) * sizeof(Native));
  std::memcpy(&native, request.events.data() + index * sizeof(Native), sizeof(Native));
  return native;
}

void SetU128(v1::Uint128* out, uint64_t hi, uint64_t lo) {
  out->set_hi(hi);
  out->set_lo(lo);
}

TEST(GrpcConvert, AccountFieldsLandAtTheirNativeOffsets) {
  v1::CreateAccountsRequest request;
  v1::Account* account = request.add_accounts();
  SetU128(account->mutable_id(), 1, 2);
  SetU128(account->mutable_user_data_128(), 3, 4);
  account->set_user_data_64(5);
  account->set_user_data_32(6);
  account->set_ledger(7);
  account->set_code(8);
  account->set_flags(account_flags::kLinked | account_flags::kHistory);
  account->set_timestamp(9);
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 146);
  ASSERT_EQ(submit->events.size(), 128u);
  const Account native = EventAt<Account>(*submit, 0);
  EXPECT_EQ(native.id, MakeU128(1, 2));
  EXPECT_EQ(native.debits_pending, 0u);
  EXPECT_EQ(native.user_data_128, MakeU128(3, 4));
  EXPECT_EQ(native.user_data_64, 5u);
  EXPECT_EQ(native.user_data_32, 6u);
  EXPECT_EQ(native.reserved, 0u);
  EXPECT_EQ(native.ledger, 7u);
  EXPECT_EQ(native.code, 8);
  EXPECT_EQ(native.flags, account_flags::kLinked | account_flags::kHistory);
  EXPECT_EQ(native.timestamp, 9u);
  // Byte-level check of the little-endian layout: id.lo at 0, id.hi at 8.
  EXPECT_EQ(submit->events[0], 2);
  EXPECT_EQ(submit->events[8], 1);
}

TEST(GrpcConvert, TransferFieldsLandAtTheirNativeOffsets) {
  v1::CreateTransfersRequest request;
  v1::Transfer* transfer = request.add_transfers();
  SetU128(transfer->mutable_id(), 0, 10);
  SetU128(transfer->mutable_debit_account_id(), 0, 11);
  SetU128(transfer->mutable_credit_account_id(), 0, 12);
  SetU128(transfer->mutable_amount(), 13, 14);
  SetU128(transfer->mutable_pending_id(), 0, 15);
  transfer->set_timeout(16);
  transfer->set_ledger(17);
  transfer->set_code(18);
  transfer->set_flags(transfer_flags::kPending);
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 147);
  const Transfer native = EventAt<Transfer>(*submit, 0);
  EXPECT_EQ(native.id, 10u);
  EXPECT_EQ(native.debit_account_id, 11u);
  EXPECT_EQ(native.credit_account_id, 12u);
  EXPECT_EQ(native.amount, MakeU128(13, 14));
  EXPECT_EQ(native.pending_id, 15u);
  EXPECT_EQ(native.timeout, 16u);
  EXPECT_EQ(native.ledger, 17u);
  EXPECT_EQ(native.code, 18);
  EXPECT_EQ(native.flags, transfer_flags::kPending);
}

TEST(GrpcConvert, RequiredFieldsAbsentAreRefusedWithTheirPath) {
  v1::CreateTransfersRequest request;
  SetU128(request.add_transfers()->mutable_id(), 0, 1);
  request.mutable_transfers(0)->mutable_debit_account_id();
  request.mutable_transfers(0)->mutable_credit_account_id();
  v1::Transfer* second = request.add_transfers();
  SetU128(second->mutable_id(), 0, 2);
  second->mutable_credit_account_id();
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  ASSERT_EQ(submit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(submit.status().message(), HasSubstr("transfers[1].debit_account_id: required"));
}

TEST(GrpcConvert, ExplicitZeroIdIsForwardedForTigerBeetleToJudge) {
  v1::CreateAccountsRequest request;
  request.add_accounts()->mutable_id();  // Present, {lo: 0, hi: 0}.
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(EventAt<Account>(*submit, 0).id, 0u);
}

TEST(GrpcConvert, MalformedUint128IsRefused) {
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 1);
  v1::Uint128* bad = request.add_ids();
  // Field 1 written as a string: parsed into the unknown fields, not into `lo`.
  std::string wire;
  wire.push_back(static_cast<char>((1 << 3) | 2));
  wire.push_back(2);
  wire.append("42");
  ASSERT_TRUE(bad->ParseFromString(wire));
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(request);
  ASSERT_EQ(submit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(submit.status().message(), HasSubstr("ids[1]: malformed Uint128"));
}

TEST(GrpcConvert, U16FieldsAboveRangeAreRefused) {
  v1::CreateAccountsRequest request;
  v1::Account* account = request.add_accounts();
  SetU128(account->mutable_id(), 0, 1);
  account->set_code(65536);
  EXPECT_THAT(ToSubmitRequest(request).status().message(), HasSubstr("accounts[0].code"));
  account->set_code(65535);
  account->set_flags(0x10000);
  EXPECT_THAT(ToSubmitRequest(request).status().message(), HasSubstr("accounts[0].flags"));
}

TEST(GrpcConvert, TooManyEventsAreRefused) {
  v1::LookupAccountsRequest request;
  for (int i = 0; i < 8190; ++i) SetU128(request.add_ids(), 0, i + 1);
  EXPECT_EQ(ToSubmitRequest(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.mutable_ids()->RemoveLast();
  EXPECT_TRUE(ToSubmitRequest(request).ok());
}

TEST(GrpcConvert, FiltersAreRequiredAndConverted) {
  EXPECT_EQ(ToSubmitRequest(v1::GetAccountTransfersRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToSubmitRequest(v1::QueryAccountsRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ToSubmitRequest(v1::GetChangeEventsRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);
  v1::GetAccountTransfersRequest missing_account;
  missing_account.mutable_filter()->set_limit(1);
  EXPECT_THAT(ToSubmitRequest(missing_account).status().message(),
              HasSubstr("filter.account_id: required"));

  v1::GetAccountBalancesRequest balances;
  SetU128(balances.mutable_filter()->mutable_account_id(), 0, 5);
  balances.mutable_filter()->set_timestamp_min(10);
  balances.mutable_filter()->set_timestamp_max(20);
  balances.mutable_filter()->set_limit(30);
  balances.mutable_filter()->set_flags(account_filter_flags::kDebits);
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(balances);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 143);
  const AccountFilter filter = EventAt<AccountFilter>(*submit, 0);
  EXPECT_EQ(filter.account_id, 5u);
  EXPECT_EQ(filter.timestamp_min, 10u);
  EXPECT_EQ(filter.timestamp_max, 20u);
  EXPECT_EQ(filter.limit, 30u);
  EXPECT_EQ(filter.flags, account_filter_flags::kDebits);

  v1::QueryTransfersRequest query;
  query.mutable_filter()->set_ledger(3);
  query.mutable_filter()->set_limit(4);
  submit = ToSubmitRequest(query);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 145);
  EXPECT_EQ(EventAt<QueryFilter>(*submit, 0).ledger, 3u);
  EXPECT_EQ(EventAt<QueryFilter>(*submit, 0).limit, 4u);

  v1::GetChangeEventsRequest changes;
  changes.mutable_filter()->set_limit(7);
  submit = ToSubmitRequest(changes);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 137);
  ASSERT_EQ(submit->events.size(), 64u);
  EXPECT_EQ(EventAt<ChangeEventsFilter>(*submit, 0).limit, 7u);
}

TEST(GrpcConvert, RawChecksOperationAndWholeEvents) {
  v1::RawRequest raw;
  raw.set_operation(140);
  raw.set_events(std::string(32, '\1'));
  absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(raw);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->events, std::vector<uint8_t>(32, 1));
  raw.set_events(std::string(33, '\1'));
  EXPECT_EQ(ToSubmitRequest(raw).status().code(), absl::StatusCode::kInvalidArgument);
  for (uint32_t operation : {0u, 2u, 128u, 129u, 136u, 138u, 139u, 148u, 255u, 256u + 140u}) {
    raw.set_operation(operation);
    raw.set_events("");
    EXPECT_EQ(ToSubmitRequest(raw).status().code(), absl::StatusCode::kInvalidArgument)
        << operation;
  }
}

TEST(GrpcConvert, CreateResultsKeepTigerBeetleNamesAndCodes) {
  SubmitResult result{.timestamp = 99};
  AppendStruct(&result.results, CreateResult{.timestamp = 1, .status = 0xFFFFFFFF, .reserved = 0});
  AppendStruct(&result.results, CreateResult{.timestamp = 2, .status = 1, .reserved = 0});
  AppendStruct(&result.results, CreateResult{.timestamp = 3, .status = 46, .reserved = 0});
  AppendStruct(&result.results, CreateResult{.timestamp = 4, .status = 1000, .reserved = 0});
  v1::CreateTransfersResponse response;
  ASSERT_TRUE(FromSubmitResult(result, &response).ok());
  EXPECT_EQ(response.timestamp(), 99u);
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).status(), v1::CREATE_TRANSFER_STATUS_CREATED);
  EXPECT_EQ(response.results(0).status_code(), 0xFFFFFFFFu);
  EXPECT_EQ(response.results(0).timestamp(), 1u);
  EXPECT_EQ(response.results(1).status(), v1::CREATE_TRANSFER_STATUS_LINKED_EVENT_FAILED);
  EXPECT_EQ(response.results(2).status(), v1::CREATE_TRANSFER_STATUS_EXISTS);
  EXPECT_EQ(response.results(3).status_code(), 1000u);  // Unknown to this API version.
  EXPECT_EQ(v1::CreateTransferStatus_Name(response.results(1).status()),
            "CREATE_TRANSFER_STATUS_LINKED_EVENT_FAILED");
}

TEST(GrpcConvert, EveryStatusEnumNameMatchesTigerBeetlesName) {
  for (uint32_t code = 0; code < 128; ++code) {
    const std::string tb_name = CreateTransferStatusName(code);
    if (tb_name.empty()) continue;
    const auto value = static_cast<v1::CreateTransferStatus>(static_cast<int32_t>(code));
    ASSERT_TRUE(v1::CreateTransferStatus_IsValid(value)) << tb_name;
    std::string expected = "CREATE_TRANSFER_STATUS_" + tb_name;
    for (char& c : expected) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(v1::CreateTransferStatus_Name(value), expected);
  }
  for (uint32_t code = 0; code < 128; ++code) {
    const std::string tb_name = CreateAccountStatusName(code);
    if (tb_name.empty()) continue;
    const auto value = static_cast<v1::CreateAccountStatus>(static_cast<int32_t>(code));
    ASSERT_TRUE(v1::CreateAccountStatus_IsValid(value)) << tb_name;
    std::string expected = "CREATE_ACCOUNT_STATUS_" + tb_name;
    for (char& c : expected) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(v1::CreateAccountStatus_Name(value), expected);
  }
  EXPECT_EQ(v1::CreateAccountStatus_Name(v1::CREATE_ACCOUNT_STATUS_CREATED),
            "CREATE_ACCOUNT_STATUS_" + std::string("CREATED"));
  EXPECT_STREQ(CreateAccountStatusName(0xFFFFFFFF), "created");
}

TEST(GrpcConvert, ObjectResultsConvertEveryField) {
  Account account{};
  account.id = MakeU128(1, 2);
  account.credits_posted = MakeU128(3, 4);
  account.ledger = 5;
  account.code = 6;
  account.flags = account_flags::kClosed;
  account.timestamp = 7;
  SubmitResult result{.timestamp = 8};
  AppendStruct(&result.results, account);
  v1::LookupAccountsResponse response;
  ASSERT_TRUE(FromSubmitResult(result, &response).ok());
  ASSERT_EQ(response.accounts_size(), 1);
  EXPECT_EQ(FromProto(response.accounts(0).id()), MakeU128(1, 2));
  EXPECT_EQ(FromProto(response.accounts(0).credits_posted()), MakeU128(3, 4));
  EXPECT_EQ(response.accounts(0).ledger(), 5u);
  EXPECT_EQ(response.accounts(0).code(), 6u);
  EXPECT_EQ(response.accounts(0).flags(), account_flags::kClosed);
  EXPECT_EQ(response.accounts(0).timestamp(), 7u);

  ChangeEvent event{};
  event.transfer_id = 11;
  event.type = ChangeEventType::kTwoPhaseVoided;
  event.credit_account_id = 12;
  event.credit_account_timestamp = 13;
  SubmitResult changes{.timestamp = 1};
  AppendStruct(&changes.results, event);
  v1::GetChangeEventsResponse change_response;
  ASSERT_TRUE(FromSubmitResult(changes, &change_response).ok());
  ASSERT_EQ(change_response.events_size(), 1);
  EXPECT_EQ(FromProto(change_response.events(0).transfer_id()), 11u);
  EXPECT_EQ(change_response.events(0).type(), v1::CHANGE_EVENT_TYPE_TWO_PHASE_VOIDED);
  EXPECT_EQ(FromProto(change_response.events(0).credit_account_id()), 12u);
  EXPECT_EQ(change_response.events(0).credit_account_timestamp(), 13u);
}

TEST(GrpcConvert, ResultBytesOfTheWrongSizeAreInternal) {
  SubmitResult result{.timestamp = 1, .results = std::vector<uint8_t>(127)};
  v1::QueryAccountsResponse response;
  EXPECT_EQ(FromSubmitResult(result, &response).code(), absl::StatusCode::kInternal);
}

TEST(GrpcConvert, ReadOnlyTokensCannotRunTheseOperations) {
  EXPECT_TRUE(IsCreateOperation(146));
  EXPECT_TRUE(IsCreateOperation(147));
  EXPECT_FALSE(IsCreateOperation(140));
  EXPECT_FALSE(IsCreateOperation(137));
}

}  // namespace
}  // namespace tb::proxy
