#include "bench/loadgen/workload.h"

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/session.h"
#include "client_core/types.h"

namespace tb::bench {
namespace {

constexpr uint32_t kEventsMax = 8189;
constexpr uint32_t kCreated = 0xFFFFFFFF;
// Id namespaces below the run tag (high 64 bits): bits 62..63 of the low half.
constexpr uint64_t kTransferSpace = 0;
constexpr uint64_t kAccountSpace = uint64_t{1} << 62;
constexpr uint64_t kSeedTransferSpace = uint64_t{2} << 62;
constexpr uint64_t kExtraAccountSpace = uint64_t{3} << 62;

uint64_t Mix64(uint64_t x) {  // splitmix64 finaliser: spreads a counter over all bits.
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

absl::StatusOr<std::vector<MixEntry>> ParseMix(const std::string& text) {
  std::vector<MixEntry> mix;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(part, ':');
    uint32_t weight = 1;
    if (fields.size() > 2 || (fields.size() == 2 && (!absl::SimpleAtoi(fields[1], &weight) ||
                                                     weight == 0 || weight > 1000000))) {
      return absl::InvalidArgumentError(absl::StrCat("--mix: bad entry \"", part, "\""));
    }
    Operation operation;
    if (fields[0] == "create_transfers") {
      operation = Operation::kCreateTransfers;
    } else if (fields[0] == "create_accounts") {
      operation = Operation::kCreateAccounts;
    } else if (fields[0] == "lookup_accounts") {
      operation = Operation::kLookupAccounts;
    } else if (fields[0] == "lookup_transfers") {
      operation = Operation::kLookupTransfers;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--mix: unknown operation \"", fields[0],
                                                     "\""));
    }
    mix.push_back({operation, weight});
  }
  if (mix.empty()) return absl::InvalidArgumentError("--mix: no operation");
  return mix;
}

Workload::Workload(WorkloadOptions options)
    : options_(std::move(options)),
      run_tag_(options_.run_tag != 0 ? options_.run_tag
                                     : static_cast<uint64_t>(RandomClientId()) | 1) {
  TB_ASSERT(options_.events_per_call >= 1 && options_.events_per_call <= kEventsMax);
  TB_ASSERT(options_.accounts >= 2 && options_.accounts <= kEventsMax);
  TB_ASSERT(options_.seed_transfers >= 1 && options_.seed_transfers <= kEventsMax);
  TB_ASSERT(!options_.mix.empty());
  for (const MixEntry& entry : options_.mix) weight_total_ += entry.weight;
}

u128 Workload::AccountId(uint32_t index) const {
  return MakeU128(run_tag_, kAccountSpace | (index + 1));
}

u128 Workload::SeedTransferId(uint32_t index) const {
  return MakeU128(run_tag_, kSeedTransferSpace | (index + 1));
}

std::vector<std::shared_ptr<const Call>> Workload::SetupCalls() const {
  auto accounts = std::make_shared<Call>();
  accounts->operation = Operation::kCreateAccounts;
  accounts->event_count = options_.accounts;
  for (uint32_t i = 0; i < options_.accounts; i++) {
    Account account{};
    account.id = AccountId(i);
    account.ledger = options_.ledger;
    account.code = 1;
    AppendStruct(&accounts->events, account);
  }
  auto transfers = std::make_shared<Call>();
  transfers->operation = Operation::kCreateTransfers;
  transfers->event_count = options_.seed_transfers;
  for (uint32_t i = 0; i < options_.seed_transfers; i++) {
    Transfer transfer{};
    transfer.id = SeedTransferId(i);
    transfer.debit_account_id = AccountId(i % options_.accounts);
    transfer.credit_account_id = AccountId((i + 1) % options_.accounts);
    transfer.amount = 1;
    transfer.ledger = options_.ledger;
    transfer.code = 1;
    AppendStruct(&transfers->events, transfer);
  }
  return {accounts, transfers};
}

void Workload::CreateTransfers(uint32_t event_count, Call* call) {
  call->operation = Operation::kCreateTransfers;
  call->event_count = event_count;
  call->lookup_ids.clear();
  call->expect_found = true;
  call->events.resize(event_count * sizeof(Transfer));
  const uint64_t first = next_transfer_.fetch_add(event_count, std::memory_order_relaxed);
  const uint32_t accounts = options_.accounts;
  for (uint32_t i = 0; i < event_count; i++) {
    const uint64_t n = first + i;
    const uint64_t hash = Mix64(n);
    const uint32_t debit = static_cast<uint32_t>(hash % accounts);
    const uint32_t credit =
        static_cast<uint32_t>((debit + 1 + (hash >> 32) % (accounts - 1)) % accounts);
    TB_ASSERT(debit != credit);
    Transfer transfer{};
    transfer.id = MakeU128(run_tag_, kTransferSpace | n);
    transfer.debit_account_id = AccountId(debit);
    transfer.credit_account_id = AccountId(credit);
    transfer.amount = 1;
    transfer.ledger = options_.ledger;
    transfer.code = 1;
    std::memcpy(call->events.data() + i * sizeof(Transfer), &transfer, sizeof(Transfer));
  }
}

void Workload::CreateAccounts(uint32_t event_count, Call* call) {
  call->operation = Operation::kCreateAccounts;
  call->event_count = event_count;
  call->lookup_ids.clear();
  call->expect_found = true;
  call->events.resize(event_count * sizeof(Account));
  const uint64_t first = next_account_.fetch_add(event_count, std::memory_order_relaxed);
  for (uint32_t i = 0; i < event_count; i++) {
    Account account{};
    account.id = MakeU128(run_tag_, kExtraAccountSpace | (first + i));
    account.ledger = options_.ledger;
    account.code = 1;
    std::memcpy(call->events.data() + i * sizeof(Account), &account, sizeof(Account));
  }
}

void Workload::Lookup(Operation operation, uint64_t sequence, Call* call) {
  call->operation = operation;
  call->event_count = options_.events_per_call;
  call->expect_found = !options_.echo;
  call->lookup_ids.clear();
  call->events.resize(call->event_count * sizeof(u128));
  const bool accounts = operation == Operation::kLookupAccounts;
  const uint32_t population = accounts ? options_.accounts : options_.seed_transfers;
  for (uint32_t i = 0; i < call->event_count; i++) {
    const uint32_t index = static_cast<uint32_t>(Mix64(sequence * kEventsMax + i) % population);
    const u128 id = accounts ? AccountId(index) : SeedTransferId(index);
    call->lookup_ids.push_back(id);
    std::memcpy(call->events.data() + i * sizeof(u128), &id, sizeof(u128));
  }
}

std::shared_ptr<const Call> Workload::NextCall(uint64_t sequence) {
  auto call = std::make_shared<Call>();
  FillNextCall(sequence, call.get());
  return call;
}

void Workload::FillNextCall(uint64_t sequence, Call* call) {
  uint32_t pick = static_cast<uint32_t>(Mix64(sequence ^ 0x5EED) % weight_total_);
  Operation operation = options_.mix.back().operation;
  for (const MixEntry& entry : options_.mix) {
    if (pick < entry.weight) {
      operation = entry.operation;
      break;
    }
    pick -= entry.weight;
  }
  switch (operation) {
    case Operation::kCreateTransfers:
      CreateTransfers(options_.events_per_call, call);
      return;
    case Operation::kCreateAccounts:
      CreateAccounts(options_.events_per_call, call);
      return;
    default:
      Lookup(operation, sequence, call);
      return;
  }
}

absl::Status CheckCreateStatuses(const Call& call, std::span<const uint32_t> statuses) {
  if (statuses.size() != call.event_count) {
    return absl::DataLossError(absl::StrCat("create: ", statuses.size(), " results for ",
                                            call.event_count, " events"));
  }
  for (size_t i = 0; i < statuses.size(); i++) {
    if (statuses[i] != kCreated) {
      const char* name = call.operation == Operation::kCreateAccounts
                             ? CreateAccountStatusName(statuses[i])
                             : CreateTransferStatusName(statuses[i]);
      return absl::DataLossError(absl::StrCat("create: event ", i, " answered ", name, " (",
                                              statuses[i], ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckLookupIds(const Call& call, std::span<const u128> found_ids) {
  if (!call.expect_found) {
    if (!found_ids.empty()) {
      return absl::DataLossError(absl::StrCat("lookup: ", found_ids.size(),
                                              " found on a cluster that keeps nothing"));
    }
    return absl::OkStatus();
  }
  if (found_ids.size() != call.lookup_ids.size()) {
    return absl::DataLossError(absl::StrCat("lookup: ", found_ids.size(), " found of ",
                                            call.lookup_ids.size()));
  }
  for (size_t i = 0; i < found_ids.size(); i++) {
    if (found_ids[i] != call.lookup_ids[i]) {
      return absl::DataLossError(absl::StrCat("lookup: result ", i, " has the wrong id"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNativeResults(const Call& call, std::span<const uint8_t> results) {
  const OperationInfo& info = GetOperationInfo(call.operation);
  if (results.size() % info.result_size != 0) {
    return absl::DataLossError(absl::StrCat("results of ", results.size(),
                                            " bytes are not whole results"));
  }
  const size_t count = results.size() / info.result_size;
  if (call.operation == Operation::kCreateTransfers ||
      call.operation == Operation::kCreateAccounts) {
    // The common case (every event created) is checked in place; anything else goes through
    // CheckCreateStatuses for its exact message.
    bool all_created = count == call.event_count;
    for (size_t i = 0; i < count && all_created; i++) {
      CreateResult result;
      std::memcpy(&result, results.data() + i * sizeof(result), sizeof(result));
      all_created = result.status == kCreated;
    }
    if (all_created) return absl::OkStatus();
    std::vector<uint32_t> statuses(count);
    for (size_t i = 0; i < count; i++) {
      CreateResult result;
      std::memcpy(&result, results.data() + i * sizeof(result), sizeof(result));
      statuses[i] = result.status;
    }
    return CheckCreateStatuses(call, statuses);
  }
  // Lookups: accounts and transfers both begin with their u128 id.
  std::vector<u128> ids(count);
  for (size_t i = 0; i < count; i++) {
    std::memcpy(&ids[i], results.data() + i * info.result_size, sizeof(u128));
  }
  return CheckLookupIds(call, ids);
}

}  // namespace tb::bench
