#include "client_core/types.h"

namespace tb {
namespace {

struct StatusName {
  uint32_t value;
  const char* name;
};

constexpr StatusName kCreateAccountStatusNames[] = {
    {0, "deprecated_ok"},
    {0xFFFFFFFF, "created"},
    {1, "linked_event_failed"},
    {2, "linked_event_chain_open"},
    {22, "imported_event_expected"},
    {23, "imported_event_not_expected"},
    {3, "timestamp_must_be_zero"},
    {24, "imported_event_timestamp_out_of_range"},
    {25, "imported_event_timestamp_must_not_advance"},
    {4, "reserved_field"},
    {5, "reserved_flag"},
    {6, "id_must_not_be_zero"},
    {7, "id_must_not_be_int_max"},
    {15, "exists_with_different_flags"},
    {16, "exists_with_different_user_data_128"},
    {17, "exists_with_different_user_data_64"},
    {18, "exists_with_different_user_data_32"},
    {19, "exists_with_different_ledger"},
    {20, "exists_with_different_code"},
    {21, "exists"},
    {8, "flags_are_mutually_exclusive"},
    {9, "debits_pending_must_be_zero"},
    {10, "debits_posted_must_be_zero"},
    {11, "credits_pending_must_be_zero"},
    {12, "credits_posted_must_be_zero"},
    {13, "ledger_must_not_be_zero"},
    {14, "code_must_not_be_zero"},
    {26, "imported_event_timestamp_must_not_regress"},
};

constexpr StatusName kCreateTransferStatusNames[] = {
    {0, "deprecated_ok"},
    {0xFFFFFFFF, "created"},
    {1, "linked_event_failed"},
    {2, "linked_event_chain_open"},
    {56, "imported_event_expected"},
    {57, "imported_event_not_expected"},
    {3, "timestamp_must_be_zero"},
    {58, "imported_event_timestamp_out_of_range"},
    {59, "imported_event_timestamp_must_not_advance"},
    {4, "reserved_flag"},
    {5, "id_must_not_be_zero"},
    {6, "id_must_not_be_int_max"},
    {36, "exists_with_different_flags"},
    {40, "exists_with_different_pending_id"},
    {44, "exists_with_different_timeout"},
    {37, "exists_with_different_debit_account_id"},
    {38, "exists_with_different_credit_account_id"},
    {39, "exists_with_different_amount"},
    {41, "exists_with_different_user_data_128"},
    {42, "exists_with_different_user_data_64"},
    {43, "exists_with_different_user_data_32"},
    {67, "exists_with_different_ledger"},
    {45, "exists_with_different_code"},
    {46, "exists"},
    {68, "id_already_failed"},
    {7, "flags_are_mutually_exclusive"},
    {8, "debit_account_id_must_not_be_zero"},
    {9, "debit_account_id_must_not_be_int_max"},
    {10, "credit_account_id_must_not_be_zero"},
    {11, "credit_account_id_must_not_be_int_max"},
    {12, "accounts_must_be_different"},
    {13, "pending_id_must_be_zero"},
    {14, "pending_id_must_not_be_zero"},
    {15, "pending_id_must_not_be_int_max"},
    {16, "pending_id_must_be_different"},
    {17, "timeout_reserved_for_pending_transfer"},
    {64, "closing_transfer_must_be_pending"},
    {19, "ledger_must_not_be_zero"},
    {20, "code_must_not_be_zero"},
    {21, "debit_account_not_found"},
    {22, "credit_account_not_found"},
    {23, "accounts_must_have_the_same_ledger"},
    {24, "transfer_must_have_the_same_ledger_as_accounts"},
    {25, "pending_transfer_not_found"},
    {26, "pending_transfer_not_pending"},
    {27, "pending_transfer_has_different_debit_account_id"},
    {28, "pending_transfer_has_different_credit_account_id"},
    {29, "pending_transfer_has_different_ledger"},
    {30, "pending_transfer_has_different_code"},
    {31, "exceeds_pending_transfer_amount"},
    {32, "pending_transfer_has_different_amount"},
    {33, "pending_transfer_already_posted"},
    {34, "pending_transfer_already_voided"},
    {35, "pending_transfer_expired"},
    {60, "imported_event_timestamp_must_not_regress"},
    {61, "imported_event_timestamp_must_postdate_debit_account"},
    {62, "imported_event_timestamp_must_postdate_credit_account"},
    {63, "imported_event_timeout_must_be_zero"},
    {65, "debit_account_already_closed"},
    {66, "credit_account_already_closed"},
    {47, "overflows_debits_pending"},
    {48, "overflows_credits_pending"},
    {49, "overflows_debits_posted"},
    {50, "overflows_credits_posted"},
    {51, "overflows_debits"},
    {52, "overflows_credits"},
    {53, "overflows_timeout"},
    {54, "exceeds_credits"},
    {55, "exceeds_debits"},
    {18, "deprecated_18"},
};

template <size_t N>
const char* FindName(const StatusName (&table)[N], uint32_t value) {
  for (const StatusName& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "";
}

}  // namespace

const char* CreateAccountStatusName(uint32_t status) {
  return FindName(kCreateAccountStatusNames, status);
}

const char* CreateTransferStatusName(uint32_t status) {
  return FindName(kCreateTransferStatusNames, status);
}

}  // namespace tb
