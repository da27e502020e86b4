//! `ferry up`: the whole system on one machine. A data folder (users, keyring, policies, host key,
//! objects), and an SFTP server on 127.0.0.1:2222 that asks the real auth handler about every
//! login and authorises every operation with the session policy it returns, as Transfer Family
//! does in front of S3. With `--aws` the same front door runs on the AWS adapters instead
//! (DynamoDB, Secrets Manager, IAM, S3, or their emulators).

mod door;
mod sftp;
mod ssh;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use ferry_core::adapters::aws::defender::DynamoFailureStore;
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::adapters::local::objects::FileObjects;
use ferry_core::adapters::local::store::{DEFAULT_BUCKET, DEFAULT_POLICY, LocalStore, policy_arn};
use ferry_core::adapters::local::uploads::{FileUploads, JsonLines};
use ferry_core::app::audit::BackgroundAudit;
use ferry_core::app::login::{Authenticator, Settings};
use ferry_core::app::uploads::{UploadOutcome, process};
use ferry_core::domain::defender::DefenderConfig;
use ferry_core::domain::password::{Password, generate_password, hash_password};
use ferry_core::domain::upload_event::ObjectEvent;
use ferry_core::domain::upload_rules::{SourceAction, UploadConfig};
use ferry_core::domain::user::{Status, StoredRecord, UserRecord};
use ferry_core::ports::{Notifier, RulesSource, UploadStore};
use ferry_core::ports::{SaltSource, UserAdmin};

use crate::Target;
use crate::backend::store;
use ssh::{Backend, Server};

/// Where to serve from.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Data folder (created on first start)
    #[arg(long, default_value = ".ferry")]
    data: PathBuf,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:2222")]
    listen: SocketAddr,
    /// The local bucket (a folder under DATA/objects); not used with --aws
    #[arg(long, default_value = DEFAULT_BUCKET)]
    bucket: String,
    /// Serve from AWS (or anything speaking its API) instead of the data folder: users in
    /// DynamoDB (--table), the salt keyring in Secrets Manager (--salt-secret), policies in IAM,
    /// objects in S3. The data folder then keeps only the host key and the upload spool.
    #[arg(long)]
    aws: bool,
    /// Do not run the upload processor on completed uploads
    #[arg(long = "no-processing")]
    no_processing: bool,
    /// Turn off the brute-force defender (on by default, its tallies in the data folder, or
    /// with --aws in --defender-table)
    #[arg(long = "no-defender")]
    no_defender: bool,
    /// With --aws: the defender's DynamoDB table (the defender is off without one)
    #[arg(long = "defender-table", env = "DEFENDER_TABLE")]
    defender_table: Option<String>,
    /// What SETSTAT (chmod, chown, times) gets: `ignore` answers OK and changes nothing
    /// (Transfer Family's `SetStatOption: ENABLE_NO_OP`), `refuse` answers "unsupported"
    #[arg(long, value_enum, default_value_t = sftp::SetStat::Ignore)]
    setstat: sftp::SetStat,
    #[command(flatten)]
    bounds: door::Bounds,
    /// Where the operators' web console listens (`ferry console`; its sign-in token is printed)
    #[arg(long, default_value = "127.0.0.1:8022")]
    console: SocketAddr,
    /// Do not serve the web console
    #[arg(long = "no-console")]
    no_console: bool,
    /// Directory identity sources (LDAP, Active Directory): a sources file as
    /// docs/data-model.md describes; secrets as file: or env: references (or, with --aws,
    /// Secrets Manager ARNs)
    #[arg(long, env = "FERRY_DIRECTORY")]
    directory: Option<PathBuf>,
}

pub(crate) async fn up(a: UpArgs, target: Target) -> Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .init();
    if a.aws && target.local.is_some() {
        anyhow::bail!("--aws and --local name different backends: choose one");
    }
    create_private_dir(&a.data)
        .with_context(|| format!("creating the data folder {}", a.data.display()))?;
    let host_key = host_key(&a.data.join("host_key"))?;
    let (keepalive_every, keepalive_max) = a.bounds.keepalive();
    let config = Arc::new(russh::server::Config {
        keys: vec![host_key],
        // Every rejection takes the same second, whatever failed.
        // Only what ferry implements: no `none`, no host-based logins.
        methods: russh::MethodSet::from(
            &[
                russh::MethodKind::PublicKey,
                russh::MethodKind::Password,
                russh::MethodKind::KeyboardInteractive,
            ][..],
        ),
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        inactivity_timeout: Some(Duration::from_secs(a.bounds.idle_timeout_seconds)),
        keepalive_interval: Some(keepalive_every),
        keepalive_max,
        nodelay: true,
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 256 * 1024,
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("listening on {}", a.listen))?;
    // What was bound, not what was asked: `--listen 127.0.0.1:0` picks a free port.
    let bound = listener.local_addr()?;
    let data: Arc<Path> = Arc::from(a.data.as_path());

    if a.aws {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let table = target
            .table
            .as_deref()
            .context("no users table: pass --table or set USERS_TABLE")?;
        let secret = target
            .salt_secret
            .as_deref()
            .context("no salt secret: pass --salt-secret or set SALT_SECRET_ID")?;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let users = DynamoUserStore::new(dynamodb.clone(), table);
        let defender = (!a.no_defender)
            .then(|| DynamoFailureStore::new(dynamodb.clone(), a.defender_table.clone()));
        let auth = Authenticator::new(
            users.clone(),
            SecretsManagerSaltSource::new(aws_sdk_secretsmanager::Client::new(&sdk), secret),
            IamPolicySource::new(aws_sdk_iam::Client::new(&sdk)),
            // The Lambda's own defaults.
            Settings {
                default_role_arn: "arn:aws:iam::000000000000:role/ferry-local".into(),
                salt_cache: Duration::from_secs(60),
                policy_cache: Duration::from_secs(300),
                verified_cache: Duration::from_secs(60),
            },
        );
        let directories = crate::directory::sources(a.directory.as_deref(), Some(&sdk)).await?;
        let objects = Arc::new(S3Objects::new(s3_client(&sdk)));
        let on_upload = (!a.no_processing).then(|| {
            upload_hook(
                Arc::clone(&objects),
                Arc::new(JsonLines(a.data.join("notifications.jsonl"))),
                Arc::new(users.clone()),
            )
        });
        let server: Server<(_, _, _, S3Objects, _)> = Server {
            auth: Arc::new(
                auth.with_directories(directories)
                    .with_parallel_hashes(parallel_checks(&a.bounds))
                    .with_defender(defender, DefenderConfig::default())
                    .with_audit(audit_file(&a.data)),
            ),
            objects,
            data,
            on_upload,
            bounds: Arc::new(a.bounds.clone()),
            setstat: a.setstat,
        };
        if !a.no_console {
            let wired = crate::console::aws(&target, a.defender_table.clone()).await?;
            console(a.console, wired, a.data.clone()).await?;
        }
        eprintln!(
            "ferry up: SFTP on {bound} (users in table {table}, objects in S3, spool in {}); try: sftp -P {} USER@{}",
            a.data.display(),
            bound.port(),
            bound.ip()
        );
        return serve(server, config, listener, &a.bounds).await;
    }

    let store = Arc::new(LocalStore::open(&a.data).map_err(store)?);
    std::fs::create_dir_all(store.bucket_dir(&a.bucket)).context("creating the bucket folder")?;
    first_start(&store, &a.bucket).await?;
    let auth = Authenticator::new(
        Arc::clone(&store),
        Arc::clone(&store),
        Arc::clone(&store),
        Settings {
            default_role_arn: "arn:aws:iam::000000000000:role/ferry-local".into(),
            // Local files change under the operator's hand: read them fresh.
            salt_cache: Duration::ZERO,
            policy_cache: Duration::ZERO,
            // Safe with files read fresh: the record and the keyring are still read on every
            // login, and an entry is keyed by the stored hash, its salt version and the salt
            // itself (through the peppered password), so any edit of the password, the hash or
            // the keyring makes it miss. What it saves is the Argon2 run of a client that
            // reconnects (scripts, sync tools), as on the Lambda.
            verified_cache: Duration::from_secs(60),
        },
    );
    let on_upload = (!a.no_processing).then(|| {
        upload_hook(
            Arc::new(FileUploads::new(store.dir())),
            Arc::new(JsonLines(a.data.join("notifications.jsonl"))),
            Arc::clone(&store),
        )
    });
    let defender = (!a.no_defender).then(|| Arc::clone(&store));
    let directories = crate::directory::sources(a.directory.as_deref(), None).await?;
    let server: Server<(_, _, _, FileObjects, _)> = Server {
        auth: Arc::new(
            auth.with_directories(directories)
                .with_parallel_hashes(parallel_checks(&a.bounds))
                .with_defender(defender, DefenderConfig::default())
                .with_audit(audit_file(&a.data)),
        ),
        objects: Arc::new(FileObjects::new(store.dir().join("objects"))),
        data,
        on_upload,
        bounds: Arc::new(a.bounds.clone()),
        setstat: a.setstat,
    };
    if !a.no_console {
        console(a.console, crate::console::local(&a.data)?, a.data.clone()).await?;
    }
    eprintln!(
        "ferry up: SFTP on {bound} (data folder {}); try: sftp -P {} demo@{}",
        a.data.display(),
        bound.port(),
        bound.ip()
    );
    serve(server, config, listener, &a.bounds).await
}

async fn serve<B: Backend>(
    server: Server<B>,
    config: Arc<russh::server::Config>,
    listener: tokio::net::TcpListener,
    bounds: &door::Bounds,
) -> Result<std::process::ExitCode> {
    tokio::select! {
        () = door::accept_loop(server, config, listener, bounds) => {}
        _ = tokio::signal::ctrl_c() => eprintln!("ferry up: stopping"),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Starts the web console beside the SFTP port (it prints its address and sign-in token). A
/// console that cannot bind is said and skipped: the SFTP server is what `ferry up` is for.
async fn console(addr: SocketAddr, wired: crate::console::Wired, data: PathBuf) -> Result<()> {
    let listener = match crate::console::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ferry up: no console: {e:#}");
            return Ok(());
        }
    };
    let serving = crate::console::start(listener, wired, data)?;
    tokio::spawn(async move {
        if let Err(e) = serving.await {
            eprintln!("ferry up: the console stopped: {e:#}");
        }
    });
    Ok(())
}

/// Audit events as JSON lines in `audit.jsonl` of the data folder, written off the login path.
fn audit_file(data: &Path) -> Arc<dyn ferry_core::ports::AuditSink> {
    Arc::new(BackgroundAudit::start(JsonLines(data.join("audit.jsonl"))))
}

/// Password checks at once: as asked, or one per core.
fn parallel_checks(bounds: &door::Bounds) -> usize {
    match bounds.parallel_password_checks {
        0 => std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
        n => n,
    }
}

/// Creates a folder only its owner can enter (the data folder holds password hashes, the
/// keyring and the host key); an existing folder is left as the operator set it.
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// The upload processor as `ferry up` runs it: on every completed upload, in the background,
/// copying it to `processed/` or `quarantine/` of its bucket (the user's file stays where they
/// put it) and writing the notice to `notifications.jsonl` in the data folder and to the log.
fn upload_hook<S, N, R>(store: Arc<S>, notifier: Arc<N>, users: Arc<R>) -> sftp::UploadHook
where
    S: UploadStore + 'static,
    N: Notifier + 'static,
    R: RulesSource + 'static,
{
    let config = Arc::new(UploadConfig {
        source_action: SourceAction::Copy,
        ..UploadConfig::default()
    });
    Arc::new(move |bucket: String, key: String| {
        let (store, notifier, users, config) = (
            Arc::clone(&store),
            Arc::clone(&notifier),
            Arc::clone(&users),
            Arc::clone(&config),
        );
        tokio::spawn(async move {
            let event = ObjectEvent {
                bucket,
                key,
                size: None,
                etag: None,
                version_id: None,
                sequencer: None,
            };
            if let UploadOutcome::Transient(why) =
                process(&event, &*store, &*notifier, &*users, &config).await
            {
                tracing::warn!(target: "ferry::upload", key = %event.key, error = %why, "UPLOAD_NOT_PROCESSED");
            }
        });
    })
}

/// An S3 client. Custom endpoints (moto, MinIO, LocalStack) want path-style addressing; AWS
/// itself gets the default virtual-hosted style.
fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let custom_endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// On a new data folder: a user `demo` with a random password, shown once.
async fn first_start(store: &LocalStore, bucket: &str) -> Result<()> {
    let page = store.list_users(None).await.map_err(store_err)?;
    if !page.users.is_empty() {
        return Ok(());
    }
    let password = generate_password();
    let keyring = store.load_keyring().await.map_err(store_err)?;
    let hash = hash_password(
        keyring.current_salt(),
        &Password::parse(password.clone()).map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let demo = UserRecord::from_stored(StoredRecord {
        username: "demo".into(),
        bucket: Some(bucket.to_owned()),
        home: Some("demo".into()),
        iam_policy_arn: Some(policy_arn(DEFAULT_POLICY)),
        password_hash: Some(hash),
        salt_version: Some(keyring.current_version().to_owned()),
        status: Some(Status::Active),
        ..StoredRecord::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    store.put_user(&demo, false).await.map_err(store_err)?;
    std::fs::create_dir_all(store.bucket_dir(bucket).join("demo"))?;
    eprintln!(
        "ferry up: created user demo with password {password} (shown once; change it with ferry user passwd demo --local)"
    );
    Ok(())
}

fn store_err(e: ferry_core::ports::StoreError) -> anyhow::Error {
    store(e)
}

/// The server's host key, made once (ed25519 from the OS random source) and kept 0600.
fn host_key(path: &Path) -> Result<russh::keys::PrivateKey> {
    use russh::keys::ssh_key;
    if path.exists() {
        return russh::keys::PrivateKey::read_openssh_file(path)
            .with_context(|| format!("reading {}", path.display()));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).context("reading the OS random source")?;
    let pair = ssh_key::private::Ed25519Keypair::from_seed(&seed);
    let key = russh::keys::PrivateKey::from(pair);
    let pem = key
        .to_openssh(ssh_key::LineEnding::LF)
        .context("encoding the host key")?;
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(pem.as_bytes())?;
    Ok(key)
}
