//! The `op` CLI (1Password CLI 2), for machines without a Connect server: a
//! service account (`OP_SERVICE_ACCOUNT_TOKEN`) or the desktop app's
//! session (`op signin`).
//!
//! `op item list --vault=<v> [--tags=<t>] --format=json` lists, and `op item
//! get - --vault=<v> --format=json --reveal` reads up to 100 items per run,
//! their ids given on standard input as a JSON array of `{"id": …}` objects
//! (op's documented way to fetch many items in one call); op answers each
//! item as a JSON object, one after the other. `--reveal` makes sure
//! concealed fields carry their values. If an item was deleted since the
//! listing, op refuses the whole batch (`"…" isn't an item`): the batch is
//! then read one item at a time, leaving the deleted one out.
//!
//! op runs without a shell, one at a time (the desktop app may ask its
//! user to approve), within [`OP_TIMEOUT`], its output read up to
//! [`MAX_OUTPUT`]. Nothing secret is ever on its command line: the service
//! account token goes in its environment, item ids (not secret) on
//! standard input. Connect's variables are removed from its environment
//! (they would take precedence over the account chosen here), and so is
//! `OP_INCLUDE_ARCHIVE` (archived items are never imported).
//!
//! Service accounts have hourly read limits (1,000 reads an hour on Teams,
//! 10,000 on Business, each item one read): a large vault can spend the
//! hour's budget; op then fails with its rate-limit message, reported.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use vsync_crypto::Zeroizing;
use vsync_engine::sink::{RateBudget, SinkError, one_line_message};
use vsync_engine::source::{ListedSecret, ReadBatch, Source, SourceCapabilities};

use super::{FullItem, Scope, Summary, append_bounded, listed, malformed, parse, values_of};

/// How long one `op` run may take: long enough for the desktop app to ask
/// its user and for a batch of reads.
const OP_TIMEOUT: Duration = Duration::from_secs(120);
/// The most of op's standard output read: a listing of tens of thousands of
/// items, or a batch of large items.
const MAX_OUTPUT: usize = 32 * 1024 * 1024;
/// The most of op's standard error kept for its message.
const MAX_STDERR: usize = 64 * 1024;
/// Items read by one `op item get -`.
const BATCH: usize = 100;
/// op's words for an item that does not exist.
const NOT_AN_ITEM: &str = "isn't an item";
/// What to do when op refuses.
const SIGN_IN: &str = "sign in with `op signin` (the 1Password app) or set OP_SERVICE_ACCOUNT_TOKEN to a service account's token that can read the vault; for a Connect server set OP_CONNECT_HOST and OP_CONNECT_TOKEN instead";

/// The items of one vault, through `op`.
pub struct CliSource {
    program: PathBuf,
    service_account_token: Option<Zeroizing<String>>,
    vault: String,
    scope: Scope,
    /// Each listed title's item id, for the reads that follow.
    listing: Mutex<HashMap<String, String>>,
    caps: SourceCapabilities,
}

impl fmt::Debug for CliSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CliSource")
            .field("program", &self.program)
            .field("vault", &self.vault)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// What one `op` run left.
struct Ran {
    stdout: Zeroizing<Vec<u8>>,
    /// `None` on success, else how it failed: the exit status and op's
    /// first line on standard error.
    failure: Option<String>,
}

/// `op` in an absolute directory of `path` (`PATH`'s value).
pub fn find_op(path: &str) -> Option<PathBuf> {
    let name = if cfg!(windows) { "op.exe" } else { "op" };
    vsync_engine::environment::find_program(path, name)
}

impl CliSource {
    /// Reads `vault` (a name or an id) by running `program` as `op`, with
    /// the service account's token in its environment when one is given
    /// (else op uses the desktop app's session).
    pub fn new(
        program: impl Into<PathBuf>,
        service_account_token: Option<Zeroizing<String>>,
        vault: String,
        scope: Scope,
    ) -> Self {
        CliSource {
            program: program.into(),
            service_account_token,
            vault,
            scope,
            listing: Mutex::new(HashMap::new()),
            caps: SourceCapabilities {
                metadata: true,
                binary: false,
                batch: BATCH,
                rate: RateBudget::unpaced(1),
            },
        }
    }

    fn vault_flag(&self) -> String {
        format!("--vault={}", self.vault)
    }

    /// Runs op with `args`, `input` on its standard input (none otherwise).
    async fn run(&self, args: &[&str], input: Option<&[u8]>) -> Result<Ran, SinkError> {
        let program = self.program.display().to_string();
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(args)
            .env_remove("OP_CONNECT_HOST")
            .env_remove("OP_CONNECT_TOKEN")
            .env_remove("OP_INCLUDE_ARCHIVE")
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.service_account_token {
            command.env("OP_SERVICE_ACCOUNT_TOKEN", token.as_str());
        }
        let mut child = command.spawn().map_err(|error| {
            SinkError::Misconfigured(format!(
                "could not run the 1Password CLI ({program}): {error}; install it, or {SIGN_IN}"
            ))
        })?;
        let (stdin, Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SinkError::Misconfigured(format!(
                "could not read the output of {program}"
            )));
        };
        let run = async {
            let feed = async {
                if let (Some(mut stdin), Some(input)) = (stdin, input) {
                    // op closing its end early is its own failure to report.
                    let _ = stdin.write_all(input).await;
                }
            };
            let (_, out, err) = tokio::join!(feed, read_stdout(stdout), read_stderr(stderr));
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out?, err?))
        };
        // Too much output closes the pipe, which ends op; on a timeout,
        // dropping the child kills it.
        let ran = tokio::time::timeout(OP_TIMEOUT, run).await.map_err(|_| {
            SinkError::Rejected(format!(
                "`op {}` gave no answer within {}s; is it waiting for the 1Password app to be unlocked?",
                args.iter().take(2).copied().collect::<Vec<_>>().join(" "),
                OP_TIMEOUT.as_secs()
            ))
        })?;
        let (status, stdout, stderr) =
            ran.map_err(|error| SinkError::Unavailable(format!("running {program}: {error}")))?;
        let Some(stdout) = stdout else {
            return Err(SinkError::Rejected(format!(
                "{program} printed more than {MAX_OUTPUT} bytes, more than any vault listing or batch of items"
            )));
        };
        let failure = (!status.success()).then(|| {
            let code = status.code().map_or_else(
                || "killed by a signal".to_owned(),
                |code| format!("exit status {code}"),
            );
            match String::from_utf8_lossy(&stderr)
                .lines()
                .map(str::trim)
                .find(|line| !line.is_empty())
            {
                Some(line) => format!("{code}: {}", one_line_message(line)),
                None => code,
            }
        });
        Ok(Ran { stdout, failure })
    }

    /// The error for a failed run of `op <what>`.
    fn refused(&self, what: &str, failure: &str) -> SinkError {
        SinkError::Denied(format!(
            "`op {what}` for vault {:?} failed ({failure}); {SIGN_IN}",
            self.vault
        ))
    }

    /// Reads the items `ids` (by title) in one `op item get -`; `None`
    /// when op says one of them is not an item.
    async fn get_batch(
        &self,
        ids: &[(&str, &str)],
    ) -> Result<Option<Vec<(String, FullItem)>>, SinkError> {
        let input: Vec<serde_json::Value> = ids
            .iter()
            .map(|(_, id)| serde_json::json!({ "id": id }))
            .collect();
        let input = serde_json::to_vec(&input).expect("ids serialise");
        let vault = self.vault_flag();
        let ran = self
            .run(
                &["item", "get", "-", &vault, "--format=json", "--reveal"],
                Some(&input),
            )
            .await?;
        if let Some(failure) = ran.failure {
            if failure.contains(NOT_AN_ITEM) {
                return Ok(None);
            }
            return Err(self.refused("item get", &failure));
        }
        let mut items = Vec::with_capacity(ids.len());
        for item in serde_json::Deserializer::from_slice(&ran.stdout).into_iter::<FullItem>() {
            let item = item.map_err(|error| malformed("op item get's answer", &error))?;
            let Some((title, _)) = ids.iter().find(|(_, id)| *id == item.id) else {
                return Err(SinkError::Rejected(format!(
                    "op answered an item of vault {:?} it was not asked for",
                    self.vault
                )));
            };
            items.push(((*title).to_owned(), item));
        }
        Ok(Some(items))
    }

    /// Reads one item; `None` when op says it is not an item (deleted
    /// since the listing).
    async fn get_one(&self, title: &str, id: &str) -> Result<Option<FullItem>, SinkError> {
        let vault = self.vault_flag();
        let ran = self
            .run(
                &["item", "get", id, &vault, "--format=json", "--reveal"],
                None,
            )
            .await?;
        match ran.failure {
            Some(failure) if failure.contains(NOT_AN_ITEM) => Ok(None),
            Some(failure) => Err(self.refused("item get", &failure)),
            None => {
                let item: FullItem =
                    parse(&ran.stdout, &format!("op's answer for item {title:?}"))?;
                if item.id != id {
                    return Err(SinkError::Rejected(format!(
                        "op answered another item when asked for {title:?}"
                    )));
                }
                Ok(Some(item))
            }
        }
    }
}

/// Reads op's standard output up to [`MAX_OUTPUT`]; `None` when there was
/// more.
async fn read_stdout(
    mut reader: impl AsyncRead + Unpin,
) -> std::io::Result<Option<Zeroizing<Vec<u8>>>> {
    let mut output = Zeroizing::new(Vec::with_capacity(64 * 1024));
    let mut chunk = Zeroizing::new(vec![0u8; 64 * 1024]);
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            return Ok(Some(output));
        }
        if !append_bounded(&mut output, &chunk[..read], MAX_OUTPUT) {
            return Ok(None);
        }
    }
}

/// Reads op's standard error, keeping the first [`MAX_STDERR`] bytes and
/// draining the rest so op is never blocked writing it.
async fn read_stderr(mut reader: impl AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    (&mut reader)
        .take(MAX_STDERR as u64)
        .read_to_end(&mut kept)
        .await?;
    tokio::io::copy(&mut reader, &mut tokio::io::sink()).await?;
    Ok(kept)
}

#[async_trait::async_trait]
impl Source for CliSource {
    fn capabilities(&self) -> &SourceCapabilities {
        &self.caps
    }

    fn origin(&self) -> String {
        format!(
            "1password-cli:vault={}{}",
            self.vault,
            self.scope.origin_part()
        )
    }

    async fn list(&self) -> Result<Vec<ListedSecret>, SinkError> {
        let vault = self.vault_flag();
        let tags = match &self.scope {
            Scope::Tagged(tag) => Some(format!("--tags={tag}")),
            Scope::All | Scope::Titled(_) => None,
        };
        let mut args = vec!["item", "list", vault.as_str(), "--format=json"];
        args.extend(tags.as_deref());
        let ran = self.run(&args, None).await?;
        if let Some(failure) = ran.failure {
            return Err(self.refused("item list", &failure));
        }
        let items: Vec<Summary> = parse(&ran.stdout, "op item list's answer")?;
        let (secrets, ids) = listed(items, &self.scope, &self.vault)?;
        *self.listing.lock().unwrap_or_else(|e| e.into_inner()) = ids;
        Ok(secrets)
    }

    async fn read(&self, secrets: &[&ListedSecret]) -> Result<ReadBatch, SinkError> {
        let ids: Vec<(&str, String)> = {
            let listing = self.listing.lock().unwrap_or_else(|e| e.into_inner());
            secrets
                .iter()
                .map(|secret| {
                    listing
                        .get(&secret.name)
                        .map(|id| (secret.name.as_str(), id.clone()))
                        .ok_or_else(|| {
                            SinkError::Misconfigured(format!(
                                "item {:?} was not in this run's listing of vault {:?}",
                                secret.name, self.vault
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let ids: Vec<(&str, &str)> = ids
            .iter()
            .map(|(title, id)| (*title, id.as_str()))
            .collect();
        let items = match self.get_batch(&ids).await? {
            Some(items) => items,
            None => {
                let mut items = Vec::with_capacity(ids.len());
                for (title, id) in &ids {
                    if let Some(item) = self.get_one(title, id).await? {
                        items.push(((*title).to_owned(), item));
                    }
                }
                items
            }
        };
        let mut batch = ReadBatch::default();
        for (title, item) in items {
            if let Some(values) = values_of(item, &title)? {
                batch.values.extend(values);
            }
        }
        Ok(batch)
    }
}
