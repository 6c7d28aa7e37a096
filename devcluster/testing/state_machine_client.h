// Test helper: typed calls into a StateMachine through its wire interface (Execute), so unit
// tests and benchmarks read like client code.
//
//   StateMachine machine({});
//   StateMachineClient client(&machine);
//   std::vector<CreateResult> results = client.CreateAccounts({MakeAccount(1), MakeAccount(2)});
//
// (MakeAccount and MakeTransfer: client_core/testing/events.h.)
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"

namespace tb::devcluster::testing {

class StateMachineClient {
 public:
  explicit StateMachineClient(StateMachine* machine) : machine_(machine) {}

  // One request with one batch per element of `batches`; returns each reply batch's results.
  template <typename Result, typename Event>
  std::vector<std::vector<Result>> Request(Operation operation,
                                           const std::vector<std::vector<Event>>& batches) {
    const OperationInfo& info = GetOperationInfo(operation);
    TB_ASSERT(info.multi_batch && info.event_size == sizeof(Event) &&
              info.result_size == sizeof(Result));
    std::vector<std::span<const uint8_t>> spans;
    for (const std::vector<Event>& batch : batches) spans.push_back(StructsAsBytes(batch));
    const std::vector<uint8_t> body = EncodeMultiBatch(info.event_size, spans);
    last_reply_ = machine_->Execute(static_cast<uint8_t>(operation), body, now_ns);
    absl::StatusOr<MultiBatchView> decoded = DecodeMultiBatch(last_reply_.body, info.result_size);
    TB_ASSERT(decoded.ok());
    std::vector<std::vector<Result>> results;
    for (std::span<const uint8_t> batch : *decoded) results.push_back(StructsFromBytes<Result>(batch));
    return results;
  }

  template <typename Result, typename Event>
  std::vector<Result> Single(Operation operation, const std::vector<Event>& events) {
    std::vector<std::vector<Result>> results =
        Request<Result, Event>(operation, std::vector<std::vector<Event>>{events});
    TB_ASSERT(results.size() == 1);
    return results[0];
  }

  std::vector<CreateResult> CreateAccounts(const std::vector<Account>& events) {
    return Single<CreateResult>(Operation::kCreateAccounts, events);
  }
  std::vector<CreateResult> CreateTransfers(const std::vector<Transfer>& events) {
    return Single<CreateResult>(Operation::kCreateTransfers, events);
  }
  std::vector<Account> LookupAccounts(const std::vector<u128>& ids) {
    return Single<Account>(Operation::kLookupAccounts, ids);
  }
  std::vector<Transfer> LookupTransfers(const std::vector<u128>& ids) {
    return Single<Transfer>(Operation::kLookupTransfers, ids);
  }
  Account LookupAccount(u128 id) {
    std::vector<Account> accounts = LookupAccounts({id});
    TB_ASSERT(accounts.size() == 1);
    return accounts[0];
  }
  std::vector<Transfer> GetAccountTransfers(const AccountFilter& filter) {
    return Single<Transfer>(Operation::kGetAccountTransfers, std::vector<AccountFilter>{filter});
  }
  std::vector<AccountBalance> GetAccountBalances(const AccountFilter& filter) {
    return Single<AccountBalance>(Operation::kGetAccountBalances,
                                  std::vector<AccountFilter>{filter});
  }
  std::vector<Transfer> QueryTransfers(const QueryFilter& filter) {
    return Single<Transfer>(Operation::kQueryTransfers, std::vector<QueryFilter>{filter});
  }
  std::vector<ChangeEvent> GetChangeEvents(const ChangeEventsFilter& filter) {
    last_reply_ = machine_->Execute(static_cast<uint8_t>(Operation::kGetChangeEvents),
                                    StructsAsBytes(std::vector<ChangeEventsFilter>{filter}), now_ns);
    return StructsFromBytes<ChangeEvent>(last_reply_.body);
  }

  const ExecuteResult& last_reply() const { return last_reply_; }

  // Wall clock passed to every request.
  uint64_t now_ns = 0;

 private:
  StateMachine* machine_;
  ExecuteResult last_reply_{};
};

inline uint32_t Status(CreateTransferStatus status) { return static_cast<uint32_t>(status); }
inline uint32_t Status(CreateAccountStatus status) { return static_cast<uint32_t>(status); }

}  // namespace tb::devcluster::testing
