"""End to end: the vsync CLI pushes a vault to the harness S3 server
(s3s-fs), and the blob ``vsync runtime-token`` prints opens it from Python.

Each test uses its own bucket on the session's server (or its own server when
it kills it) and its own developer machine (HOME, checkout, file keystore).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Dict, Tuple

import pytest

import vsync_s3_client as vs
from conftest import Machine, S3Server, make_blob, start_s3_server, stop_s3_server

BINARY = bytes(range(256)) * 16
SERVICE_ACCOUNT = b'{"type":"service_account","private_key":"-----BEGIN-----"}'


def write_vault(machine: Machine, database_url: str) -> Dict[str, bytes]:
    files = {
        ".env.dev": f'DATABASE_URL={database_url}\nAPI_KEY="k-123"\n'.encode(),
        "gcp/service-account.json": SERVICE_ACCOUNT,
        "tls/server.p12": BINARY,
    }
    for name, data in files.items():
        path = machine.vault() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


_buckets = iter(range(1, 1_000_000))


def pushed(machine: Machine, server: S3Server, database_url: str) -> Tuple[str, str, str]:
    """Inits env dev on a fresh bucket, pushes once; returns (bucket, blob,
    passphrase)."""
    bucket = f"py-e2e-{next(_buckets)}"
    server.create_bucket(bucket)
    machine.init_on_bucket(server, bucket)
    write_vault(machine, database_url)
    machine.run("push", "dev")
    blob = machine.run("runtime-token", "--env=dev").strip()
    passphrase = machine.key_file().read_text().strip()
    return bucket, blob, passphrase


def bucket_generation(server: S3Server, bucket: str) -> int:
    """The generation the CLI wrote, read from the bucket directly."""
    meta = server.data_dir / bucket / "acme_web" / "dev" / "latest.meta"
    return json.loads(meta.read_text())["gen"]


def test_values_assets_and_generation(machine: Machine, s3_server: S3Server, monkeypatch):
    bucket, blob, passphrase = pushed(machine, s3_server, "postgres://app@db/first")
    monkeypatch.setenv("FROM_PROCESS_ENV", "env-value")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.delenv("NOWHERE", raising=False)

    with vs.open_with(config=blob, passphrase=passphrase, defaults={"LOG_LEVEL": "info"}) as vault:
        assert vault.get_env("DATABASE_URL") == "postgres://app@db/first"
        assert vault.get_env("API_KEY") == "k-123"
        assert vault.get_env("LOG_LEVEL") == "info"
        assert vault.get_env("FROM_PROCESS_ENV") == "env-value"
        assert vault.get_env("NOWHERE") is None
        sources = {k: vault.env_source(k) for k in ("API_KEY", "FROM_PROCESS_ENV", "LOG_LEVEL", "NOWHERE")}
        assert sources == {"API_KEY": "vault", "FROM_PROCESS_ENV": "env", "LOG_LEVEL": "default", "NOWHERE": "missing"}
        assert vault.has_env("LOG_LEVEL") and not vault.has_env("NOWHERE")

        assert vault.get_as_content("gcp/service-account.json") == SERVICE_ACCOUNT
        assert vault.get_as_content("tls/server.p12") == BINARY
        assert vault.get_as_content("API_KEY") == b"k-123"  # a vault value, as bytes
        with pytest.raises(KeyError):
            vault.get_as_content("tls/missing.pem")
        with pytest.raises(KeyError):
            vault.get_as_content("FROM_PROCESS_ENV")  # never the environment

        generation = bucket_generation(s3_server, bucket)
        assert vault.generation() == generation
        assert vault.remote_generation() == generation
        assert vault.version() is not None and len(vault.version()) == len("YYYYMMDD-HHmmss")
        assert not vault.has_new_version()

        text = repr(vault)
        assert text == f"<vsync:redacted gen={generation} env=dev>"
        assert str(vault) == text
        for secret in ("postgres://", "k-123", passphrase):
            assert secret not in text

    # Leaving the block closed it.
    assert "closed" in repr(vault)
    with pytest.raises(vs.VSyncError, match="closed"):
        vault.get_env("DATABASE_URL")
    vault.close()  # idempotent


def test_has_new_version_after_a_second_push(machine: Machine, s3_server: S3Server):
    bucket, blob, passphrase = pushed(machine, s3_server, "postgres://app@db/first")
    vault = vs.open_with(config=blob, passphrase=passphrase)
    first = vault.generation()
    assert not vault.has_new_version()

    time.sleep(1.1)  # version timestamps have one-second resolution
    write_vault(machine, "postgres://app@db/second")
    machine.run("push", "dev")

    assert vault.has_new_version()
    assert vault.remote_generation() == bucket_generation(s3_server, bucket) == first + 1
    assert vault.generation() == first
    assert vault.get_env("DATABASE_URL") == "postgres://app@db/first", "the handle keeps its values"
    vault.close()

    with vs.open_with(config=blob, passphrase=passphrase) as fresh:
        assert fresh.get_env("DATABASE_URL") == "postgres://app@db/second"
        assert fresh.generation() == first + 1
        assert not fresh.has_new_version()


def test_open_reads_the_file_forms(machine: Machine, s3_server: S3Server, monkeypatch, tmp_path: Path):
    _, blob, passphrase = pushed(machine, s3_server, "postgres://from-files")
    config_file = tmp_path / "config"
    config_file.write_text(blob + "\n")
    config_file.chmod(0o600)
    pass_file = tmp_path / "passphrase"
    pass_file.write_text(passphrase + " \r\n")  # trailing whitespace is stripped
    pass_file.chmod(0o600)
    monkeypatch.setenv("VSYNC_CONFIG", "not-a-blob")  # the _FILE form wins
    monkeypatch.setenv("VSYNC_CONFIG_FILE", str(config_file))
    monkeypatch.delenv("VSYNC_PASSPHRASE", raising=False)
    monkeypatch.setenv("VSYNC_PASSPHRASE_FILE", str(pass_file))

    with vs.open(defaults={"PORT": "8080"}) as vault:
        assert vault.get_env("DATABASE_URL") == "postgres://from-files"
        assert vault.get_env("PORT") == "8080"

    pass_file.chmod(0o646)  # world-writable: anyone could swap it
    with pytest.raises(vs.ConfigMissingError) as err:
        vs.open()
    assert "world-writable" in str(err.value)
    assert passphrase not in str(err.value)


def test_module_level_get_env_opens_once(machine: Machine, s3_server: S3Server, monkeypatch):
    _, blob, passphrase = pushed(machine, s3_server, "postgres://singleton")
    for name in ("VSYNC_CONFIG_FILE", "VSYNC_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VSYNC_CONFIG", blob)
    monkeypatch.setenv("VSYNC_PASSPHRASE", passphrase)
    assert vs.get_env("DATABASE_URL") == "postgres://singleton"
    # Opened once: later calls answer from the same handle even when the
    # bootstrap variables are gone.
    monkeypatch.delenv("VSYNC_CONFIG")
    assert vs.get_env("API_KEY") == "k-123"


def test_wrong_passphrase(machine: Machine, s3_server: S3Server):
    _, blob, passphrase = pushed(machine, s3_server, "postgres://x")
    wrong = "not-" + passphrase
    with pytest.raises(vs.WrongPassphraseError) as err:
        vs.open_with(config=blob, passphrase=wrong)
    assert isinstance(err.value, vs.VSyncError)
    assert wrong not in str(err.value) and passphrase not in str(err.value)


def test_dead_endpoint(machine: Machine):
    """The server the blob names goes away: S3UnreachableError."""
    server = start_s3_server()
    try:
        _, blob, passphrase = pushed(machine, server, "postgres://x")
        with vs.open_with(config=blob, passphrase=passphrase) as vault:
            server.process.kill()
            server.process.wait()
            with pytest.raises(vs.S3UnreachableError):
                vault.has_new_version()
        with pytest.raises(vs.S3UnreachableError):
            vs.open_with(config=blob, passphrase=passphrase)
    finally:
        stop_s3_server(server)


def test_missing_manifest(machine: Machine, s3_server: S3Server):
    """A blob minted before the first push: the bucket answers, no vault."""
    bucket = "py-e2e-never-pushed"
    s3_server.create_bucket(bucket)
    machine.init_on_bucket(s3_server, bucket)
    blob = machine.run("runtime-token", "--env=dev").strip()
    passphrase = machine.key_file().read_text().strip()
    with pytest.raises(vs.ManifestNotFoundError, match="vsync push dev"):
        vs.open_with(config=blob, passphrase=passphrase)


def test_open_releases_the_gil(dead_endpoint: str):
    """While open_with fetches (here: connection attempts and the SDK's
    retry back-off against an endpoint that refuses them, about 1.5 s) and
    derives the key (3,000,000 PBKDF2 iterations), other Python threads keep
    running: this thread, spinning on the clock, never stalls for a large
    part of the call. Holding the GIL would stall it for the whole native
    call. (Counting ticks would not tell: the GIL switches at the call's
    edges alone give thousands; and a long call keeps the check clear of a
    loaded machine's scheduling hiccups.)"""
    blob = make_blob(dead_endpoint, "gil-check", "gil/dev/", iterations=3_000_000)
    window = {}

    def worker():
        window["start"] = time.perf_counter()
        with pytest.raises(vs.S3UnreachableError):
            vs.open_with(config=blob, passphrase="p")
        window["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    ticks = [time.perf_counter()]
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    duration = window["end"] - window["start"]
    longest_stall = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert duration > 0.3
    assert longest_stall < duration / 2, (
        f"this thread stalled {longest_stall * 1000:.0f} ms during a {duration * 1000:.0f} ms open"
    )


def test_errors_are_classes_under_vsyncerror():
    names = [
        "ConfigMissingError",
        "ConfigUnsupportedVersionError",
        "S3UnreachableError",
        "ManifestNotFoundError",
        "WrongPassphraseError",
        "BundleCorruptError",
        "UnsupportedSpecVersionError",
    ]
    for name in names:
        cls = getattr(vs, name)
        assert cls.__name__ == name and cls.__module__ == "vsync_s3_client"
        assert issubclass(cls, vs.VSyncError) and issubclass(cls, Exception)
    assert vs.VSyncError.__bases__ == (Exception,)
    with pytest.raises(vs.ConfigMissingError):
        vs.open_with(config="", passphrase="p")
    with pytest.raises(vs.ConfigMissingError):
        vs.open_with(config="vsync-cfg-v1:x", passphrase=None)


def test_payload_handle_has_no_bucket():
    vault = vs.from_payload("dev", b'{"A":"a"}')
    assert vault.generation() == 0 and vault.version() is None
    with pytest.raises(vs.VSyncError) as err:
        vault.remote_generation()
    assert type(err.value) is vs.VSyncError  # the root class, as upstream
    with pytest.raises(vs.BundleCorruptError):
        vs.from_payload("dev", b"neither zip nor json")
