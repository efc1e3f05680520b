//! `vsync_s3_client` for Python: the vsync runtime reader, as an abi3
//! extension module (CPython ≥ 3.9, one wheel per platform) built with PyO3
//! and maturin.
//!
//! Applications call `open()` at boot (the `VSYNC_CONFIG` /
//! `VSYNC_PASSPHRASE` variables, or their `_FILE` forms) or
//! `open_with(config=…, passphrase=…)`, then read values from memory with
//! the vault → process env → defaults → missing fallback chain: `get_env`,
//! `has_env`, `env_source`, `get_as_content`, `generation`, and ask the
//! bucket with `remote_generation` / `has_new_version`. The names, the
//! behaviour and the seven error classes under `VSyncError` are upstream's
//! (spec v0.12 §6).
//!
//! This crate only wraps the Rust reader `vsync-s3-client` (its
//! [`vsync_s3_client::blocking`] API): the `_FILE` bootstrap rules, the key
//! derivation, the decryption, the anti-rollback check, the payload
//! formats and the fallback chain are all that crate's, so every language
//! binding reads a vault exactly the same way. What is added here is the
//! Python surface: the exception classes, the context manager, the
//! redacted `repr`, the module-level `get_env` singleton, and releasing the
//! GIL (`Python::detach`) while a call fetches from the bucket or derives
//! the key, so other Python threads run meanwhile.
//!
//! Secrets: values stay in the Rust client's wiping buffers; an accessor
//! copies one value straight into the Python `str` / `bytes` it returns
//! (Python's own objects cannot be wiped), the config and passphrase passed
//! to `open_with` are wiped after use, and error messages never carry a
//! value, the passphrase, the access keys or the salt. `close()` (or
//! leaving the `with` block) wipes every value at once.
//!
//! Unsafe code: none is written here, and `forbid(unsafe_code)` (the
//! workspace lint, repeated below) holds: the `unsafe` that PyO3's macros
//! expand to (the FFI glue of `#[pymodule]`, `#[pyclass]`,
//! `create_exception!`) is generated with the macros' own spans, which the
//! lint does not report. Should a PyO3 upgrade change that, the lint has to
//! go for this crate only, and no hand-written `unsafe` may follow it.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyKeyError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString};
use vsync_s3_client::{Error, ErrorClass, Options, blocking};
use zeroize::Zeroizing;

create_exception!(
    vsync_s3_client,
    VSyncError,
    PyException,
    "The root of every error vsync raises."
);
create_exception!(
    vsync_s3_client,
    ConfigMissingError,
    VSyncError,
    "The config or passphrase is unset, unreadable, or not a `vsync-cfg-v1:` blob."
);
create_exception!(
    vsync_s3_client,
    ConfigUnsupportedVersionError,
    VSyncError,
    "The config blob is of a version or shape this library does not read."
);
create_exception!(
    vsync_s3_client,
    S3UnreachableError,
    VSyncError,
    "The bucket could not be read: network, DNS, TLS, or an S3 error other than 404."
);
create_exception!(
    vsync_s3_client,
    ManifestNotFoundError,
    VSyncError,
    "The bucket answers, but no vault exists under the blob's prefix."
);
create_exception!(
    vsync_s3_client,
    WrongPassphraseError,
    VSyncError,
    "The passphrase does not decrypt the bundle (or the bundle was tampered with)."
);
create_exception!(
    vsync_s3_client,
    BundleCorruptError,
    VSyncError,
    "The bundle, its seal, its pointer or the config blob is damaged."
);
create_exception!(
    vsync_s3_client,
    UnsupportedSpecVersionError,
    VSyncError,
    "The bundle is of a format version this library does not read."
);

/// The Python exception for a reader error: its taxonomy class, with the
/// reader's message (which names the fix, never a secret).
fn to_py_err(err: Error) -> PyErr {
    let message = err.to_string();
    match err.class() {
        Some(ErrorClass::ConfigMissing) => ConfigMissingError::new_err(message),
        Some(ErrorClass::ConfigUnsupportedVersion) => {
            ConfigUnsupportedVersionError::new_err(message)
        }
        Some(ErrorClass::S3Unreachable) => S3UnreachableError::new_err(message),
        Some(ErrorClass::ManifestNotFound) => ManifestNotFoundError::new_err(message),
        Some(ErrorClass::WrongPassphrase) => WrongPassphraseError::new_err(message),
        Some(ErrorClass::BundleCorrupt) => BundleCorruptError::new_err(message),
        Some(ErrorClass::UnsupportedSpecVersion) => UnsupportedSpecVersionError::new_err(message),
        // Outside the taxonomy (a handle with no bucket asked about one):
        // the root class, as upstream raises it.
        None => VSyncError::new_err(message),
    }
}

/// What a handle wraps: a vault read from a bucket, or one built from an
/// already decrypted payload (no bucket behind it).
enum Inner {
    Bucket(blocking::Client),
    Payload(vsync_s3_client::Client),
}

impl Inner {
    fn client(&self) -> &vsync_s3_client::Client {
        match self {
            Inner::Bucket(client) => client,
            Inner::Payload(client) => client,
        }
    }

    /// Runs with the GIL released.
    fn remote_generation(&self) -> Result<u64, Error> {
        match self {
            Inner::Bucket(client) => client.remote_generation(),
            Inner::Payload(client) => no_bucket(client.remote_generation()),
        }
    }

    /// Runs with the GIL released.
    fn has_new_version(&self) -> Result<bool, Error> {
        match self {
            Inner::Bucket(client) => client.has_new_version(),
            Inner::Payload(client) => no_bucket(client.has_new_version()),
        }
    }
}

/// Drives a remote query of a payload handle, which the Rust client answers
/// with its "no bucket" error at once, without I/O.
fn no_bucket<T>(query: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime without drivers builds")
        .block_on(query)
}

/// An open vault: one env's decrypted values and assets, in memory.
///
/// Made by `open()`, `open_with()` or `from_payload()`. Usable as a context
/// manager (`with vsync_s3_client.open() as vault:`), which closes it on
/// exit. Its `repr` is `<vsync:redacted gen=N env=E>`, never a value.
#[pyclass(module = "vsync_s3_client", name = "Client", frozen)]
struct PyClient {
    /// `None` once closed. The `Arc` lets a call that released the GIL keep
    /// the vault alive while another thread closes the handle; the values
    /// are wiped when the last reference goes.
    inner: Mutex<Option<Arc<Inner>>>,
    /// The redacted description, kept for `repr` after `close`.
    description: String,
}

impl PyClient {
    fn new(inner: Inner) -> Self {
        let description = format!("{:?}", inner.client());
        PyClient {
            inner: Mutex::new(Some(Arc::new(inner))),
            description,
        }
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<Inner>>> {
        // A panic never happens while the lock is held (only a clone or a
        // take does); recover rather than poison every later call.
        self.inner.lock().unwrap_or_else(|err| err.into_inner())
    }

    /// The open vault, or `VSyncError` when the handle is closed.
    fn open_inner(&self) -> PyResult<Arc<Inner>> {
        self.slot().as_ref().map(Arc::clone).ok_or_else(|| {
            VSyncError::new_err("vsync: handle is closed — open the vault again to read from it")
        })
    }
}

#[pymethods]
impl PyClient {
    /// The value of `key` from the vault, else the process environment (read
    /// now), else the defaults; `None` when it is nowhere.
    fn get_env<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyString>>> {
        let inner = self.open_inner()?;
        Ok(inner
            .client()
            .get_env(key)
            .map(|value| PyString::new(py, value.expose())))
    }

    /// Whether `key` is in the vault, the environment (an empty value counts)
    /// or the defaults.
    fn has_env(&self, key: &str) -> PyResult<bool> {
        Ok(self.open_inner()?.client().has_env(key))
    }

    /// Which step of the fallback chain answers for `key`: `"vault"`,
    /// `"env"`, `"default"` or `"missing"`. Safe to log.
    fn env_source(&self, key: &str) -> PyResult<&'static str> {
        Ok(self.open_inner()?.client().env_source(key).as_str())
    }

    /// The bytes of the asset `name` (its path relative to the vault folder,
    /// e.g. `tls/server.crt`), else the UTF-8 bytes of the vault value
    /// `name`; `KeyError` when neither exists.
    fn get_as_content<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.open_inner()?;
        match inner.client().get_as_content(name) {
            Some(content) => Ok(PyBytes::new(py, content.expose())),
            None => Err(PyKeyError::new_err(name.to_owned())),
        }
    }

    /// The generation read at open (`latest.meta`'s `gen`; 0 when absent).
    /// Safe to log.
    fn generation(&self) -> PyResult<u64> {
        Ok(self.open_inner()?.client().generation())
    }

    /// The timestamp (`YYYYMMDD-HHmmss`) of the bundle read at open; `None`
    /// for a handle built by `from_payload`. Safe to log.
    fn version(&self) -> PyResult<Option<String>> {
        Ok(self.open_inner()?.client().version().map(str::to_owned))
    }

    /// The bucket's current generation: one small read of the pointer, with
    /// the GIL released.
    fn remote_generation(&self, py: Python<'_>) -> PyResult<u64> {
        let inner = self.open_inner()?;
        py.detach(move || inner.remote_generation())
            .map_err(to_py_err)
    }

    /// Whether anything was pushed or rotated since this handle was opened
    /// (a newer version or a higher generation in the bucket), with the GIL
    /// released.
    fn has_new_version(&self, py: Python<'_>) -> PyResult<bool> {
        let inner = self.open_inner()?;
        py.detach(move || inner.has_new_version())
            .map_err(to_py_err)
    }

    /// Wipes every value now. Idempotent; accessors raise `VSyncError`
    /// afterwards.
    fn close(&self) {
        let taken = self.slot().take();
        drop(taken);
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type=None, _exc_value=None, _traceback=None))]
    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc_value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    fn __repr__(&self) -> String {
        if self.slot().is_some() {
            self.description.clone()
        } else {
            format!("{} (closed)", self.description)
        }
    }

    fn __str__(&self) -> String {
        self.__repr__()
    }
}

/// The options of an open call: the defaults at the bottom of the chain.
fn options(defaults: Option<HashMap<String, String>>) -> Options {
    // The values move into the client's wiping buffers.
    Options::new().defaults(defaults.unwrap_or_default())
}

/// Opens the vault named by `VSYNC_CONFIG` / `VSYNC_CONFIG_FILE` with the
/// passphrase in `VSYNC_PASSPHRASE` / `VSYNC_PASSPHRASE_FILE`.
#[pyfunction]
#[pyo3(signature = (defaults=None))]
fn open(py: Python<'_>, defaults: Option<HashMap<String, String>>) -> PyResult<PyClient> {
    let options = options(defaults);
    let client = py
        .detach(move || blocking::open(options))
        .map_err(to_py_err)?;
    Ok(PyClient::new(Inner::Bucket(client)))
}

/// Opens the vault named by the `vsync-cfg-v1:` blob `config` with
/// `passphrase` (both verbatim).
#[pyfunction]
#[pyo3(signature = (config=None, passphrase=None, defaults=None))]
fn open_with(
    py: Python<'_>,
    config: Option<String>,
    passphrase: Option<String>,
    defaults: Option<HashMap<String, String>>,
) -> PyResult<PyClient> {
    // None is refused like an empty string, by the Rust client
    // (ConfigMissingError); both copies are wiped after the call.
    let config = Zeroizing::new(config.unwrap_or_default());
    let passphrase = Zeroizing::new(passphrase.unwrap_or_default());
    let options = options(defaults);
    let client = py
        .detach(move || blocking::open_with(&config, &passphrase, options))
        .map_err(to_py_err)?;
    Ok(PyClient::new(Inner::Bucket(client)))
}

/// Builds a handle from an already decrypted bundle payload (a zip of the
/// vault folder as `vsync push` writes it, or JSON `{kv, assets}` / flat),
/// with no bucket behind it: generation 0, and `remote_generation` /
/// `has_new_version` raise `VSyncError`.
#[pyfunction]
#[pyo3(signature = (env, payload, defaults=None))]
fn from_payload(
    env: &str,
    payload: &[u8],
    defaults: Option<HashMap<String, String>>,
) -> PyResult<PyClient> {
    let client = vsync_s3_client::Client::from_payload(env, payload, options(defaults))
        .map_err(to_py_err)?;
    Ok(PyClient::new(Inner::Payload(client)))
}

/// The handle behind the module-level `get_env`, opened on first use.
static SINGLETON: PyOnceLock<Py<PyClient>> = PyOnceLock::new();

/// The module-level shortcut: `get_env(key)` on a handle that `open()`
/// makes on the first call (from the `VSYNC_*` variables) and keeps for the
/// life of the process. A failed open raises and is retried next call.
#[pyfunction(name = "get_env")]
fn module_get_env<'py>(py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyString>>> {
    let handle = SINGLETON.get_or_try_init(py, || Py::new(py, open(py, None)?))?;
    handle.get().get_env(py, key)
}

/// The vsync runtime reader (the Rust `vsync-s3-client`, bound with PyO3).
#[pymodule(name = "vsync_s3_client")]
fn python_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyClient>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(open_with, m)?)?;
    m.add_function(wrap_pyfunction!(from_payload, m)?)?;
    m.add_function(wrap_pyfunction!(module_get_env, m)?)?;
    m.add("VSyncError", py.get_type::<VSyncError>())?;
    m.add("ConfigMissingError", py.get_type::<ConfigMissingError>())?;
    m.add(
        "ConfigUnsupportedVersionError",
        py.get_type::<ConfigUnsupportedVersionError>(),
    )?;
    m.add("S3UnreachableError", py.get_type::<S3UnreachableError>())?;
    m.add(
        "ManifestNotFoundError",
        py.get_type::<ManifestNotFoundError>(),
    )?;
    m.add(
        "WrongPassphraseError",
        py.get_type::<WrongPassphraseError>(),
    )?;
    m.add("BundleCorruptError", py.get_type::<BundleCorruptError>())?;
    m.add(
        "UnsupportedSpecVersionError",
        py.get_type::<UnsupportedSpecVersionError>(),
    )?;
    Ok(())
}
