#include "proxy/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client_core/header.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/metrics/metrics_http.h"
#include "proxy/native/native_frontend.h"
#include "proxy/testing/metrics_exposition.h"

namespace tb::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::Sample;
using testing::SamplesAre;

struct HttpResponse {
  int status = 0;
  std::string body;
};

// Sends `request` to 127.0.0.1:`port`, half-closes, and returns everything the server sent
// until it closed the connection.
std::string Exchange(uint16_t port, const std::string& request) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ADD_FAILURE() << "connect to port " << port << " failed";
    close(fd);
    return "";
  }
  // The server may answer and close before reading everything (e.g. a request too large).
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string raw;
  char buffer[4096];
  for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) raw.append(buffer, n);
  close(fd);
  return raw;
}

// A minimal HTTP/1.0 client: the listener under test is the only peer, on 127.0.0.1.
HttpResponse Request(uint16_t port, const std::string& method, const std::string& path) {
  HttpResponse response;
  const std::string raw =
      Exchange(port, method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  const size_t space = raw.find(' ');
  const size_t split = raw.find("\r\n\r\n");
  if (space == std::string::npos || split == std::string::npos ||
      !absl::SimpleAtoi(raw.substr(space + 1, 3), &response.status)) {
    ADD_FAILURE() << "malformed response: " << raw;
    return response;
  }
  response.body = raw.substr(split + 4);
  return response;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = MetricsHttpServer::Start(
        {.address = "127.0.0.1:0"}, [this] { return metrics_.Exposition(); },
        [this] { return ready_.load(); });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_NE(server_->port(), 0);
  }

  std::string Scrape() {
    HttpResponse response = Request(server_->port(), "GET", "/metrics");
    EXPECT_EQ(response.status, 200);
    return response.body;
  }

  Metrics metrics_{{.version = "1.2.3", .tigerbeetle_release = "0.17.9"}};
  std::atomic<bool> ready_{false};
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpTest, CountsRequestsAndEventsByOperationAndOutcome) {
  metrics_.RecordRequest(Frontend::kGrpc, 147, absl::StatusCode::kOk, 10);
  metrics_.RecordRequest(Frontend::kGrpc, 147, absl::StatusCode::kOk, 5);
  metrics_.RecordRequest(Frontend::kGrpc, 146, absl::StatusCode::kResourceExhausted, 7);
  metrics_.RecordRequest(Frontend::kGrpc, 128, absl::StatusCode::kInvalidArgument, 1);
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_requests_total{frontend="grpc",operation="create_transfers",outcome="ok"})", 2},
       {R"(tbproxy_events_total{frontend="grpc",operation="create_transfers",outcome="ok"})", 15},
       {R"(tbproxy_requests_total{frontend="grpc",operation="create_accounts",)"
        R"(outcome="resource_exhausted"})",
        1},
       {R"(tbproxy_events_total{frontend="grpc",operation="unknown",outcome="invalid_argument"})",
        1}}));
  // Outcomes that never happened are not exposed.
  EXPECT_THAT(text, Not(HasSubstr(R"(operation="create_transfers",outcome="aborted")")));
}

TEST_F(MetricsHttpTest, CountsResultStatusesByName) {
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 0xFFFFFFFF, 8);
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 54, 3);  // exceeds_credits
  metrics_.RecordResultStatus(Frontend::kGrpc, 146, 21, 2);  // exists
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 999, 1);
  // Again, now that the series exist; an unnamed status counts as "unknown" too.
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 0xFFFFFFFF, 2);
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 100, 1);
  metrics_.RecordResultStatus(Frontend::kNative, 146, 21, 4);
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_results_total{frontend="grpc",operation="create_transfers",status="created"})",
        10},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_transfers",)"
        R"(status="exceeds_credits"})",
        3},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_accounts",status="exists"})", 2},
       {R"(tbproxy_results_total{frontend="native",operation="create_accounts",status="exists"})",
        4},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_transfers",status="unknown"})",
        2}}));
}

TEST_F(MetricsHttpTest, ObservesMessageShapeAndWait) {
  metrics_.RecordMessage({.operation = 147,
                          .event_count = 4000,
                          .batch_count = 3,
                          .body_size = 512000,
                          .limit_fill = 0.45,
                          .queue_wait = absl::Milliseconds(3)});
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_message_events_sum{operation="create_transfers"})", 4000},
       {R"(tbproxy_message_events_bucket{operation="create_transfers",le="2000"})", 0},
       {R"(tbproxy_message_events_bucket{operation="create_transfers",le="4000"})", 1},
       {R"(tbproxy_message_batches_bucket{operation="create_transfers",le="4"})", 1},
       {R"(tbproxy_message_batches_bucket{operation="create_transfers",le="2"})", 0},
       {R"(tbproxy_message_fill_ratio_bucket{operation="create_transfers",le="0.5"})", 1},
       {R"(tbproxy_message_fill_ratio_bucket{operation="create_transfers",le="0.4"})", 0},
       {R"(tbproxy_queue_wait_seconds_count{operation="create_transfers"})", 1},
       {R"(tbproxy_queue_wait_seconds_bucket{operation="create_transfers",le="0.0025"})", 0},
       {R"(tbproxy_queue_wait_seconds_bucket{operation="create_transfers",le="0.005"})", 1}}));
  // Every forwardable operation has its series from the start (no gaps in dashboards).
  EXPECT_EQ(Sample(text, R"(tbproxy_message_events_count{operation="get_change_events"})"), 0);
}

TEST_F(MetricsHttpTest, ObservesLatencies) {
  metrics_.RecordRoundTrip(140, absl::Milliseconds(20));
  metrics_.RecordRequestDuration(Frontend::kGrpc, 140, absl::Milliseconds(30));
  metrics_.RecordRequestDuration(Frontend::kGrpc, 140, absl::Seconds(20));
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_cluster_round_trip_seconds_bucket{operation="lookup_accounts",le="0.025"})", 1},
       {R"(tbproxy_cluster_round_trip_seconds_bucket{operation="lookup_accounts",le="0.01"})", 0},
       {R"(tbproxy_request_duration_seconds_bucket{frontend="grpc",operation="lookup_accounts",le="10"})",
        1},
       {R"(tbproxy_request_duration_seconds_bucket{frontend="grpc",operation="lookup_accounts",le="+Inf"})",
        2}}));
}

TEST_F(MetricsHttpTest, ReportsQueueSessionsAndRefusals) {
  metrics_.SetQueued(1200, 153600);
  metrics_.SetSessionsRegistered(3);
  metrics_.SetSessionBudget(8);
  metrics_.AddGrpcCallsInFlight(+1);
  metrics_.AddGrpcCallsInFlight(+1);
  metrics_.AddGrpcCallsInFlight(-1);
  metrics_.RecordRefusal(RefusalReason::kQueuedBytes);
  metrics_.RecordRefusal(RefusalReason::kQueuedBytes);
  metrics_.RecordRefusal(RefusalReason::kClosed);
  metrics_.RecordLateResultsDropped(147, 3);
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_queued_events", 1200},
                                {"tbproxy_queued_bytes", 153600},
                                {"tbproxy_sessions_registered", 3},
                                {"tbproxy_session_budget", 8},
                                {"tbproxy_grpc_calls_in_flight", 1},
                                {R"(tbproxy_refusals_total{reason="queued_bytes_max"})", 2},
                                {R"(tbproxy_refusals_total{reason="closed"})", 1},
                                {R"(tbproxy_refusals_total{reason="callers_max"})", 0},
                                {R"(tbproxy_refusals_total{reason="invalid_input"})", 0},
                                {"tbproxy_late_results_dropped_total", 3}}));
}

TEST_F(MetricsHttpTest, ScrapeHooksSampleGaugesOnEveryScrape) {
  uint64_t queued_events = 10;
  metrics_.AddScrapeHook([&queued_events](Metrics& metrics) {
    metrics.SetQueued(queued_events, queued_events * 128);
    metrics.SetSessionsRegistered(2);
  });
  std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_queued_events", 10},
                                {"tbproxy_queued_bytes", 1280},
                                {"tbproxy_sessions_registered", 2}}));
  queued_events = 0;
  text = Scrape();
  EXPECT_TRUE(SamplesAre(text, {{"tbproxy_queued_events", 0}, {"tbproxy_queued_bytes", 0}}));
}

TEST_F(MetricsHttpTest, CountsEvictionsResendsAndViewChanges) {
  metrics_.RecordEviction(1);
  metrics_.RecordEviction(7);
  metrics_.RecordEviction(7);
  metrics_.RecordEviction(0);
  metrics_.RecordEviction(200);
  metrics_.RecordSessionReplaced();
  metrics_.RecordResend();
  metrics_.RecordResend();
  metrics_.RecordViewChange(5);
  metrics_.RecordViewChange(3);
  metrics_.RecordKeepWarm();
  metrics_.RecordPoolFailed();
  const std::string text = Scrape();
  EXPECT_TRUE(
      SamplesAre(text, {{R"(tbproxy_session_evictions_total{reason="no_session"})", 1},
                        {R"(tbproxy_session_evictions_total{reason="session_too_low"})", 2},
                        {R"(tbproxy_session_evictions_total{reason="unknown"})", 2},
                        {R"(tbproxy_session_evictions_total{reason="invalid_request_body"})", 0},
                        {"tbproxy_session_replacements_total", 1},
                        {"tbproxy_request_resends_total", 2},
                        {"tbproxy_view_changes_total", 2},
                        {"tbproxy_cluster_view", 5},
                        {"tbproxy_keep_warm_requests_total", 1},
                        {"tbproxy_pool_failures_total", 1}}));
}

TEST_F(MetricsHttpTest, NativeFrontEndSeriesAppearWithTheFirstSnapshotAndFollowIt) {
  EXPECT_THAT(Scrape(), Not(HasSubstr("tbproxy_native_")));  // No native port, no series.
  NativeFrontendStats stats{.connections_open = 3,
                            .connections_refused = 2,
                            .accept_errors = 1,
                            .slow_readers_closed = 4,
                            .reply_bytes_queued = 12345,
                            .sessions = 7,
                            .requests = 40,
                            .batches = 55,
                            .replies = 38,
                            .duplicates = 5,
                            .drops = 2,
                            .closes = 6};
  stats.evictions_by_reason[static_cast<size_t>(EvictionReason::kNoSession)] = 9;
  stats.evictions_by_reason[static_cast<size_t>(EvictionReason::kInvalidRequestBody)] = 1;
  metrics_.AddScrapeHook([&stats](Metrics& metrics) { metrics.SetNativeFrontendStats(stats); });
  std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text, {{"tbproxy_native_connections", 3},
             {"tbproxy_native_reply_bytes_queued", 12345},
             {"tbproxy_native_sessions", 7},
             {"tbproxy_native_connections_refused_total", 2},
             {"tbproxy_native_accept_errors_total", 1},
             {"tbproxy_native_slow_readers_closed_total", 4},
             {"tbproxy_native_protocol_closes_total", 6},
             {"tbproxy_native_requests_total", 40},
             {"tbproxy_native_batches_total", 55},
             {"tbproxy_native_replies_total", 38},
             {"tbproxy_native_duplicate_requests_total", 5},
             {"tbproxy_native_drops_total", 2},
             {R"(tbproxy_native_session_evictions_total{reason="no_session"})", 9},
             {R"(tbproxy_native_session_evictions_total{reason="invalid_request_body"})", 1},
             {R"(tbproxy_native_session_evictions_total{reason="session_too_low"})", 0}}));
  EXPECT_THAT(text, HasSubstr("# TYPE tbproxy_native_requests_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE tbproxy_native_connections gauge"));

  stats.connections_open = 1;
  stats.reply_bytes_queued = 0;
  stats.requests = 41;
  stats.evictions_by_reason[static_cast<size_t>(EvictionReason::kNoSession)] = 10;
  text = Scrape();
  EXPECT_TRUE(
      SamplesAre(text, {{"tbproxy_native_connections", 1},
                        {"tbproxy_native_reply_bytes_queued", 0},
                        {"tbproxy_native_requests_total", 41},
                        {"tbproxy_native_batches_total", 55},
                        {R"(tbproxy_native_session_evictions_total{reason="no_session"})", 10}}));
}

TEST_F(MetricsHttpTest, GrpcStreamSeriesFollowTheSnapshotsAndTheCounterNeverGoesBack) {
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_streams_open", 0},
                                    {"tbproxy_grpc_streams_refused_total", 0}}));
  uint64_t open = 5;
  uint64_t refused = 2;
  metrics_.AddScrapeHook([&](Metrics& metrics) { metrics.SetGrpcStreams(open, refused); });
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_streams_open", 5},
                                    {"tbproxy_grpc_streams_refused_total", 2}}));
  open = 1;
  refused = 7;
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_streams_open", 1},
                                    {"tbproxy_grpc_streams_refused_total", 7}}));
  refused = 3;  // A snapshot from elsewhere must not move a counter back.
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_streams_refused_total", 7}}));
}

TEST_F(MetricsHttpTest, GrpcConnectionSeriesFollowTheSnapshotsAndCountersNeverGoBack) {
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_connections", 0},
                                    {"tbproxy_grpc_connections_refused_total", 0},
                                    {"tbproxy_grpc_accept_errors_total", 0}}));
  uint64_t open = 3;
  uint64_t refused = 4;
  uint64_t accept_errors = 1;
  metrics_.AddScrapeHook([&](Metrics& metrics) {
    metrics.SetGrpcConnections(open, refused, accept_errors);
  });
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_connections", 3},
                                    {"tbproxy_grpc_connections_refused_total", 4},
                                    {"tbproxy_grpc_accept_errors_total", 1}}));
  open = 0;
  refused = 2;  // A snapshot from elsewhere must not move a counter back.
  accept_errors = 5;
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_connections", 0},
                                    {"tbproxy_grpc_connections_refused_total", 4},
                                    {"tbproxy_grpc_accept_errors_total", 5}}));
}

TEST_F(MetricsHttpTest, GrpcCallMemorySeriesFollowTheSnapshotsAndTheCounterNeverGoesBack) {
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_call_memory_bytes", 0},
                                    {"tbproxy_grpc_call_memory_refused_total", 0}}));
  uint64_t reserved = 4096;
  uint64_t refused = 3;
  metrics_.AddScrapeHook(
      [&](Metrics& metrics) { metrics.SetGrpcCallMemory(reserved, refused); });
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_call_memory_bytes", 4096},
                                    {"tbproxy_grpc_call_memory_refused_total", 3}}));
  reserved = 0;
  refused = 1;  // A snapshot from elsewhere must not move a counter back.
  EXPECT_TRUE(SamplesAre(Scrape(), {{"tbproxy_grpc_call_memory_bytes", 0},
                                    {"tbproxy_grpc_call_memory_refused_total", 3}}));
}

TEST_F(MetricsHttpTest, ExposesBuildInfoAndHelp) {
  metrics_.RecordRequest(Frontend::kGrpc, 146, absl::StatusCode::kOk, 1);
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, R"(tbproxy_build_info{tigerbeetle_release="0.17.9",version="1.2.3"})"), 1);
  EXPECT_THAT(text, HasSubstr("# TYPE tbproxy_requests_total counter"));
  EXPECT_THAT(text, HasSubstr("# TYPE tbproxy_cluster_round_trip_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("# HELP tbproxy_session_budget "));
}

TEST_F(MetricsHttpTest, EveryNameHasThePrefixAndAUnitSuffixWhereNeeded) {
  metrics_.RecordRequest(Frontend::kGrpc, 147, absl::StatusCode::kOk, 1);
  metrics_.SetNativeFrontendStats({});
  metrics_.RecordResultStatus(Frontend::kGrpc, 147, 0xFFFFFFFF, 1);
  for (absl::string_view line : absl::StrSplit(Scrape(), '\n')) {
    if (!absl::StartsWith(line, "# TYPE ")) continue;
    const std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 4u) << line;
    EXPECT_TRUE(absl::StartsWith(parts[2], "tbproxy_")) << line;
    if (parts[3] == "counter") EXPECT_TRUE(absl::EndsWith(parts[2], "_total")) << line;
    if (parts[3] != "counter") EXPECT_FALSE(absl::EndsWith(parts[2], "_total")) << line;
  }
}

TEST_F(MetricsHttpTest, HealthIsAlwaysOkAndReadinessFollowsTheFunction) {
  EXPECT_EQ(Request(server_->port(), "GET", "/healthz").status, 200);
  HttpResponse not_ready = Request(server_->port(), "GET", "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, "not ready\n");
  ready_ = true;
  HttpResponse ready = Request(server_->port(), "GET", "/readyz");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, "ready\n");
  ready_ = false;
  EXPECT_EQ(Request(server_->port(), "GET", "/readyz").status, 503);
  EXPECT_EQ(Request(server_->port(), "GET", "/healthz").status, 200);
}

TEST_F(MetricsHttpTest, RefusesOtherPathsAndMethods) {
  EXPECT_EQ(Request(server_->port(), "GET", "/").status, 404);
  EXPECT_EQ(Request(server_->port(), "GET", "/metrics/extra").status, 404);
  EXPECT_EQ(Request(server_->port(), "GET", "/etc/passwd").status, 404);
  EXPECT_EQ(Request(server_->port(), "POST", "/metrics").status, 405);
  EXPECT_EQ(Request(server_->port(), "DELETE", "/readyz").status, 405);
  HttpResponse head = Request(server_->port(), "HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
}

TEST_F(MetricsHttpTest, SurvivesMalformedRequests) {
  const std::string garbage[] = {
      std::string("\x00\x01\x02\xff\r\n\r\n", 8),
      "GET\r\n\r\n",
      "GET /metrics HTTP/9.9\r\n\r\n",
      "GET /" + std::string(100'000, 'a') + " HTTP/1.0\r\n\r\n",
      "GET /healthz HTTP/1.0\r\n" + std::string(100'000, 'h') + ": x\r\n\r\n",
      "",
  };
  for (const std::string& request : garbage) {
    const std::string answer = Exchange(server_->port(), request);
    EXPECT_THAT(answer, Not(HasSubstr(" 200 "))) << request.substr(0, 40);
  }
  EXPECT_EQ(Request(server_->port(), "GET", "/healthz").status, 200);
}

TEST_F(MetricsHttpTest, RecordsFromManyThreadsWhileScraping) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([this] {
      for (int i = 0; i < kCalls; i++) {
        metrics_.RecordRequest(Frontend::kGrpc, 147, absl::StatusCode::kOk, 2);
        metrics_.RecordResultStatus(Frontend::kGrpc, 147, 0xFFFFFFFF, 2);
        metrics_.AddGrpcCallsInFlight(+1);
        metrics_.AddGrpcCallsInFlight(-1);
      }
    });
  }
  for (int i = 0; i < 5; i++) EXPECT_EQ(Request(server_->port(), "GET", "/metrics").status, 200);
  for (std::thread& thread : threads) thread.join();
  const std::string text = Scrape();
  EXPECT_TRUE(SamplesAre(
      text,
      {{R"(tbproxy_requests_total{frontend="grpc",operation="create_transfers",outcome="ok"})",
        kThreads * kCalls},
       {R"(tbproxy_events_total{frontend="grpc",operation="create_transfers",outcome="ok"})",
        2 * kThreads * kCalls},
       {R"(tbproxy_results_total{frontend="grpc",operation="create_transfers",status="created"})",
        2 * kThreads * kCalls},
       {"tbproxy_grpc_calls_in_flight", 0}}));
}

TEST(MetricsHttpServer, RefusesMalformedAddresses) {
  Metrics metrics({});
  for (const char* address : {"", "9464", ":9464", "localhost:9464", "127.0.0.1:", "127.0.0.1:x",
                              "127.0.0.1:65536", "::1:9464", "[::1]"}) {
    auto server = MetricsHttpServer::Start(
        {.address = address}, [&metrics] { return metrics.Exposition(); }, [] { return true; });
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument) << address;
  }
  auto server = MetricsHttpServer::Start(
      {.address = "127.0.0.1:0", .threads = 0}, [&metrics] { return metrics.Exposition(); },
      [] { return true; });
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsHttpServer, ReportsAPortInUseAsUnavailable) {
  Metrics metrics({});
  auto first = MetricsHttpServer::Start(
      {.address = "127.0.0.1:0"}, [&metrics] { return metrics.Exposition(); }, [] { return true; });
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsHttpServer::Start(
      {.address = absl::StrCat("127.0.0.1:", (*first)->port())},
      [&metrics] { return metrics.Exposition(); }, [] { return true; });
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  // The first one still serves.
  EXPECT_EQ(Request((*first)->port(), "GET", "/healthz").status, 200);
}

// civetweb's listener polls its socket for up to 2 s between looks at the stop flag; stopping
// must not wait that out. Each server has been polling for 100 ms when it is stopped, so a stop
// that waited for the poll would take about 1.9 s.
TEST(MetricsHttpServer, StopsWithoutWaitingForTheListenersPoll) {
  Metrics metrics({});
  for (const char* address : {"127.0.0.1:0", "0.0.0.0:0"}) {
    auto server = MetricsHttpServer::Start(
        {.address = address}, [&metrics] { return metrics.Exposition(); }, [] { return true; });
    ASSERT_TRUE(server.ok()) << address << ": " << server.status();
    EXPECT_EQ(Request((*server)->port(), "GET", "/healthz").status, 200) << address;
    absl::SleepFor(absl::Milliseconds(100));
    const absl::Time stop_started = absl::Now();
    server->reset();
    EXPECT_LT(absl::Now() - stop_started, absl::Seconds(1)) << address;
  }
}

}  // namespace
}  // namespace tb::proxy
