// Shared helpers of the Node end-to-end tests: a pass/fail checker and builders for the
// official client's account, transfer and filter objects.
'use strict';
const tb = require('tigerbeetle-node');

const state = { failures: 0 };
function check(condition, what) {
  if (condition) {
    console.log(`ok   ${what}`);
  } else {
    state.failures++;
    console.error(`FAIL ${what}`);
  }
}
const show = (x) => JSON.stringify(x, (k, v) => (typeof v === 'bigint' ? v.toString() : v));

const account = (id, fields = {}) => ({
  id, debits_pending: 0n, debits_posted: 0n, credits_pending: 0n, credits_posted: 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, reserved: 0, ledger: 1, code: 1,
  flags: 0, timestamp: 0n, ...fields,
});
const transfer = (id, debit, credit, amount, fields = {}) => ({
  id, debit_account_id: debit, credit_account_id: credit, amount, pending_id: 0n,
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, timeout: 0, ledger: 1, code: 1,
  flags: 0, timestamp: 0n, ...fields,
});
const accountFilter = (account_id, fields = {}) => ({
  account_id, user_data_128: 0n, user_data_64: 0n, user_data_32: 0, code: 0,
  timestamp_min: 0n, timestamp_max: 0n, limit: 10,
  flags: tb.AccountFilterFlags.debits | tb.AccountFilterFlags.credits, ...fields,
});
const queryFilter = (fields = {}) => ({
  user_data_128: 0n, user_data_64: 0n, user_data_32: 0, ledger: 1, code: 0,
  timestamp_min: 0n, timestamp_max: 0n, limit: 10, flags: 0, ...fields,
});
const statuses = (results) => results.map((r) => r.status);

module.exports = {
  state, check, show, account, transfer, accountFilter, queryFilter, statuses,
};
