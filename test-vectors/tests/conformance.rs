//! Runs every vector of the project's corpus and of the upstream corpus
//! (`../shared/vsync-conformance`, or `$VSYNC_UPSTREAM_CORPUS`) through the
//! real implementation, and proves the committed corpus is exactly what the
//! generator produces and matches upstream's bytes.
//!
//! A custom harness, so the per-corpus counts are always printed: every
//! vector is passed or failed; `"placeholder": true` vectors are listed as
//! pending with their description, unknown files are listed by name. A
//! missing upstream corpus is a NOTICE on a developer machine, but a failure
//! under `CI=true` or when `$VSYNC_UPSTREAM_CORPUS` names no directory. The
//! runtime-library categories run through `vsync-s3-client`'s public API.

use std::path::Path;
use std::process::ExitCode;

use serde_json::Value;
use vsync_crypto::config_blob::RuntimeConfig;
use vsync_test_vectors::check::{Outcome, check};
use vsync_test_vectors::corpus::{self, Category, Vector};
use vsync_test_vectors::{UpstreamCorpus, generate, own_corpus_dir, upstream_corpus_from_env};

/// Upstream's real corpus size (3 + 5 + 4 + 6 + 4 + 2 + 7).
const UPSTREAM_VECTOR_COUNT: usize = 31;

fn main() -> ExitCode {
    let mut failures = Vec::new();

    let own = run_corpus("project corpus", &own_corpus_dir(), &mut failures);
    if let Some(own) = &own
        && (!own.placeholders.is_empty() || !own.unknown_files.is_empty())
    {
        // The generator writes every file of the project corpus: anything
        // else in it is a leftover, not something pending.
        failures.push(format!(
            "project corpus holds {}; run `cargo run -p vsync-test-vectors -- generate`",
            own.not_run_summary(&own_corpus_dir())
        ));
    }
    check_no_drift(
        own.as_ref().map(|own| own.vectors.as_slice()),
        &mut failures,
    );

    match upstream_corpus_from_env() {
        Ok(UpstreamCorpus::Run(upstream_dir)) => {
            if let Some(upstream) = run_corpus("upstream corpus", &upstream_dir, &mut failures) {
                if upstream.vectors.len() != UPSTREAM_VECTOR_COUNT {
                    failures.push(format!(
                        "upstream corpus has {} vectors, expected {UPSTREAM_VECTOR_COUNT}",
                        upstream.vectors.len()
                    ));
                }
                cross_check_generator(&upstream.vectors, &mut failures);
            }
        }
        Ok(UpstreamCorpus::SkipWithNotice(upstream_dir)) => println!(
            "conformance: NOTICE upstream corpus not found at {} — upstream half skipped \
             (a failure under CI=true; set VSYNC_UPSTREAM_CORPUS to run it)",
            upstream_dir.display()
        ),
        Err(why) => failures.push(why),
    }

    if failures.is_empty() {
        println!("conformance: ok");
        ExitCode::SUCCESS
    } else {
        for failure in &failures {
            println!("conformance: FAILED {failure}");
        }
        println!("conformance: {} failure(s)", failures.len());
        ExitCode::FAILURE
    }
}

fn run_corpus(label: &str, dir: &Path, failures: &mut Vec<String>) -> Option<corpus::Corpus> {
    let dir = &dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let loaded = match corpus::load(dir) {
        Ok(loaded) => loaded,
        Err(err) => {
            failures.push(format!("{label}: {err}"));
            return None;
        }
    };
    let mut passed = 0;
    for vector in &loaded.vectors {
        match check(vector) {
            Outcome::Passed => passed += 1,
            Outcome::Failed(why) => failures.push(format!("{label}: {}: {why}", vector.id())),
        }
    }
    let failed = loaded.vectors.len() - passed;
    println!(
        "conformance: {label} at {}: {} vectors run — {passed} passed, {failed} failed; {}",
        dir.display(),
        loaded.vectors.len(),
        loaded.not_run_summary(dir),
    );
    Some(loaded)
}

/// The committed corpus must be byte-for-byte what the generator writes now.
fn check_no_drift(committed: Option<&[Vector]>, failures: &mut Vec<String>) {
    let Some(committed) = committed else { return };
    let generated = generate::corpus();
    if committed.len() != generated.len() {
        failures.push(format!(
            "project corpus holds {} vectors, the generator makes {}; run `cargo run -p vsync-test-vectors -- generate`",
            committed.len(),
            generated.len()
        ));
    }
    let dir = own_corpus_dir();
    for vector in &generated {
        let base = dir.join(vector.category.dir_name()).join(vector.name);
        let json = std::fs::read(base.with_extension("json")).unwrap_or_default();
        let bin = std::fs::read(base.with_extension("bin")).ok();
        if json != vector.json.as_bytes() || bin != vector.bin {
            failures.push(format!(
                "project corpus {}/{} differs from the generator's output; run `cargo run -p vsync-test-vectors -- generate`",
                vector.category, vector.name
            ));
        }
    }
}

/// The generator must reproduce upstream: same vectors, same JSON apart from
/// `generated_by`, same wire bytes — except the gzip inside config blobs,
/// whose DEFLATE stream depends on the encoder; those must decode the same.
fn cross_check_generator(upstream: &[Vector], failures: &mut Vec<String>) {
    let generated = generate::corpus();
    let mut byte_identical = 0;
    for theirs in upstream {
        let Some(ours) = generated
            .iter()
            .find(|ours| ours.category == theirs.category && ours.name == theirs.name)
        else {
            failures.push(format!("generator lacks upstream vector {}", theirs.id()));
            continue;
        };
        let mut our_doc: Value = serde_json::from_str(&ours.json).expect("generated JSON parses");
        let mut their_doc = theirs.doc.clone();
        our_doc["generated_by"] = Value::Null;
        their_doc["generated_by"] = Value::Null;
        if our_doc != their_doc {
            failures.push(format!(
                "generated {} JSON differs from upstream",
                theirs.id()
            ));
        }
        if ours.bin == theirs.bin {
            byte_identical += 1;
        } else if !same_config_blob(ours.bin.as_deref(), theirs.bin.as_deref(), theirs.category) {
            failures.push(format!(
                "generated {} .bin differs from upstream",
                theirs.id()
            ));
        }
    }
    println!(
        "conformance: generator vs upstream: {} vectors matched, {byte_identical} with byte-identical wire files",
        upstream.len()
    );
}

/// Two config-blob fixtures are equivalent when both decode to the same
/// config, or both fail with the same class.
fn same_config_blob(ours: Option<&[u8]>, theirs: Option<&[u8]>, category: Category) -> bool {
    if !matches!(category, Category::ConfigBlob | Category::ErrorTaxonomy) {
        return false;
    }
    let decode = |bin: Option<&[u8]>| {
        let text = std::str::from_utf8(bin?).ok()?;
        Some(RuntimeConfig::decode(text).map_err(|err| err.class()))
    };
    match (decode(ours), decode(theirs)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}
