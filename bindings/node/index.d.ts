// Types of vsync-s3-client, the vsync runtime reader for Node.js.

/// <reference types="node" />

/** Which step of the fallback chain answers for a key. */
export type EnvSource = 'vault' | 'env' | 'default' | 'missing';

/** What `open` takes. */
export interface OpenOptions {
  /** The last step of the fallback chain: used when neither the vault nor the environment has the key. */
  defaults?: Record<string, string> | null;
}

/** What `openWith` takes: the blob and the passphrase verbatim (a missing or empty one is a `ConfigMissingError`). */
export interface OpenWithOptions extends OpenOptions {
  /** The `vsync-cfg-v1:` blob `vsync runtime-token --env=<env>` prints. */
  config?: string | null;
  /** The env's passphrase. */
  passphrase?: string | null;
}

/**
 * An open vault: one env's decrypted values and assets, in memory.
 * `toString()`, `toJSON()` and `util.inspect` give `<vsync:redacted gen=N env=E>`, never a value.
 */
export declare class Vault {
  private constructor();
  /** The value of `key`: the vault, else `process.env` (read now), else the defaults; `null` when nowhere. */
  getEnv(key: string): string | null;
  /** Whether `key` is in the vault, the environment (an empty value counts) or the defaults. */
  hasEnv(key: string): boolean;
  /** Which step of the fallback chain answers for `key`. Safe to log. */
  envSource(key: string): EnvSource;
  /**
   * The bytes of the asset `name` (its path relative to the vault folder, e.g. `tls/server.crt`),
   * else the UTF-8 bytes of the vault value `name`. Throws a plain `Error` when neither exists.
   */
  getAsContent(name: string): Buffer;
  /** The generation read at open (0 when the bucket has none). Safe to log. */
  generation(): number;
  /** The timestamp (`YYYYMMDD-HHmmss`) of the bundle read at open; `null` for a `fromPayload` handle. */
  version(): string | null;
  /** The bucket's current generation (one small read of the pointer). */
  remoteGeneration(): Promise<number>;
  /** Whether anything was pushed or rotated since this handle was opened. */
  hasNewVersion(): Promise<boolean>;
  /** Wipes every value now. Idempotent; accessors throw `VSyncError` afterwards. */
  close(): void;
  /** Whether `close()` was called. */
  readonly closed: boolean;
  /** `<vsync:redacted gen=N env=E>`. */
  toString(): string;
  /** `<vsync:redacted gen=N env=E>`. */
  toJSON(): string;
}

/** Opens the vault named by `VSYNC_CONFIG`(`_FILE`) with `VSYNC_PASSPHRASE`(`_FILE`); the fetch and the KDF run off the JS thread. */
export declare function open(options?: OpenOptions | null): Promise<Vault>;

/** Opens the vault named by the blob `config` with `passphrase`; the fetch and the KDF run off the JS thread. */
export declare function openWith(options: OpenWithOptions): Promise<Vault>;

/**
 * A handle over an already decrypted bundle payload (a zip of the vault folder as `vsync push`
 * writes it, or JSON `{kv, assets}` / flat), with no bucket behind it.
 */
export declare function fromPayload(env: string, payload: Uint8Array, options?: OpenOptions | null): Vault;

/** The root of every error vsync raises (`code` `VSYNC_ERROR`). */
export declare class VSyncError extends Error {
  /** Upstream's code: `VSYNC_ERROR`, `VSYNC_CONFIG_MISSING`, ... */
  readonly code: string;
  static readonly code: string;
}
/** Config or passphrase unset, unreadable, or not a `vsync-cfg-v1:` blob (`VSYNC_CONFIG_MISSING`). */
export declare class ConfigMissingError extends VSyncError {
  readonly code: 'VSYNC_CONFIG_MISSING';
}
/** A config blob of a version or shape this library does not read (`VSYNC_CONFIG_UNSUPPORTED_VERSION`). */
export declare class ConfigUnsupportedVersionError extends VSyncError {
  readonly code: 'VSYNC_CONFIG_UNSUPPORTED_VERSION';
}
/** Network, DNS, TLS, or an S3 error other than 404 (`VSYNC_S3_UNREACHABLE`). */
export declare class S3UnreachableError extends VSyncError {
  readonly code: 'VSYNC_S3_UNREACHABLE';
}
/** The bucket answers, but no vault exists under the blob's prefix (`VSYNC_MANIFEST_NOT_FOUND`). */
export declare class ManifestNotFoundError extends VSyncError {
  readonly code: 'VSYNC_MANIFEST_NOT_FOUND';
}
/** The passphrase does not decrypt the bundle, or it was tampered with (`VSYNC_WRONG_PASSPHRASE`). */
export declare class WrongPassphraseError extends VSyncError {
  readonly code: 'VSYNC_WRONG_PASSPHRASE';
}
/** The bundle, its seal, its pointer or the config blob is damaged (`VSYNC_BUNDLE_CORRUPT`). */
export declare class BundleCorruptError extends VSyncError {
  readonly code: 'VSYNC_BUNDLE_CORRUPT';
}
/** A bundle format version this library does not read (`VSYNC_UNSUPPORTED_SPEC_VERSION`). */
export declare class UnsupportedSpecVersionError extends VSyncError {
  readonly code: 'VSYNC_UNSUPPORTED_SPEC_VERSION';
}
