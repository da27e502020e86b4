//! Support for ferry's cross-crate suites: connections to the real local services the test
//! script starts (DynamoDB Local, moto), per-test fixtures with unique names, and a small Lambda
//! Runtime API so the real `auth` binary can be invoked as Lambda would.

pub mod fixture;
pub mod harness;
pub mod load;
pub mod openssh;
pub mod rotation;
pub mod runtime_api;
pub mod soak;
pub mod ssh;
pub mod stream;
pub mod up;

pub use fixture::{Fixture, aws_config, services_available};

/// Runs `cmd` with `stdin` written to its standard input and returns what it printed.
pub fn run_with_stdin(
    mut cmd: std::process::Command,
    stdin: &str,
) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes())?;
    }
    child.wait_with_output()
}
