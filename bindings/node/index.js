'use strict';
// vsync-s3-client for Node.js: the vsync runtime reader.
//
// A thin layer over the native addon (bindings/node/src/lib.rs, a napi-rs
// binding of the Rust reader `vsync-s3-client`): it loads the `.node` file
// for this platform, gives the handle its JS shape (`Vault`), and turns the
// addon's `{vsyncFailure, className, message}` answers into the error
// classes below. Every decision -- the `_FILE` bootstrap rules, the key
// derivation, the decryption, the anti-rollback check, the payload formats,
// the fallback chain, which error class -- is the Rust reader's.
//
// `index.mjs` re-exports this module for `import`; both see the same classes.

const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');
const { inspect } = require('node:util');

// ---------------------------------------------------------------------------
// Loading the addon

function isMusl() {
  if (process.platform !== 'linux') return false;
  try {
    const report = process.report && process.report.getReport();
    const header = report && (typeof report === 'string' ? JSON.parse(report) : report).header;
    if (header) return !header.glibcVersionRuntime;
  } catch {
    // fall through to the loader check
  }
  try {
    return readFileSync('/usr/bin/ldd', 'latin1').includes('musl');
  } catch {
    return false;
  }
}

/** The napi-rs platform suffix of this process: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, ... */
function platformSuffix() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function loadNative() {
  const suffix = platformSuffix();
  // A binary built in this folder (`npm run build`), then the per-platform
  // package `napi prepublish` publishes (an optional dependency of a release).
  const local = join(__dirname, `vsync-s3-client.${suffix}.node`);
  const tried = [];
  if (existsSync(local)) return require(local);
  tried.push(local);
  const pkg = `vsync-s3-client-${suffix}`;
  try {
    return require(pkg);
  } catch (err) {
    if (err && err.code !== 'MODULE_NOT_FOUND') throw err;
    tried.push(pkg);
  }
  throw new Error(
    `vsync-s3-client: no native binary for ${suffix} (looked for ${tried.join(', ')}); ` +
      'build it with `npm run build` in bindings/node, or install a release that ships this platform',
  );
}

const native = loadNative();

// ---------------------------------------------------------------------------
// Errors (spec §6.4): seven classes under the root `VSyncError`; `name` is
// the canonical class name the conformance corpus uses, `code` upstream's.

/** The root of every error vsync raises. */
class VSyncError extends Error {
  constructor(message, options) {
    super(message, options);
    Object.defineProperty(this, 'name', {
      value: new.target.name,
      configurable: true,
      writable: true,
      enumerable: false,
    });
    this.code = new.target.code;
  }
}
VSyncError.code = 'VSYNC_ERROR';

const CLASSES = [
  ['ConfigMissingError', 'VSYNC_CONFIG_MISSING',
    'The config or passphrase is unset, unreadable, or not a `vsync-cfg-v1:` blob.'],
  ['ConfigUnsupportedVersionError', 'VSYNC_CONFIG_UNSUPPORTED_VERSION',
    'The config blob is of a version or shape this library does not read.'],
  ['S3UnreachableError', 'VSYNC_S3_UNREACHABLE',
    'The bucket could not be read: network, DNS, TLS, or an S3 error other than 404.'],
  ['ManifestNotFoundError', 'VSYNC_MANIFEST_NOT_FOUND',
    'The bucket answers, but no vault exists under the blob\'s prefix.'],
  ['WrongPassphraseError', 'VSYNC_WRONG_PASSPHRASE',
    'The passphrase does not decrypt the bundle (or the bundle was tampered with).'],
  ['BundleCorruptError', 'VSYNC_BUNDLE_CORRUPT',
    'The bundle, its seal, its pointer or the config blob is damaged.'],
  ['UnsupportedSpecVersionError', 'VSYNC_UNSUPPORTED_SPEC_VERSION',
    'The bundle is of a format version this library does not read.'],
];

const errors = { VSyncError };
for (const [name, code] of CLASSES) {
  // A named class expression per taxonomy class, so `err.constructor.name`,
  // `err.name` and stack traces show the canonical name.
  const cls = { [name]: class extends VSyncError {} }[name];
  cls.code = code;
  errors[name] = cls;
}

/** Throws the error class the addon named, or returns the value. */
function unwrap(outcome) {
  if (outcome !== null && typeof outcome === 'object' && outcome.vsyncFailure === true) {
    const cls = Object.prototype.hasOwnProperty.call(errors, outcome.className)
      ? errors[outcome.className]
      : VSyncError;
    throw new cls(outcome.message);
  }
  return outcome;
}

// ---------------------------------------------------------------------------
// The handle

const TOKEN = Symbol('vsync-s3-client internal');

function requireString(what, value) {
  if (typeof value !== 'string') {
    throw new TypeError(`vsync: ${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

/**
 * An open vault: one env's decrypted values and assets, in memory. Made by
 * `open()`, `openWith()` or `fromPayload()`; never printed with a value.
 */
class Vault {
  #native;

  constructor(token, handle) {
    if (token !== TOKEN) {
      throw new TypeError('vsync: a Vault comes from open(), openWith() or fromPayload()');
    }
    this.#native = handle;
  }

  /** The value of `key`: the vault, else `process.env` (read now), else the defaults; `null` when nowhere. */
  getEnv(key) {
    const value = unwrap(this.#native.getEnv(requireString('key', key)));
    return value === undefined ? null : value;
  }

  /** Whether `key` is in the vault, the environment (an empty value counts) or the defaults. */
  hasEnv(key) {
    return unwrap(this.#native.hasEnv(requireString('key', key)));
  }

  /** `'vault'`, `'env'`, `'default'` or `'missing'`: which step answers for `key`. Safe to log. */
  envSource(key) {
    return unwrap(this.#native.envSource(requireString('key', key)));
  }

  /**
   * The bytes of the asset `name` (its path relative to the vault folder,
   * e.g. `tls/server.crt`), else the UTF-8 bytes of the vault value `name`.
   * Throws a plain `Error` (not a `VSyncError`) when neither exists; the
   * environment and defaults are not consulted.
   */
  getAsContent(name) {
    const content = unwrap(this.#native.getAsContent(requireString('name', name)));
    if (content === null || content === undefined) {
      const err = new Error(`vsync: no asset or vault value named ${JSON.stringify(name)}`);
      err.code = 'ERR_VSYNC_NO_CONTENT';
      throw err;
    }
    return content;
  }

  /** The generation read at open (0 when the bucket has none). Safe to log. */
  generation() {
    return unwrap(this.#native.generation());
  }

  /** The timestamp (`YYYYMMDD-HHmmss`) of the bundle read at open; `null` for `fromPayload`. */
  version() {
    const version = unwrap(this.#native.version());
    return version === undefined ? null : version;
  }

  /** The bucket's current generation: one small read of the pointer, off the JS thread. */
  async remoteGeneration() {
    return unwrap(await this.#native.remoteGeneration());
  }

  /** Whether anything was pushed or rotated since this handle was opened (off the JS thread). */
  async hasNewVersion() {
    return unwrap(await this.#native.hasNewVersion());
  }

  /** Wipes every value now. Idempotent; accessors throw `VSyncError` afterwards. */
  close() {
    this.#native.close();
  }

  /** Whether `close()` was called. */
  get closed() {
    return this.#native.closed;
  }

  /** `<vsync:redacted gen=N env=E>`, never a value. */
  toString() {
    const text = this.#native.describe();
    return this.#native.closed ? `${text} (closed)` : text;
  }

  toJSON() {
    return this.toString();
  }

  [inspect.custom]() {
    return this.toString();
  }

  get [Symbol.toStringTag]() {
    return 'Vault';
  }
}

if (typeof Symbol.dispose === 'symbol') {
  Vault.prototype[Symbol.dispose] = function dispose() {
    this.close();
  };
}

// ---------------------------------------------------------------------------
// Opening

function defaultsOf(options) {
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object') throw new TypeError('vsync: options must be an object');
  const { defaults } = options;
  if (defaults === undefined || defaults === null) return undefined;
  if (typeof defaults !== 'object' || Array.isArray(defaults)) {
    throw new TypeError('vsync: defaults must be an object of strings');
  }
  const copy = {};
  for (const [key, value] of Object.entries(defaults)) {
    // The key is named, never the value.
    if (typeof value !== 'string') throw new TypeError(`vsync: default ${JSON.stringify(key)} must be a string`);
    copy[key] = value;
  }
  return copy;
}

function optionalString(what, value) {
  if (value === undefined || value === null) return undefined;
  return requireString(what, value);
}

/**
 * Opens the vault named by `VSYNC_CONFIG` / `VSYNC_CONFIG_FILE` with the
 * passphrase in `VSYNC_PASSPHRASE` / `VSYNC_PASSPHRASE_FILE`. The fetch and
 * the key derivation run off the JS thread.
 */
async function open(options) {
  const defaults = defaultsOf(options);
  return new Vault(TOKEN, unwrap(await native.open(defaults)));
}

/**
 * Opens the vault named by the `vsync-cfg-v1:` blob `config` with
 * `passphrase` (both verbatim). A missing or empty one is a
 * `ConfigMissingError`.
 */
async function openWith(options) {
  if (options === undefined || options === null || typeof options !== 'object') {
    throw new TypeError('vsync: openWith takes {config, passphrase, defaults}');
  }
  const config = optionalString('config', options.config);
  const passphrase = optionalString('passphrase', options.passphrase);
  const defaults = defaultsOf(options);
  return new Vault(TOKEN, unwrap(await native.openWith(config, passphrase, defaults)));
}

/**
 * A handle over an already decrypted bundle payload (a zip of the vault
 * folder as `vsync push` writes it, or JSON `{kv, assets}` / flat), with no
 * bucket behind it: generation 0, `version()` null, and `remoteGeneration()`
 * / `hasNewVersion()` reject with `VSyncError`.
 */
function fromPayload(env, payload, options) {
  requireString('env', env);
  if (!(payload instanceof Uint8Array)) throw new TypeError('vsync: payload must be a Buffer or Uint8Array');
  const buffer = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return new Vault(TOKEN, unwrap(native.fromPayload(env, buffer, defaultsOf(options))));
}

module.exports = {
  open,
  openWith,
  fromPayload,
  Vault,
  ...errors,
};
