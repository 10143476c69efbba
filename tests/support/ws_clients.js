// Node `ws` clients for the admission tests (tests/integration/test_admission.py): opens
// COUNT WebSocket connections at once and reports, per connection, what the application
// saw, as one JSON object on stdout.
//
//   node ws_clients.js URL COUNT [SUBPROTOCOL,...]
//
// Connection i goes to URL with `room=<prefix>i` added to its query (so every client is a
// room of its own under hash_key = "query:room"). A connection that opens sends "who" and
// closes with 1000 once the backend's reply ("name:who") arrives; a refused upgrade is
// reported with its status and Retry-After. Timing: `elapsed_s` runs from before the
// first connection is made until every handshake has an outcome (open, refusal, error),
// so a test can bound what token buckets may admit in that window.
// Run with NODE_PATH=/usr/share/nodejs (where Debian's node-ws lives).
'use strict';
const WebSocket = require('ws');

const [url, countText, protocolText] = process.argv.slice(2);
const count = parseInt(countText, 10);
const protocols = protocolText ? protocolText.split(',') : [];
const results = new Array(count);
let handshakes = 0;
let finished = 0;
let handshakesDone = null;
const started = performance.now();

function handshakeOutcome() {
  handshakes += 1;
  if (handshakes === count) handshakesDone = performance.now();
}

function finish(r) {
  if (r.done) return;
  r.done = true;
  finished += 1;
  if (finished === count) {
    const elapsed = ((handshakesDone ?? performance.now()) - started) / 1000;
    for (const x of results) delete x.done;
    process.stdout.write(JSON.stringify({ elapsed_s: elapsed, results }) + '\n');
    process.exit(0);
  }
}

for (let i = 0; i < count; i++) {
  const r = { i, opened: false, protocol: null, status: null, retry_after: null,
              reply: null, code: null, reason: null, error: null, done: false };
  results[i] = r;
  const target = url + (url.includes('?') ? '&' : '?') + 'room=node' + i;
  const ws = new WebSocket(target, protocols);
  let outcome = false;
  const once = () => { if (!outcome) { outcome = true; handshakeOutcome(); } };
  ws.on('open', () => {
    once();
    r.opened = true;
    r.protocol = ws.protocol;
    ws.send('who');
  });
  ws.on('message', (data) => {
    r.reply = data.toString();
    ws.close(1000);
  });
  ws.on('unexpected-response', (req, res) => {
    once();
    r.status = res.statusCode;
    r.retry_after = res.headers['retry-after'] ?? null;
    res.resume();
    req.destroy();
    finish(r);
  });
  ws.on('error', (e) => {
    once();
    r.error = String(e.message);
  });
  ws.on('close', (code, reason) => {
    once();
    r.code = code;
    r.reason = reason.toString();
    finish(r);
  });
}

// Every wait is bounded: a client that never settles fails the run, loudly.
setTimeout(() => {
  process.stderr.write('ws_clients.js: not every connection settled in 30 s\n');
  process.stdout.write(JSON.stringify({ elapsed_s: null, results }) + '\n');
  process.exit(2);
}, 30000).unref();
