#include "bench/loadgen/direct_driver.h"

#include <deque>
#include <optional>
#include <thread>

#include <asio.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client_core/assert.h"
#include "client_core/clock.h"
#include "client_core/multi_batch.h"
#include "client_core/session.h"

namespace tb::bench {
namespace {

class DirectDriver final : public Driver {
 public:
  explicit DirectDriver(DirectDriverOptions options)
      : options_(std::move(options)),
        work_(asio::make_work_guard(io_)),
        tick_timer_(io_),
        thread_([this] { io_.run(); }) {}

  ~DirectDriver() override {
    absl::Notification closed;
    asio::post(io_, [this, &closed] {
      tick_timer_.cancel();
      for (Slot& slot : slots_) slot.session->Close(absl::CancelledError("load generator done"));
      for (Slot& slot : slots_) slot.transport->Shutdown();
      for (auto& waiting : queue_) {
        std::move(waiting.done)(absl::CancelledError("load generator done"));
      }
      queue_.clear();
      closed.Notify();
    });
    closed.WaitForNotification();
    // Connections still being established or refused (e.g. beyond a replica's connection limit)
    // may keep operations pending: stop instead of waiting for them to drain.
    work_.reset();
    io_.stop();
    thread_.join();
    slots_.clear();
  }

  absl::Status Connect() {
    absl::Notification created;
    absl::Status status;
    asio::post(io_, [&] {
      status = CreateSessions();
      created.Notify();
    });
    created.WaitForNotification();
    if (!status.ok()) return status;
    const absl::Time deadline = absl::Now() + options_.register_timeout;
    while (absl::Now() < deadline) {
      absl::Notification checked;
      uint32_t ready = 0;
      bool evicted = false;
      asio::post(io_, [&] {
        for (const Slot& slot : slots_) {
          ready += slot.session->ready() ? 1 : 0;
          evicted = evicted || slot.observer->evicted;
        }
        checked.Notify();
      });
      checked.WaitForNotification();
      if (evicted) {
        return absl::UnavailableError("a session was evicted while registering (more sessions "
                                      "than the cluster's clients_max?)");
      }
      if (ready == slots_.size()) {
        asio::post(io_, [this] {
          for (size_t i = 0; i < slots_.size(); i++) free_.push_back(i);
          Pump();
        });
        return absl::OkStatus();
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return absl::UnavailableError("sessions did not register in time");
  }

  void Start(uint32_t caller, std::shared_ptr<const Call> call, CallDone done) override {
    asio::post(io_, [this, call = std::move(call), done = std::move(done)]() mutable {
      if (queue_.size() >= kDirectQueueMax) {
        std::move(done)(absl::ResourceExhaustedError("direct queue full"));
        return;
      }
      queue_.push_back({std::move(call), std::move(done)});
      Pump();
    });
  }

 private:
  struct Observer final : SessionObserver {
    void OnEvicted(EvictionReason reason) override { evicted = true; }
    bool evicted = false;
  };
  struct Slot {
    std::unique_ptr<TcpTransport> transport;
    std::unique_ptr<Observer> observer;
    std::unique_ptr<Session> session;
  };
  struct Waiting {
    std::shared_ptr<const Call> call;
    CallDone done;
  };

  absl::Status CreateSessions() {
    for (uint32_t i = 0; i < options_.sessions; i++) {
      absl::StatusOr<std::unique_ptr<TcpTransport>> transport = TcpTransport::Create(
          &io_, {.cluster = options_.cluster, .addresses = options_.addresses});
      if (!transport.ok()) return transport.status();
      Slot slot;
      slot.transport = *std::move(transport);
      slot.observer = std::make_unique<Observer>();
      slot.session = std::make_unique<Session>(SessionOptions{.cluster = options_.cluster},
                                               slot.transport.get(), SystemClock(),
                                               slot.observer.get());
      slot.transport->Start(slot.session.get());
      slot.session->Register();
      slots_.push_back(std::move(slot));
    }
    ScheduleTick();
    return absl::OkStatus();
  }

  void ScheduleTick() {
    tick_timer_.expires_after(std::chrono::milliseconds(kTickMs));
    tick_timer_.async_wait([this](asio::error_code error) {
      if (error) return;
      for (Slot& slot : slots_) slot.session->Tick();
      ScheduleTick();
    });
  }

  // Gives queued calls to free sessions, oldest first. Runs on the I/O thread.
  void Pump() {
    while (!free_.empty() && !queue_.empty()) {
      const size_t index = free_.front();
      free_.pop_front();
      Waiting waiting = std::move(queue_.front());
      queue_.pop_front();
      Send(index, std::move(waiting));
    }
  }

  void Send(size_t index, Waiting waiting) {
    const Call& call = *waiting.call;
    const OperationInfo& info = GetOperationInfo(call.operation);
    const std::span<const uint8_t> batches[] = {call.events};
    std::vector<uint8_t> body = EncodeMultiBatch(info.event_size, batches);
    auto shared = std::make_shared<Waiting>(std::move(waiting));
    absl::Status sent = slots_[index].session->SendRequest(
        static_cast<uint8_t>(call.operation), body,
        [this, index, shared](absl::StatusOr<SessionReply> reply) {
          absl::Status status = reply.status();
          if (status.ok()) status = CheckReply(*shared->call, *reply);
          if (slots_[index].session->idle()) {
            free_.push_back(index);
          }
          shared->call.reset();  // Let go first: the caller may reuse it at once.
          std::move(shared->done)(std::move(status));
          // Pump later, outside the session's callback.
          asio::post(io_, [this] { Pump(); });
        });
    if (!sent.ok()) {
      if (slots_[index].session->idle()) free_.push_back(index);
      shared->call.reset();
      std::move(shared->done)(std::move(sent));
    }
  }

  static absl::Status CheckReply(const Call& call, const SessionReply& reply) {
    const OperationInfo& info = GetOperationInfo(call.operation);
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(reply.body, info.result_size);
    if (!batches.ok()) return batches.status();
    if (batches->size() != 1) {
      return absl::DataLossError(absl::StrCat("reply has ", batches->size(), " batches, not 1"));
    }
    return CheckNativeResults(call, (*batches)[0]);
  }

  const DirectDriverOptions options_;
  asio::io_context io_{1};  // One thread runs it.
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer tick_timer_;
  // Everything below is touched only on the I/O thread (or after it has stopped).
  std::vector<Slot> slots_;
  std::deque<size_t> free_;
  std::deque<Waiting> queue_;
  std::thread thread_;  // Last: starts after every member it uses exists.
};

}  // namespace

absl::StatusOr<std::unique_ptr<Driver>> MakeDirectDriver(DirectDriverOptions options) {
  if (options.sessions < 1 || options.sessions > kDirectSessionsMax) {
    return absl::InvalidArgumentError(absl::StrCat("sessions must be 1..", kDirectSessionsMax));
  }
  if (options.addresses.empty()) return absl::InvalidArgumentError("no cluster address");
  auto driver = std::make_unique<DirectDriver>(std::move(options));
  absl::Status connected = driver->Connect();
  if (!connected.ok()) return connected;
  return driver;
}

}  // namespace tb::bench
