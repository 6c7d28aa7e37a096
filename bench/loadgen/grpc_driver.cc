#include "bench/loadgen/grpc_driver.h"

#include <cstring>
#include <deque>
#include <optional>
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

// Makes `field` hold exactly `size` elements, reusing the ones it has (their sub-messages too):
// every caller's request is built once and then only overwritten.
template <typename Field>
void Resize(Field* field, uint32_t size) {
  while (static_cast<uint32_t>(field->size()) > size) field->RemoveLast();
  while (static_cast<uint32_t>(field->size()) < size) field->Add();
}

void FillTransfers(const Call& call, pb::CreateTransfersRequest* request) {
  Resize(request->mutable_transfers(), call.event_count);
  for (uint32_t i = 0; i < call.event_count; i++) {
    const Transfer t = EventAt<Transfer>(call, i);
    pb::Transfer* out = request->mutable_transfers(static_cast<int>(i));
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
  Resize(request->mutable_accounts(), call.event_count);
  for (uint32_t i = 0; i < call.event_count; i++) {
    const Account a = EventAt<Account>(call, i);
    pb::Account* out = request->mutable_accounts(static_cast<int>(i));
    SetU128(out->mutable_id(), a.id);
    out->set_ledger(a.ledger);
    out->set_code(a.code);
    out->set_flags(a.flags);
  }
}

template <typename Request>
void FillIds(const Call& call, Request* request) {
  Resize(request->mutable_ids(), static_cast<uint32_t>(call.lookup_ids.size()));
  for (size_t i = 0; i < call.lookup_ids.size(); i++) {
    SetU128(request->mutable_ids(static_cast<int>(i)), call.lookup_ids[i]);
  }
}

template <typename Results>
absl::Status CheckCreates(const Call& call, const Results& results) {
  // Every event created: checked in place. Anything else: CheckCreateStatuses says what.
  bool all_created = static_cast<uint32_t>(results.size()) == call.event_count;
  for (int i = 0; i < results.size() && all_created; i++) {
    all_created = results.Get(i).status_code() == 0xFFFFFFFFu;
  }
  if (all_created) return absl::OkStatus();
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
  // The load generator's own cost is taken from tbproxy on a shared machine: no retry filter (it
  // never retries; a failed call is a failure) and the minimal filter stack (no per-call
  // deadline timers, census or message-size filters), and no channelz call counting.
  arguments.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  arguments.SetInt(GRPC_ARG_MINIMAL_STACK, 1);
  arguments.SetInt(GRPC_ARG_ENABLE_CHANNELZ, 0);
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

// One caller's unary call state, reused from call to call (a caller has at most one call in
// flight): the requests and responses keep their allocated elements, only the ids change.
struct CallerSlot {
  std::optional<grpc::ClientContext> context;  // A fresh one per call (gRPC requires it).
  std::shared_ptr<const Call> call;
  CallDone done;
  bool busy = false;
  pb::RawRequest raw_request;
  pb::RawResponse raw_response;
  pb::CreateTransfersRequest create_transfers_request;
  pb::CreateTransfersResponse create_transfers_response;
  pb::CreateAccountsRequest create_accounts_request;
  pb::CreateAccountsResponse create_accounts_response;
  pb::LookupAccountsRequest lookup_accounts_request;
  pb::LookupAccountsResponse lookup_accounts_response;
  pb::LookupTransfersRequest lookup_transfers_request;
  pb::LookupTransfersResponse lookup_transfers_response;
};

// Ends the slot's call: lets go of the call and context first (the caller may start its next
// call from `done`, into this slot).
void FinishSlot(CallerSlot* slot, absl::Status status) {
  CallDone done = std::move(slot->done);
  slot->call.reset();
  slot->context.reset();
  slot->busy = false;
  std::move(done)(std::move(status));
}

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
    // Requests are recycled (spare_): filling one overwrites the elements it already has. One
    // lock for the whole hand-over (filling takes about a microsecond).
    mutex_.Lock();
    if (finished_) {
      mutex_.Unlock();
      std::move(done)(absl::UnavailableError("stream already ended"));
      return;
    }
    std::unique_ptr<pb::StreamRequest> request;
    if (!spare_.empty()) {
      request = std::move(spare_.back());
      spare_.pop_back();
    } else {
      request = std::make_unique<pb::StreamRequest>();
    }
    const Call& c = *call;
    switch (c.operation) {
      case Operation::kCreateTransfers:
        FillTransfers(c, request->mutable_create_transfers());
        break;
      case Operation::kCreateAccounts:
        FillAccounts(c, request->mutable_create_accounts());
        break;
      case Operation::kLookupAccounts:
        FillIds(c, request->mutable_lookup_accounts());
        break;
      default:
        FillIds(c, request->mutable_lookup_transfers());
        break;
    }
    const uint64_t id = next_id_++;
    request->set_correlation_id(id);
    pending_.emplace(id, Pending{std::move(call), std::move(done)});
    if (writing_) {
      writes_.push_back(std::move(request));
    } else {
      writing_ = true;
      write_ = std::move(request);
      StartWrite(write_.get());
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
    if (write_ != nullptr && spare_.size() < kSpareRequestsMax) spare_.push_back(std::move(write_));
    write_.reset();
    if (ok && !writes_.empty()) {
      write_ = std::move(writes_.front());
      writes_.pop_front();
      // More requests wait behind this one: let the transport hold it and send the run in one
      // TCP write; the last of the run has no hint and flushes it.
      StartWrite(write_.get(), writes_.empty() ? grpc::WriteOptions()
                                               : grpc::WriteOptions().set_buffer_hint());
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
    pending.call.reset();  // Let go first: the caller may reuse it at once.
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
  static constexpr size_t kSpareRequestsMax = 64;
  std::unique_ptr<pb::StreamRequest> write_ ABSL_GUARDED_BY(mutex_);
  std::deque<std::unique_ptr<pb::StreamRequest>> writes_ ABSL_GUARDED_BY(mutex_);
  std::vector<std::unique_ptr<pb::StreamRequest>> spare_ ABSL_GUARDED_BY(mutex_);
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
      : options_(std::move(options)), channels_(std::move(channels)), slots_(options_.callers) {
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

  // The caller's slot, ready for a new call; nullptr (and `done` run) if the caller is out of
  // range or already has a call in flight.
  CallerSlot* Claim(uint32_t caller, std::shared_ptr<const Call> call, CallDone* done) {
    if (caller >= slots_.size()) {
      std::move(*done)(absl::InvalidArgumentError("caller out of range"));
      return nullptr;
    }
    std::unique_ptr<CallerSlot>& slot = slots_[caller];
    if (slot == nullptr) slot = std::make_unique<CallerSlot>();
    if (slot->busy) {
      std::move(*done)(absl::FailedPreconditionError("caller already has a call in flight"));
      return nullptr;
    }
    slot->busy = true;
    slot->call = std::move(call);
    slot->done = std::move(*done);
    slot->context.emplace();
    if (options_.call_timeout > absl::ZeroDuration()) {
      slot->context->set_deadline(std::chrono::system_clock::now() +
                                  absl::ToChronoNanoseconds(options_.call_timeout));
    }
    return slot.get();
  }

  void StartRaw(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) {
    CallerSlot* slot = Claim(caller, std::move(call), &done);
    if (slot == nullptr) return;
    slot->raw_request.set_operation(static_cast<uint32_t>(slot->call->operation));
    slot->raw_request.set_events(slot->call->events.data(), slot->call->events.size());
    StubFor(caller)->async()->Raw(&*slot->context, &slot->raw_request, &slot->raw_response,
                                  [slot](grpc::Status status) {
                                    absl::Status result = FromGrpc(status);
                                    if (result.ok()) {
                                      const std::string& bytes = slot->raw_response.results();
                                      result = CheckNativeResults(
                                          *slot->call,
                                          {reinterpret_cast<const uint8_t*>(bytes.data()),
                                           bytes.size()});
                                    }
                                    FinishSlot(slot, std::move(result));
                                  });
  }

  // Fills `Fields::Request(slot)` from the call and starts the RPC; `Check` (a captureless
  // lambda type) checks `Fields::Response(slot)`. The completion captures only the slot.
  template <typename Request, typename Response, typename Invoke, typename Fill, typename Check>
  void StartTypedCall(uint32_t caller, std::shared_ptr<const Call> call, CallDone done,
                      Request CallerSlot::*request, Response CallerSlot::*response, Invoke invoke,
                      Fill fill, Check) {
    CallerSlot* slot = Claim(caller, std::move(call), &done);
    if (slot == nullptr) return;
    fill(*slot->call, &(slot->*request));
    invoke(StubFor(caller), &*slot->context, &(slot->*request), &(slot->*response),
           [slot](grpc::Status status) {
             absl::Status result = FromGrpc(status);
             if (result.ok()) result = Check{}(*slot);
             FinishSlot(slot, std::move(result));
           });
  }

  void StartTyped(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) {
    using Callback = std::function<void(grpc::Status)>;
    using Stub = pb::TigerBeetle::Stub;
    switch (call->operation) {
      case Operation::kCreateTransfers:
        StartTypedCall<pb::CreateTransfersRequest, pb::CreateTransfersResponse>(
            caller, std::move(call), std::move(done), &CallerSlot::create_transfers_request,
            &CallerSlot::create_transfers_response,
            [](Stub* stub, grpc::ClientContext* context, const pb::CreateTransfersRequest* request,
               pb::CreateTransfersResponse* response, Callback on_done) {
              stub->async()->CreateTransfers(context, request, response, std::move(on_done));
            },
            FillTransfers,
            [](const CallerSlot& s) {
              return CheckCreates(*s.call, s.create_transfers_response.results());
            });
        return;
      case Operation::kCreateAccounts:
        StartTypedCall<pb::CreateAccountsRequest, pb::CreateAccountsResponse>(
            caller, std::move(call), std::move(done), &CallerSlot::create_accounts_request,
            &CallerSlot::create_accounts_response,
            [](Stub* stub, grpc::ClientContext* context, const pb::CreateAccountsRequest* request,
               pb::CreateAccountsResponse* response, Callback on_done) {
              stub->async()->CreateAccounts(context, request, response, std::move(on_done));
            },
            FillAccounts,
            [](const CallerSlot& s) {
              return CheckCreates(*s.call, s.create_accounts_response.results());
            });
        return;
      case Operation::kLookupAccounts:
        StartTypedCall<pb::LookupAccountsRequest, pb::LookupAccountsResponse>(
            caller, std::move(call), std::move(done), &CallerSlot::lookup_accounts_request,
            &CallerSlot::lookup_accounts_response,
            [](Stub* stub, grpc::ClientContext* context, const pb::LookupAccountsRequest* request,
               pb::LookupAccountsResponse* response, Callback on_done) {
              stub->async()->LookupAccounts(context, request, response, std::move(on_done));
            },
            FillIds<pb::LookupAccountsRequest>,
            [](const CallerSlot& s) {
              return CheckLookups(*s.call, s.lookup_accounts_response.accounts());
            });
        return;
      default:
        StartTypedCall<pb::LookupTransfersRequest, pb::LookupTransfersResponse>(
            caller, std::move(call), std::move(done), &CallerSlot::lookup_transfers_request,
            &CallerSlot::lookup_transfers_response,
            [](Stub* stub, grpc::ClientContext* context, const pb::LookupTransfersRequest* request,
               pb::LookupTransfersResponse* response, Callback on_done) {
              stub->async()->LookupTransfers(context, request, response, std::move(on_done));
            },
            FillIds<pb::LookupTransfersRequest>,
            [](const CallerSlot& s) {
              return CheckLookups(*s.call, s.lookup_transfers_response.transfers());
            });
        return;
    }
  }

  const GrpcDriverOptions options_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<pb::TigerBeetle::Stub>> stubs_;
  std::vector<std::unique_ptr<StreamReactor>> streams_;
  // One per caller, made on its first unary call; each touched only by its caller's call chain.
  std::vector<std::unique_ptr<CallerSlot>> slots_;
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
  if (first_error.ok()) {
    on_open();
    absl::SleepFor(hold);
  }
  // Closed and finished either way: a stream still open cannot be destroyed.
  for (auto& reactor : reactors) reactor->Close();
  for (auto& reactor : reactors) reactor->WaitDone();
  return first_error;
}

}  // namespace tb::bench
