#!/usr/bin/env node
// A plain broadcast relay in Node, for hamster-bench to compare the Rust relay with.
//
// What it does, as the relay does: one upstream WebSocket to a Twelve Data endpoint (the bench's generator),
// subscriptions reference-counted across clients (an instrument is subscribed upstream once, dropped when its
// last client leaves), and each tick sent to every client subscribed to its symbol as a protocol v1 `quotes`
// message (docs/protocol.md), serialised once and shared as one Buffer.
// The client protocol subset: `hello` on connect; `subscribe` -> `subscribed` + `snapshot`; `unsubscribe` ->
// `unsubscribed`; `ping` -> `pong`.
// What it does not do: batching, per-client conflation, symbol validation or provider prefixes. A client whose
// socket has more than MAX_BUFFERED bytes waiting simply misses ticks (the usual Node idiom), so a stalled client
// cannot grow memory without bound.
//
// Usage: node peer.js --upstream ws://127.0.0.1:PORT/v1/quotes/price?apikey=KEY [--port 0] [--host 127.0.0.1]
// Prints `listening on http://127.0.0.1:PORT` once it accepts clients on /ws.
'use strict';

const http = require('http');
const { WebSocket, WebSocketServer } = require('ws');

const MAX_BUFFERED = 1 << 20;
const HEARTBEAT_MS = 10_000;

function parseArgs(argv) {
  const args = { port: 0, host: '127.0.0.1', upstream: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--port') args.port = Number(value);
    else if (flag === '--host') args.host = value;
    else if (flag === '--upstream') args.upstream = value;
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!args.upstream) throw new Error('--upstream URL is required');
  return args;
}

const args = parseArgs(process.argv.slice(2));
const subscribers = new Map(); // symbol -> Set of client sockets
const lastQuote = new Map(); // symbol -> serialised quote JSON
const held = new Map(); // client socket -> Set of symbols
let upstream = null;
let dropped = 0;

function upstreamSend(action, symbols) {
  if (symbols.length && upstream && upstream.readyState === WebSocket.OPEN) {
    upstream.send(JSON.stringify({ action, params: { symbols: symbols.join(',') } }));
  }
}

function connectUpstream() {
  upstream = new WebSocket(args.upstream, { perMessageDeflate: false });
  let heartbeat = null;
  upstream.on('open', () => {
    upstreamSend('subscribe', [...subscribers.keys()]);
    heartbeat = setInterval(() => upstream.send('{"action":"heartbeat"}'), HEARTBEAT_MS);
  });
  upstream.on('message', (data) => onUpstream(data.toString()));
  upstream.on('close', () => {
    clearInterval(heartbeat);
    setTimeout(connectUpstream, 500);
  });
  upstream.on('error', (e) => console.error(`[node-peer] upstream: ${e.message}`));
}

function onUpstream(text) {
  let m;
  try {
    m = JSON.parse(text);
  } catch {
    return;
  }
  if (m.event !== 'price' || typeof m.symbol !== 'string' || !Number.isFinite(m.price)) return;
  const quote = { symbol: m.symbol, price: m.price, ts: Math.round(m.timestamp * 1000), provider: 'twelvedata' };
  if (Number.isFinite(m.bid)) quote.bid = m.bid;
  if (Number.isFinite(m.ask)) quote.ask = m.ask;
  if (Number.isFinite(m.day_volume)) quote.volume = m.day_volume;
  const json = JSON.stringify(quote);
  lastQuote.set(m.symbol, json);
  const subs = subscribers.get(m.symbol);
  if (!subs || subs.size === 0) return;
  const frame = Buffer.from(`{"type":"quotes","quotes":[${json}]}`);
  for (const ws of subs) {
    if (ws.bufferedAmount > MAX_BUFFERED) {
      dropped += 1;
      continue;
    }
    ws.send(frame, { binary: false });
  }
}

function subscribe(ws, raw) {
  const mine = held.get(ws);
  const symbols = [...new Set(raw.map((s) => String(s).trim().toUpperCase()).filter((s) => s.length))];
  const fresh = [];
  for (const s of symbols) {
    if (mine.has(s)) continue;
    mine.add(s);
    let subs = subscribers.get(s);
    if (!subs) subscribers.set(s, (subs = new Set()));
    if (subs.size === 0) fresh.push(s);
    subs.add(ws);
  }
  upstreamSend('subscribe', fresh);
  const snapshot = symbols.filter((s) => lastQuote.has(s)).map((s) => lastQuote.get(s));
  return [{ type: 'subscribed', symbols, rejected: [] }, `{"type":"snapshot","quotes":[${snapshot.join(',')}]}`];
}

function unsubscribe(ws, raw) {
  const mine = held.get(ws);
  const removed = [];
  const gone = [];
  for (const s of raw.map((x) => String(x).trim().toUpperCase())) {
    if (!mine.delete(s)) continue;
    removed.push(s);
    const subs = subscribers.get(s);
    subs.delete(ws);
    if (subs.size === 0) {
      subscribers.delete(s);
      gone.push(s);
    }
  }
  upstreamSend('unsubscribe', gone);
  return removed;
}

function onClientMessage(ws, data) {
  let m;
  try {
    m = JSON.parse(data.toString());
  } catch {
    ws.send(JSON.stringify({ type: 'error', code: 'bad_json', message: 'not valid JSON' }));
    return;
  }
  const withId = (reply) => (m.id === undefined ? reply : { ...reply, id: m.id });
  if (m.type === 'subscribe' && Array.isArray(m.symbols)) {
    const [subscribed, snapshot] = subscribe(ws, m.symbols);
    ws.send(JSON.stringify(withId(subscribed)));
    ws.send(snapshot);
  } else if (m.type === 'unsubscribe' && Array.isArray(m.symbols)) {
    ws.send(JSON.stringify(withId({ type: 'unsubscribed', symbols: unsubscribe(ws, m.symbols) })));
  } else if (m.type === 'ping') {
    ws.send(JSON.stringify(withId({ type: 'pong' })));
  } else {
    ws.send(JSON.stringify({ type: 'error', code: 'unknown_type', message: 'expected subscribe, unsubscribe or ping' }));
  }
}

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ code: 'not_found', dropped }));
});
const wss = new WebSocketServer({ server, path: '/ws', perMessageDeflate: false });
wss.on('connection', (ws, req) => {
  req.socket.setNoDelay(true);
  held.set(ws, new Set());
  ws.send(
    JSON.stringify({
      type: 'hello',
      protocol: 1,
      server: 'node-peer/0.1.0',
      heartbeat_ms: 15000,
      providers: [{ name: 'twelvedata', state: 'live', since: Date.now() }],
    }),
  );
  ws.on('message', (data) => onClientMessage(ws, data));
  ws.on('close', () => {
    unsubscribe(ws, [...held.get(ws)]);
    held.delete(ws);
  });
  ws.on('error', () => {});
});

connectUpstream();
server.listen(args.port, args.host, () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
