// End to end: the vsync CLI pushes a vault to the harness S3 server (s3s-fs,
// started by the `before` hook), and the blob `vsync runtime-token` prints
// opens it from Node.
//
// Each test uses its own bucket on the file's server (or its own server when
// it kills it) and its own developer machine (HOME, checkout, file keystore).

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import { after, afterEach, before, test } from 'node:test';

import * as vs from 'vsync-s3-client';

import { Machine, startS3Server } from './harness.mjs';

const BINARY = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256));
const SERVICE_ACCOUNT = Buffer.from('{"type":"service_account","private_key":"-----BEGIN-----"}');

let server;
const cleanups = [];
before(async () => {
  server = await startS3Server();
});
after(async () => {
  await server?.stop();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

function machine() {
  const m = new Machine();
  cleanups.push(() => m.remove());
  return m;
}

/** Sets process variables for one test; `afterEach` restores them. */
function setEnv(vars) {
  for (const [key, value] of Object.entries(vars)) {
    const previous = process.env[key];
    cleanups.push(() => {
      if (previous === undefined) delete process.env[key];
      else process.env[key] = previous;
    });
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
}

function writeVault(m, databaseUrl) {
  const files = {
    '.env.dev': `DATABASE_URL=${databaseUrl}\nAPI_KEY="k-123"\n`,
    'gcp/service-account.json': SERVICE_ACCOUNT,
    'tls/server.p12': BINARY,
  };
  for (const [name, data] of Object.entries(files)) {
    const path = join(m.vault(), name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, data);
  }
}

let buckets = 0;

/** Inits env dev on a fresh bucket and pushes once; returns {bucket, blob, passphrase}. */
function pushed(m, s3, databaseUrl) {
  buckets += 1;
  const bucket = `node-e2e-${buckets}`;
  s3.createBucket(bucket);
  m.initOnBucket(s3, bucket);
  writeVault(m, databaseUrl);
  m.run(['push', 'dev']);
  const blob = m.run(['runtime-token', '--env=dev']).trim();
  const passphrase = readFileSync(m.keyFile(), 'utf8').trim();
  return { bucket, blob, passphrase };
}

/** The generation the CLI wrote, read from the bucket directly. */
function bucketGeneration(s3, bucket) {
  return JSON.parse(readFileSync(join(s3.dataDir, bucket, 'acme_web', 'dev', 'latest.meta'), 'utf8')).gen;
}

test('values, assets, generation and a redacted handle', async () => {
  const m = machine();
  const { bucket, blob, passphrase } = pushed(m, server, 'postgres://app@db/first');
  setEnv({ FROM_PROCESS_ENV: 'env-value', LOG_LEVEL: undefined, NOWHERE: undefined });

  const vault = await vs.openWith({ config: blob, passphrase, defaults: { LOG_LEVEL: 'info' } });
  assert.ok(vault instanceof vs.Vault);
  assert.equal(vault.getEnv('DATABASE_URL'), 'postgres://app@db/first');
  assert.equal(vault.getEnv('API_KEY'), 'k-123');
  assert.equal(vault.getEnv('LOG_LEVEL'), 'info');
  assert.equal(vault.getEnv('FROM_PROCESS_ENV'), 'env-value');
  assert.equal(vault.getEnv('NOWHERE'), null);
  const keys = ['API_KEY', 'FROM_PROCESS_ENV', 'LOG_LEVEL', 'NOWHERE'];
  assert.deepEqual(Object.fromEntries(keys.map((k) => [k, vault.envSource(k)])), {
    API_KEY: 'vault',
    FROM_PROCESS_ENV: 'env',
    LOG_LEVEL: 'default',
    NOWHERE: 'missing',
  });
  assert.ok(vault.hasEnv('LOG_LEVEL'));
  assert.ok(!vault.hasEnv('NOWHERE'));
  // The environment is read at lookup time, not at open.
  setEnv({ NOWHERE: '' });
  assert.equal(vault.envSource('NOWHERE'), 'env');
  assert.equal(vault.getEnv('NOWHERE'), '');

  const sa = vault.getAsContent('gcp/service-account.json');
  assert.ok(Buffer.isBuffer(sa));
  assert.deepEqual(sa, SERVICE_ACCOUNT);
  assert.deepEqual(vault.getAsContent('tls/server.p12'), BINARY);
  assert.deepEqual(vault.getAsContent('API_KEY'), Buffer.from('k-123')); // a vault value, as bytes
  for (const name of ['tls/missing.pem', 'FROM_PROCESS_ENV' /* never the environment */]) {
    assert.throws(
      () => vault.getAsContent(name),
      (err) => !(err instanceof vs.VSyncError) && err instanceof Error && err.message.includes(name),
    );
  }

  const generation = bucketGeneration(server, bucket);
  assert.ok(generation >= 1);
  assert.equal(vault.generation(), generation);
  assert.equal(await vault.remoteGeneration(), generation);
  assert.match(vault.version(), /^\d{8}-\d{6}$/);
  assert.equal(await vault.hasNewVersion(), false);

  const text = `<vsync:redacted gen=${generation} env=dev>`;
  assert.equal(String(vault), text);
  assert.equal(`${vault}`, text);
  assert.equal(inspect(vault), text);
  assert.equal(JSON.stringify({ vault }), JSON.stringify({ vault: text }));
  assert.equal(inspect({ nested: vault }), `{ nested: ${text} }`);
  for (const secret of ['postgres://', 'k-123', passphrase]) {
    assert.ok(!text.includes(secret));
  }

  vault.close();
  assert.ok(vault.closed);
  assert.equal(String(vault), `${text} (closed)`);
  assert.throws(() => vault.getEnv('DATABASE_URL'), (err) => err.constructor === vs.VSyncError && /closed/.test(err.message));
  assert.throws(() => vault.getAsContent('tls/server.p12'), vs.VSyncError);
  await assert.rejects(vault.hasNewVersion(), vs.VSyncError);
  vault.close(); // idempotent
});

test('hasNewVersion after a second push', async () => {
  const m = machine();
  const { bucket, blob, passphrase } = pushed(m, server, 'postgres://app@db/first');
  const vault = await vs.openWith({ config: blob, passphrase });
  const first = vault.generation();
  assert.equal(await vault.hasNewVersion(), false);

  await new Promise((done) => setTimeout(done, 1100)); // version timestamps have one-second resolution
  writeVault(m, 'postgres://app@db/second');
  m.run(['push', 'dev']);

  assert.equal(await vault.hasNewVersion(), true);
  assert.equal(await vault.remoteGeneration(), first + 1);
  assert.equal(bucketGeneration(server, bucket), first + 1);
  assert.equal(vault.generation(), first);
  assert.equal(vault.getEnv('DATABASE_URL'), 'postgres://app@db/first', 'the handle keeps its values');
  vault.close();

  const fresh = await vs.openWith({ config: blob, passphrase });
  try {
    assert.equal(fresh.getEnv('DATABASE_URL'), 'postgres://app@db/second');
    assert.equal(fresh.generation(), first + 1);
    assert.equal(await fresh.hasNewVersion(), false);
  } finally {
    fresh.close();
  }
});

test('open() reads VSYNC_CONFIG_FILE / VSYNC_PASSPHRASE_FILE', async () => {
  const m = machine();
  const { blob, passphrase } = pushed(m, server, 'postgres://from-files');
  const dir = mkdtempSync(join(tmpdir(), 'vsync-node-files-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const configFile = join(dir, 'config');
  writeFileSync(configFile, `${blob}\n`, { mode: 0o600 });
  const passFile = join(dir, 'passphrase');
  writeFileSync(passFile, `${passphrase} \r\n`, { mode: 0o600 }); // trailing whitespace is stripped
  setEnv({
    VSYNC_CONFIG: 'not-a-blob', // the _FILE form wins
    VSYNC_CONFIG_FILE: configFile,
    VSYNC_PASSPHRASE: undefined,
    VSYNC_PASSPHRASE_FILE: passFile,
  });

  const vault = await vs.open({ defaults: { PORT: '8080' } });
  assert.equal(vault.getEnv('DATABASE_URL'), 'postgres://from-files');
  assert.equal(vault.getEnv('PORT'), '8080');
  vault.close();

  chmodSync(passFile, 0o646); // world-writable: anyone could swap it
  await assert.rejects(vs.open(), (err) => {
    assert.equal(err.constructor, vs.ConfigMissingError);
    assert.equal(err.code, 'VSYNC_CONFIG_MISSING');
    assert.match(err.message, /world-writable/);
    assert.ok(!err.message.includes(passphrase));
    return true;
  });
});

test('a wrong passphrase is a WrongPassphraseError', async () => {
  const m = machine();
  const { blob, passphrase } = pushed(m, server, 'postgres://x');
  const wrong = `not-${passphrase}`;
  await assert.rejects(vs.openWith({ config: blob, passphrase: wrong }), (err) => {
    assert.equal(err.constructor, vs.WrongPassphraseError);
    assert.equal(err.name, 'WrongPassphraseError');
    assert.equal(err.code, 'VSYNC_WRONG_PASSPHRASE');
    assert.ok(err instanceof vs.VSyncError && err instanceof Error);
    assert.ok(!err.message.includes(wrong) && !err.message.includes(passphrase));
    assert.ok(!inspect(err).includes(passphrase));
    return true;
  });
});

test('a dead endpoint is an S3UnreachableError', async () => {
  const own = await startS3Server();
  cleanups.push(() => own.stop());
  const m = machine();
  const { blob, passphrase } = pushed(m, own, 'postgres://x');
  const vault = await vs.openWith({ config: blob, passphrase });
  await own.kill();
  await assert.rejects(vault.hasNewVersion(), (err) => {
    assert.equal(err.constructor, vs.S3UnreachableError);
    assert.equal(err.code, 'VSYNC_S3_UNREACHABLE');
    return true;
  });
  assert.equal(vault.getEnv('DATABASE_URL'), 'postgres://x', 'values stay readable');
  vault.close();
  await assert.rejects(vs.openWith({ config: blob, passphrase }), vs.S3UnreachableError);
});

test('a blob minted before the first push is a ManifestNotFoundError', async () => {
  const m = machine();
  const bucket = 'node-e2e-never-pushed';
  server.createBucket(bucket);
  m.initOnBucket(server, bucket);
  const blob = m.run(['runtime-token', '--env=dev']).trim();
  const passphrase = readFileSync(m.keyFile(), 'utf8').trim();
  await assert.rejects(vs.openWith({ config: blob, passphrase }), (err) => {
    assert.equal(err.constructor, vs.ManifestNotFoundError);
    assert.equal(err.code, 'VSYNC_MANIFEST_NOT_FOUND');
    assert.match(err.message, /vsync push dev/);
    return true;
  });
});

test('open does not block the event loop while it fetches and derives the key', async () => {
  const m = machine();
  const { blob, passphrase } = pushed(m, server, 'postgres://x');
  // A timer ticking every millisecond: if the fetch or the PBKDF2 (600,000
  // iterations) ran on the JS thread, the longest gap between ticks would
  // be most of an open.
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 1);
  const durations = [];
  try {
    for (let i = 0; i < 3; i += 1) {
      const start = performance.now();
      (await vs.openWith({ config: blob, passphrase })).close();
      durations.push(performance.now() - start);
    }
  } finally {
    clearInterval(ticker);
  }
  const shortest = Math.min(...durations);
  assert.ok(
    longestGap < shortest / 2,
    `the event loop stalled ${longestGap.toFixed(1)} ms during opens of ${shortest.toFixed(1)} ms or more`,
  );
});
