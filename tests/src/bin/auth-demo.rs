//! A guided run of the real auth Lambda on this machine: creates a users table, a salt keyring and
//! the canonical scope-down policy on the local services, adds a user `demo` with a random
//! password, then starts the `auth` binary behind a local Lambda Runtime API and shows what
//! Transfer Family would get back for a few logins. Run with `scripts/demo.sh`.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use ferry_tests::Fixture;
use ferry_tests::fixture::SAMPLE_KEY;
use ferry_tests::runtime_api::RuntimeApi;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<()> {
    let f = Fixture::new().await?;
    let password = ferry_core::domain::password::generate_password();
    f.put_user(
        "demo",
        Some(&password),
        json!({"publicKeys": [SAMPLE_KEY], "chroot": true}),
    )
    .await?;
    println!(
        "users table {}, salt secret {}, policy {}",
        f.table, f.secret_id, f.policy_arn
    );
    println!("user demo, password {password} (random, shown once)\n");

    let mut api = RuntimeApi::start()?;
    let mut child = f.auth_command(&api)?.stdout(Stdio::inherit()).spawn()?;
    api.wait_ready(Duration::from_secs(10))?;

    let base = json!({"username": "demo", "protocol": "SFTP", "serverId": "s-local", "sourceIp": "127.0.0.1"});
    let cases = [
        ("password login", json!({"password": password})),
        ("wrong password", json!({"password": "not it"})),
        ("key login", json!({})),
        (
            "unknown user",
            json!({"username": "nobody", "password": password}),
        ),
    ];
    for (name, extra) in cases {
        let mut e = base.clone();
        for (k, v) in extra.as_object().into_iter().flatten() {
            e[k] = v.clone();
        }
        let answer = api.invoke(e.to_string().as_bytes(), Duration::from_secs(10))?;
        let body: Value = serde_json::from_slice(&answer.body)?;
        println!("--- {name}\n{}\n", serde_json::to_string_pretty(&body)?);
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}
