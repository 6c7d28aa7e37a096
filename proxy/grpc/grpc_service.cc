#include "proxy/grpc/grpc_service.h"

#include <chrono>
#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client_core/assert.h"
#include "proxy/grpc/grpc_convert.h"
#include "proxy/grpc/grpc_status.h"
#include "proxy/grpc/internal/arena_message_allocator.h"
#include "proxy/grpc/internal/grpc_call.h"
#include "proxy/grpc/internal/open_stream.h"

namespace tb::proxy {
namespace v1 = ::tbproxy::v1;

namespace internal {

absl::Time CallDeadline(const grpc::ServerContextBase& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

absl::StatusOr<uint64_t> UnaryOrderingKey(const grpc::ServerContextBase& context) {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kOrderingKeyMetadataKey);
  if (it == metadata.end()) return 0;
  const absl::string_view name(it->second.data(), it->second.size());
  if (name.empty() || name.size() > kOrderingKeyNameBytesMax) {
    return absl::InvalidArgumentError(absl::StrCat("tbproxy-ordering-key metadata must be 1..",
                                                   kOrderingKeyNameBytesMax, " bytes"));
  }
  // FNV-1a: one name is one key. Two names meeting on one key only makes their calls wait for
  // each other; it never reorders either.
  uint64_t key = 0xcbf29ce484222325ULL;
  for (const char c : name) {
    key ^= static_cast<uint8_t>(c);
    key *= 0x100000001b3ULL;
  }
  key &= ~kStreamOrderingKeyTag;
  return key == 0 ? 1 : key;
}

absl::StatusOr<Permission> Authenticate(const TokenAuthenticator* authenticator,
                                        const grpc::ServerContextBase& context) {
  if (authenticator == nullptr) return Permission::kWrite;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  const absl::string_view value =
      it == metadata.end() ? absl::string_view()
                           : absl::string_view(it->second.data(), it->second.size());
  absl::StatusOr<const TokenAuthenticator::Identity*> identity =
      authenticator->Authenticate(value);
  if (!identity.ok()) return identity.status();
  return (*identity)->permission;
}

absl::Status CheckPermission(Permission permission, bool creates) {
  if (creates && permission != Permission::kWrite) {
    return absl::PermissionDeniedError("this token is read-only: it may not create");
  }
  return absl::OkStatus();
}

}  // namespace internal

namespace {

// Finishes a unary call exactly once: with the submitter's answer, or with CANCELLED when the
// client cancels first. Shared by the reactor and the submitter's callback, so whichever comes
// second finds `finished` set and does nothing (the response is gone after OnDone).
class UnaryCallState {
 public:
  UnaryCallState(grpc::ServerUnaryReactor* reactor, grpc::CallbackServerContext* context)
      : reactor_(reactor), context_(context) {}

  // `produce` fills the response (when it returns ok) and runs only if the call is not finished.
  template <typename Produce>
  void Complete(Produce produce) {
    {
      absl::MutexLock lock(&mutex_);
      if (finished_) return;
      finished_ = true;
    }
    // Only the winner gets here; the reactor and context live until Finish leads to OnDone.
    const absl::Status status = produce();
    reactor_->Finish(ToGrpcStatus(status, context_));
  }

 private:
  absl::Mutex mutex_;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::ServerUnaryReactor* const reactor_;
  grpc::CallbackServerContext* const context_;
};

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  explicit UnaryCall(grpc::CallbackServerContext* context)
      : state_(std::make_shared<UnaryCallState>(this, context)) {}

  const std::shared_ptr<UnaryCallState>& state() const { return state_; }
  // Held until gRPC is done with the call (OnDone), when the response has been sent.
  void Keep(CallMemoryReservation reservation) { reservation_ = std::move(reservation); }

  void OnCancel() override {
    std::shared_ptr<UnaryCallState> state = state_;  // OnDone may delete this inside Complete.
    state->Complete([] { return absl::CancelledError("cancelled by the caller"); });
  }
  void OnDone() override { delete this; }
  // Both reactions are trivial and never block (OnCancel takes a short lock and may Finish, which
  // gRPC allows from any thread), so gRPC may run them where the call ends instead of handing
  // each to its executor thread: that hand-off was ~20 % of tbproxy's CPU on the unary path
  // (bench/PROFILE.md). gRPC marks this hook as internal; its own default reactor uses it.
  bool InternalInlineable() override { return true; }

 private:
  std::shared_ptr<UnaryCallState> state_;
  CallMemoryReservation reservation_;
};

}  // namespace

GrpcService::GrpcService(Submitter& submitter, GrpcServiceOptions options)
    : submitter_(submitter),
      options_(options),
      stream_rpcs_(options.stream_rpcs_max),
      call_memory_(options.call_memory_max) {
  TB_ASSERT(options_.stream_calls_max > 0);
  TB_ASSERT(options_.stream_calls_max <= kStreamCallsMaxCeiling);
  TB_ASSERT(options_.stream_rpcs_max <= kStreamRpcsMaxCeiling);
  using internal::SharedArenaAllocator;
  SetMessageAllocatorFor_CreateAccounts(
      SharedArenaAllocator<v1::CreateAccountsRequest, v1::CreateAccountsResponse>());
  SetMessageAllocatorFor_CreateTransfers(
      SharedArenaAllocator<v1::CreateTransfersRequest, v1::CreateTransfersResponse>());
  SetMessageAllocatorFor_LookupAccounts(
      SharedArenaAllocator<v1::LookupAccountsRequest, v1::LookupAccountsResponse>());
  SetMessageAllocatorFor_LookupTransfers(
      SharedArenaAllocator<v1::LookupTransfersRequest, v1::LookupTransfersResponse>());
  SetMessageAllocatorFor_GetAccountTransfers(
      SharedArenaAllocator<v1::GetAccountTransfersRequest, v1::GetAccountTransfersResponse>());
  SetMessageAllocatorFor_GetAccountBalances(
      SharedArenaAllocator<v1::GetAccountBalancesRequest, v1::GetAccountBalancesResponse>());
  SetMessageAllocatorFor_QueryAccounts(
      SharedArenaAllocator<v1::QueryAccountsRequest, v1::QueryAccountsResponse>());
  SetMessageAllocatorFor_QueryTransfers(
      SharedArenaAllocator<v1::QueryTransfersRequest, v1::QueryTransfersResponse>());
  SetMessageAllocatorFor_GetChangeEvents(
      SharedArenaAllocator<v1::GetChangeEventsRequest, v1::GetChangeEventsResponse>());
  SetMessageAllocatorFor_Raw(SharedArenaAllocator<v1::RawRequest, v1::RawResponse>());
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* GrpcService::HandleUnary(grpc::CallbackServerContext* context,
                                                   const Request& request, Response* response) {
  auto* call = new UnaryCall(context);
  std::shared_ptr<UnaryCallState> state = call->state();
  if (drain_.draining()) {
    submitter_.OnRefusedBeforeSubmit(OperationOf(request), DrainingStatus().code());
    drain_.Refuse([state] { state->Complete([] { return DrainingStatus(); }); });
    return call;
  }
  absl::StatusOr<internal::UnarySubmit> submit =
      internal::PrepareUnary(options_.authenticator, *context, request);
  if (!submit.ok()) {
    submitter_.OnRefusedBeforeSubmit(OperationOf(request), submit.status().code());
    state->Complete([&] { return submit.status(); });
    return call;
  }
  absl::StatusOr<CallMemoryReservation> reserved = call_memory_.TryReserve(
      CallMemoryBound(submit->request.operation, submit->request.events, CallKind::kUnary));
  if (!reserved.ok()) {
    submitter_.OnRefusedBeforeSubmit(OperationOf(request), reserved.status().code());
    state->Complete([&] { return reserved.status(); });
    return call;
  }
  call->Keep(*std::move(reserved));
  submitter_.Submit(std::move(submit->request), submit->options,
                    [state, response](absl::StatusOr<SubmitResult> result) {
                      state->Complete([&] { return internal::UnaryOutcome(result, response); });
                    });
  return call;
}

grpc::ServerUnaryReactor* GrpcService::CreateAccounts(grpc::CallbackServerContext* context,
                                                      const v1::CreateAccountsRequest* request,
                                                      v1::CreateAccountsResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::CreateTransfers(grpc::CallbackServerContext* context,
                                                       const v1::CreateTransfersRequest* request,
                                                       v1::CreateTransfersResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::LookupAccounts(grpc::CallbackServerContext* context,
                                                      const v1::LookupAccountsRequest* request,
                                                      v1::LookupAccountsResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::LookupTransfers(grpc::CallbackServerContext* context,
                                                       const v1::LookupTransfersRequest* request,
                                                       v1::LookupTransfersResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::GetAccountTransfers(
    grpc::CallbackServerContext* context, const v1::GetAccountTransfersRequest* request,
    v1::GetAccountTransfersResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::GetAccountBalances(
    grpc::CallbackServerContext* context, const v1::GetAccountBalancesRequest* request,
    v1::GetAccountBalancesResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::QueryAccounts(grpc::CallbackServerContext* context,
                                                     const v1::QueryAccountsRequest* request,
                                                     v1::QueryAccountsResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::QueryTransfers(grpc::CallbackServerContext* context,
                                                      const v1::QueryTransfersRequest* request,
                                                      v1::QueryTransfersResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::GetChangeEvents(grpc::CallbackServerContext* context,
                                                       const v1::GetChangeEventsRequest* request,
                                                       v1::GetChangeEventsResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerUnaryReactor* GrpcService::Raw(grpc::CallbackServerContext* context,
                                           const v1::RawRequest* request,
                                           v1::RawResponse* response) {
  return HandleUnary(context, *request, response);
}

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* GrpcService::Stream(
    grpc::CallbackServerContext* context) {
  return internal::OpenStream(submitter_, options_, stream_ordering_key_next_, &drain_,
                              stream_rpcs_, call_memory_, context);
}

}  // namespace tb::proxy
