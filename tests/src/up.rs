//! Starting the real `ferry up` binary for a test: it binds a port of its choosing and says it on
//! standard error, with the demo user's password on a first start; stderr is drained from then
//! on so the server never blocks on a full pipe.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

/// A started `ferry up`.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    pub port: u16,
    /// Empty unless this start created the demo user.
    pub demo_password: String,
    /// The web console's address (`http://127.0.0.1:PORT`) and sign-in token, when it serves one.
    pub console: Option<(String, String)>,
}

/// Runs `cmd` (a `ferry up … --listen 127.0.0.1:0` command, or a shell that execs one) until it
/// says where it listens.
pub fn start(mut cmd: Command) -> Result<Started> {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ferry up")?;
    let mut lines = BufReader::new(child.stderr.take().context("no stderr")?).lines();
    let mut demo_password = String::new();
    let mut said = String::new();
    let mut port = 0;
    let mut console = None;
    for line in lines.by_ref() {
        let line = line?;
        said.push_str(&line);
        said.push('\n');
        if let Some(rest) = line.split("created user demo with password ").nth(1) {
            demo_password = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
        // Said before the SFTP line: "ferry console: http://ADDR/ sign-in token TOKEN".
        if let Some(rest) = line.split("ferry console: http://").nth(1) {
            let mut words = rest.split_whitespace();
            let addr = words.next().unwrap_or_default().trim_end_matches('/');
            let token = words.nth(2).unwrap_or_default();
            console = Some((format!("http://{addr}"), token.to_owned()));
        }
        if let Some(rest) = line.split("SFTP on ").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            port = addr.parse::<std::net::SocketAddr>().map_or(0, |a| a.port());
            break;
        }
    }
    if port == 0 {
        let _ = child.kill();
        let _ = child.wait();
        bail!("ferry up did not start or say its port: {said}");
    }
    std::thread::spawn(move || for _ in lines {});
    Ok(Started {
        child,
        port,
        demo_password,
        console,
    })
}

/// Peak resident memory of a process so far, in KiB (`VmHWM`).
pub fn peak_memory_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .context("no VmHWM line")
}
