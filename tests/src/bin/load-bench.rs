//! Load on `ferry up`, on both stores: `LOAD_SESSIONS` SFTP sessions at once (default 50), each
//! uploading and reading back random files of 64 KiB to 4 MiB for `LOAD_SECONDS` (default 180),
//! every byte checked; the server's resident memory after the first 10 % of the run and at the
//! end; logins per second under that load. Prints figures; asserts nothing about time, and exits
//! non-zero if any operation failed or any byte came back wrong.
//!
//! Run by scripts/load.sh (release build, DynamoDB Local and moto started for `--aws`).

use std::time::Duration;

use anyhow::{Context, Result};
use ferry_tests::harness::{Store, Up};
use ferry_tests::load::{Plan, Report, run};

fn env_or(name: &str, default: u64) -> Result<u64> {
    std::env::var(name).map_or(Ok(default), |v| {
        v.parse().with_context(|| format!("{name}={v}"))
    })
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print(store: &str, plan: &Plan, r: &Report) {
    let secs = r.elapsed.as_secs_f64();
    let up = r.bytes_up as f64 / (1024.0 * 1024.0);
    println!(
        "{store}: {} sessions for {secs:.0} s, files of {}–{} KiB",
        plan.sessions,
        plan.sizes.0 / 1024,
        plan.sizes.1 / 1024
    );
    println!(
        "  files uploaded and read back: {} ({up:.0} MiB each way, {:.1} MiB/s each way)",
        r.files,
        up / secs
    );
    println!(
        "  corrupt files: {}, failed operations: {}",
        r.corrupt, r.errors
    );
    for e in &r.first_errors {
        println!("    {e}");
    }
    let (early, end, peak) = (
        r.rss_at(0.1).unwrap_or(0),
        r.rss_last().unwrap_or(0),
        r.rss_peak().unwrap_or(0),
    );
    println!(
        "  ferry up VmRSS: {:.1} MiB after 10 % of the run, {:.1} MiB at the end ({:+.1} %), peak {:.1} MiB ({} samples)",
        mib(early),
        mib(end),
        if early > 0 {
            (end as f64 - early as f64) * 100.0 / early as f64
        } else {
            0.0
        },
        mib(peak),
        r.rss.len()
    );
    // The curve, to tell growth that levels off from growth that goes on.
    let curve: Vec<String> = [0.1, 0.25, 0.5, 0.75]
        .iter()
        .filter_map(|f| {
            r.rss_at(*f)
                .map(|kib| format!("{:.0} %: {:.1}", f * 100.0, mib(kib)))
        })
        .chain(std::iter::once(format!("end: {:.1}", mib(end))))
        .collect();
    println!("  ferry up VmRSS over the run (MiB): {}", curve.join(", "));
    println!(
        "  logins under load (one task, log in then disconnect, in a loop): {} in {:.0} s = {:.1}/s (refused {}, errors {})",
        r.logins,
        r.login_seconds,
        r.logins_per_second(),
        r.logins_refused,
        r.login_errors
    );
}

fn main() -> Result<()> {
    let sessions = env_or("LOAD_SESSIONS", 50)? as usize;
    let seconds = env_or("LOAD_SECONDS", 180)?;
    let stores = std::env::var("LOAD_STORES").unwrap_or_else(|_| "local aws".into());
    let mut failed = false;
    for store in stores.split_whitespace() {
        let (kind, name) = match store {
            "local" => (Store::Local, "data folder"),
            "aws" => (Store::Aws, "--aws (DynamoDB Local + moto)"),
            other => anyhow::bail!("unknown store {other}: local or aws"),
        };
        // Every session comes from 127.0.0.1: lift the per-source cap above the sessions. The
        // processor is off: its copies would pile up (in moto's memory with --aws), and this
        // measures the SFTP path.
        let cap = (sessions + 16).to_string();
        let up = Up::start_with(
            kind,
            &["--no-processing", "--max-connections-per-source", &cap],
        );
        let plan = Plan {
            port: up.port,
            pid: up.child.id(),
            user: "demo".into(),
            password: up.demo_password.clone(),
            sessions,
            duration: Duration::from_secs(seconds),
            sizes: (64 * 1024, 4 * 1024 * 1024),
        };
        let rt = tokio::runtime::Runtime::new()?;
        let report = rt.block_on(run(&plan))?;
        print(name, &plan, &report);
        failed |= report.errors > 0 || report.corrupt > 0 || report.login_errors > 0;
    }
    if failed {
        anyhow::bail!("some operations failed or some bytes came back wrong (see above)");
    }
    Ok(())
}
