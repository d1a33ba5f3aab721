'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { resolveOptions, parseDuration, DEFAULTS, HEAP_LIMIT, DEVELOPMENT_SECRET } = require('../lib/options');

const SECRET = 'x'.repeat(32);

test('defaults mirror Baton:Backend:* of the .NET library', () => {
  const o = resolveOptions({ secret: SECRET, environment: 'production' });
  for (const [name, value] of Object.entries(DEFAULTS)) assert.equal(o[name], value, name);
  assert.equal(o.maxStateBytes, 1048576);
  assert.equal(o.clockSkew, 60000);
  assert.equal(o.sessionLockTimeout, 2000);
});

test('the secret is required, at least 32 characters, and not the development secret outside development', () => {
  assert.throws(() => resolveOptions({ environment: 'production' }), /options\.secret \(Baton:Secret\) is required/);
  assert.throws(() => resolveOptions({ secret: 'short', environment: 'production' }), /at least 32 characters long \(it has 5\)/);
  assert.throws(() => resolveOptions({ secret: DEVELOPMENT_SECRET, environment: 'production' }), /development secret/);
  assert.equal(resolveOptions({ environment: 'development' }).secret, DEVELOPMENT_SECRET);
});

test('every bad limit is reported together, naming the option', () => {
  let message = '';
  try {
    resolveOptions({ secret: SECRET, maxStateBytes: 10, clockSkew: 'soon', maxSessions: 0, purgeInterval: 5, maxTotalStateBytes: 2000, maxBufferedResponseBytes: 1.5, maxRetiredSessions: 0, maxRemovedKeysPerSession: -1, sendDeltas: 'yes' });
  } catch (error) {
    message = error.message;
  }
  assert.match(message, /options\.maxStateBytes \(Baton:Backend:MaxStateBytes\) must be between 1024 and 268435456 \(it is 10\)/);
  assert.match(message, /options\.clockSkew \(Baton:Backend:ClockSkew\) must be a duration/);
  assert.match(message, /options\.maxSessions \(Baton:Backend:MaxSessions\) must be at least 1/);
  assert.match(message, /options\.maxRetiredSessions \(Baton:Backend:MaxRetiredSessions\) must be at least 1 \(it is 0\)/);
  assert.match(message, /options\.maxRemovedKeysPerSession \(Baton:Backend:MaxRemovedKeysPerSession\) must be between 0 and 100000 \(it is -1\)/);
  assert.match(message, /options\.sendDeltas \(Baton:Backend:SendDeltas\) must be true or false/);
  assert.match(message, /options\.purgeInterval \(Baton:Backend:PurgeInterval\) must be between 100 ms and 1 hour/);
  assert.match(message, /options\.maxBufferedResponseBytes \(Baton:Backend:MaxBufferedResponseBytes\) must be a whole number/);
});

test('durations are milliseconds or .NET-style time spans', () => {
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration('00:01:00'), 60000);
  assert.equal(parseDuration('1.00:00:00'), 86400000);
  assert.equal(parseDuration('00:00:00.250'), 250);
  // A bare string of digits is days to .NET's TimeSpan: refused rather than read as milliseconds.
  assert.ok(Number.isNaN(parseDuration('2000')));
  assert.throws(() => resolveOptions({ secret: SECRET, sessionLockTimeout: '2' }), /sessionLockTimeout.*"hh:mm:ss"/s);
  assert.ok(Number.isNaN(parseDuration('00:61:00')));
  assert.ok(Number.isNaN(parseDuration('1m')));
  const o = resolveOptions({ secret: SECRET, clockSkew: '00:00:30', maxSessions: '10' });
  assert.equal(o.clockSkew, 30000);
  assert.equal(o.maxSessions, 10);
});

test('the state held in memory is bounded by the JavaScript heap it lives on', () => {
  assert.ok(DEFAULTS.maxTotalStateBytes <= HEAP_LIMIT / 4);
  assert.throws(() => resolveOptions({ secret: SECRET, maxTotalStateBytes: Math.ceil(HEAP_LIMIT / 2) + 1 }), /maxTotalStateBytes.*heap limit.*max-old-space-size/s);
  assert.equal(resolveOptions({ secret: SECRET, maxTotalStateBytes: Math.floor(HEAP_LIMIT / 2) }).maxTotalStateBytes, Math.floor(HEAP_LIMIT / 2));
});
