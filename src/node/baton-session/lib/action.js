'use strict';

// Backend → gateway, header `Baton-Session-Action` on a response: rotate the request's session to a new
// id (login) or end it (logout), honoured by the gateway in that same response. Signed with the action key.

const { Verdict, readMessage } = require('./params');
const { isValidId } = require('./ids');
const { computeMac, verifyMac } = require('./keys');

const KEYS = ['v', 'sid', 'action', 'mac'];
const ACTIONS = ['rotate', 'end'];

function canonical(a) {
  return `action\n1\n${a.sid}\n${a.action}`;
}

/** The header for { sid, action: 'rotate' | 'end' }. */
function formatAction(a, keys) {
  return `v=1; sid=${a.sid}; action=${a.action}; mac=${computeMac(keys.action, canonical(a))}`;
}

/** Reads the header (what a gateway does; used by tests and tools): { verdict, action }. */
function parseAction(header, keys) {
  const { verdict, fields } = readMessage(header, KEYS, '1');
  if (verdict !== Verdict.VALID) {
    return { verdict, action: null };
  }
  if (!isValidId(fields.sid) || !ACTIONS.includes(fields.action)) {
    return { verdict: Verdict.MALFORMED, action: null };
  }
  const candidate = { sid: fields.sid, action: fields.action };
  if (!verifyMac(keys.action, canonical(candidate), fields.mac)) {
    return { verdict: Verdict.BAD_SIGNATURE, action: null };
  }
  return { verdict: Verdict.VALID, action: candidate };
}

module.exports = { formatAction, parseAction };
