#include "proxy/grpc_convert.h"

#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/unknown_field_set.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/operation.h"
#include "client_core/status_macros.h"
#include "client_core/types.h"

namespace tb::proxy {
namespace {

// Where a value sits in the request, for error messages: "accounts[3].id", "filter.limit".
struct FieldPath {
  const char* list;  // "accounts", "ids", "filter".
  int index;         // -1 when `list` is a single message.
  const char* field;  // "" when the element itself is the value (lookup ids).

  std::string ToString() const {
    std::string path = index >= 0 ? absl::StrCat(list, "[", index, "]") : std::string(list);
    if (field[0] != '\0') absl::StrAppend(&path, ".", field);
    return path;
  }
};

absl::Status FieldError(const FieldPath& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(path.ToString(), ": ", problem));
}

enum class Presence { kOptional, kRequired };

absl::Status ReadU128(bool has, const v1::Uint128& value, Presence presence,
                      const FieldPath& path, u128* out) {
  if (!has) {
    if (presence == Presence::kRequired) return FieldError(path, "required");
    *out = 0;
    return absl::OkStatus();
  }
  // A field with the wrong wire type lands in the unknown fields: the value is malformed and
  // must not silently read as zero.
  if (!value.GetReflection()->GetUnknownFields(value).empty()) {
    return FieldError(path, "malformed Uint128 (unknown fields; expected fixed64 lo = 1, hi = 2)");
  }
  *out = FromProto(value);
  return absl::OkStatus();
}

absl::Status ReadU16(uint32_t value, const FieldPath& path, uint16_t* out) {
  if (value > 0xFFFF) return FieldError(path, absl::StrCat(value, " does not fit u16"));
  *out = static_cast<uint16_t>(value);
  return absl::OkStatus();
}

absl::Status CheckCount(int count, uint8_t operation, const char* list) {
  const uint32_t max = CallEventsMax(operation);
  if (count < 0 || static_cast<uint32_t>(count) > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(list, ": ", count, " events, at most ", max, " per call"));
  }
  return absl::OkStatus();
}

template <typename Native>
void Append(const Native& value, std::vector<uint8_t>* bytes) {
  static_assert(std::is_trivially_copyable_v<Native>);
  const size_t offset = bytes->size();
  bytes->resize(offset + sizeof(Native));
  std::memcpy(bytes->data() + offset, &value, sizeof(Native));
}

template <typename Native>
Native ReadAt(std::span<const uint8_t> bytes, size_t index) {
  Native value;
  TB_ASSERT((index + 1) * sizeof(Native) <= bytes.size());
  std::memcpy(&value, bytes.data() + index * sizeof(Native), sizeof(Native));
  return value;
}

// The number of whole results in `bytes`, or kInternal when the size is not a multiple.
template <typename Native>
absl::StatusOr<size_t> ResultCount(std::span<const uint8_t> bytes) {
  if (bytes.size() % sizeof(Native) != 0) {
    return absl::InternalError(absl::StrCat("result body of ", bytes.size(),
                                            " bytes is not a multiple of ", sizeof(Native)));
  }
  return bytes.size() / sizeof(Native);
}

absl::Status AccountToNative(const v1::Account& account, int index, Account* out) {
  *out = Account{};
  const char* list = "accounts";
  TB_RETURN_IF_ERROR(ReadU128(account.has_id(), account.id(), Presence::kRequired,
                              {list, index, "id"}, &out->id));
  TB_RETURN_IF_ERROR(ReadU128(account.has_debits_pending(), account.debits_pending(),
                              Presence::kOptional, {list, index, "debits_pending"},
                              &out->debits_pending));
  TB_RETURN_IF_ERROR(ReadU128(account.has_debits_posted(), account.debits_posted(),
                              Presence::kOptional, {list, index, "debits_posted"},
                              &out->debits_posted));
  TB_RETURN_IF_ERROR(ReadU128(account.has_credits_pending(), account.credits_pending(),
                              Presence::kOptional, {list, index, "credits_pending"},
                              &out->credits_pending));
  TB_RETURN_IF_ERROR(ReadU128(account.has_credits_posted(), account.credits_posted(),
                              Presence::kOptional, {list, index, "credits_posted"},
                              &out->credits_posted));
  TB_RETURN_IF_ERROR(ReadU128(account.has_user_data_128(), account.user_data_128(),
                              Presence::kOptional, {list, index, "user_data_128"},
                              &out->user_data_128));
  out->user_data_64 = account.user_data_64();
  out->user_data_32 = account.user_data_32();
  out->ledger = account.ledger();
  TB_RETURN_IF_ERROR(ReadU16(account.code(), {list, index, "code"}, &out->code));
  TB_RETURN_IF_ERROR(ReadU16(account.flags(), {list, index, "flags"}, &out->flags));
  out->timestamp = account.timestamp();
  return absl::OkStatus();
}

absl::Status TransferToNative(const v1::Transfer& transfer, int index, Transfer* out) {
  *out = Transfer{};
  const char* list = "transfers";
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_id(), transfer.id(), Presence::kRequired,
                              {list, index, "id"}, &out->id));
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_debit_account_id(), transfer.debit_account_id(),
                              Presence::kRequired, {list, index, "debit_account_id"},
                              &out->debit_account_id));
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_credit_account_id(), transfer.credit_account_id(),
                              Presence::kRequired, {list, index, "credit_account_id"},
                              &out->credit_account_id));
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_amount(), transfer.amount(), Presence::kOptional,
                              {list, index, "amount"}, &out->amount));
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_pending_id(), transfer.pending_id(),
                              Presence::kOptional, {list, index, "pending_id"},
                              &out->pending_id));
  TB_RETURN_IF_ERROR(ReadU128(transfer.has_user_data_128(), transfer.user_data_128(),
                              Presence::kOptional, {list, index, "user_data_128"},
                              &out->user_data_128));
  out->user_data_64 = transfer.user_data_64();
  out->user_data_32 = transfer.user_data_32();
  out->timeout = transfer.timeout();
  out->ledger = transfer.ledger();
  TB_RETURN_IF_ERROR(ReadU16(transfer.code(), {list, index, "code"}, &out->code));
  TB_RETURN_IF_ERROR(ReadU16(transfer.flags(), {list, index, "flags"}, &out->flags));
  out->timestamp = transfer.timestamp();
  return absl::OkStatus();
}

absl::StatusOr<SubmitRequest> AccountFilterRequest(bool has_filter,
                                                   const v1::AccountFilter& filter,
                                                   Operation operation) {
  if (!has_filter) return absl::InvalidArgumentError("filter: required");
  AccountFilter native{};
  TB_RETURN_IF_ERROR(ReadU128(filter.has_account_id(), filter.account_id(), Presence::kRequired,
                              {"filter", -1, "account_id"}, &native.account_id));
  TB_RETURN_IF_ERROR(ReadU128(filter.has_user_data_128(), filter.user_data_128(),
                              Presence::kOptional, {"filter", -1, "user_data_128"},
                              &native.user_data_128));
  native.user_data_64 = filter.user_data_64();
  native.user_data_32 = filter.user_data_32();
  TB_RETURN_IF_ERROR(ReadU16(filter.code(), {"filter", -1, "code"}, &native.code));
  native.timestamp_min = filter.timestamp_min();
  native.timestamp_max = filter.timestamp_max();
  native.limit = filter.limit();
  native.flags = filter.flags();
  SubmitRequest request{.operation = static_cast<uint8_t>(operation)};
  Append(native, &request.events);
  return request;
}

absl::StatusOr<SubmitRequest> QueryFilterRequest(bool has_filter, const v1::QueryFilter& filter,
                                                 Operation operation) {
  if (!has_filter) return absl::InvalidArgumentError("filter: required");
  QueryFilter native{};
  TB_RETURN_IF_ERROR(ReadU128(filter.has_user_data_128(), filter.user_data_128(),
                              Presence::kOptional, {"filter", -1, "user_data_128"},
                              &native.user_data_128));
  native.user_data_64 = filter.user_data_64();
  native.user_data_32 = filter.user_data_32();
  native.ledger = filter.ledger();
  TB_RETURN_IF_ERROR(ReadU16(filter.code(), {"filter", -1, "code"}, &native.code));
  native.timestamp_min = filter.timestamp_min();
  native.timestamp_max = filter.timestamp_max();
  native.limit = filter.limit();
  native.flags = filter.flags();
  SubmitRequest request{.operation = static_cast<uint8_t>(operation)};
  Append(native, &request.events);
  return request;
}

template <typename Ids>
absl::StatusOr<SubmitRequest> LookupRequest(const Ids& ids, Operation operation) {
  SubmitRequest request{.operation = static_cast<uint8_t>(operation)};
  TB_RETURN_IF_ERROR(CheckCount(ids.size(), request.operation, "ids"));
  request.events.reserve(ids.size() * sizeof(u128));
  for (int i = 0; i < ids.size(); ++i) {
    u128 id = 0;
    // Every element of a repeated message field is present; only malformed ones are refused.
    TB_RETURN_IF_ERROR(ReadU128(true, ids.Get(i), Presence::kRequired, {"ids", i, ""}, &id));
    Append(id, &request.events);
  }
  return request;
}

void AccountToProto(const Account& account, v1::Account* out) {
  ToProto(account.id, out->mutable_id());
  ToProto(account.debits_pending, out->mutable_debits_pending());
  ToProto(account.debits_posted, out->mutable_debits_posted());
  ToProto(account.credits_pending, out->mutable_credits_pending());
  ToProto(account.credits_posted, out->mutable_credits_posted());
  ToProto(account.user_data_128, out->mutable_user_data_128());
  out->set_user_data_64(account.user_data_64);
  out->set_user_data_32(account.user_data_32);
  out->set_ledger(account.ledger);
  out->set_code(account.code);
  out->set_flags(account.flags);
  out->set_timestamp(account.timestamp);
}

void TransferToProto(const Transfer& transfer, v1::Transfer* out) {
  ToProto(transfer.id, out->mutable_id());
  ToProto(transfer.debit_account_id, out->mutable_debit_account_id());
  ToProto(transfer.credit_account_id, out->mutable_credit_account_id());
  ToProto(transfer.amount, out->mutable_amount());
  ToProto(transfer.pending_id, out->mutable_pending_id());
  ToProto(transfer.user_data_128, out->mutable_user_data_128());
  out->set_user_data_64(transfer.user_data_64);
  out->set_user_data_32(transfer.user_data_32);
  out->set_timeout(transfer.timeout);
  out->set_ledger(transfer.ledger);
  out->set_code(transfer.code);
  out->set_flags(transfer.flags);
  out->set_timestamp(transfer.timestamp);
}

void BalanceToProto(const AccountBalance& balance, v1::AccountBalance* out) {
  ToProto(balance.debits_pending, out->mutable_debits_pending());
  ToProto(balance.debits_posted, out->mutable_debits_posted());
  ToProto(balance.credits_pending, out->mutable_credits_pending());
  ToProto(balance.credits_posted, out->mutable_credits_posted());
  out->set_timestamp(balance.timestamp);
}

void ChangeEventToProto(const ChangeEvent& event, v1::ChangeEvent* out) {
  ToProto(event.transfer_id, out->mutable_transfer_id());
  ToProto(event.transfer_amount, out->mutable_transfer_amount());
  ToProto(event.transfer_pending_id, out->mutable_transfer_pending_id());
  ToProto(event.transfer_user_data_128, out->mutable_transfer_user_data_128());
  out->set_transfer_user_data_64(event.transfer_user_data_64);
  out->set_transfer_user_data_32(event.transfer_user_data_32);
  out->set_transfer_timeout(event.transfer_timeout);
  out->set_transfer_code(event.transfer_code);
  out->set_transfer_flags(event.transfer_flags);
  out->set_ledger(event.ledger);
  // proto3 enums are open: a type a newer cluster adds arrives as its number.
  out->set_type(static_cast<v1::ChangeEventType>(event.type));
  ToProto(event.debit_account_id, out->mutable_debit_account_id());
  ToProto(event.debit_account_debits_pending, out->mutable_debit_account_debits_pending());
  ToProto(event.debit_account_debits_posted, out->mutable_debit_account_debits_posted());
  ToProto(event.debit_account_credits_pending, out->mutable_debit_account_credits_pending());
  ToProto(event.debit_account_credits_posted, out->mutable_debit_account_credits_posted());
  ToProto(event.debit_account_user_data_128, out->mutable_debit_account_user_data_128());
  out->set_debit_account_user_data_64(event.debit_account_user_data_64);
  out->set_debit_account_user_data_32(event.debit_account_user_data_32);
  out->set_debit_account_code(event.debit_account_code);
  out->set_debit_account_flags(event.debit_account_flags);
  ToProto(event.credit_account_id, out->mutable_credit_account_id());
  ToProto(event.credit_account_debits_pending, out->mutable_credit_account_debits_pending());
  ToProto(event.credit_account_debits_posted, out->mutable_credit_account_debits_posted());
  ToProto(event.credit_account_credits_pending, out->mutable_credit_account_credits_pending());
  ToProto(event.credit_account_credits_posted, out->mutable_credit_account_credits_posted());
  ToProto(event.credit_account_user_data_128, out->mutable_credit_account_user_data_128());
  out->set_credit_account_user_data_64(event.credit_account_user_data_64);
  out->set_credit_account_user_data_32(event.credit_account_user_data_32);
  out->set_credit_account_code(event.credit_account_code);
  out->set_credit_account_flags(event.credit_account_flags);
  out->set_timestamp(event.timestamp);
  out->set_transfer_timestamp(event.transfer_timestamp);
  out->set_debit_account_timestamp(event.debit_account_timestamp);
  out->set_credit_account_timestamp(event.credit_account_timestamp);
}

// Converts every native result with `convert(native, repeated.Add())`.
template <typename Native, typename Repeated, typename Convert>
absl::Status ConvertResults(std::span<const uint8_t> bytes, Repeated* out, Convert convert) {
  TB_ASSIGN_OR_RETURN(const size_t count, ResultCount<Native>(bytes));
  out->Reserve(static_cast<int>(count));
  for (size_t i = 0; i < count; ++i) convert(ReadAt<Native>(bytes, i), out->Add());
  return absl::OkStatus();
}

// The enum numbers are TigerBeetle's codes reinterpreted as int32 (created = -1).
template <typename StatusEnum, typename ProtoResult>
void CreateResultToProto(const CreateResult& result, ProtoResult* out) {
  out->set_timestamp(result.timestamp);
  out->set_status(static_cast<StatusEnum>(static_cast<int32_t>(result.status)));
  out->set_status_code(result.status);
}

}  // namespace

uint32_t CallEventsMax(uint8_t operation) {
  const OperationInfo* info = FindOperation(operation);
  TB_ASSERT(info != nullptr);
  return EventMax(*info, kBatchSizeLimitMax);
}

bool IsCreateOperation(uint8_t operation) {
  return operation == static_cast<uint8_t>(Operation::kCreateAccounts) ||
         operation == static_cast<uint8_t>(Operation::kCreateTransfers) ||
         operation == static_cast<uint8_t>(Operation::kDeprecatedCreateAccountsUnbatched) ||
         operation == static_cast<uint8_t>(Operation::kDeprecatedCreateTransfersUnbatched) ||
         operation == static_cast<uint8_t>(Operation::kDeprecatedCreateAccountsSparse) ||
         operation == static_cast<uint8_t>(Operation::kDeprecatedCreateTransfersSparse);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::CreateAccountsRequest& request) {
  SubmitRequest out{.operation = static_cast<uint8_t>(Operation::kCreateAccounts)};
  TB_RETURN_IF_ERROR(CheckCount(request.accounts_size(), out.operation, "accounts"));
  out.events.reserve(request.accounts_size() * sizeof(Account));
  for (int i = 0; i < request.accounts_size(); ++i) {
    Account account;
    TB_RETURN_IF_ERROR(AccountToNative(request.accounts(i), i, &account));
    Append(account, &out.events);
  }
  return out;
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::CreateTransfersRequest& request) {
  SubmitRequest out{.operation = static_cast<uint8_t>(Operation::kCreateTransfers)};
  TB_RETURN_IF_ERROR(CheckCount(request.transfers_size(), out.operation, "transfers"));
  out.events.reserve(request.transfers_size() * sizeof(Transfer));
  for (int i = 0; i < request.transfers_size(); ++i) {
    Transfer transfer;
    TB_RETURN_IF_ERROR(TransferToNative(request.transfers(i), i, &transfer));
    Append(transfer, &out.events);
  }
  return out;
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::LookupAccountsRequest& request) {
  return LookupRequest(request.ids(), Operation::kLookupAccounts);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::LookupTransfersRequest& request) {
  return LookupRequest(request.ids(), Operation::kLookupTransfers);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountTransfersRequest& request) {
  return AccountFilterRequest(request.has_filter(), request.filter(),
                              Operation::kGetAccountTransfers);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountBalancesRequest& request) {
  return AccountFilterRequest(request.has_filter(), request.filter(),
                              Operation::kGetAccountBalances);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryAccountsRequest& request) {
  return QueryFilterRequest(request.has_filter(), request.filter(), Operation::kQueryAccounts);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryTransfersRequest& request) {
  return QueryFilterRequest(request.has_filter(), request.filter(), Operation::kQueryTransfers);
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetChangeEventsRequest& request) {
  if (!request.has_filter()) return absl::InvalidArgumentError("filter: required");
  ChangeEventsFilter native{};
  native.timestamp_min = request.filter().timestamp_min();
  native.timestamp_max = request.filter().timestamp_max();
  native.limit = request.filter().limit();
  SubmitRequest out{.operation = static_cast<uint8_t>(Operation::kGetChangeEvents)};
  Append(native, &out.events);
  return out;
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::RawRequest& request) {
  const uint32_t operation = request.operation();
  if (operation > 0xFF || !IsForwardableOperation(static_cast<uint8_t>(operation))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "operation: ", operation, " is not accepted (allowed: 137 and 140..147)"));
  }
  const OperationInfo* info = FindOperation(static_cast<uint8_t>(operation));
  TB_ASSERT(info != nullptr);
  TB_ASSERT(info->event_size > 0);
  const size_t size = request.events().size();
  if (size % info->event_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("events: ", size, " bytes is not a whole number of ", info->event_size,
                     "-byte ", info->name, " events"));
  }
  TB_RETURN_IF_ERROR(CheckCount(static_cast<int>(size / info->event_size),
                                static_cast<uint8_t>(operation), "events"));
  SubmitRequest out{.operation = static_cast<uint8_t>(operation)};
  out.events.assign(request.events().begin(), request.events().end());
  return out;
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::CreateAccountsResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<CreateResult>(
      result.results, response->mutable_results(),
      [](const CreateResult& native, v1::CreateAccountResult* out) {
        CreateResultToProto<v1::CreateAccountStatus>(native, out);
      });
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::CreateTransfersResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<CreateResult>(
      result.results, response->mutable_results(),
      [](const CreateResult& native, v1::CreateTransferResult* out) {
        CreateResultToProto<v1::CreateTransferStatus>(native, out);
      });
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::LookupAccountsResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<Account>(result.results, response->mutable_accounts(), AccountToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::LookupTransfersResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<Transfer>(result.results, response->mutable_transfers(),
                                  TransferToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result,
                              v1::GetAccountTransfersResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<Transfer>(result.results, response->mutable_transfers(),
                                  TransferToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result,
                              v1::GetAccountBalancesResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<AccountBalance>(result.results, response->mutable_balances(),
                                        BalanceToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::QueryAccountsResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<Account>(result.results, response->mutable_accounts(), AccountToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::QueryTransfersResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<Transfer>(result.results, response->mutable_transfers(),
                                  TransferToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::GetChangeEventsResponse* response) {
  response->set_timestamp(result.timestamp);
  return ConvertResults<ChangeEvent>(result.results, response->mutable_events(),
                                     ChangeEventToProto);
}

absl::Status FromSubmitResult(const SubmitResult& result, v1::RawResponse* response) {
  response->set_timestamp(result.timestamp);
  response->set_results(result.results.data(), result.results.size());
  return absl::OkStatus();
}

}  // namespace tb::proxy
