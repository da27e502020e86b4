//! Parallel password guesses against a running `ferry up`: N wrong-password logins at once, with
//! the server's peak resident memory before and after, and how long a right password waits
//! while they run, beside the same login on a quiet server. Prints figures; asserts nothing.
//!
//! `guess-bench PORT PID PASSWORD [GUESSES]` (scripts/bench-guesses.sh starts the server).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ferry_tests::up::peak_memory_kib;

/// One password login on a new connection: whether it was accepted, and how long it took.
async fn login(port: u16, password: String) -> Result<(bool, Duration)> {
    let started = Instant::now();
    let (ok, _session) = ferry_tests::ssh::password_login(port, "demo", &password).await?;
    Ok((ok, started.elapsed()))
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .context("no VmRSS line")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).context("PORT")?.parse()?;
    let pid: u32 = args.get(2).context("PID")?.parse()?;
    let password = args.get(3).context("PASSWORD")?.clone();
    let guesses: usize = args.get(4).map_or(Ok(500), |n| n.parse())?;

    // Warm up, then the right password alone, five times.
    login(port, password.clone()).await?;
    let mut alone = Vec::new();
    for _ in 0..5 {
        let (ok, took) = login(port, password.clone()).await?;
        anyhow::ensure!(ok, "the right password was refused on a quiet server");
        alone.push(took);
    }
    alone.sort();
    let before_rss = rss_kib(pid)?;
    let before_peak = peak_memory_kib(pid)?;

    let started = Instant::now();
    let flood: Vec<_> = (0..guesses)
        .map(|i| tokio::spawn(login(port, format!("wrong-guess-{i}"))))
        .collect();
    // The right password arrives while the guesses are queued.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (right_ok, right_took) = login(port, password.clone()).await?;
    let mut refused = 0;
    let mut failed = 0;
    let mut slowest = Duration::ZERO;
    for g in flood {
        match g.await? {
            Ok((false, took)) => {
                refused += 1;
                slowest = slowest.max(took);
            }
            Ok((true, _)) => anyhow::bail!("a wrong password was accepted"),
            Err(_) => failed += 1,
        }
    }
    let flood_took = started.elapsed();
    let after_peak = peak_memory_kib(pid)?;
    let after_rss = rss_kib(pid)?;

    println!("{guesses} parallel wrong-password logins against ferry up (pid {pid}):");
    println!(
        "  refused: {refused}, connection errors: {failed}, all done in {:.1} s",
        flood_took.as_secs_f64()
    );
    println!("  slowest refusal: {:.0} ms", ms(slowest));
    println!(
        "  server memory: resident {:.1} MiB before, peak {:.1} MiB during (peak before: {:.1} MiB), resident {:.1} MiB after",
        before_rss as f64 / 1024.0,
        after_peak as f64 / 1024.0,
        before_peak as f64 / 1024.0,
        after_rss as f64 / 1024.0
    );
    println!(
        "  a right password: {} in {:.0} ms during the guesses, against {:.0} ms (median of 5) on the quiet server",
        if right_ok { "allowed" } else { "REFUSED" },
        ms(right_took),
        ms(alone[alone.len() / 2])
    );
    Ok(())
}
