"""Shared fixtures: the harness S3 server (s3s-fs, started like the Rust
harness in ``testcontainers/src/s3.rs`` does), the ``vsync`` CLI as one
developer machine, and small builders for config blobs and payloads.

Nothing here reimplements the reader: blobs and zips are *inputs* the tests
hand to ``vsync_s3_client``; every decision (decryption, anti-rollback,
fallback chain, error class) is the Rust reader's.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[3]

# The fixed test credentials of the Rust harness (testcontainers/src/s3.rs).
ACCESS_KEY = "VSYNCTESTACCESSKEY"
SECRET_KEY = "vsync-test-secret-key-not-a-real-secret"
REGION = "us-east-1"
READY_MARKER = "server is running at http://"
STARTUP_TIMEOUT = 10.0


def tools_dir() -> Path:
    explicit = os.environ.get("VSYNC_TOOLS_DIR")
    return Path(explicit) if explicit else Path.home() / ".cache" / "vsync-tools"


def find_s3s_fs() -> Path:
    """``$VSYNC_S3S_FS_BIN``, then ``${VSYNC_TOOLS_DIR}/bin/s3s-fs`` (where
    ``scripts/install-services`` puts it), then ``PATH`` -- the Rust harness's
    order."""
    explicit = os.environ.get("VSYNC_S3S_FS_BIN")
    if explicit is not None:
        if Path(explicit).is_file():
            return Path(explicit)
        pytest.fail(f"VSYNC_S3S_FS_BIN={explicit} is not a file")
    installed = tools_dir() / "bin" / "s3s-fs"
    if installed.is_file():
        return installed
    on_path = shutil.which("s3s-fs")
    if on_path:
        return Path(on_path)
    pytest.fail(
        f"s3s-fs not found (looked at $VSYNC_S3S_FS_BIN, {installed}, $PATH); "
        "run scripts/install-services"
    )


@dataclass
class S3Server:
    """A running s3s-fs on 127.0.0.1, serving ``data_dir``."""

    process: subprocess.Popen
    endpoint: str
    data_dir: Path
    log: List[str]

    def create_bucket(self, name: str) -> Path:
        # s3s-fs maps a bucket to a directory under its root (its own
        # CreateBucket is exactly a create_dir), as the Rust harness uses.
        path = self.data_dir / name
        path.mkdir()
        return path

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        """Places an object behind the server's back: s3s-fs serves each
        object from the file ``<root>/<bucket>/<key>``."""
        path = self.data_dir / bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def output(self) -> str:
        return "".join(self.log)


def _drain(pipe, log: List[str], ready: Dict[str, str], event: threading.Event) -> None:
    for line in iter(pipe.readline, ""):
        if READY_MARKER in line and "addr" not in ready:
            ready["addr"] = line.split(READY_MARKER, 1)[1].strip()
            event.set()
        if len(log) < 10_000:
            log.append(line)
    event.set()


def start_s3_server() -> S3Server:
    """Starts s3s-fs with the Rust harness's arguments: a kernel-chosen port
    on 127.0.0.1, authentication on with fixed test credentials, a fresh data
    directory. Stop it with :func:`stop_s3_server`."""
    binary = find_s3s_fs()
    data_dir = Path(tempfile.mkdtemp(prefix="vsync-py-s3s-fs-"))
    env = dict(os.environ, RUST_LOG="s3s_fs=info", NO_COLOR="1")
    process = subprocess.Popen(
        [
            str(binary),
            "--host", "127.0.0.1",
            "--port", "0",
            "--access-key", ACCESS_KEY,
            "--secret-key", SECRET_KEY,
            str(data_dir),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    log: List[str] = []
    ready: Dict[str, str] = {}
    event = threading.Event()
    for pipe in (process.stdout, process.stderr):
        threading.Thread(target=_drain, args=(pipe, log, ready, event), daemon=True).start()
    server = S3Server(process, "", data_dir, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "addr" not in ready:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"s3s-fs did not start:\n{''.join(log)}")
            event.wait(0.05)
        host, port = ready["addr"].rsplit(":", 1)
        while True:  # the marker is logged after bind; prove it accepts
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"s3s-fs does not accept connections:\n{''.join(log)}")
                time.sleep(0.02)
    except BaseException:
        stop_s3_server(server)
        raise
    server.endpoint = f"http://{ready['addr']}"
    return server


def stop_s3_server(server: S3Server) -> None:
    """Kills the process (if still running) and removes its data directory."""
    if server.process.poll() is None:
        server.process.kill()
    server.process.wait()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One s3s-fs for the session (tests use a bucket each)."""
    server = start_s3_server()
    try:
        yield server
    finally:
        stop_s3_server(server)


@pytest.fixture
def dead_endpoint() -> Iterator[str]:
    """An address where nothing listens: a port bound but never listened
    on (connections are refused at once, and no other process can take the
    port meanwhile), as ``vsync_testcontainers::unreachable`` does."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def make_blob(
    endpoint: str,
    bucket: str,
    prefix: str,
    env: str = "dev",
    salt: str = "conformance-salt-0123",
    iterations: int = 1,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
) -> str:
    """A ``vsync-cfg-v1:`` blob (spec §1.6: base64url, no padding, of the
    gzip of the compact JSON) -- an input for the reader, which decodes it."""
    doc = {
        "v": 1,
        "endpoint": endpoint,
        "region": REGION,
        "bucket": bucket,
        "accessKeyId": access_key,
        "secretAccessKey": secret_key,
        "prefix": prefix,
        "env": env,
        "salt": salt,
        "iterations": iterations,
    }
    packed = gzip.compress(json.dumps(doc, separators=(",", ":")).encode())
    return "vsync-cfg-v1:" + base64.urlsafe_b64encode(packed).decode().rstrip("=")


def pushed_zip(files: Dict[str, bytes], env: str = "dev") -> bytes:
    """A zip of a vault folder laid out as ``vsync push`` writes it (entry
    names relative to the repo root: ``infra/vault/<env>/<name>``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, contents in files.items():
            archive.writestr(f"infra/vault/{env}/{name}", contents)
    return buffer.getvalue()


def cargo_target_dir() -> Path:
    explicit = os.environ.get("CARGO_TARGET_DIR")
    return Path(explicit) if explicit else Path.home() / ".cache" / "vsync-target"


@pytest.fixture(scope="session")
def vsync_bin() -> Path:
    """The CLI: ``$VSYNC_BIN``, else ``$CARGO_TARGET_DIR/debug/vsync``
    (``cargo build -p vsync``; scripts/test-python builds it)."""
    explicit = os.environ.get("VSYNC_BIN")
    path = Path(explicit) if explicit else cargo_target_dir() / "debug" / "vsync"
    if not path.is_file():
        pytest.fail(f"the vsync CLI is not at {path}; run `cargo build -p vsync` or set VSYNC_BIN")
    return path


# Variables of whoever runs the tests that must not reach the CLI (the
# credential and endpoint lists of cli/tests/common/mod.rs, by prefix).
_REMOVED_PREFIXES = (
    "AWS_", "AZURE_", "GOOGLE_", "GCE_", "GITHUB_", "GH_", "OP_", "VAULT_",
    "IDENTITY_", "VSYNC_", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
    "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
)


class Machine:
    """One developer machine running the vsync CLI: its own HOME (config,
    file keystore) and git checkout, like ``cli/tests/common/mod.rs``."""

    def __init__(self, vsync: Path, root: Path):
        self.vsync = vsync
        self.home = root / "home"
        self.checkout = self.home / "checkout"
        self.checkout.mkdir(parents=True)
        subprocess.run(["git", "init", "-q"], cwd=self.checkout, check=True)

    def environment(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_REMOVED_PREFIXES)}
        env.update(HOME=str(self.home), VSYNC_KEYSTORE="file", AWS_EC2_METADATA_DISABLED="true")
        env.update(extra or {})
        return env

    def run(self, *args: str, extra_env: Optional[Dict[str, str]] = None) -> str:
        result = subprocess.run(
            [str(self.vsync), *args],
            cwd=self.checkout,
            env=self.environment(extra_env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"vsync {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
        return result.stdout

    def init_on_bucket(self, server: S3Server, bucket: str, env: str = "dev", repo: str = "acme_web") -> None:
        self.run(
            "profile", "add", "harness",
            f"--endpoint={server.endpoint}",
            f"--region={REGION}",
            f"--bucket={bucket}",
            f"--access-key={ACCESS_KEY}",
            extra_env={"VSYNC_SECRET_ACCESS_KEY": SECRET_KEY},
        )
        self.run("init", env, "--profile=harness", f"--repo={repo}")

    def vault(self, env: str = "dev") -> Path:
        return self.checkout / "infra" / "vault" / env

    def key_file(self, env: str = "dev", repo: str = "acme_web") -> Path:
        return self.home / ".config" / "vsync" / ".keystore" / repo / f"{env}.key"


@pytest.fixture
def machine(vsync_bin: Path, tmp_path: Path) -> Machine:
    return Machine(vsync_bin, tmp_path)
