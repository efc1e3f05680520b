'use strict';
// The package as applications load it: `require` and `import` of
// 'vsync-s3-client' (through package.json's `exports`, by self-reference),
// the error classes, argument checks, a handle with no bucket behind it, and
// the TypeScript types (tsc on a CommonJS and an ES module consumer).
// No S3 server: see end-to-end.test.mjs for that.

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync, symlinkSync, mkdirSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');
const { inspect } = require('node:util');
const { test } = require('node:test');

const vs = require('vsync-s3-client');

const PACKAGE_DIR = resolve(__dirname, '..');

const TAXONOMY = {
  ConfigMissingError: 'VSYNC_CONFIG_MISSING',
  ConfigUnsupportedVersionError: 'VSYNC_CONFIG_UNSUPPORTED_VERSION',
  S3UnreachableError: 'VSYNC_S3_UNREACHABLE',
  ManifestNotFoundError: 'VSYNC_MANIFEST_NOT_FOUND',
  WrongPassphraseError: 'VSYNC_WRONG_PASSPHRASE',
  BundleCorruptError: 'VSYNC_BUNDLE_CORRUPT',
  UnsupportedSpecVersionError: 'VSYNC_UNSUPPORTED_SPEC_VERSION',
};

test('require and import load one module: same functions, same classes', async () => {
  const esm = await import('vsync-s3-client');
  const names = ['open', 'openWith', 'fromPayload', 'Vault', 'VSyncError', ...Object.keys(TAXONOMY)];
  assert.deepEqual(Object.keys(vs).sort(), [...names].sort());
  for (const name of names) {
    assert.equal(esm[name], vs[name], `import { ${name} } is require(...).${name}`);
  }
  assert.equal(esm.default, vs);
  // The ESM entry really is index.mjs and the CommonJS one index.js.
  assert.equal(require.resolve('vsync-s3-client'), join(PACKAGE_DIR, 'index.js'));
});

test('an ES module application imports named exports', () => {
  const script = [
    "import { openWith, ConfigMissingError, VSyncError } from 'vsync-s3-client';",
    "import vsync from 'vsync-s3-client';",
    "const err = await openWith({ config: '', passphrase: 'p' }).catch((e) => e);",
    'if (!(err instanceof ConfigMissingError) || !(err instanceof VSyncError)) throw err;',
    "if (vsync.openWith !== openWith) throw new Error('default export differs');",
    "console.log(err.name + ' ' + err.code);",
  ].join('\n');
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: PACKAGE_DIR,
    encoding: 'utf8',
  });
  assert.equal(out.trim(), 'ConfigMissingError VSYNC_CONFIG_MISSING');
});

test('seven error classes under VSyncError, with upstream names and codes', () => {
  assert.equal(Object.getPrototypeOf(vs.VSyncError), Error);
  const root = new vs.VSyncError('vsync: x');
  assert.equal(root.name, 'VSyncError');
  assert.equal(root.code, 'VSYNC_ERROR');
  for (const [name, code] of Object.entries(TAXONOMY)) {
    const cls = vs[name];
    assert.equal(cls.name, name);
    assert.equal(Object.getPrototypeOf(cls), vs.VSyncError, `${name} extends VSyncError directly`);
    const err = new cls('vsync: message');
    assert.ok(err instanceof vs.VSyncError && err instanceof Error);
    assert.equal(err.name, name);
    assert.equal(err.code, code);
    assert.equal(cls.code, code);
    assert.match(err.stack, new RegExp(`^${name}: vsync: message`));
    assert.match(inspect(err), new RegExp(`${name}: vsync: message`));
  }
});

test('openWith refuses missing input with ConfigMissingError, wrong types with TypeError', async () => {
  await assert.rejects(vs.openWith({ config: '', passphrase: 'p' }), vs.ConfigMissingError);
  await assert.rejects(vs.openWith({ config: 'vsync-cfg-v1:x' }), vs.ConfigMissingError);
  await assert.rejects(vs.openWith({ config: 'vsync-cfg-v1:x', passphrase: null }), vs.ConfigMissingError);
  await assert.rejects(vs.openWith({ config: '{"v":1}', passphrase: 'p' }), vs.ConfigMissingError);
  await assert.rejects(vs.openWith({ config: 'vsync-cfg-v1:a+b', passphrase: 'p' }), vs.ConfigUnsupportedVersionError);
  await assert.rejects(vs.openWith({ config: 'vsync-cfg-v1:AAECAwQFBgcICQ', passphrase: 'p' }), vs.BundleCorruptError);
  await assert.rejects(vs.openWith(), TypeError);
  await assert.rejects(vs.openWith({ config: 42, passphrase: 'p' }), TypeError);
  await assert.rejects(vs.openWith({ config: 'c', passphrase: 'p', defaults: { A: 1 } }), TypeError);
  await assert.rejects(vs.open({ defaults: ['x'] }), TypeError);
  // Both return Promises even when they fail at once.
  const pending = vs.openWith({ config: '', passphrase: '' });
  assert.ok(pending instanceof Promise);
  await pending.catch(() => {});
});

test('open() with no VSYNC_* variable names both variables', async () => {
  const names = ['VSYNC_CONFIG', 'VSYNC_CONFIG_FILE', 'VSYNC_PASSPHRASE', 'VSYNC_PASSPHRASE_FILE'];
  const saved = names.map((n) => [n, process.env[n]]);
  for (const name of names) delete process.env[name];
  try {
    await assert.rejects(vs.open(), (err) => {
      assert.equal(err.constructor, vs.ConfigMissingError);
      assert.match(err.message, /VSYNC_CONFIG/);
      assert.match(err.message, /VSYNC_PASSPHRASE/);
      return true;
    });
  } finally {
    for (const [key, value] of saved) if (value !== undefined) process.env[key] = value;
  }
});

test('a payload handle: values, no bucket, redacted, closable', async () => {
  const payload = Buffer.from(JSON.stringify({ kv: { SECRET: 'hunter2' }, assets: { 'a.pem': Buffer.from('PEM').toString('base64') } }));
  const vault = vs.fromPayload('prod', new Uint8Array(payload), { defaults: { D: 'default-secret' } });
  assert.equal(vault.getEnv('SECRET'), 'hunter2');
  assert.deepEqual(vault.getAsContent('a.pem'), Buffer.from('PEM'));
  assert.equal(vault.generation(), 0);
  assert.equal(vault.version(), null);
  // Outside the taxonomy: the root class itself, as upstream raises it.
  await assert.rejects(vault.remoteGeneration(), (err) => err.constructor === vs.VSyncError);
  await assert.rejects(vault.hasNewVersion(), (err) => err.constructor === vs.VSyncError);
  for (const shown of [String(vault), inspect(vault), JSON.stringify(vault), inspect({ vault }, { showHidden: true, depth: 5 })]) {
    assert.ok(!shown.includes('hunter2') && !shown.includes('default-secret'), shown);
  }
  assert.equal(String(vault), '<vsync:redacted gen=0 env=prod>');
  assert.equal(Object.prototype.toString.call(vault), '[object Vault]');
  if (typeof Symbol.dispose === 'symbol') {
    vault[Symbol.dispose]();
  } else {
    vault.close();
  }
  assert.ok(vault.closed);
  assert.throws(() => vault.hasEnv('SECRET'), vs.VSyncError);
  assert.throws(() => vs.fromPayload('dev', Buffer.from('neither zip nor json')), vs.BundleCorruptError);
  assert.throws(() => vs.fromPayload('dev', 'a string'), TypeError);
  assert.throws(() => new vs.Vault(), TypeError);
});

test('the TypeScript types check from a CommonJS and an ES module consumer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vsync-node-types-'));
  try {
    // A consumer project with the package installed under its name.
    mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
    symlinkSync(PACKAGE_DIR, join(dir, 'node_modules', 'vsync-s3-client'), 'dir');
    symlinkSync(join(PACKAGE_DIR, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{"name":"consumer","private":true}\n');
    const body = (imports) => `${imports}
export async function boot(): Promise<string> {
  const vault: Vault = await openWith({ config: 'c', passphrase: 'p', defaults: { PORT: '8080' } });
  const url: string | null = vault.getEnv('DATABASE_URL');
  const source: 'vault' | 'env' | 'default' | 'missing' = vault.envSource('PORT');
  const key: Buffer = vault.getAsContent('tls/server.key');
  const generation: number = vault.generation();
  const stale: boolean = await vault.hasNewVersion();
  const remote: number = await vault.remoteGeneration();
  const fromEnv: Vault = await open({ defaults: { A: 'b' } });
  vault.close();
  try { await open(); } catch (err) {
    if (err instanceof WrongPassphraseError) { const code: 'VSYNC_WRONG_PASSPHRASE' = err.code; return code; }
    if (err instanceof VSyncError) return err.code;
  }
  return String([url, source, key.length, generation, stale, remote, fromEnv, vault.hasEnv('X')]);
}
`;
    writeFileSync(
      join(dir, 'app.cts'),
      body("import { open, openWith, Vault, VSyncError, WrongPassphraseError } from 'vsync-s3-client';"),
    );
    writeFileSync(
      join(dir, 'app.mts'),
      body("import vsync, { open, openWith, Vault, VSyncError, WrongPassphraseError } from 'vsync-s3-client';\nvoid vsync.fromPayload;"),
    );
    // A mistake the types must catch: a value is string | null, not string.
    writeFileSync(
      join(dir, 'wrong.mts'),
      "import { fromPayload } from 'vsync-s3-client';\nexport const v: string = fromPayload('dev', new Uint8Array()).getEnv('A');\n",
    );
    const tsc = join(PACKAGE_DIR, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
    execFileSync(process.execPath, [tsc, ...args, 'app.cts', 'app.mts'], { cwd: dir, encoding: 'utf8' });
    let failure;
    try {
      execFileSync(process.execPath, [tsc, ...args, 'wrong.mts'], { cwd: dir, encoding: 'utf8' });
    } catch (err) {
      failure = err.stdout;
    }
    assert.match(failure ?? 'tsc accepted wrong.mts', /TS2322/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
