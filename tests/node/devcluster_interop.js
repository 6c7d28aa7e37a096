// The official TigerBeetle Node client (tigerbeetle-node 0.17.9) against tb-devcluster: every
// operation, coalesced concurrent calls, an eviction, delayed replies that force retries, a pause,
// a view change in a three-replica cluster, and echo mode. Exits non-zero on any mismatch.
//
//   node devcluster_interop.js path/to/tb-devcluster
'use strict';
const { spawn } = require('child_process');
const readline = require('readline');
const tb = require('tigerbeetle-node');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node devcluster_interop.js path/to/tb-devcluster');
  process.exit(2);
}

const {
  state, check, show, account, statuses, checkEveryOperation, queryFilter,
} = require('./tb_helpers');

// Starts tb-devcluster on free ports and resolves with its address list.
function startCluster(args) {
  return new Promise((resolve, reject) => {
    // With its stdin a pipe from this process, the cluster stops when this process dies.
    const child = spawn(binary, ['--addresses=127.0.0.1:0', '--stop-on-stdin-close', ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tb-devcluster exited early (${code})`)));
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const match = /^listening on (.*)$/.exec(line);
      if (match) resolve({ child, addresses: match[1].split(',') });
    });
  });
}

function stopCluster(cluster) {
  return new Promise((resolve) => {
    cluster.child.removeAllListeners('exit');
    cluster.child.on('exit', (code, signal) => resolve({ code, signal }));
    cluster.child.kill('SIGTERM');
  });
}

const A = tb.CreateAccountStatus;
const T = tb.CreateTransferStatus;

async function everyOperation() {
  const cluster = await startCluster([]);
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    const created = await checkEveryOperation(client);
    check(created[0].timestamp > 0n && created[1].timestamp === created[0].timestamp + 1n,
      'create_accounts: consecutive timestamps');

    let tooMuch = null;
    try {
      await client.createAccounts(Array.from({ length: 8190 }, (_, i) => account(100000n + BigInt(i))));
    } catch (e) { tooMuch = e.code; }
    check(tooMuch === 'ERR_TOO_MUCH_DATA', 'more than 8189 events: ERR_TOO_MUCH_DATA');
  } finally {
    client.destroy();
    const exit = await stopCluster(cluster);
    check(exit.code === 0, `tb-devcluster stops cleanly on SIGTERM (${show(exit)})`);
  }
}

async function eviction() {
  const cluster = await startCluster(['--clients-max=1', '--log-messages']);
  const first = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  check((await first.createAccounts([account(1n)]))[0].status === A.created, 'first client');
  const second = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    check((await second.createAccounts([account(2n)]))[0].status === A.created,
      'second client (its register evicts the first session)');
    let code = null;
    try { await first.lookupAccounts([1n]); } catch (e) { code = e.code; }
    check(code === 'ERR_CLIENT_EVICTED', `evicted session fails with ${code}`);
  } finally {
    // The evicted client is not destroyed: that panics the 0.17.9 client (PROTOCOL.md §8.8);
    // the process exit releases it.
    second.destroy();
    await stopCluster(cluster);
  }
}

async function faults() {
  const cluster = await startCluster(['--reply-delay=700ms']);
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    const created = await client.createAccounts([account(1n), account(2n)]);
    check(show(statuses(created)) === show([A.created, A.created]),
      'delayed replies: the retried request committed once');
    const accounts = await client.lookupAccounts([1n, 2n]);
    check(accounts.length === 2, 'delayed replies: duplicates ignored, session continues');
    // Paused, the cluster drops everything; the client's retry gets through after resuming.
    cluster.child.kill('SIGUSR2');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const pending = client.lookupAccounts([1n]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    cluster.child.kill('SIGUSR2');
    check((await pending).length === 1, 'pause and resume: the request is retried and answered');
  } finally {
    client.destroy();
    await stopCluster(cluster);
  }
}

async function viewChange() {
  const cluster = await startCluster(['--replica-count=3']);
  check(cluster.addresses.length === 3, 'three replicas listen');
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    check((await client.createAccounts([account(1n)]))[0].status === A.created, 'view 0');
    cluster.child.kill('SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    check((await client.createAccounts([account(2n)]))[0].status === A.created,
      'after a view change (primary 1)');
    cluster.child.kill('SIGUSR1');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const accounts = await client.lookupAccounts([1n, 2n]);
    check(accounts.length === 2, 'after a second view change (primary 2)');
  } finally {
    client.destroy();
    await stopCluster(cluster);
  }
}

async function echoMode() {
  const cluster = await startCluster(['--echo']);
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    const created = await client.createAccounts([account(0n), account(1n)]);
    check(show(statuses(created)) === show([A.created, A.created]), 'echo: creates succeed');
    check((await client.lookupAccounts([1n])).length === 0, 'echo: lookups find nothing');
    check((await client.queryTransfers(queryFilter())).length === 0, 'echo: queries are empty');
  } finally {
    client.destroy();
    await stopCluster(cluster);
  }
}

async function developmentLimit() {
  // The limit a real replica started with --development announces: 253 accounts per batch.
  const cluster = await startCluster(['--batch-size-limit=32512', '--echo']);
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: cluster.addresses });
  try {
    const accounts = (n) => Array.from({ length: n }, (_, i) => account(1n + BigInt(i)));
    check((await client.createAccounts(accounts(253))).length === 253, '253 accounts fit 32,512');
    let code = null;
    try { await client.createAccounts(accounts(254)); } catch (e) { code = e.code; }
    check(code === 'ERR_TOO_MUCH_DATA', `254 accounts: ${code}`);
  } finally {
    client.destroy();
    await stopCluster(cluster);
  }
}

const watchdog = setTimeout(() => {
  console.error('FAIL timed out');
  process.exit(1);
}, 120000);

(async () => {
  for (const scenario of [everyOperation, eviction, faults, viewChange, echoMode,
    developmentLimit]) {
    console.log(`-- ${scenario.name}`);
    try {
      await scenario();
    } catch (e) {
      state.failures++;
      console.error(`FAIL ${scenario.name}: ${e.stack || e}`);
    }
  }
  clearTimeout(watchdog);
  console.log(state.failures === 0 ? 'all checks passed' : `${state.failures} check(s) failed`);
  process.exit(state.failures === 0 ? 0 : 1);
})();
