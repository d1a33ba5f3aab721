'use strict';

// Holds a response back until it can be led by the session's checkpoint: until the app ends it, the body
// passes the buffer limit, or the app starts the response itself (`res.flushHeaders()`). `writeHead` only
// records the status and headers. Just before the first byte goes out, `beforeStart(streaming)` sets the
// headers and gives the bytes that lead the body, or a whole response that replaces the app's.

const EMPTY = Buffer.alloc(0);

function toBuffer(chunk, encoding) {
  if (chunk === undefined || chunk === null) return EMPTY;
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8');
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError('The response chunk must be a string, a Buffer or a Uint8Array.');
}

function setHeaders(res, headers) {
  if (Array.isArray(headers)) {
    const flat = headers.length > 0 && Array.isArray(headers[0]) ? headers.flat() : headers;
    for (let i = 0; i + 1 < flat.length; i += 2) res.setHeader(String(flat[i]), flat[i + 1]);
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) res.setHeader(name, value);
    }
  }
}

class HeldResponse {
  /**
   * @param res the Node response
   * @param limit most bytes held back before the response starts streaming
   * @param beforeStart (streaming, bufferedLength) => ({ prefix }) or ({ replace }), called once
   */
  constructor(res, limit, beforeStart) {
    this.res = res;
    this.limit = limit;
    this.beforeStart = beforeStart;
    this.chunks = [];
    this.length = 0;
    this.started = false;
    this.discard = false;
    this.original = { writeHead: res.writeHead, write: res.write, end: res.end, flushHeaders: res.flushHeaders };
  }

  install() {
    const held = this;
    const res = this.res;
    res.writeHead = function writeHead(statusCode, reason, headers) {
      if (held.started) return held.original.writeHead.apply(res, arguments);
      if (typeof reason !== 'string') {
        headers = reason;
        reason = undefined;
      }
      res.statusCode = statusCode;
      if (reason !== undefined) res.statusMessage = reason;
      setHeaders(res, headers);
      return res;
    };
    res.flushHeaders = function flushHeaders() {
      if (!held.started) held.startStreaming();
      if (!held.discard) held.original.flushHeaders.call(res);
    };
    res.write = function write(chunk, encoding, callback) {
      if (typeof encoding === 'function') {
        callback = encoding;
        encoding = undefined;
      }
      if (held.discard) {
        if (callback) process.nextTick(callback);
        return true;
      }
      if (held.started) return held.original.write.call(res, chunk, encoding, callback);
      const bytes = toBuffer(chunk, encoding);
      if (held.length + bytes.length > held.limit) {
        held.startStreaming();
        if (held.discard) {
          if (callback) process.nextTick(callback);
          return true;
        }
        return held.original.write.call(res, bytes, callback);
      }
      held.chunks.push(bytes);
      held.length += bytes.length;
      if (callback) process.nextTick(callback);
      return true;
    };
    res.end = function end(chunk, encoding, callback) {
      if (typeof chunk === 'function') {
        callback = chunk;
        chunk = undefined;
      } else if (typeof encoding === 'function') {
        callback = encoding;
        encoding = undefined;
      }
      if (held.discard) {
        if (callback) process.nextTick(callback);
        return res;
      }
      if (held.started) return held.original.end.call(res, chunk, encoding, callback);
      const bytes = toBuffer(chunk, encoding);
      if (bytes.length > 0) {
        held.chunks.push(bytes);
        held.length += bytes.length;
      }
      held.started = true;
      const decision = held.beforeStart(false, held.length);
      if (decision.replace) {
        held.discard = true;
        held.chunks = [];
        held.original.end.call(res, decision.replace, callback);
        return res;
      }
      const body = Buffer.concat([decision.prefix ?? EMPTY, ...held.chunks]);
      held.chunks = [];
      held.original.end.call(res, body.length > 0 ? body : undefined, callback);
      return res;
    };
  }

  /** The response starts before the app has ended it: what was held back goes out now, led by the prefix. */
  startStreaming() {
    this.started = true;
    const decision = this.beforeStart(true, this.length);
    if (decision.replace) {
      this.discard = true;
      this.chunks = [];
      this.original.end.call(this.res, decision.replace);
      return;
    }
    const body = Buffer.concat([decision.prefix ?? EMPTY, ...this.chunks]);
    this.chunks = [];
    if (body.length > 0) this.original.write.call(this.res, body);
  }
}

module.exports = { HeldResponse };
