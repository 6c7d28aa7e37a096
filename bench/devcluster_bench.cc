// Throughput of the dev cluster's state machine on one core, through StateMachine::Execute with
// full multi-batch request bodies (encoding, execution and reply encoding included).
//
//   build/bench/devcluster_bench --benchmark_counters_tabular=true
//
// Reported counter: events_per_second (transfers created, or ids looked up, per second).

#include <cstdint>
#include <vector>

#include "benchmark/benchmark.h"
#include "client_core/assert.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/testing/events.h"
#include "client_core/types.h"
#include "devcluster/state_machine.h"
#include "devcluster/testing/state_machine_client.h"

namespace tb::devcluster {
namespace {

using client_core::testing::MakeAccount;
using client_core::testing::MakeTransfer;

constexpr uint32_t kBatchEvents = 8189;  // A full create_transfers request at the 1 MiB limit.
constexpr uint32_t kAccountCount = 10'000;

std::vector<uint8_t> Body(uint32_t element_size, std::span<const uint8_t> events) {
  const std::span<const uint8_t> batches[] = {events};
  return EncodeMultiBatch(element_size, batches);
}

void CreateAccounts(StateMachine& machine) {
  for (uint32_t first = 1; first <= kAccountCount; first += kBatchEvents) {
    std::vector<Account> accounts;
    for (uint32_t id = first; id < first + kBatchEvents && id <= kAccountCount; id++) {
      accounts.push_back(MakeAccount(id, account_flags::kHistory));
    }
    machine.Execute(146, Body(128, StructsAsBytes(accounts)), 0);
  }
}

// Fills `transfers` with a full batch of unique ids starting at `*next_id`, between pseudo-random
// distinct accounts; every `pending_every`-th one is pending (0 = none).
void NextBatch(uint64_t* next_id, uint32_t pending_every, std::vector<Transfer>& transfers) {
  transfers.clear();
  for (uint32_t i = 0; i < kBatchEvents; i++) {
    const uint64_t id = (*next_id)++;
    const uint64_t debit_index = (id * 7919) % kAccountCount;
    const uint64_t credit_index = (debit_index + 1 + id % (kAccountCount - 1)) % kAccountCount;
    const bool pending = pending_every != 0 && id % pending_every == 0;
    transfers.push_back(MakeTransfer(id, 1 + debit_index, 1 + credit_index, 1,
                                     pending ? transfer_flags::kPending : 0));
  }
}

void RunCreateTransfers(benchmark::State& state, uint32_t pending_every) {
  StateMachine machine({.transfer_count_reserve = 64 * kBatchEvents});
  CreateAccounts(machine);
  uint64_t next_id = 1;
  std::vector<Transfer> transfers;
  for (auto _ : state) {
    state.PauseTiming();
    NextBatch(&next_id, pending_every, transfers);
    const std::vector<uint8_t> body = Body(128, StructsAsBytes(transfers));
    state.ResumeTiming();
    ExecuteResult reply = machine.Execute(147, body, 0);
    benchmark::DoNotOptimize(reply.body.data());
  }
  TB_ASSERT(machine.database().transfer_count() == next_id - 1, "every transfer was created");
  state.counters["events_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatchEvents, benchmark::Counter::kIsRate);
}

void BM_CreateTransfersSinglePhase(benchmark::State& state) { RunCreateTransfers(state, 0); }
void BM_CreateTransfersTenthPending(benchmark::State& state) { RunCreateTransfers(state, 10); }

void BM_CreateTransfersLinkedPairs(benchmark::State& state) {
  StateMachine machine({});
  CreateAccounts(machine);
  uint64_t next_id = 1;
  std::vector<Transfer> transfers;
  for (auto _ : state) {
    state.PauseTiming();
    NextBatch(&next_id, 0, transfers);
    for (size_t i = 0; i + 1 < transfers.size(); i += 2) {
      transfers[i].flags |= transfer_flags::kLinked;
    }
    const std::vector<uint8_t> body = Body(128, StructsAsBytes(transfers));
    state.ResumeTiming();
    ExecuteResult reply = machine.Execute(147, body, 0);
    benchmark::DoNotOptimize(reply.body.data());
  }
  state.counters["events_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatchEvents, benchmark::Counter::kIsRate);
}

void BM_LookupTransfers(benchmark::State& state) {
  StateMachine machine({});
  CreateAccounts(machine);
  uint64_t next_id = 1;
  std::vector<Transfer> transfers;
  for (int batch = 0; batch < 64; batch++) {  // ~524k transfers.
    NextBatch(&next_id, 0, transfers);
    machine.Execute(147, Body(128, StructsAsBytes(transfers)), 0);
  }
  std::vector<u128> ids;
  for (uint32_t i = 0; i < kBatchEvents; i++) {
    ids.push_back(1 + (uint64_t{i} * 104729) % (next_id - 1));
  }
  const std::vector<uint8_t> body = Body(16, StructsAsBytes(ids));
  for (auto _ : state) {
    ExecuteResult reply = machine.Execute(141, body, 0);
    benchmark::DoNotOptimize(reply.body.data());
  }
  state.counters["events_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatchEvents, benchmark::Counter::kIsRate);
}

void BM_LookupAccounts(benchmark::State& state) {
  StateMachine machine({});
  CreateAccounts(machine);
  std::vector<u128> ids;
  for (uint32_t i = 0; i < kBatchEvents; i++) {
    ids.push_back(1 + (uint64_t{i} * 7919) % kAccountCount);
  }
  const std::vector<uint8_t> body = Body(16, StructsAsBytes(ids));
  for (auto _ : state) {
    ExecuteResult reply = machine.Execute(140, body, 0);
    benchmark::DoNotOptimize(reply.body.data());
  }
  state.counters["events_per_second"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * kBatchEvents, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_CreateTransfersSinglePhase)->Unit(benchmark::kMillisecond)->Iterations(64);
BENCHMARK(BM_CreateTransfersTenthPending)->Unit(benchmark::kMillisecond)->Iterations(64);
BENCHMARK(BM_CreateTransfersLinkedPairs)->Unit(benchmark::kMillisecond)->Iterations(64);
BENCHMARK(BM_LookupTransfers)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LookupAccounts)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tb::devcluster

BENCHMARK_MAIN();
