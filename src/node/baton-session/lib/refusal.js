'use strict';

// The library's own answers: a status, `Cache-Control: no-store` and a plain-text reason; every 503 has
// `Retry-After: 1`. Headers the app set before are dropped, except the incarnation.

const INCARNATION = 'Baton-Incarnation';

/** Replaces whatever the response holds with the refusal's status and headers; returns the body bytes. */
function prepare(res, status, reason, incarnation) {
  const body = Buffer.from(reason, 'utf8');
  for (const name of res.getHeaderNames()) {
    res.removeHeader(name);
  }
  res.statusCode = status;
  res.statusMessage = '';
  res.setHeader(INCARNATION, incarnation);
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('Content-Length', String(body.length));
  res.setHeader('Cache-Control', 'no-store');
  if (status === 503) {
    res.setHeader('Retry-After', '1');
  }
  return body;
}

/** Sends a refusal on a response that has not started. */
function refuse(res, status, reason, incarnation, extraHeaders) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = prepare(res, status, reason, incarnation);
  for (const [name, value] of Object.entries(extraHeaders ?? {})) {
    res.setHeader(name, value);
  }
  res.end(body);
}

module.exports = { prepare, refuse, INCARNATION };
