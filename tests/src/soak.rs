//! A soak of the real `auth` binary under the Lambda Runtime API of [`crate::runtime_api`]:
//! many logins of mixed kinds (right and wrong passwords, unknown users, key logins, payloads
//! that are not a request at all), every answer checked, and the function's resident memory
//! read after the first logins and at the end. Used by `soak-bench` (scripts/soak.sh) and by the
//! short run in the tests.

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::Fixture;
use crate::fixture::{DEFAULT_ROLE, SAMPLE_KEY, direct_event};
use crate::load::rss_kib;
use crate::runtime_api::RuntimeApi;

/// The kinds of login in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    RightPassword,
    WrongPassword,
    UnknownUser,
    KeyLogin,
    Malformed,
}

/// The mix, repeated: of twenty logins, nine right passwords and seven key logins (as a busy
/// server sees: mostly its users), two malformed payloads, one wrong password and one unknown
/// user. The last two cost a full Argon2 run each; the rest mostly do not (the verified-login
/// cache remembers right passwords, key logins need no hash).
pub const MIX: [Kind; 20] = [
    Kind::RightPassword,
    Kind::KeyLogin,
    Kind::RightPassword,
    Kind::Malformed,
    Kind::RightPassword,
    Kind::KeyLogin,
    Kind::WrongPassword,
    Kind::RightPassword,
    Kind::KeyLogin,
    Kind::RightPassword,
    Kind::KeyLogin,
    Kind::RightPassword,
    Kind::Malformed,
    Kind::KeyLogin,
    Kind::RightPassword,
    Kind::UnknownUser,
    Kind::RightPassword,
    Kind::KeyLogin,
    Kind::RightPassword,
    Kind::KeyLogin,
];

/// Payloads Lambda could deliver that are no Transfer request (each answered `{}`).
const MALFORMED: [&[u8]; 6] = [
    b"\xff\xfe\x00garbage",
    b"{\"username\": \"al\xffice\"}",
    br#"{"username": "\ud800x"}"#,
    b"",
    b"{",
    br#"{"username": 5, "password": ["x"]}"#,
];

/// What one soak saw.
#[derive(Debug, Clone, Default)]
pub struct Soak {
    pub logins: u64,
    /// Answers that were not what the kind of login must get.
    pub wrong_answers: u64,
    pub first_wrong: Vec<String>,
    /// Logins after which `rss_early_kib` was read.
    pub early_after: u64,
    pub rss_early_kib: u64,
    pub rss_end_kib: u64,
    pub elapsed: Duration,
}

impl Soak {
    /// The end's resident memory against the early reading, in percent.
    pub fn rss_change_percent(&self) -> f64 {
        if self.rss_early_kib == 0 {
            return 0.0;
        }
        (self.rss_end_kib as f64 - self.rss_early_kib as f64) * 100.0 / self.rss_early_kib as f64
    }
}

/// The fixture's users as the soak expects them: alice (a password and the sample key) and
/// partner@example.com (a password with a quote and a backslash).
pub async fn fixture() -> Result<Fixture> {
    let f = Fixture::new().await?;
    f.put_sample_users().await?;
    Ok(f)
}

struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `logins` logins through the `auth` binary next to this executable, reading its memory
/// after `early` of them. `progress` is called every 10,000 logins.
pub fn run(f: &Fixture, logins: u64, early: u64, progress: &dyn Fn(u64)) -> Result<Soak> {
    let mut api = RuntimeApi::start()?;
    let child = f
        .auth_command(&api)?
        // The deployed log level; the lines go nowhere (a pipe nobody reads would fill).
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the auth binary")?;
    let function = Function(child);
    let pid = function.0.id();
    api.wait_ready(Duration::from_secs(60))?;
    let started = Instant::now();
    let mut soak = Soak {
        early_after: early,
        ..Soak::default()
    };
    for i in 0..logins {
        let kind = MIX[(i % MIX.len() as u64) as usize];
        let payload = match kind {
            Kind::RightPassword if i % 40 < 20 => {
                direct_event("alice", Some("correct horse battery staple")).to_string()
            }
            Kind::RightPassword => {
                direct_event("partner@example.com", Some(r#"quote"and\backslash"#)).to_string()
            }
            Kind::WrongPassword => direct_event("alice", Some(&format!("guess-{i}"))).to_string(),
            Kind::UnknownUser => direct_event(&format!("nobody-{i}"), Some("x")).to_string(),
            Kind::KeyLogin => direct_event("alice", None).to_string(),
            Kind::Malformed => String::new(),
        };
        let bytes = if kind == Kind::Malformed {
            MALFORMED[(i / 20 % MALFORMED.len() as u64) as usize].to_vec()
        } else {
            payload.into_bytes()
        };
        let answer = api.invoke(&bytes, Duration::from_secs(60))?;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let right = answer.ok
            && match kind {
                Kind::RightPassword => {
                    body["Role"] == DEFAULT_ROLE && body.get("PublicKeys").is_none()
                }
                Kind::KeyLogin => {
                    body["Role"] == DEFAULT_ROLE && body["PublicKeys"] == json!([SAMPLE_KEY])
                }
                Kind::WrongPassword | Kind::UnknownUser | Kind::Malformed => body == json!({}),
            };
        if !right {
            soak.wrong_answers += 1;
            if soak.first_wrong.len() < 10 {
                soak.first_wrong
                    .push(format!("login {i} ({kind:?}): ok={} {body}", answer.ok));
            }
        }
        soak.logins += 1;
        if soak.logins == early {
            soak.rss_early_kib = rss_kib(pid)?;
        }
        if soak.logins.is_multiple_of(10_000) {
            progress(soak.logins);
        }
    }
    soak.rss_end_kib = rss_kib(pid)?;
    soak.elapsed = started.elapsed();
    Ok(soak)
}
