//! `ferry salt`: the keyring's versions and how many users each one still carries, and
//! rotation (RotateSecret on AWS; the same four steps in process with `--local`).

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::local::store::LocalStore;
use ferry_core::app::rotation::{Outcome, Step, run_step};
use ferry_core::ports::{LegacyUsers, SaltSource, SaltUsage};

use crate::Target;
use crate::backend::store;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum SaltCommand {
    /// Keyring versions (never their values), the current one, users per version, and legacy
    /// users still to migrate
    Status {
        /// The seed design's users table, to count users not yet migrated
        #[arg(long = "legacy-table", env = "LEGACY_USERS_TABLE")]
        legacy_table: Option<String>,
    },
    /// Rotate the salt: on AWS start the secret's rotation (RotateSecret); with --local run the
    /// four rotation steps here
    Rotate,
}

pub(crate) async fn run(cmd: SaltCommand, target: Target) -> Result<ExitCode> {
    if let Some(dir) = &target.local {
        let data = LocalStore::open(dir).map_err(store)?;
        return match cmd {
            SaltCommand::Status { .. } => status(&data, &data, &ferry_core::ports::NoLegacy).await,
            SaltCommand::Rotate => rotate_local(&data).await,
        };
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let secret = target
        .salt_secret
        .as_deref()
        .context("no salt secret: pass --salt-secret or set SALT_SECRET_ID (or use --local)")?;
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    match cmd {
        SaltCommand::Status { legacy_table } => {
            let table = target
                .table
                .as_deref()
                .context("no users table: pass --table or set USERS_TABLE (or use --local)")?;
            let ddb = aws_sdk_dynamodb::Client::new(&sdk);
            status(
                &SecretsManagerSaltSource::new(secrets, secret),
                &DynamoUserStore::new(ddb.clone(), table),
                &DynamoLegacyUsers::new(ddb, legacy_table),
            )
            .await
        }
        SaltCommand::Rotate => {
            let out = secrets
                .rotate_secret()
                .secret_id(secret)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!(ferry_core::ports::error_chain(&e)))
                .context(
                    "RotateSecret failed (is the salt-rotation function attached to this secret?)",
                )?;
            println!(
                "rotation of {secret} started: version {} becomes current when the salt-rotation function finishes",
                out.version_id().unwrap_or("?")
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status<S: SaltSource, U: SaltUsage, L: LegacyUsers>(
    salts: &S,
    usage: &U,
    legacy: &L,
) -> Result<ExitCode> {
    let keyring = salts.load_keyring().await.map_err(store)?;
    println!("{:<10} {:<8} {:>8}", "VERSION", "CURRENT", "USERS");
    for version in keyring.versions() {
        let users = usage.count(version).await.map_err(store)?;
        let current = if version == keyring.current_version() {
            "*"
        } else {
            ""
        };
        println!("{version:<10} {current:<8} {users:>8}");
    }
    if legacy.enabled() {
        let left = legacy.count().await.map_err(store)?;
        println!("legacy users still to migrate: {left}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn rotate_local(data: &LocalStore) -> Result<ExitCode> {
    let token = {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).context("reading the OS random source")?;
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    data.begin_rotation(&token).map_err(store)?;
    for step in [Step::Create, Step::Set, Step::Test, Step::Finish] {
        match run_step(data, data, step, &token).await {
            Ok(Outcome::Created {
                version,
                kept,
                dropped,
            }) => println!(
                "{}: new version {version}; kept {kept:?}; dropped {dropped:?}",
                step.as_str()
            ),
            Ok(outcome) => println!("{}: {outcome:?}", step.as_str()),
            Err(e) => bail!(
                "{} failed: {}; the current keyring is unchanged",
                step.as_str(),
                ferry_core::ports::error_chain(&e)
            ),
        }
    }
    let keyring = data.load_keyring().await.map_err(store)?;
    println!(
        "salt rotated: version {} is current",
        keyring.current_version()
    );
    Ok(ExitCode::SUCCESS)
}
