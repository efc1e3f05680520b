// Shared test harness: the harness S3 server (s3s-fs, started the way the
// Rust harness in testcontainers/src/s3.rs starts it), the vsync CLI as one
// developer machine (like cli/tests/common/mod.rs), and small builders for
// config blobs and payloads.
//
// Nothing here reimplements the reader: blobs and zips are *inputs* the
// tests hand to vsync-s3-client; every decision (decryption, anti-rollback,
// fallback chain, error class) is the Rust reader's.

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, crc32 } from 'node:zlib';

export const PACKAGE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(PACKAGE_DIR, '..', '..');

// The fixed test credentials of the Rust harness (testcontainers/src/s3.rs).
export const ACCESS_KEY = 'VSYNCTESTACCESSKEY';
export const SECRET_KEY = 'vsync-test-secret-key-not-a-real-secret';
export const REGION = 'us-east-1';
const READY_MARKER = 'server is running at http://';
const STARTUP_TIMEOUT_MS = 10_000;

function toolsDir() {
  return process.env.VSYNC_TOOLS_DIR || join(homedir(), '.cache', 'vsync-tools');
}

function isFile(path) {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `$VSYNC_S3S_FS_BIN`, then `${VSYNC_TOOLS_DIR}/bin/s3s-fs` (where scripts/install-services puts it), then `PATH`: the Rust harness's order. */
export function findS3sFs() {
  const explicit = process.env.VSYNC_S3S_FS_BIN;
  if (explicit !== undefined) {
    if (isFile(explicit)) return explicit;
    throw new Error(`VSYNC_S3S_FS_BIN=${explicit} is not a file`);
  }
  const installed = join(toolsDir(), 'bin', 's3s-fs');
  if (isFile(installed)) return installed;
  for (const dir of (process.env.PATH || '').split(':')) {
    if (dir && isFile(join(dir, 's3s-fs'))) return join(dir, 's3s-fs');
  }
  throw new Error(
    `s3s-fs not found (looked at $VSYNC_S3S_FS_BIN, ${installed}, $PATH); run scripts/install-services`,
  );
}

function canConnect(host, port) {
  return new Promise((done) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
  });
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/**
 * Starts s3s-fs with the Rust harness's arguments: a kernel-chosen port on
 * 127.0.0.1, authentication on with the fixed test credentials, a fresh
 * data directory. Stop it with `server.stop()`.
 */
export async function startS3Server() {
  const binary = findS3sFs();
  const dataDir = mkdtempSync(join(tmpdir(), 'vsync-node-s3s-fs-'));
  const child = spawn(
    binary,
    ['--host', '127.0.0.1', '--port', '0', '--access-key', ACCESS_KEY, '--secret-key', SECRET_KEY, dataDir],
    { env: { ...process.env, RUST_LOG: 's3s_fs=info', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const address = new Promise((done) => {
    const watch = (chunk) => {
      if (log.length < 1_000_000) log += chunk;
      const at = log.indexOf(READY_MARKER);
      if (at >= 0) done(log.slice(at + READY_MARKER.length).split(/\s/)[0]);
    };
    child.stdout.setEncoding('utf8').on('data', watch);
    child.stderr.setEncoding('utf8').on('data', watch);
  });
  const server = {
    process: child,
    dataDir,
    endpoint: '',
    output: () => log,
    /** Creates a bucket: s3s-fs maps a bucket to a directory under its root (its own CreateBucket is a create_dir). */
    createBucket(name) {
      mkdirSync(join(dataDir, name));
    },
    /** Places an object behind the server's back: s3s-fs serves each object from the file `<root>/<bucket>/<key>`. */
    putObject(bucket, key, body) {
      const path = join(dataDir, bucket, key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, body);
    },
    async kill() {
      if (!exited) {
        const gone = new Promise((done) => child.once('exit', done));
        child.kill('SIGKILL');
        await gone;
      }
    },
    async stop() {
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    let timer;
    const timeout = new Promise((done) => {
      timer = setTimeout(done, STARTUP_TIMEOUT_MS, null);
    });
    const addr = await Promise.race([address, timeout]).finally(() => clearTimeout(timer));
    if (!addr || exited) throw new Error(`s3s-fs did not start:\n${log}`);
    const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
    // The marker is logged after bind; prove it accepts.
    while (!(await canConnect(host, port))) {
      if (Date.now() > deadline || exited) throw new Error(`s3s-fs does not accept connections:\n${log}`);
      await sleep(20);
    }
    server.endpoint = `http://${addr}`;
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** An endpoint where nothing listens (a port the kernel just handed out and that was closed again). */
export async function deadEndpoint() {
  const probe = createServer();
  await new Promise((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address();
  await new Promise((done) => probe.close(done));
  return `http://127.0.0.1:${port}`;
}

/**
 * A `vsync-cfg-v1:` blob (spec §1.6: base64url, no padding, of the gzip of
 * the compact JSON) -- an input for the reader, which decodes it.
 */
export function makeBlob({
  endpoint,
  bucket,
  prefix,
  env = 'dev',
  salt = 'conformance-salt-0123',
  iterations = 1,
  accessKey = ACCESS_KEY,
  secretKey = SECRET_KEY,
}) {
  const doc = {
    v: 1,
    endpoint,
    region: REGION,
    bucket,
    accessKeyId: accessKey,
    secretAccessKey: secretKey,
    prefix,
    env,
    salt,
    iterations,
  };
  return 'vsync-cfg-v1:' + gzipSync(JSON.stringify(doc)).toString('base64url');
}

/**
 * A zip (stored entries) of a vault folder laid out as `vsync push` writes
 * it: entry names relative to the repo root, `infra/vault/<env>/<name>`.
 */
export function pushedZip(files, env = 'dev') {
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const [name, contents] of Object.entries(files)) {
    const data = Buffer.from(contents);
    const fileName = Buffer.from(`infra/vault/${env}/${name}`, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(fileName.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(fileName.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, fileName, data);
    centrals.push(central, fileName);
    offset += local.length + fileName.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(files).length, 8);
  end.writeUInt16LE(Object.keys(files).length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

export function cargoTargetDir() {
  return process.env.CARGO_TARGET_DIR || join(homedir(), '.cache', 'vsync-target');
}

/** The CLI: `$VSYNC_BIN`, else `$CARGO_TARGET_DIR/debug/vsync` (scripts/test-node builds it). */
export function vsyncBin() {
  const path = process.env.VSYNC_BIN || join(cargoTargetDir(), 'debug', 'vsync');
  if (!isFile(path)) {
    throw new Error(`the vsync CLI is not at ${path}; run \`cargo build -p vsync\` or set VSYNC_BIN`);
  }
  return path;
}

// Variables of whoever runs the tests that must not reach the CLI (the
// credential and endpoint lists of cli/tests/common/mod.rs, by prefix).
const REMOVED_PREFIXES = [
  'AWS_', 'AZURE_', 'GOOGLE_', 'GCE_', 'GITHUB_', 'GH_', 'OP_', 'VAULT_', 'IDENTITY_', 'VSYNC_',
  'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy',
];

/** One developer machine running the vsync CLI: its own HOME (config, file keystore) and git checkout. */
export class Machine {
  constructor(root) {
    this.vsync = vsyncBin();
    this.root = root ?? mkdtempSync(join(tmpdir(), 'vsync-node-machine-'));
    this.home = join(this.root, 'home');
    this.checkout = join(this.home, 'checkout');
    mkdirSync(this.checkout, { recursive: true });
    execFileSync('git', ['init', '-q'], { cwd: this.checkout });
  }

  environment(extra = {}) {
    const env = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!REMOVED_PREFIXES.some((prefix) => key.startsWith(prefix))) env[key] = value;
    }
    return { ...env, HOME: this.home, VSYNC_KEYSTORE: 'file', AWS_EC2_METADATA_DISABLED: 'true', ...extra };
  }

  /** Runs the CLI; returns stdout, throws with stderr on a non-zero exit. */
  run(args, extraEnv) {
    try {
      return execFileSync(this.vsync, args, {
        cwd: this.checkout,
        env: this.environment(extraEnv),
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
        timeout: 120_000,
      });
    } catch (err) {
      throw new Error(`vsync ${args.join(' ')} exited ${err.status}:\n${err.stderr}`);
    }
  }

  initOnBucket(server, bucket, env = 'dev', repo = 'acme_web') {
    this.run(
      ['profile', 'add', 'harness', `--endpoint=${server.endpoint}`, `--region=${REGION}`,
        `--bucket=${bucket}`, `--access-key=${ACCESS_KEY}`],
      { VSYNC_SECRET_ACCESS_KEY: SECRET_KEY },
    );
    this.run(['init', env, '--profile=harness', `--repo=${repo}`]);
  }

  vault(env = 'dev') {
    return join(this.checkout, 'infra', 'vault', env);
  }

  keyFile(env = 'dev', repo = 'acme_web') {
    return join(this.home, '.config', 'vsync', '.keystore', repo, `${env}.key`);
  }

  remove() {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export { existsSync };
