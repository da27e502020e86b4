//! Salt rotation against moto's Secrets Manager and DynamoDB Local, one rotation step at a time
//! (moto cannot run the Lambda itself): the protocol's checks, idempotence, recovery, pruning,
//! logins that keep succeeding while the salt rotates, and the migration of the seed design's
//! users.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Result;
use ferry_core::adapters::aws::dynamodb::{DynamoLegacyUsers, DynamoUserStore};
use ferry_core::app::login::migration::legacy_key;
use ferry_core::app::rotation::{Outcome, RotationError, Step, WithLegacy};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::password::Password;
use ferry_tests::Fixture;
use ferry_tests::fixture::{AwsAuthenticator, create_legacy_table, direct_event, unique};
use ferry_tests::rotation::{STEPS, Usage, chain, start_rotation, step, token, usage};
use serde_json::{Value, json};

/// The next rotation on a secret whose rotation is on: what Secrets Manager does when the
/// schedule comes round. (If AWSPENDING is still on the last token, as some moto versions leave
/// it, it is removed first, as AWS does.)
async fn next_rotation(f: &Fixture, previous_token: &str) -> Result<String> {
    next_rotation_inner(f, previous_token)
        .await
        .map_err(|e| anyhow::anyhow!("starting the next rotation: {}", chain(e.as_ref())))
}

async fn next_rotation_inner(
    f: &Fixture,
    previous_token: &str,
) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let described = f
        .secrets
        .describe_secret()
        .secret_id(&f.secret_id)
        .send()
        .await?;
    let still_pending = described
        .version_ids_to_stages()
        .and_then(|m| m.get(previous_token))
        .is_some_and(|s| s.iter().any(|s| s == "AWSPENDING"));
    if still_pending {
        f.secrets
            .update_secret_version_stage()
            .secret_id(&f.secret_id)
            .version_stage("AWSPENDING")
            .remove_from_version_id(previous_token)
            .send()
            .await?;
    }
    // A second RotateSecret in moto stages the token AWSCURRENT at once (AWS stages it
    // AWSPENDING and runs the steps), so the staging RotateSecret does is done here, as moto's
    // first RotateSecret does it: AWSPENDING on a copy of the current value.
    let token = token();
    let current = f
        .secrets
        .get_secret_value()
        .secret_id(&f.secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await?;
    f.secrets
        .put_secret_value()
        .secret_id(&f.secret_id)
        .client_request_token(&token)
        .secret_string(current.secret_string().unwrap_or_default())
        .version_stages("AWSPENDING")
        .send()
        .await?;
    Ok(token)
}

/// A ClientRequestToken: 32 to 64 characters.
async fn rotate_fully(f: &Fixture, usage: &Usage, token: &str) -> Result<()> {
    for s in STEPS {
        step(f, usage, s, token).await?;
    }
    Ok(())
}

async fn current_value(f: &Fixture) -> String {
    f.secrets
        .get_secret_value()
        .secret_id(&f.secret_id)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

async fn salt_version(f: &Fixture, username: &str) -> Option<String> {
    let user = f.item(username).await.unwrap()?;
    user.get("saltVersion")?.as_str().map(str::to_owned)
}

fn allowed(answer: &Value) -> bool {
    answer.get("Role").is_some()
}

async fn login(auth: &ferry_tests::fixture::AwsAuthenticator, user: &str, pw: &str) -> bool {
    allowed(&auth.handle_event(&direct_event(user, Some(pw))).await)
}

#[tokio::test]
async fn a_full_rotation_adds_a_new_current_salt_and_keeps_every_user_logging_in() -> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    f.put_user("alice", Some("alice-pw"), json!({})).await?;
    f.put_user(
        "bob",
        None,
        json!({"passwordHash": f.hash("bob-pw", "1").await?, "saltVersion": "1"}),
    )
    .await?;
    let before = Keyring::parse(&current_value(&f).await)?;
    let token = start_rotation(&f).await?;
    let outcomes = [
        step(&f, &u, Step::Create, &token).await?,
        step(&f, &u, Step::Set, &token).await?,
        step(&f, &u, Step::Test, &token).await?,
        step(&f, &u, Step::Finish, &token).await?,
    ];
    assert!(matches!(&outcomes[0], Outcome::Created { version, .. } if version == "3"));
    assert_eq!(outcomes[3], Outcome::Finished);
    let after = Keyring::parse(&current_value(&f).await)?;
    assert_eq!(after.current_version(), "3");
    assert_eq!(after.salt("1"), before.salt("1"), "bob's version is kept");
    assert_eq!(after.salt("2"), before.salt("2"), "the old current is kept");
    assert!(after.current_salt().len() >= 43);
    assert!(
        !before
            .versions()
            .iter()
            .any(|v| before.salt(v) == Some(after.current_salt()))
    );

    let auth = f.authenticator();
    assert!(login(&auth, "alice", "alice-pw").await);
    assert!(login(&auth, "bob", "bob-pw").await);
    assert!(!login(&auth, "bob", "alice-pw").await);
    assert_eq!(salt_version(&f, "alice").await.as_deref(), Some("3"));
    assert_eq!(salt_version(&f, "bob").await.as_deref(), Some("3"));
    // Re-hashed users log in with a cold authenticator too.
    assert!(login(&f.authenticator(), "bob", "bob-pw").await);
    Ok(())
}

#[tokio::test]
async fn every_step_can_be_repeated_without_changing_the_outcome() -> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    let token = start_rotation(&f).await?;
    assert!(matches!(
        step(&f, &u, Step::Create, &token).await?,
        Outcome::Created { .. }
    ));
    let staged = staged_value(&f, &token).await;
    assert_eq!(
        step(&f, &u, Step::Create, &token).await?,
        Outcome::AlreadyCreated
    );
    assert_eq!(
        staged_value(&f, &token).await,
        staged,
        "a repeated createSecret changes nothing"
    );
    for s in [Step::Set, Step::Set, Step::Test, Step::Test, Step::Finish] {
        step(&f, &u, s, &token).await?;
    }
    let current = current_value(&f).await;
    assert_eq!(current, staged);
    for s in STEPS {
        assert_eq!(step(&f, &u, s, &token).await?, Outcome::AlreadyCurrent);
    }
    assert_eq!(current_value(&f).await, current);
    Ok(())
}

async fn staged_value(f: &Fixture, token: &str) -> String {
    f.secrets
        .get_secret_value()
        .secret_id(&f.secret_id)
        .version_id(token)
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_failed_step_leaves_the_secret_as_it_was_and_the_rotation_resumes() -> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    f.put_user("carol", Some("carol-pw"), json!({})).await?;
    let before = current_value(&f).await;
    let token = start_rotation(&f).await?;
    step(&f, &u, Step::Create, &token).await?;
    // testSecret cannot reach the users table: it fails, and nothing moves.
    let broken = WithLegacy {
        users: DynamoUserStore::new(f.ddb.clone(), "no-such-table"),
        legacy: DynamoLegacyUsers::new(f.ddb.clone(), None),
    };
    let failed = step(&f, &broken, Step::Test, &token).await;
    assert!(matches!(failed, Err(RotationError::Store(_))), "{failed:?}");
    assert_eq!(current_value(&f).await, before);
    assert!(login(&f.authenticator(), "carol", "carol-pw").await);
    // Secrets Manager retries the step; this time it works.
    step(&f, &u, Step::Test, &token).await?;
    step(&f, &u, Step::Finish, &token).await?;
    assert_eq!(
        Keyring::parse(&current_value(&f).await)?.current_version(),
        "3"
    );
    assert!(login(&f.authenticator(), "carol", "carol-pw").await);
    Ok(())
}

#[tokio::test]
async fn a_stale_pending_version_is_completed_and_unknown_or_unstaged_tokens_are_refused()
-> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    let before = current_value(&f).await;
    let token = start_rotation(&f).await?;
    step(&f, &u, Step::Create, &token).await?;
    // The rotation stopped here (a crash); the staged keyring stays pending and untouched.
    let staged = staged_value(&f, &token).await;
    assert_eq!(current_value(&f).await, before);
    for s in STEPS {
        assert!(matches!(
            step(&f, &u, s, "not-a-version-of-this-secret").await,
            Err(RotationError::UnknownToken)
        ));
    }
    // Resumed later with the same token: the staged keyring is the one that becomes current.
    rotate_fully(&f, &u, &token).await?;
    assert_eq!(current_value(&f).await, staged);
    // The old current version is now AWSPREVIOUS, not pending: no step may run on it.
    let described = f
        .secrets
        .describe_secret()
        .secret_id(&f.secret_id)
        .send()
        .await?;
    let previous = described
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, s)| s.iter().any(|s| s == "AWSPREVIOUS"))
        .map(|(id, _)| id.clone())
        .unwrap();
    assert!(matches!(
        step(&f, &u, Step::Create, &previous).await,
        Err(RotationError::NotPending)
    ));
    Ok(())
}

#[tokio::test]
async fn a_secret_without_rotation_enabled_is_refused_at_every_step() -> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    let before = current_value(&f).await;
    let version = f
        .secrets
        .describe_secret()
        .secret_id(&f.secret_id)
        .send()
        .await?
        .version_ids_to_stages()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    for s in STEPS {
        assert!(matches!(
            step(&f, &u, s, &version).await,
            Err(RotationError::RotationDisabled)
        ));
    }
    assert_eq!(current_value(&f).await, before);
    Ok(())
}

#[tokio::test]
async fn pruning_keeps_used_current_and_previous_versions_and_drops_unused_ones() -> Result<()> {
    let f = Fixture::with_secret(
        r#"{"current":"4","salts":{"1":"salt-one-used","2":"salt-two-unused","3":"salt-three-previous","4":"salt-four-current"}}"#,
    )
    .await?;
    let u = usage(&f, None);
    f.put_user(
        "dave",
        None,
        json!({"passwordHash": f.hash("dave-pw", "1").await?, "saltVersion": "1"}),
    )
    .await?;
    let token = start_rotation(&f).await?;
    let created = step(&f, &u, Step::Create, &token).await?;
    assert_eq!(
        created,
        Outcome::Created {
            version: "5".into(),
            kept: vec!["1".into(), "3".into(), "4".into()],
            dropped: vec!["2".into()],
        }
    );
    rotate_fully(&f, &u, &token).await?;
    let after = Keyring::parse(&current_value(&f).await)?;
    assert_eq!(after.versions(), ["1", "3", "4", "5"]);
    assert!(login(&f.authenticator(), "dave", "dave-pw").await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logins_keep_succeeding_while_the_salt_rotates_and_move_to_the_new_salt() -> Result<()> {
    let f = Arc::new(Fixture::new().await?);
    let users: Vec<String> = (0..6).map(|i| format!("user{i}")).collect();
    for u in &users {
        f.put_user(u, Some(&format!("{u}-pw")), json!({})).await?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (logins, wrong) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    // Four "Lambda instances", each with its own keyring cache (60 s, the default).
    for t in 0..4usize {
        let (f, stop, logins, wrong, users) = (
            Arc::clone(&f),
            Arc::clone(&stop),
            Arc::clone(&logins),
            Arc::clone(&wrong),
            users.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let auth = f.authenticator();
            let mut i = t;
            // At least two rounds after the rotation finished.
            let mut after = 0;
            while after < 2 * users.len() {
                if stop.load(Ordering::SeqCst) {
                    after += 1;
                }
                let u = &users[i % users.len()];
                if !login(&auth, u, &format!("{u}-pw")).await {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
                logins.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
        }));
    }
    let u = usage(&f, None);
    let token = start_rotation(&f).await?;
    for s in STEPS {
        step(&f, &u, s, &token).await?;
        // Let logins run between the steps.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await?;
    }
    assert!(logins.load(Ordering::SeqCst) >= 48);
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "no login may be wrongly denied"
    );
    // Afterwards: a new instance (cold cache) logs everyone in once; all end on version 3.
    let fresh = f.authenticator();
    for u in &users {
        assert!(login(&fresh, u, &format!("{u}-pw")).await);
        assert_eq!(salt_version(&f, u).await.as_deref(), Some("3"), "{u}");
    }
    Ok(())
}

#[tokio::test]
async fn three_rotations_later_a_user_who_never_logged_in_still_can() -> Result<()> {
    let f = Fixture::new().await?;
    let u = usage(&f, None);
    f.put_user("idle", Some("idle-pw"), json!({})).await?;
    f.put_user("busy", Some("busy-pw"), json!({})).await?;
    let mut token = start_rotation(&f).await?;
    for round in 0..3 {
        if round > 0 {
            token = next_rotation(&f, &token).await?;
        }
        rotate_fully(&f, &u, &token).await?;
        assert!(login(&f.authenticator(), "busy", "busy-pw").await);
    }
    let keyring = Keyring::parse(&current_value(&f).await)?;
    assert_eq!(keyring.current_version(), "5");
    assert!(
        keyring.salt("2").is_some(),
        "idle's version survives: {keyring:?}"
    );
    assert!(
        keyring.salt("1").is_none(),
        "the unused version 1 is pruned"
    );
    assert!(login(&f.authenticator(), "idle", "idle-pw").await);
    assert_eq!(salt_version(&f, "idle").await.as_deref(), Some("5"));
    Ok(())
}

/// A fixture as the seed design left it: a plain salt string, and a legacy table.
async fn seed_fixture() -> Result<(Fixture, String)> {
    let f = Fixture::with_secret("the-seed-designs-salt").await?;
    let legacy = unique("seed-users");
    create_legacy_table(&f.ddb, &legacy).await?;
    Ok((f, legacy))
}

async fn put_legacy(f: &Fixture, table: &str, username: &str, password: &str) -> Result<String> {
    let key = legacy_key(
        "the-seed-designs-salt",
        &Password::parse(password)?,
        username,
    );
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(json!({
            "hashPassword": key,
            "username": username,
            "bucket": "seed-bucket",
            "home": format!("home/{username}"),
            "iamPolicyArn": f.policy_arn,
        }))
        .unwrap();
    f.ddb
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await?;
    Ok(key)
}

async fn legacy_count(f: &Fixture, table: &str) -> i32 {
    f.ddb.scan().table_name(table).send().await.unwrap().count()
}

#[tokio::test]
async fn a_seed_user_is_migrated_at_the_first_login_and_then_logs_in_normally() -> Result<()> {
    let (f, legacy) = seed_fixture().await?;
    put_legacy(&f, &legacy, "zoe", "zoe-pw").await?;
    let auth = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    let answer = auth
        .handle_event(&direct_event("zoe", Some("zoe-pw")))
        .await;
    assert!(allowed(&answer), "{answer}");
    assert_eq!(answer["HomeDirectory"], "/seed-bucket/home/zoe");
    assert_eq!(salt_version(&f, "zoe").await.as_deref(), Some("0"));
    assert_eq!(
        legacy_count(&f, &legacy).await,
        0,
        "the legacy item is gone"
    );
    // From now on zoe is an ordinary user, also for an authenticator with no legacy table.
    assert!(login(&f.authenticator(), "zoe", "zoe-pw").await);
    assert!(!login(&f.authenticator(), "zoe", "not-zoes").await);
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_or_unknown_name_migrates_nothing() -> Result<()> {
    let (f, legacy) = seed_fixture().await?;
    put_legacy(&f, &legacy, "yan", "yan-pw").await?;
    put_legacy(&f, &legacy, "xia", "xia-pw").await?;
    let auth = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    assert_eq!(
        auth.handle_event(&direct_event("yan", Some("wrong"))).await,
        json!({})
    );
    assert_eq!(
        auth.handle_event(&direct_event("nobody", Some("yan-pw")))
            .await,
        json!({})
    );
    // Another user's password does not open this account (the key includes the username).
    assert_eq!(
        auth.handle_event(&direct_event("yan", Some("xia-pw")))
            .await,
        json!({})
    );
    assert_eq!(legacy_count(&f, &legacy).await, 2);
    assert_eq!(salt_version(&f, "yan").await, None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_logins_at_once_migrate_the_user_once_and_both_succeed() -> Result<()> {
    let (f, legacy) = seed_fixture().await?;
    put_legacy(&f, &legacy, "wes", "wes-pw").await?;
    let a = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    let b = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    let event = direct_event("wes", Some("wes-pw"));
    let (ra, rb) = tokio::join!(a.handle_event(&event), b.handle_event(&event));
    assert!(allowed(&ra) && allowed(&rb), "{ra} {rb}");
    let items = f.ddb.scan().table_name(&f.table).send().await?;
    assert_eq!(items.count(), 1, "one user record");
    assert_eq!(legacy_count(&f, &legacy).await, 0);
    assert!(login(&f.authenticator(), "wes", "wes-pw").await);
    Ok(())
}

/// B's legacy table, which lets A's whole first login run (migrating the user and removing the
/// legacy item) just before B's own lookup: the interleaving where B read the users table too
/// early and the legacy table too late.
struct MigratedMeanwhile {
    inner: DynamoLegacyUsers,
    other_login: AwsAuthenticator<DynamoLegacyUsers>,
    event: Value,
    other_allowed: Arc<AtomicBool>,
}

impl MigratedMeanwhile {
    /// Login B, with A (the user's right password) slipped in before B's legacy lookup; the flag
    /// says whether A was allowed.
    fn login_b(
        f: &Fixture,
        legacy: &str,
        a_event: Value,
    ) -> (AwsAuthenticator<Self>, Arc<AtomicBool>) {
        let table = || DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.to_owned()));
        let other_allowed = Arc::new(AtomicBool::new(false));
        let b = f.authenticator().with_legacy(MigratedMeanwhile {
            inner: table(),
            other_login: f.authenticator().with_legacy(table()),
            event: a_event,
            other_allowed: Arc::clone(&other_allowed),
        });
        (b, other_allowed)
    }
}

impl ferry_core::ports::LegacyUsers for MigratedMeanwhile {
    fn enabled(&self) -> bool {
        true
    }
    async fn find(
        &self,
        key: &str,
    ) -> Result<Option<ferry_core::ports::LegacyUser>, ferry_core::ports::StoreError> {
        let answer = self.other_login.handle_event(&self.event).await;
        self.other_allowed.store(allowed(&answer), Ordering::SeqCst);
        self.inner.find(key).await
    }
    async fn remove(&self, key: &str) -> Result<(), ferry_core::ports::StoreError> {
        self.inner.remove(key).await
    }
    async fn count(&self) -> Result<u64, ferry_core::ports::StoreError> {
        self.inner.count().await
    }
    async fn items_of(
        &self,
        username: &str,
    ) -> Result<Vec<(String, ferry_core::ports::LegacyUser)>, ferry_core::ports::StoreError> {
        self.inner.items_of(username).await
    }
}

#[tokio::test]
async fn a_first_login_that_finds_the_legacy_item_already_migrated_still_succeeds() -> Result<()> {
    let (f, legacy) = seed_fixture().await?;
    put_legacy(&f, &legacy, "xan", "xan-pw").await?;
    let event = direct_event("xan", Some("xan-pw"));
    let (b, a_allowed) = MigratedMeanwhile::login_b(&f, &legacy, event.clone());
    let answer = b.handle_event(&event).await;
    assert!(
        a_allowed.load(Ordering::SeqCst),
        "A's login migrated the user"
    );
    assert_eq!(legacy_count(&f, &legacy).await, 0, "A removed the item");
    assert!(allowed(&answer), "B was refused: {answer}");
    // The same interleaving with a wrong password is still a denial.
    put_legacy(&f, &legacy, "yul", "yul-pw").await?;
    let (b, a_allowed) =
        MigratedMeanwhile::login_b(&f, &legacy, direct_event("yul", Some("yul-pw")));
    let answer = b
        .handle_event(&direct_event("yul", Some("not-yul-pw")))
        .await;
    assert!(
        a_allowed.load(Ordering::SeqCst),
        "A's login migrated the user"
    );
    assert_eq!(legacy_count(&f, &legacy).await, 0, "A removed the item");
    assert!(!allowed(&answer), "a wrong password was let in: {answer}");
    Ok(())
}

#[tokio::test]
async fn the_seed_salt_survives_rotations_while_legacy_users_remain() -> Result<()> {
    let (f, legacy) = seed_fixture().await?;
    put_legacy(&f, &legacy, "vic", "vic-pw").await?;
    let u = usage(&f, Some(&legacy));
    let mut token = start_rotation(&f).await?;
    rotate_fully(&f, &u, &token).await?;
    token = next_rotation(&f, &token).await?;
    rotate_fully(&f, &u, &token).await?;
    let keyring = Keyring::parse(&current_value(&f).await)?;
    assert_eq!(keyring.versions(), ["0", "1", "2"]);
    let auth = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    assert!(login_with(&auth, "vic", "vic-pw").await);
    assert_eq!(salt_version(&f, "vic").await.as_deref(), Some("2"));
    Ok(())
}

async fn login_with<L: ferry_core::ports::LegacyUsers>(
    auth: &AwsAuthenticator<L>,
    user: &str,
    pw: &str,
) -> bool {
    allowed(&auth.handle_event(&direct_event(user, Some(pw))).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_salt_rotation_binary_rotates_as_lambda_runs_it_and_logs_no_secret() -> Result<()> {
    use ferry_tests::runtime_api::{RuntimeApi, workspace_binary};
    const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

    let f = Fixture::new().await?;
    let before = current_value(&f).await;
    let token = start_rotation(&f).await?;
    let mut api = RuntimeApi::start()?;
    // Logs go to a file: at trace level they would fill a pipe nobody reads yet.
    let log_path = std::env::temp_dir().join(unique("salt-rotation-log"));
    let log = std::fs::File::create(&log_path)?;
    let mut child = api
        .function_command(&workspace_binary("salt-rotation")?)
        .env("USERS_TABLE", &f.table)
        .env("RUST_LOG", "trace")
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    api.wait_ready(WAIT)?;
    // A malformed event or an unknown step fails the invocation (Secrets Manager then stops).
    for bad in [
        json!({"Step": "dance", "SecretId": f.secret_id, "ClientRequestToken": token}),
        json!({"SecretId": f.secret_id}),
        json!(null),
    ] {
        let answer = api.invoke(bad.to_string().as_bytes(), WAIT)?;
        assert!(!answer.ok, "{bad} must fail");
    }
    for s in STEPS {
        let event = json!({
            "Step": s.as_str(),
            "SecretId": f.secret_id,
            "ClientRequestToken": token,
            "RotationToken": "rotation-token-that-must-never-be-logged",
        });
        let answer = api.invoke(event.to_string().as_bytes(), WAIT)?;
        assert!(
            answer.ok,
            "{}: {}",
            s.as_str(),
            String::from_utf8_lossy(&answer.body)
        );
    }
    child.kill()?;
    child.wait()?;
    let logs = std::fs::read_to_string(&log_path)?;
    std::fs::remove_file(&log_path)?;
    let after = Keyring::parse(&current_value(&f).await)?;
    assert_eq!(after.current_version(), "3");
    assert!(logs.contains("finishSecret"), "{logs}");
    let old = Keyring::parse(&before)?;
    for secret in [
        old.salt("1").unwrap(),
        old.salt("2").unwrap(),
        after.current_salt(),
        "rotation-token-that-must-never-be-logged",
    ] {
        assert!(!logs.contains(secret), "a secret reached the logs");
    }
    Ok(())
}

#[tokio::test]
async fn a_hash_below_the_configured_cost_is_replaced_at_the_next_login() -> Result<()> {
    use argon2::PasswordHasher;
    let f = Fixture::new().await?;
    let keyring = Keyring::parse(&current_value(&f).await)?;
    let peppered =
        ferry_core::domain::password::pepper(keyring.current_salt(), &Password::parse("weak-pw")?);
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(&peppered)
    .unwrap()
    .to_string();
    f.put_user(
        "wendy",
        None,
        json!({"passwordHash": weak, "saltVersion": "2"}),
    )
    .await?;
    assert!(login(&f.authenticator(), "wendy", "weak-pw").await);
    let stored = stored_hash(&f, "wendy").await;
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    assert!(login(&f.authenticator(), "wendy", "weak-pw").await);
    Ok(())
}

async fn stored_hash(f: &Fixture, username: &str) -> String {
    let user = f.item(username).await.unwrap().unwrap_or_default();
    user["passwordHash"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_re_hash_loses_to_a_password_changed_meanwhile() -> Result<()> {
    use ferry_core::ports::UserStore;
    let f = Fixture::new().await?;
    f.put_user("xena", Some("first-pw"), json!({})).await?;
    let users = DynamoUserStore::new(f.ddb.clone(), &f.table);
    let name = ferry_core::domain::username::Username::parse("xena")?;
    // An administrator set a new password after the login read the record.
    let changed = stored_hash(&f, "xena").await;
    let replaced = users
        .replace_hash(&name, "the-hash-the-login-read", "$argon2id$stale", "3")
        .await?;
    assert!(!replaced);
    assert_eq!(stored_hash(&f, "xena").await, changed);
    assert_eq!(salt_version(&f, "xena").await.as_deref(), Some("2"));
    assert!(
        users
            .replace_hash(&name, &changed, "$argon2id$new", "3")
            .await?
    );
    assert_eq!(stored_hash(&f, "xena").await, "$argon2id$new");
    Ok(())
}

#[tokio::test]
async fn the_ferry_command_disables_and_removes_seed_users_in_the_legacy_table_too() -> Result<()> {
    use ferry_tests::runtime_api::workspace_binary;
    let (f, legacy) = seed_fixture().await?;
    let ferry = |args: &[&str]| {
        std::process::Command::new(workspace_binary("ferry").unwrap())
            .args(args)
            .args(["--legacy-table", &legacy])
            .env("USERS_TABLE", &f.table)
            .env("SALT_SECRET_ID", &f.secret_id)
            .output()
            .unwrap()
    };
    put_legacy(&f, &legacy, "ines", "ines-pw").await?;
    let out = ferry(&["user", "disable", "ines"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record = f.item("ines").await?.expect("a record of her own");
    assert_eq!(record["status"], "disabled");
    assert!(record.get("passwordHash").is_none());
    // Her old password neither logs in nor migrates her now.
    let auth = f
        .authenticator()
        .with_legacy(DynamoLegacyUsers::new(f.ddb.clone(), Some(legacy.clone())));
    let answer = auth
        .handle_event(&direct_event("ines", Some("ines-pw")))
        .await;
    assert!(!allowed(&answer));
    assert_eq!(f.item("ines").await?.unwrap()["status"], "disabled");
    // Removed: the record and the legacy item both go.
    let out = ferry(&["user", "rm", "ines"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 item(s) of the seed design's table"));
    assert!(f.item("ines").await?.is_none());
    assert_eq!(legacy_count(&f, &legacy).await, 0);
    let answer = auth
        .handle_event(&direct_event("ines", Some("ines-pw")))
        .await;
    assert!(!allowed(&answer), "not recreated by her old password");
    assert!(f.item("ines").await?.is_none());
    Ok(())
}
