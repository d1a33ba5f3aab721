'use strict';

// The header syntax every protocol message uses: `key=value` pairs joined by "; ". Keys are the message's
// lowercase names, each exactly once, no others; values are visible ASCII without space, ';' or '='; the
// whole value is at most 1024 characters. Parsing is strict and never throws.

const MAX_LENGTH = 1024;
const INT64_MAX = 9223372036854775807n;

/** What a receiver makes of a protocol header. */
const Verdict = Object.freeze({
  VALID: 'valid',
  MISSING: 'missing',
  MALFORMED: 'malformed',
  UNSUPPORTED_VERSION: 'unsupported_version',
  BAD_SIGNATURE: 'bad_signature',
});

function isValue(value) {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c > 0x7e || c === 0x3b || c === 0x3d) {
      return false;
    }
  }
  return value.length > 0;
}

// Trims spaces only (not tabs or other whitespace), as the protocol's "; " separator allows.
function trimSpaces(text) {
  let start = 0;
  let end = text.length;
  while (start < end && text.charCodeAt(start) === 0x20) start++;
  while (end > start && text.charCodeAt(end - 1) === 0x20) end--;
  return text.slice(start, end);
}

/** The fields by key, or null when the text is not exactly these keys with valid values. */
function parseFields(text, keys) {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_LENGTH) {
    return null;
  }
  const values = Object.create(null);
  let found = 0;
  for (const part of text.split(';')) {
    const pair = trimSpaces(part);
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      return null;
    }
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (!keys.includes(key) || key in values || !isValue(value)) {
      return null;
    }
    values[key] = value;
    found++;
  }
  return found === keys.length ? values : null;
}

/** An unsigned decimal (ASCII digits only) within [min, max] as a BigInt, or null. */
function parseInteger(text, min = 0n, max = INT64_MAX) {
  if (typeof text !== 'string' || !/^[0-9]+$/.test(text)) {
    return null;
  }
  const value = BigInt(text);
  return value >= min && value <= max ? value : null;
}

/**
 * Reads a message's fields: { verdict, fields }. `v` must be `version`: another number is an unsupported
 * version, anything else malformed. Field values are not checked further here, nor the MAC.
 */
function readMessage(header, keys, version) {
  if (header === undefined || header === null || header === '') {
    return { verdict: Verdict.MISSING, fields: null };
  }
  const fields = parseFields(header, keys);
  if (fields === null) {
    return { verdict: Verdict.MALFORMED, fields: null };
  }
  if (fields.v === version) {
    return { verdict: Verdict.VALID, fields };
  }
  return { verdict: parseInteger(fields.v) !== null ? Verdict.UNSUPPORTED_VERSION : Verdict.MALFORMED, fields: null };
}

module.exports = { MAX_LENGTH, INT64_MAX, INT32_MAX: 2147483647n, Verdict, parseFields, parseInteger, readMessage };
