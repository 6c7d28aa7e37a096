// tbproxy quickstart: create two accounts and a transfer, look them up, print balances.
//
// usage: node quickstart.js [host:port]   (default: $TBPROXY_ADDRESS, else 127.0.0.1:50051)
'use strict';
const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const definition = protoLoader.loadSync('tbproxy/v1/tbproxy.proto', {
  includeDirs: [path.join(__dirname, '..', '..', 'proto')],
  keepCase: true, longs: String, enums: String, defaults: true,
});
const { TigerBeetle } = grpc.loadPackageDefinition(definition).tbproxy.v1;

const MASK64 = (1n << 64n) - 1n;
const u128 = (value) => ({ lo: (value & MASK64).toString(), hi: (value >> 64n).toString() });
const toBigInt = (value) => (value ? (BigInt(value.hi) << 64n) | BigInt(value.lo) : 0n);
const randomId = () => BigInt('0x' + crypto.randomBytes(16).toString('hex')) | 1n;

async function main() {
  const address = process.argv[2] || process.env.TBPROXY_ADDRESS || '127.0.0.1:50051';
  const client = new TigerBeetle(address, grpc.credentials.createInsecure());
  const call = (method, request) => new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 10000 },
                   (error, reply) => (error ? reject(error) : resolve(reply)));
  });
  // Choose ids before the first attempt and reuse them on every retry.
  const [debitId, creditId, transferId] = [randomId(), randomId(), randomId()];

  const accounts = await call('CreateAccounts', { accounts: [
    { id: u128(debitId), ledger: 1, code: 1 },
    { id: u128(creditId), ledger: 1, code: 1 },
  ] });
  for (const result of accounts.results) {  // One result per account, in request order.
    if (result.status !== 'CREATE_ACCOUNT_STATUS_CREATED') {
      throw new Error(`account not created: ${result.status}`);
    }
  }
  const transfers = await call('CreateTransfers', { transfers: [
    { id: u128(transferId), debit_account_id: u128(debitId), credit_account_id: u128(creditId),
      amount: u128(100n), ledger: 1, code: 1 },
  ] });
  if (transfers.results[0].status !== 'CREATE_TRANSFER_STATUS_CREATED') {
    throw new Error(`transfer not created: ${transfers.results[0].status}`);
  }
  const lookup = await call('LookupAccounts', { ids: [u128(debitId), u128(creditId)] });
  for (const account of lookup.accounts) {
    console.log(`account ${toBigInt(account.id).toString(16).padStart(32, '0')} ` +
                `debits_posted=${toBigInt(account.debits_posted)} ` +
                `credits_posted=${toBigInt(account.credits_posted)}`);
  }
  client.close();
}

main().catch((error) => {
  // not_applied: safe to retry as is; unknown: retry with the same ids.
  const outcome = error.metadata ? error.metadata.get('tbproxy-outcome')[0] || '-' : '-';
  console.error(`${error.code !== undefined ? grpc.status[error.code] : 'error'} ` +
                `(outcome ${outcome}): ${error.details || error.message}`);
  process.exit(1);
});
