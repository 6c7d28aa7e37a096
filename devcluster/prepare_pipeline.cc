#include "devcluster/prepare_pipeline.h"

#include <cstring>
#include <utility>

#include "client_core/assert.h"
#include "client_core/header.h"
#include "client_core/operation.h"

namespace tb::devcluster {

namespace {

std::optional<RequestHeader> ParseRequest(std::span<const uint8_t> message) {
  if (message.size() < kHeaderSize) return std::nullopt;
  RequestHeader request;
  static_assert(sizeof(request) == kHeaderSize);
  std::memcpy(&request, message.data(), sizeof(request));
  if (request.frame.command != Command::kRequest || request.client == 0) return std::nullopt;
  return request;
}

}  // namespace

std::optional<u128> RequestClient(std::span<const uint8_t> message) {
  const std::optional<RequestHeader> request = ParseRequest(message);
  if (!request.has_value()) return std::nullopt;
  return request->client;
}

std::optional<u128> PipelinedClient(std::span<const uint8_t> message,
                                    const replica::SessionTable& sessions) {
  const std::optional<RequestHeader> parsed = ParseRequest(message);
  if (!parsed.has_value()) return std::nullopt;
  const RequestHeader& request = *parsed;
  const bool register_request = request.operation == static_cast<uint8_t>(Operation::kRegister);
  const replica::Session* session = sessions.Find(request.client);
  if (session == nullptr) {
    if (!register_request) return std::nullopt;  // Evicted at once.
    return request.client;
  }
  if (register_request || request.request <= session->request) return std::nullopt;
  return request.client;
}

PreparePipeline::PreparePipeline(const PipelineOptions& options) { SetOptions(options); }

void PreparePipeline::SetOptions(const PipelineOptions& options) {
  TB_ASSERT(ValidatePipelineOptions(options).ok());
  options_ = options;
}

bool PreparePipeline::active() const {
  return options_.prepare_latency > absl::ZeroDuration() || !queue_.empty() ||
         !prepares_.empty() || admitting_.has_value();
}

bool PreparePipeline::Enqueue(Request request) {
  TB_ASSERT(!Holds(request.client));
  const size_t free_slots =
      prepares_.size() < options_.prepares_max ? options_.prepares_max - prepares_.size() : 0;
  if (queue_.size() >= options_.requests_queued_max + free_slots) return false;
  clients_.insert(request.client);
  queue_.push_back(std::move(request));
  return true;
}

std::optional<PreparePipeline::Request> PreparePipeline::NextToAdmit() {
  TB_ASSERT(!admitting_.has_value(), "Admitted() or Abandon() the previous request first");
  if (queue_.empty() || prepares_.size() >= options_.prepares_max) return std::nullopt;
  Request request = std::move(queue_.front());
  queue_.pop_front();
  admitting_ = request.client;
  return request;
}

void PreparePipeline::Admitted(u128 client, Clock::time_point now, Sends sends) {
  TB_ASSERT(admitting_ == client);
  admitting_.reset();
  TB_ASSERT(prepares_.size() < options_.prepares_max);
  prepares_.push_back(Prepare{.client = client, .admitted = now, .sends = std::move(sends)});
  if (prepares_.size() > prepares_max_seen_) prepares_max_seen_ = prepares_.size();
}

void PreparePipeline::Abandon(u128 client) {
  TB_ASSERT(admitting_ == client);
  admitting_.reset();
  clients_.erase(client);
}

std::optional<PreparePipeline::Sends> PreparePipeline::PopCommitted(Clock::time_point now) {
  const std::optional<Clock::time_point> commit = NextCommit();
  if (!commit.has_value() || *commit > now) return std::nullopt;
  Sends sends = std::move(prepares_.front().sends);
  clients_.erase(prepares_.front().client);
  prepares_.pop_front();
  return sends;
}

std::optional<PreparePipeline::Clock::time_point> PreparePipeline::NextCommit() const {
  if (prepares_.empty()) return std::nullopt;
  return prepares_.front().admitted +
         std::chrono::duration_cast<Clock::duration>(
             absl::ToChronoNanoseconds(options_.prepare_latency));
}

void PreparePipeline::Clear() {
  queue_.clear();
  prepares_.clear();
  clients_.clear();
  admitting_.reset();
}

}  // namespace tb::devcluster
