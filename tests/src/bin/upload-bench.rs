//! Upload-processor benchmark: one 1 GiB object processed through the data folder's store (the
//! processor itself) and through the S3 emulator, next to `openssl dgst -sha256` of the same
//! bytes, with the processor's peak memory. Prints figures; asserts nothing about time.
//!
//! Run with `scripts/bench-upload.sh` (it starts the services and builds with optimisation).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::adapters::local::uploads::{FileUploads, JsonLines};
use ferry_core::app::uploads::{UploadOutcome, process, scan};
use ferry_core::domain::upload_event::ObjectEvent;
use ferry_core::domain::upload_rules::{SourceAction, UploadConfig};
use ferry_core::ports::{NoUserRules, ObjectStore, UploadStore};
use ferry_tests::Fixture;

const MIB: f64 = 1024.0 * 1024.0;

/// Peak and current resident memory of this process, in MiB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn random_file(path: &std::path::Path, len: usize) -> Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len());
        f.write_all(&block[..n])?;
        left -= n;
    }
    Ok(())
}

fn event(bucket: &str, key: &str) -> ObjectEvent {
    ObjectEvent {
        bucket: bucket.into(),
        key: key.into(),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let size: usize = std::env::var("BENCH_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 30);
    let mib = size as f64 / MIB;
    let data = std::env::temp_dir().join(ferry_tests::fixture::unique("upload-bench"));
    std::fs::create_dir_all(data.join("objects/bench/home/user"))?;
    let file = data.join("objects/bench/home/user/big.bin");
    random_file(&file, size)?;
    println!("object: {mib:.0} MiB of pseudo-random bytes");

    // The bar: openssl's SHA-256 (hardware SHA extensions) over the same file.
    let started = Instant::now();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(&file)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!("openssl failed");
    }
    let openssl = mib / started.elapsed().as_secs_f64();
    let expected = String::from_utf8_lossy(&out.stdout)
        .rsplit(' ')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    println!("openssl dgst -sha256                      {openssl:>8.1} MiB/s");

    // The processor's single pass alone (hash, size, sniff) on the data folder's store.
    let uploads = FileUploads::new(&data);
    let head = uploads
        .head("bench", "home/user/big.bin")
        .await?
        .context("no object")?;
    let (hwm_before, _) = memory();
    let started = Instant::now();
    let mut body = uploads
        .body("bench", "home/user/big.bin", &head.etag)
        .await?
        .context("no body")?;
    let found = scan(&mut body).await?;
    let pass = mib / started.elapsed().as_secs_f64();
    if found.sha256 != expected {
        bail!(
            "checksum differs from openssl's: {} vs {expected}",
            found.sha256
        );
    }
    println!(
        "processor pass (data folder)              {pass:>8.1} MiB/s  = {:.0} % of openssl",
        100.0 * pass / openssl
    );

    // The whole processing (pass, rules, copy to processed/, tags, notice), copy mode.
    let config = UploadConfig {
        incoming_prefixes: vec!["home/".into()],
        source_action: SourceAction::Copy,
        ..UploadConfig::default()
    };
    let notices = JsonLines(data.join("notifications.jsonl"));
    let started = Instant::now();
    let outcome = process(
        &event("bench", "home/user/big.bin"),
        &uploads,
        &notices,
        &NoUserRules,
        &config,
    )
    .await;
    let whole = mib / started.elapsed().as_secs_f64();
    if !matches!(outcome, UploadOutcome::Processed { .. }) {
        bail!("not processed: {outcome:?}");
    }
    let (hwm_local, _) = memory();
    println!(
        "whole processing incl. copy (data folder) {whole:>8.1} MiB/s  = {:.0} % of openssl",
        100.0 * whole / openssl
    );

    // Through the S3 emulator: the object uploaded (multipart), then processed in move mode.
    let fixture = Fixture::new().await?;
    let bucket = fixture.bucket().await?;
    let s3 = S3Objects::new(fixture.s3());
    let spool = data.join("spool.bin");
    std::fs::copy(&file, &spool)?;
    s3.put_file(&bucket, "home/user/big.bin", &spool)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = UploadConfig {
        incoming_prefixes: vec!["home/".into()],
        ..UploadConfig::default()
    };
    let started = Instant::now();
    let outcome = process(
        &event(&bucket, "home/user/big.bin"),
        &s3,
        &notices,
        &NoUserRules,
        &config,
    )
    .await;
    let remote = mib / started.elapsed().as_secs_f64();
    match &outcome {
        UploadOutcome::Processed { sha256, .. } if *sha256 == expected => {}
        other => bail!("S3 processing went wrong: {other:?}"),
    }
    let (hwm_all, rss) = memory();
    println!(
        "whole processing (S3 emulator, moto)      {remote:>8.1} MiB/s  = {:.0} % of openssl",
        100.0 * remote / openssl
    );
    println!(
        "peak memory: {hwm_before:.1} MiB before, {hwm_local:.1} MiB after the data-folder run, {hwm_all:.1} MiB after the S3 run (now {rss:.1} MiB) for a {mib:.0} MiB object"
    );
    std::fs::remove_dir_all(&data)?;
    Ok(())
}
