use std::path::Path;

use serde_json::json;

use super::*;

fn problems(text: &str) -> Vec<Problem> {
    problems_with(text, &[])
}

/// Overrides from `(variable, value)` pairs.
fn overrides(pairs: &[(&str, &str)]) -> Vec<Override> {
    pairs
        .iter()
        .map(|(variable, value)| Override {
            variable: variable.to_string(),
            value: value.to_string(),
        })
        .collect()
}

fn problems_with(text: &str, pairs: &[(&str, &str)]) -> Vec<Problem> {
    match parse(text, Path::new("vsync.toml"), &overrides(pairs)) {
        Ok(_) => Vec::new(),
        Err(PlanError::Problems { problems, .. }) => problems,
        Err(other) => panic!("{other}"),
    }
}

/// The line and column of a problem in the file.
fn at(problem: &Problem) -> (usize, usize) {
    match &problem.place {
        Place::File { line, column } => (*line, *column),
        Place::Variable(variable) => panic!("{variable}: {}", problem.message),
    }
}

const GOOD: &str = r#"version = 1

[[env.dev.import]]
from = "aws"
settings = { region = "eu-west-1" }
include = ["API_*"]
prefer = "source"

[[env.dev.sync]]
to = "gh"
settings = { repo = "acme/web" }
prune = true
max-deletes = 5
on-failure = "continue"

[[env.prod.sync]]
to = "github-actions"
settings = { repo = "acme/web" }
"#;

#[test]
fn a_good_file_reads_with_its_defaults() {
    let plan = parse(GOOD, Path::new("vsync.toml"), &[]).unwrap();
    assert_eq!(plan.env.len(), 2);
    let dev = plan
        .env
        .iter()
        .find(|(name, _)| name.get_ref() == "dev")
        .unwrap()
        .1;
    assert_eq!(dev.import[0].prefer, Some(Prefer::Source));
    assert_eq!(dev.sync[0].max_deletes, 5);
    assert_eq!(dev.sync[0].on_failure, OnFailure::Continue);
    let prod = plan
        .env
        .iter()
        .find(|(name, _)| name.get_ref() == "prod")
        .unwrap()
        .1;
    assert_eq!(prod.sync[0].max_deletes, DEFAULT_MAX_DELETES);
    assert_eq!(prod.sync[0].on_failure, OnFailure::FailClosed);
    assert!(!prod.sync[0].prune);
}

#[test]
fn a_misspelt_key_points_at_its_line_and_column_with_the_fix() {
    let text = GOOD.replace("max-deletes = 5", "max-delete = 5");
    let found = problems(&text);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(at(&found[0]), (13, 1));
    assert!(
        found[0].message.contains("did you mean `max-deletes`?"),
        "{}",
        found[0].message
    );
    let text = GOOD.replace("on-failure = \"continue\"", "on-failure = \"continu\"");
    let found = problems(&text);
    assert_eq!(at(&found[0]).0, 14);
    assert!(
        found[0].message.contains("did you mean `continue`?"),
        "{found:?}"
    );
}

#[test]
fn every_semantic_problem_is_reported_at_its_place() {
    let text = r#"version = 2

[[env.dev.import]]
from = "awss"
include = ["[oops"]

[[env.dev.sync]]
to = "gh"
settings = { rpo = "acme/web" }

[[env.dev.sync]]
to = "gh"
settings = { repo = true }

[[env."a/b".sync]]
to = "gitlab"
"#;
    let found = problems(text);
    let places: Vec<(usize, usize)> = found.iter().map(at).collect();
    assert_eq!(
        places,
        [
            (1, 11),
            (4, 8),
            (5, 12),
            (9, 14),
            (12, 6),
            (13, 21),
            (15, 7),
            (16, 6)
        ],
        "{found:#?}"
    );
    let text_of = |line: usize| {
        found
            .iter()
            .find(|p| at(p).0 == line)
            .map(|p| p.message.as_str())
            .unwrap()
    };
    assert!(text_of(1).contains("write `version = 1`"));
    assert!(text_of(4).contains("did you mean `aws`?"), "{}", text_of(4));
    assert!(text_of(5).contains("not a glob"));
    assert!(
        text_of(9).contains("did you mean `repo`?"),
        "{}",
        text_of(9)
    );
    assert!(text_of(12).contains("syncs to gh twice"));
    assert!(text_of(13).contains("takes a string"));
    assert!(text_of(15).contains("cannot be an env name"));
    assert!(text_of(16).contains("unknown sync target `gitlab`"));
}

#[test]
fn routing_the_platform_refuses_is_a_problem_at_its_target() {
    // GitHub's scope is one of three words.
    let found = problems(
        "version = 1\n[[env.dev.sync]]\nto = \"gh\"\nsettings = { repo = \"a/b\", scope = \"everywhere\" }\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(at(&found[0]), (3, 6));
    assert!(found[0].message.starts_with("gh: "), "{}", found[0].message);
    assert!(
        found[0].message.contains("everywhere"),
        "{}",
        found[0].message
    );
}

#[test]
fn a_file_that_is_not_toml_says_where() {
    let found = problems("version = 1\n[[env.dev.sync]\n");
    assert_eq!(found.len(), 1);
    assert_eq!(at(&found[0]).0, 2);
}

#[test]
fn an_oversized_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, " ".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
    assert!(matches!(load(&path, &[]), Err(PlanError::TooLarge { .. })));
}

#[test]
fn a_symlink_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("credentials");
    std::fs::write(
        &elsewhere,
        "[default]\naws_secret_access_key = \"wJalrXUtnFEMI\"\n",
    )
    .unwrap();
    let link = dir.path().join(FILE_NAME);
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let err = load(&link, &[]).unwrap_err();
    assert!(matches!(err, PlanError::NotAFile { .. }), "{err}");
    assert!(!err.to_string().contains("wJalrXUtnFEMI"));
    assert!(matches!(
        load(dir.path(), &[]),
        Err(PlanError::NotAFile { .. })
    ));
}

#[test]
fn init_writes_a_file_that_reads_back_as_the_saved_routing() {
    let saved = [
        SavedRouting {
            env: "dev".into(),
            targets: vec![(
                "gh".into(),
                json!({"repo": "acme/web"}).as_object().unwrap().clone(),
            )],
        },
        SavedRouting {
            env: "prod.eu".into(),
            targets: vec![(
                "vault".into(),
                json!({"addr": "https://vault.example.com", "mount": "secret", "secretPath": "web"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )],
        },
    ];
    let text = render(&saved);
    let plan =
        parse(&text, Path::new("vsync.toml"), &[]).unwrap_or_else(|err| panic!("{err}\n{text}"));
    for routing in &saved {
        let env = plan
            .env
            .iter()
            .find(|(name, _)| *name.get_ref() == routing.env)
            .unwrap()
            .1;
        assert_eq!(env.sync.len(), 1);
        assert_eq!(env.sync[0].to.get_ref(), &routing.targets[0].0);
        assert_eq!(check::routing(&env.sync[0].settings), routing.targets[0].1);
    }
}

#[test]
fn the_schema_lists_every_platforms_settings() {
    let schema = schema();
    let sync = &schema["$defs"]["sync"];
    let targets = sync["properties"]["to"]["enum"].as_array().unwrap();
    assert!(targets.contains(&json!("gh")) && targets.contains(&json!("vault")));
    let github = sync["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["if"]["properties"]["to"]["enum"][0] == "gh")
        .unwrap();
    assert_eq!(
        github["then"]["properties"]["settings"]["properties"]["repo"]["type"],
        "string"
    );
    let sources = schema["$defs"]["import"]["properties"]["from"]["enum"]
        .as_array()
        .unwrap();
    assert!(sources.contains(&json!("aws")) && sources.contains(&json!("dotenv")));
}

mod artifacts {
    use std::collections::BTreeMap;
    use std::num::NonZeroU32;

    use vsync_crypto::Key;
    use vsync_crypto::fingerprint::FingerprintKey;

    use crate::artifact::*;

    fn key(passphrase: &[u8]) -> FingerprintKey {
        let key = Key::derive(passphrase, b"salt", NonZeroU32::new(1).unwrap());
        FingerprintKey::derive_for_plan_artifacts(&key)
    }

    fn artifact() -> Artifact {
        Artifact {
            format: FORMAT.to_owned(),
            repo: "acme/api".to_owned(),
            file_sha256: "ab".repeat(32),
            overrides: Vec::new(),
            scope: Scope::default(),
            envs: BTreeMap::from([
                ("dev".to_owned(), EnvState { version: None }),
                (
                    "prod".to_owned(),
                    EnvState {
                        version: Some("2026-12-01T10:00:00Z".to_owned()),
                    },
                ),
            ]),
            imports: Vec::new(),
            targets: vec![ReviewedTarget {
                env: "prod".to_owned(),
                to: "gh".to_owned(),
                target: "github-actions:repo=acme/api".to_owned(),
                desired: "cd".repeat(32),
                lines: vec![ReviewedName {
                    name: "API_TOKEN".to_owned(),
                    action: "create".to_owned(),
                    drift: None,
                    revision: None,
                }],
            }],
            tags: BTreeMap::new(),
        }
    }

    fn tagged() -> Artifact {
        let mut artifact = artifact();
        artifact.tag("dev", &key(b"dev"));
        artifact.tag("prod", &key(b"prod"));
        artifact
    }

    fn keys() -> BTreeMap<String, FingerprintKey> {
        ["dev", "prod"]
            .into_iter()
            .map(|env| (env.to_owned(), key(env.as_bytes())))
            .collect()
    }

    #[test]
    fn a_tagged_artifact_verifies_after_a_round_trip_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, tagged().to_json()).unwrap();
        let loaded = Artifact::load(&path).unwrap();
        assert_eq!(loaded, tagged());
        loaded.verify(&keys()).unwrap();
    }

    #[test]
    fn an_edit_or_another_envs_key_or_a_missing_tag_is_refused() {
        let mut edited = tagged();
        edited.targets[0].lines[0].action = "unchanged".to_owned();
        assert!(matches!(
            edited.verify(&keys()),
            Err(ArtifactError::NotAuthentic { .. })
        ));

        // dev's key for every env: dev verifies, prod does not.
        let wrong_keys = BTreeMap::from([
            ("dev".to_owned(), key(b"dev")),
            ("prod".to_owned(), key(b"dev")),
        ]);
        match tagged().verify(&wrong_keys) {
            Err(ArtifactError::NotAuthentic { env }) => assert_eq!(env, "prod"),
            other => panic!("expected prod refused, got {other:?}"),
        }

        let mut untagged = tagged();
        untagged.tags.remove("dev");
        assert!(untagged.verify(&keys()).is_err());
        // An env without a key on this machine cannot vouch for it.
        let only_dev = BTreeMap::from([("dev".to_owned(), key(b"dev"))]);
        assert!(tagged().verify(&only_dev).is_err());
    }

    #[test]
    fn unknown_fields_other_formats_and_links_are_not_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let mut json: serde_json::Value = serde_json::from_str(&tagged().to_json()).unwrap();
        json["extra"] = serde_json::json!(1);
        std::fs::write(&path, json.to_string()).unwrap();
        assert!(matches!(
            Artifact::load(&path),
            Err(ArtifactError::Format { .. })
        ));

        let mut other = tagged();
        other.format = "vsync-plan-artifact/9".to_owned();
        std::fs::write(&path, other.to_json()).unwrap();
        assert!(matches!(
            Artifact::load(&path),
            Err(ArtifactError::Format { .. })
        ));

        // Refused by its size, before a byte of it is read.
        let huge = dir.path().join("huge.json");
        let file = std::fs::File::create(&huge).unwrap();
        file.set_len(MAX_ARTIFACT_BYTES + 1).unwrap();
        assert!(matches!(
            Artifact::load(&huge),
            Err(ArtifactError::NotAnArtifact { .. })
        ));

        let real = dir.path().join("real.json");
        std::fs::write(&real, tagged().to_json()).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            Artifact::load(&link),
            Err(ArtifactError::NotAnArtifact { .. })
        ));
    }

    #[test]
    fn shards_split_targets_stably_and_only_the_first_takes_imports() {
        assert!("0/4".parse::<Shard>().is_err());
        assert!("5/4".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        let shards: Vec<Shard> = (1..=4)
            .map(|index| format!("{index}/4").parse().unwrap())
            .collect();
        let targets: Vec<serde_json::Map<String, serde_json::Value>> = (0..200)
            .map(|n| {
                let target = serde_json::json!({ "repo": format!("acme/repo-{n}") });
                target.as_object().unwrap().clone()
            })
            .collect();
        let mut sizes = [0usize; 4];
        for target in &targets {
            let holders: Vec<usize> = (0..4)
                .filter(|&shard| shards[shard].holds("prod", "gh", target))
                .collect();
            assert_eq!(holders.len(), 1, "every target in exactly one shard");
            sizes[holders[0]] += 1;
        }
        assert!(sizes.iter().all(|&size| size > 20), "{sizes:?}");
        // The same target, the same shard, in another run.
        let again: Shard = "3/4".parse().unwrap();
        assert_eq!(
            again.holds("prod", "gh", &targets[7]),
            shards[2].holds("prod", "gh", &targets[7])
        );
        assert!(shards[0].holds_imports() && !shards[1].holds_imports());
    }
}

fn with_overrides(text: &str, pairs: &[(&str, &str)]) -> PlanFile {
    parse(text, Path::new("vsync.toml"), &overrides(pairs)).unwrap_or_else(|err| panic!("{err}"))
}

fn env<'a>(plan: &'a PlanFile, name: &str) -> &'a EnvPlan {
    plan.env
        .iter()
        .find(|(env, _)| env.get_ref() == name)
        .map(|(_, env)| env)
        .unwrap()
}

#[test]
fn overrides_change_settings_and_policies_of_what_the_file_has() {
    let given = [
        ("VSYNC_ENV__DEV__SYNC__GH__SETTINGS__REPO", "acme/staging"),
        ("VSYNC_ENV__DEV__SYNC__GH__ON_FAILURE", "fail-closed"),
        (
            "VSYNC_ENV__DEV__SYNC__GH__EXCLUDE",
            r#"["LOCAL_*", "DEBUG"]"#,
        ),
        ("VSYNC_ENV__PROD__SYNC__GITHUB_ACTIONS__MAX_DELETES", "25"),
        ("VSYNC_ENV__prod__sync__gh__prune", "true"),
        ("VSYNC_ENV__DEV__IMPORT__AWS__SETTINGS__REGION", "us-east-1"),
        (
            "VSYNC_ENV__DEV__IMPORT__AWS_SECRETS_MANAGER__INCLUDE",
            r#"["DB_*"]"#,
        ),
        ("VSYNC_ENV__DEV__IMPORT__AWS__PREFER", "vault"),
        ("VSYNC_ENV__DEV__IMPORT__AWS__DELETE_MISSING", "true"),
    ];
    let plan = with_overrides(GOOD, &given);
    let dev = env(&plan, "dev");
    assert_eq!(dev.sync[0].routing()["repo"], json!("acme/staging"));
    assert_eq!(dev.sync[0].on_failure, OnFailure::FailClosed);
    assert_eq!(dev.sync[0].exclude, ["LOCAL_*", "DEBUG"]);
    assert_eq!(dev.sync[0].max_deletes, 5, "untouched");
    assert_eq!(dev.import[0].sets(), ["region=us-east-1"]);
    let include: Vec<&str> = dev.import[0]
        .include
        .iter()
        .map(|g| g.get_ref().as_str())
        .collect();
    assert_eq!(include, ["DB_*"]);
    assert_eq!(dev.import[0].prefer, Some(Prefer::Vault));
    assert!(dev.import[0].delete_missing);
    let prod = env(&plan, "prod");
    assert_eq!(prod.sync[0].max_deletes, 25);
    assert!(prod.sync[0].prune);
    // Bound to the file's bytes, and the overrides kept to be shown and
    // recorded.
    assert_eq!(plan.sha256, with_overrides(GOOD, &[]).sha256);
    assert_eq!(plan.overrides.len(), given.len());
}

#[test]
fn a_bad_override_is_named_by_its_variable_with_the_fix() {
    let cases = [
        (
            "VSYNC_ENV__STAGING__SYNC__GH__PRUNE",
            "true",
            "vsync.toml has no env `STAGING` (its envs: dev, prod)",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__AWS__PRUNE",
            "true",
            "env dev has no sync target `AWS`",
        ),
        (
            "VSYNC_ENV__DEV__IMPORT__GCP__PREFIX",
            "X_",
            "env dev has no import from `GCP`",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__PRUNNE",
            "true",
            "did you mean `prune`?",
        ),
        ("VSYNC_ENV__DEV__SYNC__GH__TO", "aws", "unknown field `TO`"),
        (
            "VSYNC_ENV__DEV__SYNC__GH__PRUNE",
            "yes",
            "takes true or false",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__MAX_DELETES",
            "-1",
            "takes a whole number",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__ON_FAILURE",
            "retry",
            "takes one of fail-closed, continue",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__EXCLUDE",
            "A,B",
            "takes a TOML array of strings",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__EXCLUDE",
            r#"["A"] extra = 1"#,
            "takes a TOML array of strings",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__SETTINGS__RPO",
            "acme/web",
            "did you mean `repo`?",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__SETTINGS",
            "x",
            "name the setting",
        ),
        (
            "VSYNC_ENV__DEV__SYNC__GH__SETTINGS__SCOPE",
            "everywhere",
            "gh: ",
        ),
        (
            "VSYNC_ENV__DEV__IMPORT__AWS__INCLUDE",
            r#"["[oops"]"#,
            "is not a glob",
        ),
        (
            "VSYNC_ENV__DEV",
            "x",
            "expected VSYNC_ENV__<env>__SYNC__<platform>__<field>",
        ),
        (
            "VSYNC_ENV__DEV__SINK__GH__PRUNE",
            "true",
            "neither SYNC nor IMPORT",
        ),
    ];
    for (variable, value, expected) in cases {
        let found = problems_with(GOOD, &[(variable, value)]);
        assert_eq!(found.len(), 1, "{variable}: {found:?}");
        assert_eq!(found[0].place, Place::Variable(variable.to_owned()));
        assert!(
            found[0].message.contains(expected),
            "{variable}: {}",
            found[0].message
        );
    }
}

#[test]
fn problems_in_the_file_come_first_then_the_overrides() {
    let text = GOOD.replace("max-deletes = 5", "max-deletes = 5\nprume = true");
    // A shape error stops before the overrides apply.
    let found = problems_with(&text, &[("VSYNC_ENV__DEV__SYNC__GH__PRUNE", "yes")]);
    assert_eq!(found.len(), 1);
    assert_eq!(at(&found[0]).0, 14);
    let text = GOOD.replace("region = ", "regio = ");
    let found = problems_with(
        &text,
        &[
            ("VSYNC_ENV__PROD__SYNC__GH__PRUNE", "yes"),
            ("VSYNC_ENV__DEV__SYNC__GH__PRUNE", "maybe"),
        ],
    );
    let places: Vec<String> = found
        .iter()
        .map(|problem| match &problem.place {
            Place::File { line, .. } => format!("line {line}"),
            Place::Variable(variable) => variable.clone(),
        })
        .collect();
    assert_eq!(
        places,
        [
            "line 5",
            "VSYNC_ENV__PROD__SYNC__GH__PRUNE",
            "VSYNC_ENV__DEV__SYNC__GH__PRUNE"
        ]
    );
}

#[test]
fn an_override_that_could_mean_two_things_is_refused() {
    let text = r#"version = 1

[[env.prod-eu.sync]]
to = "gh"
settings = { repo = "acme/web" }

[[env.prod_eu.sync]]
to = "gh"
settings = { repo = "acme/web" }

[[env.dev.import]]
from = "aws"

[[env.dev.import]]
from = "aws"
prefix = "APP_"
"#;
    let found = problems_with(text, &[("VSYNC_ENV__PROD_EU__SYNC__GH__PRUNE", "true")]);
    assert!(
        found[0]
            .message
            .contains("could be any of the envs prod-eu, prod_eu"),
        "{found:?}"
    );
    let found = problems_with(text, &[("VSYNC_ENV__DEV__IMPORT__AWS__PREFIX", "X_")]);
    assert!(
        found[0]
            .message
            .contains("imports from `AWS` more than once"),
        "{found:?}"
    );
    // A name with `.` or `-` is matched without them.
    let plan = with_overrides(
        &text.replace("env.prod_eu", "env.\"staging.eu\""),
        &[("VSYNC_ENV__STAGING_EU__SYNC__GH__PRUNE", "true")],
    );
    assert!(env(&plan, "staging.eu").sync[0].prune);
    assert!(!env(&plan, "prod-eu").sync[0].prune);
}
