// tbproxy-grpc-floor: a bare gRPC server of the tbproxy.v1 API that answers every create at
// once, on the gRPC thread that read it, with every event `created`: no coalescing, no cluster,
// no thread hop. The same load generator calls it as it calls tbproxy, so its CPU per call is
// what gRPC 1.51 and the kernel cost on this machine before tbproxy does anything: the floor
// under tbproxy's per-call figures (bench/run.sh, S5f).
//
//   tbproxy-grpc-floor --listen=127.0.0.1:0      # prints "grpc floor listening on port N"
//   tbproxy-loadgen --target=127.0.0.1:N --path=typed --echo --proxy-pid=<its pid> ...
//
// Serves CreateAccounts, CreateTransfers, Raw and Stream carrying those two operations, with
// tbproxy's server settings that matter per call (message size, streams per connection,
// channelz off). LookupAccounts (unary or on a stream) finds nothing, as on an echo cluster: the
// idle streams of S6f prove themselves usable with one. Anything else is UNIMPLEMENTED. A
// benchmark tool: no TLS, tokens or limits.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <list>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "client_core/operation.h"
#include "client_core/types.h"
#include "grpcpp/grpcpp.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "host:port to serve on (port 0: a free port)");

namespace tb::bench {
namespace {

namespace pb = ::tbproxy::v1;

constexpr int kMessageSizeMax = 16 * 1024 * 1024;  // tbproxy's default.
constexpr int kStreamsPerConnectionMax = 1000;     // tbproxy's default.
constexpr size_t kStreamQueueMax = 64;             // tbproxy's --stream-calls-max default.
constexpr uint32_t kCreated = 0xFFFFFFFF;

template <typename Results>
void AllCreated(int count, Results* results) {
  for (int i = 0; i < count; i++) {
    auto* result = results->Add();
    result->set_timestamp(static_cast<uint64_t>(i) + 1);
    result->set_status_code(kCreated);
    result->set_status(static_cast<decltype(result->status())>(kCreated));
  }
}

// The results of a raw create: one dense CreateResult per whole event. False if the operation
// is not a create or the events are not whole.
bool RawCreated(const pb::RawRequest& request, pb::RawResponse* response) {
  const uint32_t operation = request.operation();
  if (operation != static_cast<uint32_t>(Operation::kCreateAccounts) &&
      operation != static_cast<uint32_t>(Operation::kCreateTransfers)) {
    return false;
  }
  const OperationInfo& info = GetOperationInfo(static_cast<Operation>(operation));
  if (request.events().size() % info.event_size != 0) return false;
  const size_t count = request.events().size() / info.event_size;
  std::string* bytes = response->mutable_results();
  bytes->resize(count * sizeof(CreateResult));
  for (size_t i = 0; i < count; i++) {
    const CreateResult result{.timestamp = i + 1, .status = kCreated, .reserved = 0};
    std::memcpy(bytes->data() + i * sizeof(result), &result, sizeof(result));
  }
  return true;
}

// One response per request, in order: each is built when its request is read, and written as
// soon as the one before it is; reading pauses while kStreamQueueMax wait. As in tbproxy's own
// stream, what to start is decided under the mutex and started after it is released: gRPC may
// run reactions inline, and once Finish is called OnDone may delete the reactor at any moment.
class FloorStream final : public grpc::ServerBidiReactor<pb::StreamRequest, pb::StreamResponse> {
 public:
  FloorStream() {
    {
      absl::MutexLock lock(&mutex_);
      reading_ = true;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::unique_ptr<pb::StreamResponse> response;
    if (ok) {
      response = std::make_unique<pb::StreamResponse>();
      Answer(request_, response.get());
    }
    Next next;
    {
      absl::MutexLock lock(&mutex_);
      reading_ = false;
      if (ok) {
        queue_.push_back(std::move(response));
      } else {
        reading_done_ = true;
      }
      next = DecideLocked();
    }
    Start(next);
  }

  void OnWriteDone(bool ok) override {
    Next next;
    {
      absl::MutexLock lock(&mutex_);
      writing_ = false;
      queue_.pop_front();
      if (!ok) failed_ = true;
      next = DecideLocked();
    }
    Start(next);
  }

  void OnDone() override { delete this; }

 private:
  struct Next {
    const pb::StreamResponse* write = nullptr;
    bool read = false;
    bool finish = false;
  };

  static void Answer(const pb::StreamRequest& request, pb::StreamResponse* response) {
    response->set_correlation_id(request.correlation_id());
    switch (request.call_case()) {
      case pb::StreamRequest::kCreateTransfers:
        AllCreated(request.create_transfers().transfers_size(),
                   response->mutable_create_transfers()->mutable_results());
        return;
      case pb::StreamRequest::kCreateAccounts:
        AllCreated(request.create_accounts().accounts_size(),
                   response->mutable_create_accounts()->mutable_results());
        return;
      case pb::StreamRequest::kRaw:
        if (RawCreated(request.raw(), response->mutable_raw())) return;
        break;
      case pb::StreamRequest::kLookupAccounts:
        response->mutable_lookup_accounts();  // Found nothing.
        return;
      default: break;
    }
    response->mutable_error()->set_code(grpc::StatusCode::UNIMPLEMENTED);
  }

  Next DecideLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    Next next;
    if (finished_) return next;
    if (!writing_ && !failed_ && !queue_.empty()) {
      writing_ = true;
      next.write = queue_.front().get();
    }
    if (!reading_ && !reading_done_ && !failed_ && queue_.size() < kStreamQueueMax) {
      reading_ = true;
      next.read = true;
    }
    // A read or write still out would complete after Finish: wait for it.
    if (!writing_ && !reading_ && (failed_ || (reading_done_ && queue_.empty()))) {
      finished_ = true;
      next.finish = true;
    }
    return next;
  }

  void Start(const Next& next) {
    if (next.finish) return Finish(grpc::Status::OK);  // Touch nothing afterwards.
    if (next.write != nullptr) StartWrite(next.write);
    if (next.read) StartRead(&request_);
  }

  pb::StreamRequest request_;  // Reads go here one at a time.
  absl::Mutex mutex_;
  // A list: an empty std::deque already holds a block and its map, and an idle stream (S6f)
  // should hold as little as it can.
  std::list<std::unique_ptr<pb::StreamResponse>> queue_ ABSL_GUARDED_BY(mutex_);
  bool reading_ ABSL_GUARDED_BY(mutex_) = false;
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mutex_) = false;
  bool failed_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

class FloorService final : public pb::TigerBeetle::CallbackService {
  grpc::ServerUnaryReactor* CreateTransfers(grpc::CallbackServerContext* context,
                                            const pb::CreateTransfersRequest* request,
                                            pb::CreateTransfersResponse* response) override {
    AllCreated(request->transfers_size(), response->mutable_results());
    return Done(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* CreateAccounts(grpc::CallbackServerContext* context,
                                           const pb::CreateAccountsRequest* request,
                                           pb::CreateAccountsResponse* response) override {
    AllCreated(request->accounts_size(), response->mutable_results());
    return Done(context, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* LookupAccounts(grpc::CallbackServerContext* context,
                                           const pb::LookupAccountsRequest*,
                                           pb::LookupAccountsResponse*) override {
    return Done(context, grpc::Status::OK);  // Found nothing.
  }

  grpc::ServerUnaryReactor* Raw(grpc::CallbackServerContext* context,
                                const pb::RawRequest* request,
                                pb::RawResponse* response) override {
    if (RawCreated(*request, response)) return Done(context, grpc::Status::OK);
    return Done(context, grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "creates only"));
  }

  grpc::ServerBidiReactor<pb::StreamRequest, pb::StreamResponse>* Stream(
      grpc::CallbackServerContext*) override {
    return new FloorStream();
  }

  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context,
                                        grpc::Status status) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(std::move(status));
    return reactor;
  }
};

int Main() {
  FloorService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(kMessageSizeMax);
  builder.SetMaxSendMessageSize(kMessageSizeMax);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kStreamsPerConnectionMax);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_CHANNELZ, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "tbproxy-grpc-floor: cannot listen on %s\n",
                 absl::GetFlag(FLAGS_listen).c_str());
    return 1;
  }
  std::printf("grpc floor listening on port %d\n", port);
  std::fflush(stdout);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  int signal = 0;
  sigwait(&stop, &signal);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}

}  // namespace
}  // namespace tb::bench

int main(int argc, char** argv) {
  // Only sigwait receives the stop signals; threads inherit the mask.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  absl::ParseCommandLine(argc, argv);
  return tb::bench::Main();
}
