'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { State, serialise, decode, lateChanges, heldBytes } = require('../lib/state');
const { stateOf, decodeState, dataOf } = require('./helpers');

const stateFrom = (data) => State.EMPTY.with(serialise(data));

test('each property of the session but its cookie is one key holding its JSON text', () => {
  assert.equal(serialise({}).size, 0);
  assert.equal(serialise(undefined).size, 0);
  assert.equal(serialise({ cookie: { maxAge: 1 }, gone: undefined, fn() {} }).size, 0);
  assert.deepEqual([...serialise({ cookie: {}, counter: 2, cart: [{ sku: 'a', qty: 1 }] })], [['counter', '2'], ['cart', '[{"sku":"a","qty":1}]']]);
  assert.throws(() => serialise({ big: 1n }), /BigInt/);
  assert.throws(() => serialise({ ['lone\ud800']: 1 }), /not valid Unicode/);
});

test('an empty session is an empty state; otherwise format byte 1 and the keys in ordinal (UTF-16) order', () => {
  assert.equal(State.EMPTY.encode().length, 0);
  // What Baton.Protocol.KeyedState.Encode gives for { counter: "3" }: 1, length 7, "counter", length 1, "3".
  assert.deepEqual([...stateFrom({ counter: 3 }).encode()], [1, 7, ...Buffer.from('counter'), 1, 0x33]);
  // U+1F600 is a surrogate pair (D83D DE00), so it sorts before U+FF61 in UTF-16 order, after it by code point.
  const data = { '\uff61': 1, '\u{1F600}': 2, b: 'x'.repeat(200), a: null, B: true };
  const encoded = stateFrom(data).encode();
  assert.deepEqual(encoded, stateOf(data));
  assert.deepEqual([...decodeState(encoded).keys()], ['B', 'a', 'b', '\u{1F600}', '\uff61']);
  const quoted = encoded.indexOf(Buffer.from(JSON.stringify('x'.repeat(200))));
  assert.deepEqual([...encoded.subarray(quoted - 2, quoted)], [0xca, 0x01], 'a length of 202 is two LEB128 bytes');
});

test('the whole state\'s size and held bytes are kept up to date from the changed keys alone', () => {
  let seed = 7;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const keys = ['a', 'b', 'é', '\u{1F600}', 'long'.repeat(40), ''];
  let state = State.EMPTY;
  for (let step = 0; step < 500; step++) {
    const changes = new Map();
    for (let i = random(4); i >= 0; i--) {
      const key = keys[random(keys.length)];
      changes.set(key, random(3) === 0 ? null : JSON.stringify('v'.repeat(random(300)) + '\u00e9'.repeat(random(3))));
    }
    state = state.with(state.effective(changes));
    assert.equal(state.size, state.encode().length, `step ${step}`);
    assert.equal(state.held, State.of(state.values).held, `step ${step}`);
  }
});

test('a restored state in the keyed format is read as sent; one holding what a session cannot is refused', () => {
  const bytes = stateOf({ counter: 3, user: 'ada' });
  const state = decode(bytes);
  assert.deepEqual(state.toObject(), { counter: 3, user: 'ada' });
  assert.equal(state.size, bytes.length);
  assert.equal(decode(Buffer.alloc(0)), State.EMPTY);
  // Kept byte for byte as sent (a value's JSON with spaces), so deltas fold onto the gateway's copy exactly.
  const spaced = Buffer.from([1, 1, 0x61, 3, 0x20, 0x31, 0x20]);
  assert.equal(decode(spaced).encode().compare(spaced), 0);

  const entry = (key, value) => [key.length, ...Buffer.from(key), value.length, ...value];
  const refused = {
    'a reserved key': [1, ...entry('cookie', Buffer.from('{}'))],
    'an id key': [1, ...entry('id', Buffer.from('1'))],
    'a req key': [1, ...entry('req', Buffer.from('1'))],
    'a __proto__ key': [1, ...entry('__proto__', Buffer.from('{}'))],
    'a value that is not JSON': [1, ...entry('a', Buffer.from('{'))],
    'a .NET value (four bytes of an int)': [1, ...entry('counter', Buffer.from([0, 0, 0, 2]))],
    'a value that is not UTF-8': [1, ...entry('a', Buffer.from([0x22, 0xff, 0x22]))],
    'a key that is not UTF-8': [1, 1, 0xff, 1, 0x31],
    'a key twice': [1, ...entry('a', Buffer.from('1')), ...entry('a', Buffer.from('2'))],
    'a length past the end': [1, 1, 0x61, 5, 0x31],
    'a cut length': [1, 0x81],
    'an empty value': [1, ...entry('a', Buffer.alloc(0))],
    'a delta': [2, 1, ...entry('a', Buffer.from('1'))],
  };
  for (const [what, bad] of Object.entries(refused)) assert.equal(decode(Buffer.from(bad)), null, what);
});

test('a restored state of the previous version (the JSON text of an object) is still read', () => {
  const state = decode(Buffer.from('{"counter":41,"cart":[{"sku":"a","qty":1}]}'));
  assert.deepEqual(state.toObject(), { counter: 41, cart: [{ sku: 'a', qty: 1 }] });
  // Held from then on in the keyed format.
  assert.deepEqual(state.encode(), stateOf({ counter: 41, cart: [{ sku: 'a', qty: 1 }] }));
  assert.equal(state.size, state.encode().length);
  for (const bad of [' {}', '[]', 'null', '{"a":', '{"__proto__":{}}', '{"cookie":{}}', '{"id":1}', '{}x']) {
    assert.equal(decode(Buffer.from(bad)), null, bad);
  }
  for (const bad of [[0xef, 0xbb, 0xbf, 0x7b, 0x7d], [0x7b, 0xff, 0x7d], [0xff, 0x00]]) {
    assert.equal(decode(Buffer.from(bad)), null, String(bad));
  }
});

test('a change made after the response started is applied key by key onto what is committed by then', () => {
  // The request saw {a:1,b:1}, set b:2 and removed a; meanwhile another request committed c:3.
  const committed = stateFrom({ a: 1, b: 1, c: 3 });
  const changes = lateChanges(stateFrom({ a: 1, b: 1 }), serialise({ b: 2 }), committed, false);
  assert.deepEqual(committed.with(changes).toObject(), { b: 2, c: 3 });
  // A session the request cleared is what it left, whatever was committed meanwhile.
  const cleared = stateFrom({ a: 1, c: 3 });
  assert.deepEqual(cleared.with(lateChanges(stateFrom({ a: 1 }), serialise({ z: 1 }), cleared, true)).toObject(), { z: 1 });
  // Only what still changes the committed state counts.
  assert.equal(lateChanges(stateFrom({ a: 1 }), serialise({ a: 2 }), stateFrom({ a: 2 }), false).size, 0);
  assert.deepEqual(dataOf(decodeState(stateFrom({ a: 1 }).with(lateChanges(stateFrom({ a: 1 }), serialise({}), stateFrom({ a: 1 }), false)).encode())), {});
});

test('the state counted against maxTotalStateBytes is what the heap holds: two bytes a character once any is not ASCII', () => {
  assert.equal(heldBytes('{"a":"abc"}'), 11);
  assert.equal(heldBytes('{"a":"\u00e9"}'), 18, 'one non-ASCII character: the string may be held two bytes a character');
  assert.equal(heldBytes('{"a":"\u{1F600}"}'), 20);
  assert.equal(stateFrom({ a: 'abc' }).held, 1 + 5);
  assert.equal(stateFrom({ a: '\u00e9' }).held, 1 + 6);
});
