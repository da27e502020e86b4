//! A soak of the release `auth` binary: `SOAK_LOGINS` logins (default 100,000) of mixed kinds
//! (see `ferry_tests::soak::MIX`) through a Lambda Runtime API, against DynamoDB Local and moto;
//! every answer checked, and the function's resident memory after the first 1,000 and at the end.
//! Prints figures; exits non-zero on a wrong answer, never on time or memory.
//!
//! Run by scripts/soak.sh, which builds it and starts the services.

use anyhow::{Context, Result};
use ferry_tests::soak::{fixture, run};

fn main() -> Result<()> {
    let logins: u64 = std::env::var("SOAK_LOGINS").map_or(Ok(100_000), |v| {
        v.parse().with_context(|| format!("SOAK_LOGINS={v}"))
    })?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let f = rt.block_on(fixture())?;
    let soak = run(&f, logins, 1_000.min(logins), &|n| {
        eprintln!("  {n} logins");
    })?;
    println!(
        "auth soak: {} logins of mixed kinds in {:.0} s ({:.0}/s), wrong answers: {}",
        soak.logins,
        soak.elapsed.as_secs_f64(),
        soak.logins as f64 / soak.elapsed.as_secs_f64(),
        soak.wrong_answers
    );
    for w in &soak.first_wrong {
        println!("  {w}");
    }
    println!(
        "  auth VmRSS: {:.1} MiB after the first {}, {:.1} MiB at the end ({:+.2} %)",
        soak.rss_early_kib as f64 / 1024.0,
        soak.early_after,
        soak.rss_end_kib as f64 / 1024.0,
        soak.rss_change_percent()
    );
    anyhow::ensure!(soak.wrong_answers == 0, "some answers were wrong");
    Ok(())
}
