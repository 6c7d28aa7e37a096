// The official TigerBeetle Node client (tigerbeetle-node 0.17.9) against tbproxy's native
// front end (--native-listen) with its embedded dev cluster: every operation, then MANY client
// processes at once (more than a cluster's 64 sessions) sharing tbproxy's --sessions cluster
// sessions, then hostile bytes on the native port. Exits non-zero on any mismatch.
//
//   node native_interop.js path/to/tbproxy
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const path = require('path');
const readline = require('readline');
const tb = require('tigerbeetle-node');
const {
  state, check, show, account, statuses, checkEveryOperation,
} = require('./tb_helpers');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node native_interop.js path/to/tbproxy');
  process.exit(2);
}
const kSessions = 2;
const kSessionBudget = 4;
const kProcesses = 80;  // More than a cluster's clients_max (64).
const A = tb.CreateAccountStatus;
const T = tb.CreateTransferStatus;

// Starts tbproxy (embedded dev cluster) with the native listener on a free port. Its stderr
// (logfmt) is kept for the checks at the end.
function startProxy() {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['--listen=127.0.0.1:0', '--native-listen=127.0.0.1:0',
      `--sessions=${kSessions}`, `--session-budget=${kSessionBudget}`],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    const proxy = { child, stderr: '' };
    child.stderr.on('data', (data) => { proxy.stderr += data; });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`tbproxy exited early (${code})`)));
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^tbproxy native listening on port (\d+)$/.exec(line);
      if (match) {
        proxy.address = `127.0.0.1:${match[1]}`;
        proxy.port = Number(match[1]);
        resolve(proxy);
      }
    });
  });
}

function stopProxy(proxy) {
  return new Promise((resolve) => {
    proxy.child.removeAllListeners('exit');
    proxy.child.on('exit', (code, signal) => resolve({ code, signal }));
    proxy.child.kill('SIGTERM');
  });
}

async function everyOperation(proxy, client) {
  await checkEveryOperation(client);
}

// One client process: creates its own account and a transfer to account 2, looks both up, and
// prints one JSON line.
const kChild = `
const tb = require(${JSON.stringify(path.join(__dirname, 'node_modules', 'tigerbeetle-node'))});
const { account, transfer } = require(${JSON.stringify(path.join(__dirname, 'tb_helpers.js'))});
// The official client's retries run on its own thread and do not keep Node's event loop alive:
// a process whose request is waiting for a retry (e.g. its first register, which the client
// sends before its connection is up) would otherwise exit with code 0 and print nothing.
const keepAlive = setInterval(() => {}, 1000);
(async () => {
  const n = BigInt(process.argv[2]);
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: [process.argv[1]] });
  const created = await client.createAccounts([account(1000n + n)]);
  const moved = await client.createTransfers([transfer(5000n + n, 1000n + n, 2n, n)]);
  const [mine] = await client.lookupAccounts([1000n + n]);
  const [sent] = await client.lookupTransfers([5000n + n]);
  client.destroy();
  console.log(JSON.stringify({ created: created[0].status, moved: moved[0].status,
    debits: String(mine.debits_posted), amount: String(sent.amount) }));
  clearInterval(keepAlive);
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
`;

function runChild(address, n) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', kChild, address, String(n)],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (data) => { out += data; });
    // 'close', not 'exit': a child can exit before its stdout has been read to the end.
    child.on('close', (code) => {
      try { resolve({ code, result: JSON.parse(out.trim()) }); } catch (e) { resolve({ code, out }); }
    });
  });
}

async function manyProcesses(proxy, client) {
  const runs = await Promise.all(
    Array.from({ length: kProcesses }, (_, i) => runChild(proxy.address, i + 1)));
  const good = runs.filter((run, i) => run.code === 0 && run.result &&
    run.result.created === A.created && run.result.moved === T.created &&
    run.result.debits === String(i + 1) && run.result.amount === String(i + 1));
  check(good.length === kProcesses,
    `${kProcesses} client processes at once: ${good.length} all correct` +
    (good.length === kProcesses ? '' : ` (${show(runs.find((r) => r.code !== 0 || !r.result))})`));
  const [two] = await client.lookupAccounts([2n]);
  const expected = 15n + BigInt(kProcesses * (kProcesses + 1) / 2);
  check(two.credits_posted === expected, `account 2 credited by every process (${two.credits_posted})`);
}

// Bytes no client would send: the connection is closed, nothing else changes.
function hostile(proxy, bytes) {
  return new Promise((resolve) => {
    const socket = net.connect(proxy.port, '127.0.0.1', () => socket.write(bytes));
    let received = 0;
    socket.on('data', (data) => { received += data.length; });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ closed: true, received }));
  });
}

async function hostileInput(proxy, client) {
  const garbage = Buffer.alloc(256, 0xA5);
  const closedOnGarbage = await hostile(proxy, garbage);
  check(closedOnGarbage.closed && closedOnGarbage.received === 0,
    'a header with a bad checksum: connection closed, no answer');
  const zeros = Buffer.alloc(4096, 0);
  const closedOnZeros = await hostile(proxy, zeros);
  check(closedOnZeros.closed && closedOnZeros.received === 0,
    'zero bytes (checksum 0): connection closed, no answer');
  const [one] = await client.lookupAccounts([1n]);
  check(one && one.id === 1n, 'the official client is unaffected by hostile connections');
}

(async () => {
  const watchdog = setTimeout(() => { console.error('FAIL timeout'); process.exit(1); }, 170000);
  const proxy = await startProxy();
  const client = tb.createClient({ cluster_id: 0n, replica_addresses: [proxy.address] });
  for (const scenario of [everyOperation, manyProcesses, hostileInput]) {
    console.log(`-- ${scenario.name}`);
    try {
      await scenario(proxy, client);
    } catch (e) {
      state.failures++;
      console.error(`FAIL ${scenario.name}: ${e.stack || e}`);
    }
  }
  client.destroy();
  const exit = await stopProxy(proxy);
  check(exit.code === 0, `tbproxy stops cleanly on SIGTERM (${show(exit)})`);
  const registered = (proxy.stderr.match(/event=session_registered /g) || []).length;
  // A session the pool replaces (a slow reply under load) registers again, within the budget.
  check(registered >= kSessions && registered <= kSessionBudget,
    `tbproxy used only its cluster sessions (${registered} registered, budget ${kSessionBudget})`);
  check(!/event=session_evicted/.test(proxy.stderr), 'no cluster session was evicted');
  const stopped = /event=native_stopped virtual_sessions=(\d+)/.exec(proxy.stderr);
  check(stopped && Number(stopped[1]) >= kProcesses + 1,
    `virtual sessions for every client (${stopped && stopped[1]})`);
  clearTimeout(watchdog);
  if (state.failures !== 0) console.error(`tbproxy's log:\n${proxy.stderr}`);
  console.log(state.failures === 0 ? 'all checks passed' : `${state.failures} check(s) failed`);
  process.exit(state.failures === 0 ? 0 : 1);
})();
