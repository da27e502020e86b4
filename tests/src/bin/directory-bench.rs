//! Directory login benchmark against the test OpenLDAP (`scripts/bench-directory.sh` starts it):
//! a directory password login (search with the kept service connection, group walk, a bind as
//! the user on a new TLS connection) and a directory key login (search and group walk only)
//! beside a local Argon2 password login, all through the same authenticator on a data folder.
//! Prints figures; asserts nothing about time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_core::adapters::ldap::local_sources;
use ferry_core::adapters::local::store::{DEFAULT_POLICY, LocalStore, policy_arn};
use ferry_core::app::login::{Authenticator, Decision, Settings};
use ferry_core::domain::directory::parse_sources;
use ferry_core::domain::password::{Password, hash_password};
use ferry_core::domain::protocol::Protocol;
use ferry_core::domain::transfer::{AuthRequest, Credential};
use ferry_core::domain::user::{StoredRecord, UserRecord};
use ferry_core::domain::username::Username;
use ferry_core::ports::{SaltSource, UserAdmin};
use serde_json::json;

const LOCAL_PASSWORD: &str = "correct horse battery staple";

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} is unset: run scripts/bench-directory.sh"))
}

fn p(v: &mut [Duration], q: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i].as_secs_f64() * 1000.0
}

fn request(name: &str, credential: Credential) -> Result<AuthRequest> {
    Ok(AuthRequest {
        username: Username::parse(name)?,
        credential,
        protocol: Protocol::Sftp,
        server_id: "s-bench".into(),
        source_ip: "127.0.0.1".parse()?,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = std::env::var("BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let dir = std::env::temp_dir().join(format!("ferry-directory-bench-{}", std::process::id()));
    let store = Arc::new(LocalStore::open(&dir)?);
    let keyring = store.load_keyring().await?;
    let hash = hash_password(keyring.current_salt(), &Password::parse(LOCAL_PASSWORD)?)?;
    let local = UserRecord::from_stored(StoredRecord {
        username: "local-user".into(),
        bucket: Some("ferry-local".into()),
        home: Some("local-user".into()),
        iam_policy_arn: Some(policy_arn(DEFAULT_POLICY)),
        password_hash: Some(hash),
        salt_version: Some(keyring.current_version().to_owned()),
        ..StoredRecord::default()
    })?;
    store.put_user(&local, false).await?;

    let sources = json!({"sources": [{
        "name": "corp",
        "url": env("FERRY_LDAP_URL")?,
        "caBundle": format!("file:{}", env("FERRY_LDAP_CA")?),
        "baseDn": env("FERRY_LDAP_BASE_DN")?,
        "bindDn": env("FERRY_LDAP_BIND_DN")?,
        "bindPassword": "env:FERRY_LDAP_BIND_PASSWORD",
        "allowedGroups": [env("FERRY_LDAP_GROUP_DN")?],
        "groupCheck": "memberSearch",
        "groupBaseDn": env("FERRY_LDAP_GROUP_BASE_DN")?,
        "attributes": {"publicKeys": "sshPublicKey", "accountControl": "userAccountControl"},
        "defaultProfile": {"bucket": "ferry-local", "home": "corp/${transfer:UserName}",
                           "iamPolicyArn": policy_arn(DEFAULT_POLICY)}
    }]});
    let directories = local_sources(parse_sources(&sources.to_string())?)?;
    let auth = Authenticator::new(
        Arc::clone(&store),
        Arc::clone(&store),
        Arc::clone(&store),
        Settings {
            default_role_arn: "arn:aws:iam::000000000000:role/ferry-local".into(),
            salt_cache: Duration::from_secs(60),
            policy_cache: Duration::from_secs(60),
            // Every local login pays its Argon2 run, as a first login does.
            verified_cache: Duration::ZERO,
        },
    )
    .with_directories(directories);

    let directory_password = env("FERRY_LDAP_USER_PASSWORD")?;
    let cases = [
        (
            "local password login (Argon2, SQLite)",
            request(
                "local-user",
                Credential::Password(Password::parse(LOCAL_PASSWORD)?),
            )?,
        ),
        (
            "directory password login (search + bind)",
            request(
                "alice",
                Credential::Password(Password::parse(directory_password)?),
            )?,
        ),
        (
            "directory key login (search)",
            request("alice", Credential::PublicKey)?,
        ),
    ];
    println!("ferry directory benchmark (slapd on 127.0.0.1, LDAPS), n={n} each after 10 warm-up");
    for (name, req) in &cases {
        for _ in 0..10 {
            if !matches!(auth.authenticate(req).await, Decision::Allow(_)) {
                bail!("{name}: the warm-up login was denied");
            }
        }
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let decision = auth.authenticate(req).await;
            times.push(started.elapsed());
            if !matches!(decision, Decision::Allow(_)) {
                bail!("{name}: a login was denied");
            }
        }
        println!(
            "{name:<44} p50 {:>7.2} ms  p99 {:>7.2} ms",
            p(&mut times, 0.5),
            p(&mut times, 0.99)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
