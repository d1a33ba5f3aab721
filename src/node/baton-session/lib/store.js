'use strict';

const { SessionLock } = require('./lock');
const { State } = require('./state');

/**
 * Removed keys remembered per session, so a delta can name them; past it the oldest are forgotten, and a delta
 * from a version before the newest forgotten removal is never sent (a whole state is).
 */

/** One session held in this process's memory. */
class SessionEntry {
  constructor(ttl, now) {
    this.lock = new SessionLock();
    /**
     * The committed data (a State, replaced whole on every commit). The only copy held: a checkpoint's bytes are
     * encoded from it when a response carries them, so the bytes counted against maxTotalStateBytes are the bytes held.
     */
    this.state = State.EMPTY;
    /** 0n for a session never changed, +1 per commit. */
    this.version = 0n;
    /** The version this copy was made at here (0n, or a restore's): changes are known from it on, none before. */
    this.trackedFrom = 0n;
    /** The version at which each key the state holds was last set. */
    this.setAt = new Map();
    /** The version at which each removed key was removed, oldest first (at most maxRemovedKeysPerSession). */
    this.removedAt = new Map();
    /** The newest version of a removal forgotten: no delta is sent from a version before it. */
    this.forgottenRemoval = 0n;
    /** The session's move count when this copy was made current here (by a restore or its first grant). */
    this.epoch = 0n;
    /** True until the first request or restore has used this entry. */
    this.fresh = true;
    /** Bytes of state counted in the store's total. */
    this.stateBytes = 0;
    /** True once the store dropped the entry: a request still holding it counts nothing more. */
    this.removed = false;
    /**
     * True once a response carried the session's rotation or end: the id is dead here. Requests still waiting for
     * it are served nothing of it, and the entry is dropped once none holds it.
     */
    this.retired = false;
    /** True for an entry made outside the store because it was full: it takes a place only once changed. */
    this.transient = false;
    this.lastAccess = now;
    this.ttl = ttl;
  }

  /**
   * Commits `state`, made from the one held by `changes` (key → JSON text, or null for a removal), as the next version,
   * remembering at most `maxRemoved` removed keys.
   */
  commit(state, changes, maxRemoved) {
    this.version += 1n;
    for (const [key, json] of changes) {
      this.removedAt.delete(key);
      if (json === null) {
        this.setAt.delete(key);
        this.removedAt.set(key, this.version);
      } else {
        this.setAt.set(key, this.version);
      }
    }
    for (const [key, version] of this.removedAt) {
      if (this.removedAt.size <= maxRemoved) break;
      this.removedAt.delete(key);
      if (version > this.forgottenRemoval) this.forgottenRemoval = version;
    }
    this.state = state;
  }

  /**
   * Installs a restored `state` at `version`. Unless the gateway holds it `keyed` (the bytes it restored were in the
   * keyed format), changes are known only from the next version on: no delta is sent onto a state it cannot apply to.
   */
  install(state, version, epoch, { keyed = true } = {}) {
    this.state = state;
    this.version = version;
    this.epoch = epoch;
    this.fresh = false;
    // What changed before this version is not known here.
    this.trackedFrom = keyed ? version : version + 1n;
    this.setAt.clear();
    this.removedAt.clear();
    this.forgottenRemoval = 0n;
  }

  /**
   * The keys set or removed after version `base`, in ordinal order; null when not every one is known (the copy was
   * made here after `base`, or a removal after it was forgotten).
   */
  changedSince(base) {
    if (base < this.trackedFrom || base < this.forgottenRemoval) return null;
    const keys = [];
    for (const [key, version] of this.setAt) {
      if (version > base) keys.push(key);
    }
    for (const [key, version] of this.removedAt) {
      if (version > base) keys.push(key);
    }
    return keys.sort();
  }

  /** A fresh, empty entry joins the epoch of the grant that created it. */
  adopt(epoch) {
    this.epoch = epoch;
    this.fresh = false;
  }

  touch(now, ttl) {
    this.lastAccess = now;
    this.ttl = ttl;
  }

  isExpired(now) {
    return now - this.lastAccess >= this.ttl;
  }
}

/** The sessions this process holds, by the gateway's session id (local sessions by "local:" + their id). */
class SessionStore {
  constructor({ maxSessions, maxTotalStateBytes, now }) {
    this.sessions = new Map();
    this.maxSessions = maxSessions;
    this.maxTotalStateBytes = maxTotalStateBytes;
    this.now = now;
    this.stateBytes = 0;
  }

  get count() {
    return this.sessions.size;
  }

  /**
   * The session's entry, added when new. At maxSessions a new session gets null, or with
   * `transientWhenFull` an entry outside the store that takes a place only once changed (tryAdopt).
   */
  getOrAdd(id, ttl, transientWhenFull = false) {
    const now = this.now();
    const existing = this.sessions.get(id);
    if (existing) {
      if (!existing.isExpired(now) || !existing.lock.idle) {
        return existing;
      }
      this.remove(id, existing);
    }
    if (this.sessions.size >= this.maxSessions) {
      if (!transientWhenFull) return null;
      const transient = new SessionEntry(ttl, now);
      transient.transient = true;
      return transient;
    }
    const entry = new SessionEntry(ttl, now);
    this.sessions.set(id, entry);
    return entry;
  }

  /** Gives a transient entry its place, now that its session changes; false while the store is full. */
  tryAdopt(id, entry) {
    if (!entry.transient) return true;
    if (this.sessions.size >= this.maxSessions || this.sessions.has(id)) return false;
    this.sessions.set(id, entry);
    entry.transient = false;
    return true;
  }

  /**
   * Counts the entry's state at a new size before it is committed or installed: false, and nothing
   * counted, when growth would pass maxTotalStateBytes. A removed or transient entry counts nothing.
   */
  tryResize(entry, bytes) {
    if (entry.removed || entry.transient) {
      return true;
    }
    const growth = bytes - entry.stateBytes;
    if (growth > 0 && this.stateBytes + growth > this.maxTotalStateBytes) {
      return false;
    }
    this.stateBytes += growth;
    entry.stateBytes = bytes;
    return true;
  }

  /** Drops the entry, whatever it holds, once nobody holds it. */
  forget(id, entry) {
    if (entry.lock.idle) this.remove(id, entry);
  }

  /** Drops an entry no request ever changed, once nobody holds it: visitors that never write leave nothing. */
  forgetIfUnused(id, entry) {
    if (entry.version === 0n && entry.state.size === 0 && entry.lock.idle) this.remove(id, entry);
  }

  purgeExpired() {
    const now = this.now();
    let purged = 0;
    for (const [id, entry] of this.sessions) {
      if (entry.isExpired(now) && entry.lock.idle && this.remove(id, entry)) purged++;
    }
    return purged;
  }

  remove(id, entry) {
    if (this.sessions.get(id) !== entry) return false;
    this.sessions.delete(id);
    entry.removed = true;
    this.stateBytes -= entry.stateBytes;
    entry.stateBytes = 0;
    return true;
  }
}

module.exports = { SessionEntry, SessionStore };
