'use strict';

// Backend → gateway, header `Baton-Checkpoint` on a response whose body begins with `len` bytes of session
// state (version `ver` of epoch `epoch`), then the app's own body. Signed with the checkpoint key and bound
// to the backend process (`inc`) that made it. This library sends version 2 of the message (a whole state),
// or version 3 (a delta: the keys changed since version `base`, with `size`, the bytes of the whole state).

const { Verdict, readMessage, parseInteger, INT32_MAX } = require('./params');
const { isValidId, isValidDigest } = require('./ids');
const { computeMac, verifyMac } = require('./keys');

const KEYS = ['v', 'sid', 'ver', 'epoch', 'len', 'sha256', 'inc', 'mac'];
const DELTA_KEYS = ['v', 'sid', 'ver', 'epoch', 'base', 'len', 'size', 'sha256', 'inc', 'mac'];

const isDelta = (c) => c.base !== undefined;

function canonical(c) {
  return isDelta(c)
    ? `checkpoint\n3\n${c.sid}\n${c.ver}\n${c.epoch}\n${c.base}\n${c.len}\n${c.size}\n${c.sha256}\n${c.inc}`
    : `checkpoint\n2\n${c.sid}\n${c.ver}\n${c.epoch}\n${c.len}\n${c.sha256}\n${c.inc}`;
}

/** The header for { sid, ver, epoch, len, sha256, inc }, and for a delta also { base, size }. */
function formatCheckpoint(c, keys) {
  const mac = computeMac(keys.checkpoint, canonical(c));
  return isDelta(c)
    ? `v=3; sid=${c.sid}; ver=${c.ver}; epoch=${c.epoch}; base=${c.base}; len=${c.len}; size=${c.size}; sha256=${c.sha256}; inc=${c.inc}; mac=${mac}`
    : `v=2; sid=${c.sid}; ver=${c.ver}; epoch=${c.epoch}; len=${c.len}; sha256=${c.sha256}; inc=${c.inc}; mac=${mac}`;
}

/** Reads a version 2 or 3 checkpoint (what a gateway does; used by tests and tools): { verdict, checkpoint }. */
function parseCheckpoint(header, keys) {
  const delta = typeof header === 'string' && header.startsWith('v=3;');
  const { verdict, fields } = readMessage(header, delta ? DELTA_KEYS : KEYS, delta ? '3' : '2');
  if (verdict !== Verdict.VALID) {
    return { verdict, checkpoint: null };
  }
  const ver = parseInteger(fields.ver, 1n);
  const epoch = parseInteger(fields.epoch);
  const len = parseInteger(fields.len, 0n, INT32_MAX);
  const base = delta ? parseInteger(fields.base, 1n) : null;
  const size = delta ? parseInteger(fields.size, 0n, INT32_MAX) : null;
  if (!isValidId(fields.sid) || ver === null || epoch === null || len === null || !isValidDigest(fields.sha256) || !isValidId(fields.inc)
    || (delta && (base === null || size === null || base >= ver))) {
    return { verdict: Verdict.MALFORMED, checkpoint: null };
  }
  const candidate = { sid: fields.sid, ver, epoch, len: Number(len), sha256: fields.sha256, inc: fields.inc };
  if (delta) Object.assign(candidate, { base, size: Number(size) });
  if (!verifyMac(keys.checkpoint, canonical(candidate), fields.mac)) {
    return { verdict: Verdict.BAD_SIGNATURE, checkpoint: null };
  }
  return { verdict: Verdict.VALID, checkpoint: candidate };
}

module.exports = { formatCheckpoint, parseCheckpoint };
