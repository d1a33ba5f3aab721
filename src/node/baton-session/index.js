'use strict';

// baton-session: Express sessions behind a Baton gateway. Use it in place of express-session:
//
//   const baton = require('baton-session');
//   app.use(baton({ secret: process.env.BATON_SECRET }));
//
// and keep using `req.session`. See README.md and the protocol in docs/protocol.md.

const ids = require('./lib/ids');
const { deriveKeys } = require('./lib/keys');
const { resolveOptions } = require('./lib/options');
const { SessionStore } = require('./lib/store');
const { ReplayGuard } = require('./lib/replay');
const { RetiredSessions } = require('./lib/retired');
const { createMiddleware, LOCAL_COOKIE } = require('./lib/middleware');
const { version } = require('./package.json');

// The .NET library's event ids and levels, so both kinds of backend log alike.
const EVENTS = {
  RequestRefused: [5001, 'warn'],
  StaleSessionRefused: [5002, 'info'],
  OversizedChangeRolledBack: [5003, 'warn'],
  ChangeDeferred: [5004, 'warn'],
  LateChangeLost: [5005, 'error'],
  SessionRestored: [5006, 'info'],
  RestoreRefused: [5007, 'warn'],
  ChangeDiscarded: [5008, 'info'],
  RequestFailed: [5009, 'error'],
};

function createLogger(logger) {
  if (!logger) return () => {};
  return (event, message) => {
    const [id, level] = EVENTS[event] ?? [5000, 'warn'];
    // console has no levels to filter by: it prints warnings and errors only.
    if (level === 'info' && logger === console) return;
    const method = typeof logger[level] === 'function' ? logger[level] : logger.warn;
    try {
      method.call(logger, `baton-session[${id}] ${event}: ${message}`);
    } catch {
      // A failing logger never fails a request.
    }
  };
}

/**
 * The middleware. Mount it before anything that reads the session or the request body, at the app's
 * root (the gateway restores sessions at /_baton/restore).
 *
 * @param {object} options secret (required, at least 32 characters; the gateway's Baton:Secret) and the
 *   limits maxStateBytes, maxBufferedResponseBytes, clockSkew, sessionLockTimeout, maxSessions,
 *   maxTotalStateBytes, maxRememberedRestores, maxRetiredSessions, localIdleTimeout, purgeInterval (durations in ms or
 *   "hh:mm:ss"); logger (console by default, false for none).
 */
function baton(options) {
  const resolved = resolveOptions(options);
  const store = new SessionStore({ maxSessions: resolved.maxSessions, maxTotalStateBytes: resolved.maxTotalStateBytes, now: resolved.now });
  const replays = new ReplayGuard(resolved.maxRememberedRestores, resolved.clockSkew, resolved.now);
  const retired = new RetiredSessions(resolved.maxRetiredSessions, resolved.now);
  const context = {
    options: resolved,
    store,
    replays,
    retired,
    keys: deriveKeys(resolved.secret),
    // New every time the middleware is made (once per process start), so the gateway can tell a restarted
    // backend, whose memory is empty, from the one it checkpointed.
    incarnation: ids.newId(),
    log: createLogger(resolved.logger),
  };
  const middleware = createMiddleware(context);

  const purger = setInterval(() => {
    store.purgeExpired();
    replays.forget();
    retired.forget();
  }, resolved.purgeInterval);
  purger.unref();

  Object.defineProperties(middleware, {
    incarnation: { value: context.incarnation, enumerable: true },
    /** Sessions held in memory and their state's bytes; restore nonces and retired ids remembered. */
    stats: { value: () => ({ sessions: store.count, stateBytes: store.stateBytes, rememberedRestores: replays.seen.size, retiredSessions: retired.size }), enumerable: true },
    /** Stops the purge timer (it never keeps the process alive anyway). */
    close: { value: () => clearInterval(purger), enumerable: true },
  });
  return middleware;
}

module.exports = baton;
module.exports.baton = baton;
module.exports.LOCAL_COOKIE = LOCAL_COOKIE;
module.exports.version = version;
