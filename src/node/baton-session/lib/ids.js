'use strict';

// Random ids (session ids, incarnation ids, nonces) and digests: base64url without padding, each in its
// one canonical spelling. Nothing here throws on input from the network.

const crypto = require('node:crypto');

const ID_BYTES = 16;
const DIGEST_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** 16 bytes from the OS CSPRNG as 22 base64url characters. */
function newId() {
  return crypto.randomBytes(ID_BYTES).toString('base64url');
}

/** The bytes of canonical base64url text encoding exactly `length` bytes, or null. */
function decodeCanonical(text, length) {
  if (typeof text !== 'string' || text.length !== Math.ceil((length * 4) / 3) || !BASE64URL.test(text)) {
    return null;
  }
  const bytes = Buffer.from(text, 'base64url');
  // The re-encoding differs when the last character's unused low bits are not zero.
  return bytes.length === length && bytes.toString('base64url') === text ? bytes : null;
}

/** True for exactly the canonical 22-character encoding of 16 bytes. */
function isValidId(text) {
  return decodeCanonical(text, ID_BYTES) !== null;
}

/** True for exactly the canonical 43-character encoding of 32 bytes (a MAC or SHA-256). */
function isValidDigest(text) {
  return decodeCanonical(text, DIGEST_BYTES) !== null;
}

/** SHA-256 of the bytes as 43 base64url characters. */
function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('base64url');
}

/** A short, stable hash of an id for logs (12 hex digits): ids themselves are never logged. */
function logHash(id) {
  return crypto.createHash('sha256').update(String(id), 'utf8').digest('hex').slice(0, 12);
}

module.exports = { ID_BYTES, DIGEST_BYTES, newId, decodeCanonical, isValidId, isValidDigest, sha256, logHash };
