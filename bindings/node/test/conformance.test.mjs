// The conformance corpora, run through the Node binding with `node --test`.
//
// Two corpora, same layout and schema (spec §7): the project's own
// (test-vectors/corpus/, always present) and upstream's 31 vectors
// ($VSYNC_UPSTREAM_CORPUS, else <repo>/../shared/vsync-conformance). Where the
// upstream corpus is, is decided as test-vectors/tests/conformance.rs decides
// it: $VSYNC_UPSTREAM_CORPUS naming no directory is a failure; a missing
// default directory is a failure under CI=true and a skip elsewhere.
//
// Vectors are dispatched by category the way upstream's loaders do (§7.3),
// each through the package's public API (`import ... from 'vsync-s3-client'`),
// errors matched by the canonical class name (`err.name` and the class's own
// name; the class must extend `VSyncError`):
//
// * fallback-chain -- `fromPayload` (the vault as a JSON `kv` payload and as
//   the CLI's zip with a `.env.dev`), `process.env` set to exactly
//   `inputs.env` (queried keys unset), `defaults`; every query's `getEnv` /
//   `envSource` / `hasEnv`.
// * asset-path -- the `.bin` as an asset (zip file and JSON `assets`);
//   `getAsContent` must return it byte for byte. `mode_octal` belonged to
//   upstream's path accessor, removed in 0.11, which this library lacks.
// * config-blob negatives -- `openWith({config: <the .bin>})` must reject with
//   the class (the blob is refused before any I/O).
// * error-taxonomy -- config-missing: `open()` with no VSYNC_* variable;
//   config-unsupported-version: `openWith` the blob; s3-unreachable:
//   `openWith` a blob whose endpoint refuses connections;
//   manifest-not-found: `openWith` a blob for an empty bucket on the harness
//   S3 server; wrong-passphrase / bundle-corrupt / unsupported-spec-version:
//   the `.bin` envelope published as the current bundle of a bucket
//   (`latest` + `versions/<ts>.enc`), opened with the vector's passphrase
//   and salt (600,000 iterations).
// * rqe1-decrypt-error -- the same way: each broken envelope is the bundle
//   the reader fetches and must refuse with the class.
//
// Skipped (registered as skipped tests, each with its reason):
//
// * rqe1-decrypt positives: the reader only opens bundles whose plaintext is
//   an RQEM0001 seal of the pointer's timestamp (anti-rollback); these
//   vectors' plaintexts are bare bytes, and the binding (rightly) exposes no
//   raw-envelope API. test-vectors/tests/conformance.rs runs them through
//   vsync-crypto, the code the reader uses.
// * rqem0001-manifest: bare seals, not bundles; the reader meets RQEM0001
//   only inside an encrypted bundle. Covered by the Rust conformance test.
// * config-blob positives: the reader exposes no decoded config (it holds
//   access keys), and opening one would contact the vector's real cloud
//   endpoint. The field-by-field comparison is in the Rust conformance test.
// * "placeholder": true vectors (none at upstream's HEAD), as the Rust
//   loader treats them.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as vs from 'vsync-s3-client';

import { REPO, deadEndpoint, makeBlob, pushedZip, startS3Server } from './harness.mjs';

const OWN_CORPUS = join(REPO, 'test-vectors', 'corpus');
const DEFAULT_UPSTREAM = resolve(REPO, '..', 'shared', 'vsync-conformance');
const UPSTREAM_VECTOR_COUNT = 31;
const CATEGORIES = [
  'rqe1-decrypt',
  'rqe1-decrypt-error',
  'rqem0001-manifest',
  'config-blob',
  'fallback-chain',
  'asset-path',
  'error-taxonomy',
];
const ENV = 'dev';
// A pointer timestamp for the bundles these tests publish.
const TS = '20260429-103045';
const CANONICAL = [
  'ConfigMissingError',
  'ConfigUnsupportedVersionError',
  'S3UnreachableError',
  'ManifestNotFoundError',
  'WrongPassphraseError',
  'BundleCorruptError',
  'UnsupportedSpecVersionError',
];

function isDir(path) {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The upstream corpus directory, `null` to skip it, or an Error to fail with (see the file comment). */
function locateUpstream() {
  const explicit = process.env.VSYNC_UPSTREAM_CORPUS;
  if (explicit !== undefined) {
    if (explicit === '' || !isDir(explicit)) {
      return new Error(
        `VSYNC_UPSTREAM_CORPUS=${JSON.stringify(explicit)} is not a directory; ` +
          'point it at a checkout of the upstream corpus or unset it',
      );
    }
    return explicit;
  }
  if (isDir(DEFAULT_UPSTREAM)) return DEFAULT_UPSTREAM;
  if (process.env.CI === 'true') {
    return new Error(
      `upstream corpus not found at ${DEFAULT_UPSTREAM} and CI=true, where skipping it is not allowed; ` +
        'check it out there or set VSYNC_UPSTREAM_CORPUS',
    );
  }
  return null;
}

function load(corpus, root) {
  const vectors = [];
  for (const category of CATEGORIES) {
    const folder = join(root, category);
    if (!isDir(folder)) continue;
    for (const file of readdirSync(folder).filter((f) => f.endsWith('.json')).sort()) {
      const path = join(folder, file);
      const doc = JSON.parse(readFileSync(path, 'utf8'));
      assert.equal(doc.category, category, `${path}: category field`);
      const binPath = path.replace(/\.json$/, '.bin');
      const name = file.replace(/\.json$/, '');
      vectors.push({
        corpus,
        category,
        name,
        doc,
        bin: existsSync(binPath) ? readFileSync(binPath) : null,
        id: `${corpus}:${category}/${name}`,
        input: (field) => (doc.inputs ?? {})[field],
        expected: (field) => (doc.expected ?? {})[field],
      });
    }
  }
  return vectors;
}

// --- judging ---------------------------------------------------------------

/** The class `expected.error` names, `null` for success. */
function expectedClass(vector) {
  const name = vector.expected('error');
  if (name === null || name === undefined) return null;
  assert.ok(CANONICAL.includes(name), `expected.error ${JSON.stringify(name)} is not one of the seven canonical classes`);
  const cls = vs[name];
  assert.equal(typeof cls, 'function', `the package exports no ${name}`);
  assert.ok(cls.prototype instanceof vs.VSyncError, `${name} does not extend VSyncError`);
  return cls;
}

/**
 * Runs `call` (sync or async); returns its result when success is expected,
 * `null` when the expected class was thrown; fails otherwise.
 */
async function judge(vector, call) {
  const cls = expectedClass(vector);
  let result;
  try {
    result = await call();
  } catch (err) {
    if (!(err instanceof vs.VSyncError)) throw err;
    if (cls === null) assert.fail(`expected success, got ${err.name}: ${err.message}`);
    // Matched by canonical name, and the exact class (not a sibling).
    assert.equal(err.name, cls.name, `expected ${cls.name}, got ${err.name}: ${err.message}`);
    assert.equal(err.constructor, cls);
    assert.equal(err.code, cls.code);
    return null;
  }
  if (cls !== null) assert.fail(`expected ${cls.name}, got success`);
  return result;
}

// --- categories ------------------------------------------------------------

/** Sets `process.env` to the vector's `inputs.env`, as far as any key the vector mentions goes; returns the undo. */
function setEnvironment(vector) {
  const env = vector.input('env') ?? {};
  const mentioned = new Set([
    ...Object.keys(env),
    ...Object.keys(vector.input('vault') ?? {}),
    ...Object.keys(vector.input('defaults') ?? {}),
    ...(vector.input('queries') ?? []),
  ]);
  const saved = new Map();
  for (const key of mentioned) {
    saved.set(key, process.env[key]);
    delete process.env[key];
  }
  Object.assign(process.env, env);
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

async function checkFallbackChain(vector) {
  const vault = vector.input('vault') ?? {};
  const defaults = vector.input('defaults') ?? {};
  const payloads = [['JSON payload', Buffer.from(JSON.stringify({ kv: vault }))]];
  const entries = Object.entries(vault);
  if (entries.every(([k, v]) => !/[\r\n"]/.test(v) && !k.includes('='))) {
    const envFile = entries.map(([k, v]) => `${k}="${v}"\n`).join('');
    payloads.push(['zip payload', pushedZip({ [`.env.${ENV}`]: envFile })]);
  }
  const undo = setEnvironment(vector);
  try {
    for (const [shape, payload] of payloads) {
      const client = await judge(vector, () => vs.fromPayload(ENV, payload, { defaults: { ...defaults } }));
      if (client === null) return;
      try {
        const results = vector.input('queries').map((key) => ({
          key,
          value: client.getEnv(key),
          source: client.envSource(key),
          has: client.hasEnv(key),
        }));
        assert.deepEqual(results, vector.expected('results'), shape);
      } finally {
        client.close();
      }
    }
  } finally {
    undo();
  }
}

async function checkAsset(vector) {
  const key = vector.input('key');
  assert.ok(vector.bin, 'asset vectors carry a .bin');
  const payloads = [
    ['zip payload', pushedZip({ [key]: vector.bin })],
    ['JSON payload', Buffer.from(JSON.stringify({ assets: { [key]: vector.bin.toString('base64') } }))],
  ];
  for (const [shape, payload] of payloads) {
    const client = await judge(vector, () => vs.fromPayload(ENV, payload));
    if (client === null) return;
    try {
      const content = client.getAsContent(key);
      assert.ok(Buffer.isBuffer(content), `${shape}: getAsContent returns a Buffer`);
      assert.equal(content.toString('hex'), vector.expected('bytes_hex'), shape);
    } finally {
      client.close();
    }
  }
}

async function checkConfigBlobNegative(vector) {
  const config = vector.bin.toString('utf8');
  await judge(vector, () => vs.openWith({ config, passphrase: 'any passphrase' }));
}

async function checkConfigMissing(vector) {
  const names = ['VSYNC_CONFIG', 'VSYNC_CONFIG_FILE', 'VSYNC_PASSPHRASE', 'VSYNC_PASSPHRASE_FILE'];
  const env = vector.input('env') ?? {};
  const saved = new Map([...names, ...Object.keys(env)].map((n) => [n, process.env[n]]));
  for (const name of names) delete process.env[name];
  Object.assign(process.env, env);
  try {
    await judge(vector, () => vs.open());
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

function bucketName(vector) {
  const raw = `${vector.corpus}-${vector.category}-${vector.name}`.toLowerCase();
  return raw.replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/^-+|-+$/g, '');
}

/**
 * The vector's RQE1 envelope as the current bundle of a bucket in the CLI
 * layout; the reader fetches it, derives the key from the vector's
 * passphrase and salt (600,000 iterations), and must refuse it.
 */
async function checkPublishedEnvelope(vector, server) {
  assert.ok(vector.bin, 'envelope vectors carry a .bin');
  const bucket = bucketName(vector);
  const prefix = `conformance/${ENV}/`;
  server.createBucket(bucket);
  server.putObject(bucket, `${prefix}latest`, TS);
  server.putObject(bucket, `${prefix}versions/${TS}.enc`, vector.bin);
  const config = makeBlob({
    endpoint: server.endpoint,
    bucket,
    prefix,
    salt: vector.input('salt'),
    iterations: 600_000,
  });
  await judge(vector, () => vs.openWith({ config, passphrase: vector.input('passphrase') }));
}

async function checkManifestNotFound(vector, server) {
  const bucket = bucketName(vector);
  server.createBucket(bucket);
  const config = makeBlob({ endpoint: server.endpoint, bucket, prefix: `conformance/${ENV}/` });
  await judge(vector, () => vs.openWith({ config, passphrase: 'conformance passphrase' }));
}

async function checkS3Unreachable(vector) {
  const config = makeBlob({ endpoint: await deadEndpoint(), bucket: 'vsync-conformance', prefix: `conformance/${ENV}/` });
  await judge(vector, () => vs.openWith({ config, passphrase: 'conformance passphrase' }));
}

const SKIP_RQE1_POSITIVE =
  'bare RQE1 plaintext: the reader opens only bundles sealed with the pointer\'s timestamp and has no ' +
  'raw-envelope API; run through vsync-crypto in test-vectors/tests/conformance.rs';
const SKIP_RQEM =
  'bare RQEM0001 seal: the reader meets it only inside an encrypted bundle; run through vsync-crypto in ' +
  'test-vectors/tests/conformance.rs';
const SKIP_CONFIG_POSITIVE =
  'positive config blob: the reader exposes no decoded config and opening it would contact the vector\'s ' +
  'real endpoint; compared field by field in test-vectors/tests/conformance.rs';

/** The skip reason of a vector the Node binding does not run, or `null`. */
function skipReason(vector) {
  if (vector.doc.placeholder) return `placeholder vector: ${vector.doc.description}`;
  if (vector.category === 'rqe1-decrypt') return SKIP_RQE1_POSITIVE;
  if (vector.category === 'rqem0001-manifest') return SKIP_RQEM;
  if (vector.category === 'config-blob' && vector.expected('error') == null) return SKIP_CONFIG_POSITIVE;
  return null;
}

async function run(vector, server) {
  const { category, name } = vector;
  switch (category) {
    case 'fallback-chain':
      return checkFallbackChain(vector);
    case 'asset-path':
      return checkAsset(vector);
    case 'config-blob':
      return checkConfigBlobNegative(vector);
    case 'rqe1-decrypt-error':
      return checkPublishedEnvelope(vector, server);
    case 'error-taxonomy':
      switch (name) {
        case 'config-missing':
          return checkConfigMissing(vector);
        case 'config-unsupported-version':
          return checkConfigBlobNegative(vector);
        case 's3-unreachable':
          return checkS3Unreachable(vector);
        case 'manifest-not-found':
          return checkManifestNotFound(vector, server);
        case 'wrong-passphrase':
        case 'bundle-corrupt':
        case 'unsupported-spec-version':
          return checkPublishedEnvelope(vector, server);
        default:
          return assert.fail(`unknown error-taxonomy scenario ${JSON.stringify(name)}`);
      }
    default:
      return assert.fail(`unknown category ${JSON.stringify(category)}`);
  }
}

// --- the suites ------------------------------------------------------------

let server;
before(async () => {
  server = await startS3Server();
});
after(async () => {
  await server?.stop();
});

function suite(label, vectors) {
  describe(label, () => {
    for (const vector of vectors) {
      const reason = skipReason(vector);
      test(vector.id, reason ? { skip: reason } : {}, () => run(vector, server));
    }
  });
}

const own = load('project', OWN_CORPUS);
test('the project corpus holds vectors of every category', () => {
  assert.deepEqual([...new Set(own.map((v) => v.category))].sort(), [...CATEGORIES].sort());
});
suite('project corpus', own);

const upstreamDir = locateUpstream();
if (upstreamDir instanceof Error) {
  test('upstream corpus', () => {
    throw upstreamDir;
  });
} else if (upstreamDir === null) {
  test('upstream corpus', {
    skip: `not found at ${DEFAULT_UPSTREAM} (a failure under CI=true; set VSYNC_UPSTREAM_CORPUS to run it)`,
  }, () => {});
} else {
  const upstream = load('upstream', upstreamDir);
  test('the upstream corpus is whole: 31 vectors (3 + 5 + 4 + 6 + 4 + 2 + 7)', () => {
    assert.equal(upstream.filter((v) => !v.doc.placeholder).length, UPSTREAM_VECTOR_COUNT);
  });
  suite('upstream corpus', upstream);
}
