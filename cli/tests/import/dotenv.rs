//! dotenv: a `.env` handed over and another env's vault folder (dotenv), the
//! value-blind diff, the in-place rewrite of `.env.<env>` (comments and
//! order kept, 0600, backup first), a re-import that rewrites nothing, and
//! conflicts (exit 13) settled with `--prefer`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::Machine;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nq0B8mH+/abc=\n-----END PRIVATE KEY-----";

/// Values no output may ever show.
const SECRETS: [&str; 4] = [
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    "s3cret-db",
    "tok=en#1",
    "vault-side",
];

fn handover() -> String {
    format!(
        "# from the old CI\nDATABASE_URL=postgres://app:s3cret-db@db/app\nTLS_KEY=\"{PEM}\"\nAPI_TOKEN='tok=en#1'\n"
    )
}

const VAULT_ENV: &str =
    "# dev secrets — keep this comment\nLOCAL_ONLY=here\n\n# the token\nAPI_TOKEN='tok=en#1'\n";

async fn import(machine: &Machine, args: &[&str]) -> (Option<i32>, String) {
    let mut full = vec!["import", "dev", "--from", "dotenv"];
    full.extend_from_slice(args);
    crate::output_without(machine.command(&full), &SECRETS).await
}

#[tokio::test]
async fn a_handed_over_env_file_is_imported_in_place_and_a_reimport_writes_nothing() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let env_file = machine.vault().join(".env.dev");
    std::fs::write(&env_file, VAULT_ENV).unwrap();
    let file = machine.home.join("handover.env");
    std::fs::write(&file, handover()).unwrap();
    let set = format!("file={}", file.display());

    let (code, out) = import(&machine, &["--set", &set, "--dry-run"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("add       DATABASE_URL"), "{out}");
    assert!(out.contains("unchanged API_TOKEN"), "{out}");
    assert!(out.contains("only in the vault LOCAL_ONLY"), "{out}");
    assert!(out.contains("would write 2"), "{out}");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), VAULT_ENV);

    let (code, out) = import(&machine, &["--set", &set]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("encrypted backup"), "{out}");
    let written = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        written.starts_with(VAULT_ENV),
        "untouched lines moved:\n{written}"
    );
    assert_eq!(
        crate::sorted_entries(&written),
        [
            ("API_TOKEN".into(), "tok=en#1".into()),
            (
                "DATABASE_URL".into(),
                "postgres://app:s3cret-db@db/app".into()
            ),
            ("LOCAL_ONLY".into(), "here".into()),
            ("TLS_KEY".into(), PEM.into()),
        ]
    );
    let meta = std::fs::metadata(&env_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // Unchanged source: the file keeps its bytes and its mtime.
    let mtime = (meta.mtime(), meta.mtime_nsec());
    let (code, out) = import(&machine, &["--set", &set]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("wrote 0"), "{out}");
    let again = std::fs::metadata(&env_file).unwrap();
    assert_eq!((again.mtime(), again.mtime_nsec()), mtime);
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), written);

    // A change at the source only is taken; one in the vault only is kept.
    std::fs::write(&file, handover().replace("s3cret-db", "rotated-db")).unwrap();
    let vault_edit = written.replace("tok=en#1", "vault-side");
    std::fs::write(&env_file, &vault_edit).unwrap();
    let (code, out) = import(&machine, &["--set", &set]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("change    DATABASE_URL"), "{out}");
    assert!(
        out.contains("keep (changed in the vault since the last import) API_TOKEN"),
        "{out}"
    );
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert!(text.contains("rotated-db") && text.contains("vault-side"));
}

#[tokio::test]
async fn a_key_changed_on_both_sides_is_a_conflict_until_settled() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    let env_file = machine.vault().join(".env.dev");
    std::fs::write(&env_file, "DATABASE_URL=vault-side\n").unwrap();
    let file = machine.home.join("handover.env");
    std::fs::write(&file, handover()).unwrap();
    let set = format!("file={}", file.display());

    // Present on both sides with nothing recorded to tell who changed it.
    let (code, out) = import(&machine, &["--set", &set]).await;
    assert_eq!(code, Some(13), "{out}");
    assert!(
        out.contains("DATABASE_URL") && out.contains("--prefer"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "DATABASE_URL=vault-side\n",
        "nothing written"
    );
    let (code, out) = import(&machine, &["--set", &set, "--dry-run"]).await;
    assert_eq!(code, Some(13), "{out}");
    assert!(out.contains("CONFLICT"), "{out}");

    let (code, out) = import(&machine, &["--set", &set, "--prefer", "vault"]).await;
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(&env_file).unwrap();
    assert!(text.starts_with("DATABASE_URL=vault-side\n"), "{text}");
    // Settled: the next import keeps the vault's side without asking.
    let (code, out) = import(&machine, &["--set", &set]).await;
    assert_eq!(code, Some(0), "{out}");
}

#[tokio::test]
async fn another_envs_vault_folder_is_promoted_and_bad_settings_are_refused() {
    let machine = Machine::new();
    machine.ok(&["init", "dev", "--repo=acme_web"]).await;
    machine.ok(&["init", "staging", "--repo=acme_web"]).await;
    let staging = machine.checkout.join("infra/vault/staging/.env.staging");
    std::fs::write(&staging, handover()).unwrap();

    let (code, out) = import(&machine, &["--set", "env=staging", "--prefix", "API_"]).await;
    assert_eq!(code, Some(0), "{out}");
    let text = std::fs::read_to_string(machine.vault().join(".env.dev")).unwrap();
    assert_eq!(
        crate::sorted_entries(&text),
        [("TOKEN".into(), "tok=en#1".into())]
    );

    let (code, out) = import(&machine, &["--set", "colour=blue"]).await;
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("file, env"), "{out}");
    let output = machine
        .run(&["import", "dev", "--from", "github-actions"])
        .await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown import source"), "{stderr}");

    // A handed-over file the grammar cannot read is refused by line.
    let file = machine.home.join("broken.env");
    std::fs::write(&file, "A=1\nnot a line\n").unwrap();
    let (code, out) = import(&machine, &["--set", &format!("file={}", file.display())]).await;
    assert_eq!(code, Some(12), "{out}");
    assert!(out.contains("line 2"), "{out}");
}
