//! Printing `vsync status`: a header, the env table, profiles, notices; or
//! the JSON document described in the README.

use vsync_ops::{Context, EnvStatus, StatusOptions, StatusReport};

use crate::commands::{Failure, print_json};

pub fn run(
    ctx: &Context,
    runtime: &tokio::runtime::Runtime,
    json: bool,
    quiet: bool,
    check_remote: bool,
) -> Result<(), Failure> {
    let report = runtime.block_on(vsync_ops::status(ctx, StatusOptions { check_remote }))?;
    if quiet {
        let problems: Vec<&EnvStatus> = report.envs.iter().filter(|env| !env.ok()).collect();
        if problems.is_empty() {
            return Ok(());
        }
        for env in &problems {
            match &env.remote {
                Some(remote) if env.code == vsync_ops::EnvCode::Ok => {
                    eprintln!("{}: remote-error — {}", env.env, remote.message);
                }
                _ => eprintln!("{}: {} — {}", env.env, env.code.as_str(), env.message),
            }
        }
        return Err(Failure {
            message: format!("{} env(s) need attention", problems.len()),
            code: 1,
        });
    }
    if json {
        print_json(&to_json(&report));
    } else {
        print_text(&report);
    }
    Ok(())
}

fn to_json(report: &StatusReport) -> serde_json::Value {
    let envs: Vec<_> = report
        .envs
        .iter()
        .map(|env| {
            serde_json::json!({
                "env": env.env,
                "profile": env.profile,
                "profilePresent": env.profile_present,
                "prefix": env.prefix,
                "store": env.store,
                "keystore": env.keystore,
                "gen": env.remote.as_ref().and_then(|r| r.generation),
                "lastPush": env.last_sync.as_ref().filter(|s| s.op == "push").map(|s| s.ts.as_str()),
                "lastSync": env.last_sync.as_ref().map(|s| serde_json::json!({
                    "ts": s.ts.as_str(), "op": s.op, "at": s.at,
                })),
                "status": {"ok": env.ok(), "code": env.code.as_str(), "message": env.message},
                "remote": env.remote.as_ref().map(|r| serde_json::json!({
                    "state": r.state.as_str(),
                    "remoteTs": r.remote_ts.as_ref().map(|ts| ts.as_str()),
                    "gen": r.generation,
                    "localChanges": r.local_changes,
                    "message": r.message,
                })),
            })
        })
        .collect();
    let profiles: Vec<_> = report
        .profiles
        .iter()
        .map(|p| serde_json::json!({"name": p.name, "endpoint": p.endpoint, "bucket": p.bucket}))
        .collect();
    serde_json::json!({
        "repo": report.repo,
        "source": report.source,
        "sourceDetail": report.source_detail,
        "toplevel": report.toplevel.display().to_string(),
        "cwd": report.cwd.display().to_string(),
        "originUrl": report.origin_url,
        "worktree": report.worktree.as_ref().map(|w| w.display().to_string()),
        "keystore": report.keystore,
        "keystoreChoice": report.keystore_choice,
        "envs": envs,
        "profiles": profiles,
        "notices": report.notices,
        "keychainEnumerationSupported": report.keychain_enumeration_supported,
    })
}

fn print_text(report: &StatusReport) {
    println!("Repo:      {}", report.repo);
    println!("Source:    {}", report.source_detail);
    println!("Toplevel:  {}", report.toplevel.display());
    if report.cwd != report.toplevel {
        println!("CWD:       {}", report.cwd.display());
    }
    println!(
        "Origin:    {}",
        report.origin_url.as_deref().unwrap_or("(not set)")
    );
    if let Some(main) = &report.worktree {
        println!(
            "Worktree:  linked; the vault folder lives in {}",
            main.display()
        );
    }
    println!(
        "Keystore:  {} ({})",
        report.keystore, report.keystore_choice
    );
    println!();
    let dash = || "—".to_owned();
    let header = [
        "env",
        "profile",
        "prefix",
        "gen",
        "last sync",
        "keystore",
        "status",
    ]
    .map(str::to_owned);
    let rows: Vec<[String; 7]> = report
        .envs
        .iter()
        .map(|env| {
            let status = match &env.remote {
                Some(remote) => format!("{} ({})", env.code.as_str(), remote.state.as_str()),
                None => env.code.as_str().to_owned(),
            };
            [
                env.env.clone(),
                match (&env.profile, env.profile_present) {
                    (Some(name), true) => name.clone(),
                    (Some(name), false) => format!("{name} (REMOVED)"),
                    (None, _) => dash(),
                },
                env.prefix.clone().unwrap_or_else(dash),
                env.remote
                    .as_ref()
                    .and_then(|r| r.generation)
                    .map_or_else(dash, |g| g.to_string()),
                env.last_sync
                    .as_ref()
                    .map_or_else(dash, |s| format!("{} {}", s.op, s.ts)),
                env.keystore_kind.to_owned(),
                status,
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("(no envs for {} on this machine)", report.repo);
    } else {
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 7]| {
            cells
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        println!("{}", line(&header));
        for row in &rows {
            println!("{}", line(row));
        }
        for env in report
            .envs
            .iter()
            .filter(|env| env.code != vsync_ops::EnvCode::Ok)
        {
            println!("  {}: {}", env.env, env.message);
        }
        for env in &report.envs {
            if let Some(remote) = &env.remote {
                println!("  {}: {}", env.env, remote.message);
            }
        }
    }
    println!();
    if report.profiles.is_empty() {
        println!("Profiles:  (none)");
    } else {
        println!("Profiles:");
        for profile in &report.profiles {
            let endpoint = profile
                .endpoint
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            println!("  {}  {endpoint}  {}", profile.name, profile.bucket);
        }
    }
    for notice in &report.notices {
        println!("note: {notice}");
    }
}
