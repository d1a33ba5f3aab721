'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const state = require('../lib/state');
const { applyChanges } = require('../lib/middleware');

test('an empty session is an empty state; otherwise the JSON of its data without its cookie', () => {
  assert.equal(state.serialise({}), '');
  assert.equal(state.serialise(undefined), '');
  assert.equal(state.serialise({ cookie: { maxAge: 1 } }), '');
  assert.equal(state.serialise({ cookie: {}, counter: 2, cart: [{ sku: 'a', qty: 1 }] }), '{"counter":2,"cart":[{"sku":"a","qty":1}]}');
  assert.equal(state.encode('').length, 0);
});

test('only this format is read back', () => {
  assert.equal(state.decode(Buffer.alloc(0)), '');
  assert.equal(state.decode(Buffer.from('{"a":1}')), '{"a":1}');
  for (const bad of [[1, 1, 97, 1, 98], [0xef, 0xbb, 0xbf, 0x7b, 0x7d], [0x7b, 0xff, 0x7d]]) {
    assert.equal(state.decode(Buffer.from(bad)), null, String(bad));
  }
  for (const bad of [' {}', '[]', 'null', '{"a":', '{"__proto__":{}}', '{"cookie":{}}', '{}x']) {
    assert.equal(state.decode(Buffer.from(bad)), null, bad);
  }
});

test('a change made after the response started is applied key by key onto what is committed by then', () => {
  // The request saw {a:1,b:1}, set b:2 and removed a; meanwhile another request committed c:3.
  assert.equal(applyChanges('{"a":1,"b":1}', '{"b":2}', '{"a":1,"b":1,"c":3}', false), '{"b":2,"c":3}');
  assert.equal(applyChanges('{"a":1}', '{"z":1}', '{"a":1,"c":3}', true), '{"z":1}');
  assert.equal(applyChanges('{"a":1}', '', '{"a":1}', false), '');
});

test('the state counted against maxTotalStateBytes is what the heap holds: two bytes a character once any is not ASCII', () => {
  const { heldBytes } = require('../lib/state');
  assert.equal(heldBytes('{"a":"abc"}'), 11);
  assert.equal(heldBytes('{"a":"\u00e9"}'), 18, 'one non-ASCII character: the string may be held two bytes a character');
  assert.equal(heldBytes('{"a":"\u{1F600}"}'), 20);
});
