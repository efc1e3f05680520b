//! The shared Source suite against the dotenv source: a real file, written
//! the way the import writer writes one. A file makes no platform calls and
//! has no credentials, disabled state or binary values: those cases check
//! nothing here and run in full against every platform source.

mod suite;

use suite::dotenv::EnvFile;

source_suite!(EnvFile::new());
