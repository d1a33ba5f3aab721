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

/** Reads a response as the gateway does: the checkpoint (if any), the state it leads with, the app's body. */
function split(response) {
  const header = response.headers['baton-checkpoint'];
  if (header === undefined) {
    return { checkpoint: null, state: null, body: response.body.toString('utf8') };
  }
  const { verdict, checkpoint } = parseCheckpoint(header, keys);
  if (verdict !== 'valid') throw new Error(`checkpoint ${verdict}: ${header}`);
  const state = response.body.subarray(0, checkpoint.len);
  if (ids.sha256(state) !== checkpoint.sha256) throw new Error('checkpoint digest does not match');
  return { checkpoint, state: state.toString('utf8'), body: response.body.subarray(checkpoint.len).toString('utf8') };
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

module.exports = { SECRET, keys, startApp, request, grant, split, action, restoreHeader, postRestore, gate, newId: ids.newId };
