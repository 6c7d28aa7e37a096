// libFuzzer target: arbitrary request sequences against one StateMachine. Every body the
// replica would accept (tb::ValidateRequestBody) is executed; the machine must never trip an
// assertion, and every multi-batch reply must decode with the operation's result size.
//
// Input: a sequence of records [operation: u8][clock step: u8][size: u16 LE][body: size bytes].
// The clock step advances the wall clock by step × 10 ms before the request (0 = no change), so
// pending transfers with short timeouts expire along the way.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"
#include "devcluster/state_machine.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tb::devcluster::StateMachine machine({.batch_size_limit = tb::kBatchSizeLimitMax});
  std::span<const uint8_t> input(data, size);
  uint64_t now_ns = 1'000'000'000;
  while (input.size() >= 4) {
    const uint8_t operation = input[0];
    now_ns += uint64_t{input[1]} * 10'000'000;
    uint16_t body_size;
    std::memcpy(&body_size, input.data() + 2, sizeof(body_size));
    input = input.subspan(4);
    const std::span<const uint8_t> body = input.first(std::min<size_t>(body_size, input.size()));
    input = input.subspan(body.size());

    const tb::OperationInfo* info = tb::FindOperation(operation);
    if (info == nullptr || info->operation == tb::Operation::kStateMachinePulse) continue;
    if (!tb::ValidateRequestBody(*info, body, tb::kBatchSizeLimitMax).ok()) continue;
    const tb::devcluster::ExecuteResult reply = machine.Execute(operation, body, now_ns);
    TB_ASSERT(reply.timestamp <= machine.timestamp());
    if (info->multi_batch) {
      TB_ASSERT(tb::DecodeMultiBatch(reply.body, info->result_size).ok());
    } else {
      TB_ASSERT(reply.body.size() % info->result_size == 0);
    }
    machine.Tick(now_ns);
  }
  return 0;
}
