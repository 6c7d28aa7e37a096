// One read and one write may be outstanding at a time (gRPC's rule). The reactor keeps a count
// of calls that are outstanding (submitted, or answered and waiting to be written) and reads
// the next request only while that count is below calls_max, so a client that sends faster
// than the cluster answers, or reads its responses slowly, is held back by flow control and
// memory stays bounded. All decisions are taken under the mutex and carried out after it is
// released, because gRPC may run reactions inline and OnDone deletes the reactor.
#include "proxy/grpc/grpc_stream.h"

#include <list>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/arena.h"
#include "client_core/assert.h"
#include "proxy/grpc/grpc_convert.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/grpc/internal/grpc_call.h"

namespace tb::proxy {
namespace {

using internal::CallDeadline;
using internal::CheckPermission;
using internal::Creates;

namespace v1 = ::tbproxy::v1;

class StreamCall final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>,
                         public GrpcDrain::Stream {
 public:
  StreamCall(Submitter& submitter, grpc::CallbackServerContext* context,
             StreamCallOptions options, StreamRpcSlot slot)
      : submitter_(submitter),
        options_(options),
        context_(context),
        deadline_(CallDeadline(*context)),
        slot_(std::move(slot)) {
    TB_ASSERT(options_.calls_max > 0);
    if (options_.drain != nullptr && !options_.drain->Register(this)) {
      absl::MutexLock lock(&mutex_);
      draining_ = true;
    }
    Pump();
  }

  bool OnDrainBegun() override {
    absl::MutexLock lock(&mutex_);
    draining_ = true;
    if (finished_ || !FinishableDrainingLocked()) return false;
    finished_ = true;
    return true;
  }

  void FinishDraining() override { FinishWith(ToGrpcStatus(DrainingStatus(), context_)); }

  void OnReadDone(bool ok) override {
    {
      absl::MutexLock lock(&mutex_);
      TB_ASSERT(reading_);
      read_in_grpc_ = false;
      if (finished_) {
        // Finished by the drain while this read was out: the request is not submitted, as
        // the stream's status (not_applied) told the client.
        reading_ = false;
        return;
      }
      if (!ok) {
        reading_ = false;
        read_closed_ = true;
      } else {
        outstanding_ += 1;
      }
    }
    if (ok) {
      // reading_ stays set until the call is submitted: a Pump on another thread (a write
      // completing) must not start the next read before then, or the next call could reach
      // the submitter first and the stream's order would be lost. Until then nobody else
      // touches request_ or its arena either.
      Dispatch(*request_);
      request_ = nullptr;
      read_arena_.Reset();  // The call was converted to native bytes: its messages can go.
      absl::MutexLock lock(&mutex_);
      reading_ = false;
    }
    Pump();
  }

  void OnWriteDone(bool ok) override {
    // Free the written response now, not when the next write replaces it: an idle stream would
    // otherwise hold its last response (up to the message size limit) for as long as it is
    // open. writing_ is still set, so no Pump touches writing_response_ meanwhile.
    writing_response_.Clear();
    writing_reservation_.Release();
    {
      absl::MutexLock lock(&mutex_);
      TB_ASSERT(writing_);
      TB_ASSERT(outstanding_ > 0);
      writing_ = false;
      outstanding_ -= 1;
      if (!ok) broken_ = true;
    }
    Pump();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mutex_);
      broken_ = true;
    }
    Pump();
  }

  void OnDone() override {
    if (options_.drain != nullptr) options_.drain->Unregister(this);
    delete this;
  }

 private:
  // Draining, the stream may finish with a read still out at gRPC (it then completes not ok),
  // but not while a request is being dispatched, a response written, or a call answered, nor
  // while a StartRead is being issued (after Finish, OnDone may delete this at any moment).
  bool FinishableDrainingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    return draining_ && !read_closed_ && !broken_ && !writing_ && outstanding_ == 0 &&
           reads_starting_ == 0 && (!reading_ || read_in_grpc_);
  }

  // Starts the next read or write, or finishes, as the state allows. Must not hold mutex_.
  void Pump() ABSL_LOCKS_EXCLUDED(mutex_) {
    bool start_read = false;
    bool start_write = false;
    bool buffer_write = false;
    bool finish = false;
    bool cancelled = false;
    bool drained = false;
    {
      absl::MutexLock lock(&mutex_);
      if (finished_) return;
      if (broken_) {
        // Nobody will read the responses: drop what waits, keep counting calls in flight.
        outstanding_ -= write_queue_.size();
        write_queue_.clear();
      }
      if (!writing_ && !write_queue_.empty()) {
        writing_ = true;
        writing_response_ = std::move(write_queue_.front().response);
        writing_reservation_ = std::move(write_queue_.front().reservation);
        write_queue_.pop_front();
        start_write = true;
        // More responses wait behind this one: let the transport hold it and send them all
        // in one TCP write; the last write of a run has no hint and flushes the run.
        buffer_write = !write_queue_.empty();
      }
      if (!reading_ && !read_closed_ && !broken_ && !draining_ &&
          outstanding_ < options_.calls_max) {
        reading_ = true;
        read_in_grpc_ = true;
        reads_starting_ += 1;
        start_read = true;
      }
      if ((read_closed_ || broken_) && !reading_ && !writing_ && outstanding_ == 0 &&
          reads_starting_ == 0) {
        finished_ = true;
        finish = true;
        cancelled = broken_;
      } else if (!start_write && FinishableDrainingLocked()) {
        finished_ = true;
        finish = true;
        drained = true;
      }
    }
    // After Finish, OnDone may run at any moment and delete this: touch nothing afterwards.
    if (drained) return FinishDraining();
    if (finish) return FinishWith(cancelled ? grpc::Status::CANCELLED : grpc::Status::OK);
    if (start_write) {
      StartWrite(&writing_response_,
                 buffer_write ? grpc::WriteOptions().set_buffer_hint() : grpc::WriteOptions());
    }
    if (start_read) {
      request_ = google::protobuf::Arena::CreateMessage<v1::StreamRequest>(&read_arena_);
      StartRead(request_);
      ReadStarted();
    }
  }

  // Called once (finished_ was set by the caller). The stream's place under --stream-rpcs-max is
  // given back first, so a client that opens its next stream on seeing this one's status is not
  // refused for the stream it just closed.
  void FinishWith(const grpc::Status& status) {
    slot_.Release();
    Finish(status);
  }

  // Nothing finishes the stream while reads_starting_ > 0 (it is alive here); a finish that
  // waited for this read to be issued happens now.
  void ReadStarted() ABSL_LOCKS_EXCLUDED(mutex_) {
    bool pump = false;
    {
      absl::MutexLock lock(&mutex_);
      TB_ASSERT(reads_starting_ > 0);
      reads_starting_ -= 1;
      pump = draining_ || read_closed_ || broken_;
    }
    if (pump) Pump();
  }

  // Queues a response; its call stays counted in outstanding_, and keeps its reservation (if
  // any), until the write completes.
  void Deliver(v1::StreamResponse response, CallMemoryReservation reservation = {})
      ABSL_LOCKS_EXCLUDED(mutex_) {
    {
      absl::MutexLock lock(&mutex_);
      write_queue_.push_back({std::move(response), std::move(reservation)});
    }
    Pump();
  }

  void DeliverError(uint64_t correlation_id, const absl::Status& status,
                    CallMemoryReservation reservation = {}) {
    v1::StreamResponse response;
    response.set_correlation_id(correlation_id);
    ToCallError(status, response.mutable_error());
    Deliver(std::move(response), std::move(reservation));
  }

  // A call answered before it was submitted: counted by the submitter's metrics like any call.
  void RefuseCall(uint64_t correlation_id, uint8_t operation, const absl::Status& status) {
    submitter_.OnRefusedBeforeSubmit(operation, status.code());
    DeliverError(correlation_id, status);
  }

  template <typename Request, typename Response>
  void SubmitCall(uint64_t correlation_id, absl::Time deadline, const Request& call,
                  Response* (v1::StreamResponse::*field)()) {
    absl::Status allowed = CheckPermission(options_.permission, Creates(call));
    if (!allowed.ok()) return RefuseCall(correlation_id, OperationOf(call), allowed);
    absl::StatusOr<SubmitRequest> submit = ToSubmitRequest(call);
    if (!submit.ok()) return RefuseCall(correlation_id, OperationOf(call), submit.status());
    CallMemoryReservation reservation;
    if (options_.call_memory != nullptr) {
      absl::StatusOr<CallMemoryReservation> reserved = options_.call_memory->TryReserve(
          CallMemoryBound(submit->operation, submit->events, CallKind::kStream));
      if (!reserved.ok()) return RefuseCall(correlation_id, OperationOf(call), reserved.status());
      reservation = *std::move(reserved);
    }
    // The reactor outlives this callback: it finishes only when outstanding_ is back to 0.
    submitter_.Submit(
        *std::move(submit), {.deadline = deadline, .ordering_key = options_.ordering_key},
        [this, correlation_id, field, reservation = std::move(reservation)](
            absl::StatusOr<SubmitResult> result) mutable {
          v1::StreamResponse response;
          absl::Status status = result.status();
          if (result.ok()) status = FromSubmitResult(*result, (response.*field)());
          if (!status.ok()) return DeliverError(correlation_id, status, std::move(reservation));
          response.set_correlation_id(correlation_id);
          Deliver(std::move(response), std::move(reservation));
        });
  }

  void Dispatch(const v1::StreamRequest& request) {
    const uint64_t id = request.correlation_id();
    absl::Time deadline = deadline_;
    if (request.timeout_ms() > 0) {
      deadline = std::min(deadline, absl::Now() + absl::Milliseconds(request.timeout_ms()));
    }
    using R = v1::StreamResponse;
    switch (request.call_case()) {
      case v1::StreamRequest::kCreateAccounts:
        return SubmitCall(id, deadline, request.create_accounts(), &R::mutable_create_accounts);
      case v1::StreamRequest::kCreateTransfers:
        return SubmitCall(id, deadline, request.create_transfers(), &R::mutable_create_transfers);
      case v1::StreamRequest::kLookupAccounts:
        return SubmitCall(id, deadline, request.lookup_accounts(), &R::mutable_lookup_accounts);
      case v1::StreamRequest::kLookupTransfers:
        return SubmitCall(id, deadline, request.lookup_transfers(), &R::mutable_lookup_transfers);
      case v1::StreamRequest::kGetAccountTransfers:
        return SubmitCall(id, deadline, request.get_account_transfers(),
                          &R::mutable_get_account_transfers);
      case v1::StreamRequest::kGetAccountBalances:
        return SubmitCall(id, deadline, request.get_account_balances(),
                          &R::mutable_get_account_balances);
      case v1::StreamRequest::kQueryAccounts:
        return SubmitCall(id, deadline, request.query_accounts(), &R::mutable_query_accounts);
      case v1::StreamRequest::kQueryTransfers:
        return SubmitCall(id, deadline, request.query_transfers(), &R::mutable_query_transfers);
      case v1::StreamRequest::kGetChangeEvents:
        return SubmitCall(id, deadline, request.get_change_events(),
                          &R::mutable_get_change_events);
      case v1::StreamRequest::kRaw:
        return SubmitCall(id, deadline, request.raw(), &R::mutable_raw);
      case v1::StreamRequest::CALL_NOT_SET:
        break;
    }
    RefuseCall(id, /*operation=*/0, absl::InvalidArgumentError("call: required (set one operation)"));
  }

  Submitter& submitter_;
  const StreamCallOptions options_;
  grpc::CallbackServerContext* const context_;  // gRPC's; valid until OnDone.
  const absl::Time deadline_;
  StreamRpcSlot slot_;  // Released by FinishWith, by the one thread that finishes the stream.

  absl::Mutex mutex_;
  // The one outstanding read lands in request_, on read_arena_ (a typed call's messages are then
  // one block, not one allocation per Transfer and per id), which is reset once it is submitted.
  // No inline first block: an idle stream should cost as little memory as possible (S6 in
  // BENCHMARKS.md holds 10,000 of them), and one block allocation per call measured the same.
  google::protobuf::Arena read_arena_;
  v1::StreamRequest* request_ = nullptr;
  v1::StreamResponse writing_response_;  // Source of the one outstanding write.
  CallMemoryReservation writing_reservation_;  // Its call's, released once it is written.
  struct Waiting {
    v1::StreamResponse response;
    CallMemoryReservation reservation;
  };
  // Responses waiting for that write. A list, not a std::deque: an empty deque still holds a
  // block of ten responses and its map (545 bytes), which an idle stream (S6) does not need; the
  // list holds one node per waiting response (at most calls_max) and nothing when it is empty.
  std::list<Waiting> write_queue_ ABSL_GUARDED_BY(mutex_);
  uint32_t outstanding_ ABSL_GUARDED_BY(mutex_) = 0;  // Calls read and not yet written.
  bool reading_ ABSL_GUARDED_BY(mutex_) = false;  // A read is outstanding or being dispatched.
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mutex_) = false;  // The client half-closed (or failed).
  bool broken_ ABSL_GUARDED_BY(mutex_) = false;  // Cancelled or a write failed.
  bool draining_ ABSL_GUARDED_BY(mutex_) = false;  // tbproxy drains: read no more requests.
  bool read_in_grpc_ ABSL_GUARDED_BY(mutex_) = false;  // StartRead decided, OnReadDone not run.
  uint32_t reads_starting_ ABSL_GUARDED_BY(mutex_) = 0;  // StartRead decided, not yet returned.
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace

grpc::ServerBidiReactor<::tbproxy::v1::StreamRequest, ::tbproxy::v1::StreamResponse>*
NewStreamCall(Submitter& submitter, grpc::CallbackServerContext* context,
              StreamCallOptions options, StreamRpcSlot slot) {
  return new StreamCall(submitter, context, options, std::move(slot));
}

}  // namespace tb::proxy
