// Codec throughput: the checksum (both implementations) in bytes per second, and multi-batch
// encode/decode in events per second. Run: build/bench/codec_bench [--benchmark_filter=...].
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "client_core/checksum.h"
#include "client_core/constants.h"
#include "client_core/header.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/request_validation.h"
#include "client_core/types.h"

namespace {

std::vector<uint8_t> RandomBytes(size_t size) {
  std::mt19937 random(1);
  std::vector<uint8_t> bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

void BM_Checksum(benchmark::State& state, tb::ChecksumImplementation implementation) {
  if (implementation == tb::ChecksumImplementation::kAesNi && !tb::ChecksumAesNiAvailable()) {
    state.SkipWithError("no AES-NI on this CPU");
    return;
  }
  const std::vector<uint8_t> input = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(tb::ChecksumWith(implementation, input));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK_CAPTURE(BM_Checksum, aesni, tb::ChecksumImplementation::kAesNi)
    ->Arg(256)->Arg(4096)->Arg(1 << 20);
BENCHMARK_CAPTURE(BM_Checksum, portable, tb::ChecksumImplementation::kPortable)
    ->Arg(256)->Arg(4096)->Arg(1 << 20);

// A full message: header checksum, body checksum and both checks on receipt.
void BM_MessageSealAndVerify(benchmark::State& state) {
  const std::vector<uint8_t> body = RandomBytes(static_cast<size_t>(state.range(0)));
  tb::Header header{};
  header.frame.command = tb::Command::kRequest;
  header.frame.release = 1;
  for (auto _ : state) {
    tb::SetChecksums(header, body);
    absl::StatusOr<tb::Header> decoded =
        tb::DecodeHeader(std::span(reinterpret_cast<const uint8_t*>(&header), tb::kHeaderSize), 0);
    benchmark::DoNotOptimize(decoded.ok() && tb::ValidateBody(*decoded, body).ok());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          (state.range(0) + tb::kHeaderSize));
}
BENCHMARK(BM_MessageSealAndVerify)->Arg(0)->Arg(8189 * 128 + 128);

// Encoding `batches` caller batches that together fill a create_transfers message (8189 events).
void BM_MultiBatchEncode(benchmark::State& state) {
  const auto batch_count = static_cast<uint32_t>(state.range(0));
  const uint32_t events_per_batch = 8189 / batch_count;
  const std::vector<uint8_t> events = RandomBytes(sizeof(tb::Transfer) * events_per_batch);
  std::vector<uint8_t> body;
  body.reserve(tb::kMessageBodySizeMax);
  for (auto _ : state) {
    body.clear();
    tb::MultiBatchEncoder encoder(sizeof(tb::Transfer), &body);
    for (uint32_t i = 0; i < batch_count; i++) encoder.AddBatch(events);
    encoder.Finish();
    benchmark::DoNotOptimize(body.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * batch_count *
                          events_per_batch);
}
BENCHMARK(BM_MultiBatchEncode)->Arg(1)->Arg(64)->Arg(1024);

std::vector<uint8_t> FullCreateTransfersBody(uint32_t batch_count) {
  const uint32_t events_per_batch = 8189 / batch_count;
  const std::vector<uint8_t> events = RandomBytes(sizeof(tb::Transfer) * events_per_batch);
  std::vector<uint8_t> body;
  tb::MultiBatchEncoder encoder(sizeof(tb::Transfer), &body);
  for (uint32_t i = 0; i < batch_count; i++) encoder.AddBatch(events);
  encoder.Finish();
  return body;
}

void BM_MultiBatchDecode(benchmark::State& state) {
  const auto batch_count = static_cast<uint32_t>(state.range(0));
  const std::vector<uint8_t> body = FullCreateTransfersBody(batch_count);
  for (auto _ : state) {
    absl::StatusOr<tb::MultiBatchView> batches = tb::DecodeMultiBatch(body, sizeof(tb::Transfer));
    benchmark::DoNotOptimize(batches.ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * (8189 / batch_count) *
                          batch_count);
}
BENCHMARK(BM_MultiBatchDecode)->Arg(1)->Arg(64)->Arg(1024);

// The replica-side body check of a full create_transfers request.
void BM_ValidateRequestBody(benchmark::State& state) {
  const auto batch_count = static_cast<uint32_t>(state.range(0));
  const std::vector<uint8_t> body = FullCreateTransfersBody(batch_count);
  const tb::OperationInfo& info = tb::GetOperationInfo(tb::Operation::kCreateTransfers);
  for (auto _ : state) {
    benchmark::DoNotOptimize(tb::ValidateRequestBody(info, body, tb::kBatchSizeLimitMax).ok());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * (8189 / batch_count) *
                          batch_count);
}
BENCHMARK(BM_ValidateRequestBody)->Arg(1)->Arg(1024);

}  // namespace

BENCHMARK_MAIN();
