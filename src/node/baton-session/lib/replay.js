'use strict';

/**
 * Remembers the nonces of restores until their timestamps leave the clock-skew window (after which the
 * timestamp check refuses them anyway), so a captured restore cannot be replayed. Bounded: when full of
 * nonces still in their window, a new restore is refused rather than an old nonce forgotten.
 */
class ReplayGuard {
  constructor(capacity, windowMs, now) {
    this.capacity = capacity;
    this.windowMs = windowMs;
    this.now = now;
    this.seen = new Map();
  }

  /** 'first', 'replayed' or 'full'. */
  remember(nonce, timestamp) {
    if (this.seen.has(nonce)) {
      return 'replayed';
    }
    if (this.seen.size >= this.capacity) {
      this.forget();
      if (this.seen.size >= this.capacity) {
        return 'full';
      }
    }
    this.seen.set(nonce, timestamp + this.windowMs);
    return 'first';
  }

  /** Drops nonces whose restores would now be refused as too old. */
  forget() {
    const now = this.now();
    for (const [nonce, expires] of this.seen) {
      if (expires < now) this.seen.delete(nonce);
    }
  }
}

module.exports = { ReplayGuard };
