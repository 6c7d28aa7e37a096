#include "client_core/replica/message_framer.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client_core/assert.h"
#include "client_core/constants.h"
#include "client_core/header.h"

namespace tb::replica {

absl::StatusOr<Header> CheckFrame(std::span<const uint8_t> header_bytes, u128 cluster) {
  if (header_bytes.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("header truncated: ", header_bytes.size(), " of 256 bytes"));
  }
  Header header;
  std::memcpy(&header, header_bytes.data(), kHeaderSize);
  Header resealed = header;
  SetHeaderChecksum(resealed);
  if (resealed.frame.checksum != header.frame.checksum) {
    return absl::DataLossError("header checksum mismatch");
  }
  if (absl::Status fields = CheckFrameFields(header, cluster); !fields.ok()) return fields;
  return header;
}

absl::Status CheckFrameFields(const Header& header, u128 cluster) {
  if (header.frame.size < kHeaderSize || header.frame.size > kMessageSizeMax) {
    return absl::InvalidArgumentError(
        absl::StrCat("size ", header.frame.size, " outside 256..1048576"));
  }
  if (header.frame.cluster != cluster) {
    return absl::InvalidArgumentError(
        absl::StrCat("message for cluster ", U128ToDecimal(header.frame.cluster)));
  }
  const auto command = static_cast<uint8_t>(header.frame.command);
  if (command == 0 || command > kCommandMax) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command ", command));
  }
  return absl::OkStatus();
}

MessageFramer::MessageFramer(u128 cluster, size_t initial_capacity)
    : cluster_(cluster),
      initial_capacity_(std::clamp<size_t>(initial_capacity, kHeaderSize, kMessageSizeMax)),
      buffer_(initial_capacity_) {}

std::span<uint8_t> MessageFramer::WritableSpan() {
  TB_ASSERT(!broken_);
  TB_ASSERT(pending_size_ == 0 || end_ - begin_ < pending_size_,
            "drain complete messages with Next() first");
  if (begin_ == end_) {
    begin_ = end_ = 0;
    // Nothing buffered: give back what a large message made the buffer grow to.
    if (pending_size_ == 0 && buffer_.size() > initial_capacity_) {
      std::vector<uint8_t>(initial_capacity_).swap(buffer_);
    }
  }
  const size_t needed = std::max<size_t>(pending_size_, kHeaderSize);
  if (buffer_.size() < needed) buffer_.resize(needed);
  // Move the partial message to the front when the rest of it would not fit behind it, or when
  // there is hardly any room left.
  if (begin_ > 0 && (begin_ + needed > buffer_.size() || buffer_.size() - end_ < kHeaderSize)) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  TB_ASSERT(end_ < buffer_.size());
  return std::span<uint8_t>(buffer_.data() + end_, buffer_.size() - end_);
}

void MessageFramer::Commit(size_t size) {
  TB_ASSERT(end_ + size <= buffer_.size());
  end_ += size;
}

absl::StatusOr<std::span<const uint8_t>> MessageFramer::Next() {
  TB_ASSERT(!broken_);
  const size_t available = end_ - begin_;
  if (pending_size_ == 0) {
    if (available < kHeaderSize) return std::span<const uint8_t>();
    absl::StatusOr<Header> header =
        CheckFrame(std::span<const uint8_t>(buffer_.data() + begin_, kHeaderSize), cluster_);
    if (!header.ok()) {
      broken_ = true;
      return header.status();
    }
    TB_ASSERT(header->frame.size >= kHeaderSize && header->frame.size <= kMessageSizeMax,
              "CheckFrame checks the size range");
    pending_size_ = header->frame.size;
  }
  if (available < pending_size_) return std::span<const uint8_t>();
  std::span<const uint8_t> message(buffer_.data() + begin_, pending_size_);
  begin_ += pending_size_;
  pending_size_ = 0;
  return message;
}

}  // namespace tb::replica
