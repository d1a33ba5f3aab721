'use strict';

// A small Express app behind baton-session on an ephemeral loopback port, and a gateway's side of the
// protocol: grants to send, checkpoints to read, restores to post.

const http = require('node:http');
const express = require('express');
const baton = require('..');
const { deriveKeys } = require('../lib/keys');
const { formatGrant } = require('../lib/grant');
const { formatRestore } = require('../lib/restore');
const { parseCheckpoint } = require('../lib/checkpoint');
const { parseAction } = require('../lib/action');
const ids = require('../lib/ids');

const SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
const keys = deriveKeys(SECRET);

async function startApp(routes, options = {}) {
  const middleware = baton({ secret: SECRET, logger: false, ...options });
  const app = express();
  app.use(middleware);
  routes(app);
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => res.status(500).send(`failed: ${err.message}`));
  const server = http.createServer(app);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    middleware,
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    async close() {
      middleware.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** One HTTP request: { status, headers, body } (headers as Node gives them, lowercase). */
function request(base, path, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function grant({ sid, ver = 0n, epoch = 0n, ttl = 60000, max = 1048576, ts = Date.now() } = {}) {
  return formatGrant({ sid, ver, epoch, ttl, max, ts }, keys);
}

// The keyed format read as the gateway's Baton.Protocol.KeyedState reads it, written here apart from the library so
// the tests do not check the library's encoding with itself.

function readLength(bytes, at) {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at.offset >= bytes.length) throw new Error('a length runs past the end');
    const b = bytes[at.offset++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value;
  }
  throw new Error('a length of more than 5 bytes');
}

function readBytes(bytes, at) {
  const length = readLength(bytes, at);
  if (length > bytes.length - at.offset) throw new Error('an entry runs past the end');
  const slice = bytes.subarray(at.offset, at.offset + length);
  at.offset += length;
  return slice;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A keyed state's entries: key → value bytes (a Map, keys in the order sent); throws on anything else. */
function decodeState(bytes) {
  const values = new Map();
  if (bytes.length === 0) return values;
  if (bytes[0] !== 1) throw new Error(`format byte ${bytes[0]}, expected 1`);
  const at = { offset: 1 };
  while (at.offset < bytes.length) {
    const key = utf8.decode(readBytes(bytes, at));
    if (values.has(key)) throw new Error(`key ${key} twice`);
    values.set(key, Buffer.from(readBytes(bytes, at)));
  }
  return values;
}

/** A delta's entries in order: [key, value bytes or null for a removal]; throws unless well-formed (ordinal order, each key once). */
function decodeDelta(bytes) {
  if (bytes.length < 2 || bytes[0] !== 2) throw new Error('not a delta');
  const entries = [];
  const at = { offset: 1 };
  while (at.offset < bytes.length) {
    const op = bytes[at.offset++];
    if (op !== 0 && op !== 1) throw new Error(`operation ${op}`);
    const key = utf8.decode(readBytes(bytes, at));
    if (entries.length > 0 && !(entries[entries.length - 1][0] < key)) throw new Error(`key ${key} out of ordinal order`);
    entries.push([key, op === 1 ? Buffer.from(readBytes(bytes, at)) : null]);
  }
  return entries;
}

function writeLength(out, length) {
  let rest = length;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** The keyed state of entries (key → value bytes), keys in ordinal order. */
function encodeState(values) {
  if (values.size === 0) return Buffer.alloc(0);
  const out = [1];
  for (const key of [...values.keys()].sort()) {
    const keyBytes = Buffer.from(key, 'utf8');
    writeLength(out, keyBytes.length);
    out.push(...keyBytes);
    writeLength(out, values.get(key).length);
    out.push(...values.get(key));
  }
  return Buffer.from(out);
}

/** A state's data as an object: each value's JSON parsed. */
function dataOf(values) {
  return Object.fromEntries([...values].map(([key, value]) => [key, JSON.parse(value.toString('utf8'))]));
}

/** The delta applied onto the state, as the gateway folds it (KeyedState.TryApply). */
function applyDelta(stateBytes, deltaBytes) {
  const values = decodeState(stateBytes);
  for (const [key, value] of decodeDelta(deltaBytes)) {
    if (value === null) values.delete(key);
    else values.set(key, value);
  }
  return encodeState(values);
}

/** A state of data (an object), as the library writes it: each value its JSON text. */
function stateOf(data) {
  return encodeState(new Map(Object.entries(data).map(([key, value]) => [key, Buffer.from(JSON.stringify(value), 'utf8')])));
}

/**
 * Reads a response as the gateway does: the checkpoint (if any), the bytes it leads with (`lead`), the app's body;
 * for a whole state also `state`, its data as an object, and for a delta `delta`, its entries.
 */
function split(response) {
  const header = response.headers['baton-checkpoint'];
  if (header === undefined) {
    return { checkpoint: null, lead: null, state: null, delta: null, body: response.body.toString('utf8') };
  }
  const { verdict, checkpoint } = parseCheckpoint(header, keys);
  if (verdict !== 'valid') throw new Error(`checkpoint ${verdict}: ${header}`);
  const lead = response.body.subarray(0, checkpoint.len);
  if (lead.length !== checkpoint.len) throw new Error('the body is shorter than len');
  if (ids.sha256(lead) !== checkpoint.sha256) throw new Error('checkpoint digest does not match');
  const isDelta = checkpoint.base !== undefined;
  return {
    checkpoint,
    lead: Buffer.from(lead),
    state: isDelta ? null : dataOf(decodeState(lead)),
    delta: isDelta ? decodeDelta(lead) : null,
    body: response.body.subarray(checkpoint.len).toString('utf8'),
  };
}

function action(response) {
  const header = response.headers['baton-session-action'];
  return header === undefined ? null : parseAction(header, keys).action;
}

function restoreHeader({ sid, ver = 1n, epoch = 0n, state = Buffer.alloc(0), target, ts = Date.now(), nonce = ids.newId(), len, sha256 }) {
  return formatRestore({ sid, ver, epoch, len: len ?? state.length, sha256: sha256 ?? ids.sha256(state), target, ts, nonce }, keys);
}

function postRestore(base, fields, { body, headers = {} } = {}) {
  const state = fields.state ?? Buffer.alloc(0);
  return request(base, '/_baton/restore', {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', 'Baton-Restore': restoreHeader(fields), ...headers },
    body: body ?? state,
  });
}

/** A promise and the function that settles it: a gate a test opens when it is ready. */
function gate() {
  let open;
  const promise = new Promise((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

module.exports = {
  SECRET, keys, startApp, request, grant, split, action, restoreHeader, postRestore, gate, newId: ids.newId,
  decodeState, decodeDelta, applyDelta, stateOf, dataOf,
};
