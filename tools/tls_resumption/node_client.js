// Node's side of tools/tls-resumption: COUNT WebSocket connections one after another
// to wss://HOST:PORT/, each sending one message, waiting for its echo and closing;
// prints one JSON object, {"resumed": [bool per connection], "tickets": [session
// events per connection, or null where not seen]}.
//
//   node node_client.js MODE HOST PORT CA_FILE COUNT
//
// MODE latest: tls.connect with the session of the last 'session' event of the
//   previous connection, which is what https.Agent's session cache keeps (one
//   session per host, replaced by every 'session' event); the upgrade is written by
//   hand so that nothing else is in the way.
// MODE ws: the `ws` library as an application uses it, new WebSocket(url, {ca}) with
//   no session handling of its own (Debian's node-ws; NODE_PATH=/usr/share/nodejs).
//
// Every connection has a 10 s deadline; a failure exits 1 with the reason.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const tls = require('tls');

const [mode, host, portText, caFile, countText] = process.argv.slice(2);
const port = parseInt(portText, 10);
const count = parseInt(countText, 10);
const ca = fs.readFileSync(caFile);
const resumed = [];
const tickets = [];

function fail(why) {
  process.stderr.write(`node_client: connection ${resumed.length}: ${why}\n`);
  process.exit(1);
}

// A masked client frame (RFC 6455 §5.2) of at most 125 bytes.
function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  const out = Buffer.alloc(6 + body.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | body.length;
  mask.copy(out, 2);
  for (let i = 0; i < body.length; i++) out[6 + i] = body[i] ^ mask[i % 4];
  return out;
}

// One connection by hand; resolves with the session to use next.
function connectLatest(session) {
  return new Promise((resolve) => {
    let latest = session;
    let seen = 0;
    let received = Buffer.alloc(0);
    let upgraded = false;
    let closing = false;
    const timer = setTimeout(() => fail('timed out'), 10000);
    const socket = tls.connect({ host, port, servername: 'localhost', ca, session,
                                 minVersion: 'TLSv1.3' });
    socket.on('session', (s) => { latest = s; seen += 1; });
    socket.on('secureConnect', () => {
      resumed.push(socket.isSessionReused());
      const key = crypto.randomBytes(16).toString('base64');
      socket.write(`GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n` +
                   `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
                   `Sec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (!upgraded) {
        const end = received.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!received.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) {
          fail(`not upgraded: ${received.subarray(0, 40)}`);
        }
        upgraded = true;
        received = received.subarray(end + 4);
        socket.write(frame(1, 'resume?'));
      }
      if (!closing && received.length >= 2 + 7) {  // the echo: a 7-byte text frame
        closing = true;
        socket.end(frame(8, Buffer.from([0x03, 0xe8])));
      }
    });
    socket.on('error', (e) => fail(e.message));
    socket.on('close', () => {
      clearTimeout(timer);
      tickets.push(seen);
      resolve(latest);
    });
  });
}

function connectWs() {
  const WebSocket = require('ws');
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail('timed out'), 10000);
    const ws = new WebSocket(`wss://${host}:${port}/`,
                             { ca, servername: 'localhost', minVersion: 'TLSv1.3' });
    ws.on('upgrade', (response) => resumed.push(response.socket.isSessionReused()));
    ws.on('open', () => ws.send('resume?'));
    ws.on('message', () => ws.close(1000));
    ws.on('error', (e) => fail(e.message));
    ws.on('close', () => {
      clearTimeout(timer);
      tickets.push(null);
      resolve();
    });
  });
}

(async () => {
  let session;
  for (let i = 0; i < count; i++) {
    if (mode === 'latest') session = await connectLatest(session);
    else if (mode === 'ws') await connectWs();
    else fail(`unknown mode ${mode}`);
  }
  process.stdout.write(JSON.stringify({ resumed, tickets }) + '\n');
})();
