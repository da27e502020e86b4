//! The real `auth` binary, run as Lambda runs it: polling a Lambda Runtime API, with its
//! configuration from the environment and the local services behind it.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_tests::Fixture;
use ferry_tests::fixture::{DEFAULT_ROLE, sample_events};
use ferry_tests::runtime_api::RuntimeApi;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// What no log line may hold: the sample events' passwords, the fixture's salts, any hash.
const SECRETS: [&str; 5] = [
    "correct horse battery staple",
    "backslash",
    "current-salt-two",
    "old-salt-one",
    "$argon2id$",
];

/// The running function; killed when dropped, so a failing test leaves no process behind.
struct Function(Option<Child>);

impl Function {
    /// Stops the function and returns what it printed.
    fn finish(mut self) -> Result<std::process::Output> {
        let mut child = self.0.take().context("already finished")?;
        child.kill()?;
        Ok(child.wait_with_output()?)
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn(api: &RuntimeApi, f: &Fixture) -> Result<Function> {
    let child = f
        .auth_command(api)?
        // The pipes are read only at the end: pin the level (the default, as deployed) so an
        // inherited RUST_LOG=trace cannot fill them and stall the function.
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Ok(Function(Some(child)))
}

fn invoke(api: &mut RuntimeApi, payload: &[u8]) -> Result<Value> {
    let answer = api.invoke(payload, WAIT)?;
    assert!(
        answer.ok,
        "the function must answer, not raise a Lambda error: {}",
        String::from_utf8_lossy(&answer.body)
    );
    Ok(serde_json::from_slice(&answer.body)?)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_binary_answers_every_sample_event_and_unreadable_payloads() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_sample_users().await?;
    let mut api = RuntimeApi::start()?;
    let function = spawn(&api, &f)?;
    api.wait_ready(WAIT)?;

    for (name, event) in sample_events()? {
        let got = invoke(&mut api, event.to_string().as_bytes())?;
        let body = match got.get("body").and_then(Value::as_str) {
            Some(b) => {
                assert_eq!(got["statusCode"], 200, "{name}");
                serde_json::from_str(b)?
            }
            None => got,
        };
        if name.starts_with("bad-") {
            assert_eq!(body, json!({}), "{name}");
        } else {
            assert_eq!(body["Role"], DEFAULT_ROLE, "{name}: {body}");
            assert_eq!(
                body.get("PublicKeys").is_some(),
                name.contains("public-key") || name.contains("empty-password"),
                "{name}"
            );
        }
    }

    // Payloads Lambda could deliver that are not JSON at all: still a plain denial.
    for raw in [
        &b"\xff\xfe\x00garbage"[..],
        b"{\"username\": \"al\xffice\"}",
        br#"{"username": "\ud800x"}"#,
        b"",
        b"{",
        b"null",
    ] {
        assert_eq!(invoke(&mut api, raw)?, json!({}), "payload {raw:?}");
    }

    // The process is still serving after all of that.
    let ok = invoke(
        &mut api,
        sample_events()?
            .iter()
            .find(|(n, _)| n == "direct-password.json")
            .unwrap()
            .1
            .to_string()
            .as_bytes(),
    )?;
    assert_eq!(ok["Role"], DEFAULT_ROLE);

    let out = function.finish()?;
    let logs = String::from_utf8_lossy(&out.stdout);
    assert!(
        logs.contains("\"target\":\"ferry::audit\""),
        "audit lines are JSON: {logs:.500}"
    );
    // The template's metric filters read these paths: keep them where they are.
    let audit: Value = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["target"] == "ferry::audit" && l["fields"]["message"] == "login")
        .expect("a JSON audit line");
    for field in ["outcome", "reason", "server_id"] {
        assert!(
            audit["fields"][field].is_string(),
            "fields.{field} in {audit}"
        );
    }
    for secret in SECRETS {
        assert!(!logs.contains(secret), "logs must not contain {secret:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_binary_refuses_to_start_without_its_configuration_and_names_the_variable()
-> Result<()> {
    let f = Fixture::new().await?;
    let api = RuntimeApi::start()?;
    let mut cmd = f.auth_command(&api)?;
    cmd.env_remove("USERS_TABLE");
    let out = cmd.output()?;
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("USERS_TABLE"), "{all}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_value_of_rust_log_makes_the_auth_binary_print_a_password_salt_or_hash() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_sample_users().await?;
    let password_events: Vec<(String, Value)> = sample_events()?
        .into_iter()
        .filter(|(n, _)| n.contains("password") && !n.starts_with("bad-"))
        .collect();
    assert!(password_events.len() >= 3, "the password samples are there");
    for rust_log in [
        "trace",
        // More specific than the crate-level cap ferry adds: this one printed the raw event.
        "lambda_runtime::layers::api_response=trace",
        "info,lambda_runtime::layers=trace,lambda_runtime_api_client=trace",
        "aws_smithy_runtime::client::orchestrator=trace,hyper::proto=trace",
        "debug,lambda_runtime[invoke]=trace",
    ] {
        let mut api = RuntimeApi::start()?;
        // Output goes to a file, not a pipe: at trace a pipe read only at the end would fill.
        let log = std::env::temp_dir().join(ferry_tests::fixture::unique("auth-log"));
        let file = std::fs::File::create(&log)?;
        let child = f
            .auth_command(&api)?
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()?;
        let function = Function(Some(child));
        api.wait_ready(WAIT)?;
        for (name, event) in &password_events {
            let got = invoke(&mut api, event.to_string().as_bytes())?;
            assert_ne!(got, json!({}), "{rust_log}: {name} is allowed");
        }
        function.finish()?;
        let logs = std::fs::read_to_string(&log)?;
        let _ = std::fs::remove_file(&log);
        // Where the filter enables ferry's own info lines at all, the audit lines are there:
        // the cap held back the runtime's and the SDK's output, not everything.
        if ["trace", "info", "debug"]
            .iter()
            .any(|l| rust_log.starts_with(l))
        {
            assert!(
                logs.contains("ferry::audit"),
                "{rust_log}: the audit lines are there"
            );
        }
        for secret in SECRETS.iter().chain(&["cXVvdGUiYW5kXGJhY2tzbGFzaA"]) {
            assert!(
                !logs.contains(secret),
                "RUST_LOG={rust_log} printed {secret:?}"
            );
        }
    }
    Ok(())
}
