'use strict';

// Keys derived from the shared secret, one per message kind, so a MAC made for one kind never verifies as
// another: HKDF-SHA256(ikm = UTF-8(secret), no salt, info = "baton/v1/" + purpose), 32 bytes.

const crypto = require('node:crypto');
const { decodeCanonical, DIGEST_BYTES } = require('./ids');

const PURPOSES = ['cookie', 'grant', 'checkpoint', 'restore', 'action'];

function derive(secret, purpose) {
  const key = crypto.hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), Buffer.from('baton/v1/' + purpose, 'ascii'), 32);
  return Buffer.from(key);
}

/** The keys of every purpose, from the secret. */
function deriveKeys(secret) {
  const keys = {};
  for (const purpose of PURPOSES) {
    keys[purpose] = derive(secret, purpose);
  }
  return Object.freeze(keys);
}

/** HMAC-SHA256 of the canonical text as 43 base64url characters. */
function computeMac(key, canonical) {
  return crypto.createHmac('sha256', key).update(canonical, 'utf8').digest('base64url');
}

/** True when `presented` is the canonical spelling of the MAC of `canonical`; compared in constant time. */
function verifyMac(key, canonical, presented) {
  const given = decodeCanonical(presented, DIGEST_BYTES);
  if (given === null) {
    return false;
  }
  const expected = crypto.createHmac('sha256', key).update(canonical, 'utf8').digest();
  return crypto.timingSafeEqual(expected, given);
}

module.exports = { PURPOSES, deriveKeys, computeMac, verifyMac };
