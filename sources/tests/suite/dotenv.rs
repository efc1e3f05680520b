//! The dotenv harness: a real file, written the way the import writer
//! writes one. It makes no platform calls (`faults` is `None`).

use std::path::PathBuf;
use std::sync::Mutex;

use vsync_engine::dotenv;
use vsync_engine::source::Source;
use vsync_sources::dotenv::DotenvSource;
use vsync_testcontainers::faults::Faults;

use super::Harness;

pub struct EnvFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
    entries: Mutex<Vec<(String, String)>>,
}

impl EnvFile {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env.staging");
        EnvFile {
            _dir: dir,
            path,
            entries: Mutex::default(),
        }
    }

    fn write(&self) {
        let entries = self.entries.lock().unwrap();
        let text = dotenv::render(entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        std::fs::write(&self.path, format!("# handed over\n\n{}", text.as_str())).unwrap();
    }
}

#[async_trait::async_trait]
impl Harness for EnvFile {
    fn source(&self) -> Box<dyn Source> {
        Box::new(DotenvSource::new(&self.path))
    }

    fn source_with_bad_credentials(&self) -> Option<Box<dyn Source>> {
        None
    }

    async fn put(&self, key: &str, value: &[u8]) {
        self.put_many(&[(key.to_owned(), String::from_utf8(value.to_vec()).unwrap())])
            .await;
    }

    async fn put_many(&self, secrets: &[(String, String)]) {
        {
            let mut entries = self.entries.lock().unwrap();
            for (key, value) in secrets {
                entries.retain(|(k, _)| k != key);
                entries.push((key.clone(), value.clone()));
            }
        }
        self.write();
    }

    async fn delete(&self, key: &str) {
        self.entries.lock().unwrap().retain(|(k, _)| k != key);
        self.write();
    }

    async fn disable(&self, _key: &str) -> bool {
        false
    }

    fn faults(&self) -> Option<&Faults> {
        None
    }

    fn page_size(&self) -> usize {
        usize::MAX
    }
}
