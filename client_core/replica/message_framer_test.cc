#include "client_core/replica/message_framer.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "client_core/header.h"
#include "client_core/replica/testing/test_client.h"
#include "gtest/gtest.h"

namespace tb::replica {
namespace {

using client_core::testing::ParseHeader;
using client_core::testing::Serialize;
using testing::TestClient;

// Feeds `stream` in pieces of the given sizes (cycled) and collects the messages.
absl::StatusOr<std::vector<std::vector<uint8_t>>> Frame(MessageFramer& framer,
                                                        const std::vector<uint8_t>& stream,
                                                        const std::vector<size_t>& pieces) {
  std::vector<std::vector<uint8_t>> messages;
  size_t offset = 0;
  for (size_t i = 0; offset < stream.size(); i++) {
    std::span<uint8_t> space = framer.WritableSpan();
    const size_t size = std::min({pieces[i % pieces.size()], space.size(), stream.size() - offset});
    std::memcpy(space.data(), stream.data() + offset, size);
    framer.Commit(size);
    offset += size;
    while (true) {
      absl::StatusOr<std::span<const uint8_t>> message = framer.Next();
      if (!message.ok()) return message.status();
      if (message->empty()) break;
      messages.emplace_back(message->begin(), message->end());
    }
  }
  return messages;
}

std::vector<uint8_t> Concatenate(const std::vector<std::vector<uint8_t>>& messages) {
  std::vector<uint8_t> stream;
  for (const auto& message : messages) stream.insert(stream.end(), message.begin(), message.end());
  return stream;
}

TEST(MessageFramer, SplitsAStreamIntoMessagesWhateverTheReadSizes) {
  TestClient client(7);
  std::vector<std::vector<uint8_t>> sent = {client.Ping(1), client.Register(),
                                            client.Request(146, std::vector<uint8_t>(70000, 0xFF)),
                                            client.Ping(2)};
  const std::vector<uint8_t> stream = Concatenate(sent);
  for (const std::vector<size_t>& pieces :
       std::vector<std::vector<size_t>>{{1}, {7, 300}, {255, 257}, {1 << 20}, {4096}}) {
    MessageFramer framer(0, /*initial_capacity=*/1024);
    auto received = Frame(framer, stream, pieces);
    ASSERT_TRUE(received.ok()) << received.status();
    EXPECT_EQ(*received, sent) << pieces[0];
    EXPECT_EQ(framer.buffered_size(), 0u);
    EXPECT_LE(framer.capacity(), kMessageSizeMax);
  }
}

TEST(MessageFramer, GrowsOnlyToTheLargestMessage) {
  TestClient client(7);
  const std::vector<uint8_t> big = client.Request(146, std::vector<uint8_t>(kMessageBodySizeMax, 0));
  MessageFramer framer(0, 1024);
  auto received = Frame(framer, big, {65536});
  ASSERT_TRUE(received.ok());
  ASSERT_EQ(received->size(), 1u);
  EXPECT_EQ(framer.capacity(), kMessageSizeMax);
  // Consumed and nothing buffered: the next read starts from the initial size again.
  EXPECT_EQ(framer.WritableSpan().size(), 1024u);
  EXPECT_EQ(framer.capacity(), 1024u);
  // And a large message still gets through afterwards.
  received = Frame(framer, big, {65536});
  ASSERT_TRUE(received.ok());
  ASSERT_EQ(received->size(), 1u);
  EXPECT_EQ((*received)[0], big);
}

TEST(MessageFramer, RefusesBrokenHeadersBeforeTrustingTheSize) {
  TestClient client(7);
  std::vector<uint8_t> bad_checksum = client.Ping();
  bad_checksum[120] ^= 1;
  Header oversize = ParseHeader(client.Ping());
  oversize.frame.size = kMessageSizeMax + 1;
  SetHeaderChecksum(oversize);
  Header undersize = ParseHeader(client.Ping());
  undersize.frame.size = 255;
  SetHeaderChecksum(undersize);
  Header command_zero = ParseHeader(client.Ping());
  command_zero.frame.command = Command::kReserved;
  Header command_unknown = ParseHeader(client.Ping());
  command_unknown.frame.command = static_cast<Command>(kCommandMax + 1);
  const auto bytes = [](Header header) {
    std::vector<uint8_t> out(kHeaderSize);
    std::memcpy(out.data(), &header, kHeaderSize);
    return out;
  };
  for (const auto& message :
       {bad_checksum, bytes(oversize), bytes(undersize), Serialize(command_zero, {}),
        Serialize(command_unknown, {}), TestClient(7, kReleaseServer, /*cluster=*/3).Ping()}) {
    MessageFramer framer(0);
    EXPECT_FALSE(Frame(framer, message, {1 << 20}).ok());
  }
}

TEST(MessageFramer, WaitsForTheRestOfATruncatedMessage) {
  TestClient client(7);
  const std::vector<uint8_t> message = client.Register();
  MessageFramer framer(0);
  auto received = Frame(framer, std::vector<uint8_t>(message.begin(), message.end() - 1), {4096});
  ASSERT_TRUE(received.ok());
  EXPECT_TRUE(received->empty());
  EXPECT_EQ(framer.buffered_size(), message.size() - 1);
}

TEST(MessageFramer, RandomBytesNeverCrashIt) {
  const uint64_t seed = 7;
  std::mt19937_64 random(seed);
  for (int round = 0; round < 200; round++) {
    std::vector<uint8_t> stream(1 + random() % 5000);
    for (uint8_t& byte : stream) byte = static_cast<uint8_t>(random());
    MessageFramer framer(0);
    auto received = Frame(framer, stream, {1 + random() % 600});
    if (received.ok()) EXPECT_TRUE(received->empty()) << "seed " << seed;
  }
}

TEST(CheckFrame, LeavesReservedFieldsToTheProtocol) {
  Header header = ParseHeader(TestClient(7).Ping());
  header.frame.epoch = 1;
  header.frame.protocol = 2;
  const std::vector<uint8_t> bytes = Serialize(header, {});
  EXPECT_TRUE(CheckFrame(bytes, 0).ok());
  EXPECT_FALSE(DecodeHeader(bytes, 0).ok());
}

}  // namespace
}  // namespace tb::replica
