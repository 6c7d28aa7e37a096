// tbproxy-probe: checks that a TigerBeetle 0.17.x cluster (or the dev cluster) answers a client
// built on client_core. It registers one session, creates accounts with random ids, looks them up
// and prints every result by name.
//
//   tbproxy-probe --addresses=127.0.0.1:3000 --cluster=0 --create-accounts=3
//
// Exit status: 0 all good; 1 the cluster answered something unexpected or evicted the session;
// 2 bad flags; 3 no answer before --timeout.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client_core/clock.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/parse.h"
#include "client_core/session.h"
#include "client_core/tcp_transport.h"
#include "client_core/types.h"

ABSL_FLAG(std::string, addresses, "127.0.0.1:3000",
          "Replica addresses host:port[,host:port...] in the cluster's replica order");
ABSL_FLAG(std::string, cluster, "0", "Cluster id (decimal, or hex with 0x)");
ABSL_FLAG(uint32_t, create_accounts, 3, "Accounts to create and look up (1..8189)");
ABSL_FLAG(uint32_t, ledger, 1, "Ledger of the created accounts (non-zero)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(15), "Give up when a step takes longer");

namespace tb {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 3;

class EvictionWatcher final : public SessionObserver {
 public:
  void OnEvicted(EvictionReason reason) override { evicted = reason; }
  void OnViewChanged(uint32_t view) override { std::printf("view changed: %u\n", view); }
  void OnResend(uint32_t attempts) override { std::printf("request re-sent (attempt %u)\n", attempts); }
  std::optional<EvictionReason> evicted;
};

class Probe {
 public:
  Probe(u128 cluster, std::vector<ReplicaAddress> addresses, absl::Duration timeout)
      : cluster_(cluster), addresses_(std::move(addresses)), timeout_(timeout), tick_timer_(io_) {}

  int Run(uint32_t account_count, uint32_t ledger) {
    absl::StatusOr<std::unique_ptr<TcpTransport>> transport =
        TcpTransport::Create(&io_, {.cluster = cluster_, .addresses = addresses_});
    if (!transport.ok()) return Fail(kExitUsage, transport.status().ToString());
    transport_ = *std::move(transport);
    session_ = std::make_unique<Session>(SessionOptions{.cluster = cluster_}, transport_.get(),
                                         SystemClock(), &watcher_);
    transport_->Start(session_.get());
    ScheduleTick();
    const int status = Steps(account_count, ledger);
    session_->Close(absl::CancelledError("probe finished"));
    transport_->Shutdown();
    tick_timer_.cancel();
    io_.restart();
    io_.run();
    return status;
  }

 private:
  int Steps(uint32_t account_count, uint32_t ledger) {
    std::printf("client id %s, cluster %s, %zu replica(s)\n",
                U128ToHex(session_->client_id()).c_str(), U128ToDecimal(cluster_).c_str(),
                addresses_.size());
    session_->Register();
    if (!RunUntil([&] { return session_->ready() || watcher_.evicted.has_value(); })) {
      return Fail(kExitTimeout, "no register reply (is the cluster up, and the cluster id right?)");
    }
    if (watcher_.evicted) return Evicted();
    std::printf("registered: session %llu, batch_size_limit %u, view %u\n",
                static_cast<unsigned long long>(session_->session_number()),
                session_->batch_size_limit(), session_->view());

    const OperationInfo& create = GetOperationInfo(Operation::kCreateAccounts);
    if (account_count > EventMax(create, session_->batch_size_limit())) {
      return Fail(kExitUsage, absl::StrCat("--create-accounts above this cluster's maximum of ",
                                           EventMax(create, session_->batch_size_limit())));
    }
    std::vector<u128> ids;
    std::vector<uint8_t> accounts(account_count * sizeof(Account));
    for (uint32_t i = 0; i < account_count; i++) {
      Account account{};
      account.id = RandomClientId() >> 1;  // Random, non-zero, never the reserved u128 max.
      if (account.id == 0) account.id = 1;
      account.ledger = ledger;
      account.code = 1;
      ids.push_back(account.id);
      std::memcpy(accounts.data() + i * sizeof(Account), &account, sizeof(Account));
    }
    absl::StatusOr<SessionReply> created = Request(Operation::kCreateAccounts, accounts);
    if (!created.ok()) return RequestFailed("create_accounts", created.status());
    int status = PrintCreateResults(*created, ids);
    if (status != 0) return status;

    std::vector<uint8_t> lookup(ids.size() * sizeof(u128));
    std::memcpy(lookup.data(), ids.data(), lookup.size());
    absl::StatusOr<SessionReply> found = Request(Operation::kLookupAccounts, lookup);
    if (!found.ok()) return RequestFailed("lookup_accounts", found.status());
    return PrintLookupResults(*found, ids);
  }

  absl::StatusOr<SessionReply> Request(Operation operation, const std::vector<uint8_t>& events) {
    const OperationInfo& info = GetOperationInfo(operation);
    const std::span<const uint8_t> batches[] = {events};
    std::optional<absl::StatusOr<SessionReply>> result;
    absl::Status sent = session_->SendRequest(
        static_cast<uint8_t>(operation), EncodeMultiBatch(info.event_size, batches),
        [&result](absl::StatusOr<SessionReply> reply) { result.emplace(std::move(reply)); });
    if (!sent.ok()) return sent;
    if (!RunUntil([&] { return result.has_value(); })) {
      return absl::DeadlineExceededError("no reply before --timeout");
    }
    return *std::move(result);
  }

  int PrintCreateResults(const SessionReply& reply, const std::vector<u128>& ids) {
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(reply.body, sizeof(CreateResult));
    if (!batches.ok() || batches->size() != 1 ||
        (*batches)[0].size() != ids.size() * sizeof(CreateResult)) {
      return Fail(kExitFailure, "create_accounts reply is not one dense result per account");
    }
    std::printf("create_accounts: op %llu, timestamp %llu\n",
                static_cast<unsigned long long>(reply.op),
                static_cast<unsigned long long>(reply.timestamp));
    int failures = 0;
    for (size_t i = 0; i < ids.size(); i++) {
      CreateResult result;
      std::memcpy(&result, (*batches)[0].data() + i * sizeof(result), sizeof(result));
      const char* name = CreateAccountStatusName(result.status);
      std::printf("  account %s: %s\n", U128ToDecimal(ids[i]).c_str(),
                  name[0] != '\0' ? name : absl::StrCat("status ", result.status).c_str());
      if (result.status != static_cast<uint32_t>(CreateAccountStatus::kCreated)) failures++;
    }
    if (failures > 0) return Fail(kExitFailure, absl::StrCat(failures, " account(s) not created"));
    return 0;
  }

  int PrintLookupResults(const SessionReply& reply, const std::vector<u128>& ids) {
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(reply.body, sizeof(Account));
    if (!batches.ok() || batches->size() != 1) {
      return Fail(kExitFailure, "lookup_accounts reply is not one batch of accounts");
    }
    const size_t found = (*batches)[0].size() / sizeof(Account);
    std::printf("lookup_accounts: %zu of %zu found\n", found, ids.size());
    for (size_t i = 0; i < found; i++) {
      Account account;
      std::memcpy(&account, (*batches)[0].data() + i * sizeof(account), sizeof(account));
      std::printf("  account %s: ledger %u, code %u, timestamp %llu\n",
                  U128ToDecimal(account.id).c_str(), account.ledger, account.code,
                  static_cast<unsigned long long>(account.timestamp));
      if (i >= ids.size() || account.id != ids[i]) {
        return Fail(kExitFailure, "lookup_accounts returned an unexpected account");
      }
    }
    if (found != ids.size()) return Fail(kExitFailure, "not every created account was found");
    std::printf("ok\n");
    return 0;
  }

  bool RunUntil(const std::function<bool()>& done) {
    const absl::Time deadline = absl::Now() + timeout_;
    while (!done()) {
      if (absl::Now() >= deadline) return false;
      io_.restart();
      io_.run_one_for(std::chrono::milliseconds(50));
    }
    return true;
  }

  void ScheduleTick() {
    tick_timer_.expires_after(std::chrono::milliseconds(kTickMs));
    tick_timer_.async_wait([this](asio::error_code error) {
      if (error) return;
      session_->Tick();
      ScheduleTick();
    });
  }

  int RequestFailed(const char* what, const absl::Status& status) {
    if (watcher_.evicted) return Evicted();
    return Fail(status.code() == absl::StatusCode::kDeadlineExceeded ? kExitTimeout : kExitFailure,
                absl::StrCat(what, ": ", status.ToString()));
  }
  int Evicted() {
    return Fail(kExitFailure,
                absl::StrCat("session evicted: ", EvictionReasonName(*watcher_.evicted)));
  }
  static int Fail(int exit_status, const std::string& message) {
    std::fprintf(stderr, "tbproxy-probe: %s\n", message.c_str());
    return exit_status;
  }

  const u128 cluster_;
  const std::vector<ReplicaAddress> addresses_;
  const absl::Duration timeout_;
  asio::io_context io_;
  asio::steady_timer tick_timer_;
  EvictionWatcher watcher_;
  std::unique_ptr<TcpTransport> transport_;
  std::unique_ptr<Session> session_;
};

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Registers a session on a TigerBeetle cluster, creates and looks up accounts.\n"
      "  tbproxy-probe --addresses=127.0.0.1:3000 --cluster=0 --create-accounts=3");
  // Accept --create-accounts as well as --create_accounts: flag names are written with
  // underscores, but the documented spelling of the command line uses hyphens.
  NormalizeFlagNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<std::vector<ReplicaAddress>> addresses =
      ParseHostPortList(absl::GetFlag(FLAGS_addresses), {.default_host = "127.0.0.1"});
  if (!addresses.ok()) {
    std::fprintf(stderr, "tbproxy-probe: --addresses: %s\n",
                 std::string(addresses.status().message()).c_str());
    return kExitUsage;
  }
  const absl::StatusOr<u128> cluster = ParseU128(absl::GetFlag(FLAGS_cluster));
  if (!cluster.ok()) {
    std::fprintf(stderr, "tbproxy-probe: --cluster: %s\n",
                 std::string(cluster.status().message()).c_str());
    return kExitUsage;
  }
  const uint32_t account_count = absl::GetFlag(FLAGS_create_accounts);
  if (account_count < 1 || account_count > 8189) {
    std::fprintf(stderr, "tbproxy-probe: --create-accounts: expected 1..8189\n");
    return kExitUsage;
  }
  if (absl::GetFlag(FLAGS_ledger) == 0) {
    std::fprintf(stderr, "tbproxy-probe: --ledger: must not be 0\n");
    return kExitUsage;
  }
  if (absl::GetFlag(FLAGS_timeout) <= absl::ZeroDuration()) {
    std::fprintf(stderr, "tbproxy-probe: --timeout: must be positive\n");
    return kExitUsage;
  }
  Probe probe(*cluster, *std::move(addresses), absl::GetFlag(FLAGS_timeout));
  return probe.Run(account_count, absl::GetFlag(FLAGS_ledger));
}

}  // namespace
}  // namespace tb

int main(int argc, char** argv) { return tb::Main(argc, argv); }
