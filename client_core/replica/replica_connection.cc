#include "client_core/replica/replica_connection.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio.hpp"
#include "client_core/assert.h"
#include "client_core/replica/internal/connection_io.h"

namespace tb::replica {
namespace {

absl::Status PeerStatus(const std::error_code& error) {
  if (error == asio::error::eof) return absl::UnavailableError("the peer closed the connection");
  return absl::UnavailableError(absl::StrCat("connection failed: ", error.message()));
}

}  // namespace

const char* CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kPeer: return "peer";
    case CloseReason::kFramingError: return "framing_error";
    case CloseReason::kSlowReader: return "slow_reader";
    case CloseReason::kLocal: return "local";
  }
  return "unknown";
}

ReplicaConnection::ReplicaConnection(std::unique_ptr<internal::ConnectionIo> io, uint8_t replica,
                                     const ReplicaConnectionOptions& options)
    : io_(std::move(io)), replica_(replica), options_(options), framer_(options.cluster) {
  TB_ASSERT(io_ != nullptr);
  TB_ASSERT(options_.write_queue_bytes_max >= 1);
}

ReplicaConnection::~ReplicaConnection() = default;

void ReplicaConnection::Start(ConnectionId id, ReplicaConnectionHandler* handler) {
  TB_ASSERT(handler != nullptr);
  TB_ASSERT(handler_ == nullptr, "Start() is called once");
  TB_ASSERT(!closed_);
  id_ = id;
  handler_ = handler;
  Read();
}

void ReplicaConnection::Send(MessageBytes message) {
  TB_ASSERT(message != nullptr);
  if (closed_) return;
  if (write_queue_bytes_ + message->size() > options_.write_queue_bytes_max) {
    CloseFor(CloseReason::kSlowReader,
             absl::ResourceExhaustedError(absl::StrCat(
                 "more than ", options_.write_queue_bytes_max, " bytes queued for writing")));
    return;
  }
  AddQueued(message->size());
  write_queue_.push_back(std::move(message));
  if (!writing_) Write();
}

void ReplicaConnection::Close() { CloseFor(CloseReason::kLocal, absl::OkStatus()); }

void ReplicaConnection::CloseFor(CloseReason reason, const absl::Status& status) {
  if (closed_) return;
  closed_ = true;
  // The handler may drop its reference in OnClosed, while a caller up the stack still runs here.
  const std::shared_ptr<ReplicaConnection> self = shared_from_this();
  asio::error_code ignored;
  io_->socket.close(ignored);
  // Nothing queued will be written; a write in flight still refers to the queued messages until
  // its handler runs, which frees them.
  RemoveQueued(write_queue_bytes_);
  if (!writing_) write_queue_.clear();
  if (handler_ != nullptr) handler_->OnClosed(*this, reason, status);
}

void ReplicaConnection::AddQueued(uint64_t bytes) {
  write_queue_bytes_ += bytes;
  if (options_.write_queue_bytes_all != nullptr) {
    options_.write_queue_bytes_all->fetch_add(bytes, std::memory_order_relaxed);
  }
}

void ReplicaConnection::RemoveQueued(uint64_t bytes) {
  TB_ASSERT(write_queue_bytes_ >= bytes);
  write_queue_bytes_ -= bytes;
  if (options_.write_queue_bytes_all != nullptr) {
    const uint64_t before =
        options_.write_queue_bytes_all->fetch_sub(bytes, std::memory_order_relaxed);
    TB_ASSERT(before >= bytes);
  }
}

void ReplicaConnection::Read() {
  const std::span<uint8_t> space = framer_.WritableSpan();
  io_->socket.async_read_some(asio::buffer(space.data(), space.size()),
                              [self = shared_from_this()](asio::error_code error, size_t size) {
                                self->OnRead(error, size);
                              });
}

void ReplicaConnection::OnRead(const std::error_code& error, size_t size) {
  if (closed_) return;
  if (error) {
    CloseFor(CloseReason::kPeer, PeerStatus(error));
    return;
  }
  framer_.Commit(size);
  while (!closed_) {
    absl::StatusOr<std::span<const uint8_t>> message = framer_.Next();
    if (!message.ok()) {
      CloseFor(CloseReason::kFramingError, message.status());
      return;
    }
    if (message->empty()) break;
    handler_->OnMessage(*this, *message);
  }
  if (!closed_) Read();
}

void ReplicaConnection::Write() {
  TB_ASSERT(!writing_ && !write_queue_.empty());
  writing_ = true;
  writes_started_++;
  std::vector<asio::const_buffer>& buffers = io_->write_buffers;
  buffers.clear();
  for (size_t i = 0; i < write_queue_.size() && i < kWriteMessagesMax; i++) {
    buffers.push_back(asio::buffer(*write_queue_[i]));
  }
  asio::async_write(io_->socket, buffers,
                    [self = shared_from_this(), count = buffers.size()](asio::error_code error,
                                                                        size_t) {
                      self->OnWrite(error, count);
                    });
}

void ReplicaConnection::OnWrite(const std::error_code& error, size_t count) {
  TB_ASSERT(writing_);
  writing_ = false;
  if (closed_) {
    TB_ASSERT(write_queue_bytes_ == 0);  // Uncounted by CloseFor.
    write_queue_.clear();
    return;
  }
  if (error) {
    CloseFor(CloseReason::kPeer, PeerStatus(error));
    return;
  }
  TB_ASSERT(count <= write_queue_.size());
  for (size_t i = 0; i < count; i++) {
    RemoveQueued(write_queue_.front()->size());
    write_queue_.pop_front();
  }
  if (!write_queue_.empty()) Write();
}

}  // namespace tb::replica
