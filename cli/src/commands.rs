//! The user commands: each reads what the operator typed (prompts, key files, dates), calls one
//! of the core's administration use cases (`ferry_core::app::admin`), and prints the outcome.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ferry_core::adapters::local::store::LocalStore;
use ferry_core::app::admin::{Changes, KeyRef, PasswordChange, Written};
use ferry_core::app::login::{Authenticator, Decision, Settings};
use ferry_core::domain::dates;
use ferry_core::domain::lifecycle::{at_least_old, last_sign_of_life, parse_age};
use ferry_core::domain::policy_checks::RecordRules;
use ferry_core::domain::protocol::Protocol;
use ferry_core::domain::ssh_key::{fingerprint, key_listed};
use ferry_core::domain::transfer::{AuthRequest, Credential};
use ferry_core::domain::user::{KeyEntry, Status, attr};
use ferry_core::ports::{PolicySource, SaltSource, UserAdmin, UserStore};
use serde_json::{Map, Value, json};

use crate::backend::{Backend, parse_name, refused, store};
use crate::input::{PasswordSource, parse_date, read_keys, read_password};
use crate::{AddArgs, Cli, Command, KeyCommand, LoginArgs, PasswordArgs, UserCommand};

pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(dir) = &cli.target.local {
        let data = LocalStore::open(dir).map_err(store)?;
        return dispatch(&crate::backend::local(&data), cli.command).await;
    }
    let backend = crate::backend::aws(&cli.target).await?;
    dispatch(&backend, cli.command).await
}

async fn dispatch<U, S, P>(b: &Backend<U, S, P>, command: Command) -> Result<ExitCode>
where
    U: UserAdmin + UserStore,
    S: SaltSource,
    P: PolicySource,
{
    let admin = b.admin();
    match command {
        Command::Login(args) => login(b, args).await,
        // main starts these itself; an error (not a panic) should that ever change.
        Command::Up(_) | Command::Console(_) | Command::Salt(_) | Command::Defender(_) => {
            bail!("not a user administration command")
        }
        Command::User(cmd) => {
            match cmd {
                UserCommand::Add(args) => add(b, args).await?,
                UserCommand::Passwd { name, password } => {
                    let username = parse_name(&name)?;
                    let source = source(&password).unwrap_or(PasswordSource::Prompt);
                    let password = read_password(source, true)?;
                    admin
                        .set_password(&username, &password)
                        .await
                        .map_err(refused)?;
                    eprintln!("password of {name} changed");
                }
                UserCommand::Show { name, json } => show(&b.users, &name, json).await?,
                UserCommand::List { json, inactive } => {
                    let inactive = inactive.as_deref().map(parse_age).transpose()?;
                    list(&b.users, json, inactive).await?;
                }
                UserCommand::Disable { name, legacy_table } => {
                    admin
                        .disable_with_legacy(&parse_name(&name)?, &b.legacy(legacy_table)?)
                        .await
                        .map_err(refused)?;
                    eprintln!("user {name} is now disabled");
                }
                UserCommand::Source {
                    name,
                    source,
                    clear: _,
                } => {
                    let source = source
                        .as_deref()
                        .map(ferry_core::domain::directory::SourceName::parse)
                        .transpose()?;
                    admin
                        .set_identity_source(&parse_name(&name)?, source.as_ref())
                        .await
                        .map_err(refused)?;
                    match source {
                        Some(s) => eprintln!("user {name} is now verified by directory source {s}"),
                        None => eprintln!("user {name} is now verified by ferry's own password"),
                    }
                }
                UserCommand::Enable { name } => {
                    admin
                        .enable(&parse_name(&name)?, &b.policies, &RecordRules::default())
                        .await
                        .map_err(refused)?;
                    eprintln!("user {name} is now active");
                }
                UserCommand::Rm { name, legacy_table } => {
                    let username = parse_name(&name)?;
                    let legacy_items = admin
                        .remove_with_legacy(&username, &b.legacy(legacy_table)?)
                        .await
                        .map_err(refused)?;
                    match legacy_items {
                        0 => eprintln!("user {username} removed"),
                        n => eprintln!(
                            "user {username} removed, with {n} item(s) of the seed design's table"
                        ),
                    }
                }
                UserCommand::Key(cmd) => key(b, cmd).await?,
                UserCommand::Import(args) => return crate::import::import(b, args).await,
                UserCommand::Validate(args) => {
                    return crate::validate::validate(
                        &b.users,
                        &b.policies,
                        b.verdicts.as_ref(),
                        args,
                    )
                    .await;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn source(p: &PasswordArgs) -> Option<PasswordSource> {
    if p.password_stdin {
        Some(PasswordSource::Stdin)
    } else if p.generate_password {
        Some(PasswordSource::Generate)
    } else {
        None
    }
}

async fn add<U, S, P>(b: &Backend<U, S, P>, a: AddArgs) -> Result<()>
where
    U: UserAdmin + UserStore,
    S: SaltSource,
{
    let username = parse_name(&a.name)?;
    let mut keys = Vec::new();
    for file in &a.keys {
        keys.extend(read_keys(file)?);
    }
    let changes = Changes {
        bucket: a.bucket,
        home: a.home,
        policy_arn: a.policy_arn,
        role_arn: a.role_arn,
        chroot: a.chroot.then_some(true),
        keys,
        allowed_ips: a.allow_ips,
        servers: a.servers,
        protocols: a.protocols,
        expires_at: a.expires.as_deref().map(parse_date).transpose()?,
        disable_after_inactive_days: a.disable_after_inactive_days.map(|d| d.0),
        password_max_age_days: a.password_max_age_days.map(|d| d.0),
        replace_lists: false,
    };
    let password = match source(&a.password) {
        Some(s) => PasswordChange::Set(read_password(s, true)?),
        None if a.no_password => PasswordChange::Remove,
        // An update keeps the stored password unless a new one is asked for.
        None if a.update => PasswordChange::Keep,
        None => PasswordChange::Set(read_password(PasswordSource::Prompt, true)?),
    };
    let written = b
        .admin()
        .add(&username, changes, password, a.update)
        .await
        .map_err(refused)?;
    eprintln!(
        "user {username} {}",
        match written {
            Written::Created => "created",
            Written::Updated => "updated",
        }
    );
    Ok(())
}

/// The stored record as JSON for display, or an error naming the user.
async fn existing<U: UserAdmin>(users: &U, name: &str) -> Result<Map<String, Value>> {
    let username = parse_name(name)?;
    match users.get_raw(&username).await.map_err(store)? {
        Some(Value::Object(m)) => Ok(m),
        _ => bail!("no user {username}"),
    }
}

/// The record for display: no hash, keys with fingerprints.
fn public_view(mut record: Map<String, Value>) -> Map<String, Value> {
    let has_password = record.remove(attr::PASSWORD_HASH).is_some();
    record.insert(
        "password".into(),
        json!(if has_password { "set" } else { "none" }),
    );
    record
}

async fn show<U: UserAdmin>(users: &U, name: &str, as_json: bool) -> Result<()> {
    let record = public_view(existing(users, name).await?);
    if as_json {
        println!("{}", serde_json::to_string_pretty(&record)?);
        return Ok(());
    }
    for (k, v) in &record {
        match (k.as_str(), v) {
            (attr::PUBLIC_KEYS, Value::Array(keys)) => {
                println!("{k:<22}{} key(s)", keys.len());
                for line in key_lines(&stored_keys(keys)) {
                    println!("  {line}");
                }
            }
            (
                attr::EXPIRES_AT
                | attr::LAST_LOGIN_AT
                | attr::PASSWORD_CHANGED_AT
                | attr::ENABLED_AT,
                Value::Number(n),
            ) => match n.as_i64() {
                Some(t) => println!("{k:<22}{}", dates::format_date(t)),
                None => println!("{k:<22}{v}"),
            },
            (_, Value::String(s)) => println!("{k:<22}{s}"),
            _ => println!("{k:<22}{v}"),
        }
    }
    Ok(())
}

/// Key entries as stored (plain strings or `{key, expiresAt}` maps); unreadable ones are shown
/// as empty keys rather than hidden.
fn stored_keys(keys: &[Value]) -> Vec<KeyEntry> {
    keys.iter()
        .map(|k| {
            serde_json::from_value(k.clone()).unwrap_or_else(|_| KeyEntry::new(String::new(), None))
        })
        .collect()
}

fn key_lines(keys: &[KeyEntry]) -> Vec<String> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let text = k.key();
            let kind = text.split_ascii_whitespace().next().unwrap_or("?");
            let comment = text.split_ascii_whitespace().nth(2).unwrap_or("");
            let fp = fingerprint(text).unwrap_or_else(|| "(unreadable key)".into());
            let exp = k.expires_at().map_or(String::new(), |t| {
                format!(" expires {}", dates::format_date(t))
            });
            format!("{:>2}  {kind:<20} {fp} {comment}{exp}", i + 1)
        })
        .collect()
}

/// A date attribute of a record shown for display (`None` when absent or not a whole number).
fn epoch(record: &Map<String, Value>, name: &str) -> Option<i64> {
    record.get(name).and_then(Value::as_i64)
}

/// Lists users; with `inactive` (seconds), only those whose last sign of life (the latest of
/// `lastLoginAt`, `passwordChangedAt`, `enabledAt`, as the auth function judges inactivity) is
/// at least that old.
async fn list<U: UserAdmin>(users: &U, as_json: bool, inactive: Option<i64>) -> Result<()> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let page = users.list_users(start).await.map_err(store)?;
        all.extend(page.users.into_iter().filter_map(|v| match v {
            Value::Object(m) => Some(public_view(m)),
            _ => None,
        }));
        match page.next {
            Some(n) => start = Some(n),
            None => break,
        }
    }
    all.sort_by(|a, b| {
        a.get(attr::USERNAME)
            .and_then(Value::as_str)
            .cmp(&b.get(attr::USERNAME).and_then(Value::as_str))
    });
    let mut undated = 0;
    if let Some(age) = inactive {
        let now = ferry_core::app::now_epoch();
        all.retain(|u| {
            let since = last_sign_of_life(
                epoch(u, attr::LAST_LOGIN_AT),
                epoch(u, attr::PASSWORD_CHANGED_AT),
                epoch(u, attr::ENABLED_AT),
            );
            if since.is_none() {
                undated += 1;
            }
            since.is_some_and(|t| at_least_old(t, age, now))
        });
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<32} {:<9} {:<8} {:<5} {:<20} HOME",
        "USERNAME", "STATUS", "PASSWORD", "KEYS", "LAST LOGIN"
    );
    for u in &all {
        let s = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let keys = u
            .get(attr::PUBLIC_KEYS)
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        // No status attribute reads as active, as the record parser reads it.
        let status = if s(attr::STATUS).is_empty() {
            Status::Active.as_str().to_owned()
        } else {
            s(attr::STATUS)
        };
        let chroot = if u.get(attr::CHROOT) == Some(&json!(true)) {
            " (chroot)"
        } else {
            ""
        };
        let last_login =
            epoch(u, attr::LAST_LOGIN_AT).map_or_else(|| "never".to_owned(), dates::format_date);
        println!(
            "{:<32} {:<9} {:<8} {:<5} {:<20} /{}/{}{chroot}",
            s(attr::USERNAME),
            status,
            s("password"),
            keys,
            last_login,
            s(attr::BUCKET),
            s(attr::HOME).trim_matches('/')
        );
    }
    eprintln!("{} user(s)", all.len());
    if undated > 0 {
        eprintln!(
            "{undated} user(s) not judged: no last login, password date or creation date (made before ferry recorded them)"
        );
    }
    Ok(())
}

async fn key<U, S, P>(b: &Backend<U, S, P>, cmd: KeyCommand) -> Result<()>
where
    U: UserAdmin + UserStore,
    S: SaltSource,
{
    let admin = b.admin();
    match cmd {
        KeyCommand::List { name } => {
            let keys = admin.keys(&parse_name(&name)?).await.map_err(refused)?;
            for line in key_lines(&keys) {
                println!("{line}");
            }
        }
        KeyCommand::Add {
            name,
            file,
            expires,
        } => {
            let username = parse_name(&name)?;
            let expires = expires.as_deref().map(parse_date).transpose()?;
            let added = admin
                .add_keys(&username, &read_keys(&file)?, expires)
                .await
                .map_err(refused)?;
            for _ in 0..added.skipped {
                eprintln!("skipped a key {name} already has");
            }
            eprintln!("keys of {name} updated");
        }
        KeyCommand::Rm { name, key } => {
            let which = match key.parse::<usize>() {
                Ok(n) => KeyRef::Number(n),
                Err(_) => KeyRef::Fingerprint(key),
            };
            admin
                .remove_key(&parse_name(&name)?, &which)
                .await
                .map_err(refused)?;
            eprintln!("key removed from {name}");
        }
    }
    Ok(())
}

async fn login<U, S, P>(b: &Backend<U, S, P>, a: LoginArgs) -> Result<ExitCode>
where
    U: UserStore,
    S: SaltSource,
    P: PolicySource,
{
    let username = parse_name(&a.name)?;
    let protocol = Protocol::parse(&a.protocol).context("--protocol must be SFTP, FTPS or FTP")?;
    let source_ip = a
        .source_ip
        .parse()
        .context("--source-ip is not an IP address")?;
    let offered_key = a
        .key
        .as_deref()
        .map(read_keys)
        .transpose()?
        .and_then(|k| k.into_iter().next());
    let credential = match &offered_key {
        Some(_) => Credential::PublicKey,
        None => {
            let src = if a.password_stdin {
                PasswordSource::Stdin
            } else {
                PasswordSource::Prompt
            };
            Credential::Password(read_password(src, false)?)
        }
    };
    let auth = Authenticator::new(
        &b.users,
        b.salts.get()?,
        &b.policies,
        Settings {
            default_role_arn: a.default_role_arn,
            salt_cache: Duration::ZERO,
            policy_cache: Duration::ZERO,
            // One login per process: there is no repeat to serve.
            verified_cache: Duration::ZERO,
        },
    )
    // The auth function's default limits, from the same variables.
    .with_lifecycle(ferry_core::config::lifecycle_config(&|k| {
        std::env::var(k).ok()
    })?)
    .with_directories(crate::directory::sources(a.directory.as_deref(), None).await?);
    let request = AuthRequest {
        username,
        credential,
        protocol,
        server_id: a.server,
        source_ip,
    };
    let decision = auth.authenticate(&request).await;
    let response = match decision {
        Decision::Deny(reason) => {
            println!("{{}}");
            eprintln!("denied: {}", reason.code());
            return Ok(ExitCode::from(1));
        }
        Decision::Allow(r) => r,
    };
    // Transfer accepts a key login only when the offered key is among those returned.
    if let Some(offered) = &offered_key {
        let listed = response
            .public_keys
            .as_deref()
            .is_some_and(|keys| key_listed(keys, offered));
        if !listed {
            println!("{}", serde_json::to_string_pretty(&response)?);
            eprintln!("denied: the offered key is not among the user's live keys");
            return Ok(ExitCode::from(1));
        }
    }
    println!("{}", serde_json::to_string_pretty(&response)?);
    eprintln!("allowed");
    Ok(ExitCode::SUCCESS)
}
