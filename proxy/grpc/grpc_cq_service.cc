#include "proxy/grpc/grpc_cq_service.h"

#include <pthread.h>

#include <algorithm>
#include <cstddef>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client_core/assert.h"
#include "google/protobuf/arena.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/grpc/internal/grpc_call.h"
#include "proxy/grpc/internal/open_stream.h"

namespace tb::proxy {
namespace v1 = ::tbproxy::v1;
namespace {

// Requests of each unary method posted on each queue. A call that arrives while its method has
// none posted waits inside gRPC until one is (it is not refused), so these only need to cover
// the calls that arrive between two turns of a polling thread, which re-posts one per call it
// takes. 32 covers a burst from 1024 callers spread over 2 queues and a few methods without
// that wait, and costs about 2 MiB idle (10 methods x 2 queues x 32 x ~3 KiB).
constexpr int kCallsPostedPerMethod = 32;

class CqCall;

// A tag handed to gRPC: the call it belongs to and what it stands for.
struct CqEvent {
  enum Kind : uint8_t { kMatched, kDone, kFinished };
  CqCall* call;
  Kind kind;
};

class CqCall {
 public:
  virtual ~CqCall() = default;
  // On the polling thread of the call's queue. `ok` is gRPC's: false for a request that will
  // never be matched (shutdown) or a Finish that could not be sent (the call was cancelled).
  virtual void On(CqEvent::Kind kind, bool ok) = 0;
};

void Dispatch(void* tag, bool ok) {
  const CqEvent* event = static_cast<const CqEvent*>(tag);
  event->call->On(event->kind, ok);
}

// One unary call from its posted request to its end. It lives until three things are over:
// the done notification (gRPC's, once the call is closed, finished or cancelled), the Finish
// (once started), and the handler or the submitter's callback. A reference count tracks them;
// whichever is last deletes the call. The answer is finished exactly once: by the submitter's
// callback, or with CANCELLED by the done notification when the client cancelled first.
template <typename Request, typename Response, auto kRequestMethod>
class CqUnaryCall final : public CqCall {
 public:
  using Environment = GrpcCqService::CallEnvironment;

  CqUnaryCall(const Environment& environment, grpc::ServerCompletionQueue* queue)
      : environment_(environment), queue_(queue), arena_(ArenaOptions(arena_block_)) {
    request_ = google::protobuf::Arena::CreateMessage<Request>(&arena_);
    response_ = google::protobuf::Arena::CreateMessage<Response>(&arena_);
  }

  static void Post(const Environment& environment, grpc::ServerCompletionQueue* queue) {
    auto* call = new CqUnaryCall(environment, queue);
    call->context_.AsyncNotifyWhenDone(&call->done_);
    (environment.service->*kRequestMethod)(&call->context_, call->request_, &call->responder_,
                                            queue, queue, &call->matched_);
  }

  void On(CqEvent::Kind kind, bool ok) override {
    switch (kind) {
      case CqEvent::kMatched:
        // Not ok: the server shuts down and this request was never matched, so gRPC will
        // report nothing more about it.
        if (!ok) {
          delete this;
          return;
        }
        Post(environment_, queue_);
        Handle();
        return;
      case CqEvent::kDone:
        if (context_.IsCancelled()) {
          Complete([] { return absl::CancelledError("cancelled by the caller"); });
        }
        Unref();
        return;
      case CqEvent::kFinished:
        Unref();
        return;
    }
  }

 private:
  void Handle() {
    refs_.store(2, std::memory_order_relaxed);  // The done notification, and this handler.
    absl::StatusOr<internal::UnarySubmit> submit =
        internal::PrepareUnary(environment_.authenticator, context_, *request_);
    if (!submit.ok()) {
      Complete([&] { return submit.status(); });
      Unref();
      return;
    }
    // The handler's reference passes to the callback, which runs exactly once.
    environment_.submitter->Submit(std::move(submit->request), submit->options,
                                   [this](absl::StatusOr<SubmitResult> result) {
                                     Complete([&] {
                                       return internal::UnaryOutcome(result, response_);
                                     });
                                     Unref();
                                   });
  }

  // `produce` fills the response (when it returns ok) and runs only for the first answer.
  template <typename Produce>
  void Complete(Produce produce) {
    if (finished_.exchange(true, std::memory_order_acq_rel)) return;
    const absl::Status status = produce();
    refs_.fetch_add(1, std::memory_order_relaxed);  // The Finish; the caller holds one too.
    responder_.Finish(*response_, ToGrpcStatus(status, &context_), &finished_tag_);
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // A 1- to 4-event call fits the inline block; larger ones grow the arena from the heap.
  static constexpr size_t kArenaInlineBytes = 1024;
  static google::protobuf::ArenaOptions ArenaOptions(char* initial_block) {
    google::protobuf::ArenaOptions options;
    options.initial_block = initial_block;
    options.initial_block_size = kArenaInlineBytes;
    options.start_block_size = 4096;
    return options;
  }

  const Environment& environment_;
  grpc::ServerCompletionQueue* const queue_;
  alignas(std::max_align_t) char arena_block_[kArenaInlineBytes];
  google::protobuf::Arena arena_;  // After arena_block_: it is built on it.
  Request* request_ = nullptr;     // On arena_.
  Response* response_ = nullptr;   // On arena_.
  grpc::ServerContext context_;
  grpc::ServerAsyncResponseWriter<Response> responder_{&context_};
  std::atomic<bool> finished_{false};
  std::atomic<int> refs_{0};
  CqEvent matched_{this, CqEvent::kMatched};
  CqEvent done_{this, CqEvent::kDone};
  CqEvent finished_tag_{this, CqEvent::kFinished};
};

template <typename Request, typename Response, auto kRequestMethod>
void PostMany(const GrpcCqService::CallEnvironment& environment,
              grpc::ServerCompletionQueue* queue) {
  for (int i = 0; i < kCallsPostedPerMethod; i++) {
    CqUnaryCall<Request, Response, kRequestMethod>::Post(environment, queue);
  }
}

void Poll(grpc::ServerCompletionQueue* queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) Dispatch(tag, ok);
}

}  // namespace

GrpcCqService::GrpcCqService(Submitter& submitter, GrpcServiceOptions options)
    : submitter_(submitter),
      options_(options),
      environment_{.service = this,
                   .submitter = &submitter,
                   .authenticator = options.authenticator} {
  TB_ASSERT(options_.stream_calls_max > 0);
  TB_ASSERT(options_.stream_calls_max <= kStreamCallsMaxCeiling);
}

GrpcCqService::~GrpcCqService() { Stop(); }

void GrpcCqService::AddQueues(grpc::ServerBuilder& builder) {
  TB_ASSERT(queues_.empty(), "a service is registered with one server");
  const unsigned count = std::clamp(std::thread::hardware_concurrency(), 1u, kQueuesMax);
  for (unsigned i = 0; i < count; i++) queues_.push_back(builder.AddCompletionQueue());
}

void GrpcCqService::PostAll(grpc::ServerCompletionQueue* queue) {
  PostMany<v1::CreateAccountsRequest, v1::CreateAccountsResponse,
           &GrpcCqService::RequestCreateAccounts>(environment_, queue);
  PostMany<v1::CreateTransfersRequest, v1::CreateTransfersResponse,
           &GrpcCqService::RequestCreateTransfers>(environment_, queue);
  PostMany<v1::LookupAccountsRequest, v1::LookupAccountsResponse,
           &GrpcCqService::RequestLookupAccounts>(environment_, queue);
  PostMany<v1::LookupTransfersRequest, v1::LookupTransfersResponse,
           &GrpcCqService::RequestLookupTransfers>(environment_, queue);
  PostMany<v1::GetAccountTransfersRequest, v1::GetAccountTransfersResponse,
           &GrpcCqService::RequestGetAccountTransfers>(environment_, queue);
  PostMany<v1::GetAccountBalancesRequest, v1::GetAccountBalancesResponse,
           &GrpcCqService::RequestGetAccountBalances>(environment_, queue);
  PostMany<v1::QueryAccountsRequest, v1::QueryAccountsResponse,
           &GrpcCqService::RequestQueryAccounts>(environment_, queue);
  PostMany<v1::QueryTransfersRequest, v1::QueryTransfersResponse,
           &GrpcCqService::RequestQueryTransfers>(environment_, queue);
  PostMany<v1::GetChangeEventsRequest, v1::GetChangeEventsResponse,
           &GrpcCqService::RequestGetChangeEvents>(environment_, queue);
  PostMany<v1::RawRequest, v1::RawResponse, &GrpcCqService::RequestRaw>(environment_, queue);
}

void GrpcCqService::Start() {
  TB_ASSERT(!queues_.empty());
  TB_ASSERT(threads_.empty());
  for (auto& queue : queues_) {
    PostAll(queue.get());
    threads_.emplace_back([queue = queue.get()] {
      pthread_setname_np(pthread_self(), "tb-grpc-cq");
      Poll(queue);
    });
  }
}

void GrpcCqService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& queue : queues_) queue->Shutdown();
  if (threads_.empty()) {
    for (auto& queue : queues_) Poll(queue.get());  // Never started: drain them here.
  }
  for (auto& thread : threads_) thread.join();
}

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* GrpcCqService::Stream(
    grpc::CallbackServerContext* context) {
  return internal::OpenStream(submitter_, options_, stream_ordering_key_next_, nullptr, context);
}

}  // namespace tb::proxy
