// Per-call protobuf arenas for the unary RPCs (internal to proxy/grpc/grpc_service.cc).
//
// Without them every typed request costs one heap allocation per message object (a Transfer and
// each Uint128 inside it) and as many frees; with an arena they are carved from one block that
// starts inside the holder itself and is released in one go when the call is done.
#pragma once

#include <cstddef>

#include "google/protobuf/arena.h"
#include "grpcpp/support/message_allocator.h"

namespace tb::proxy::internal {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder(); }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(initial_block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    // A 1- to 4-event call fits the inline block; larger ones grow the arena from the heap.
    static constexpr size_t kInlineBytes = 1024;
    static google::protobuf::ArenaOptions Options(char* initial_block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = initial_block;
      options.initial_block_size = kInlineBytes;
      options.start_block_size = 4096;
      return options;
    }

    alignas(std::max_align_t) char initial_block_[kInlineBytes];
    google::protobuf::Arena arena_;  // After initial_block_: it is built on it.
  };
};

// One stateless allocator per message pair, shared by every service instance, never destroyed.
template <typename Request, typename Response>
grpc::MessageAllocator<Request, Response>* SharedArenaAllocator() {
  static auto* const allocator = new ArenaMessageAllocator<Request, Response>();
  return allocator;
}

}  // namespace tb::proxy::internal
