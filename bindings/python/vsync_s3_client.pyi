"""The vsync runtime reader: open a client-side encrypted vsync vault from an
S3-compatible bucket, then read its values from memory.

A binding of the Rust reader (``vsync-s3-client``): one implementation of the
crypto, the anti-rollback check and the fallback chain for every language.
"""

from types import TracebackType
from typing import Dict, Literal, Optional, Type

__version__: str

Source = Literal["vault", "env", "default", "missing"]

class VSyncError(Exception):
    """The root of every error vsync raises."""

class ConfigMissingError(VSyncError):
    """The config or passphrase is unset, unreadable, or not a ``vsync-cfg-v1:`` blob."""

class ConfigUnsupportedVersionError(VSyncError):
    """The config blob is of a version or shape this library does not read."""

class S3UnreachableError(VSyncError):
    """The bucket could not be read: network, DNS, TLS, or an S3 error other than 404."""

class ManifestNotFoundError(VSyncError):
    """The bucket answers, but no vault exists under the blob's prefix."""

class WrongPassphraseError(VSyncError):
    """The passphrase does not decrypt the bundle (or the bundle was tampered with)."""

class BundleCorruptError(VSyncError):
    """The bundle, its seal, its pointer or the config blob is damaged."""

class UnsupportedSpecVersionError(VSyncError):
    """The bundle is of a format version this library does not read."""

class Client:
    """An open vault: one env's decrypted values and assets, in memory.

    ``repr`` is ``<vsync:redacted gen=N env=E>``, never a value. After
    ``close()`` every accessor raises ``VSyncError``.
    """

    def get_env(self, key: str) -> Optional[str]:
        """The vault's value, else the process environment's (read now), else the default; ``None`` when nowhere."""
    def has_env(self, key: str) -> bool:
        """Whether the vault, the environment (an empty value counts) or the defaults hold ``key``."""
    def env_source(self, key: str) -> Source:
        """Which step of the fallback chain answers for ``key``. Safe to log."""
    def get_as_content(self, name: str) -> bytes:
        """The asset ``name`` (path relative to the vault folder), else the vault value ``name`` as UTF-8; ``KeyError`` when neither exists."""
    def generation(self) -> int:
        """The generation read at open (0 when the bucket has none). Safe to log."""
    def version(self) -> Optional[str]:
        """The timestamp of the bundle read at open; ``None`` for ``from_payload`` handles."""
    def remote_generation(self) -> int:
        """The bucket's current generation (one small read; releases the GIL)."""
    def has_new_version(self) -> bool:
        """Whether a push or rotation happened since open (releases the GIL)."""
    def close(self) -> None:
        """Wipes every value now. Idempotent."""
    def __enter__(self) -> "Client": ...
    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

def open(defaults: Optional[Dict[str, str]] = None) -> Client:
    """Opens the vault named by ``VSYNC_CONFIG`` / ``VSYNC_CONFIG_FILE`` with the
    passphrase in ``VSYNC_PASSPHRASE`` / ``VSYNC_PASSPHRASE_FILE``."""

def open_with(
    config: Optional[str] = None,
    passphrase: Optional[str] = None,
    defaults: Optional[Dict[str, str]] = None,
) -> Client:
    """Opens the vault named by the ``vsync-cfg-v1:`` blob ``config`` with ``passphrase``."""

def from_payload(
    env: str, payload: bytes, defaults: Optional[Dict[str, str]] = None
) -> Client:
    """A handle over an already decrypted bundle payload (zip or JSON), with no bucket behind it."""

def get_env(key: str) -> Optional[str]:
    """``get_env`` on a process-wide handle that ``open()`` makes on first use."""
