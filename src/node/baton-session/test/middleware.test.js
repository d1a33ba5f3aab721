'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startApp, request, grant, split, action, postRestore, gate, newId } = require('./helpers');

function counterRoutes(app, extra = () => {}) {
  app.post('/counter', (req, res) => {
    req.session.counter = (req.session.counter ?? 0) + 1;
    res.json({ count: req.session.counter });
  });
  app.get('/counter', (req, res) => res.json({ count: req.session.counter ?? 0 }));
  extra(app);
}

test('a change leads the response with the state and a signed checkpoint', async (t) => {
  const app = await startApp(counterRoutes);
  t.after(() => app.close());
  const sid = newId();
  const first = await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  assert.equal(first.status, 200);
  assert.equal(first.headers['baton-incarnation'], app.middleware.incarnation);
  const { checkpoint, lead, state, body } = split(first);
  assert.deepEqual({ ...checkpoint, sha256: undefined }, { sid, ver: 1n, epoch: 0n, len: lead.length, sha256: undefined, inc: app.middleware.incarnation });
  assert.deepEqual(state, { counter: 1 });
  assert.deepEqual(JSON.parse(body), { count: 1 });
  assert.equal(Number(first.headers['content-length']), first.body.length);

  // A read sends nothing; the next change is version 2.
  const read = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  assert.equal(read.headers['baton-checkpoint'], undefined);
  assert.deepEqual(JSON.parse(read.body), { count: 1 });
  const second = split(await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n }) } }));
  assert.equal(second.checkpoint.ver, 2n);
});

test('bad grants are refused before the app runs, with a plain-text reason', async (t) => {
  let ran = 0;
  const app = await startApp((a) => a.use((req, res) => {
    ran++;
    res.send('ran');
  }));
  t.after(() => app.close());
  const sid = newId();
  const cases = [
    [{ 'Baton-Session': 'v=1; nonsense' }, 400, /malformed/],
    [{ 'Baton-Session': grant({ sid }).replace('v=1', 'v=9') }, 400, /unsupported version/],
    [{ 'Baton-Session': grant({ sid }).replace(/mac=.*/, 'mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA') }, 401, /bad signature/],
    [{ 'Baton-Session': grant({ sid, ts: Date.now() - 120000 }) }, 401, /clock skew/],
  ];
  for (const [headers, status, reason] of cases) {
    const response = await request(app.url, '/', { headers });
    assert.equal(response.status, status);
    assert.match(response.body.toString(), reason);
    assert.equal(response.headers['cache-control'], 'no-store');
    assert.match(response.headers['content-type'], /^text\/plain/);
  }
  // Two grants in one request are not one grant.
  const twice = await request(app.url, '/', { headers: [['Baton-Session', grant({ sid })], ['Baton-Session', grant({ sid })]].flat() });
  assert.equal(twice.status, 400);
  assert.equal(ran, 0);
});

test('a copy older than the gateway\'s, or of another epoch, is refused 409 with Baton-Stale', async (t) => {
  const app = await startApp(counterRoutes);
  t.after(() => app.close());
  const sid = newId();
  const unknown = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 3n }) } });
  assert.equal(unknown.status, 409);
  assert.equal(unknown.headers['baton-stale'], 'have=0');

  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid, epoch: 4n }) } });
  const moved = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n, epoch: 5n }) } });
  assert.equal(moved.status, 409);
  assert.equal(moved.headers['baton-stale'], 'have=1');
  const same = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n, epoch: 4n }) } });
  assert.equal(same.status, 200);
});

test('restore installs a state the next request serves, after every check of the table', async (t) => {
  const app = await startApp(counterRoutes);
  t.after(() => app.close());
  const target = app.middleware.incarnation;
  const sid = newId();
  const state = Buffer.from('{"counter":41}');

  assert.equal((await request(app.url, '/_baton/restore')).status, 405);
  assert.equal((await request(app.url, '/_baton/restore', { method: 'POST' })).status, 401);
  assert.equal((await request(app.url, '/_baton/restore', { method: 'POST', headers: { 'Baton-Restore': 'v=1' } })).status, 400);
  const forged = await postRestore(app.url, { sid, state, target }, { headers: { 'Baton-Restore': 'v=1; sid=x' } });
  assert.equal(forged.status, 400);
  assert.equal((await postRestore(app.url, { sid, state, target: newId() })).status, 403);
  assert.equal((await postRestore(app.url, { sid, state, target, ts: Date.now() - 3600000 })).status, 401);
  assert.equal((await postRestore(app.url, { sid, state, target, len: 2 * 1024 * 1024 }, { body: state })).status, 413);
  assert.equal((await postRestore(app.url, { sid, state, target, sha256: 'A'.repeat(43) })).status, 400);
  assert.equal((await postRestore(app.url, { sid, state: Buffer.from([1, 7, 99]), target })).status, 400, '.NET-format state');
  assert.equal((await postRestore(app.url, { sid, state: Buffer.from('{"a":1'), target })).status, 400, 'cut JSON');
  assert.equal((await postRestore(app.url, { sid, state: Buffer.from('[1,2]'), target })).status, 400, 'not an object');
  assert.equal((await postRestore(app.url, { sid, state: Buffer.from('{"__proto__":{"x":1}}'), target })).status, 400);
  assert.equal((await postRestore(app.url, { sid, state, target }, { body: Buffer.concat([state, Buffer.from('x')]) })).status, 400);

  const nonce = newId();
  const ok = await postRestore(app.url, { sid, ver: 5n, epoch: 2n, state, target, nonce });
  assert.equal(ok.status, 204);
  assert.equal(ok.headers['baton-incarnation'], target);
  const replayed = await postRestore(app.url, { sid, ver: 5n, epoch: 2n, state, target, nonce });
  assert.equal(replayed.status, 409);
  assert.match(replayed.body.toString(), /already used/);

  const served = await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 5n, epoch: 2n }) } });
  const { checkpoint, body } = split(served);
  assert.equal(checkpoint.ver, 6n);
  assert.equal(checkpoint.epoch, 2n);
  assert.deepEqual(JSON.parse(body), { count: 42 });

  // An older version of the same epoch is refused; a later epoch replaces whatever is held.
  assert.equal((await postRestore(app.url, { sid, ver: 5n, epoch: 2n, state, target })).status, 409);
  assert.equal((await postRestore(app.url, { sid, ver: 1n, epoch: 1n, state, target })).status, 409);
  assert.equal((await postRestore(app.url, { sid, ver: 1n, epoch: 3n, state, target })).status, 204);
});

test('the check restore (empty state, ver=0, epoch=0) is accepted and holds no place', async (t) => {
  const app = await startApp(counterRoutes);
  t.after(() => app.close());
  const response = await postRestore(app.url, { sid: newId(), ver: 0n, epoch: 0n, target: app.middleware.incarnation });
  assert.equal(response.status, 204);
  assert.equal(app.middleware.stats().sessions, 0);
});

test('restores are refused once the replay memory is full of nonces in their window', async (t) => {
  const app = await startApp(counterRoutes, { maxRememberedRestores: 2 });
  t.after(() => app.close());
  const target = app.middleware.incarnation;
  assert.equal((await postRestore(app.url, { sid: newId(), ver: 0n, target })).status, 204);
  assert.equal((await postRestore(app.url, { sid: newId(), ver: 0n, target })).status, 204);
  const full = await postRestore(app.url, { sid: newId(), ver: 0n, target });
  assert.equal(full.status, 503);
  assert.equal(full.headers['retry-after'], '1');
});

test('restores beyond maxSessions and maxTotalStateBytes are refused 503, the held copy kept', async (t) => {
  const app = await startApp(counterRoutes, { maxSessions: 1, maxStateBytes: 1024, maxTotalStateBytes: 1024 });
  t.after(() => app.close());
  const target = app.middleware.incarnation;
  const sid = newId();
  assert.equal((await postRestore(app.url, { sid, state: Buffer.from('{"counter":1}'), target })).status, 204);
  assert.equal((await postRestore(app.url, { sid: newId(), state: Buffer.from('{"counter":1}'), target })).status, 503);
  const big = Buffer.from(JSON.stringify({ pad: 'x'.repeat(1000) }));
  assert.equal((await postRestore(app.url, { sid, ver: 2n, state: Buffer.from(JSON.stringify({ pad: 'x'.repeat(1100) })), target })).status, 413);
  assert.ok(big.length <= 1024);
  assert.equal((await postRestore(app.url, { sid, ver: 2n, state: big, target })).status, 204);
});

test('requests of one session run one at a time; one that waits too long gets 503', async (t) => {
  const slow = gate();
  const entered = gate();
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/slow', async (req, res) => {
    req.session.slow = true;
    entered.open();
    await slow.promise;
    res.send('slow');
  })), { sessionLockTimeout: 200 });
  t.after(() => app.close());
  const sid = newId();
  const first = request(app.url, '/slow', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  await entered.promise;
  const busy = await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  assert.equal(busy.status, 503);
  assert.equal(busy.headers['retry-after'], '1');
  slow.open();
  assert.equal((await first).status, 200);

  // Twenty at once end at twenty.
  const other = newId();
  const all = await Promise.all(Array.from({ length: 20 }, () => request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: other }) } })));
  assert.ok(all.every((r) => r.status === 200));
  const read = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid: other, ver: 20n }) } });
  assert.deepEqual(JSON.parse(read.body), { count: 20 });
});

test('a change over the grant\'s max is rolled back and answered 413', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/big', (req, res) => {
    req.session.big = 'x'.repeat(5000);
    res.json({ stored: true });
  })));
  t.after(() => app.close());
  const sid = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid, max: 2000 }) } });
  const big = await request(app.url, '/big', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n, max: 2000 }) } });
  assert.equal(big.status, 413);
  assert.equal(big.headers['baton-checkpoint'], undefined);
  assert.match(big.body.toString(), /over its limit of 2000/);
  const read = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  assert.equal(read.headers['baton-checkpoint'], undefined);
  assert.deepEqual(JSON.parse(read.body), { count: 1 });
});

test('a change in a response without a body rides with the next response', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/quiet', (req, res) => {
    req.session.counter = 10;
    res.status(204).end();
  })));
  t.after(() => app.close());
  const sid = newId();
  const quiet = await request(app.url, '/quiet', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  assert.equal(quiet.status, 204);
  assert.equal(quiet.headers['baton-checkpoint'], undefined);
  const next = split(await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid }) } }));
  assert.equal(next.checkpoint.ver, 1n);
  assert.deepEqual(next.state, { counter: 10 });
  assert.deepEqual(JSON.parse(next.body), { count: 10 });
});

test('a change after the response started streaming rides with the next response', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.get('/stream', (req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.write('a'.repeat(3000));
    req.session.late = 'yes';
    res.end('b');
  })), { maxBufferedResponseBytes: 1024 });
  t.after(() => app.close());
  const sid = newId();
  const streamed = await request(app.url, '/stream', { headers: { 'Baton-Session': grant({ sid }) } });
  assert.equal(streamed.headers['baton-checkpoint'], undefined);
  assert.equal(streamed.body.length, 3001);
  const next = split(await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid }) } }));
  assert.equal(next.checkpoint.ver, 1n);
  assert.deepEqual(next.state, { late: 'yes' });
});

test('a late change of a request served before the session was restored in a later epoch is dropped', async (t) => {
  const entered = gate();
  const release = gate();
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/slow', async (req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.flushHeaders();
    entered.open();
    await release.promise;
    req.session.counter = (req.session.counter ?? 0) + 1;
    res.end('late');
  })));
  t.after(() => app.close());
  const sid = newId();
  assert.equal(split(await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } })).checkpoint.ver, 1n);

  // Served in epoch 0; while its response streams, the gateway moves the session here in epoch 1.
  const slow = request(app.url, '/slow', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  await entered.promise;
  const restored = await postRestore(app.url, { sid, ver: 3n, epoch: 1n, state: Buffer.from('{"counter":10}'), target: app.middleware.incarnation });
  assert.equal(restored.status, 204);
  release.open();
  assert.equal((await slow).status, 200);

  // The restored state stands: the old epoch's change is neither merged into it nor sent as its next version.
  const read = split(await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 3n, epoch: 1n }) } }));
  assert.equal(read.checkpoint, null);
  assert.deepEqual(JSON.parse(read.body), { count: 10 });
});

test('ending a session once its response started is refused, and leaves the session as it was', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/late-logout', (req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.flushHeaders();
    req.session.destroy((err) => res.end(err ? 'refused' : 'ended'));
  })));
  t.after(() => app.close());
  const sid = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  const late = await request(app.url, '/late-logout', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  assert.equal(late.body.toString(), 'refused');
  assert.equal(action(late), null);
  const read = split(await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n }) } }));
  assert.equal(read.checkpoint, null, 'nothing changed, so nothing rides with the next response');
  assert.deepEqual(JSON.parse(read.body), { count: 1 });
});

test('a request that waited for its session while another response rotated it is served nothing of it', async (t) => {
  const entered = gate();
  const release = gate();
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/login-held', async (req, res) => {
    entered.open();
    await release.promise;
    req.session.user = 'ann';
    req.batonSession.rotate();
    res.json({ user: 'ann' });
  })));
  t.after(() => app.close());
  const sid = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });

  const login = request(app.url, '/login-held', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  await entered.promise;
  // The old id's request reaches the server while the login holds the session: it waits for the session
  // (the server's own request handler, which runs first, has queued it by the time this listener runs).
  const queued = new Promise((resolve) => app.server.once('request', resolve));
  const waiting = request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  await queued;
  release.open();

  assert.equal(action(await login).action, 'rotate');
  // Refused as retired, not as stale: a gateway answers a stale copy with a restore of the dead id.
  const old = await waiting;
  assert.equal(old.status, 410);
  assert.equal(old.headers['baton-retired'], `sid=${sid}`);
  assert.equal(old.headers['baton-stale'], undefined);
  assert.ok(!old.body.toString().includes('ann'));
  assert.equal(app.middleware.stats().sessions, 0, 'the rotated copy is dropped once nobody holds it');
});

test('an id rotated away or ended stays dead for its ttl: every grant and restore of it is refused 410, within maxRetiredSessions', async (t) => {
  let clock = Date.now();
  const app = await startApp((a) => counterRoutes(a, (b) => {
    b.post('/login', (req, res) => {
      req.session.user = 'ann';
      res.json({ rotated: req.batonSession.rotate() });
    });
    b.post('/logout', (req, res) => res.json({ ended: req.batonSession.end() }));
    b.get('/whoami', (req, res) => res.json({ user: req.session.user ?? null }));
  }), { maxRetiredSessions: 2, now: () => clock });
  t.after(() => app.close());
  const target = app.middleware.incarnation;
  const send = (path, sid, ver, { method = 'GET', epoch = 0n, ttl = 60000 } = {}) => request(app.url, path, { method, headers: { 'Baton-Session': grant({ sid, ver, epoch, ttl, ts: clock }) } });

  const planted = newId();
  await send('/counter', planted, 0n, { method: 'POST' });
  const login = await send('/login', planted, 1n, { method: 'POST', ttl: 30000 });
  assert.deepEqual(action(login), { sid: planted, action: 'rotate' });
  const signedIn = split(login).lead;
  assert.equal(app.middleware.stats().sessions, 0);

  // Whatever a gateway believes of the old id (the login stored, or not; a new session), it is served nothing.
  for (const ver of [2n, 1n, 0n]) {
    const old = await send('/whoami', planted, ver);
    assert.equal(old.status, 410, `ver=${ver}`);
    assert.equal(old.headers['baton-retired'], `sid=${planted}`);
    assert.equal(old.headers['baton-stale'], undefined);
    assert.equal(old.headers['baton-checkpoint'], undefined);
    assert.equal(old.headers['cache-control'], 'no-store');
    assert.match(old.headers['content-type'], /^text\/plain/);
    assert.ok(!old.body.toString().includes('ann'));
  }
  const restored = await postRestore(app.url, { sid: planted, ver: 2n, epoch: 1n, state: signedIn, target, ts: clock });
  assert.equal(restored.status, 410);
  assert.match(restored.body.toString(), /renewed or ended/);
  assert.equal(app.middleware.stats().sessions, 0, 'the refused restore installed nothing');

  // The same state under another id is taken and served.
  const renewed = newId();
  assert.equal((await postRestore(app.url, { sid: renewed, ver: 2n, state: signedIn, target, ts: clock })).status, 204);
  assert.deepEqual(JSON.parse((await send('/whoami', renewed, 2n)).body), { user: 'ann' });

  // A logout retires its id too.
  const leaving = newId();
  await send('/counter', leaving, 0n, { method: 'POST' });
  assert.deepEqual(action(await send('/logout', leaving, 1n, { method: 'POST' })), { sid: leaving, action: 'end' });
  assert.equal((await send('/counter', leaving, 1n)).status, 410);
  assert.equal((await postRestore(app.url, { sid: leaving, ver: 1n, epoch: 1n, state: Buffer.from('{"counter":1}'), target, ts: clock })).status, 410);
  assert.equal(app.middleware.stats().retiredSessions, 2);

  // Once the login's ttl is over the old id is merely unknown here (409 stale), while the logout's (60 s) is still dead.
  clock += 30000;
  const unknown = await send('/whoami', planted, 2n);
  assert.equal(unknown.status, 409);
  assert.equal(unknown.headers['baton-stale'], 'have=0');
  assert.equal((await send('/counter', leaving, 1n)).status, 410);

  // Past maxRetiredSessions the oldest retirement is forgotten first.
  for (const sid of [newId(), newId()]) {
    await send('/counter', sid, 0n, { method: 'POST' });
    await send('/login', sid, 1n, { method: 'POST' });
  }
  assert.equal(app.middleware.stats().retiredSessions, 2);
  assert.equal((await send('/counter', leaving, 1n)).status, 409, 'the oldest retired id was forgotten for the newer ones');
});

test('a large body streams led by the state when the change came first', async (t) => {
  const app = await startApp((a) => a.get('/big', (req, res) => {
    req.session.n = 1;
    res.setHeader('Content-Length', '5000');
    res.write('a'.repeat(2500));
    res.end('b'.repeat(2500));
  }), { maxBufferedResponseBytes: 1024 });
  t.after(() => app.close());
  const response = await request(app.url, '/big', { headers: { 'Baton-Session': grant({ sid: newId() }) } });
  const { checkpoint, lead, state, body } = split(response);
  assert.equal(checkpoint.ver, 1n);
  assert.deepEqual(state, { n: 1 });
  assert.equal(body.length, 5000);
  assert.equal(Number(response.headers['content-length']), 5000 + lead.length);
});

test('a server error commits none of the request\'s changes', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/throws', (req) => {
    req.session.counter = 99;
    throw new Error('boom');
  })));
  t.after(() => app.close());
  const sid = newId();
  const failed = await request(app.url, '/throws', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  assert.equal(failed.status, 500);
  assert.equal(failed.headers['baton-checkpoint'], undefined);
  const read = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid }) } });
  assert.deepEqual(JSON.parse(read.body), { count: 0 });
});

test('rotate and end become signed session actions; the copy is dropped after the response', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => {
    b.post('/login', (req, res) => {
      req.session.user = 'ada';
      res.json({ rotated: req.batonSession.rotate() });
    });
    b.post('/regenerate', (req, res, next) => req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.user = 'bob';
      return res.json({ ok: true });
    }));
    b.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
  }));
  t.after(() => app.close());
  const sid = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid }) } });
  const login = await request(app.url, '/login', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ver: 1n }) } });
  assert.deepEqual(action(login), { sid, action: 'rotate' });
  assert.deepEqual(split(login).state, { counter: 1, user: 'ada' });
  // The old id's copy is gone, and the id is dead here: its next request is refused as retired.
  const after = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 2n }) } });
  assert.equal(after.status, 410);

  const other = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: other }) } });
  const regenerated = await request(app.url, '/regenerate', { method: 'POST', headers: { 'Baton-Session': grant({ sid: other, ver: 1n }) } });
  assert.deepEqual(action(regenerated), { sid: other, action: 'rotate' });
  assert.deepEqual(split(regenerated).state, { user: 'bob' });

  const third = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: third }) } });
  const logout = await request(app.url, '/logout', { method: 'POST', headers: { 'Baton-Session': grant({ sid: third, ver: 1n }) } });
  assert.deepEqual(action(logout), { sid: third, action: 'end' });
  assert.deepEqual(split(logout).state, {});
  assert.equal(split(logout).lead.length, 0);
  assert.equal(app.middleware.stats().sessions, 0, 'rotated and ended sessions leave no copy behind');
});

test('requests without a grant get a local session that is never checkpointed', async (t) => {
  const app = await startApp((a) => counterRoutes(a, (b) => b.post('/login', (req, res) => res.json({ rotated: req.batonSession.rotate() }))));
  t.after(() => app.close());
  const first = await request(app.url, '/counter', { method: 'POST' });
  assert.equal(first.headers['baton-checkpoint'], undefined);
  const cookie = first.headers['set-cookie'][0].split(';')[0];
  assert.match(cookie, /^baton\.local=[A-Za-z0-9_-]{22}$/);
  const second = await request(app.url, '/counter', { method: 'POST', headers: { Cookie: cookie } });
  assert.deepEqual(JSON.parse(second.body), { count: 2 });
  assert.equal(second.headers['set-cookie'], undefined);
  const login = await request(app.url, '/login', { method: 'POST', headers: { Cookie: cookie } });
  assert.deepEqual(JSON.parse(login.body), { rotated: false });
  assert.equal(login.headers['baton-session-action'], undefined);
});

test('idle sessions expire after the grant\'s ttl', async (t) => {
  let now = 1_000_000;
  const app = await startApp(counterRoutes, { now: () => now });
  t.after(() => app.close());
  const sid = newId();
  await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid, ttl: 1000, ts: now }) } });
  now += 999;
  assert.equal((await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n, ttl: 1000, ts: now }) } })).status, 200);
  now += 1000;
  const expired = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid, ver: 1n, ttl: 1000, ts: now }) } });
  assert.equal(expired.status, 409);
});

test('past maxSessions a new session is served while it only reads, and its first change is refused 503', async (t) => {
  const app = await startApp(counterRoutes, { maxSessions: 1 });
  t.after(() => app.close());
  const held = newId();
  assert.equal((await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: held }) } })).status, 200);
  const visitor = newId();
  const read = await request(app.url, '/counter', { headers: { 'Baton-Session': grant({ sid: visitor }) } });
  assert.equal(read.status, 200);
  const change = await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: visitor }) } });
  assert.equal(change.status, 503);
  assert.equal(change.headers['retry-after'], '1');
  assert.equal(change.headers['baton-checkpoint'], undefined);
  assert.match(change.body.toString(), /maxSessions/);
  // The session held keeps working.
  const again = split(await request(app.url, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: held, ver: 1n }) } }));
  assert.equal(again.checkpoint.ver, 2n);
});

test('a change that would pass maxTotalStateBytes is rolled back with 503', async (t) => {
  const app = await startApp((a) => a.post('/pad', (req, res) => {
    req.session.pad = 'x'.repeat(Number(req.query.n));
    res.send('ok');
  }), { maxStateBytes: 1024, maxTotalStateBytes: 1500 });
  t.after(() => app.close());
  assert.equal((await request(app.url, '/pad?n=900', { method: 'POST', headers: { 'Baton-Session': grant({ sid: newId() }) } })).status, 200);
  const over = await request(app.url, '/pad?n=900', { method: 'POST', headers: { 'Baton-Session': grant({ sid: newId() }) } });
  assert.equal(over.status, 503);
  assert.match(over.body.toString(), /maxTotalStateBytes/);
  assert.equal(app.middleware.stats().sessions, 1);
});

test('a malformed request never throws out of the middleware', async (t) => {
  const app = await startApp(counterRoutes);
  t.after(() => app.close());
  const odd = ['v=1; sid=\u00e9', 'v=1;;;', '=', ';', 'v', 'v=1; sid=' + 'A'.repeat(5000)];
  for (const value of odd) {
    const response = await request(app.url, '/counter', { headers: { 'Baton-Session': Buffer.from(value, 'latin1').toString('latin1') } });
    assert.equal(response.status, 400, value);
  }
  const restore = await request(app.url, '/_baton/restore', { method: 'POST', headers: { 'Baton-Restore': 'v=1; sid=;' } });
  assert.equal(restore.status, 400);
  const local = await request(app.url, '/counter', { headers: { Cookie: 'baton.local=%%%; other=1; =x' } });
  assert.equal(local.status, 200);
});
