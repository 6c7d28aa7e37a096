#include "proxy/grpc/grpc_convert.h"

#include <cstddef>
#include <cstring>
#include <iterator>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

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
  // Looked up once: GetReflection() per value was a measurable share of a typed call's cost.
  static const google::protobuf::Reflection* const reflection = v1::Uint128::GetReflection();
  if (!reflection->GetUnknownFields(value).empty()) {
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

// One u128 or u16 field of a request message and where it lands in the native struct. The
// tables below list each message's checked fields in the order they are checked, so the first
// bad field is the one reported.
template <typename Proto, typename Native>
struct U128Field {
  const char* name;  // As in the proto, for error paths.
  bool (Proto::*has)() const;
  const v1::Uint128& (Proto::*value)() const;
  u128 Native::*native;
  Presence presence;
};

template <typename Proto, typename Native>
struct U16Field {
  const char* name;
  uint32_t (Proto::*value)() const;
  uint16_t Native::*native;
};

// The proto and native structs name their fields alike; the macros keep the error path, the
// proto accessors and the native member from drifting apart.
#define TB_U128_FIELD(Proto, Native, field, presence) \
  U128Field<Proto, Native> { #field, &Proto::has_##field, &Proto::field, &Native::field, presence }
#define TB_U16_FIELD(Proto, Native, field) \
  U16Field<Proto, Native> { #field, &Proto::field, &Native::field }

constexpr Presence kRequired = Presence::kRequired;
constexpr Presence kOptional = Presence::kOptional;

constexpr U128Field<v1::Account, Account> kAccountU128Fields[] = {
    TB_U128_FIELD(v1::Account, Account, id, kRequired),
    TB_U128_FIELD(v1::Account, Account, debits_pending, kOptional),
    TB_U128_FIELD(v1::Account, Account, debits_posted, kOptional),
    TB_U128_FIELD(v1::Account, Account, credits_pending, kOptional),
    TB_U128_FIELD(v1::Account, Account, credits_posted, kOptional),
    TB_U128_FIELD(v1::Account, Account, user_data_128, kOptional),
};
constexpr U16Field<v1::Account, Account> kAccountU16Fields[] = {
    TB_U16_FIELD(v1::Account, Account, code),
    TB_U16_FIELD(v1::Account, Account, flags),
};

constexpr U128Field<v1::Transfer, Transfer> kTransferU128Fields[] = {
    TB_U128_FIELD(v1::Transfer, Transfer, id, kRequired),
    TB_U128_FIELD(v1::Transfer, Transfer, debit_account_id, kRequired),
    TB_U128_FIELD(v1::Transfer, Transfer, credit_account_id, kRequired),
    TB_U128_FIELD(v1::Transfer, Transfer, amount, kOptional),
    TB_U128_FIELD(v1::Transfer, Transfer, pending_id, kOptional),
    TB_U128_FIELD(v1::Transfer, Transfer, user_data_128, kOptional),
};
constexpr U16Field<v1::Transfer, Transfer> kTransferU16Fields[] = {
    TB_U16_FIELD(v1::Transfer, Transfer, code),
    TB_U16_FIELD(v1::Transfer, Transfer, flags),
};

constexpr U128Field<v1::AccountFilter, AccountFilter> kAccountFilterU128Fields[] = {
    TB_U128_FIELD(v1::AccountFilter, AccountFilter, account_id, kRequired),
    TB_U128_FIELD(v1::AccountFilter, AccountFilter, user_data_128, kOptional),
};
constexpr U16Field<v1::AccountFilter, AccountFilter> kAccountFilterU16Fields[] = {
    TB_U16_FIELD(v1::AccountFilter, AccountFilter, code),
};

constexpr U128Field<v1::QueryFilter, QueryFilter> kQueryFilterU128Fields[] = {
    TB_U128_FIELD(v1::QueryFilter, QueryFilter, user_data_128, kOptional),
};
constexpr U16Field<v1::QueryFilter, QueryFilter> kQueryFilterU16Fields[] = {
    TB_U16_FIELD(v1::QueryFilter, QueryFilter, code),
};

#undef TB_U128_FIELD
#undef TB_U16_FIELD

template <typename Proto, typename Native>
absl::Status ReadField(const U128Field<Proto, Native>& field, const Proto& proto,
                       const char* list, int index, Native* out) {
  return ReadU128((proto.*field.has)(), (proto.*field.value)(), field.presence,
                  {list, index, field.name}, &(out->*field.native));
}

template <typename Proto, typename Native>
absl::Status ReadField(const U16Field<Proto, Native>& field, const Proto& proto, const char* list,
                       int index, Native* out) {
  return ReadU16((proto.*field.value)(), {list, index, field.name}, &(out->*field.native));
}

// Reads the fields of `Table` in order and stops at the first bad one. Unrolled at compile
// time, so each accessor is a direct (inlined) call as if written out: a loop over the table
// called every accessor through a pointer and made a typed call's conversion about half again
// as slow.
template <const auto& Table, typename Proto, typename Native, size_t... I>
absl::Status ReadTable(const Proto& proto, const char* list, int index, Native* out,
                       std::index_sequence<I...>) {
  absl::Status status;
  (void)((status = ReadField(Table[I], proto, list, index, out)).ok() && ...);
  return status;
}

// Reads the u128 fields, then the u16 fields, of one message. `list` and `index` place the
// message in the request ("accounts", 3; "filter", -1).
template <const auto& U128s, const auto& U16s, typename Proto, typename Native>
absl::Status ReadFields(const Proto& proto, const char* list, int index, Native* out) {
  TB_RETURN_IF_ERROR(ReadTable<U128s>(proto, list, index, out,
                                      std::make_index_sequence<std::size(U128s)>()));
  return ReadTable<U16s>(proto, list, index, out, std::make_index_sequence<std::size(U16s)>());
}

absl::Status AccountToNative(const v1::Account& account, int index, Account* out) {
  *out = Account{};
  TB_RETURN_IF_ERROR(
      (ReadFields<kAccountU128Fields, kAccountU16Fields>(account, "accounts", index, out)));
  out->user_data_64 = account.user_data_64();
  out->user_data_32 = account.user_data_32();
  out->ledger = account.ledger();
  out->timestamp = account.timestamp();
  return absl::OkStatus();
}

absl::Status TransferToNative(const v1::Transfer& transfer, int index, Transfer* out) {
  *out = Transfer{};
  TB_RETURN_IF_ERROR(
      (ReadFields<kTransferU128Fields, kTransferU16Fields>(transfer, "transfers", index, out)));
  out->user_data_64 = transfer.user_data_64();
  out->user_data_32 = transfer.user_data_32();
  out->timeout = transfer.timeout();
  out->ledger = transfer.ledger();
  out->timestamp = transfer.timestamp();
  return absl::OkStatus();
}

absl::StatusOr<SubmitRequest> AccountFilterRequest(bool has_filter,
                                                   const v1::AccountFilter& filter,
                                                   uint8_t operation) {
  if (!has_filter) return absl::InvalidArgumentError("filter: required");
  AccountFilter native{};
  TB_RETURN_IF_ERROR((ReadFields<kAccountFilterU128Fields, kAccountFilterU16Fields>(
      filter, "filter", -1, &native)));
  native.user_data_64 = filter.user_data_64();
  native.user_data_32 = filter.user_data_32();
  native.timestamp_min = filter.timestamp_min();
  native.timestamp_max = filter.timestamp_max();
  native.limit = filter.limit();
  native.flags = filter.flags();
  SubmitRequest request{.operation = operation};
  Append(native, &request.events);
  return request;
}

absl::StatusOr<SubmitRequest> QueryFilterRequest(bool has_filter, const v1::QueryFilter& filter,
                                                 uint8_t operation) {
  if (!has_filter) return absl::InvalidArgumentError("filter: required");
  QueryFilter native{};
  TB_RETURN_IF_ERROR(
      (ReadFields<kQueryFilterU128Fields, kQueryFilterU16Fields>(filter, "filter", -1, &native)));
  native.user_data_64 = filter.user_data_64();
  native.user_data_32 = filter.user_data_32();
  native.ledger = filter.ledger();
  native.timestamp_min = filter.timestamp_min();
  native.timestamp_max = filter.timestamp_max();
  native.limit = filter.limit();
  native.flags = filter.flags();
  SubmitRequest request{.operation = operation};
  Append(native, &request.events);
  return request;
}

template <typename Ids>
absl::StatusOr<SubmitRequest> LookupRequest(const Ids& ids, uint8_t operation) {
  SubmitRequest request{.operation = operation};
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
  SubmitRequest out{.operation = OperationOf(request)};
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
  SubmitRequest out{.operation = OperationOf(request)};
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
  return LookupRequest(request.ids(), OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::LookupTransfersRequest& request) {
  return LookupRequest(request.ids(), OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountTransfersRequest& request) {
  return AccountFilterRequest(request.has_filter(), request.filter(),
                              OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetAccountBalancesRequest& request) {
  return AccountFilterRequest(request.has_filter(), request.filter(),
                              OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryAccountsRequest& request) {
  return QueryFilterRequest(request.has_filter(), request.filter(), OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::QueryTransfersRequest& request) {
  return QueryFilterRequest(request.has_filter(), request.filter(), OperationOf(request));
}

absl::StatusOr<SubmitRequest> ToSubmitRequest(const v1::GetChangeEventsRequest& request) {
  if (!request.has_filter()) return absl::InvalidArgumentError("filter: required");
  ChangeEventsFilter native{};
  native.timestamp_min = request.filter().timestamp_min();
  native.timestamp_max = request.filter().timestamp_max();
  native.limit = request.filter().limit();
  SubmitRequest out{.operation = OperationOf(request)};
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

}  // namespace tb::proxy
