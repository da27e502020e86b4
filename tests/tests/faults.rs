//! Faults injected into real services while ferry works against them: DynamoDB Local killed and
//! restarted in the middle of logins, moto frozen during each rotation step, S3 gone while an
//! upload is being stored and frozen while the upload processor copies. Every test starts its own
//! service process on a free loopback port (the shared ones of `scripts/test.sh` are never
//! touched), and its clients use short timeouts so a dead endpoint fails fast.
//!
//! moto keeps its state in memory only, so it cannot be "stopped and restarted" with its data:
//! where the data must survive the fault, moto is frozen (SIGSTOP) and thawed (SIGCONT) instead,
//! which is what a hung endpoint looks like to a client; where it is killed (the upload's close),
//! the bucket is made again after the restart, as the test says.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::s3::S3Objects;
use ferry_core::adapters::aws::secretsmanager::SecretsManagerSaltSource;
use ferry_core::app::login::{Authenticator, Settings};
use ferry_core::app::uploads::{UploadOutcome, process};
use ferry_core::domain::upload_event::ObjectEvent;
use ferry_core::domain::upload_rules::{SourceAction, UploadConfig};
use ferry_core::ports::{
    CopyRequest, CopyResult, Head, NoUserRules, Notifier, StoreError, UploadStore,
};
use ferry_tests::Fixture;
use ferry_tests::fixture::{
    AwsAuthenticator, DEFAULT_ROLE, aws_config, create_policy, create_users_table, direct_event,
    unique,
};
use ferry_tests::rotation::{STEPS, start_rotation, step, usage};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Service processes of the test's own.

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `scripts/lib/services.sh` installed DynamoDB Local and moto.
fn ferry_local() -> PathBuf {
    std::env::var_os("FERRY_LOCAL").map_or_else(|| repo_root().join(".local"), PathBuf::from)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something answers HTTP on 127.0.0.1:`port` (any status line will do).
fn answers_http(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 5];
    s.read_exact(&mut head).is_ok() && &head == b"HTTP/"
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {}", child.id());
}

/// One service process: how to start it, and the running child.
struct Service {
    name: &'static str,
    port: u16,
    command: Box<dyn Fn(u16) -> Command + Send + Sync>,
    child: Option<Child>,
    log: PathBuf,
    /// Removed with the service (DynamoDB Local's database folder).
    dir: Option<PathBuf>,
}

impl Service {
    fn start(name: &'static str, command: Box<dyn Fn(u16) -> Command + Send + Sync>) -> Self {
        let log = std::env::temp_dir().join(unique(name));
        let mut s = Self {
            name,
            port: free_port(),
            command,
            child: None,
            log,
            dir: None,
        };
        s.restart();
        s
    }

    /// Starts the process (again) on the same port and waits until it answers.
    fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = (self.command)(self.port)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !answers_http(self.port) {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{} did not come up on port {} (exit: {exited:?}); its log:\n{}",
                self.name,
                self.port,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the process is gone, connections are refused.
    fn kill(&mut self) {
        let mut child = self.child.take().expect("not running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGSTOP: the port still accepts connections, but nothing is answered.
    fn freeze(&self) {
        signal(self.child.as_ref().unwrap(), "-STOP");
    }

    fn thaw(&self) {
        signal(self.child.as_ref().unwrap(), "-CONT");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// DynamoDB Local as `scripts/lib/services.sh` runs it, but on disk (`-dbPath`) instead of in
/// memory, so that its tables survive a kill and a restart.
fn dynamodb_local() -> Service {
    let lib = ferry_local().join("ddb/package/lib");
    let jar_dir = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| {
            panic!(
                "no DynamoDB Local under {} ({e}): run scripts/test.sh once to install it",
                lib.display()
            )
        })
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("dynamodb_local_"))
        })
        .expect("no dynamodb_local_* folder");
    let db = std::env::temp_dir().join(unique("ferry-ddb"));
    std::fs::create_dir_all(&db).unwrap();
    let db_arg = db.clone();
    let mut s = Service::start(
        "dynamodb-local",
        Box::new(move |port| {
            let mut cmd = Command::new("java");
            cmd.arg("-cp")
                .arg(format!(
                    "{0}/DynamoDBLocal.jar:{0}/DynamoDBLocal_lib/*",
                    jar_dir.display()
                ))
                .arg(repo_root().join("scripts/lib/DynamoDbLocalLauncher.java"))
                .args(["-sharedDb", "-disableTelemetry", "-dbPath"])
                .arg(&db_arg)
                .args(["-port", &port.to_string()]);
            cmd
        }),
    );
    s.dir = Some(db);
    s
}

fn moto() -> Service {
    let server = ferry_local().join("moto/bin/moto_server");
    assert!(
        server.exists(),
        "no moto at {}: run scripts/test.sh once to install it",
        server.display()
    );
    Service::start(
        "moto",
        Box::new(move |port| {
            let mut cmd = Command::new(&server);
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            cmd
        }),
    )
}

/// SDK settings for a client that must fail fast against a dead or hung endpoint: one retry,
/// two seconds per attempt, four in all (room for a loaded machine, far from the defaults'
/// unbounded wait on a hung server).
async fn quick_sdk(endpoint: &str) -> aws_config::SdkConfig {
    // The shared services must be up too (secrets, policies or the users table live there).
    let _ = aws_config().await;
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(4))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await
}

/// A fixture whose Secrets Manager, IAM, S3 and Lambda are the given moto, and whose users table
/// is on the shared DynamoDB Local.
async fn fixture_on(moto_sdk: aws_config::SdkConfig, secret: &str) -> Result<Fixture> {
    let shared = aws_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&shared);
    let secrets = aws_sdk_secretsmanager::Client::new(&moto_sdk);
    let iam = aws_sdk_iam::Client::new(&moto_sdk);
    let table = unique("users");
    create_users_table(&ddb, &table).await?;
    let secret_id = unique("ferry/salt");
    secrets
        .create_secret()
        .name(&secret_id)
        .secret_string(secret)
        .send()
        .await
        .context("create salt secret")?;
    let policy_arn = create_policy(
        &iam,
        &unique("scope-down"),
        ferry_core::domain::policy::CANONICAL_SCOPE_DOWN,
    )
    .await?;
    Ok(Fixture {
        sdk: moto_sdk,
        ddb,
        secrets,
        iam,
        table,
        secret_id,
        policy_arn,
    })
}

const KEYRING: &str = r#"{"current":"2","salts":{"1":"old-salt-one","2":"current-salt-two"}}"#;

/// The Lambda's own caching.
fn lambda_settings() -> Settings {
    Settings {
        default_role_arn: DEFAULT_ROLE.into(),
        salt_cache: Duration::from_secs(60),
        policy_cache: Duration::from_secs(300),
        verified_cache: Duration::from_secs(60),
    }
}

// ---------------------------------------------------------------------------------------------
// Logins in the background, each recorded with the phase it started and ended in.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allowed,
    Denied,
    /// Neither `{}` nor a full allow: must never happen.
    Partial,
    /// No answer within the guard: must never happen.
    Hung,
}

fn classify(answer: &Value) -> Answer {
    if answer == &json!({}) {
        Answer::Denied
    } else if answer.get("Role").is_some()
        && answer.get("Policy").is_some()
        && (answer.get("HomeDirectory").is_some() || answer.get("HomeDirectoryDetails").is_some())
    {
        Answer::Allowed
    } else {
        Answer::Partial
    }
}

#[derive(Debug, Clone)]
struct Login {
    user: String,
    started_in: u8,
    ended_in: u8,
    answer: Answer,
}

struct LoginLoop {
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Login>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LoginLoop {
    /// Logs in as each of `users` (name, password) in turn until stopped.
    fn start(auth: Arc<AwsAuthenticator>, users: Vec<(String, String)>) -> Self {
        let phase = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (p, s, l) = (Arc::clone(&phase), Arc::clone(&stop), Arc::clone(&log));
        let task = tokio::spawn(async move {
            for (user, password) in users.iter().cycle() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let started_in = p.load(Ordering::SeqCst);
                let event = direct_event(user, Some(password));
                // A guard, not a measurement: far above the clients' 4 s operation timeout.
                let answer =
                    match tokio::time::timeout(Duration::from_secs(30), auth.handle_event(&event))
                        .await
                    {
                        Ok(a) => classify(&a),
                        Err(_) => Answer::Hung,
                    };
                l.lock().unwrap().push(Login {
                    user: user.clone(),
                    started_in,
                    ended_in: p.load(Ordering::SeqCst),
                    answer,
                });
            }
        });
        Self {
            phase,
            stop,
            log,
            task,
        }
    }

    fn set_phase(&self, phase: u8) {
        self.phase.store(phase, Ordering::SeqCst);
    }

    /// Logins that started and ended in `phase`.
    fn within(&self, phase: u8) -> Vec<Login> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.started_in == phase && l.ended_in == phase)
            .cloned()
            .collect()
    }

    /// Waits until `n` logins have run wholly within `phase` (a minute at most).
    async fn wait_for(&self, phase: u8, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.within(phase).len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} logins in phase {phase} within a minute: {:?}",
                self.within(phase).len(),
                self.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) -> Vec<Login> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the login loop panicked");
        self.log.lock().unwrap().clone()
    }
}

fn without(mut item: Value, fields: &[&str]) -> Value {
    if let Some(o) = item.as_object_mut() {
        for f in fields {
            o.remove(*f);
        }
    }
    item
}

// ---------------------------------------------------------------------------------------------
// DynamoDB Local killed and restarted in the middle of logins.

const UP: u8 = 0;
const DOWN: u8 = 2;
const BACK: u8 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_while_dynamodb_is_down_are_denied_and_allowed_again_once_it_is_back_with_the_user_unchanged()
-> Result<()> {
    // Secret and policy on the shared moto; the users table on a DynamoDB Local of our own.
    let shared = Fixture::new().await?;
    let mut ddb_local = dynamodb_local();
    let ddb = aws_sdk_dynamodb::Client::new(&quick_sdk(&ddb_local.url()).await);
    let table = "users";
    // Set up with the SDK's default patience: a fresh DynamoDB Local may take a while.
    let setup = aws_sdk_dynamodb::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(ddb_local.url())
            .load()
            .await,
    );
    create_users_table(&setup, table).await?;
    let record = json!({
        "username": "erin",
        "bucket": "ferry-test-bucket",
        "home": "home/erin",
        "iamPolicyArn": shared.policy_arn,
        "passwordHash": shared.hash("erin-pw", "2").await?,
        "saltVersion": "2",
        "publicKeys": [ferry_tests::fixture::SAMPLE_KEY],
    });
    setup
        .put_item()
        .table_name(table)
        .set_item(Some(serde_dynamo::to_item(&record)?))
        .send()
        .await?;
    let stored = |ddb: aws_sdk_dynamodb::Client| async move {
        let out = ddb
            .get_item()
            .table_name(table)
            .key(
                "username",
                aws_sdk_dynamodb::types::AttributeValue::S("erin".into()),
            )
            .consistent_read(true)
            .send()
            .await?;
        let item: Value = serde_dynamo::from_item(out.item.context("erin is gone")?)?;
        anyhow::Ok(item)
    };
    let before = stored(ddb.clone()).await?;

    let auth = Arc::new(Authenticator::new(
        DynamoUserStore::new(ddb.clone(), table),
        SecretsManagerSaltSource::new(shared.secrets.clone(), &shared.secret_id),
        IamPolicySource::new(shared.iam.clone()),
        lambda_settings(),
    ));
    let logins = LoginLoop::start(Arc::clone(&auth), vec![("erin".into(), "erin-pw".into())]);
    logins.wait_for(UP, 3).await;

    logins.set_phase(1);
    ddb_local.kill();
    logins.set_phase(DOWN);
    logins.wait_for(DOWN, 5).await;

    logins.set_phase(3);
    tokio::task::block_in_place(|| ddb_local.restart());
    logins.set_phase(BACK);
    logins.wait_for(BACK, 5).await;
    let all = logins.stop().await;

    for l in &all {
        assert!(
            matches!(l.answer, Answer::Allowed | Answer::Denied),
            "every answer is {{}} or a full allow, in time: {l:?}"
        );
    }
    for (phase, want) in [
        (UP, Answer::Allowed),
        (DOWN, Answer::Denied),
        (BACK, Answer::Allowed),
    ] {
        let within = logins_in(&all, phase);
        assert!(
            within.iter().all(|l| l.answer == want),
            "phase {phase}: every login {want:?}: {within:?}"
        );
    }
    // Only what a login may write (the hourly last-login time) differs.
    let after = stored(ddb.clone()).await?;
    assert_eq!(
        without(after, &["lastLoginAt"]),
        without(before, &["lastLoginAt"])
    );
    Ok(())
}

fn logins_in(all: &[Login], phase: u8) -> Vec<Login> {
    all.iter()
        .filter(|l| l.started_in == phase && l.ended_in == phase)
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// moto frozen during each rotation step.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rotation_step_run_while_moto_is_frozen_fails_and_completes_when_rerun_with_no_user_locked_out()
-> Result<()> {
    let moto = moto();
    let f = fixture_on(quick_sdk(&moto.url()).await, KEYRING).await?;
    let usage = usage(&f, None);
    // One user on the old salt, one on the current.
    f.put_user(
        "olga",
        None,
        json!({"passwordHash": f.hash("olga-pw", "1").await?, "saltVersion": "1"}),
    )
    .await?;
    f.put_user("nina", Some("nina-pw"), json!({})).await?;
    let token = start_rotation(&f).await?;

    // A warm authenticator (a Lambda container that has served logins) keeps logging both in.
    let auth = Arc::new(f.authenticator());
    let logins = LoginLoop::start(
        Arc::clone(&auth),
        vec![
            ("olga".into(), "olga-pw".into()),
            ("nina".into(), "nina-pw".into()),
        ],
    );
    logins.wait_for(0, 2).await;

    for (i, s) in STEPS.into_iter().enumerate() {
        moto.freeze();
        let frozen = step(&f, &usage, s, &token).await;
        moto.thaw();
        assert!(frozen.is_err(), "{s:?} against a frozen moto: {frozen:?}");
        // The same step, as Secrets Manager retries it. (moto may meanwhile have served the
        // request the frozen attempt gave up on: a repeated step is idempotent either way.)
        let again = step(&f, &usage, s, &token).await;
        assert!(again.is_ok(), "{s:?} re-run after the thaw: {again:?}");
        logins.set_phase(i as u8 + 1);
        logins.wait_for(i as u8 + 1, 2).await;
    }
    let all = logins.stop().await;
    assert!(
        all.iter().all(|l| l.answer == Answer::Allowed),
        "every login during the rotation is allowed: {:?}",
        all.iter()
            .filter(|l| l.answer != Answer::Allowed)
            .collect::<Vec<_>>()
    );
    let current = ferry_core::domain::keyring::Keyring::parse(
        f.secrets
            .get_secret_value()
            .secret_id(&f.secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await?
            .secret_string()
            .context("no secret string")?,
    )?;
    assert_eq!(current.current_version(), "3");
    // The new salt: a cold authenticator re-hashes both users onto it, and the warm one (whose
    // cached keyring predates version 3) still lets them in.
    let cold = f.authenticator();
    for (user, pw) in [("olga", "olga-pw"), ("nina", "nina-pw")] {
        assert_eq!(
            classify(&cold.handle_event(&direct_event(user, Some(pw))).await),
            Answer::Allowed
        );
        let version = f.item(user).await?.context("user gone")?["saltVersion"].clone();
        assert_eq!(version, "3", "{user} is on the new salt");
        assert_eq!(
            classify(&auth.handle_event(&direct_event(user, Some(pw))).await),
            Answer::Allowed
        );
    }
    assert!(
        all.iter().any(|l| l.user == "olga") && all.iter().any(|l| l.user == "nina"),
        "both users logged in during the rotation"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// S3 failing in the middle of an upload (ferry up --aws) and of processing (the processor).

/// A russh SFTP session as `user` on 127.0.0.1:`port`; the connection lives with the handle.
async fn sftp_as(
    port: u16,
    user: &str,
    password: &str,
) -> (
    russh::client::Handle<ferry_tests::ssh::TrustingClient>,
    russh_sftp::client::RawSftpSession,
) {
    let (ok, session) = ferry_tests::ssh::password_login(port, user, password)
        .await
        .unwrap();
    assert!(ok, "{user} logs in");
    let channel = session.channel_open_session().await.unwrap();
    channel.request_subsystem(true, "sftp").await.unwrap();
    let sftp = russh_sftp::client::RawSftpSession::new(channel.into_stream());
    // A guard for the close that waits on a dead S3 (the SDK's retries), not a measurement.
    sftp.set_timeout(60);
    sftp.init().await.unwrap();
    (session, sftp)
}

/// Opens `name` for writing and writes `body` in 32 KiB requests, as clients do; the handle
/// is left open.
async fn send(
    sftp: &russh_sftp::client::RawSftpSession,
    name: &str,
    body: &[u8],
) -> Result<String> {
    use russh_sftp::protocol::{FileAttributes, OpenFlags};
    let write = OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE;
    let h = sftp
        .open(name, write, FileAttributes::default())
        .await
        .with_context(|| format!("opening {name}"))?
        .handle;
    for (i, chunk) in body.chunks(32 * 1024).enumerate() {
        sftp.write(&h, (i * 32 * 1024) as u64, chunk.to_vec())
            .await
            .with_context(|| format!("writing {name}"))?;
    }
    Ok(h)
}

/// A file of `len` pseudo-random bytes seeded by `seed`.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn notices_for(data: &std::path::Path, key: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(data.join("notifications.jsonl")).unwrap_or_default();
    let finished = text.rfind('\n').map_or("", |end| &text[..end]);
    finished
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["sourceKey"] == key)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_s3_dies_before_close_is_kept_in_partial_and_its_retry_is_stored_and_processed_once()
-> Result<()> {
    let mut moto = moto();
    let f = fixture_on(quick_sdk(&moto.url()).await, KEYRING).await?;
    let bucket = f.bucket().await?;
    f.put_user(
        "uma",
        Some("uma-pw"),
        json!({"bucket": bucket, "home": "uma"}),
    )
    .await?;
    let work = std::env::temp_dir().join(unique("ferry-faults"));
    let data = work.join("data");
    let mut cmd = Command::new(ferry_tests::runtime_api::workspace_binary("ferry")?);
    cmd.args(["up", "--data", data.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--no-console"])
        .args(["--aws", "--table", &f.table, "--salt-secret", &f.secret_id])
        // S3, Secrets Manager and IAM are this test's moto; DynamoDB stays the shared one.
        .env("AWS_ENDPOINT_URL", moto.url())
        // A dead S3 fails the close in seconds, not after the SDK's default backoff.
        .env("AWS_MAX_ATTEMPTS", "2");
    let mut up = tokio::task::block_in_place(|| ferry_tests::up::start(cmd))?;
    let result = async {
        let (_connection, sftp) = sftp_as(up.port, "uma", "uma-pw").await;
        let body = bytes(17, 300 * 1024);
        let h = send(&sftp, "r.bin", &body).await?;
        let visible = |s3: aws_sdk_s3::Client, bucket: String| async move {
            let listed = s3.list_objects_v2().bucket(bucket).send().await?;
            let mut keys: Vec<String> = listed
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
            keys.sort_unstable();
            anyhow::Ok(keys)
        };
        // Everything is spooled, nothing half-written is in the bucket; then S3 goes away
        // before the close stores it.
        ensure!(visible(f.s3(), bucket.clone()).await? == ["uma/"]);
        moto.kill();
        let closed = sftp.close(h).await;
        ensure!(
            closed.is_err(),
            "the client is told the close failed: {closed:?}"
        );
        let partial: Vec<_> = std::fs::read_dir(data.join("partial"))
            .context("no partial/ folder")?
            .flatten()
            .map(|e| std::fs::read(e.path()).unwrap())
            .collect();
        ensure!(
            partial == vec![body.clone()],
            "partial/ holds exactly the bytes sent"
        );

        // S3 is back, empty (moto keeps nothing): the bucket and the home folder the first
        // login made are made again, and the client retries in the same session.
        tokio::task::block_in_place(|| moto.restart());
        f.s3().create_bucket().bucket(&bucket).send().await?;
        f.s3()
            .put_object()
            .bucket(&bucket)
            .key("uma/")
            .body(Vec::new().into())
            .send()
            .await?;
        let h = send(&sftp, "r.bin", &body).await?;
        sftp.close(h).await.context("closing the retried upload")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while notices_for(&data, "uma/r.bin").is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A moment more: a second notice, if any were coming, would show now.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let notices = notices_for(&data, "uma/r.bin");
        ensure!(notices.len() == 1, "one notice: {notices:?}");
        let keys = visible(f.s3(), bucket.clone()).await?;
        ensure!(
            keys == ["processed/uma/r.bin", "uma/", "uma/r.bin"],
            "one upload, one copy: {keys:?}"
        );
        let copy = f
            .s3()
            .get_object()
            .bucket(&bucket)
            .key("processed/uma/r.bin")
            .send()
            .await?
            .body
            .collect()
            .await?
            .into_bytes();
        ensure!(
            copy.as_ref() == body.as_slice(),
            "the copy holds every byte sent"
        );
        anyhow::Ok(())
    }
    .await;
    let _ = up.child.kill();
    let _ = up.child.wait();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The real S3 adapter, with moto frozen at the moment the processor asks for its copy.
struct FreezesAtCopy<'a> {
    inner: S3Objects,
    moto: &'a Service,
    armed: AtomicBool,
}

impl UploadStore for FreezesAtCopy<'_> {
    type Body = <S3Objects as UploadStore>::Body;
    async fn head(&self, bucket: &str, key: &str) -> Result<Option<Head>, StoreError> {
        self.inner.head(bucket, key).await
    }
    async fn tags(&self, bucket: &str, key: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.tags(bucket, key).await
    }
    async fn body(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
    ) -> Result<Option<Self::Body>, StoreError> {
        self.inner.body(bucket, key, etag).await
    }
    async fn copy(&self, req: &CopyRequest<'_>) -> Result<CopyResult, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.moto.freeze();
        }
        self.inner.copy(req).await
    }
    async fn put_tags(
        &self,
        bucket: &str,
        key: &str,
        tags: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.inner.put_tags(bucket, key, tags).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        self.inner.delete(bucket, key).await
    }
}

/// Notices, kept in order.
#[derive(Default)]
struct Notices(Mutex<Vec<Value>>);

impl Notifier for Notices {
    async fn notify(
        &self,
        message: &Value,
        _attributes: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(message.clone());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processing_with_s3_frozen_during_the_copy_is_retried_and_then_processed_exactly_once()
-> Result<()> {
    let moto = moto();
    let sdk = quick_sdk(&moto.url()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("ferry");
    s3.create_bucket().bucket(&bucket).send().await?;
    let body = bytes(29, 200 * 1024);
    let key = "home/vic/data.bin";
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.clone().into())
        .send()
        .await?;
    let store = FreezesAtCopy {
        inner: S3Objects::new(s3.clone()),
        moto: &moto,
        armed: AtomicBool::new(true),
    };
    let notices = Notices::default();
    let config = UploadConfig {
        incoming_prefixes: vec!["home/".into()],
        source_action: SourceAction::Copy,
        ..UploadConfig::default()
    };
    let event = ObjectEvent {
        bucket: bucket.clone(),
        key: key.into(),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
    };

    let first = process(&event, &store, &notices, &NoUserRules, &config).await;
    moto.thaw();
    assert!(matches!(first, UploadOutcome::Transient(_)), "{first:?}");
    assert!(
        notices.0.lock().unwrap().is_empty(),
        "nothing announced for a failed copy"
    );
    // The retry (Lambda's, or the queue's redelivery) processes it; a further one skips it.
    let second = process(&event, &store, &notices, &NoUserRules, &config).await;
    assert!(
        matches!(
            &second,
            UploadOutcome::Processed {
                verdict: "clean",
                ..
            }
        ),
        "{second:?}"
    );
    let third = process(&event, &store, &notices, &NoUserRules, &config).await;
    assert_eq!(third, UploadOutcome::Skipped("already processed".into()));

    let announced = notices.0.lock().unwrap().clone();
    assert_eq!(announced.len(), 1, "one notice: {announced:?}");
    assert_eq!(announced[0]["destinationKey"], "processed/vic/data.bin");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("processed/")
        .send()
        .await?;
    let copies: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(copies, ["processed/vic/data.bin"], "one copy");
    let copy = s3
        .get_object()
        .bucket(&bucket)
        .key("processed/vic/data.bin")
        .send()
        .await?
        .body
        .collect()
        .await?
        .into_bytes();
    assert_eq!(copy.as_ref(), body.as_slice());
    Ok(())
}
