'use strict';

// The protocol messages against vectors made by the .NET protocol library (Baton.Protocol) with the same
// secret and fields: both sides must produce and accept exactly the same bytes.

const test = require('node:test');
const assert = require('node:assert/strict');
const { deriveKeys, computeMac, verifyMac } = require('../lib/keys');
const { parseGrant, formatGrant } = require('../lib/grant');
const { formatCheckpoint, parseCheckpoint } = require('../lib/checkpoint');
const { parseRestore, formatRestore } = require('../lib/restore');
const { formatAction, parseAction } = require('../lib/action');
const { isValidId, isValidDigest, sha256 } = require('../lib/ids');
const { Verdict } = require('../lib/params');

const SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
const keys = deriveKeys(SECRET);
const SID = 'AAECAwQFBgcICQoLDA0ODw';
const INC = 'EBESExQVFhcYGRobHB0eHw';
const NONCE = 'ICEiIyQlJicoKSorLC0uLw';
const STATE = Buffer.from('{"counter":3}', 'utf8');

const DOTNET = {
  grant: 'v=1; sid=AAECAwQFBgcICQoLDA0ODw; ver=7; epoch=2; ttl=1200000; max=1048576; ts=1764770000000; mac=miR2u2MVpq1NJJ2ZL6--3Hj7c4yCMuEMdj4ENpWWyTs',
  checkpoint: 'v=2; sid=AAECAwQFBgcICQoLDA0ODw; ver=8; epoch=2; len=13; sha256=m3kxz7w5xThRAAs176-0TTbfOlnAa77No4f9iUVWiWA; inc=EBESExQVFhcYGRobHB0eHw; mac=6vmaBNr52XSUv8bKR7CgkuZlzNwb87ajKeKTS90ZaH8',
  checkpointEmpty: 'v=2; sid=AAECAwQFBgcICQoLDA0ODw; ver=9; epoch=3; len=0; sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU; inc=EBESExQVFhcYGRobHB0eHw; mac=4RofhXDn9_2RlX6viR5HJz6KPl61BTncnCix8LMaiMM',
  restore: 'v=1; sid=AAECAwQFBgcICQoLDA0ODw; ver=8; epoch=3; len=13; sha256=m3kxz7w5xThRAAs176-0TTbfOlnAa77No4f9iUVWiWA; target=EBESExQVFhcYGRobHB0eHw; ts=1764770000123; nonce=ICEiIyQlJicoKSorLC0uLw; mac=TgtytXkek-UckJahLu2dJsHcZR2cjPlndnOZX0tMt9k',
  rotate: 'v=1; sid=AAECAwQFBgcICQoLDA0ODw; action=rotate; mac=FuysbNi9dusvBth2HlzRRq2_cQ07AGuPV074FC8jUaM',
  end: 'v=1; sid=AAECAwQFBgcICQoLDA0ODw; action=end; mac=KLYanOJ0-32UKvgHcRR9sdcay6WJKeFAWwlSHGpTWoA',
  bigGrant: 'v=1; sid=AAECAwQFBgcICQoLDA0ODw; ver=9223372036854775807; epoch=9223372036854775807; ttl=9223372036854775807; max=2147483647; ts=9223372036854775807; mac=cq_4XHY9qbi0awyq6KjdEZIjNdNnvLFRsfcrQaXBtQ0',
  // HMAC-SHA256 of the id's text with the cookie key (the gateway's cookie signature, before truncation).
  cookieMacHex: '99084d11ad2bf7776b8337ccd803403312b27473a85bbaf959a8c6233bc55aaf',
};

test('keys are HKDF-SHA256 of the secret per purpose, as the .NET library derives them', () => {
  const crypto = require('node:crypto');
  assert.equal(crypto.createHmac('sha256', keys.cookie).update(SID, 'ascii').digest('hex'), DOTNET.cookieMacHex);
  assert.notDeepEqual(keys.grant, keys.checkpoint);
  assert.equal(new Set(Object.values(keys).map((k) => k.toString('hex'))).size, 5);
});

test('a .NET grant parses, with its fields', () => {
  const { verdict, grant } = parseGrant(DOTNET.grant, keys);
  assert.equal(verdict, Verdict.VALID);
  assert.deepEqual(grant, { sid: SID, ver: 7n, epoch: 2n, ttl: 1200000, max: 1048576, ts: 1764770000000 });
  assert.equal(formatGrant({ sid: SID, ver: 7n, epoch: 2n, ttl: 1200000, max: 1048576, ts: 1764770000000 }, keys), DOTNET.grant);
});

test('versions and epochs keep all 63 bits', () => {
  const { verdict, grant } = parseGrant(DOTNET.bigGrant, keys);
  assert.equal(verdict, Verdict.VALID);
  assert.equal(grant.ver, 9223372036854775807n);
  assert.equal(grant.epoch, 9223372036854775807n);
  assert.equal(parseGrant(DOTNET.bigGrant.replace('ver=9223372036854775807', 'ver=9223372036854775808'), keys).verdict, Verdict.MALFORMED);
});

test('checkpoints are byte for byte what the .NET library sends', () => {
  const c = { sid: SID, ver: 8n, epoch: 2n, len: STATE.length, sha256: sha256(STATE), inc: INC };
  assert.equal(formatCheckpoint(c, keys), DOTNET.checkpoint);
  const empty = { sid: SID, ver: 9n, epoch: 3n, len: 0, sha256: sha256(Buffer.alloc(0)), inc: INC };
  assert.equal(formatCheckpoint(empty, keys), DOTNET.checkpointEmpty);
  assert.equal(parseCheckpoint(DOTNET.checkpoint, keys).verdict, Verdict.VALID);
});

test('a delta checkpoint is version 3: base and size in the header and in the canonical text the checkpoint key signs', () => {
  const c = { sid: SID, ver: 8n, epoch: 2n, base: 7n, len: 5, size: 120, sha256: sha256(STATE), inc: INC };
  const header = formatCheckpoint(c, keys);
  const canonical = `checkpoint\n3\n${SID}\n8\n2\n7\n5\n120\n${sha256(STATE)}\n${INC}`;
  assert.equal(header, `v=3; sid=${SID}; ver=8; epoch=2; base=7; len=5; size=120; sha256=${sha256(STATE)}; inc=${INC}; mac=${computeMac(keys.checkpoint, canonical)}`);
  assert.deepEqual(parseCheckpoint(header, keys), { verdict: Verdict.VALID, checkpoint: c });
  // The same fields signed as version 2, or with another purpose's key, do not verify.
  const mac = header.slice(header.indexOf('mac=') + 4);
  assert.notEqual(mac, computeMac(keys.checkpoint, `checkpoint\n2\n${SID}\n8\n2\n5\n${sha256(STATE)}\n${INC}`));
  assert.equal(parseCheckpoint(header, { ...keys, checkpoint: keys.grant }).verdict, Verdict.BAD_SIGNATURE);
  // A base that is not a stored version below ver is malformed.
  for (const base of [0n, 8n, 9n]) {
    assert.equal(parseCheckpoint(formatCheckpoint({ ...c, base }, keys), keys).verdict, Verdict.MALFORMED, `base=${base}`);
  }
  assert.equal(parseCheckpoint(header.replace('; size=120', ''), keys).verdict, Verdict.MALFORMED);
});

test('a .NET restore parses, and formats back the same', () => {
  const { verdict, restore } = parseRestore(DOTNET.restore, keys);
  assert.equal(verdict, Verdict.VALID);
  assert.deepEqual(restore, { sid: SID, ver: 8n, epoch: 3n, len: 13, sha256: sha256(STATE), target: INC, ts: 1764770000123, nonce: NONCE });
  assert.equal(formatRestore({ ...restore }, keys), DOTNET.restore);
});

test('session actions are what the .NET library sends, signed with the action key', () => {
  assert.equal(formatAction({ sid: SID, action: 'rotate' }, keys), DOTNET.rotate);
  assert.equal(formatAction({ sid: SID, action: 'end' }, keys), DOTNET.end);
  assert.equal(parseAction(DOTNET.end, keys).verdict, Verdict.VALID);
  // The same text under another purpose's key does not verify.
  assert.equal(parseAction(DOTNET.end, { ...keys, action: keys.grant }).verdict, Verdict.BAD_SIGNATURE);
});

test('grants that are not exactly the message are malformed, unsupported or badly signed', () => {
  const Z = 'AAAAAAAAAAAAAAAAAAAAAA';
  const M = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const cases = [
    [undefined, Verdict.MISSING],
    ['', Verdict.MISSING],
    [`v=2; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.UNSUPPORTED_VERSION],
    [`v=x; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=-1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=+1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=AAAAAAAAAAAAAAAAAAAAA!; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=AAAAAAAAAAAAAAAAAAAAAB; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}; x=1`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=0; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=2147483648; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1;\tsid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`V=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}=`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${'A'.repeat(1100)}`, Verdict.MALFORMED],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${M}`, Verdict.BAD_SIGNATURE],
    [`v=1; sid=${Z}; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=${'A'.repeat(42)}B`, Verdict.BAD_SIGNATURE],
  ];
  for (const [header, expected] of cases) {
    assert.equal(parseGrant(header, keys).verdict, expected, String(header));
  }
});

test('the separator may carry extra spaces but nothing else', () => {
  const spaced = DOTNET.grant.replace(/; /g, ' ;  ');
  assert.equal(parseGrant(spaced, keys).verdict, Verdict.VALID);
  assert.equal(parseGrant(DOTNET.grant.replace(/; /g, ';'), keys).verdict, Verdict.VALID);
});

test('numbers with leading zeros are read by value, as the .NET library reads them', () => {
  // The canonical text (and so the MAC) has the number's value, not its spelling.
  assert.equal(parseGrant(DOTNET.grant.replace('ver=7', 'ver=007'), keys).verdict, Verdict.VALID);
});

test('ids and digests must be canonical base64url', () => {
  assert.ok(isValidId(SID));
  assert.ok(!isValidId(SID.slice(0, 21) + 'x')); // unused low bits set
  assert.ok(!isValidId(SID + 'A'));
  assert.ok(!isValidId('AAECAwQFBgcICQoLDA0OD+'));
  assert.ok(!isValidId('AAECAwQFBgcICQoLDA0OD='));
  assert.ok(isValidDigest(sha256(STATE)));
  assert.ok(!isValidDigest(sha256(STATE).slice(0, 42)));
  assert.ok(!isValidId(undefined));
});

test('MACs compare in constant time and only in their canonical spelling', () => {
  const mac = computeMac(keys.grant, 'x');
  assert.ok(verifyMac(keys.grant, 'x', mac));
  assert.ok(!verifyMac(keys.grant, 'y', mac));
  assert.ok(!verifyMac(keys.grant, 'x', mac.slice(0, 42)));
  assert.ok(!verifyMac(keys.grant, 'x', null));
});
