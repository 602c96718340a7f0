// A second load generator, independent of the Rust harness (benches/load.rs): Node.js and the
// `ws` client instead of awc on actix. It runs the broadcast scenarios, `fanout` (a group, K
// calls in flight, or `--rate` messages a second) and `system` (send_to_system, one call in
// flight), against wshub or limitsrv and reports the server's CPU per delivered frame, the
// figure a saturated generator cannot flatter, and the delivery latency. Its figures, and how
// they were made, are in benches/notes.md (BENCHMARKS.md).
//
//   cd benches/independent && npm ci
//   node benches/independent/fanout.mjs --scenario system --url http://127.0.0.1:7890 \
//     --pid PID [--token T] [--clients 10000] [--messages 30] [--inflight 1] [--payload 64]
//   node benches/independent/fanout.mjs --scenario fanout --rate 50 --messages 300 ...
import { readFileSync } from "node:fs";
import WebSocket from "ws";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => {
    if (arg.startsWith("--")) pairs.push([arg.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const scenario = args.scenario ?? "fanout";
if (!["fanout", "system"].includes(scenario) || args.pid === undefined) {
  console.error("usage: fanout.mjs --scenario fanout|system --url URL --pid SERVER_PID [options]");
  process.exit(2);
}
const url = (args.url ?? "http://127.0.0.1:7890").replace(/\/$/, "");
const clients = Number(args.clients ?? (scenario === "system" ? 10000 : 1000));
const messages = Number(args.messages ?? (scenario === "system" ? 30 : 2000));
const inflight = Number(args.inflight ?? (scenario === "system" ? 1 : 4));
const pad = "x".repeat(Number(args.payload ?? 64));
const rate = args.rate === undefined ? undefined : Number(args.rate);
const system = `independent-${process.pid}-${Date.now()}`;
const pid = args.pid;

/** Server CPU seconds (user + system) so far, from /proc. */
function cpuSeconds() {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

async function call(method, body) {
  const headers = { "Content-Type": "application/json", SystemId: system };
  if (args.token) headers.Authorization = `Bearer ${args.token}`;
  const res = await fetch(`${url}/api/${method}`, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method}: ${res.status} ${text}`);
  return text;
}

let received = 0;
let lastAt = 0;
/** Send-to-receipt latency of each push, ms. */
const latencies = [];
const now = () => performance.timeOrigin + performance.now();
function connect() {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url.replace(/^http/, "ws")}/ws?systemId=${system}`);
    socket.once("error", reject);
    socket.on("message", (data) => {
      const text = data.toString();
      if (socket.clientId === undefined) {
        socket.clientId = JSON.parse(text).data.clientId;
        resolve(socket);
      } else if (text.includes('"p":"x')) {
        received += 1;
        lastAt = performance.now();
        const sent = /"t":([0-9.]+)/.exec(text);
        if (sent) latencies.push(now() - Number(sent[1]));
      }
    });
  });
}

async function inBatches(count, concurrency, task) {
  const results = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

await call("register", { systemId: system });
const sockets = await inBatches(clients, 100, () => connect());
let method = "send_to_system";
let target = {};
if (scenario === "fanout") {
  method = "send_to_group";
  target = { groupName: "g" };
  await inBatches(clients, 16, (i) => call("bind_to_group", { clientId: sockets[i].clientId, groupName: "g" }));
  await new Promise((r) => setTimeout(r, 500)); // the bind notices
}

const expected = clients * messages;
const cpuBefore = cpuSeconds();
const started = performance.now();
const send = (seq) =>
  call(method, { sendUserId: "bench", ...target, code: 7, msg: "m", data: { t: now(), s: seq, p: pad } });
if (rate === undefined) {
  await inBatches(messages, inflight, send);
} else {
  const calls = [];
  for (let seq = 0; seq < messages; seq++) {
    const wait = started + (seq * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    calls.push(send(seq));
  }
  await Promise.all(calls);
}
// Wait for delivery: every frame, or 2 s without one.
let quietSince = performance.now();
for (let seen = received; received < expected && performance.now() - quietSince < 2000; ) {
  await new Promise((r) => setTimeout(r, 20));
  if (received !== seen) [seen, quietSince] = [received, performance.now()];
}
const cpu = cpuSeconds() - cpuBefore;
const elapsed = (lastAt - started) / 1000;
latencies.sort((a, b) => a - b);
const percentile = (p) => {
  const at = Math.min(latencies.length - 1, Math.floor(latencies.length * p));
  return Number((latencies[at] ?? 0).toFixed(3));
};
console.log(
  JSON.stringify({
    generator: "node-ws",
    scenario: rate === undefined ? scenario : `${scenario}-rate`,
    rate,
    server: args.label ?? "",
    clients,
    messages,
    // Calls in flight only bound a flat-out run; at a fixed rate it is unused.
    inflight: rate === undefined ? inflight : undefined,
    delivered: received,
    lost: expected - received,
    frames_per_s: Math.round(received / elapsed),
    cpu_s: cpu,
    cpu_us_per_frame: Number(((cpu * 1e6) / Math.max(received, 1)).toFixed(3)),
    p50_ms: percentile(0.5),
    p99_ms: percentile(0.99),
    max_ms: percentile(1),
  }),
);
for (const socket of sockets) socket.terminate();
// Pooled HTTP connections would keep the process alive.
process.exit(0);
