'use strict';

/**
 * The session ids this process rotated away from or ended (a response of it carried Baton-Session-Action), each
 * remembered for its session's idle timeout (the grant's ttl), at most maxRetiredSessions of them: past it the
 * oldest are forgotten first. A request of such an id is refused 410 with Baton-Retired and a restore of it 410,
 * so a gateway that has not heard of the rotation never brings the dead id back.
 */
class RetiredSessions {
  constructor(capacity, now) {
    this.capacity = capacity;
    this.now = now;
    /** id → until (Unix ms), in the order of retirement (a Map keeps its insertion order). */
    this.until = new Map();
    /** When expired ids were last forgotten: a full memory walks itself at most once a second. */
    this.forgotAt = -Infinity;
  }

  get size() {
    return this.until.size;
  }

  /** Remembers that `id` is dead here, for `ttl` ms from now. */
  retire(id, ttl) {
    const until = this.now() + Math.max(Number(ttl), 1);
    const held = this.until.get(id);
    if (held !== undefined) {
      if (held >= until) return;
      // Retired again: it moves to the end of the order, as the latest retirement.
      this.until.delete(id);
    } else if (this.until.size >= this.capacity) {
      // Forgetting the expired ones walks the whole memory: at most once a second, so a flood of logouts against a
      // full memory costs each one only the eviction of the oldest.
      if (this.now() - this.forgotAt >= 1000) this.forget();
      for (const oldest of this.until.keys()) {
        if (this.until.size < this.capacity) break;
        this.until.delete(oldest);
      }
    }
    this.until.set(id, until);
  }

  /** True while `id` is remembered as rotated away from or ended here. */
  has(id) {
    const until = this.until.get(id);
    return until !== undefined && until > this.now();
  }

  /** Forgets the ids whose time is up. */
  forget() {
    const now = this.now();
    this.forgotAt = now;
    for (const [id, until] of this.until) {
      if (until <= now) this.until.delete(id);
    }
  }
}

module.exports = { RetiredSessions };
