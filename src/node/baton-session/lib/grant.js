'use strict';

// Gateway → backend, header `Baton-Session` on every proxied request: which session the request belongs
// to, the newest version the gateway holds, the session's epoch and idle timeout, the largest state the
// gateway stores and when the grant was made. Signed with the grant key.

const { Verdict, readMessage, parseInteger, INT32_MAX } = require('./params');
const { isValidId } = require('./ids');
const { computeMac, verifyMac } = require('./keys');

const KEYS = ['v', 'sid', 'ver', 'epoch', 'ttl', 'max', 'ts', 'mac'];

function canonical(g) {
  return `grant\n1\n${g.sid}\n${g.ver}\n${g.epoch}\n${g.ttl}\n${g.max}\n${g.ts}`;
}

/**
 * { verdict, grant }: grant = { sid, ver (BigInt), epoch (BigInt), ttl (ms), max (bytes), ts (ms) } when
 * the verdict is valid.
 */
function parseGrant(header, keys) {
  const { verdict, fields } = readMessage(header, KEYS, '1');
  if (verdict !== Verdict.VALID) {
    return { verdict, grant: null };
  }
  const ver = parseInteger(fields.ver);
  const epoch = parseInteger(fields.epoch);
  const ttl = parseInteger(fields.ttl, 1n);
  const max = parseInteger(fields.max, 0n, INT32_MAX);
  const ts = parseInteger(fields.ts);
  if (!isValidId(fields.sid) || ver === null || epoch === null || ttl === null || max === null || ts === null) {
    return { verdict: Verdict.MALFORMED, grant: null };
  }
  const candidate = { sid: fields.sid, ver, epoch, ttl, max, ts };
  if (!verifyMac(keys.grant, canonical(candidate), fields.mac)) {
    return { verdict: Verdict.BAD_SIGNATURE, grant: null };
  }
  return {
    verdict: Verdict.VALID,
    grant: { sid: fields.sid, ver, epoch, ttl: Number(ttl), max: Number(max), ts: Number(ts) },
  };
}

/** The header a gateway sends (used by tests and tools). */
function formatGrant(g, keys) {
  return `v=1; sid=${g.sid}; ver=${g.ver}; epoch=${g.epoch}; ttl=${g.ttl}; max=${g.max}; ts=${g.ts}; mac=${computeMac(keys.grant, canonical(g))}`;
}

module.exports = { parseGrant, formatGrant };
