#include "bench/loadgen/grpc_driver.h"

#include <cstring>
#include <deque>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client_core/assert.h"
#include "client_core/types.h"
#include "tbproxy/v1/tbproxy.grpc.pb.h"

namespace tb::bench {
namespace {

namespace pb = ::tbproxy::v1;

constexpr uint32_t kChannelsMax = 1024;
constexpr int kMessageSizeMax = 64 << 20;

void SetU128(pb::Uint128* out, u128 value) {
  out->set_lo(U128Low(value));
  out->set_hi(U128High(value));
}
u128 GetU128(const pb::Uint128& value) { return MakeU128(value.hi(), value.lo()); }

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      absl::StrCat("grpc: ", status.error_message()));
}

template <typename T>
T EventAt(const Call& call, uint32_t index) {
  T value;
  std::memcpy(&value, call.events.data() + index * sizeof(T), sizeof(T));
  return value;
}

void FillTransfers(const Call& call, pb::CreateTransfersRequest* request) {
  request->mutable_transfers()->Reserve(static_cast<int>(call.event_count));
  for (uint32_t i = 0; i < call.event_count; i++) {
    const Transfer t = EventAt<Transfer>(call, i);
    pb::Transfer* out = request->add_transfers();
    SetU128(out->mutable_id(), t.id);
    SetU128(out->mutable_debit_account_id(), t.debit_account_id);
    SetU128(out->mutable_credit_account_id(), t.credit_account_id);
    SetU128(out->mutable_amount(), t.amount);
    out->set_ledger(t.ledger);
    out->set_code(t.code);
    out->set_flags(t.flags);
  }
}

void FillAccounts(const Call& call, pb::CreateAccountsRequest* request) {
  for (uint32_t i = 0; i < call.event_count; i++) {
    const Account a = EventAt<Account>(call, i);
    pb::Account* out = request->add_accounts();
    SetU128(out->mutable_id(), a.id);
    out->set_ledger(a.ledger);
    out->set_code(a.code);
    out->set_flags(a.flags);
  }
}

template <typename Request>
void FillIds(const Call& call, Request* request) {
  for (u128 id : call.lookup_ids) SetU128(request->add_ids(), id);
}

template <typename Results>
absl::Status CheckCreates(const Call& call, const Results& results) {
  std::vector<uint32_t> statuses;
  statuses.reserve(static_cast<size_t>(results.size()));
  for (const auto& result : results) statuses.push_back(result.status_code());
  return CheckCreateStatuses(call, statuses);
}

template <typename Objects>
absl::Status CheckLookups(const Call& call, const Objects& objects) {
  std::vector<u128> ids;
  for (const auto& object : objects) ids.push_back(GetU128(object.id()));
  return CheckLookupIds(call, ids);
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target, uint32_t index) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMessageSizeMax);
  arguments.SetMaxSendMessageSize(kMessageSizeMax);
  // A channel of its own subchannel pool gets its own TCP connection.
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  arguments.SetInt("tbproxy.bench.channel", static_cast<int>(index));
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
}

absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> ConnectChannels(
    const std::string& target, uint32_t count, absl::Duration timeout) {
  if (count < 1 || count > kChannelsMax) {
    return absl::InvalidArgumentError(absl::StrCat("channels must be 1..", kChannelsMax));
  }
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (uint32_t i = 0; i < count; i++) {
    channels.push_back(MakeChannel(target, i));
    if (!channels.back()->WaitForConnected(deadline)) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", target));
    }
  }
  return channels;
}

// ---- Unary calls (typed and raw) ----------------------------------------------------------

struct UnaryCall {
  grpc::ClientContext context;
  std::shared_ptr<const Call> call;
  CallDone done;
};

template <typename Request, typename Response>
struct TypedCall : UnaryCall {
  Request request;
  Response response;
};

// ---- Streams ------------------------------------------------------------------------------

class StreamReactor final : public grpc::ClientBidiReactor<pb::StreamRequest, pb::StreamResponse> {
 public:
  StreamReactor(pb::TigerBeetle::Stub* stub, bool unordered) {
    if (unordered) context_.AddMetadata("tbproxy-ordering", "none");
    stub->async()->Stream(&context_, this);
    StartRead(&read_);
    StartCall();
  }

  void Send(std::shared_ptr<const Call> call, CallDone done) {
    pb::StreamRequest request;
    const Call& c = *call;
    switch (c.operation) {
      case Operation::kCreateTransfers:
        FillTransfers(c, request.mutable_create_transfers());
        break;
      case Operation::kCreateAccounts:
        FillAccounts(c, request.mutable_create_accounts());
        break;
      case Operation::kLookupAccounts:
        FillIds(c, request.mutable_lookup_accounts());
        break;
      default:
        FillIds(c, request.mutable_lookup_transfers());
        break;
    }
    mutex_.Lock();
    if (finished_) {
      mutex_.Unlock();
      std::move(done)(absl::UnavailableError("stream already ended"));
      return;
    }
    const uint64_t id = next_id_++;
    request.set_correlation_id(id);
    pending_.emplace(id, Pending{std::move(call), std::move(done)});
    if (writing_) {
      writes_.push_back(std::move(request));
    } else {
      writing_ = true;
      write_ = std::move(request);
      StartWrite(&write_);
    }
    mutex_.Unlock();
  }

  // Half-closes once every queued write is out; the server then ends the stream.
  void Close() {
    absl::MutexLock lock(&mutex_);
    closing_ = true;
    if (!writing_ && !writes_done_ && !finished_) {
      writes_done_ = true;
      StartWritesDone();
    }
  }

  void WaitDone() { done_.WaitForNotification(); }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mutex_);
    if (ok && !writes_.empty()) {
      write_ = std::move(writes_.front());
      writes_.pop_front();
      StartWrite(&write_);
      return;
    }
    writing_ = false;
    if (closing_ && !writes_done_ && ok && !finished_) {
      writes_done_ = true;
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The stream is ending; OnDone follows.
    Pending pending;
    {
      absl::MutexLock lock(&mutex_);
      auto it = pending_.find(read_.correlation_id());
      if (it == pending_.end()) {
        unmatched_++;
        StartRead(&read_);
        return;
      }
      pending = std::move(it->second);
      pending_.erase(it);
    }
    absl::Status status = Check(*pending.call, read_);
    StartRead(&read_);
    std::move(pending.done)(std::move(status));
  }

  void OnDone(const grpc::Status& status) override {
    std::unordered_map<uint64_t, Pending> pending;
    {
      absl::MutexLock lock(&mutex_);
      finished_ = true;
      pending.swap(pending_);
    }
    absl::Status error = status.ok() ? absl::DataLossError("stream ended with calls in flight")
                                     : FromGrpc(status);
    for (auto& [id, p] : pending) std::move(p.done)(error);
    done_.Notify();
  }

 private:
  struct Pending {
    std::shared_ptr<const Call> call;
    CallDone done;
  };

  static absl::Status Check(const Call& call, const pb::StreamResponse& response) {
    if (response.has_error()) {
      return absl::Status(static_cast<absl::StatusCode>(response.error().code()),
                          absl::StrCat("stream call: ", response.error().message()));
    }
    switch (call.operation) {
      case Operation::kCreateTransfers:
        if (!response.has_create_transfers()) break;
        return CheckCreates(call, response.create_transfers().results());
      case Operation::kCreateAccounts:
        if (!response.has_create_accounts()) break;
        return CheckCreates(call, response.create_accounts().results());
      case Operation::kLookupAccounts:
        if (!response.has_lookup_accounts()) break;
        return CheckLookups(call, response.lookup_accounts().accounts());
      default:
        if (!response.has_lookup_transfers()) break;
        return CheckLookups(call, response.lookup_transfers().transfers());
    }
    return absl::DataLossError("stream response of the wrong kind");
  }

  grpc::ClientContext context_;
  pb::StreamResponse read_;  // Touched only by the read chain.
  absl::Notification done_;
  absl::Mutex mutex_;
  pb::StreamRequest write_ ABSL_GUARDED_BY(mutex_);
  std::deque<pb::StreamRequest> writes_ ABSL_GUARDED_BY(mutex_);
  std::unordered_map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  uint64_t unmatched_ ABSL_GUARDED_BY(mutex_) = 0;
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool closing_ ABSL_GUARDED_BY(mutex_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
};

// ---- The driver ---------------------------------------------------------------------------

class GrpcDriver final : public Driver {
 public:
  GrpcDriver(GrpcDriverOptions options, std::vector<std::shared_ptr<grpc::Channel>> channels)
      : options_(std::move(options)), channels_(std::move(channels)) {
    for (const auto& channel : channels_) stubs_.push_back(pb::TigerBeetle::NewStub(channel));
    if (options_.path == GrpcPath::kStream) {
      const uint32_t per = options_.callers_per_stream;
      const uint32_t streams = (options_.callers + per - 1) / per;
      for (uint32_t i = 0; i < streams; i++) {
        streams_.push_back(std::make_unique<StreamReactor>(stubs_[i % stubs_.size()].get(),
                                                           options_.stream_unordered));
      }
    }
  }

  ~GrpcDriver() override { Finish(); }

  void Start(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) override {
    switch (options_.path) {
      case GrpcPath::kStream:
        streams_[(caller / options_.callers_per_stream) % streams_.size()]->Send(std::move(call),
                                                                                std::move(done));
        return;
      case GrpcPath::kRaw:
        StartRaw(caller, std::move(call), std::move(done));
        return;
      case GrpcPath::kTyped:
        StartTyped(caller, std::move(call), std::move(done));
        return;
    }
  }

  void Finish() override {
    for (auto& stream : streams_) stream->Close();
    for (auto& stream : streams_) stream->WaitDone();
    streams_.clear();
  }

 private:
  pb::TigerBeetle::Stub* StubFor(uint32_t caller) { return stubs_[caller % stubs_.size()].get(); }

  void Prepare(UnaryCall* unary, std::shared_ptr<const Call> call, CallDone done) {
    unary->call = std::move(call);
    unary->done = std::move(done);
    unary->context.set_deadline(std::chrono::system_clock::now() +
                                absl::ToChronoNanoseconds(options_.call_timeout));
  }

  void StartRaw(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) {
    auto* unary = new TypedCall<pb::RawRequest, pb::RawResponse>();
    unary->request.set_operation(static_cast<uint32_t>(call->operation));
    unary->request.set_events(call->events.data(), call->events.size());
    Prepare(unary, std::move(call), std::move(done));
    StubFor(caller)->async()->Raw(&unary->context, &unary->request, &unary->response,
                                  [unary](grpc::Status status) {
                                    absl::Status result = FromGrpc(status);
                                    if (result.ok()) {
                                      const std::string& bytes = unary->response.results();
                                      result = CheckNativeResults(
                                          *unary->call,
                                          {reinterpret_cast<const uint8_t*>(bytes.data()),
                                           bytes.size()});
                                    }
                                    CallDone done = std::move(unary->done);
                                    delete unary;
                                    std::move(done)(std::move(result));
                                  });
  }

  // `invoke(stub, context, request, response, on_done)` starts the RPC of this request type.
  template <typename Request, typename Response, typename Invoke, typename Fill, typename Check>
  void StartTypedCall(uint32_t caller, std::shared_ptr<const Call> call, CallDone done,
                      Invoke invoke, Fill fill, Check check) {
    auto* unary = new TypedCall<Request, Response>();
    fill(*call, &unary->request);
    Prepare(unary, std::move(call), std::move(done));
    invoke(StubFor(caller), &unary->context, &unary->request, &unary->response,
           [unary, check](grpc::Status status) {
             absl::Status result = FromGrpc(status);
             if (result.ok()) result = check(*unary->call, unary->response);
             CallDone done = std::move(unary->done);
             delete unary;
             std::move(done)(std::move(result));
           });
  }

  void StartTyped(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) {
    using Callback = std::function<void(grpc::Status)>;
    using Stub = pb::TigerBeetle::Stub;
    switch (call->operation) {
      case Operation::kCreateTransfers:
        StartTypedCall<pb::CreateTransfersRequest, pb::CreateTransfersResponse>(
            caller, std::move(call), std::move(done),
            [](Stub* stub, grpc::ClientContext* context, const pb::CreateTransfersRequest* request,
               pb::CreateTransfersResponse* response, Callback on_done) {
              stub->async()->CreateTransfers(context, request, response, std::move(on_done));
            },
            FillTransfers,
            [](const Call& c, const pb::CreateTransfersResponse& r) {
              return CheckCreates(c, r.results());
            });
        return;
      case Operation::kCreateAccounts:
        StartTypedCall<pb::CreateAccountsRequest, pb::CreateAccountsResponse>(
            caller, std::move(call), std::move(done),
            [](Stub* stub, grpc::ClientContext* context, const pb::CreateAccountsRequest* request,
               pb::CreateAccountsResponse* response, Callback on_done) {
              stub->async()->CreateAccounts(context, request, response, std::move(on_done));
            },
            FillAccounts,
            [](const Call& c, const pb::CreateAccountsResponse& r) {
              return CheckCreates(c, r.results());
            });
        return;
      case Operation::kLookupAccounts:
        StartTypedCall<pb::LookupAccountsRequest, pb::LookupAccountsResponse>(
            caller, std::move(call), std::move(done),
            [](Stub* stub, grpc::ClientContext* context, const pb::LookupAccountsRequest* request,
               pb::LookupAccountsResponse* response, Callback on_done) {
              stub->async()->LookupAccounts(context, request, response, std::move(on_done));
            },
            FillIds<pb::LookupAccountsRequest>,
            [](const Call& c, const pb::LookupAccountsResponse& r) {
              return CheckLookups(c, r.accounts());
            });
        return;
      default:
        StartTypedCall<pb::LookupTransfersRequest, pb::LookupTransfersResponse>(
            caller, std::move(call), std::move(done),
            [](Stub* stub, grpc::ClientContext* context, const pb::LookupTransfersRequest* request,
               pb::LookupTransfersResponse* response, Callback on_done) {
              stub->async()->LookupTransfers(context, request, response, std::move(on_done));
            },
            FillIds<pb::LookupTransfersRequest>,
            [](const Call& c, const pb::LookupTransfersResponse& r) {
              return CheckLookups(c, r.transfers());
            });
        return;
    }
  }

  const GrpcDriverOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pb::TigerBeetle::Stub>> stubs_;
  std::vector<std::unique_ptr<StreamReactor>> streams_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> MakeGrpcDriver(const GrpcDriverOptions& options) {
  if (options.callers < 1) return absl::InvalidArgumentError("callers must be at least 1");
  if (options.callers_per_stream < 1 || options.callers_per_stream > 4096) {
    return absl::InvalidArgumentError("callers_per_stream must be 1..4096");
  }
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> channels =
      ConnectChannels(options.target, options.channels, options.connect_timeout);
  if (!channels.ok()) return channels.status();
  return std::make_unique<GrpcDriver>(options, *std::move(channels));
}

absl::Status HoldIdleStreams(const std::string& target, uint32_t channels, uint32_t streams,
                             absl::Duration hold, const std::function<void()>& on_open) {
  absl::StatusOr<std::vector<std::shared_ptr<grpc::Channel>>> connected =
      ConnectChannels(target, channels, absl::Seconds(10));
  if (!connected.ok()) return connected.status();
  std::vector<std::unique_ptr<pb::TigerBeetle::Stub>> stubs;
  for (const auto& channel : *connected) stubs.push_back(pb::TigerBeetle::NewStub(channel));
  std::vector<std::unique_ptr<StreamReactor>> reactors;
  for (uint32_t i = 0; i < streams; i++) {
    reactors.push_back(std::make_unique<StreamReactor>(stubs[i % stubs.size()].get(), true));
  }
  // Every stream must be open and usable: one lookup of an id that does not exist proves it,
  // then the stream stays idle.
  auto probe = std::make_shared<Call>();
  probe->operation = Operation::kLookupAccounts;
  probe->event_count = 1;
  probe->expect_found = false;
  probe->lookup_ids = {MakeU128(0xFFFFFFFF00000000ull, 0x1D1E)};
  probe->events.resize(sizeof(u128));
  std::memcpy(probe->events.data(), &probe->lookup_ids[0], sizeof(u128));
  absl::Mutex mutex;
  uint32_t answered = 0;
  absl::Status first_error;
  for (auto& reactor : reactors) {
    reactor->Send(probe, [&](absl::Status status) {
      absl::MutexLock lock(&mutex);
      answered++;
      if (!status.ok() && first_error.ok()) first_error = status;
    });
  }
  {
    absl::MutexLock lock(&mutex);
    auto all = [&]() { return answered == streams; };
    mutex.Await(absl::Condition(&all));
  }
  if (!first_error.ok()) return first_error;
  on_open();
  absl::SleepFor(hold);
  for (auto& reactor : reactors) reactor->Close();
  for (auto& reactor : reactors) reactor->WaitDone();
  return absl::OkStatus();
}

}  // namespace tb::bench
