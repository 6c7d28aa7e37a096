#include "proxy/grpc/grpc_convert.h"

#include <cctype>
#include <set>
#include <string>

#include "client_core/bytes.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/testing/grpc_message_util.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;

using testing::SetU128;

// Field 1 written as a string: parsed into the unknown fields, not into `lo`.
void MakeMalformed(v1::Uint128* value) {
  std::string wire;
  wire.push_back(static_cast<char>((1 << 3) | 2));
  wire.push_back(2);
  wire.append("42");
  ASSERT_TRUE(value->ParseFromString(wire));
}

// For every Uint128 field of the message `element` returns inside a copy of the valid request
// `valid`: clearing it is refused as required exactly when it is in `required`, and a malformed
// value is refused, each under the field's own path `prefix` + name.
template <typename Request, typename Element>
void ExpectEveryUint128FieldChecked(const Request& valid, Element* (*element)(Request*),
                                    const std::string& prefix,
                                    const std::set<std::string>& required) {
  ASSERT_TRUE(ToSubmitRequest(valid).ok());
  const google::protobuf::Descriptor* descriptor = Element::descriptor();
  int checked = 0;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->message_type() != v1::Uint128::descriptor()) continue;
    checked++;
    const std::string path = prefix + std::string(field->name());
    Request cleared = valid;
    Element* cleared_element = element(&cleared);
    cleared_element->GetReflection()->ClearField(cleared_element, field);
    if (required.contains(std::string(field->name()))) {
      EXPECT_EQ(ToSubmitRequest(cleared).status(), absl::InvalidArgumentError(path + ": required"));
    } else {
      EXPECT_TRUE(ToSubmitRequest(cleared).ok()) << path;
    }
    Request malformed = valid;
    Element* malformed_element = element(&malformed);
    MakeMalformed(static_cast<v1::Uint128*>(
        malformed_element->GetReflection()->MutableMessage(malformed_element, field)));
    EXPECT_EQ(ToSubmitRequest(malformed).status(),
              absl::InvalidArgumentError(
                  path + ": malformed Uint128 (unknown fields; expected fixed64 lo = 1, hi = 2)"));
  }
  EXPECT_GT(checked, 0);
}

TEST(GrpcConvert, EveryUint128FieldIsCheckedUnderItsOwnPath) {
  v1::CreateAccountsRequest accounts;
  accounts.add_accounts();
  SetU128(accounts.add_accounts()->mutable_id(), 0, 1);
  accounts.mutable_accounts(0)->mutable_id();
  ExpectEveryUint128FieldChecked<v1::CreateAccountsRequest, v1::Account>(
      accounts, [](v1::CreateAccountsRequest* r) { return r->mutable_accounts(1); }, "accounts[1].",
      {"id"});

  v1::CreateTransfersRequest transfers;
  v1::Transfer* transfer = transfers.add_transfers();
  transfer->mutable_id();
  transfer->mutable_debit_account_id();
  transfer->mutable_credit_account_id();
  ExpectEveryUint128FieldChecked<v1::CreateTransfersRequest, v1::Transfer>(
      transfers, [](v1::CreateTransfersRequest* r) { return r->mutable_transfers(0); },
      "transfers[0].", {"id", "debit_account_id", "credit_account_id"});

  v1::GetAccountTransfersRequest account_filter;
  account_filter.mutable_filter()->mutable_account_id();
  ExpectEveryUint128FieldChecked<v1::GetAccountTransfersRequest, v1::AccountFilter>(
      account_filter, [](v1::GetAccountTransfersRequest* r) { return r->mutable_filter(); },
      "filter.", {"account_id"});

  v1::QueryTransfersRequest query_filter;
  query_filter.mutable_filter();
  ExpectEveryUint128FieldChecked<v1::QueryTransfersRequest, v1::QueryFilter>(
      query_filter, [](v1::QueryTransfersRequest* r) { return r->mutable_filter(); }, "filter.",
      {});
}

TEST(GrpcConvert, EveryU16FieldIsCheckedUnderItsOwnPath) {
  v1::CreateTransfersRequest transfers;
  v1::Transfer* transfer = transfers.add_transfers();
  transfer->mutable_id();
  transfer->mutable_debit_account_id();
  transfer->mutable_credit_account_id();
  transfer->set_code(70000);
  EXPECT_EQ(ToSubmitRequest(transfers).status(),
            absl::InvalidArgumentError("transfers[0].code: 70000 does not fit u16"));
  transfer->set_code(0xFFFF);
  transfer->set_flags(0x10000);
  EXPECT_EQ(ToSubmitRequest(transfers).status(),
            absl::InvalidArgumentError("transfers[0].flags: 65536 does not fit u16"));

  v1::GetAccountBalancesRequest balances;
  balances.mutable_filter()->mutable_account_id();
  balances.mutable_filter()->set_code(0x10000);
  EXPECT_EQ(ToSubmitRequest(balances).status(),
            absl::InvalidArgumentError("filter.code: 65536 does not fit u16"));
  v1::QueryAccountsRequest query;
  query.mutable_filter()->set_code(0x10000);
  EXPECT_EQ(ToSubmitRequest(query).status(),
            absl::InvalidArgumentError("filter.code: 65536 does not fit u16"));
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
  const Account native = StructAt<Account>(submit->events, 0);
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
  const Transfer native = StructAt<Transfer>(submit->events, 0);
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
  EXPECT_EQ(StructAt<Account>(submit->events, 0).id, 0u);
}

TEST(GrpcConvert, MalformedUint128IsRefused) {
  v1::LookupAccountsRequest request;
  SetU128(request.add_ids(), 0, 1);
  MakeMalformed(request.add_ids());
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
  const AccountFilter filter = StructAt<AccountFilter>(submit->events, 0);
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
  EXPECT_EQ(StructAt<QueryFilter>(submit->events, 0).ledger, 3u);
  EXPECT_EQ(StructAt<QueryFilter>(submit->events, 0).limit, 4u);

  v1::GetChangeEventsRequest changes;
  changes.mutable_filter()->set_limit(7);
  submit = ToSubmitRequest(changes);
  ASSERT_TRUE(submit.ok()) << submit.status();
  EXPECT_EQ(submit->operation, 137);
  ASSERT_EQ(submit->events.size(), 64u);
  EXPECT_EQ(StructAt<ChangeEventsFilter>(submit->events, 0).limit, 7u);
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

// Every status TigerBeetle names below 128 is a value of the proto enum with the same number,
// named `prefix` + the TigerBeetle name in upper case.
void ExpectEnumNamesMatchTigerBeetle(const google::protobuf::EnumDescriptor* descriptor,
                                     const char* (*tb_name_of)(uint32_t),
                                     const std::string& prefix) {
  for (uint32_t code = 0; code < 128; ++code) {
    const std::string tb_name = tb_name_of(code);
    if (tb_name.empty()) continue;
    const google::protobuf::EnumValueDescriptor* value =
        descriptor->FindValueByNumber(static_cast<int>(code));
    ASSERT_NE(value, nullptr) << tb_name;
    std::string expected = prefix + tb_name;
    for (char& c : expected) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(value->name(), expected);
  }
}

TEST(GrpcConvert, EveryStatusEnumNameMatchesTigerBeetlesName) {
  ExpectEnumNamesMatchTigerBeetle(v1::CreateTransferStatus_descriptor(), CreateTransferStatusName,
                                  "CREATE_TRANSFER_STATUS_");
  ExpectEnumNamesMatchTigerBeetle(v1::CreateAccountStatus_descriptor(), CreateAccountStatusName,
                                  "CREATE_ACCOUNT_STATUS_");
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
