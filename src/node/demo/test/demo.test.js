'use strict';

// The Node demo's contract, through baton-session as a gateway would call it.

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const crypto = require('node:crypto');
const { createApp } = require('../app');
const { loadConfig } = require('../config');
const { request, grant, split, action, newId, SECRET } = require('../../baton-session/test/helpers');

async function startDemo(t, argv = []) {
  const config = loadConfig(['--urls', 'http://127.0.0.1:0', '--Demo:InstanceId=n1', `--Baton:Secret=${SECRET}`, '--Logging:LogLevel:Default=None', ...argv], {});
  const server = http.createServer(createApp({ ...config, baton: { ...config.baton, logger: false } }));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${server.address().port}`;
}

const json = (response) => JSON.parse(split(response).body);

test('the settings are read like the .NET demo\'s', () => {
  const config = loadConfig(['--urls', 'http://127.0.0.1:5101', '--Demo:InstanceId=b1', '--Baton:Secret=' + SECRET, '--Baton:Backend:ClockSkew=00:00:30', '--baton:backend:maxsessions=5'], {});
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 5101, href: 'http://127.0.0.1:5101' });
  assert.equal(config.instance, 'b1');
  assert.equal(config.baton.clockSkew, '00:00:30');
  assert.equal(config.baton.maxSessions, '5');
  assert.equal(loadConfig([], { Baton__Secret: 'from-env', Demo__InstanceId: 'e1' }).baton.secret, 'from-env');
  assert.throws(() => loadConfig(['--urls', 'https://127.0.0.1:1']), /http:\/\//);
  assert.throws(() => loadConfig(['--Demo:SessionStore=Redis']), /must be Baton/);
});

test('counter, cart and health answer as the .NET demo does', async (t) => {
  const base = await startDemo(t);
  const sid = newId();
  const headers = (ver) => ({ 'Baton-Session': grant({ sid, ver }), 'Content-Type': 'application/json' });
  assert.deepEqual(JSON.parse((await request(base, '/health')).body), { status: 'healthy', instance: 'n1' });
  assert.deepEqual(json(await request(base, '/counter', { method: 'POST', headers: headers(0n) })), { count: 1, instance: 'n1' });
  assert.deepEqual(json(await request(base, '/counter', { headers: headers(1n) })), { count: 1, instance: 'n1' });
  const added = await request(base, '/cart/items', { method: 'POST', headers: headers(1n), body: '{"sku":"apple","qty":2}' });
  assert.deepEqual(json(added), { items: [{ sku: 'apple', qty: 2 }], instance: 'n1' });
  await request(base, '/cart/items', { method: 'POST', headers: headers(2n), body: '{"sku":"apple","qty":3}' });
  assert.deepEqual(json(await request(base, '/cart', { headers: headers(3n) })), { items: [{ sku: 'apple', qty: 5 }], instance: 'n1' });
  for (const [body, error] of [['nope', /must be JSON/], ['{"sku":"","qty":1}', /sku must be/], ['{"sku":"a","qty":0}', /qty must be/], ['{"sku":"a","qty":"1"}', /must be JSON/]]) {
    const refused = await request(base, '/cart/items', { method: 'POST', headers: headers(3n), body });
    assert.equal(refused.status, 400);
    assert.match(json(refused).error, error);
    assert.equal(json(refused).instance, 'n1');
  }
});

test('blobs, login and logout', async (t) => {
  const base = await startDemo(t);
  const sid = newId();
  const h = (ver) => ({ 'Baton-Session': grant({ sid, ver }) });
  const stored = json(await request(base, '/blob?bytes=1000', { method: 'POST', headers: h(0n) }));
  assert.equal(stored.bytes, 1000);
  assert.deepEqual(json(await request(base, '/blob', { headers: h(1n) })), stored);
  const upload = Buffer.from('hello');
  const uploaded = json(await request(base, '/blob', { method: 'POST', headers: h(1n), body: upload }));
  assert.deepEqual(uploaded, { sha256: crypto.createHash('sha256').update(upload).digest('hex'), bytes: 5, instance: 'n1' });
  assert.equal((await request(base, '/blob?bytes=-1', { method: 'POST', headers: h(2n) })).status, 400);

  const login = await request(base, '/login', { method: 'POST', headers: { ...h(2n), 'Content-Type': 'application/json' }, body: '{"user":"ada"}' });
  assert.deepEqual(json(login), { user: 'ada', instance: 'n1' });
  assert.equal(action(login).action, 'rotate');
  assert.equal(split(login).state.user, 'ada');

  const other = newId();
  await request(base, '/counter', { method: 'POST', headers: { 'Baton-Session': grant({ sid: other }) } });
  const logout = await request(base, '/logout', { method: 'POST', headers: { 'Baton-Session': grant({ sid: other, ver: 1n }) } });
  assert.deepEqual(json(logout), { user: null, instance: 'n1' });
  assert.equal(action(logout).action, 'end');
});

test('the demo depends on the workspace\'s own baton-session version', () => {
  const library = require('../../baton-session/package.json');
  const demo = require('../package.json');
  assert.equal(demo.dependencies['baton-session'], library.version);
  assert.equal(require('baton-session').version, library.version);
});
