//! The use cases: what ferry does, written against the ports only. Each entry point (a Lambda,
//! `ferry up`, the CLI, a console) builds adapters and calls one of these.

pub mod admin;
pub mod audit;
pub mod login;
pub mod rotation;
pub mod uploads;
pub mod verdicts;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch (0 if the clock is before 1970, which cannot make anything unexpire
/// that has a real expiry).
pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
