'use strict';

// The Express library's state: the keyed format of the protocol (the .NET library's). Each top-level property of
// `req.session` but its `cookie` is one key, its value the UTF-8 JSON text of that property. A state is empty for an
// empty session; otherwise a format byte 1, then per key in ordinal order (JavaScript's default sort: UTF-16 code
// units, as .NET's string.CompareOrdinal) key length, UTF-8 key, value length, value, lengths as unsigned LEB128.
// A delta is a format byte 2, then per changed key in the same order an operation byte (1 set, 0 remove), key length,
// UTF-8 key, and for a set value length and value. States made by the previous version of this library, the JSON text
// of an object, are still read when restored.

const EMPTY = Buffer.alloc(0);
const STATE_FORMAT = 1;
const DELTA_FORMAT = 2;
const SET = 1;
const REMOVE = 0;
const JSON_OBJECT_START = 0x7b;
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Names a session object has that are not its data; a restore holding one (or `__proto__`) is refused. */
const RESERVED = new Set(['cookie', 'id', 'req']);

function isDataKey(key) {
  return !RESERVED.has(key) && key !== '__proto__';
}

function lengthSize(length) {
  let size = 1;
  for (let value = length; value >= 0x80; value = Math.floor(value / 0x80)) size++;
  return size;
}

function keySize(key) {
  const length = Buffer.byteLength(key, 'utf8');
  return lengthSize(length) + length;
}

/** One key's value: its JSON text and that text's UTF-8 length. */
function valueOf(json) {
  return { json, length: Buffer.byteLength(json, 'utf8') };
}

/** Bytes a key holding a value takes in a state. */
function entrySize(key, value) {
  return keySize(key) + lengthSize(value.length) + value.length;
}

/**
 * The bytes the JavaScript heap holds for the text: one per character while every character is below U+0100
 * (checked as the UTF-8 length equalling the character count, i.e. all ASCII), else up to two per character.
 */
function heldBytes(text, utf8Length = Buffer.byteLength(text, 'utf8')) {
  return utf8Length === text.length ? utf8Length : Math.max(utf8Length, 2 * text.length);
}

function heldBytesOf(key, value) {
  return heldBytes(key) + heldBytes(value.json, value.length);
}

/**
 * A session's committed data: its values by key, the bytes its whole state takes (`size`) and the bytes the heap
 * holds for it (`held`). Never changed once made: `with()` makes the next one, counting only the keys it changes.
 */
class State {
  constructor(values, size, held) {
    this.values = values;
    this.size = size;
    this.held = held;
  }

  static of(values) {
    let body = 0;
    let held = 0;
    for (const [key, value] of values) {
      body += entrySize(key, value);
      held += heldBytesOf(key, value);
    }
    return new State(values, body === 0 ? 0 : body + 1, held);
  }

  /** The changes (key → JSON text, or null to remove) that turn this state into `data` (key → JSON text). */
  changesTo(data) {
    const changes = new Map();
    for (const key of this.values.keys()) {
      if (!data.has(key)) changes.set(key, null);
    }
    for (const [key, json] of data) {
      if (this.values.get(key)?.json !== json) changes.set(key, json);
    }
    return changes;
  }

  /** The changes that still change this state: a set to another value, a removal of a key it holds. */
  effective(changes) {
    const effective = new Map();
    for (const [key, json] of changes) {
      if (json === null ? this.values.has(key) : this.values.get(key)?.json !== json) effective.set(key, json);
    }
    return effective;
  }

  /** This state with the changes applied; its size and held bytes counted from the changed keys alone. */
  with(changes) {
    const values = new Map(this.values);
    let body = this.size === 0 ? 0 : this.size - 1;
    let { held } = this;
    for (const [key, json] of changes) {
      const old = values.get(key);
      if (old !== undefined) {
        body -= entrySize(key, old);
        held -= heldBytesOf(key, old);
        values.delete(key);
      }
      if (json !== null) {
        const value = valueOf(json);
        values.set(key, value);
        body += entrySize(key, value);
        held += heldBytesOf(key, value);
      }
    }
    return new State(values, body === 0 ? 0 : body + 1, held);
  }

  /** The whole state's bytes. */
  encode() {
    if (this.size === 0) return EMPTY;
    const writer = new Writer(this.size);
    writer.byte(STATE_FORMAT);
    for (const key of [...this.values.keys()].sort()) writer.entry(key, this.values.get(key).json);
    return writer.done();
  }

  /** Bytes of the delta setting each of `keys` this state holds to its value and removing the others. */
  deltaSize(keys) {
    let size = 1;
    for (const key of keys) {
      const value = this.values.get(key);
      size += 1 + (value === undefined ? keySize(key) : entrySize(key, value));
    }
    return size;
  }

  /** The delta of `keys` (in ordinal order): those this state holds set to their values, the others removed. */
  encodeDelta(keys) {
    const writer = new Writer(this.deltaSize(keys));
    writer.byte(DELTA_FORMAT);
    for (const key of keys) {
      const value = this.values.get(key);
      if (value === undefined) {
        writer.byte(REMOVE);
        writer.text(key);
      } else {
        writer.byte(SET);
        writer.entry(key, value.json);
      }
    }
    return writer.done();
  }

  /** A fresh object of the data, for `req.session`. */
  toObject() {
    const data = {};
    for (const [key, value] of this.values) data[key] = JSON.parse(value.json);
    return data;
  }
}

State.EMPTY = new State(new Map(), 0, 0);

class Writer {
  constructor(size) {
    this.buffer = Buffer.allocUnsafe(size);
    this.offset = 0;
  }

  byte(value) {
    this.buffer[this.offset++] = value;
  }

  length(value) {
    let rest = value;
    while (rest >= 0x80) {
      this.byte((rest % 0x80) | 0x80);
      rest = Math.floor(rest / 0x80);
    }
    this.byte(rest);
  }

  text(text) {
    const length = Buffer.byteLength(text, 'utf8');
    this.length(length);
    this.offset += this.buffer.write(text, this.offset, length, 'utf8');
  }

  entry(key, json) {
    this.text(key);
    this.text(json);
  }

  done() {
    if (this.offset !== this.buffer.length) throw new Error(`baton-session: encoded ${this.offset} bytes where ${this.buffer.length} were counted`);
    return this.buffer;
  }
}

/**
 * The session's data, key → JSON text, without its cookie and methods. Throws when a value cannot be serialised
 * (a BigInt, a cycle) or a key is not valid Unicode (a lone surrogate has no UTF-8).
 */
function serialise(session) {
  const data = new Map();
  if (session === undefined || session === null) return data;
  for (const key of Object.keys(session)) {
    const value = session[key];
    if (!isDataKey(key) || typeof value === 'function') continue;
    const json = JSON.stringify(value);
    // What JSON.stringify leaves out of an object (undefined, a symbol) is not held either.
    if (json === undefined) continue;
    if (!key.isWellFormed()) throw new TypeError(`the key ${JSON.stringify(key)} is not valid Unicode`);
    data.set(key, json);
  }
  return data;
}

/** Reads an unsigned LEB128 length at `at.offset`, or -1 when there is none within 31 bits. */
function readLength(bytes, at) {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (at.offset >= bytes.length) return -1;
    const b = bytes[at.offset++];
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return value <= 0x7fffffff ? value : -1;
  }
  return -1;
}

/** Reads a length-prefixed UTF-8 text, or null. */
function readText(bytes, at) {
  const length = readLength(bytes, at);
  if (length < 0 || length > bytes.length - at.offset) return null;
  try {
    const text = decoder.decode(bytes.subarray(at.offset, at.offset + length));
    at.offset += length;
    return text;
  } catch {
    return null;
  }
}

function isJson(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function decodeKeyed(bytes) {
  const values = new Map();
  const at = { offset: 1 };
  while (at.offset < bytes.length) {
    const key = readText(bytes, at);
    if (key === null || !isDataKey(key) || values.has(key)) return null;
    const json = readText(bytes, at);
    if (json === null || !isJson(json)) return null;
    values.set(key, valueOf(json));
  }
  // Kept as sent, so the state held is byte for byte the one the gateway holds and deltas fold onto it exactly.
  return new State(values, bytes.length, [...values].reduce((sum, [key, value]) => sum + heldBytesOf(key, value), 0));
}

// The previous version's format: the JSON text of an object holding the session's properties.
function decodeJsonObject(bytes) {
  let object;
  try {
    object = JSON.parse(decoder.decode(bytes));
  } catch {
    return null;
  }
  if (object === null || typeof object !== 'object' || Array.isArray(object) || Object.hasOwn(object, '__proto__')) {
    return null;
  }
  const values = new Map();
  for (const key of Object.keys(object)) {
    if (!isDataKey(key)) return null;
    values.set(key, valueOf(JSON.stringify(object[key])));
  }
  return State.of(values);
}

/** The state in restored bytes, or null when they are neither format or hold what a session cannot. */
function decode(bytes) {
  if (bytes.length === 0) return State.EMPTY;
  if (bytes[0] === STATE_FORMAT) return decodeKeyed(bytes);
  // An object's JSON text starts with its brace: no BOM, no leading whitespace.
  if (bytes[0] === JSON_OBJECT_START) return decodeJsonObject(bytes);
  return null;
}

/**
 * The changes a request made after its response started, to apply onto the state committed by then (another
 * request of the session may have changed other keys meanwhile): the keys whose JSON differs between what the
 * request saw and what it left, or every key when it cleared the session.
 */
function lateChanges(seen, left, committed, cleared) {
  return committed.effective(cleared ? committed.changesTo(left) : seen.changesTo(left));
}

module.exports = { State, serialise, decode, lateChanges, heldBytes, entrySize, valueOf, STATE_FORMAT, DELTA_FORMAT };
