//! The commands: each builds or reads records in the data model's shape through the core's
//! ports, validating every record with the same parser the auth function uses before writing.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::local::store::{DEFAULT_BUCKET, DEFAULT_POLICY, LocalStore, policy_arn};
use ferry_core::app::login::{Authenticator, Decision, Settings};
use ferry_core::domain::password::hash_password;
use ferry_core::domain::protocol::Protocol;
use ferry_core::domain::transfer::{AuthRequest, Credential};
use ferry_core::domain::user::UserRecord;
use ferry_core::domain::username::Username;
use ferry_core::ports::error_chain;
use ferry_core::ports::{PolicySource, SaltSource, StoreError, UserAdmin, UserStore};
use serde_json::{Map, Value, json};

use crate::input::{
    PasswordSource, fingerprint, key_identity, key_listed, parse_date, read_keys, read_password,
};
use crate::{AddArgs, Cli, Command, KeyCommand, LoginArgs, PasswordArgs, UserCommand};

/// Where the commands read and write. The salt source is kept as a result because only the
/// commands that hash or verify need it.
pub(crate) struct Backend<U, S, P> {
    pub(crate) users: U,
    salts: Result<S, String>,
    policies: P,
    /// Where `user validate --write` records verdicts (AWS only).
    pub(crate) verdicts: Option<DynamoUserStore>,
    /// Defaults for a new user (the local data folder has a bucket and a policy of its own).
    pub(crate) default_bucket: Option<String>,
    pub(crate) default_policy_arn: Option<String>,
}

impl<U, S: SaltSource, P> Backend<U, S, P> {
    pub(crate) fn salts(&self) -> Result<&S> {
        self.salts.as_ref().map_err(|e| anyhow!("{e}"))
    }
}

pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(dir) = &cli.target.local {
        let data = LocalStore::open(dir).map_err(store)?;
        let backend = Backend {
            users: &data,
            salts: Ok(&data),
            policies: &data,
            verdicts: None,
            default_bucket: Some(DEFAULT_BUCKET.to_owned()),
            default_policy_arn: Some(policy_arn(DEFAULT_POLICY)),
        };
        return dispatch(&backend, cli.command).await;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let table = cli
        .target
        .table
        .as_deref()
        .context("no users table: pass --table or set USERS_TABLE (or use --local)")?;
    let users = DynamoUserStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let backend = Backend {
        verdicts: Some(users.clone()),
        users,
        salts: cli
            .target
            .salt_secret
            .as_deref()
            .map(|id| SecretsManagerSaltSource::new(aws_sdk_secretsmanager::Client::new(&sdk), id))
            .ok_or_else(|| "no salt secret: pass --salt-secret or set SALT_SECRET_ID".to_owned()),
        policies: IamPolicySource::new(aws_sdk_iam::Client::new(&sdk)),
        default_bucket: None,
        default_policy_arn: None,
    };
    dispatch(&backend, cli.command).await
}

async fn dispatch<U, S, P>(b: &Backend<U, S, P>, command: Command) -> Result<ExitCode>
where
    U: UserAdmin + UserStore,
    S: SaltSource,
    P: PolicySource,
{
    let users = &b.users;
    match command {
        Command::Login(args) => login(b, args).await,
        // main starts these itself; an error (not a panic) should that ever change.
        Command::Up(_) | Command::Salt(_) => bail!("not a user administration command"),
        Command::User(cmd) => {
            match cmd {
                UserCommand::Add(args) => add(b, args).await?,
                UserCommand::Passwd { name, password } => {
                    let source = source(&password).unwrap_or(PasswordSource::Prompt);
                    let mut record = existing(users, &name).await?;
                    set_password(b.salts()?, &mut record, source).await?;
                    write(users, &record, true).await?;
                    eprintln!("password of {name} changed");
                }
                UserCommand::Show { name, json } => show(users, &name, json).await?,
                UserCommand::List { json } => list(users, json).await?,
                UserCommand::Disable { name } => set_status(users, &name, "disabled").await?,
                UserCommand::Enable { name } => set_status(users, &name, "active").await?,
                UserCommand::Rm { name } => {
                    let username = parse_name(&name)?;
                    if !users.delete_user(&username).await.map_err(store)? {
                        bail!("no user {username}");
                    }
                    eprintln!("user {username} removed");
                }
                UserCommand::Key(cmd) => key(users, cmd).await?,
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

pub(crate) fn parse_name(name: &str) -> Result<Username> {
    Username::parse(name).map_err(|e| anyhow!("{name:?}: {e}"))
}

/// One line for a store failure, with its cause chain.
pub(crate) fn store(e: StoreError) -> anyhow::Error {
    anyhow!(error_chain(&e))
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

async fn existing<U: UserAdmin>(users: &U, name: &str) -> Result<Map<String, Value>> {
    let username = parse_name(name)?;
    match users.get_raw(&username).await.map_err(store)? {
        Some(Value::Object(m)) => Ok(m),
        _ => bail!("no user {username}"),
    }
}

/// Checks the record with the auth function's own parser, then writes it.
pub(crate) async fn write<U: UserAdmin>(
    users: &U,
    record: &Map<String, Value>,
    overwrite: bool,
) -> Result<bool> {
    let value = Value::Object(record.clone());
    UserRecord::from_json(value.clone()).map_err(|e| anyhow!("{e}"))?;
    users.put_user(&value, overwrite).await.map_err(store)
}

async fn set_password<S: SaltSource>(
    salts: &S,
    record: &mut Map<String, Value>,
    source: PasswordSource,
) -> Result<()> {
    let password = read_password(source, true)?;
    let keyring = salts.load_keyring().await.map_err(store)?;
    put_hash(record, &keyring, &password)
}

/// The record attributes `user add` and `user import` can set; `None`/empty leaves a stored
/// value alone.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    pub(crate) bucket: Option<String>,
    pub(crate) home: Option<String>,
    pub(crate) policy_arn: Option<String>,
    pub(crate) role_arn: Option<String>,
    pub(crate) chroot: Option<bool>,
    pub(crate) keys: Vec<String>,
    pub(crate) allow_ips: Vec<String>,
    pub(crate) servers: Vec<String>,
    pub(crate) protocols: Vec<String>,
    pub(crate) expires_at: Option<i64>,
}

/// Writes `fields` over `record` and checks that a new user has what it needs.
pub(crate) fn apply_fields(
    record: &mut Map<String, Value>,
    username: &Username,
    f: Fields,
) -> Result<()> {
    record.insert("username".into(), json!(username.as_str()));
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            record.insert(k.to_owned(), v);
        }
    };
    let non_empty = |v: Vec<String>| (!v.is_empty()).then(|| json!(v));
    set("bucket", f.bucket.map(Value::from));
    set("home", f.home.map(Value::from));
    set("iamPolicyArn", f.policy_arn.map(Value::from));
    set("roleArn", f.role_arn.map(Value::from));
    set("chroot", f.chroot.map(Value::from));
    set("allowedIps", non_empty(f.allow_ips));
    set("allowedServers", non_empty(f.servers));
    set(
        "protocols",
        non_empty(f.protocols.iter().map(|p| p.to_ascii_uppercase()).collect()),
    );
    set("expiresAt", f.expires_at.map(Value::from));
    set(
        "publicKeys",
        (!f.keys.is_empty())
            .then(|| Value::Array(f.keys.into_iter().map(|k| json!({"key": k})).collect())),
    );
    record.entry("status").or_insert_with(|| json!("active"));
    for (attr, flag) in [
        ("bucket", "--bucket"),
        ("home", "--home"),
        ("iamPolicyArn", "--policy-arn"),
    ] {
        if !record.contains_key(attr) {
            bail!("{flag} is required for a new user");
        }
    }
    Ok(())
}

/// Hashes `password` under the keyring's current salt into the record.
pub(crate) fn put_hash(
    record: &mut Map<String, Value>,
    keyring: &ferry_core::domain::keyring::Keyring,
    password: &ferry_core::domain::password::Password,
) -> Result<()> {
    let hash = hash_password(keyring.current_salt(), password).map_err(|e| anyhow!("{e}"))?;
    record.insert("passwordHash".into(), json!(hash));
    record.insert("saltVersion".into(), json!(keyring.current_version()));
    Ok(())
}

async fn add<U: UserAdmin, S: SaltSource, P>(b: &Backend<U, S, P>, a: AddArgs) -> Result<()> {
    let users = &b.users;
    let username = parse_name(&a.name)?;
    let mut record = if a.update {
        existing(users, &a.name).await?
    } else {
        Map::new()
    };
    let mut keys = Vec::new();
    for file in &a.keys {
        keys.extend(read_keys(file)?);
    }
    let fields = Fields {
        bucket: a
            .bucket
            .or_else(|| (!a.update).then(|| b.default_bucket.clone()).flatten()),
        home: a.home,
        policy_arn: a
            .policy_arn
            .or_else(|| (!a.update).then(|| b.default_policy_arn.clone()).flatten()),
        role_arn: a.role_arn,
        chroot: a.chroot.then_some(true),
        keys,
        allow_ips: a.allow_ips,
        servers: a.servers,
        protocols: a.protocols,
        expires_at: a.expires.as_deref().map(parse_date).transpose()?,
    };
    apply_fields(&mut record, &username, fields)?;
    match source(&a.password) {
        Some(s) => set_password(b.salts()?, &mut record, s).await?,
        None if a.no_password => {
            record.remove("passwordHash");
            record.remove("saltVersion");
        }
        // An update keeps the stored password unless a new one is asked for.
        None if a.update => {}
        None => set_password(b.salts()?, &mut record, PasswordSource::Prompt).await?,
    }
    if !write(users, &record, a.update).await? {
        bail!("user {username} already exists (use --update to change it)");
    }
    eprintln!(
        "user {username} {}",
        if a.update { "updated" } else { "created" }
    );
    Ok(())
}

/// The record for display: no hash, keys with fingerprints.
fn public_view(mut record: Map<String, Value>) -> Map<String, Value> {
    let has_password = record.remove("passwordHash").is_some();
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
            ("publicKeys", Value::Array(keys)) => {
                println!("{k:<22}{} key(s)", keys.len());
                for line in key_lines(keys) {
                    println!("  {line}");
                }
            }
            (_, Value::String(s)) => println!("{k:<22}{s}"),
            _ => println!("{k:<22}{v}"),
        }
    }
    Ok(())
}

/// A stored key entry's OpenSSH text: entries are plain strings or `{key, expiresAt}` maps.
fn key_text(entry: &Value) -> &str {
    entry
        .as_str()
        .or_else(|| entry.get("key").and_then(Value::as_str))
        .unwrap_or("")
}

/// The record's key entries (none when it has no `publicKeys`).
fn stored_keys(record: &Map<String, Value>) -> Vec<Value> {
    record
        .get("publicKeys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn key_lines(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            let text = key_text(k);
            let expires = k.get("expiresAt").and_then(Value::as_i64);
            let kind = text.split_ascii_whitespace().next().unwrap_or("?");
            let comment = text.split_ascii_whitespace().nth(2).unwrap_or("");
            let fp = fingerprint(text).unwrap_or_else(|| "(unreadable key)".into());
            let exp = expires.map_or(String::new(), |t| format!(" expires {t}"));
            format!("{:>2}  {kind:<20} {fp} {comment}{exp}", i + 1)
        })
        .collect()
}

async fn list<U: UserAdmin>(users: &U, as_json: bool) -> Result<()> {
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
        a.get("username")
            .and_then(Value::as_str)
            .cmp(&b.get("username").and_then(Value::as_str))
    });
    if as_json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<32} {:<9} {:<8} {:<5} HOME",
        "USERNAME", "STATUS", "PASSWORD", "KEYS"
    );
    for u in &all {
        let s = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let keys = u
            .get("publicKeys")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let status = if s("status").is_empty() {
            "active".to_owned()
        } else {
            s("status")
        };
        let chroot = if u.get("chroot") == Some(&json!(true)) {
            " (chroot)"
        } else {
            ""
        };
        println!(
            "{:<32} {:<9} {:<8} {:<5} /{}/{}{chroot}",
            s("username"),
            status,
            s("password"),
            keys,
            s("bucket"),
            s("home").trim_matches('/')
        );
    }
    eprintln!("{} user(s)", all.len());
    Ok(())
}

async fn set_status<U: UserAdmin>(users: &U, name: &str, status: &str) -> Result<()> {
    let mut record = existing(users, name).await?;
    record.insert("status".into(), json!(status));
    write(users, &record, true).await?;
    eprintln!("user {name} is now {status}");
    Ok(())
}

async fn key<U: UserAdmin>(users: &U, cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::List { name } => {
            let record = existing(users, &name).await?;
            let keys = stored_keys(&record);
            for line in key_lines(&keys) {
                println!("{line}");
            }
        }
        KeyCommand::Add {
            name,
            file,
            expires,
        } => {
            let mut record = existing(users, &name).await?;
            let expires = expires.as_deref().map(parse_date).transpose()?;
            let mut keys = stored_keys(&record);
            for k in read_keys(&file)? {
                let dup = keys
                    .iter()
                    .any(|e| key_identity(key_text(e)) == key_identity(&k));
                if dup {
                    eprintln!("skipped a key {name} already has");
                    continue;
                }
                let mut entry = json!({"key": k});
                if let Some(t) = expires {
                    entry["expiresAt"] = json!(t);
                }
                keys.push(entry);
            }
            record.insert("publicKeys".into(), Value::Array(keys));
            write(users, &record, true).await?;
            eprintln!("keys of {name} updated");
        }
        KeyCommand::Rm { name, key } => {
            let mut record = existing(users, &name).await?;
            let mut keys = stored_keys(&record);
            let before = keys.len();
            if let Ok(n) = key.parse::<usize>() {
                if n == 0 || n > keys.len() {
                    bail!("{name} has no key number {n}");
                }
                keys.remove(n - 1);
            } else {
                keys.retain(|e| fingerprint(key_text(e)).as_deref() != Some(key.as_str()));
                if keys.len() == before {
                    bail!("{name} has no key with fingerprint {key}");
                }
            }
            record.insert("publicKeys".into(), Value::Array(keys));
            write(users, &record, true).await?;
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
        b.salts()?,
        &b.policies,
        Settings {
            default_role_arn: a.default_role_arn,
            salt_cache: Duration::ZERO,
            policy_cache: Duration::ZERO,
        },
    );
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
