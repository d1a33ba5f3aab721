'use strict';

// Gateway → backend, header `Baton-Restore` on `POST /_baton/restore`: install the body (`len` bytes of
// state) as version `ver` of the session in epoch `epoch`. Signed with the restore key and bound to one
// backend process (`target`), a time (`ts`) and a nonce.

const { Verdict, readMessage, parseInteger, INT32_MAX } = require('./params');
const { isValidId, isValidDigest } = require('./ids');
const { computeMac, verifyMac } = require('./keys');

const KEYS = ['v', 'sid', 'ver', 'epoch', 'len', 'sha256', 'target', 'ts', 'nonce', 'mac'];

function canonical(r) {
  return `restore\n1\n${r.sid}\n${r.ver}\n${r.epoch}\n${r.len}\n${r.sha256}\n${r.target}\n${r.ts}\n${r.nonce}`;
}

/** { verdict, restore }: restore = { sid, ver, epoch (BigInt), len, sha256, target, ts, nonce }. */
function parseRestore(header, keys) {
  const { verdict, fields } = readMessage(header, KEYS, '1');
  if (verdict !== Verdict.VALID) {
    return { verdict, restore: null };
  }
  const ver = parseInteger(fields.ver);
  const epoch = parseInteger(fields.epoch);
  const len = parseInteger(fields.len, 0n, INT32_MAX);
  const ts = parseInteger(fields.ts);
  if (!isValidId(fields.sid) || ver === null || epoch === null || len === null || !isValidDigest(fields.sha256)
    || !isValidId(fields.target) || ts === null || !isValidId(fields.nonce)) {
    return { verdict: Verdict.MALFORMED, restore: null };
  }
  const candidate = { sid: fields.sid, ver, epoch, len, sha256: fields.sha256, target: fields.target, ts, nonce: fields.nonce };
  if (!verifyMac(keys.restore, canonical(candidate), fields.mac)) {
    return { verdict: Verdict.BAD_SIGNATURE, restore: null };
  }
  return { verdict: Verdict.VALID, restore: { ...candidate, len: Number(len), ts: Number(ts) } };
}

/** The header a gateway sends (used by tests and tools). */
function formatRestore(r, keys) {
  return `v=1; sid=${r.sid}; ver=${r.ver}; epoch=${r.epoch}; len=${r.len}; sha256=${r.sha256}; target=${r.target}; ts=${r.ts}; nonce=${r.nonce}; mac=${computeMac(keys.restore, canonical(r))}`;
}

module.exports = { parseRestore, formatRestore };
