'use strict';

// Backend → gateway, header `Baton-Checkpoint` on a response whose body begins with `len` bytes of session
// state (version `ver` of epoch `epoch`), then the app's own body. Signed with the checkpoint key and bound
// to the backend process (`inc`) that made it. This library sends version 2 of the message.

const { Verdict, readMessage, parseInteger, INT32_MAX } = require('./params');
const { isValidId, isValidDigest } = require('./ids');
const { computeMac, verifyMac } = require('./keys');

const KEYS = ['v', 'sid', 'ver', 'epoch', 'len', 'sha256', 'inc', 'mac'];

function canonical(c) {
  return `checkpoint\n2\n${c.sid}\n${c.ver}\n${c.epoch}\n${c.len}\n${c.sha256}\n${c.inc}`;
}

/** The header for { sid, ver, epoch, len, sha256, inc }. */
function formatCheckpoint(c, keys) {
  return `v=2; sid=${c.sid}; ver=${c.ver}; epoch=${c.epoch}; len=${c.len}; sha256=${c.sha256}; inc=${c.inc}; mac=${computeMac(keys.checkpoint, canonical(c))}`;
}

/** Reads a version 2 checkpoint (what a gateway does; used by tests and tools): { verdict, checkpoint }. */
function parseCheckpoint(header, keys) {
  const { verdict, fields } = readMessage(header, KEYS, '2');
  if (verdict !== Verdict.VALID) {
    return { verdict, checkpoint: null };
  }
  const ver = parseInteger(fields.ver, 1n);
  const epoch = parseInteger(fields.epoch);
  const len = parseInteger(fields.len, 0n, INT32_MAX);
  if (!isValidId(fields.sid) || ver === null || epoch === null || len === null || !isValidDigest(fields.sha256) || !isValidId(fields.inc)) {
    return { verdict: Verdict.MALFORMED, checkpoint: null };
  }
  const candidate = { sid: fields.sid, ver, epoch, len: Number(len), sha256: fields.sha256, inc: fields.inc };
  if (!verifyMac(keys.checkpoint, canonical(candidate), fields.mac)) {
    return { verdict: Verdict.BAD_SIGNATURE, checkpoint: null };
  }
  return { verdict: Verdict.VALID, checkpoint: candidate };
}

module.exports = { formatCheckpoint, parseCheckpoint };
