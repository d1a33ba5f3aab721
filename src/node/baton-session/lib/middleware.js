'use strict';

// Gives every request the session the gateway names (authenticated by the grant), serialises the
// session's requests, and leads each response with a checkpoint whenever this process holds a newer
// version of the session than the gateway. Requests without a grant (health probes, direct access) get a
// local session of their own that no gateway checkpoints.

const ids = require('./ids');
const stateFormat = require('./state');
const { Verdict } = require('./params');
const { parseGrant } = require('./grant');
const { formatCheckpoint } = require('./checkpoint');
const { formatAction } = require('./action');
const { HeldResponse } = require('./response');
const { prepare, refuse } = require('./refusal');
const { createSession, RequestStore, BatonSessionControl } = require('./session');
const { handleRestore, RESTORE_PATH } = require('./restore-endpoint');

/** The cookie of local sessions (requests that did not come through a gateway). */
const LOCAL_COOKIE = 'baton.local';

function pathOf(req) {
  const url = req.originalUrl ?? req.url ?? '';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function readCookie(header, name) {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function canHaveBody(req, res) {
  return req.method !== 'HEAD' && res.statusCode >= 200 && res.statusCode !== 204 && res.statusCode !== 304;
}

/** True when the gateway takes deltas for this request (`Baton-Deltas: 1`). */
function offersDeltas(req) {
  const values = req.headersDistinct['baton-deltas'];
  return values !== undefined && values.length === 1 && values[0] === '1';
}

/**
 * What leads a checkpointed response: { bytes, size } of the whole state, or with `base` a delta of the keys
 * changed since the grant's version. A delta only when the gateway takes them (and `sendDeltas` is on), it counts
 * from a stored version, every change since is known here, it is at most half the whole state (a larger one saves
 * little and lengthens the chain every read folds), and the response
 * carries no session action (its state goes under the new id, which holds nothing a delta could apply to).
 */
function leadingState(entry, scope, sendDeltas) {
  const { state } = entry;
  if (sendDeltas && scope.deltas && scope.gatewayVersion >= 1n && !scope.control.requested) {
    const changed = entry.changedSince(scope.gatewayVersion);
    if (changed !== null && changed.length > 0 && state.deltaSize(changed) <= Math.floor(state.size / 2)) {
      return { bytes: state.encodeDelta(changed), base: scope.gatewayVersion, size: state.size };
    }
  }
  return { bytes: state.encode(), base: undefined, size: state.size };
}

function createMiddleware(context) {
  const { options, store, keys, incarnation, retired, log } = context;

  function fail(req, res, error) {
    log('RequestFailed', `${req.method} ${pathOf(req)} failed inside baton-session: ${error && error.stack ? error.stack : error}`);
    if (!res.headersSent && !res.writableEnded) {
      refuse(res, 500, 'The session middleware failed; nothing was changed.', incarnation);
    } else if (!res.writableEnded) {
      res.destroy();
    }
  }

  function refuseRequest(res, status, reason, detail, extraHeaders) {
    log('RequestRefused', `${reason}: ${detail}`);
    refuse(res, status, detail, incarnation, extraHeaders);
  }

  function grantedScope(req, res, values) {
    const header = values.length === 1 ? values[0] : undefined;
    const { verdict, grant } = parseGrant(header, keys);
    if (verdict !== Verdict.VALID) {
      const status = verdict === Verdict.BAD_SIGNATURE ? 401 : 400;
      const reason = verdict === Verdict.BAD_SIGNATURE || verdict === Verdict.UNSUPPORTED_VERSION ? verdict : 'malformed';
      refuseRequest(res, status, `grant_${reason}`, `The Baton-Session header is ${reason.replace('_', ' ')}.`);
      return null;
    }
    if (Math.abs(options.now() - grant.ts) > options.clockSkew) {
      refuseRequest(res, 401, 'grant_expired', `The Baton-Session timestamp is outside the clock skew (${options.clockSkew} ms); check the clocks of gateway and backend.`);
      return null;
    }
    return {
      key: grant.sid, gatewayVersion: grant.ver, epoch: grant.epoch, ttl: grant.ttl,
      maxStateBytes: Math.min(grant.max, options.maxStateBytes), checkpointed: true, deltas: offersDeltas(req),
    };
  }

  function localScope(req, res) {
    let id = readCookie(req.headers.cookie, LOCAL_COOKIE);
    if (!ids.isValidId(id)) {
      id = ids.newId();
      const secure = req.secure === true || req.socket?.encrypted === true;
      res.appendHeader('Set-Cookie', `${LOCAL_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`);
    }
    return {
      key: 'local:' + id, localId: id, gatewayVersion: 0n, epoch: 0n, ttl: options.localIdleTimeout,
      maxStateBytes: options.maxStateBytes, checkpointed: false, deltas: false,
    };
  }

  // 410 with Baton-Retired naming the session: the gateway answers it without restoring the session anywhere.
  function refuseRetired(res, scope, hash) {
    refuseRequest(res, 410, 'retired', `Session ${hash} was renewed or ended (a sign-in or sign-out); this backend serves nothing of it.`,
      { 'Baton-Retired': `sid=${scope.key}` });
  }

  async function serve(req, res, next, scope) {
    const hash = ids.logHash(scope.key);
    if (scope.checkpointed && retired.has(scope.key)) {
      // A response of this session carried its rotation or end: the id is dead here, whatever a gateway still
      // thinks of it. Refused distinctly, so no gateway answers this with a restore of the dead id.
      refuseRetired(res, scope, hash);
      return;
    }
    // At maxSessions a new session is still served (a health probe, a visitor that only reads): it is
    // refused only if it changes, before its first byte.
    const entry = store.getOrAdd(scope.key, scope.ttl, true);
    if (!(await entry.lock.acquire(options.sessionLockTimeout))) {
      store.forgetIfUnused(scope.key, entry);
      refuseRequest(res, 503, 'session_busy', 'Another request of this session is still running; retry shortly.');
      return;
    }
    scope.entry = entry;
    scope.lockHeld = true;
    const releaseLock = () => {
      if (scope.lockHeld) {
        scope.lockHeld = false;
        entry.lock.release();
      }
    };
    if (res.destroyed || res.writableEnded) {
      // The client went away while the request waited for its session.
      releaseLock();
      store.forgetIfUnused(scope.key, entry);
      return;
    }

    if (entry.retired) {
      // Rotated or ended by a response while this request was on its way or waiting: the id is dead, and what
      // the copy holds (a logged-in state, say) is not this request's to see. The backend holds nothing for it.
      releaseLock();
      store.forget(scope.key, entry);
      refuseRetired(res, scope, hash);
      return;
    }

    entry.touch(store.now(), scope.ttl);
    if (entry.fresh && scope.gatewayVersion === 0n) {
      entry.adopt(scope.epoch);
    }
    if (scope.checkpointed && (entry.version < scope.gatewayVersion || entry.epoch !== scope.epoch)) {
      // Serving from this memory would hand out an old state: a process that restarted empty, or one that
      // came back after the session moved away (another epoch). The gateway restores first.
      log('StaleSessionRefused', `session ${hash}: this process holds version ${entry.version} of epoch ${entry.epoch}, the gateway version ${scope.gatewayVersion} of epoch ${scope.epoch}`);
      releaseLock();
      store.forgetIfUnused(scope.key, entry);
      refuse(res, 409, "This backend's copy of the session is older than the gateway's checkpoint.", incarnation, { 'Baton-Stale': `have=${entry.version}` });
      return;
    }

    scope.base = entry.state;
    const servedEpoch = entry.epoch;
    scope.cleared = false;
    scope.started = false;
    scope.actionSent = false;
    scope.control = new BatonSessionControl(scope);
    req.sessionID = scope.checkpointed ? scope.key : scope.localId;
    req.sessionStore = new RequestStore(scope, req);
    req.batonSession = scope.control;
    createSession(req, scope.base, scope.ttl);

    // A change refused before the response's first byte: rolled back, the app's answer replaced.
    const rollBack = (status, reason) => {
      createSession(req, scope.base, scope.ttl);
      scope.cleared = false;
      releaseLock();
      return { replace: prepare(res, status, reason, incarnation) };
    };

    const beforeStart = (streaming, bufferedLength) => {
      scope.started = true;
      let data;
      try {
        data = stateFormat.serialise(req.session);
      } catch (error) {
        log('RequestRefused', `session ${hash}: the session cannot be serialised (${error.message}); the change was rolled back`);
        return rollBack(500, `The session could not be saved: a value in it cannot be serialised as JSON (${error.message}). The change was not saved and the session is as it was.`);
      }
      const changes = scope.base.changesTo(data);
      if (scope.cleared || changes.size > 0) {
        if (res.statusCode >= 500) {
          // A server error (what Express sends when a handler throws) commits none of the request's changes.
          log('ChangeDiscarded', `session ${hash}: the response is ${res.statusCode}; the request's changes were not saved`);
          createSession(req, scope.base, scope.ttl);
          scope.cleared = false;
          scope.control.requested = null;
        } else {
          const next = scope.base.with(changes);
          if (next.size > scope.maxStateBytes) {
            log('OversizedChangeRolledBack', `session ${hash}: the state would be ${next.size} bytes, over its limit of ${scope.maxStateBytes}`);
            return rollBack(413, `The session state would be ${next.size} bytes, over its limit of ${scope.maxStateBytes}; the change was not saved and the session is as it was.`);
          }
          if (!store.tryAdopt(scope.key, entry)) {
            log('RequestRefused', `memory_full: session ${hash}: a new session's first change, with maxSessions held; the change was rolled back`);
            return rollBack(503, 'This backend holds its most sessions (maxSessions); the change was not saved. Retry shortly.');
          }
          if (!store.tryResize(entry, next.held)) {
            log('RequestRefused', `state_memory_full: session ${hash}: ${next.size} bytes of state would pass maxTotalStateBytes; the change was rolled back`);
            return rollBack(503, 'This backend holds its most session state (maxTotalStateBytes); the change was not saved and the session is as it was. Retry shortly.');
          }
          entry.commit(next, changes, options.maxRemovedKeysPerSession);
          scope.base = next;
          scope.cleared = false;
        }
      }

      const { version, epoch } = entry;
      // Every response names this process, even one whose app cleared the headers.
      res.setHeader('Baton-Incarnation', incarnation);
      if (scope.checkpointed && scope.control.requested) {
        res.setHeader('Baton-Session-Action', formatAction({ sid: scope.key, action: scope.control.requested }, keys));
        scope.actionSent = true;
        // Before the lock goes: a request of the old id waiting for it must find the id dead, and so must one that
        // comes later, once this copy is dropped (remembered for the session's idle timeout).
        retired.retire(scope.key, scope.ttl);
        entry.retired = true;
      }
      const lead = scope.checkpointed && version > scope.gatewayVersion && canHaveBody(req, res) ? leadingState(entry, scope, options.sendDeltas) : null;
      releaseLock();
      if (!scope.checkpointed || version <= scope.gatewayVersion) {
        return { prefix: null };
      }
      if (lead === null) {
        log('ChangeDeferred', `session ${hash}: version ${version} rides with the session's next response (the response has no body)`);
        return { prefix: null };
      }
      const { bytes, base, size } = lead;
      res.setHeader('Baton-Checkpoint', formatCheckpoint({
        sid: scope.key, ver: version, epoch, base, len: bytes.length, size, sha256: ids.sha256(bytes), inc: incarnation,
      }, keys));
      if (!streaming) {
        res.removeHeader('Transfer-Encoding');
        res.setHeader('Content-Length', String(bytes.length + bufferedLength));
      } else if (res.hasHeader('Content-Length')) {
        const appLength = Number(res.getHeader('Content-Length'));
        if (Number.isSafeInteger(appLength) && appLength >= 0) res.setHeader('Content-Length', String(appLength + bytes.length));
        else res.removeHeader('Content-Length');
      }
      return { prefix: bytes };
    };

    /** A change made after the response started: committed now, it rides with the session's next response. */
    const commitLateChange = async () => {
      let data;
      try {
        data = stateFormat.serialise(req.session);
      } catch (error) {
        log('LateChangeLost', `session ${hash}: the session cannot be serialised (${error.message})`);
        return;
      }
      if (!scope.cleared && scope.base.changesTo(data).size === 0) return;
      if (!(await entry.lock.acquire(options.sessionLockTimeout))) {
        log('LateChangeLost', `session ${hash}: the session stayed busy past sessionLockTimeout`);
        return;
      }
      try {
        if (entry.removed || entry.epoch !== servedEpoch) {
          // The session moved (a restore of a later epoch) or was dropped while the response was sent: the copy
          // held now is not the one this request changed, and the gateway has fenced the change already.
          log('LateChangeLost', `session ${hash}: the session was restored in another epoch or dropped before the change could be committed`);
          return;
        }
        if (entry.retired) {
          // Another response rotated or ended the session meanwhile: its id serves nothing more.
          log('LateChangeLost', `session ${hash}: the session was renewed or ended before the change could be committed`);
          return;
        }
        const changes = stateFormat.lateChanges(scope.base, data, entry.state, scope.cleared);
        if (changes.size === 0) return;
        const next = entry.state.with(changes);
        if (next.size > scope.maxStateBytes) {
          log('LateChangeLost', `session ${hash}: the state would be ${next.size} bytes, over its limit of ${scope.maxStateBytes}`);
        } else if (!store.tryAdopt(scope.key, entry)) {
          log('LateChangeLost', `session ${hash}: this backend holds its most sessions (maxSessions)`);
        } else if (!store.tryResize(entry, next.held)) {
          log('LateChangeLost', `session ${hash}: this backend holds its most session state (maxTotalStateBytes)`);
        } else {
          entry.commit(next, changes, options.maxRemovedKeysPerSession);
          log('ChangeDeferred', `session ${hash}: version ${entry.version} rides with the session's next response (the app changed the session after the response started)`);
        }
      } finally {
        entry.lock.release();
      }
    };

    let finished = false;
    const finish = (completed) => {
      if (finished) return;
      finished = true;
      releaseLock();
      const done = () => {
        if (scope.actionSent) {
          // Rotated or ended: the gateway no longer sends this id; the state lives on (if at all) under the
          // new id, restored from the gateway's store on its first request.
          store.forget(scope.key, entry);
        } else {
          store.forgetIfUnused(scope.key, entry);
        }
      };
      if (completed && scope.started && !scope.actionSent) {
        commitLateChange().catch((error) => log('LateChangeLost', `session ${hash}: ${error.stack ?? error}`)).finally(done);
      } else {
        done();
      }
    };
    res.once('finish', () => finish(true));
    res.once('close', () => finish(res.writableFinished));

    new HeldResponse(res, options.maxBufferedResponseBytes, (streaming, length) => {
      try {
        return beforeStart(streaming, length);
      } catch (error) {
        log('RequestFailed', `session ${hash}: ${error.stack ?? error}`);
        createSession(req, scope.base, scope.ttl);
        releaseLock();
        return { replace: prepare(res, 500, 'The session middleware failed; nothing was changed.', incarnation) };
      }
    }).install();
    next();
  }

  return function batonSession(req, res, next) {
    try {
      res.setHeader('Baton-Incarnation', incarnation);
      if (pathOf(req).toLowerCase() === RESTORE_PATH) {
        handleRestore(context, req, res).catch((error) => fail(req, res, error));
        return;
      }
      const values = req.headersDistinct['baton-session'];
      const scope = values === undefined ? localScope(req, res) : grantedScope(req, res, values);
      if (scope === null) return;
      serve(req, res, next, scope).catch((error) => fail(req, res, error));
    } catch (error) {
      fail(req, res, error);
    }
  };
}

module.exports = { createMiddleware, LOCAL_COOKIE };
