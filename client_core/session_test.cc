#include "client_core/session.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "client_core/multi_batch.h"
#include "client_core/outcome.h"
#include "client_core/testing/events.h"
#include "client_core/testing/fake_clock.h"
#include "client_core/testing/session_doubles.h"
#include "client_core/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tb {
namespace {

using ::tb::client_core::testing::Deliver;
using ::tb::client_core::testing::FakeClock;
using ::tb::client_core::testing::FakeTransport;
using ::tb::client_core::testing::MakeEviction;
using ::tb::client_core::testing::MakePong;
using ::tb::client_core::testing::MakeReply;
using ::tb::client_core::testing::RegisterResultBody;
using ::tb::client_core::testing::ReplyFields;
using ::tb::client_core::testing::SentMessage;

constexpr u128 kCluster = 7;
constexpr u128 kClient = MakeU128(0x1111222233334444ULL, 0x5555666677778888ULL);
constexpr uint32_t kLimit = 1'048'320;
constexpr uint8_t kCreateAccounts = 146;
constexpr uint8_t kLookupAccounts = 140;

std::vector<uint8_t> OneAccountBody(uint64_t id) {
  return client_core::testing::CreateAccountsBody(1, id);
}

std::vector<uint8_t> CreateResultBody(uint32_t count) {
  std::vector<uint8_t> results(count * sizeof(CreateResult));
  for (uint32_t i = 0; i < count; i++) {
    CreateResult result{};
    result.timestamp = 1000 + i;
    result.status = static_cast<uint32_t>(CreateAccountStatus::kCreated);
    std::memcpy(results.data() + i * sizeof(result), &result, sizeof(result));
  }
  const std::span<const uint8_t> batches[] = {results};
  return EncodeMultiBatch(sizeof(CreateResult), batches);
}

class RecordingObserver final : public SessionObserver {
 public:
  void OnRegistered(uint64_t session, uint32_t batch_size_limit) override {
    registered.push_back({session, batch_size_limit});
  }
  void OnEvicted(EvictionReason reason) override { evicted.push_back(reason); }
  void OnViewChanged(uint32_t view) override { views.push_back(view); }
  void OnResend(uint32_t attempts) override { resends.push_back(attempts); }
  void OnMessageDropped(absl::string_view reason) override { dropped.emplace_back(reason); }

  std::vector<std::pair<uint64_t, uint32_t>> registered;
  std::vector<EvictionReason> evicted;
  std::vector<uint32_t> views;
  std::vector<uint32_t> resends;
  std::vector<std::string> dropped;
};

// A session over a fake transport with `replicas` replicas.
class SessionHarness {
 public:
  explicit SessionHarness(uint32_t replicas = 1, uint64_t seed = 42,
                          uint32_t release = kReleaseClient)
      : transport(replicas),
        session({.cluster = kCluster, .release = release, .client_id = kClient, .seed = seed},
                &transport, &clock, &observer) {}

  void Deliver(uint32_t replica, const std::vector<uint8_t>& bytes) {
    client_core::testing::Deliver(session, kCluster, replica, bytes);
  }
  const SentMessage& LastRequest() {
    std::vector<SentMessage> requests = transport.Sent(Command::kRequest);
    EXPECT_FALSE(requests.empty());
    last_request_ = requests.back();
    return *last_request_;
  }
  void RegisterAndReply(uint64_t op = 5, uint32_t view = 0) {
    session.Register();
    Deliver(0, MakeReply(LastRequest(), RegisterResultBody(kLimit), {.view = view, .op = op}));
    ASSERT_TRUE(session.ready());
  }
  // Sends one create_accounts request; the result lands in `result`.
  void Send(std::optional<absl::StatusOr<SessionReply>>* result, uint64_t id = 1) {
    ASSERT_TRUE(session
                    .SendRequest(kCreateAccounts, OneAccountBody(id),
                                 [result](absl::StatusOr<SessionReply> reply) {
                                   ASSERT_FALSE(result->has_value()) << "called twice";
                                   result->emplace(std::move(reply));
                                 })
                    .ok());
  }
  void Ticks(uint32_t count) {
    for (uint32_t i = 0; i < count; i++) session.Tick();
  }

  // A result slot that outlives the session (whose destructor fails what is still in flight).
  std::optional<absl::StatusOr<SessionReply>>& NewResult() { return results_.emplace_back(); }

 private:
  std::deque<std::optional<absl::StatusOr<SessionReply>>> results_;

 public:
  FakeClock clock;
  FakeTransport transport;
  RecordingObserver observer;
  Session session;

 private:
  std::optional<SentMessage> last_request_;
};

// ---- Known-answer bytes -----------------------------------------------------------------------

std::vector<uint8_t> HexBytes(const std::string& hex) {
  const std::string bytes = absl::HexStringToBytes(hex);
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// `reply` with one header field changed by `alter`, its checksums made valid again: a reply a
// replica could have sent, but not to the request in flight.
std::vector<uint8_t> ReplyWithAlteredHeader(std::vector<uint8_t> reply,
                                            absl::FunctionRef<void(ReplyHeader&)> alter) {
  ReplyHeader header;
  std::memcpy(&header, reply.data(), kHeaderSize);
  alter(header);
  SetReplyChecksums(header, std::span(reply).subspan(kHeaderSize));
  std::memcpy(reply.data(), &header, kHeaderSize);
  return reply;
}

TEST(Session, RegisterRequestMatchesDeterministicVector) {
  // PROTOCOL.md §15.4: cluster 0, client 0x0123456789abcdeffedcba9876543210, release 0.17.9.
  FakeClock clock;
  FakeTransport transport(1);
  Session session({.cluster = 0,
                   .release = MakeRelease(0, 17, 9),
                   .client_id = MakeU128(0x0123456789abcdefULL, 0xfedcba9876543210ULL),
                   .seed = 1},
                  &transport, &clock, nullptr);
  session.Register();
  const std::vector<SentMessage> requests = transport.Sent(Command::kRequest);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].bytes->size(), 512u);
  EXPECT_EQ(requests[0].header().frame.checksum,
            MakeU128(0x8cca487e567b4b8eULL, 0x6efb7cb74bf11cd8ULL));
  const std::vector<uint8_t> expected_header = HexBytes(
      "d81cf14bb77cfb6e8e4b7b567e48ca8c00000000000000000000000000000000"
      "651b82f3ddd4fcbf2deb8496e8ff613c00000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000"
      "0002000000000000000000000911000000000500000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000"
      "1032547698badcfeefcdab896745230100000000000000000000000000000000"
      "0000000002000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000");
  EXPECT_TRUE(
      std::equal(expected_header.begin(), expected_header.end(), requests[0].bytes->begin()));
  for (size_t i = kHeaderSize; i < 512; i++) ASSERT_EQ((*requests[0].bytes)[i], 0) << i;
  // A ping follows the register right away (0.17.6+ behaviour), carrying session 0.
  const std::vector<SentMessage> pings = transport.Sent(Command::kPingClient);
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(HeaderAs<PingClientHeader>(pings[0].header()).session, 0u);
  EXPECT_EQ(transport.sent[0].header().frame.command, Command::kRequest);
}

TEST(Session, DeterministicVectorChainRegisterReplyThenCreateAccounts) {
  // PROTOCOL.md §15.4: the register reply's context becomes the parent of request #1.
  std::optional<absl::StatusOr<SessionReply>> result;  // Outlives the session.
  FakeClock clock;
  FakeTransport transport(1);
  Session session({.cluster = 0,
                   .release = MakeRelease(0, 17, 9),
                   .client_id = MakeU128(0x0123456789abcdefULL, 0xfedcba9876543210ULL),
                   .seed = 1},
                  &transport, &clock, nullptr);
  session.Register();
  const SentMessage register_request = transport.Sent(Command::kRequest)[0];
  Deliver(session, 0, 0,
          MakeReply(register_request, RegisterResultBody(1'048'320),
                    {.view = 0, .op = 1, .timestamp = 1'700'000'000'000'000'000}));
  ASSERT_TRUE(session.ready());
  EXPECT_EQ(session.session_number(), 1u);

  ASSERT_TRUE(session
                  .SendRequest(
                      146, OneAccountBody(1),
                      [&](absl::StatusOr<SessionReply> reply) { result.emplace(std::move(reply)); })
                  .ok());
  const SentMessage request = transport.Sent(Command::kRequest).back();
  EXPECT_EQ(request.header().frame.checksum,
            MakeU128(0x8e4a8acba27c7685ULL, 0xf4e5a919bc4298f5ULL));
  EXPECT_EQ(HeaderAs<RequestHeader>(request.header()).parent,
            MakeU128(0x3b10c97bfe00b4e0ULL, 0xc617d519232b0c2aULL));
}

// Replays the register and first create_accounts of a real 0.17.9 session (official Node client
// against a real replica): with the same client id, release and latency our bytes are identical.
std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

std::string JsonString(const std::string& json, const std::string& key, size_t* position) {
  // The capture files are generated JSON with `"key": "value"`; a tiny scan is enough here.
  const std::string needle = "\"" + key + "\": \"";
  const size_t start = json.find(needle, *position);
  EXPECT_NE(start, std::string::npos) << key;
  if (start == std::string::npos) return "";
  const size_t value = start + needle.size();
  const size_t end = json.find('"', value);
  *position = end;
  return json.substr(value, end - value);
}

struct CapturedMessage {
  std::vector<uint8_t> bytes;  // Header and body.
};

std::vector<CapturedMessage> ReadCapture(const std::string& name) {
  const std::string json =
      ReadFile(std::string(TB_SHARED_DIR) + "/spec/captures/real-0.17.9/single-dev/" + name);
  EXPECT_FALSE(json.empty()) << name;
  std::vector<CapturedMessage> messages;
  size_t position = 0;
  while (json.find("\"header_hex\"", position) != std::string::npos) {
    CapturedMessage message;
    message.bytes = HexBytes(JsonString(json, "header_hex", &position));
    const std::vector<uint8_t> body = HexBytes(JsonString(json, "body_hex", &position));
    message.bytes.insert(message.bytes.end(), body.begin(), body.end());
    messages.push_back(std::move(message));
  }
  return messages;
}

TEST(Session, ReproducesRealClientBytesAndAcceptsRealReplies) {
  const std::vector<CapturedMessage> registration = ReadCapture("01_register.json");
  const std::vector<CapturedMessage> create = ReadCapture("02_create_accounts_mixed.json");
  ASSERT_EQ(registration.size(), 2u);
  ASSERT_EQ(create.size(), 2u);
  const RequestHeader captured_register =
      HeaderAs<RequestHeader>(*DecodeHeader(std::span(registration[0].bytes).first(256), 0));
  const RequestHeader captured_create =
      HeaderAs<RequestHeader>(*DecodeHeader(std::span(create[0].bytes).first(256), 0));

  FakeClock clock;
  FakeTransport transport(1);
  RecordingObserver observer;
  Session session({.cluster = 0,
                   .release = captured_register.frame.release,
                   .client_id = captured_register.client,
                   .seed = 1},
                  &transport, &clock, &observer);
  session.Register();
  EXPECT_EQ(*transport.Sent(Command::kRequest)[0].bytes, registration[0].bytes);

  clock.AdvanceNs(uint64_t{captured_create.previous_request_latency} * 1000);
  Deliver(session, 0, 0, registration[1].bytes);
  ASSERT_TRUE(session.ready());
  EXPECT_EQ(session.session_number(), 2u);
  EXPECT_EQ(session.view(), 1u);
  EXPECT_EQ(session.batch_size_limit(), 32'512u);
  EXPECT_THAT(observer.registered, ::testing::ElementsAre(std::make_pair(2u, 32'512u)));

  std::optional<absl::StatusOr<SessionReply>> result;
  const std::vector<uint8_t> body(create[0].bytes.begin() + 256, create[0].bytes.end());
  ASSERT_TRUE(session
                  .SendRequest(
                      146, body,
                      [&](absl::StatusOr<SessionReply> reply) { result.emplace(std::move(reply)); })
                  .ok());
  EXPECT_EQ(*transport.Sent(Command::kRequest).back().bytes, create[0].bytes);
  Deliver(session, 0, 0, create[1].bytes);
  ASSERT_TRUE(result.has_value());
  ASSERT_TRUE(result->ok()) << result->status();
  EXPECT_EQ((*result)->op, 3u);
  EXPECT_EQ((*result)->body,
            std::vector<uint8_t>(create[1].bytes.begin() + 256, create[1].bytes.end()));
  EXPECT_TRUE(observer.dropped.empty());
}

// ---- Register and chain -----------------------------------------------------------------------

TEST(Session, RegisterFlowSetsSessionLimitAndReady) {
  SessionHarness h(3);
  EXPECT_EQ(h.session.state(), Session::State::kIdle);
  h.session.Register();
  EXPECT_EQ(h.session.state(), Session::State::kRegistering);
  EXPECT_TRUE(h.session.busy());
  // Register to the primary and one backup, then a ping to every replica.
  ASSERT_EQ(h.transport.Sent(Command::kRequest).size(), 2u);
  EXPECT_EQ(h.transport.Sent(Command::kPingClient).size(), 3u);
  const RequestHeader request = HeaderAs<RequestHeader>(h.LastRequest().header());
  EXPECT_EQ(request.operation, 2);
  EXPECT_EQ(request.frame.size, 512u);
  EXPECT_EQ(request.client, kClient);
  EXPECT_EQ(request.frame.release, kReleaseClient);
  // Requests before the register reply are refused.
  EXPECT_EQ(h.session.SendRequest(kCreateAccounts, OneAccountBody(1), [](auto) {}).code(),
            absl::StatusCode::kFailedPrecondition);

  h.Deliver(1, MakeReply(h.LastRequest(), RegisterResultBody(32'512), {.view = 1, .op = 9}));
  EXPECT_TRUE(h.session.ready());
  EXPECT_TRUE(h.session.idle());
  EXPECT_EQ(h.session.session_number(), 9u);
  EXPECT_EQ(h.session.batch_size_limit(), 32'512u);
  EXPECT_EQ(h.session.view(), 1u);
  EXPECT_THAT(h.observer.views, ::testing::ElementsAre(1u));
  EXPECT_THAT(h.observer.registered, ::testing::ElementsAre(std::make_pair(9u, 32'512u)));
}

TEST(Session, RegisterReplyWithZeroLimitIsDroppedAndRetried) {
  SessionHarness h;
  h.session.Register();
  h.Deliver(0, MakeReply(h.LastRequest(), RegisterResultBody(0)));
  EXPECT_FALSE(h.session.ready());
  EXPECT_EQ(h.observer.dropped.size(), 1u);
  h.Ticks(kRequestTimeoutTicksInitial);
  EXPECT_EQ(h.transport.Sent(Command::kRequest).size(), 2u);
}

TEST(Session, ChainParentIsPreviousReplyContext) {
  SessionHarness h;
  h.RegisterAndReply(/*op=*/5);
  // The harness's register reply, rebuilt: replies are deterministic.
  const std::vector<uint8_t> register_bytes =
      MakeReply(h.LastRequest(), RegisterResultBody(kLimit), {.view = 0, .op = 5});
  const ReplyHeader register_reply =
      HeaderAs<ReplyHeader>(*DecodeHeader(std::span(register_bytes).first(256), kCluster));

  auto& first = h.NewResult();
  h.Send(&first, 1);
  const RequestHeader request_1 = HeaderAs<RequestHeader>(h.LastRequest().header());
  EXPECT_EQ(request_1.request, 1u);
  EXPECT_EQ(request_1.session, 5u);
  EXPECT_EQ(request_1.parent, register_reply.context);
  const std::vector<uint8_t> reply_1 = MakeReply(h.LastRequest(), CreateResultBody(1));
  h.Deliver(0, reply_1);
  ASSERT_TRUE(first.has_value() && first->ok());
  EXPECT_EQ((*first)->request, 1u);
  EXPECT_EQ((*first)->body, std::vector<uint8_t>(reply_1.begin() + 256, reply_1.end()));

  auto& second = h.NewResult();
  h.Send(&second, 2);
  const RequestHeader request_2 = HeaderAs<RequestHeader>(h.LastRequest().header());
  EXPECT_EQ(request_2.request, 2u);
  EXPECT_EQ(request_2.parent,
            HeaderAs<ReplyHeader>(*DecodeHeader(std::span(reply_1).first(256), kCluster)).context);
  EXPECT_EQ(h.session.request_number(), 2u);
}

TEST(Session, PreviousRequestLatencyIsReportedInMicroseconds) {
  SessionHarness h;
  h.session.Register();
  h.clock.AdvanceNs(2'500'000);  // 2.5 ms register round trip.
  h.Deliver(0, MakeReply(h.LastRequest(), RegisterResultBody(kLimit)));
  auto& result = h.NewResult();
  h.Send(&result);
  EXPECT_EQ(HeaderAs<RequestHeader>(h.LastRequest().header()).previous_request_latency, 2500u);
  h.clock.AdvanceNs(uint64_t{10'000} * 1'000'000'000);  // Saturates the u32 of microseconds.
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));
  result.reset();
  h.Send(&result, 2);
  EXPECT_EQ(HeaderAs<RequestHeader>(h.LastRequest().header()).previous_request_latency, UINT32_MAX);
}

TEST(Session, CallbackMaySendTheNextRequest) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& second = h.NewResult();
  bool first_done = false;
  ASSERT_TRUE(h.session
                  .SendRequest(kCreateAccounts, OneAccountBody(1),
                               [&](absl::StatusOr<SessionReply> reply) {
                                 first_done = true;
                                 EXPECT_TRUE(h.session.idle());
                                 h.Send(&second, 2);
                               })
                  .ok());
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));
  EXPECT_TRUE(first_done);
  EXPECT_TRUE(h.session.busy());
  EXPECT_EQ(HeaderAs<RequestHeader>(h.LastRequest().header()).request, 2u);
}

// ---- Refusals ---------------------------------------------------------------------------------

TEST(Session, RefusesOperationsThatAreNotForwardable) {
  SessionHarness h;
  h.RegisterAndReply();
  const size_t sent_before = h.transport.sent.size();
  for (int operation : {0, 1, 2, 3, 4, 5, 6, 127, 128, 129, 136, 138, 139, 148, 255}) {
    const absl::Status status =
        h.session.SendRequest(static_cast<uint8_t>(operation), std::vector<uint8_t>(),
                              [](auto) { ADD_FAILURE() << "must not be called"; });
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << operation;
  }
  EXPECT_EQ(h.transport.sent.size(), sent_before);
  EXPECT_TRUE(h.session.idle());
}

TEST(Session, RefusesInvalidBodies) {
  SessionHarness h;
  h.session.Register();
  h.Deliver(0, MakeReply(h.LastRequest(), RegisterResultBody(3840)));
  const size_t sent_before = h.transport.sent.size();
  auto refused = [&](uint8_t operation, std::vector<uint8_t> body) {
    return h.session.SendRequest(operation, body,
                                 [](auto) { ADD_FAILURE() << "must not be called"; });
  };
  // Not multi-batch encoded.
  EXPECT_EQ(refused(kCreateAccounts, std::vector<uint8_t>(100, 0)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused(kCreateAccounts, {}).code(), absl::StatusCode::kInvalidArgument);
  // Larger than the session's batch_size_limit.
  EXPECT_EQ(refused(kLookupAccounts, std::vector<uint8_t>(3841, 0)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.transport.sent.size(), sent_before);
  EXPECT_TRUE(h.session.idle());
}

TEST(Session, RefusesASecondRequestWhileOneIsInFlight) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& first = h.NewResult();
  h.Send(&first);
  EXPECT_EQ(h.session.SendRequest(kCreateAccounts, OneAccountBody(2), [](auto) {}).code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---- Timeouts and retries ---------------------------------------------------------------------

TEST(Session, ResendsIdenticalBytesWithGrowingBackoff) {
  SessionHarness h(1, /*seed=*/7);
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  const std::vector<uint8_t> original = *h.LastRequest().bytes;
  const size_t requests_before = h.transport.Sent(Command::kRequest).size();

  h.Ticks(kRequestTimeoutTicksInitial - 1);
  EXPECT_EQ(h.transport.Sent(Command::kRequest).size(), requests_before);
  h.Ticks(1);
  ASSERT_EQ(h.transport.Sent(Command::kRequest).size(), requests_before + 1);
  EXPECT_EQ(*h.LastRequest().bytes, original);
  EXPECT_THAT(h.observer.resends, ::testing::ElementsAre(1u));

  // Retry k waits 2·rtt + 1 + uniform[0, min(999, 2^k)] ticks, rtt = 30 before any pong.
  uint32_t gap_max_late = 0;
  for (uint32_t attempt = 1; attempt <= 14; attempt++) {
    uint32_t gap = 0;
    const size_t before = h.transport.Sent(Command::kRequest).size();
    while (h.transport.Sent(Command::kRequest).size() == before) {
      h.session.Tick();
      gap++;
      ASSERT_LE(gap, 2 * 30 + 1 + 999u);
    }
    EXPECT_EQ(*h.LastRequest().bytes, original);
    EXPECT_GE(gap, 2 * 30 + 1u) << attempt;
    EXPECT_LE(gap, 2 * 30 + 1 + std::min(999u, 1u << attempt)) << attempt;
    if (attempt >= 8) gap_max_late = std::max(gap_max_late, gap);
  }
  // The jitter range grew: with ranges of 256..999 ticks some late gap exceeds the early maximum.
  EXPECT_GT(gap_max_late, 2 * 30 + 1 + 4u);
  EXPECT_EQ(h.observer.resends.size(), 15u);
  EXPECT_FALSE(result.has_value());  // Never gives up on its own.
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));
  ASSERT_TRUE(result.has_value() && result->ok());
}

// The body is only borrowed for the call: the wire message built from a view into a larger buffer
// is byte-identical to one built from an owned vector, and resends stay identical after the
// caller's buffer is overwritten (the session keeps its wire message, not the caller's bytes).
TEST(Session, SendsABorrowedBodyAsTheSameWireBytesAndResendsThemAfterItChanges) {
  SessionHarness owned(1, /*seed=*/7);
  owned.RegisterAndReply();
  auto& owned_result = owned.NewResult();
  owned.Send(&owned_result, /*id=*/3);
  const std::vector<uint8_t> expected = *owned.LastRequest().bytes;

  SessionHarness borrowed(1, /*seed=*/7);
  borrowed.RegisterAndReply();
  const std::vector<uint8_t> body = OneAccountBody(3);
  std::vector<uint8_t> buffer(8, 0xAB);  // The body sits between unrelated bytes.
  buffer.insert(buffer.end(), body.begin(), body.end());
  buffer.insert(buffer.end(), 8, 0xCD);
  const std::span<const uint8_t> view = std::span<const uint8_t>(buffer).subspan(8, body.size());
  auto& borrowed_result = borrowed.NewResult();
  ASSERT_TRUE(borrowed.session
                  .SendRequest(kCreateAccounts, view,
                               [&borrowed_result](absl::StatusOr<SessionReply> reply) {
                                 borrowed_result.emplace(std::move(reply));
                               })
                  .ok());
  EXPECT_EQ(*borrowed.LastRequest().bytes, expected);
  ASSERT_EQ(expected.size(), kHeaderSize + body.size());
  EXPECT_TRUE(std::equal(body.begin(), body.end(), expected.begin() + kHeaderSize));

  std::fill(buffer.begin(), buffer.end(), 0);
  buffer.clear();
  buffer.shrink_to_fit();
  const size_t requests_before = borrowed.transport.Sent(Command::kRequest).size();
  borrowed.Ticks(kRequestTimeoutTicksInitial);
  ASSERT_EQ(borrowed.transport.Sent(Command::kRequest).size(), requests_before + 1);
  EXPECT_EQ(*borrowed.LastRequest().bytes, expected);
  borrowed.Deliver(0, MakeReply(borrowed.LastRequest(), CreateResultBody(1)));
  ASSERT_TRUE(borrowed_result.has_value() && borrowed_result->ok());
}

TEST(Session, RegisterIsRetriedUntilAnswered) {
  SessionHarness h;
  h.session.Register();
  const std::vector<uint8_t> original = *h.LastRequest().bytes;
  h.Ticks(kRequestTimeoutTicksInitial);
  ASSERT_EQ(h.transport.Sent(Command::kRequest).size(), 2u);
  EXPECT_EQ(*h.LastRequest().bytes, original);
}

TEST(Session, PingsEveryReplicaEveryThirtySeconds) {
  SessionHarness h(3);
  h.RegisterAndReply(/*op=*/4);
  EXPECT_EQ(h.transport.Sent(Command::kPingClient).size(), 3u);
  h.Ticks(kPingIntervalTicks - 1);
  EXPECT_EQ(h.transport.Sent(Command::kPingClient).size(), 3u);
  h.Ticks(1);
  const std::vector<SentMessage> pings = h.transport.Sent(Command::kPingClient);
  ASSERT_EQ(pings.size(), 6u);
  std::set<uint32_t> replicas;
  for (size_t i = 3; i < 6; i++) {
    replicas.insert(pings[i].replica);
    const PingClientHeader ping = HeaderAs<PingClientHeader>(pings[i].header());
    EXPECT_EQ(ping.session, 4u);
    EXPECT_EQ(ping.client, kClient);
    EXPECT_EQ(ping.ping_timestamp_monotonic, h.clock.NowNs());
    EXPECT_TRUE(ValidatePingClient(ping).ok());
  }
  EXPECT_EQ(replicas, (std::set<uint32_t>{0, 1, 2}));
}

TEST(Session, RttIsTheMedianOfPongSamples) {
  SessionHarness h(3);
  h.RegisterAndReply();
  const uint64_t sent_at = h.clock.NowNs();
  h.clock.Set(sent_at + 50'000'000);  // 50 ms.
  h.Deliver(0, MakePong(kCluster, sent_at, 0, 0));
  EXPECT_EQ(h.session.rtt_ticks(), 5u);
  h.clock.Set(sent_at + 2'000'000'000);  // 2 s.
  h.Deliver(1, MakePong(kCluster, sent_at, 0, 1));
  h.clock.Set(sent_at + 100'000'000);  // 100 ms.
  h.Deliver(2, MakePong(kCluster, sent_at, 0, 2));
  EXPECT_EQ(h.session.rtt_ticks(), 10u);  // Median of 5, 200 and 10 ticks.
  // A pong echoing a time in the future gives no sample.
  h.Deliver(0, MakePong(kCluster, h.clock.NowNs() + 1, 0, 0));
  EXPECT_EQ(h.session.rtt_ticks(), 10u);

  // The first retry still waits 600 ms; later ones 2·rtt + 1 + jitter.
  auto& result = h.NewResult();
  h.Send(&result);
  h.Ticks(kRequestTimeoutTicksInitial);
  const size_t before = h.transport.Sent(Command::kRequest).size();
  uint32_t gap = 0;
  while (h.transport.Sent(Command::kRequest).size() == before) {
    h.session.Tick();
    gap++;
    ASSERT_LE(gap, 100u);
  }
  EXPECT_GE(gap, 21u);
  EXPECT_LE(gap, 23u);
}

// ---- Views, primary and hedging ---------------------------------------------------------------

TEST(Session, EachTransmissionGoesToPrimaryAndOneRandomBackup) {
  SessionHarness h(3, /*seed=*/3);
  h.RegisterAndReply(/*op=*/5, /*view=*/1);
  auto& result = h.NewResult();
  h.transport.sent.clear();
  h.Send(&result);
  std::set<uint32_t> backups;
  for (int transmission = 0; transmission < 20; transmission++) {
    std::vector<SentMessage> requests = h.transport.Sent(Command::kRequest);
    ASSERT_EQ(requests.size(), 2u);
    EXPECT_EQ(requests[0].replica, 1u);  // view 1 mod 3.
    EXPECT_NE(requests[1].replica, 1u);
    backups.insert(requests[1].replica);
    h.transport.sent.clear();
    while (h.transport.Sent(Command::kRequest).empty()) h.session.Tick();
  }
  EXPECT_EQ(backups, (std::set<uint32_t>{0, 2}));
}

TEST(Session, ViewFromPongRetargetsTheNextRetryNotAnImmediateResend) {
  SessionHarness h(3);
  h.RegisterAndReply(/*op=*/5, /*view=*/0);
  auto& result = h.NewResult();
  h.Send(&result);
  EXPECT_EQ(h.transport.Sent(Command::kRequest).rbegin()[1].replica, 0u);  // Primary of view 0.
  const size_t before = h.transport.Sent(Command::kRequest).size();
  h.Deliver(2, MakePong(kCluster, h.clock.NowNs(), /*view=*/4, 2));
  EXPECT_EQ(h.session.view(), 4u);
  EXPECT_THAT(h.observer.views, ::testing::ElementsAre(4u));
  EXPECT_EQ(h.transport.Sent(Command::kRequest).size(), before);  // No immediate resend.
  h.Ticks(kRequestTimeoutTicksInitial);
  const std::vector<SentMessage> requests = h.transport.Sent(Command::kRequest);
  ASSERT_EQ(requests.size(), before + 2);
  EXPECT_EQ(requests[before].replica, 1u);  // 4 mod 3.
  // The retry is byte-identical, so it still carries the view of its first transmission.
  EXPECT_EQ(requests[before].header().frame.view, 0u);
  // A lower view never lowers ours.
  h.Deliver(0, MakePong(kCluster, h.clock.NowNs(), /*view=*/2, 0));
  EXPECT_EQ(h.session.view(), 4u);
}

TEST(Session, ViewFromReplyTargetsTheNewPrimaryAndIsCarriedInNewRequests) {
  SessionHarness h(3);
  h.RegisterAndReply(/*op=*/5, /*view=*/0);
  auto& result = h.NewResult();
  h.Send(&result);
  h.Deliver(2, MakeReply(h.LastRequest(), CreateResultBody(1), {.view = 2}));
  ASSERT_TRUE(result.has_value() && result->ok());
  EXPECT_EQ((*result)->view, 2u);
  h.transport.sent.clear();
  result.reset();
  h.Send(&result, 2);
  const std::vector<SentMessage> requests = h.transport.Sent(Command::kRequest);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].replica, 2u);
  EXPECT_EQ(requests[0].header().frame.view, 2u);
}

// ---- Reply matching ---------------------------------------------------------------------------

TEST(Session, DuplicateAndStaleRepliesAreIgnored) {
  SessionHarness h(3);
  h.RegisterAndReply();
  int calls = 0;
  ASSERT_TRUE(h.session
                  .SendRequest(kCreateAccounts, OneAccountBody(1),
                               [&](absl::StatusOr<SessionReply> reply) { calls++; })
                  .ok());
  const std::vector<uint8_t> reply_1 = MakeReply(h.LastRequest(), CreateResultBody(1));
  h.Deliver(0, reply_1);
  h.Deliver(1, reply_1);  // Backup's copy.
  EXPECT_EQ(calls, 1);
  auto& second = h.NewResult();
  h.Send(&second, 2);
  h.Deliver(2, reply_1);  // Stale: request 1 while 2 is in flight.
  h.Deliver(0, MakeReply(h.transport.Sent(Command::kRequest)[0], RegisterResultBody(kLimit)));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(second.has_value());
  EXPECT_TRUE(h.observer.dropped.empty());
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));
  EXPECT_TRUE(second.has_value());
}

TEST(Session, ReplyWithWrongRequestChecksumIsDropped) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  const std::vector<uint8_t> reply =
      ReplyWithAlteredHeader(MakeReply(h.LastRequest(), CreateResultBody(1)),
                             [](ReplyHeader& header) { header.request_checksum ^= 1; });
  h.Deliver(0, reply);
  EXPECT_FALSE(result.has_value());
  EXPECT_THAT(h.observer.dropped,
              ::testing::ElementsAre("reply does not match the request in flight"));
  EXPECT_TRUE(h.session.busy());
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));
  EXPECT_TRUE(result.has_value());
}

TEST(Session, ReplyAheadOfTheRequestInFlightIsDropped) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  const std::vector<uint8_t> reply =
      ReplyWithAlteredHeader(MakeReply(h.LastRequest(), CreateResultBody(1)),
                             [](ReplyHeader& header) { header.request += 1; });
  h.Deliver(0, reply);
  EXPECT_FALSE(result.has_value());
  EXPECT_THAT(h.observer.dropped, ::testing::ElementsAre("reply with a request number ahead"));
}

TEST(Session, ReplyWithAnotherReleaseOrClientIsDropped) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1), {.release = kReleaseServer}));
  const std::vector<uint8_t> reply =
      ReplyWithAlteredHeader(MakeReply(h.LastRequest(), CreateResultBody(1)),
                             [](ReplyHeader& header) { header.client += 1; });
  h.Deliver(0, reply);
  EXPECT_FALSE(result.has_value());
  EXPECT_THAT(h.observer.dropped,
              ::testing::ElementsAre("reply with another release", "reply for another client"));
}

TEST(Session, UnexpectedCommandsAndInvalidHeadersAreDroppedNotFatal) {
  SessionHarness h;
  h.RegisterAndReply();
  // A ping_client sent to a client.
  PingClientHeader ping{};
  ping.frame.cluster = kCluster;
  ping.frame.release = kReleaseClient;
  ping.frame.command = Command::kPingClient;
  ping.client = kClient;
  Header header = AsHeader(ping);
  SetChecksums(header, {});
  std::vector<uint8_t> bytes(256);
  std::memcpy(bytes.data(), &header, 256);
  h.Deliver(0, bytes);
  // A pong with a non-zero reserved byte.
  std::vector<uint8_t> pong = MakePong(kCluster, 1, 0, 0);
  Header pong_header;
  std::memcpy(&pong_header, pong.data(), 256);
  pong_header.command_specific[100] = 1;
  SetChecksums(pong_header, {});
  std::memcpy(pong.data(), &pong_header, 256);
  h.Deliver(0, pong);
  EXPECT_THAT(h.observer.dropped,
              ::testing::ElementsAre("unexpected command", "invalid pong header"));
  EXPECT_TRUE(h.session.idle());
}

// ---- Eviction ---------------------------------------------------------------------------------

class SessionEviction : public ::testing::TestWithParam<uint8_t> {};

TEST_P(SessionEviction, FailsTheRequestInFlightWithATypedErrorAndEndsTheSession) {
  const EvictionReason reason = static_cast<EvictionReason>(GetParam());
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  h.Deliver(0, MakeEviction(kCluster, kClient, reason, 0));
  ASSERT_TRUE(result.has_value());
  ASSERT_FALSE(result->ok());
  const absl::Status& status = result->status();
  EXPECT_EQ(GetEvictionReason(status), reason);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(EvictionReasonName(reason)));
  EXPECT_EQ(GetOutcome(status), Outcome::kNotApplied);  // Sent once: certainly not executed.
  switch (reason) {
    case EvictionReason::kClientReleaseTooLow:
    case EvictionReason::kClientReleaseTooHigh:
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
      break;
    case EvictionReason::kInvalidRequestOperation:
    case EvictionReason::kInvalidRequestBody:
    case EvictionReason::kInvalidRequestBodySize:
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      break;
    default:
      EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(h.session.state(), Session::State::kEvicted);
  EXPECT_EQ(h.session.eviction_reason(), reason);
  EXPECT_THAT(h.observer.evicted, ::testing::ElementsAre(reason));
  // Unusable for good: no sends, no retries, no pings.
  EXPECT_EQ(h.session.SendRequest(kCreateAccounts, OneAccountBody(2), [](auto) {}).code(),
            absl::StatusCode::kFailedPrecondition);
  const size_t sent = h.transport.sent.size();
  h.Ticks(kPingIntervalTicks);
  EXPECT_EQ(h.transport.sent.size(), sent);
}

INSTANTIATE_TEST_SUITE_P(AllReasons, SessionEviction, ::testing::Range<uint8_t>(1, 9));

TEST(Session, NoSessionAfterARetryHasUnknownOutcome) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  h.Ticks(kRequestTimeoutTicksInitial);
  h.Deliver(0, MakeEviction(kCluster, kClient, EvictionReason::kNoSession, 0));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(GetOutcome(result->status()), Outcome::kUnknown);
  EXPECT_EQ(GetEvictionReason(result->status()), EvictionReason::kNoSession);
}

TEST(Session, EvictionWhileRegisteringOrIdleEndsTheSession) {
  SessionHarness registering;
  registering.session.Register();
  registering.Deliver(0, MakeEviction(kCluster, kClient, EvictionReason::kClientReleaseTooHigh, 0));
  EXPECT_EQ(registering.session.state(), Session::State::kEvicted);
  EXPECT_FALSE(registering.session.busy());

  SessionHarness idle;
  idle.RegisterAndReply();
  idle.Deliver(0, MakeEviction(kCluster, kClient, EvictionReason::kNoSession, 0));
  EXPECT_EQ(idle.session.state(), Session::State::kEvicted);
  EXPECT_THAT(idle.observer.evicted, ::testing::ElementsAre(EvictionReason::kNoSession));
}

TEST(Session, EvictionForAnotherClientOrAnOlderViewIsIgnored) {
  SessionHarness h;
  h.RegisterAndReply(/*op=*/5, /*view=*/3);
  h.Deliver(0, MakeEviction(kCluster, kClient + 1, EvictionReason::kNoSession, 3));
  h.Deliver(0, MakeEviction(kCluster, kClient, EvictionReason::kNoSession, 2));
  EXPECT_TRUE(h.session.ready());
  EXPECT_EQ(h.observer.dropped.size(), 2u);
  h.Deliver(0, MakeEviction(kCluster, kClient, EvictionReason::kNoSession, 3));
  EXPECT_EQ(h.session.state(), Session::State::kEvicted);
}

TEST(Session, EvictionStatusRoundTripsEveryReason) {
  for (uint8_t value = 1; value <= kEvictionReasonMax; value++) {
    const EvictionReason reason = static_cast<EvictionReason>(value);
    EXPECT_EQ(GetEvictionReason(EvictionStatus(reason)), reason);
  }
  EXPECT_EQ(GetEvictionReason(absl::UnavailableError("x")), std::nullopt);
}

// ---- Close, connections, ids ------------------------------------------------------------------

TEST(Session, CloseFailsTheRequestInFlightWithUnknownOutcome) {
  SessionHarness h;
  h.RegisterAndReply();
  auto& result = h.NewResult();
  h.Send(&result);
  h.session.Close(absl::UnavailableError("shutting down"));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(GetOutcome(result->status()), Outcome::kUnknown);
  EXPECT_EQ(h.session.state(), Session::State::kClosed);
  h.session.Close(absl::UnavailableError("again"));               // Idempotent.
  h.Deliver(0, MakeReply(h.LastRequest(), CreateResultBody(1)));  // Ignored.
}

TEST(Session, DestructorCancelsTheRequestInFlight) {
  std::optional<absl::StatusOr<SessionReply>> result;
  {
    SessionHarness h;
    h.RegisterAndReply();
    h.Send(&result);
  }
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->status().code(), absl::StatusCode::kCancelled);
}

TEST(Session, ConnectingSendsAPingThatBindsTheConnection) {
  SessionHarness h(3);
  h.session.OnConnected(1);
  EXPECT_TRUE(h.transport.sent.empty());  // Not registering yet: nothing to bind.
  h.session.Register();
  h.transport.sent.clear();
  h.session.OnConnected(2);
  ASSERT_EQ(h.transport.sent.size(), 1u);
  EXPECT_EQ(h.transport.sent[0].replica, 2u);
  EXPECT_EQ(h.transport.sent[0].header().frame.command, Command::kPingClient);
}

TEST(Session, RandomClientIdsAreNonZeroAndDistinct) {
  std::set<u128> ids;
  for (int i = 0; i < 100; i++) {
    const u128 id = RandomClientId();
    EXPECT_NE(id, 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 100u);
  FakeClock clock;
  FakeTransport transport(1);
  Session a({}, &transport, &clock, nullptr);
  Session b({}, &transport, &clock, nullptr);
  EXPECT_NE(a.client_id(), 0u);
  EXPECT_NE(a.client_id(), b.client_id());
}

// ---- Robustness: nothing from the network can trip an assertion ---------------------------

// Mutates one byte of a valid message (header or body), re-checksums it so that it passes the
// transport's framing, and delivers it. Sessions in every state must survive every such message,
// and a request callback must still run at most once.
TEST(Session, SurvivesRandomlyMutatedMessagesFromTheNetwork) {
  const uint64_t seed = 20261122;
  SCOPED_TRACE(::testing::Message() << "seed " << seed);
  std::mt19937_64 random(seed);
  int delivered = 0;
  for (int round = 0; round < 300; round++) {
    SessionHarness h(1 + static_cast<uint32_t>(random() % 3), random());
    int calls = 0;
    h.session.Register();
    const bool registered = random() % 4 != 0;
    if (registered) {
      h.Deliver(0, MakeReply(h.LastRequest(), RegisterResultBody(kLimit)));
      ASSERT_TRUE(h.session
                      .SendRequest(kCreateAccounts, OneAccountBody(1),
                                   [&calls](absl::StatusOr<SessionReply>) { calls++; })
                      .ok());
    }
    std::vector<std::vector<uint8_t>> templates = {
        MakeReply(h.LastRequest(), registered ? CreateResultBody(1) : RegisterResultBody(kLimit)),
        MakePong(kCluster, h.clock.NowNs(), 1, 0),
        MakeEviction(kCluster, kClient, EvictionReason::kNoSession, 0),
    };
    for (int message = 0; message < 20; message++) {
      std::vector<uint8_t> bytes = templates[random() % templates.size()];
      const size_t position = random() % bytes.size();
      if (position == 96 || position == 97 || position == 98 || position == 99) continue;  // size
      bytes[position] = static_cast<uint8_t>(random());
      Header header;
      std::memcpy(&header, bytes.data(), kHeaderSize);
      const std::span<const uint8_t> body = std::span(bytes).subspan(kHeaderSize);
      if (header.frame.command == Command::kReply) {
        ReplyHeader reply = HeaderAs<ReplyHeader>(header);
        SetReplyChecksums(reply, body);
        header = AsHeader(reply);
      } else {
        SetChecksums(header, body);
      }
      std::memcpy(bytes.data(), &header, kHeaderSize);
      absl::StatusOr<Header> decoded = DecodeHeader(std::span(bytes).first(kHeaderSize), kCluster);
      if (!decoded.ok() || !ValidateBody(*decoded, body).ok()) continue;
      h.session.OnMessage(static_cast<uint32_t>(random() % h.session.replica_count()), *decoded,
                          body);
      delivered++;
      if (random() % 8 == 0) h.Ticks(static_cast<uint32_t>(random() % 200));
    }
    EXPECT_LE(calls, 1);
    h.session.Close(absl::CancelledError("end of round"));
    EXPECT_LE(calls, 1);
  }
  EXPECT_GT(delivered, 1000);
}

}  // namespace
}  // namespace tb
