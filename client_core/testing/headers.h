// Header views for tests: a zeroed header of one command with the frame fields every message
// carries, ready for a test to set the command's own fields (and SetChecksums when it needs
// valid checksums).
//
//   RequestHeader request = TestRequest();  // create_transfers, no body yet.
//   request.frame.size = kHeaderSize + 128;
#pragma once

#include <cstdint>
#include <cstring>

#include "client_core/checksum.h"
#include "client_core/header.h"
#include "client_core/operation.h"
#include "client_core/release.h"
#include "client_core/u128.h"

namespace tb::client_core::testing {

inline constexpr u128 kTestClient = MakeU128(0xAAAA, 0xBBBB);
inline constexpr uint32_t kTestRelease = MakeRelease(0, 17, 9);

// A header of `command` with no body: release kTestRelease, `cluster`, size kHeaderSize and the
// empty body's checksum; every other byte zero.
template <typename View>
View EmptyHeader(Command command, u128 cluster = 0) {
  View view;
  std::memset(&view, 0, sizeof(view));
  view.frame.command = command;
  view.frame.release = kTestRelease;
  view.frame.cluster = cluster;
  view.frame.size = kHeaderSize;
  view.frame.checksum_body = kChecksumOfEmpty;
  return view;
}

// A create_transfers request of kTestClient (session 3, request 4) with no body.
inline RequestHeader TestRequest(u128 cluster = 0) {
  auto request = EmptyHeader<RequestHeader>(Command::kRequest, cluster);
  request.client = kTestClient;
  request.session = 3;
  request.request = 4;
  request.operation = static_cast<uint8_t>(Operation::kCreateTransfers);
  return request;
}

// The reply to TestRequest(): op and commit 9, timestamp 12345, no body.
inline ReplyHeader TestReply(u128 cluster = 0) {
  auto reply = EmptyHeader<ReplyHeader>(Command::kReply, cluster);
  reply.client = kTestClient;
  reply.op = 9;
  reply.commit = 9;
  reply.timestamp = 12345;
  reply.request = 4;
  reply.operation = static_cast<uint8_t>(Operation::kCreateTransfers);
  return reply;
}

}  // namespace tb::client_core::testing
