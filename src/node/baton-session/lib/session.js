'use strict';

// What an app sees: `req.session`, an express-session `Session` with its usual methods, backed by the
// request's copy of the session in this process's memory; and `req.batonSession`, the session's identity
// as the gateway knows it (rotate at login, end at logout).

const { Session, Cookie, Store } = require('express-session');
const { State } = require('./state');

/** The request's session object, kept where express-session's destroy() cannot delete it. */
const CURRENT = Symbol('baton-session.current');

/** A Session of the data a State holds, on req.session. */
function createSession(req, state, maxAge) {
  const session = new Session(req, state.toObject());
  session.cookie = new Cookie({ maxAge, httpOnly: true, path: '/', sameSite: 'lax' });
  req.session = session;
  req[CURRENT] = session;
  return session;
}

/**
 * The store express-session's Session methods call (`req.sessionStore`): one per request, as the session
 * is the request's. `save()` and `touch()` have nothing to do (the session is committed when the response
 * starts), `reload()` goes back to the committed copy, `regenerate()` starts an empty session under a new
 * id, `destroy()` ends the session.
 */
class RequestStore extends Store {
  constructor(scope, req) {
    super();
    this.scope = scope;
    this.req = req;
  }

  get(id, callback) {
    const { scope } = this;
    const data = scope.base.toObject();
    data.cookie = { originalMaxAge: scope.ttl, httpOnly: true, path: '/', sameSite: 'lax' };
    process.nextTick(callback, null, data);
  }

  createSession(req, sess) {
    const session = createSession(req, State.EMPTY, this.scope.ttl);
    for (const key of Object.keys(sess)) {
      if (key !== 'cookie' && !(key in session)) session[key] = sess[key];
    }
    return session;
  }

  set(id, session, callback) {
    if (callback) process.nextTick(callback, null);
  }

  touch(id, session, callback) {
    if (callback) process.nextTick(callback, null);
  }

  destroy(id, callback) {
    const { scope } = this;
    let error = null;
    if (scope.control.requestAction('end') || !scope.checkpointed) {
      scope.cleared = true;
    } else {
      // Refused: the session stays as it was, on req.session again (express-session removed it before asking).
      this.req.session = this.req[CURRENT];
      error = new Error('baton-session: the session cannot be ended once the response has started.');
    }
    if (callback) process.nextTick(callback, error);
  }

  regenerate(req, callback) {
    const { scope } = this;
    const error = scope.control.requestAction('rotate') || !scope.checkpointed
      ? null
      : new Error('baton-session: the session cannot get a new id once the response has started.');
    if (!error) {
      scope.cleared = true;
      createSession(req, State.EMPTY, scope.ttl);
    }
    if (callback) process.nextTick(callback, error);
  }
}

/** `req.batonSession`: the session's identity, as the app may change it. */
class BatonSessionControl {
  constructor(scope) {
    this.scope = scope;
    /** 'rotate', 'end', or null. */
    this.requested = null;
  }

  /** The gateway's session id; null for a local session (a request that did not come through a gateway). */
  get id() {
    return this.scope.checkpointed ? this.scope.key : null;
  }

  /** True when the request came through a gateway: the session is checkpointed and can move. */
  get checkpointed() {
    return this.scope.checkpointed;
  }

  /**
   * Gives the session a new id in this response (call it at login, before the response starts): the state
   * carries over, the old id is dead everywhere. False for a local session or once the response started.
   */
  rotate() {
    return this.requestAction('rotate');
  }

  /**
   * Ends the session in this response (call it at logout, before the response starts): the gateway drops
   * it everywhere and expires its cookie. False for a local session or once the response started.
   */
  end() {
    return this.requestAction('end');
  }

  requestAction(action) {
    if (!this.scope.checkpointed || this.scope.started) return false;
    // Ending wins over rotating: a request that does both ends the session.
    this.requested = this.requested === 'end' ? 'end' : action;
    return true;
  }
}

module.exports = { createSession, RequestStore, BatonSessionControl };
