// Runs every case of shared/conformance/state_machine_cases.json (52 cases, checked against a real
// TigerBeetle 0.17.9 cluster) against StateMachine, with the deterministic clock of the cases'
// README: now_ns = 0 for every request and Tick(timestamp() + advance) for clock steps, so every
// absolute timestamp must match. A failure names the case, the step, the result and the field.

#include <cctype>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/bytes.h"
#include "client_core/multi_batch.h"
#include "client_core/operation.h"
#include "client_core/parse.h"
#include "client_core/types.h"
#include "client_core/u128.h"
#include "devcluster/state_machine.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tb::devcluster {
namespace {

using Json = nlohmann::json;
using Fields = std::vector<std::pair<std::string, std::string>>;

const Json& Cases() {
  static const Json* cases = [] {
    std::ifstream file(TB_SHARED_DIR "/conformance/state_machine_cases.json");
    auto* json = new Json(Json::parse(file, nullptr, /*allow_exceptions=*/false));
    return json;
  }();
  return *cases;
}

// ---- Decimal strings <-> integers ----

u128 ParseDecimal(const std::string& text) {
  absl::StatusOr<u128> value = ParseU128(text);
  EXPECT_TRUE(value.ok()) << value.status();
  return value.value_or(0);
}
u128 Field(const Json& object, const char* name) {
  return ParseDecimal(object.at(name).get<std::string>());
}
std::string Text(u128 value) { return U128ToDecimal(value); }
template <size_t kSize>
std::string ReservedText(const uint8_t (&bytes)[kSize]) {
  for (uint8_t byte : bytes) {
    if (byte != 0) return "nonzero";
  }
  return "0";
}

// ---- Events (JSON -> wire structs) ----

Account ToAccount(const Json& j) {
  Account a{};
  a.id = Field(j, "id");
  a.debits_pending = Field(j, "debits_pending");
  a.debits_posted = Field(j, "debits_posted");
  a.credits_pending = Field(j, "credits_pending");
  a.credits_posted = Field(j, "credits_posted");
  a.user_data_128 = Field(j, "user_data_128");
  a.user_data_64 = static_cast<uint64_t>(Field(j, "user_data_64"));
  a.user_data_32 = static_cast<uint32_t>(Field(j, "user_data_32"));
  a.reserved = static_cast<uint32_t>(Field(j, "reserved"));
  a.ledger = static_cast<uint32_t>(Field(j, "ledger"));
  a.code = static_cast<uint16_t>(Field(j, "code"));
  a.flags = static_cast<uint16_t>(Field(j, "flags"));
  a.timestamp = static_cast<uint64_t>(Field(j, "timestamp"));
  return a;
}

Transfer ToTransfer(const Json& j) {
  Transfer t{};
  t.id = Field(j, "id");
  t.debit_account_id = Field(j, "debit_account_id");
  t.credit_account_id = Field(j, "credit_account_id");
  t.amount = Field(j, "amount");
  t.pending_id = Field(j, "pending_id");
  t.user_data_128 = Field(j, "user_data_128");
  t.user_data_64 = static_cast<uint64_t>(Field(j, "user_data_64"));
  t.user_data_32 = static_cast<uint32_t>(Field(j, "user_data_32"));
  t.timeout = static_cast<uint32_t>(Field(j, "timeout"));
  t.ledger = static_cast<uint32_t>(Field(j, "ledger"));
  t.code = static_cast<uint16_t>(Field(j, "code"));
  t.flags = static_cast<uint16_t>(Field(j, "flags"));
  t.timestamp = static_cast<uint64_t>(Field(j, "timestamp"));
  return t;
}

AccountFilter ToAccountFilter(const Json& j) {
  AccountFilter f{};
  f.account_id = Field(j, "account_id");
  f.user_data_128 = Field(j, "user_data_128");
  f.user_data_64 = static_cast<uint64_t>(Field(j, "user_data_64"));
  f.user_data_32 = static_cast<uint32_t>(Field(j, "user_data_32"));
  f.code = static_cast<uint16_t>(Field(j, "code"));
  f.reserved[0] = static_cast<uint8_t>(Field(j, "reserved"));
  f.timestamp_min = static_cast<uint64_t>(Field(j, "timestamp_min"));
  f.timestamp_max = static_cast<uint64_t>(Field(j, "timestamp_max"));
  f.limit = static_cast<uint32_t>(Field(j, "limit"));
  f.flags = static_cast<uint32_t>(Field(j, "flags"));
  return f;
}

QueryFilter ToQueryFilter(const Json& j) {
  QueryFilter f{};
  f.user_data_128 = Field(j, "user_data_128");
  f.user_data_64 = static_cast<uint64_t>(Field(j, "user_data_64"));
  f.user_data_32 = static_cast<uint32_t>(Field(j, "user_data_32"));
  f.ledger = static_cast<uint32_t>(Field(j, "ledger"));
  f.code = static_cast<uint16_t>(Field(j, "code"));
  f.reserved[0] = static_cast<uint8_t>(Field(j, "reserved"));
  f.timestamp_min = static_cast<uint64_t>(Field(j, "timestamp_min"));
  f.timestamp_max = static_cast<uint64_t>(Field(j, "timestamp_max"));
  f.limit = static_cast<uint32_t>(Field(j, "limit"));
  f.flags = static_cast<uint32_t>(Field(j, "flags"));
  return f;
}

ChangeEventsFilter ToChangeEventsFilter(const Json& j) {
  ChangeEventsFilter f{};
  f.timestamp_min = static_cast<uint64_t>(Field(j, "timestamp_min"));
  f.timestamp_max = static_cast<uint64_t>(Field(j, "timestamp_max"));
  f.limit = static_cast<uint32_t>(Field(j, "limit"));
  f.reserved[0] = static_cast<uint8_t>(Field(j, "reserved"));
  return f;
}

// The events of one step as one batch of wire structs.
std::vector<uint8_t> EncodeEvents(const std::string& op, const Json& events) {
  std::vector<uint8_t> out;
  for (const Json& event : events) {
    if (op == "create_accounts") AppendStruct(&out, ToAccount(event));
    if (op == "create_transfers") AppendStruct(&out, ToTransfer(event));
    if (op == "lookup_accounts" || op == "lookup_transfers") {
      AppendStruct(&out, ParseDecimal(event.get<std::string>()));
    }
    if (op == "get_account_transfers" || op == "get_account_balances") {
      AppendStruct(&out, ToAccountFilter(event));
    }
    if (op == "query_accounts" || op == "query_transfers") AppendStruct(&out, ToQueryFilter(event));
    if (op == "get_change_events") AppendStruct(&out, ToChangeEventsFilter(event));
  }
  return out;
}

// ---- Results (wire structs -> named decimal fields) ----

Fields AccountFields(const Account& a) {
  return {{"id", Text(a.id)},
          {"debits_pending", Text(a.debits_pending)},
          {"debits_posted", Text(a.debits_posted)},
          {"credits_pending", Text(a.credits_pending)},
          {"credits_posted", Text(a.credits_posted)},
          {"user_data_128", Text(a.user_data_128)},
          {"user_data_64", Text(a.user_data_64)},
          {"user_data_32", Text(a.user_data_32)},
          {"reserved", Text(a.reserved)},
          {"ledger", Text(a.ledger)},
          {"code", Text(a.code)},
          {"flags", Text(a.flags)},
          {"timestamp", Text(a.timestamp)}};
}

Fields TransferFields(const Transfer& t) {
  return {{"id", Text(t.id)},
          {"debit_account_id", Text(t.debit_account_id)},
          {"credit_account_id", Text(t.credit_account_id)},
          {"amount", Text(t.amount)},
          {"pending_id", Text(t.pending_id)},
          {"user_data_128", Text(t.user_data_128)},
          {"user_data_64", Text(t.user_data_64)},
          {"user_data_32", Text(t.user_data_32)},
          {"timeout", Text(t.timeout)},
          {"ledger", Text(t.ledger)},
          {"code", Text(t.code)},
          {"flags", Text(t.flags)},
          {"timestamp", Text(t.timestamp)}};
}

Fields BalanceFields(const AccountBalance& b) {
  return {{"debits_pending", Text(b.debits_pending)},
          {"debits_posted", Text(b.debits_posted)},
          {"credits_pending", Text(b.credits_pending)},
          {"credits_posted", Text(b.credits_posted)},
          {"timestamp", Text(b.timestamp)},
          {"reserved", ReservedText(b.reserved)}};
}

void AddAccountSide(Fields& f, const std::string& p, u128 id, u128 debits_pending,
                    u128 debits_posted, u128 credits_pending, u128 credits_posted,
                    u128 user_data_128, uint64_t user_data_64, uint32_t user_data_32,
                    uint16_t code, uint16_t flags) {
  f.push_back({p + "_id", Text(id)});
  f.push_back({p + "_debits_pending", Text(debits_pending)});
  f.push_back({p + "_debits_posted", Text(debits_posted)});
  f.push_back({p + "_credits_pending", Text(credits_pending)});
  f.push_back({p + "_credits_posted", Text(credits_posted)});
  f.push_back({p + "_user_data_128", Text(user_data_128)});
  f.push_back({p + "_user_data_64", Text(user_data_64)});
  f.push_back({p + "_user_data_32", Text(user_data_32)});
  f.push_back({p + "_code", Text(code)});
  f.push_back({p + "_flags", Text(flags)});
}

Fields ChangeEventFields(const ChangeEvent& e) {
  Fields f = {{"transfer_id", Text(e.transfer_id)},
              {"transfer_amount", Text(e.transfer_amount)},
              {"transfer_pending_id", Text(e.transfer_pending_id)},
              {"transfer_user_data_128", Text(e.transfer_user_data_128)},
              {"transfer_user_data_64", Text(e.transfer_user_data_64)},
              {"transfer_user_data_32", Text(e.transfer_user_data_32)},
              {"transfer_timeout", Text(e.transfer_timeout)},
              {"transfer_code", Text(e.transfer_code)},
              {"transfer_flags", Text(e.transfer_flags)},
              {"ledger", Text(e.ledger)},
              {"type", Text(static_cast<uint8_t>(e.type))},
              {"reserved", ReservedText(e.reserved)}};
  AddAccountSide(f, "debit_account", e.debit_account_id, e.debit_account_debits_pending,
                 e.debit_account_debits_posted, e.debit_account_credits_pending,
                 e.debit_account_credits_posted, e.debit_account_user_data_128,
                 e.debit_account_user_data_64, e.debit_account_user_data_32,
                 e.debit_account_code, e.debit_account_flags);
  AddAccountSide(f, "credit_account", e.credit_account_id, e.credit_account_debits_pending,
                 e.credit_account_debits_posted, e.credit_account_credits_pending,
                 e.credit_account_credits_posted, e.credit_account_user_data_128,
                 e.credit_account_user_data_64, e.credit_account_user_data_32,
                 e.credit_account_code, e.credit_account_flags);
  f.push_back({"timestamp", Text(e.timestamp)});
  f.push_back({"transfer_timestamp", Text(e.transfer_timestamp)});
  f.push_back({"debit_account_timestamp", Text(e.debit_account_timestamp)});
  f.push_back({"credit_account_timestamp", Text(e.credit_account_timestamp)});
  return f;
}

template <typename T>
std::vector<T> ReadAll(std::span<const uint8_t> bytes) {
  EXPECT_EQ(bytes.size() % sizeof(T), 0u);
  std::vector<T> values(bytes.size() / sizeof(T));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(T));
  return values;
}

// Each result as named fields, in reply order.
std::vector<Fields> DecodeResults(const std::string& op, std::span<const uint8_t> bytes) {
  std::vector<Fields> results;
  if (op == "create_accounts" || op == "create_transfers") {
    const bool accounts = op == "create_accounts";
    for (const CreateResult& r : ReadAll<CreateResult>(bytes)) {
      results.push_back({{"status", accounts ? CreateAccountStatusName(r.status)
                                             : CreateTransferStatusName(r.status)},
                         {"status_code", Text(r.status)},
                         {"timestamp", Text(r.timestamp)},
                         {"reserved", Text(r.reserved)}});
    }
  } else if (op == "lookup_accounts" || op == "query_accounts") {
    for (const Account& a : ReadAll<Account>(bytes)) results.push_back(AccountFields(a));
  } else if (op == "lookup_transfers" || op == "query_transfers" ||
             op == "get_account_transfers") {
    for (const Transfer& t : ReadAll<Transfer>(bytes)) results.push_back(TransferFields(t));
  } else if (op == "get_account_balances") {
    for (const AccountBalance& b : ReadAll<AccountBalance>(bytes)) {
      results.push_back(BalanceFields(b));
    }
  } else if (op == "get_change_events") {
    for (const ChangeEvent& e : ReadAll<ChangeEvent>(bytes)) {
      results.push_back(ChangeEventFields(e));
    }
  } else {
    ADD_FAILURE() << "unknown op " << op;
  }
  return results;
}

// The expected value of `name` as text (status_code is a JSON number, the rest are strings).
std::string ExpectedText(const Json& expected, const std::string& name) {
  const Json& value = expected.at(name);
  return value.is_string() ? value.get<std::string>() : value.dump();
}

void CompareStep(const std::string& where, const std::string& op, const Json& expected_results,
                 const std::vector<Fields>& actual) {
  ASSERT_EQ(actual.size(), expected_results.size()) << where << ": result count";
  for (size_t i = 0; i < actual.size(); i++) {
    const Json& expected = expected_results[i];
    for (const auto& [name, value] : actual[i]) {
      if (name == "reserved" && !expected.contains(name)) {
        EXPECT_EQ(value, "0") << where << " result " << i << ": reserved";
        continue;
      }
      ASSERT_TRUE(expected.contains(name)) << where << " result " << i << ": field " << name;
      EXPECT_EQ(value, ExpectedText(expected, name))
          << where << " result " << i << ": field " << name;
    }
  }
}

uint8_t OperationCode(const std::string& op) {
  if (op == "create_accounts") return 146;
  if (op == "create_transfers") return 147;
  if (op == "lookup_accounts") return 140;
  if (op == "lookup_transfers") return 141;
  if (op == "get_account_transfers") return 142;
  if (op == "get_account_balances") return 143;
  if (op == "query_accounts") return 144;
  if (op == "query_transfers") return 145;
  if (op == "get_change_events") return 137;
  ADD_FAILURE() << "unknown op " << op;
  return 0;
}

void RunStep(StateMachine& machine, const std::string& where, const Json& step) {
  const std::string op = step.at("op").get<std::string>();
  if (op == "tick") {
    const u128 advance = ParseDecimal(step.at("advance_ns").get<std::string>());
    machine.Tick(machine.timestamp() + static_cast<uint64_t>(advance));
    return;
  }
  const OperationInfo* info = FindOperation(OperationCode(op));
  ASSERT_NE(info, nullptr) << where;
  const std::vector<uint8_t> events = EncodeEvents(op, step.at("events"));
  std::vector<uint8_t> body = events;
  if (info->multi_batch) {
    const std::span<const uint8_t> batches[] = {events};
    body = EncodeMultiBatch(info->event_size, batches);
  }
  const uint64_t timestamp_before = machine.timestamp();
  const ExecuteResult reply =
      machine.Execute(static_cast<uint8_t>(info->operation), body, /*now_ns=*/0);
  // Reference clock rule 2: C <- C + 1 + N (a pulse may follow and move the clock further).
  const uint64_t event_count =
      (op == "create_accounts" || op == "create_transfers") ? step.at("events").size() : 0;
  EXPECT_EQ(reply.timestamp, timestamp_before + 1 + event_count) << where << ": request timestamp";
  EXPECT_LE(reply.timestamp, machine.timestamp()) << where;
  std::span<const uint8_t> results = reply.body;
  if (info->multi_batch) {
    absl::StatusOr<MultiBatchView> batches = DecodeMultiBatch(reply.body, info->result_size);
    ASSERT_TRUE(batches.ok()) << where << ": reply does not decode: " << batches.status();
    ASSERT_EQ(batches->size(), 1u) << where << ": reply batch count";
    results = (*batches)[0];
  }
  CompareStep(where, op, step.at("expect").at("results"), DecodeResults(op, results));
}

class ConformanceTest : public testing::TestWithParam<size_t> {};

TEST_P(ConformanceTest, MatchesRealCluster) {
  const Json& test_case = Cases().at("cases").at(GetParam());
  const std::string name = test_case.at("name").get<std::string>();
  StateMachine machine({});
  const Json& steps = test_case.at("steps");
  for (size_t index = 0; index < steps.size(); index++) {
    const std::string where = absl::StrCat("case \"", name, "\" step ", index, " (",
                                           steps[index].at("op").get<std::string>(), ")");
    ASSERT_NO_FATAL_FAILURE(RunStep(machine, where, steps[index]));
    if (HasFailure()) return;
  }
}

std::vector<size_t> CaseIndexes() {
  std::vector<size_t> indexes;
  if (Cases().is_discarded() || !Cases().contains("cases")) return indexes;
  for (size_t i = 0; i < Cases()["cases"].size(); i++) indexes.push_back(i);
  return indexes;
}

std::string CaseTestName(const testing::TestParamInfo<size_t>& info) {
  std::string name = absl::StrCat(info.param, "_");
  for (char c : Cases()["cases"][info.param]["name"].get<std::string>()) {
    name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(StateMachineCases, ConformanceTest, testing::ValuesIn(CaseIndexes()),
                         CaseTestName);

TEST(ConformanceFile, HasAllFiftyTwoCases) {
  ASSERT_FALSE(Cases().is_discarded()) << "state_machine_cases.json did not parse";
  EXPECT_EQ(Cases().at("format").get<std::string>(), "tigerbeetle-state-machine-conformance");
  EXPECT_EQ(Cases().at("cases").size(), 52u);
}

}  // namespace
}  // namespace tb::devcluster
