'use strict';

/** One holder at a time, first come first served; a waiter gives up after its timeout. */
class SessionLock {
  constructor() {
    this.held = false;
    this.waiters = [];
  }

  /** True when nobody holds the lock or waits for it. */
  get idle() {
    return !this.held && this.waiters.length === 0;
  }

  /** Resolves true once held, false when `timeoutMs` passed first. */
  acquire(timeoutMs) {
    if (!this.held) {
      this.held = true;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = { resolve, timer: null };
      waiter.timer = setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index >= 0) this.waiters.splice(index, 1);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Hands the lock to the next waiter, or frees it. */
  release() {
    const next = this.waiters.shift();
    if (next) {
      clearTimeout(next.timer);
      next.resolve(true);
    } else {
      this.held = false;
    }
  }
}

module.exports = { SessionLock };
