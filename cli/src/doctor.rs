//! `vsync doctor [--json]`: prints each finding and what to do about it;
//! exits 1 when any is a problem.

use vsync_ops::{Context, DoctorReport, Verdict};

use crate::commands::Failure;

pub fn run(ctx: &Context, runtime: &tokio::runtime::Runtime, json: bool) -> Result<(), Failure> {
    let environment = |name: &str| std::env::var(name).ok();
    let report = runtime.block_on(vsync_ops::doctor(ctx, &environment));
    if json {
        let document = serde_json::json!({
            "healthy": report.healthy(),
            "findings": report.findings,
        });
        println!("{document:#}");
    } else {
        print_text(&report);
    }
    if report.healthy() {
        Ok(())
    } else {
        Err(Failure::reported(1))
    }
}

fn print_text(report: &DoctorReport) {
    for finding in &report.findings {
        let verdict = match finding.verdict {
            Verdict::Ok => "ok",
            Verdict::Warning => "warning",
            Verdict::Problem => "PROBLEM",
        };
        println!(
            "{verdict:<8} {:<12} {}: {}",
            finding.check, finding.subject, finding.detail
        );
        if let Some(fix) = &finding.fix {
            println!("{:<21} → {fix}", "");
        }
    }
    let count = |verdict| {
        report
            .findings
            .iter()
            .filter(|finding| finding.verdict == verdict)
            .count()
    };
    match (count(Verdict::Problem), count(Verdict::Warning)) {
        (0, 0) => println!("\nall is well"),
        (0, warnings) => println!("\nno problem ({warnings} warning(s))"),
        (problems, warnings) => {
            println!("\n{problems} problem(s), {warnings} warning(s): each says what to do")
        }
    }
}
