//! Load on a running `ferry up`: many SFTP sessions at once, each uploading random files and
//! reading them back, with every byte checked (SHA-256 of what was sent against what came back),
//! the server's resident memory sampled each second, and logins per second measured by a task of
//! its own meanwhile. Used by `load-bench` (scripts/load.sh) and by the short run in the tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use russh_sftp::client::RawSftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub port: u16,
    /// The server's process, whose memory is sampled.
    pub pid: u32,
    pub user: String,
    pub password: String,
    pub sessions: usize,
    pub duration: Duration,
    /// Smallest and largest file, in bytes.
    pub sizes: (usize, usize),
}

/// What one run saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Files whose bytes came back different from what was sent.
    pub corrupt: u64,
    /// Failed operations, with what failed (the first few are kept).
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub logins: u64,
    pub logins_refused: u64,
    pub login_errors: u64,
    /// Seconds the login task ran.
    pub login_seconds: f64,
    pub elapsed: Duration,
    /// (seconds since the start, VmRSS in KiB), one a second.
    pub rss: Vec<(f64, u64)>,
}

impl Report {
    /// Resident memory at the first sample at or after `fraction` of the run.
    pub fn rss_at(&self, fraction: f64) -> Option<u64> {
        let at = self.elapsed.as_secs_f64() * fraction;
        self.rss.iter().find(|(t, _)| *t >= at).map(|(_, r)| *r)
    }

    pub fn rss_last(&self) -> Option<u64> {
        self.rss.last().map(|(_, r)| *r)
    }

    pub fn rss_peak(&self) -> Option<u64> {
        self.rss.iter().map(|(_, r)| *r).max()
    }

    pub fn logins_per_second(&self) -> f64 {
        if self.login_seconds > 0.0 {
            self.logins as f64 / self.login_seconds
        } else {
            0.0
        }
    }
}

/// Resident memory of `pid` now, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .context("no VmRSS line")
}

/// A small fast generator (xorshift64): random enough for file contents and sizes.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Bytes per SFTP read or write request, and requests kept in flight (as OpenSSH's client does).
const CHUNK: usize = 64 * 1024;
const IN_FLIGHT: usize = 8;

/// Runs the plan and reports; errors of single operations are counted, not returned.
pub async fn run(plan: &Plan) -> Result<Report> {
    let started = Instant::now();
    let deadline = started + plan.duration;
    let stop = Arc::new(AtomicBool::new(false));

    let sampler = {
        let (pid, stop) = (plan.pid, Arc::clone(&stop));
        tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                if let Ok(r) = rss_kib(pid) {
                    samples.push((started.elapsed().as_secs_f64(), r));
                }
            }
            samples
        })
    };

    let logins = {
        let (plan, stop) = (plan.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut ok, mut refused, mut failed) = (0u64, 0u64, 0u64);
            let began = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                match crate::ssh::password_login(plan.port, &plan.user, &plan.password).await {
                    Ok((true, session)) => {
                        ok += 1;
                        let _ = session
                            .disconnect(russh::Disconnect::ByApplication, "", "")
                            .await;
                    }
                    Ok((false, _)) => refused += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, refused, failed, began.elapsed().as_secs_f64())
        })
    };

    let mut workers = JoinSet::new();
    for n in 0..plan.sessions {
        let plan = plan.clone();
        workers.spawn(async move { session(&plan, n, deadline).await });
    }
    let mut report = Report::default();
    while let Some(done) = workers.join_next().await {
        let s = done.context("a session task panicked")?;
        report.files += s.files;
        report.bytes_up += s.bytes_up;
        report.bytes_down += s.bytes_down;
        report.corrupt += s.corrupt;
        report.errors += s.errors.len() as u64;
        for e in s.errors {
            if report.first_errors.len() < 10 {
                report.first_errors.push(e);
            }
        }
    }
    report.elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let (ok, refused, failed, secs) = logins.await?;
    report.logins = ok;
    report.logins_refused = refused;
    report.login_errors = failed;
    report.login_seconds = secs;
    report.rss = sampler.await?;
    Ok(report)
}

#[derive(Debug, Default)]
struct SessionReport {
    files: u64,
    bytes_up: u64,
    bytes_down: u64,
    corrupt: u64,
    errors: Vec<String>,
}

/// One SFTP session: upload, read back, compare, remove, until the deadline. A failed login or
/// session start counts as one error and ends the session.
async fn session(plan: &Plan, n: usize, deadline: Instant) -> SessionReport {
    let mut report = SessionReport::default();
    let started = async {
        let (ok, connection) =
            crate::ssh::password_login(plan.port, &plan.user, &plan.password).await?;
        ensure!(ok, "login refused");
        let channel = connection.channel_open_session().await?;
        channel.request_subsystem(true, "sftp").await?;
        let sftp = RawSftpSession::new(channel.into_stream());
        sftp.set_timeout(120);
        sftp.init().await?;
        anyhow::Ok((connection, Arc::new(sftp)))
    }
    .await;
    let (_connection, sftp) = match started {
        Ok(s) => s,
        Err(e) => {
            report.errors.push(format!("session {n}: start: {e:#}"));
            return report;
        }
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((n as u64 + 1) << 20));
    let mut i = 0u64;
    while Instant::now() < deadline {
        let (lo, hi) = plan.sizes;
        let len = lo + (rng.next() as usize) % (hi - lo + 1);
        let body = rng.bytes(len);
        let name = format!("load-{n}-{i}.bin");
        i += 1;
        match round_trip(&sftp, &name, body).await {
            Ok(true) => {
                report.files += 1;
                report.bytes_up += len as u64;
                report.bytes_down += len as u64;
            }
            Ok(false) => report.corrupt += 1,
            Err(e) => report.errors.push(format!("session {n}: {name}: {e:#}")),
        }
    }
    report
}

/// Uploads `body` as `name`, reads it back, removes it: whether the bytes came back the same.
async fn round_trip(sftp: &Arc<RawSftpSession>, name: &str, body: Vec<u8>) -> Result<bool> {
    let sent = Sha256::digest(&body);
    let len = body.len();
    let body = Arc::new(body);
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let h = sftp
        .open(name, write, FileAttributes::default())
        .await
        .context("open for writing")?
        .handle;
    let mut pending = JoinSet::new();
    for offset in (0..len).step_by(CHUNK) {
        if pending.len() >= IN_FLIGHT {
            pending.join_next().await.context("no write")???;
        }
        let (sftp, h, body) = (Arc::clone(sftp), h.clone(), Arc::clone(&body));
        pending.spawn(async move {
            let end = (offset + CHUNK).min(len);
            sftp.write(&h, offset as u64, body[offset..end].to_vec())
                .await
                .context("write")
        });
    }
    while let Some(w) = pending.join_next().await {
        w??;
    }
    sftp.close(h).await.context("close after writing")?;

    let h = sftp
        .open(name, OpenFlags::READ, FileAttributes::default())
        .await
        .context("open for reading")?
        .handle;
    let mut chunks = vec![Vec::new(); len.div_ceil(CHUNK)];
    let mut pending = JoinSet::new();
    for (index, offset) in (0..len).step_by(CHUNK).enumerate() {
        if pending.len() >= IN_FLIGHT {
            let (at, data): (usize, Vec<u8>) =
                pending.join_next().await.context("no read")???;
            chunks[at] = data;
        }
        let (sftp, h) = (Arc::clone(sftp), h.clone());
        pending.spawn(async move {
            let want = (offset + CHUNK).min(len) - offset;
            let mut data = Vec::with_capacity(want);
            // A read may return less than asked: ask again for the rest.
            while data.len() < want {
                let got = sftp
                    .read(&h, (offset + data.len()) as u64, (want - data.len()) as u32)
                    .await
                    .context("read")?
                    .data;
                ensure!(!got.is_empty(), "empty read before the end");
                data.extend_from_slice(&got);
            }
            anyhow::Ok((index, data))
        });
    }
    while let Some(r) = pending.join_next().await {
        let (at, data) = r??;
        chunks[at] = data;
    }
    sftp.close(h).await.context("close after reading")?;
    let mut hasher = Sha256::new();
    let mut got = 0;
    for c in &chunks {
        hasher.update(c);
        got += c.len();
    }
    sftp.remove(name).await.context("remove")?;
    Ok(got == len && hasher.finalize() == sent)
}
