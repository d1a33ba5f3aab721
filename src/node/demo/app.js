'use strict';

// The demo's endpoints, the same contract as the .NET DemoBackend: state lives only in `req.session`,
// what a real Express app does. Every JSON answer carries "instance".

const crypto = require('node:crypto');
const express = require('express');
const baton = require('baton-session');

const MAX_SKU_LENGTH = 64;
const MAX_QTY = 1000;
const MAX_USER_LENGTH = 64;

const sha256Hex = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/** A JSON object's property by name, case-insensitively (as the .NET demo reads its bodies). */
function property(object, name) {
  if (object === null || typeof object !== 'object' || Array.isArray(object)) return undefined;
  const key = Object.keys(object).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : object[key];
}

/** The request body as JSON: undefined for no JSON body, or throws SyntaxError. */
async function readJson(req, limit) {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json' && !type.endsWith('+json')) return { ok: false };
  const body = await readUpTo(req, limit);
  if (body === null) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) };
  } catch {
    return { ok: false };
  }
}

/** The whole body, or null when it is longer than the limit. */
function readUpTo(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let length = 0;
    let done = false;
    req.on('data', (chunk) => {
      if (done) return;
      length += chunk.length;
      if (length > limit) {
        done = true;
        req.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, length));
    });
    req.on('error', reject);
  });
}

function createApp(config, batonMiddleware = baton(config.baton)) {
  const { instance, maxBlobBytes, maxCartItems } = config;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(batonMiddleware);

  const error = (res, status, message) => res.status(status).json({ error: message, instance });
  const readCart = (session) => (Array.isArray(session.cart) ? session.cart : []);
  const readBlob = (session) => (typeof session.blob === 'string' ? Buffer.from(session.blob, 'base64') : Buffer.alloc(0));

  app.get('/health', (req, res) => res.json({ status: 'healthy', instance }));

  app.get('/counter', (req, res) => res.json({ count: req.session.counter ?? 0, instance }));

  app.post('/counter', (req, res) => {
    const count = (req.session.counter ?? 0) + 1;
    req.session.counter = count;
    res.json({ count, instance });
  });

  app.get('/cart', (req, res) => res.json({ items: readCart(req.session), instance }));

  app.post('/cart/items', async (req, res) => {
    const body = await readJson(req, 64 * 1024);
    const sku = property(body.value, 'sku');
    const qty = property(body.value, 'qty');
    if (!body.ok || (sku !== undefined && sku !== null && typeof sku !== 'string')
      || (qty !== undefined && qty !== null && !Number.isInteger(qty)) || (body.value !== null && typeof body.value !== 'object')) {
      return error(res, 400, 'The body must be JSON: {"sku": "...", "qty": n}.');
    }
    if (typeof sku !== 'string' || sku.trim() === '' || sku.length > MAX_SKU_LENGTH) {
      return error(res, 400, `sku must be 1 to ${MAX_SKU_LENGTH} characters.`);
    }
    if (!Number.isInteger(qty) || qty < 1 || qty > MAX_QTY) {
      return error(res, 400, `qty must be between 1 and ${MAX_QTY}.`);
    }
    const cart = readCart(req.session).map((item) => ({ ...item }));
    const existing = cart.find((item) => item.sku === sku);
    if (existing) {
      existing.qty += qty;
    } else if (cart.length >= maxCartItems) {
      return error(res, 400, `The cart holds at most ${maxCartItems} distinct items.`);
    } else {
      cart.push({ sku, qty });
    }
    req.session.cart = cart;
    return res.json({ items: cart, instance });
  });

  // Login gives the session a new id (an id planted before login is worthless after it); the state carries over.
  app.post('/login', async (req, res) => {
    const body = await readJson(req, 64 * 1024);
    const user = property(body.value, 'user');
    if (!body.ok || (user !== undefined && user !== null && typeof user !== 'string')) {
      return error(res, 400, 'The body must be JSON: {"user": "..."}.');
    }
    if (typeof user !== 'string' || user.length < 1 || user.length > MAX_USER_LENGTH) {
      return error(res, 400, `user must be 1 to ${MAX_USER_LENGTH} characters.`);
    }
    req.session.user = user;
    if (req.batonSession) {
      req.batonSession.rotate();
      return res.json({ user, instance });
    }
    // On a MemoryStore: express-session's regenerate() starts an empty session under a new id; the state carries over.
    const state = Object.fromEntries(Object.entries(req.session).filter(([key]) => key !== 'cookie'));
    return req.session.regenerate((err) => {
      if (err) return error(res, 503, 'The session could not be renewed.');
      Object.assign(req.session, state);
      return res.json({ user, instance });
    });
  });

  // Logout ends the session: express-session's destroy(), which the library turns into the gateway's end.
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ user: null, instance })));
  });

  app.get('/blob', (req, res) => {
    const blob = readBlob(req.session);
    res.json({ sha256: sha256Hex(blob), bytes: blob.length, instance });
  });

  // ?bytes=N stores N random bytes; without it the request body is the blob (an upload).
  app.post('/blob', async (req, res) => {
    let blob;
    if (req.query.bytes !== undefined) {
      const text = String(req.query.bytes);
      const size = /^-?[0-9]+$/.test(text) ? Number(text) : NaN;
      if (!Number.isInteger(size) || size < 0 || size > maxBlobBytes) {
        return error(res, 400, `bytes must be between 0 and ${maxBlobBytes}.`);
      }
      blob = crypto.randomBytes(size);
    } else {
      blob = await readUpTo(req, maxBlobBytes);
      if (blob === null) return error(res, 413, `The body must be at most ${maxBlobBytes} bytes.`);
    }
    req.session.blob = blob.toString('base64');
    return res.json({ sha256: sha256Hex(blob), bytes: blob.length, instance });
  });

  app.all('/echo', (req, res) => error(res, 400, 'GET /echo is a WebSocket, which the Node demo does not serve.'));

  // A failure inside the demo answers 500 with a JSON reason and the instance's name, like every other answer.
  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    if (!config.quiet) console.error(`${req.method} ${req.path} failed:`, err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    error(res, 500, `The request failed inside the backend (${err?.name ?? 'Error'}).`);
  });

  return app;
}

module.exports = { createApp };
