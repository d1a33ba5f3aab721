'use strict';

// Deltas (docs/protocol.md, "Deltas — a checkpoint of what changed"): offered `Baton-Deltas: 1`, a change is
// checkpointed as the keys set and removed since the grant's version, whenever every such key is known here and the
// delta is at most half the whole state; the gateway folds it onto the state it holds for that version.

const test = require('node:test');
const assert = require('node:assert/strict');
const { startApp, request, grant, split, postRestore, newId, applyDelta, stateOf } = require('./helpers');
const MAX_REMOVED_KEYS = 64;

const PAD = 'p'.repeat(4000);

function routes(app) {
  // ?set=JSON object of keys to set, ?remove=comma-separated keys to remove.
  app.post('/change', (req, res) => {
    if (req.query.set) Object.assign(req.session, JSON.parse(req.query.set));
    for (const key of req.query.remove ? req.query.remove.split(',') : []) delete req.session[key];
    res.json({ ok: true });
  });
  app.post('/keys', (req, res) => {
    for (let i = 0; i < Number(req.query.n); i++) req.session[`k${i}`] = i;
    res.json({ ok: true });
  });
  app.post('/drop-keys', (req, res) => {
    for (let i = 0; i < Number(req.query.n); i++) delete req.session[`k${i}`];
    res.json({ ok: true });
  });
  app.post('/big', (req, res) => {
    req.session.big = 'b'.repeat(Number(req.query.n));
    res.json({ ok: true });
  });
  app.post('/quiet', (req, res) => {
    Object.assign(req.session, JSON.parse(req.query.set));
    res.status(204).end();
  });
  app.post('/regenerate', (req, res, next) => {
    const { pad } = req.session;
    req.session.regenerate((err) => {
      if (err) return next(err);
      Object.assign(req.session, { pad, fresh: true });
      return res.json({ ok: true });
    });
  });
  app.post('/login', (req, res) => {
    req.session.user = 'ann';
    res.json({ rotated: req.batonSession.rotate() });
  });
  app.get('/read', (req, res) => res.json(Object.fromEntries(Object.entries(req.session).filter(([key]) => key !== 'cookie'))));
}

/** A gateway's side of one session: grants at the version it holds, offering deltas unless told not to. */
function session(app, { sid = newId(), epoch = 0n } = {}) {
  const s = {
    sid, epoch, ver: 0n,
    async send(path, { method = 'POST', ver = s.ver, deltas = true } = {}) {
      const headers = { 'Baton-Session': grant({ sid, ver, epoch }) };
      if (deltas) headers['Baton-Deltas'] = '1';
      const response = await request(app.url, path, { method, headers });
      assert.ok(response.status < 300, `${path}: ${response.status} ${response.body}`);
      const result = split(response);
      if (result.checkpoint) s.ver = result.checkpoint.ver;
      return result;
    },
  };
  return s;
}

const change = (s, set, remove, options) => s.send(`/change?${new URLSearchParams({ ...(set ? { set: JSON.stringify(set) } : {}), ...(remove ? { remove } : {}) })}`, options);

test('offered deltas, a change is checkpointed as v3: the keys set and removed since the grant\'s ver, with the whole state\'s size', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const s = session(app);
  const first = await change(s, { pad: PAD, a: 1, b: 'two' });
  assert.equal(first.checkpoint.base, undefined, 'ver=0: a whole state');

  const set = await change(s, { a: 2, c: [3] });
  const header = set.checkpoint;
  assert.deepEqual({ ver: header.ver, epoch: header.epoch, base: header.base, size: header.size }, { ver: 2n, epoch: 0n, base: 1n, size: stateOf({ pad: PAD, a: 2, b: 'two', c: [3] }).length });
  assert.equal(header.len, set.lead.length);
  assert.deepEqual(set.delta, [['a', Buffer.from('2')], ['c', Buffer.from('[3]')]]);

  const removed = await change(s, { d: null }, 'b,c');
  assert.equal(removed.checkpoint.base, 2n);
  assert.deepEqual(removed.delta, [['b', null], ['c', null], ['d', Buffer.from('null')]]);

  // Setting what the session holds changes nothing, key by key: no checkpoint.
  const same = await change(s, { pad: PAD, a: 2 });
  assert.equal(same.checkpoint, null);

  // A session made anew (express-session's regenerate) gets a new id: its state goes whole, under the new id alone.
  const regenerated = await s.send('/regenerate');
  assert.equal(regenerated.checkpoint.base, undefined);
  assert.deepEqual(regenerated.state, { pad: PAD, fresh: true });
});

test('a v3 checkpoint is signed with the checkpoint key over its canonical text', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const s = session(app, { epoch: 4n });
  await change(s, { pad: PAD });
  const response = await request(app.url, '/change?set=' + encodeURIComponent('{"a":1}'), { method: 'POST', headers: { 'Baton-Session': grant({ sid: s.sid, ver: 1n, epoch: 4n }), 'Baton-Deltas': '1' } });
  const header = response.headers['baton-checkpoint'];
  const { computeMac } = require('../lib/keys');
  const { keys } = require('./helpers');
  const fields = Object.fromEntries(header.split('; ').map((pair) => pair.split('=')));
  assert.deepEqual(Object.keys(fields), ['v', 'sid', 'ver', 'epoch', 'base', 'len', 'size', 'sha256', 'inc', 'mac']);
  assert.equal(fields.v, '3');
  const canonical = ['checkpoint', '3', s.sid, '2', '4', '1', fields.len, fields.size, fields.sha256, app.middleware.incarnation].join('\n');
  assert.equal(fields.mac, computeMac(keys.checkpoint, canonical));
  assert.notEqual(fields.mac, computeMac(keys.grant, canonical));
});

test('every delta folded onto the state at its base is the whole state at its version (random changes)', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  let seed = 20251204;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const s = session(app);
  const stored = new Map(); // what a gateway holds: version → whole state
  const model = {};
  const sent = { whole: 0, delta: 0, unasked: 0 };
  await change(s, { pad: PAD });
  model.pad = PAD;
  stored.set(1n, stateOf(model));
  const keys = ['a', 'b', 'c', 'é', '\u{1F600}', '\uff61', 'big', 'pad'];
  for (let step = 0; step < 150; step++) {
    const set = {};
    const remove = [];
    for (let i = random(3); i >= 0; i--) {
      const key = keys[random(keys.length)];
      if (key in set || remove.includes(key)) continue;
      if (random(3) === 0) remove.push(key);
      else set[key] = key === 'big' || key === 'pad' ? 'x'.repeat(random(5000)) : random(5) === 0 ? model[key] ?? 0 : { n: random(1000) };
    }
    const before = JSON.stringify(model);
    Object.assign(model, set);
    for (const key of remove) delete model[key];
    const changed = JSON.stringify(Object.entries(model).sort()) !== JSON.stringify(Object.entries(JSON.parse(before)).sort());
    // Mostly the newest version, sometimes an older one the gateway still holds (the backend's copy is newer).
    const held = [...stored.keys()];
    const ver = random(4) === 0 ? held[random(held.length)] : s.ver;
    // Now and then without Baton-Deltas, which always gets a whole state.
    const deltas = step % 10 !== 9;
    const result = await change(s, Object.keys(set).length ? set : null, remove.join(',') || null, { ver, deltas });
    if (!changed && ver === s.ver) {
      assert.equal(result.checkpoint, null, `step ${step}: nothing changed`);
      continue;
    }
    const expected = stateOf(model);
    const { checkpoint } = result;
    if (checkpoint.base === undefined) {
      sent.whole++;
      if (!deltas) sent.unasked++;
      assert.deepEqual(result.lead, expected, `step ${step}: the whole state`);
    } else {
      sent.delta++;
      assert.equal(checkpoint.base, ver, `step ${step}: base is the grant's ver`);
      const folded = applyDelta(stored.get(checkpoint.base), result.lead);
      assert.deepEqual(folded, expected, `step ${step}: the folded delta`);
      assert.equal(checkpoint.size, folded.length, `step ${step}: size`);
      assert.ok(result.lead.length <= Math.floor(folded.length / 2), `step ${step}: a delta only when at most half the state`);
    }
    stored.set(checkpoint.ver, expected);
  }
  assert.ok(sent.delta > 30 && sent.unasked > 5, JSON.stringify(sent));
});

test('a whole state without Baton-Deltas, at ver=0, or when the delta would be more than half the state', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const s = session(app);
  assert.equal((await change(s, { pad: PAD })).checkpoint.base, undefined, 'ver=0');
  const unasked = await change(s, { a: 1 }, null, { deltas: false });
  assert.equal(unasked.checkpoint.base, undefined, 'no Baton-Deltas');
  assert.deepEqual(unasked.state, { pad: PAD, a: 1 });
  const odd = await request(app.url, '/change?set=' + encodeURIComponent('{"a":2}'), { method: 'POST', headers: { 'Baton-Session': grant({ sid: s.sid, ver: s.ver }), 'Baton-Deltas': '2' } });
  assert.match(odd.headers['baton-checkpoint'], /^v=2;/, 'Baton-Deltas other than 1');
  s.ver += 1n;

  // A state installed at ver=0 (only the empty check restore is, but the rule holds for any): a grant of ver=0 gets a whole state.
  const atZero = session(app);
  assert.equal((await postRestore(app.url, { sid: atZero.sid, ver: 0n, epoch: 0n, state: stateOf({ pad: PAD }), target: app.middleware.incarnation })).status, 204);
  const fromZero = await change(atZero, { a: 1 });
  assert.equal(fromZero.checkpoint.base, undefined, 'ver=0 after a restore at 0');
  assert.deepEqual(fromZero.state, { pad: PAD, a: 1 });

  // One small key changing in a session of one key: the delta is a byte longer than the state.
  const small = session(app);
  await change(small, { counter: 1 });
  const counted = await change(small, { counter: 2 });
  assert.equal(counted.checkpoint.base, undefined);
  assert.deepEqual(counted.state, { counter: 2 });

  // Two of three keys of the same size changing: smaller than the state but more than half of it, so whole; one of
  // the three is a third of it, a delta.
  const three = session(app);
  await change(three, { a: 'x'.repeat(50), b: 'x'.repeat(50), c: 'x'.repeat(50) });
  const two = await change(three, { a: 'y'.repeat(50), b: 'y'.repeat(50) });
  assert.equal(two.checkpoint.base, undefined, 'two keys of three');
  const one = await change(three, { c: 'z'.repeat(50) });
  assert.equal(one.checkpoint.base, 2n, 'one key of three');
});

test('a change made when the response had no body is part of the next response\'s delta', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const s = session(app);
  await change(s, { pad: PAD });
  await s.send('/quiet?set=' + encodeURIComponent('{"quiet":1}'));
  const next = await change(s, { a: 1 });
  assert.deepEqual({ ver: next.checkpoint.ver, base: next.checkpoint.base }, { ver: 3n, base: 1n });
  assert.deepEqual(next.delta, [['a', Buffer.from('1')], ['quiet', Buffer.from('1')]]);
});

test('a session restored at a version is tracked from it: a delta from that version, a whole state from an earlier one', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const target = app.middleware.incarnation;
  for (const [what, state] of [['the keyed format', stateOf({ pad: PAD, a: 1 })], ['the previous JSON format', Buffer.from(JSON.stringify({ pad: PAD, a: 1 }))]]) {
    const sid = newId();
    assert.equal((await postRestore(app.url, { sid, ver: 5n, epoch: 2n, state, target })).status, 204, what);
    const restored = session(app, { sid, epoch: 2n });
    restored.ver = 5n;
    const read = await restored.send('/read', { method: 'GET' });
    assert.deepEqual(JSON.parse(read.body), { pad: PAD, a: 1 }, what);

    // The gateway holds 3 (say another gateway's store): the copy at 5 is newer and is served, but what changed after 3 is not known here.
    const fromEarlier = await change(restored, { b: 1 }, null, { ver: 3n });
    assert.deepEqual({ ver: fromEarlier.checkpoint.ver, base: fromEarlier.checkpoint.base }, { ver: 6n, base: undefined }, what);
    assert.deepEqual(fromEarlier.state, { pad: PAD, a: 1, b: 1 }, what);
    const fromRestored = await change(restored, { b: 2 }, null, { ver: 5n });
    if (what === 'the keyed format') {
      assert.deepEqual({ ver: fromRestored.checkpoint.ver, base: fromRestored.checkpoint.base }, { ver: 7n, base: 5n }, what);
      assert.deepEqual(applyDelta(stateOf({ pad: PAD, a: 1 }), fromRestored.lead), stateOf({ pad: PAD, a: 1, b: 2 }), what);
    } else {
      // The gateway holds version 5 as JSON text, which no delta applies to: the change goes whole, and the next one
      // (from 7, which the gateway then holds keyed) as a delta.
      assert.deepEqual({ ver: fromRestored.checkpoint.ver, base: fromRestored.checkpoint.base }, { ver: 7n, base: undefined }, what);
      assert.deepEqual(fromRestored.state, { pad: PAD, a: 1, b: 2 }, what);
      const fromWhole = await change(restored, { b: 3 }, null, { ver: 7n });
      assert.equal(fromWhole.checkpoint.base, 7n, what);
    }
  }

  // A restore over a copy that tracked its changes starts over: nothing before the restored version is known.
  const tracked = session(app);
  await change(tracked, { pad: PAD });
  await change(tracked, { a: 1 });
  await change(tracked, { a: 2 });
  assert.equal((await postRestore(app.url, { sid: tracked.sid, ver: 3n, epoch: 0n, state: stateOf({ pad: PAD, a: 9, z: 1 }), target })).status, 204);
  const after = await change(tracked, { a: 3 }, null, { ver: 2n });
  assert.equal(after.checkpoint.base, undefined);
  assert.deepEqual(after.state, { pad: PAD, a: 3, z: 1 });
});

test(`removed keys are remembered up to maxRemovedKeysPerSession (${MAX_REMOVED_KEYS}); past it a delta from before the forgotten removal is a whole state`, async (t) => {
  const app = await startApp(routes, { maxRemovedKeysPerSession: MAX_REMOVED_KEYS });
  t.after(() => app.close());
  const big = 'b'.repeat(40000);
  for (const [dropped, whole] of [[MAX_REMOVED_KEYS, false], [MAX_REMOVED_KEYS + 1, true]]) {
    const s = session(app);
    await s.send(`/big?n=${big.length}`);
    await s.send(`/keys?n=${dropped}`);
    const keyed = s.ver;
    await s.send(`/drop-keys?n=${dropped}`);
    const fromBefore = await change(s, { x: 1 }, null, { ver: keyed });
    assert.equal(fromBefore.checkpoint.base === undefined, whole, `${dropped} removed`);
    if (whole) {
      assert.deepEqual(fromBefore.state, { big, x: 1 });
      // From the version of the removals on, every change is known again.
      const fromAfter = await change(s, { x: 2 });
      assert.deepEqual(fromAfter.delta, [['x', Buffer.from('2')]]);
    } else {
      assert.equal(fromBefore.delta.length, dropped + 1);
      assert.deepEqual(applyDelta(stateOf({ big, ...Object.fromEntries(Array.from({ length: dropped }, (_, i) => [`k${i}`, i])) }), fromBefore.lead), stateOf({ big, x: 1 }));
    }
  }
});

test('the state limit is the whole state\'s size, even when the delta is small', async (t) => {
  const app = await startApp(routes);
  t.after(() => app.close());
  const s = session(app);
  const headers = (ver) => ({ 'Baton-Session': grant({ sid: s.sid, ver, max: 5000 }), 'Baton-Deltas': '1' });
  await request(app.url, '/change?set=' + encodeURIComponent(JSON.stringify({ pad: 'p'.repeat(4980) })), { method: 'POST', headers: headers(0n) });
  const over = await request(app.url, '/change?set=' + encodeURIComponent('{"a":"0123456789abcdef"}'), { method: 'POST', headers: headers(1n) });
  assert.equal(over.status, 413);
  const within = split(await request(app.url, '/change?set=' + encodeURIComponent('{"a":1}'), { method: 'POST', headers: headers(1n) }));
  assert.equal(within.checkpoint.base, 1n);
  assert.ok(within.checkpoint.size <= 5000);
  assert.equal(within.checkpoint.size, stateOf({ pad: 'p'.repeat(4980), a: 1 }).length);
});

test('a response carrying a session action, or any with sendDeltas off, leads with the whole state', async (t) => {
  const app = await startApp(routes);
  const off = await startApp(routes, { sendDeltas: false });
  t.after(() => Promise.all([app.close(), off.close()]));
  for (const [server, path] of [[app, '/login'], [off, `/change?${new URLSearchParams({ set: JSON.stringify({ a: 2 }) })}`]]) {
    const s = session(server);
    await change(s, { pad: PAD, a: 1 });
    const answered = await s.send(path);
    assert.equal(answered.checkpoint.base, undefined, path);
    assert.ok(answered.state !== null, `${path}: the whole state`);
  }
});
