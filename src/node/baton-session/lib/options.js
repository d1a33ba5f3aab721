'use strict';

// The library's settings, mirroring the .NET library's `Baton:Secret` and `Baton:Backend:*`. Every one is
// checked when the middleware is made; a bad one throws, naming the option, and all problems are reported
// together.

const v8 = require('node:v8');

const MIB = 1024 * 1024;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** The secret both sides use in development only. Public knowledge: anywhere else it is refused. */
const DEVELOPMENT_SECRET = 'baton-development-secret-never-use-in-production';
const MIN_SECRET_LENGTH = 32;

// Session state lives on this process's JavaScript heap, and a request works on a parsed copy of its session:
// by default at most a quarter of the heap holds state, and never more than half.
const HEAP_LIMIT = v8.getHeapStatistics().heap_size_limit;

const DEFAULTS = Object.freeze({
  maxStateBytes: MIB,
  maxBufferedResponseBytes: MIB,
  clockSkew: 60 * SECOND,
  sessionLockTimeout: 2 * SECOND,
  maxSessions: 1_000_000,
  maxTotalStateBytes: Math.min(2 * 1024 * MIB, Math.floor(HEAP_LIMIT / 4)),
  maxRememberedRestores: 100_000,
  maxRetiredSessions: 100_000,
  maxRemovedKeysPerSession: 64,
  localIdleTimeout: 20 * MINUTE,
  purgeInterval: MINUTE,
});

/**
 * A duration in milliseconds: a number of milliseconds, or a .NET-style "[d.]hh:mm:ss[.fff]" string (as
 * `Baton:Backend:*` settings are written). NaN when unreadable, and for a bare string of digits, which .NET
 * reads as days: one setting shared by both libraries must not mean two durations.
 */
function parseDuration(value) {
  if (typeof value === 'number') {
    return value;
  }
  if (typeof value !== 'string') {
    return NaN;
  }
  const text = value.trim();
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,7}))?$/.exec(text);
  if (!match) {
    return NaN;
  }
  const [, days, hours, minutes, seconds, fraction] = match;
  if (Number(hours) > 23 || Number(minutes) > 59 || Number(seconds) > 59) {
    return NaN;
  }
  return (Number(days || 0) * 24 * HOUR) + (Number(hours) * HOUR) + (Number(minutes) * MINUTE)
    + (Number(seconds) * SECOND) + (fraction ? Number(`0.${fraction}`) * SECOND : 0);
}

function parseCount(value) {
  if (typeof value === 'number') {
    return value;
  }
  return typeof value === 'string' && /^\s*[0-9]+\s*$/.test(value) ? Number(value) : NaN;
}

const NAMES = {
  maxStateBytes: 'MaxStateBytes',
  maxBufferedResponseBytes: 'MaxBufferedResponseBytes',
  clockSkew: 'ClockSkew',
  sessionLockTimeout: 'SessionLockTimeout',
  maxSessions: 'MaxSessions',
  maxTotalStateBytes: 'MaxTotalStateBytes',
  maxRememberedRestores: 'MaxRememberedRestores',
  maxRetiredSessions: 'MaxRetiredSessions',
  maxRemovedKeysPerSession: 'MaxRemovedKeysPerSession',
  sendDeltas: 'SendDeltas',
  localIdleTimeout: 'LocalIdleTimeout',
  purgeInterval: 'PurgeInterval',
};
const DURATIONS = new Set(['clockSkew', 'sessionLockTimeout', 'localIdleTimeout', 'purgeInterval']);

function describe(name) {
  return `options.${name} (Baton:Backend:${NAMES[name]})`;
}

/**
 * The validated settings: every limit in bytes, counts or milliseconds, plus the secret. Throws a
 * TypeError naming every bad option.
 */
function resolveOptions(input = {}) {
  if (input === null || typeof input !== 'object') {
    throw new TypeError('baton-session: the options must be an object, e.g. baton({ secret: process.env.BATON_SECRET }).');
  }
  const errors = [];
  const development = (input.environment ?? process.env.NODE_ENV) === 'development';
  let secret = input.secret;
  if ((secret === undefined || secret === null || secret === '') && development) {
    secret = DEVELOPMENT_SECRET;
  }
  if (secret === undefined || secret === null || secret === '') {
    errors.push(`options.secret (Baton:Secret) is required outside development: set it to the gateway's secret (at least ${MIN_SECRET_LENGTH} characters), e.g. baton({ secret: process.env.BATON_SECRET }).`);
  } else if (typeof secret !== 'string') {
    errors.push('options.secret (Baton:Secret) must be a string.');
  } else if (secret.length < MIN_SECRET_LENGTH) {
    errors.push(`options.secret (Baton:Secret) must be at least ${MIN_SECRET_LENGTH} characters long (it has ${secret.length}).`);
  } else if (secret === DEVELOPMENT_SECRET && !development) {
    errors.push(`options.secret (Baton:Secret) is the documented development secret, which anyone can read: outside development (NODE_ENV=development) set the gateway's own secret (at least ${MIN_SECRET_LENGTH} characters).`);
  }

  const o = { secret };
  for (const name of Object.keys(DEFAULTS)) {
    const given = input[name];
    if (given === undefined || given === null) {
      o[name] = DEFAULTS[name];
      continue;
    }
    const value = DURATIONS.has(name) ? parseDuration(given) : parseCount(given);
    if (!Number.isFinite(value) || (!DURATIONS.has(name) && !Number.isInteger(value))) {
      errors.push(`${describe(name)} must be ${DURATIONS.has(name) ? 'a duration (a number of milliseconds, or a string "hh:mm:ss")' : 'a whole number'} (it is ${JSON.stringify(given)}).`);
      o[name] = DEFAULTS[name];
      continue;
    }
    o[name] = value;
  }

  const check = (ok, message) => {
    if (!ok) errors.push(message);
  };
  check(o.maxStateBytes >= 1024 && o.maxStateBytes <= 256 * MIB, `${describe('maxStateBytes')} must be between 1024 and 268435456 (it is ${o.maxStateBytes}).`);
  check(o.maxBufferedResponseBytes >= 0 && o.maxBufferedResponseBytes <= 256 * MIB, `${describe('maxBufferedResponseBytes')} must be between 0 and 268435456 (it is ${o.maxBufferedResponseBytes}).`);
  check(o.clockSkew >= SECOND && o.clockSkew <= HOUR, `${describe('clockSkew')} must be between 1000 ms and 1 hour (it is ${o.clockSkew} ms).`);
  check(o.sessionLockTimeout > 0 && o.sessionLockTimeout <= 10 * MINUTE, `${describe('sessionLockTimeout')} must be above 0 and at most 10 minutes (it is ${o.sessionLockTimeout} ms).`);
  check(o.maxSessions >= 1, `${describe('maxSessions')} must be at least 1 (it is ${o.maxSessions}).`);
  check(o.maxTotalStateBytes >= o.maxStateBytes, `${describe('maxTotalStateBytes')} (${o.maxTotalStateBytes}) must be at least ${describe('maxStateBytes')} (${o.maxStateBytes}).`);
  check(o.maxTotalStateBytes <= HEAP_LIMIT / 2, `${describe('maxTotalStateBytes')} (${o.maxTotalStateBytes}) must be at most half of this process's JavaScript heap limit (${HEAP_LIMIT} bytes), where the state is held: lower it, or raise the limit with node --max-old-space-size.`);
  check(o.maxRememberedRestores >= 1, `${describe('maxRememberedRestores')} must be at least 1 (it is ${o.maxRememberedRestores}).`);
  check(o.maxRetiredSessions >= 1, `${describe('maxRetiredSessions')} must be at least 1 (it is ${o.maxRetiredSessions}).`);
  check(o.maxRemovedKeysPerSession >= 0 && o.maxRemovedKeysPerSession <= 100_000, `${describe('maxRemovedKeysPerSession')} must be between 0 and 100000 (it is ${o.maxRemovedKeysPerSession}).`);
  o.sendDeltas = input.sendDeltas ?? true;
  check(typeof o.sendDeltas === 'boolean', `${describe('sendDeltas')} must be true or false (it is ${JSON.stringify(input.sendDeltas)}).`);
  check(o.localIdleTimeout >= SECOND, `${describe('localIdleTimeout')} must be at least 1000 ms (it is ${o.localIdleTimeout} ms).`);
  check(o.purgeInterval >= 100 && o.purgeInterval <= HOUR, `${describe('purgeInterval')} must be between 100 ms and 1 hour (it is ${o.purgeInterval} ms).`);

  if (input.logger !== undefined && input.logger !== null && input.logger !== false
    && (typeof input.logger !== 'object' || typeof input.logger.warn !== 'function')) {
    errors.push('options.logger must be an object with warn() (and optionally info() and debug()), or false for no logging.');
  }
  if (input.now !== undefined && typeof input.now !== 'function') {
    errors.push('options.now must be a function returning Unix milliseconds.');
  }

  if (errors.length > 0) {
    throw new TypeError(`baton-session: invalid options:\n${errors.join('\n')}`);
  }
  o.logger = input.logger === false || input.logger === null ? null : (input.logger ?? console);
  o.now = input.now ?? Date.now;
  return Object.freeze(o);
}

module.exports = { DEFAULTS, HEAP_LIMIT, DEVELOPMENT_SECRET, MIN_SECRET_LENGTH, NAMES, parseDuration, resolveOptions };
