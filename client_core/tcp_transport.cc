// TcpTransport: one Connection per replica. Each Connection is a small state machine:
//
//   kWaiting     -- backoff timer running before the next connect attempt
//   kConnecting  -- resolving the address or connecting the socket
//   kConnected   -- reading messages and writing the send queue
//   kShutDown    -- closed for good; handlers that still arrive do nothing
//
// Asynchronous handlers hold a shared_ptr to their Connection, so a TcpTransport can be destroyed
// while operations are pending: they complete later with an error and find kShutDown. Each
// socket lifetime has a generation number; a handler from an older generation is ignored, which
// makes "fail once, reconnect once" hold even when a read and a write fail together.
#include "client_core/tcp_transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <deque>
#include <random>
#include <utility>

#include <asio.hpp>  // ASIO_STANDALONE comes from the build.

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"

namespace tb {
namespace {

constexpr uint32_t kSendQueueMaxLimit = 1024;
constexpr uint32_t kConnectingQueueMaxLimit = 16;
constexpr uint32_t kConnectAttemptsExponentMax = 20;

// Socket options of the official peers (PROTOCOL.md §2.2): they find a dead peer within ~17 s
// instead of waiting for the kernel's default of hours. Failures are harmless and ignored.
void SetSocketOptions(asio::ip::tcp::socket& socket) {
  asio::error_code ignored;
  socket.set_option(asio::ip::tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  const int fd = socket.native_handle();
  const int keep_idle_s = 5, keep_interval_s = 4, keep_count = 3, user_timeout_ms = 17'000;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &keep_idle_s, sizeof(keep_idle_s));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &keep_interval_s, sizeof(keep_interval_s));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &keep_count, sizeof(keep_count));
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
}

absl::Status ValidateOptions(const TcpTransportOptions& options) {
  if (options.addresses.empty() || options.addresses.size() > kReplicaCountMax) {
    return absl::InvalidArgumentError(absl::StrCat("addresses: need 1..", kReplicaCountMax,
                                                   " replica addresses, got ",
                                                   options.addresses.size()));
  }
  for (const ReplicaAddress& address : options.addresses) {
    if (address.host.empty() || address.port == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("addresses: invalid address ", HostPortToString(address)));
    }
  }
  if (options.send_queue_max < 1 || options.send_queue_max > kSendQueueMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("send_queue_max: must be in 1..", kSendQueueMaxLimit));
  }
  if (options.connecting_queue_max > kConnectingQueueMaxLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("connecting_queue_max: must be in 0..", kConnectingQueueMaxLimit));
  }
  if (options.connect_delay_min <= absl::ZeroDuration() ||
      options.connect_delay_max < options.connect_delay_min ||
      options.connect_delay_max > absl::Minutes(10)) {
    return absl::InvalidArgumentError(
        "connect_delay_min/max: need 0 < min <= max <= 10 minutes");
  }
  return absl::OkStatus();
}

}  // namespace

class TcpTransport::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(asio::io_context* io_context, uint32_t replica, const TcpTransportOptions* options,
             std::shared_ptr<Stats> stats, uint64_t seed)
      : replica_(replica),
        options_(options),
        address_(options->addresses[replica]),
        stats_(std::move(stats)),
        socket_(*io_context),
        resolver_(*io_context),
        timer_(*io_context),
        random_(seed) {}

  void Start(TransportReceiver* receiver) {
    TB_ASSERT(state_ == State::kIdle);
    receiver_ = receiver;
    Connect();  // The first attempt starts at once; backoff applies to reconnects.
  }

  void Shutdown() {
    if (state_ == State::kShutDown) return;
    state_ = State::kShutDown;
    receiver_ = nullptr;
    generation_++;
    CloseSocket();
    timer_.cancel();
    resolver_.cancel();
    queue_.clear();
  }

  void Send(MessageBytes message) {
    if (state_ == State::kShutDown || state_ == State::kIdle) return Dropped();
    const uint32_t queue_max =
        state_ == State::kConnected ? options_->send_queue_max : options_->connecting_queue_max;
    if (queue_.size() >= queue_max) return Dropped();
    queue_.push_back(std::move(message));
    if (state_ == State::kConnected && !writing_) WriteNext();
  }

  bool connected() const { return state_ == State::kConnected; }

 private:
  enum class State : uint8_t { kIdle, kWaiting, kConnecting, kConnected, kShutDown };

  void Dropped() { stats_->messages_dropped++; }

  void CloseSocket() {
    asio::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    writing_ = false;
  }

  // Closes the connection after an error or EOF and schedules a reconnect. Messages still queued
  // are dropped: the session re-sends what matters on its retry timer.
  void Fail() {
    TB_ASSERT(state_ == State::kConnecting || state_ == State::kConnected);
    if (state_ == State::kConnected) stats_->disconnects++;
    generation_++;
    CloseSocket();
    stats_->messages_dropped += queue_.size();
    queue_.clear();
    ScheduleConnect();
  }

  void ScheduleConnect() {
    state_ = State::kWaiting;
    const int64_t min_ms = absl::ToInt64Milliseconds(options_->connect_delay_min);
    const int64_t max_ms = absl::ToInt64Milliseconds(options_->connect_delay_max);
    const uint32_t exponent = std::min(attempts_, kConnectAttemptsExponentMax);
    const int64_t jitter_max = std::min(max_ms - min_ms, min_ms << exponent);
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(jitter_max, 0));
    attempts_++;
    timer_.expires_after(std::chrono::milliseconds(min_ms + jitter(random_)));
    timer_.async_wait([self = shared_from_this(), generation = generation_](asio::error_code error) {
      if (error || self->generation_ != generation || self->state_ != State::kWaiting) return;
      self->Connect();
    });
  }

  void Connect() {
    state_ = State::kConnecting;
    asio::error_code error;
    const asio::ip::address ip = asio::ip::make_address(address_.host, error);
    if (!error) {
      ConnectTo({asio::ip::tcp::endpoint(ip, address_.port)});
      return;
    }
    resolver_.async_resolve(
        address_.host, std::to_string(address_.port),
        [self = shared_from_this(), generation = generation_](
            asio::error_code error, asio::ip::tcp::resolver::results_type results) {
          if (self->generation_ != generation || self->state_ != State::kConnecting) return;
          if (error) return self->Fail();
          std::vector<asio::ip::tcp::endpoint> endpoints;
          for (const auto& entry : results) endpoints.push_back(entry.endpoint());
          self->ConnectTo(std::move(endpoints));
        });
  }

  void ConnectTo(std::vector<asio::ip::tcp::endpoint> endpoints) {
    asio::async_connect(socket_, endpoints,
                        [self = shared_from_this(), generation = generation_](
                            asio::error_code error, const asio::ip::tcp::endpoint&) {
                          if (self->generation_ != generation ||
                              self->state_ != State::kConnecting) {
                            return;
                          }
                          if (error) return self->Fail();
                          self->OnConnected();
                        });
  }

  void OnConnected() {
    state_ = State::kConnected;
    stats_->connects++;
    SetSocketOptions(socket_);
    ReadHeader();
    if (!queue_.empty()) WriteNext();
    // May send (a ping that binds this connection to the client id) or even shut us down.
    if (receiver_ != nullptr) receiver_->OnConnected(replica_);
  }

  void ReadHeader() {
    asio::async_read(socket_, asio::buffer(header_bytes_),
                     [self = shared_from_this(), generation = generation_](asio::error_code error,
                                                                           size_t) {
                       if (self->generation_ != generation) return;
                       if (error) return self->Fail();
                       self->OnHeader();
                     });
  }

  void OnHeader() {
    absl::StatusOr<Header> header = DecodeHeader(header_bytes_, options_->cluster);
    if (!header.ok()) return FrameError();
    header_ = *header;
    TB_ASSERT(header_.frame.size >= kHeaderSize && header_.frame.size <= kMessageSizeMax,
              "DecodeHeader bounds the size");
    body_.resize(header_.frame.size - kHeaderSize);
    if (body_.empty()) return OnBody();
    asio::async_read(socket_, asio::buffer(body_),
                     [self = shared_from_this(), generation = generation_](asio::error_code error,
                                                                           size_t) {
                       if (self->generation_ != generation) return;
                       if (error) return self->Fail();
                       self->OnBody();
                     });
  }

  void OnBody() {
    if (!ValidateBody(header_, body_).ok()) return FrameError();
    stats_->messages_received++;
    attempts_ = 0;  // Bytes arrived: the next reconnect starts from the shortest delay.
    const uint64_t generation = generation_;
    // Keep this Connection alive even if the callback destroys the whole transport.
    std::shared_ptr<Connection> self = shared_from_this();
    if (receiver_ != nullptr) receiver_->OnMessage(replica_, header_, body_);
    if (generation_ != generation || state_ != State::kConnected) return;
    ReadHeader();
  }

  void FrameError() {
    stats_->frame_errors++;
    Fail();
  }

  void WriteNext() {
    TB_ASSERT(state_ == State::kConnected && !writing_ && !queue_.empty());
    writing_ = true;
    const std::vector<uint8_t>& bytes = *queue_.front();
    TB_ASSERT(bytes.size() >= kHeaderSize && bytes.size() <= kMessageSizeMax);
    asio::async_write(socket_, asio::buffer(bytes),
                      [self = shared_from_this(), generation = generation_](
                          asio::error_code error, size_t) {
                        if (self->generation_ != generation) return;
                        self->writing_ = false;
                        if (error) return self->Fail();
                        self->stats_->messages_sent++;
                        self->queue_.pop_front();
                        if (!self->queue_.empty()) self->WriteNext();
                      });
  }

  const uint32_t replica_;
  const TcpTransportOptions* const options_;  // Owned by the TcpTransport; see shut-down rule.
  const ReplicaAddress address_;
  const std::shared_ptr<Stats> stats_;
  asio::ip::tcp::socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  std::mt19937_64 random_;

  State state_ = State::kIdle;
  TransportReceiver* receiver_ = nullptr;
  uint64_t generation_ = 0;
  uint32_t attempts_ = 0;
  bool writing_ = false;
  std::deque<MessageBytes> queue_;  // Bounded by send_queue_max / connecting_queue_max.
  std::array<uint8_t, kHeaderSize> header_bytes_{};
  Header header_{};
  std::vector<uint8_t> body_;
};

absl::StatusOr<std::unique_ptr<TcpTransport>> TcpTransport::Create(asio::io_context* io_context,
                                                                   TcpTransportOptions options) {
  TB_ASSERT(io_context != nullptr);
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  return std::unique_ptr<TcpTransport>(new TcpTransport(io_context, std::move(options)));
}

TcpTransport::TcpTransport(asio::io_context* io_context, TcpTransportOptions options)
    : io_context_(io_context),
      options_(std::move(options)),
      stats_(std::make_shared<Stats>()) {
  std::random_device device;
  std::mt19937_64 seeds(options_.seed != 0 ? options_.seed
                                           : (uint64_t{device()} << 32) ^ device());
  for (uint32_t replica = 0; replica < options_.addresses.size(); replica++) {
    connections_.push_back(
        std::make_shared<Connection>(io_context_, replica, &options_, stats_, seeds()));
  }
}

TcpTransport::~TcpTransport() { Shutdown(); }

void TcpTransport::Start(TransportReceiver* receiver) {
  TB_ASSERT(receiver != nullptr);
  TB_ASSERT(!started_ && !shut_down_, "Start() is called once, before Shutdown()");
  started_ = true;
  for (const std::shared_ptr<Connection>& connection : connections_) connection->Start(receiver);
}

void TcpTransport::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (const std::shared_ptr<Connection>& connection : connections_) connection->Shutdown();
}

uint32_t TcpTransport::replica_count() const {
  return static_cast<uint32_t>(connections_.size());
}

void TcpTransport::Send(uint32_t replica, MessageBytes message) {
  TB_ASSERT(replica < connections_.size());
  TB_ASSERT(message != nullptr);
  TB_ASSERT(message->size() >= kHeaderSize && message->size() <= kMessageSizeMax);
  connections_[replica]->Send(std::move(message));
}

bool TcpTransport::connected(uint32_t replica) const {
  TB_ASSERT(replica < connections_.size());
  return connections_[replica]->connected();
}

TcpTransport::Stats TcpTransport::stats() const { return *stats_; }

}  // namespace tb
