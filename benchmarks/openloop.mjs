// An open-loop HTTP load generator (Node, no packages): POST requests with Poisson arrivals at RATE per second for
// SECONDS, over a keep-alive pool of at most CONNECTIONS sockets. Each request is sent at its due time whatever
// happened to the earlier ones, so a slow answer delays nothing else.
// Prints one JSON object: requests, achieved rate, status codes, and percentiles in ms of: latency_ms (send to
// answer), from_due_ms (due time to answer: adds the generator's own lateness, no coordinated omission) and
// generator_late_ms (due time to send: how late this process fired, its own stalls).
//
//   node benchmarks/openloop.mjs URL RATE SECONDS CONNECTIONS BODYFILE [HEADER: VALUE ...]
import http from "node:http";
import fs from "node:fs";

const [url, rateS, secondsS, connS, bodyFile, ...headerArgs] = process.argv.slice(2);
const rate = Number(rateS), seconds = Number(secondsS), connections = Number(connS);
const body = fs.readFileSync(bodyFile);
const headers = { "content-type": "application/json", "content-length": body.length };
for (const h of headerArgs) {
  const i = h.indexOf(":");
  headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
}
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const target = new URL(url);
const latencies = [], fromDue = [], late = [], codes = {};
let done = 0, errors = 0;

function fire(due) {
  const sentAt = process.hrtime.bigint();
  late.push(Number(sentAt - due) / 1e6);
  const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers }, (res) => {
    res.resume();
    res.on("end", () => {
      const now = process.hrtime.bigint();
      latencies.push(Number(now - sentAt) / 1e6);
      fromDue.push(Number(now - due) / 1e6);
      codes[res.statusCode] = (codes[res.statusCode] || 0) + 1;
      finish();
    });
  });
  req.on("error", () => { errors++; finish(); });
  req.end(body);
}

function finish() {
  done++;
  if (done === total) report();
}

// the arrival times: exponential gaps (a seeded xorshift keeps runs comparable)
let seed = 12345;
const uniform = () => {
  seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
  return (seed + 1) / 4294967297;
};
const due = [];
for (let t = 0; t < seconds; t += -Math.log(uniform()) / rate) due.push(t);
const total = due.length;
let start = 0n, next = 0;

function tick() {
  const now = Number(process.hrtime.bigint() - start) / 1e9;
  while (next < total && due[next] <= now) {
    fire(start + BigInt(Math.round(due[next] * 1e9)));
    next++;
  }
  // sleep until the next arrival (timers wake about 1 ms late; that lateness is counted in from_due_ms)
  if (next < total) setTimeout(tick, Math.max(0, (due[next] - now) * 1000));
}

function percentiles(values) {
  values.sort((a, b) => a - b);
  const q = (p) => Math.round(values[Math.min(values.length - 1, Math.round(p * (values.length - 1)))] * 100) / 100;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: q(1) };
}

function report() {
  const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ requests: total, errors, elapsed_s: Math.round(elapsed * 100) / 100,
    achieved_rps: Math.round(total / elapsed * 10) / 10, status_codes: codes,
    latency_ms: percentiles(latencies), from_due_ms: percentiles(fromDue), generator_late_ms: percentiles(late) }));
  agent.destroy();
}

// warm-up, not counted: open every connection first (one request each, all at once), as a client's pool would
// hold them; the clock starts when they are all idle in the pool
function warmUp() {
  let left = connections;
  for (let i = 0; i < connections; i++) {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST", agent, headers }, (res) => {
      res.resume();
      res.on("end", () => { if (--left === 0) { start = process.hrtime.bigint() + 200_000_000n; setTimeout(tick, 200); } });
    });
    req.on("error", (e) => { console.error(`warm-up: ${e.message}`); process.exit(1); });
    req.end(body);
  }
}

warmUp();
