//! `ferry user import`: bulk creation from CSV. Every row is checked on its own; a bad row is
//! reported with its line number and reason and the others are still written, so a re-run after
//! fixing the file only adds what is missing.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::password::Password;
use ferry_core::ports::{SaltSource, UserAdmin};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};

use crate::ImportArgs;
use crate::commands::{Backend, Fields, apply_fields, parse_name, put_hash, store, write};
use crate::input::parse_date;

/// The columns a file may have; `username` is the only one every file needs.
const COLUMNS: [&str; 12] = [
    "username",
    "password",
    "bucket",
    "home",
    "policy_arn",
    "role_arn",
    "chroot",
    "public_keys",
    "allowed_ips",
    "servers",
    "protocols",
    "expires",
];

#[derive(Debug, PartialEq, Eq)]
enum RowOutcome {
    Created,
    Updated,
    Skipped,
}

pub(crate) async fn import<U: UserAdmin, S: SaltSource, P>(
    b: &Backend<U, S, P>,
    a: ImportArgs,
) -> Result<ExitCode> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(&a.file)
        .with_context(|| format!("opening {}", a.file.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .context("line 1: reading the header")?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        bail!(
            "line 1: unknown column {unknown:?} (columns: {})",
            COLUMNS.join(", ")
        );
    }
    if !headers.iter().any(|h| h == "username") {
        bail!("line 1: the header has no username column");
    }
    // Read every row first: the count drives the progress bar, and a CSV of users is small.
    let rows: Vec<(u64, Result<csv::StringRecord, csv::Error>)> = reader
        .records()
        .map(|r| {
            (
                r.as_ref()
                    .ok()
                    .and_then(|r| r.position())
                    .map_or(0, |p| p.line()),
                r,
            )
        })
        .collect();

    let bar = ProgressBar::new(rows.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} users {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut keyring: Option<Keyring> = None;
    let (mut created, mut updated, mut skipped, mut failed) = (0, 0, 0, 0);
    for (line, row) in rows {
        let outcome = match row {
            Err(e) => Err(anyhow!("{e}")),
            Ok(row) => {
                let get = |name: &str| {
                    headers
                        .iter()
                        .position(|h| h == name)
                        .and_then(|i| row.get(i))
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                import_row(b, &a, &get, &mut keyring).await
            }
        };
        match outcome {
            Ok(RowOutcome::Created) => created += 1,
            Ok(RowOutcome::Updated) => updated += 1,
            Ok(RowOutcome::Skipped) => skipped += 1,
            Err(e) => {
                failed += 1;
                let line = if line == 0 {
                    String::from("?")
                } else {
                    line.to_string()
                };
                bar.suspend(|| eprintln!("line {line}: {e:#}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!(
        "{created} created, {updated} updated, {skipped} skipped (already there), {failed} failed"
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn import_row<U: UserAdmin, S: SaltSource, P>(
    b: &Backend<U, S, P>,
    a: &ImportArgs,
    get: &impl Fn(&str) -> Option<String>,
    keyring: &mut Option<Keyring>,
) -> Result<RowOutcome> {
    let users = &b.users;
    let name = get("username").context("username is empty")?;
    let username = parse_name(&name)?;
    let stored = users.get_raw(&username).await.map_err(store)?;
    let exists = stored.is_some();
    if exists && !a.update {
        return Ok(RowOutcome::Skipped);
    }
    let mut record = match stored {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let list = |col: &str| -> Vec<String> {
        get(col).map_or_else(Vec::new, |v| {
            v.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    };
    let chroot = match get("chroot").map(|v| v.to_ascii_lowercase()) {
        None => None,
        Some(v) if ["true", "yes", "1"].contains(&v.as_str()) => Some(true),
        Some(v) if ["false", "no", "0"].contains(&v.as_str()) => Some(false),
        Some(v) => bail!("chroot must be true or false, not {v:?}"),
    };
    let fields = Fields {
        bucket: get("bucket")
            .or_else(|| a.bucket.clone())
            .or_else(|| b.default_bucket.clone()),
        home: get("home"),
        policy_arn: get("policy_arn")
            .or_else(|| a.policy_arn.clone())
            .or_else(|| b.default_policy_arn.clone()),
        role_arn: get("role_arn"),
        chroot,
        keys: list("public_keys"),
        allow_ips: list("allowed_ips"),
        servers: list("servers"),
        protocols: list("protocols"),
        expires_at: get("expires").as_deref().map(parse_date).transpose()?,
    };
    let has_keys = !fields.keys.is_empty() || record.contains_key("publicKeys");
    apply_fields(&mut record, &username, fields)?;
    match get("password") {
        Some(text) => {
            let password = Password::parse(text).map_err(|e| anyhow!("password: {e}"))?;
            if keyring.is_none() {
                *keyring = Some(b.salts()?.load_keyring().await.map_err(store)?);
            }
            let k = keyring.as_ref().context("keyring")?;
            put_hash(&mut record, k, &password)?;
        }
        None if !exists && !has_keys => bail!("a new user needs a password or a public key"),
        None => {}
    }
    if !write(users, &record, a.update).await? {
        return Ok(RowOutcome::Skipped);
    }
    Ok(if exists {
        RowOutcome::Updated
    } else {
        RowOutcome::Created
    })
}
