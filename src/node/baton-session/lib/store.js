'use strict';

const { SessionLock } = require('./lock');

/** One session held in this process's memory. */
class SessionEntry {
  constructor(ttl, now) {
    this.lock = new SessionLock();
    /**
     * The committed data as JSON text ('' for an empty session); replaced whole on every commit. The only copy
     * held: the checkpoint's bytes are encoded from it when a response carries them, so the bytes counted
     * against maxTotalStateBytes are the bytes held.
     */
    this.text = '';
    /** 0n for a session never changed, +1 per commit. */
    this.version = 0n;
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

  commit(text) {
    this.text = text;
    this.version += 1n;
  }

  install(text, version, epoch) {
    this.text = text;
    this.version = version;
    this.epoch = epoch;
    this.fresh = false;
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
    if (entry.version === 0n && entry.text === '' && entry.lock.idle) this.remove(id, entry);
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
