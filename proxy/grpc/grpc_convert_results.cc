// Native results -> protobuf responses (the other half of proxy/grpc/grpc_convert.h).
#include <cstring>
#include <span>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/status_macros.h"
#include "client_core/types.h"
#include "proxy/grpc/grpc_convert.h"

namespace tb::proxy {
namespace {

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
