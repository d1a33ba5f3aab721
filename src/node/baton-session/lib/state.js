'use strict';

// The Express library's state format: empty for an empty session; otherwise the UTF-8 JSON text of an
// object holding the session's own properties (what `JSON.stringify(req.session)` gives, without its
// `cookie`). The gateway never looks inside; a restore whose bytes are not this is refused.

const EMPTY = Buffer.alloc(0);
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Names a session object has that are not its data. */
const RESERVED = new Set(['cookie', 'id', 'req']);

/** The session's data as JSON text ('' when it holds nothing). Throws when a value cannot be serialised. */
function serialise(session) {
  if (session === undefined || session === null) {
    return '';
  }
  const data = {};
  let any = false;
  for (const key of Object.keys(session)) {
    if (RESERVED.has(key) || typeof session[key] === 'function') continue;
    data[key] = session[key];
    any = true;
  }
  if (!any) {
    return '';
  }
  const text = JSON.stringify(data);
  return text === '{}' ? '' : text;
}

/** The state bytes for serialised text. */
function encode(text) {
  return text === '' ? EMPTY : Buffer.from(text, 'utf8');
}

/** The JSON text of state bytes, or null when they are not this format. */
function decode(bytes) {
  if (bytes.length === 0) {
    return '';
  }
  // The first byte of an object's JSON text: no BOM, no leading whitespace, no other format's marker.
  if (bytes[0] !== 0x7b) {
    return null;
  }
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    return null;
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Object.hasOwn(value, '__proto__')) {
    return null;
  }
  for (const key of Object.keys(value)) {
    if (RESERVED.has(key)) return null;
  }
  return text;
}

/**
 * The bytes the JavaScript heap holds for the text: one per character while every character is below U+0100
 * (checked as the UTF-8 length equalling the character count, i.e. all ASCII), else up to two per character.
 */
function heldBytes(text, utf8Length = Buffer.byteLength(text, 'utf8')) {
  return utf8Length === text.length ? utf8Length : Math.max(utf8Length, 2 * text.length);
}

/** A fresh object of the data in JSON text ('' is empty). */
function parse(text) {
  return text === '' ? {} : JSON.parse(text);
}

module.exports = { serialise, encode, decode, parse, heldBytes, EMPTY };
