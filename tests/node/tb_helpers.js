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

// Every operation once, on a fresh cluster, with the results the official client must see.
// Returns what create_accounts answered, for checks of the caller's own.
async function checkEveryOperation(client) {
  const A = tb.CreateAccountStatus;
  const T = tb.CreateTransferStatus;
  const created = await client.createAccounts([
    account(1n, { flags: tb.AccountFlags.history }), account(2n), account(0n),
    account(4n, { ledger: 0 })]);
  check(show(statuses(created)) === show([A.created, A.created, A.id_must_not_be_zero,
    A.ledger_must_not_be_zero]), `create_accounts statuses ${show(statuses(created))}`);
  const again = await client.createAccounts([account(1n, { flags: tb.AccountFlags.history })]);
  check(again[0].status === A.exists && again[0].timestamp === created[0].timestamp,
    'create_accounts: exists with the original timestamp');

  const transfers = await client.createTransfers([
    transfer(10n, 1n, 2n, 10n),
    transfer(11n, 1n, 2n, 1n, { flags: tb.TransferFlags.linked }),
    transfer(12n, 1n, 1n, 1n),
    transfer(13n, 1n, 2n, 5n, { flags: tb.TransferFlags.pending }),
    transfer(14n, 1n, 2n, 5n, { pending_id: 13n, flags: tb.TransferFlags.post_pending_transfer }),
    transfer(15n, 1n, 99n, 1n)]);
  check(show(statuses(transfers)) === show([T.created, T.linked_event_failed,
    T.accounts_must_be_different, T.created, T.created, T.credit_account_not_found]),
    `create_transfers statuses ${show(statuses(transfers))}`);

  const accounts = await client.lookupAccounts([1n, 2n, 999n]);
  check(accounts.length === 2 && accounts[0].id === 1n && accounts[1].id === 2n,
    'lookup_accounts: found only, in request order');
  check(accounts[0].debits_posted === 15n && accounts[1].credits_posted === 15n &&
    accounts[0].debits_pending === 0n, 'lookup_accounts: balances after pending + post');
  const found = await client.lookupTransfers([10n, 11n, 13n, 14n]);
  check(show(found.map((t) => t.id)) === show([10n, 13n, 14n]), 'lookup_transfers');
  const history = await client.getAccountTransfers(accountFilter(1n));
  check(show(history.map((t) => t.id)) === show([10n, 13n, 14n]), 'get_account_transfers');
  const reversed = await client.getAccountTransfers(accountFilter(1n, {
    limit: 2, flags: tb.AccountFilterFlags.debits | tb.AccountFilterFlags.reversed }));
  check(show(reversed.map((t) => t.id)) === show([14n, 13n]), 'get_account_transfers reversed');
  const balances = await client.getAccountBalances(accountFilter(1n));
  check(balances.length === 3 && balances[2].debits_posted === 15n,
    `get_account_balances ${balances.length}`);
  const queried = await client.queryAccounts(queryFilter());
  check(show(queried.map((a) => a.id)) === show([1n, 2n]), 'query_accounts');
  const queriedTransfers =
    await client.queryTransfers(queryFilter({ flags: tb.QueryFilterFlags.reversed }));
  check(show(queriedTransfers.map((t) => t.id)) === show([14n, 13n, 10n]), 'query_transfers');

  // Submitted together: the client packs them into multi-batch requests, which the server
  // splits into batches and answers each in order.
  const concurrent = await Promise.all([
    client.createAccounts([account(20n)]), client.createAccounts([account(21n), account(22n)]),
    client.createAccounts([]), client.lookupAccounts([20n, 21n]), client.lookupAccounts([1n])]);
  check(show(concurrent.map((r) => r.length)) === show([1, 2, 0, 2, 1]) &&
    concurrent[1].every((r) => r.status === A.created), 'concurrent calls (multi-batch)');
  return created;
}

module.exports = {
  state, check, show, account, transfer, accountFilter, queryFilter, statuses,
  checkEveryOperation,
};
