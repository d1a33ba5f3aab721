'use strict';

// `POST /_baton/restore`: installs a session's state sent by the gateway. Accepted only when the MAC
// holds, it names this process's incarnation, its timestamp is within the clock skew, its nonce is new, the
// body is exactly the state it describes, in this library's format, and the session was not rotated away from
// or ended here. Checks run in the order of the protocol's table; every refusal has a status and a plain-text
// reason.

const ids = require('./ids');
const stateFormat = require('./state');
const { Verdict } = require('./params');
const { parseRestore } = require('./restore');
const { refuse } = require('./refusal');

const RESTORE_PATH = '/_baton/restore';

/** The body when it is exactly `length` bytes, else null. Reads no more than length + 1 bytes' worth. */
function readBody(req, length) {
  const declared = req.headers['content-length'];
  if (declared !== undefined && declared !== String(length)) {
    return Promise.resolve(null);
  }
  if (req.readableEnded) {
    // A body parser ahead of this middleware took the body.
    return Promise.resolve(Buffer.isBuffer(req.body) && req.body.length === length ? req.body : (length === 0 ? Buffer.alloc(0) : null));
  }
  return new Promise((resolve) => {
    const chunks = [];
    let received = 0;
    let settled = false;
    const settle = (value) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onError);
      if (value === null) req.resume();
      resolve(value);
    };
    const onData = (chunk) => {
      received += chunk.length;
      if (received > length) {
        settle(null);
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle(received === length ? Buffer.concat(chunks, received) : null);
    const onError = () => settle(null);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onError);
  });
}

async function handleRestore(context, req, res) {
  const { options, store, keys, incarnation, replays, retired, log } = context;
  const reject = (status, reason, detail) => {
    log('RestoreRefused', `${reason}: ${detail}`);
    refuse(res, status, detail, incarnation);
  };

  if (req.method !== 'POST') {
    // The gateway asks which process answers with a GET (every answer names the incarnation): an
    // ordinary question, not a refused restore, so it is not warned about.
    refuse(res, 405, 'Restores are POSTed.', incarnation, { Allow: 'POST' });
    return;
  }

  const values = req.headersDistinct['baton-restore'];
  const { verdict, restore } = parseRestore(values?.length === 1 ? values[0] : undefined, keys);
  if (verdict !== Verdict.VALID) {
    const status = verdict === Verdict.BAD_SIGNATURE || verdict === Verdict.MISSING ? 401 : 400;
    reject(status, verdict, `The Baton-Restore header is ${verdict.replace('_', ' ')}.`);
    return;
  }
  if (restore.target !== incarnation) {
    reject(403, 'wrong_target', 'The restore is for another backend process.');
    return;
  }
  if (Math.abs(options.now() - restore.ts) > options.clockSkew) {
    reject(401, 'expired', `The restore's timestamp is outside the clock skew (${options.clockSkew} ms).`);
    return;
  }
  if (restore.len > options.maxStateBytes) {
    reject(413, 'too_large', `The state is ${restore.len} bytes, over maxStateBytes (${options.maxStateBytes}).`);
    return;
  }
  const replay = replays.remember(restore.nonce, restore.ts);
  if (replay === 'replayed') {
    reject(409, 'replayed', 'This restore was already used.');
    return;
  }
  if (replay === 'full') {
    reject(503, 'replay_guard_full', 'Too many recent restores (maxRememberedRestores).');
    return;
  }

  const body = await readBody(req, restore.len);
  const state = body === null || ids.sha256(body) !== restore.sha256 ? null : stateFormat.decode(body);
  if (state === null) {
    reject(400, 'bad_body', 'The body is not the state the restore header describes (length, digest, or a format this library reads).');
    return;
  }

  if (retired.has(restore.sid)) {
    // A response of this process rotated the session away from this id or ended it: the id stays dead here,
    // whoever asks (a gateway that has not heard yet, or a replay of the session's last state).
    reject(410, 'retired', 'This session was renewed or ended on this backend; it is not restored.');
    return;
  }

  const entry = store.getOrAdd(restore.sid, options.localIdleTimeout);
  if (entry === null) {
    reject(503, 'memory_full', 'This backend holds its most sessions (maxSessions).');
    return;
  }
  if (!(await entry.lock.acquire(options.sessionLockTimeout))) {
    store.forgetIfUnused(restore.sid, entry);
    reject(503, 'session_busy', 'The session is busy.');
    return;
  }
  try {
    // A restore from a later epoch (the session moved since this copy was made) always wins.
    if (!entry.fresh && (restore.epoch < entry.epoch || (restore.epoch === entry.epoch && restore.ver < entry.version))) {
      reject(409, 'older_than_held', `This backend holds version ${entry.version} of epoch ${entry.epoch}, newer than version ${restore.ver} of epoch ${restore.epoch}.`);
      return;
    }
    if (!store.tryResize(entry, state.held)) {
      reject(503, 'memory_full', 'This backend holds its most session state (maxTotalStateBytes).');
      return;
    }
    // A state of the previous library's format (JSON text) is what the gateway still holds: no delta applies to it,
    // so the next change must go whole, in the keyed format.
    entry.install(state, restore.ver, restore.epoch, { keyed: body.length === 0 || body[0] === 1 });
    entry.touch(store.now(), options.localIdleTimeout);
  } finally {
    entry.lock.release();
    // A refused restore of a new session (or a check restore of an empty one) leaves no entry holding a place.
    store.forgetIfUnused(restore.sid, entry);
  }

  log('SessionRestored', `session ${ids.logHash(restore.sid)}: version ${restore.ver} of epoch ${restore.epoch}, ${restore.len} bytes`);
  res.statusCode = 204;
  res.setHeader('Baton-Incarnation', incarnation);
  res.setHeader('Cache-Control', 'no-store');
  res.end();
}

module.exports = { handleRestore, readBody, RESTORE_PATH };
