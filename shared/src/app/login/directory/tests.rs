//! The decisions of directory logins, against the in-memory directory of [`crate::testing`]:
//! which source a user belongs to, that the record decides, what a directory's refusal and
//! failure become, and that a slow directory is cut off at its deadline.
//! `tests/tests/directory.rs` runs the same logins against a real OpenLDAP.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::app::login::{Authenticator, Decision, DenyReason, Settings};
use crate::domain::defender::{AttemptKeys, DefenderConfig};
use crate::domain::directory::{DefaultProfile, DirectoryUser, SourceName};
use crate::domain::keyring::Keyring;
use crate::domain::password::{Password, hash_password};
use crate::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use crate::domain::protocol::Protocol;
use crate::domain::transfer::{AuthRequest, AuthResponse, Credential};
use crate::domain::user::UserRecord;
use crate::domain::username::Username;
use crate::ports::{DirectoryRefusal, DirectorySource};
use crate::testing::{
    Fault, MemoryDefender, MemoryDirectory, MemoryKeyring, MemoryPolicies, MemoryUsers,
};

const POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/ferry-scope-down";
const DIRECTORY_POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/directory-users";
const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-default";
const KEYRING: &str = r#"{"current":"1","salts":{"1":"salt-one"}}"#;
const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@x";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf3Rw5ojPiuBcXf3lJiZ2nWGwHDeMmKd7Hjt3x9Hx9m b@x";

struct World {
    users: MemoryUsers,
    salts: MemoryKeyring,
    policies: MemoryPolicies,
    directory: Arc<MemoryDirectory>,
    defender: MemoryDefender,
}

impl World {
    fn new() -> Self {
        let policies = MemoryPolicies::new();
        for arn in [POLICY_ARN, DIRECTORY_POLICY_ARN] {
            policies.insert(
                arn,
                PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).unwrap(),
            );
        }
        Self {
            users: MemoryUsers::new(),
            salts: MemoryKeyring::new(Keyring::parse(KEYRING).unwrap()),
            policies,
            directory: Arc::new(MemoryDirectory::new()),
            defender: MemoryDefender::new(),
        }
    }

    fn source(&self, profile: bool) -> DirectorySource {
        DirectorySource {
            name: SourceName::parse("corp").unwrap(),
            default_profile: profile.then(|| DefaultProfile {
                bucket: "ferry-data".into(),
                home: "corp/${transfer:UserName}".into(),
                iam_policy_arn: DIRECTORY_POLICY_ARN.into(),
                role_arn: None,
                chroot: false,
            }),
            deadline: Duration::from_millis(300),
            directory: Arc::clone(&self.directory) as _,
        }
    }

    fn auth(&self, profile: bool) -> Authenticator<&MemoryUsers, &MemoryKeyring, &MemoryPolicies> {
        let settings = Settings {
            default_role_arn: ROLE.into(),
            salt_cache: Duration::from_secs(3600),
            policy_cache: Duration::from_secs(3600),
            verified_cache: Duration::ZERO,
        };
        Authenticator::new(&self.users, &self.salts, &self.policies, settings)
            .with_directories(vec![self.source(profile)])
    }
}

fn record(name: &str, extra: Value) -> UserRecord {
    let mut attrs = json!({
        "username": name,
        "bucket": "ferry-data",
        "home": format!("home/{name}"),
        "iamPolicyArn": POLICY_ARN,
    });
    if let (Some(a), Value::Object(e)) = (attrs.as_object_mut(), extra) {
        a.extend(e);
    }
    UserRecord::from_json(attrs).unwrap()
}

fn password(name: &str, password: &str) -> AuthRequest {
    request(
        name,
        Credential::Password(Password::parse(password).unwrap()),
    )
}

fn key(name: &str) -> AuthRequest {
    request(name, Credential::PublicKey)
}

fn request(name: &str, credential: Credential) -> AuthRequest {
    AuthRequest {
        username: Username::parse(name).unwrap(),
        credential,
        protocol: Protocol::Sftp,
        server_id: "s-0123456789abcdef0".into(),
        source_ip: "203.0.113.7".parse().unwrap(),
    }
}

fn allowed(decision: Decision) -> AuthResponse {
    match decision {
        Decision::Allow(response) => response,
        Decision::Deny(reason) => panic!("expected an allowed login, got {reason:?}"),
    }
}

fn mapped(keys: &[&str]) -> DirectoryUser {
    DirectoryUser {
        dn: "uid=someone,ou=people,dc=corp".into(),
        public_keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        ..DirectoryUser::default()
    }
}

#[tokio::test]
async fn a_directory_user_without_a_record_gets_the_default_profile() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    let answer = allowed(w.auth(true).authenticate(&password("alice", "right")).await);
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/corp/alice")
    );
    assert_eq!(answer.role, ROLE);
    assert!(answer.policy.is_some());
    // Nothing is written for a user with no record.
    assert_eq!(w.users.writes(), 0);
}

#[tokio::test]
async fn a_default_profile_whose_policy_reaches_outside_the_home_admits_no_one() {
    let w = World::new();
    // The profile's policy lets a session read every object of the bucket: the policy validator
    // would mark a record with it invalid, and a profile's record is judged the same way.
    let everything = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::ferry-data"},{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::ferry-data/*"}]}"#;
    w.policies.insert(
        DIRECTORY_POLICY_ARN,
        PolicyDocument::from_json(everything).unwrap(),
    );
    w.directory.insert("alice", "right", mapped(&[KEY_A]));
    let auth = w.auth(true);
    assert_eq!(
        auth.authenticate(&password("alice", "right")).await,
        Decision::Deny(DenyReason::Invalid)
    );
    assert_eq!(
        auth.authenticate(&key("alice")).await,
        Decision::Deny(DenyReason::Invalid)
    );
    // With the policy fixed, the same user gets in.
    w.policies.insert(
        DIRECTORY_POLICY_ARN,
        PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).unwrap(),
    );
    let fixed = w.auth(true);
    let before = w.policies.loads();
    allowed(fixed.authenticate(&password("alice", "right")).await);
    allowed(fixed.authenticate(&key("alice")).await);
    // The check reads the policy from the same warm cache as the answer: one read in all, not
    // one per login (on AWS a read is two IAM calls).
    assert_eq!(w.policies.loads() - before, 1);
}

#[tokio::test]
async fn a_wrong_directory_password_is_refused() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    let decision = w.auth(true).authenticate(&password("alice", "wrong")).await;
    assert_eq!(decision, Decision::Deny(DenyReason::WrongPassword));
}

/// Whether `req` can be judged with no Argon2 run possible.
async fn judged_without_argon2(
    auth: &Authenticator<&MemoryUsers, &MemoryKeyring, &MemoryPolicies>,
    req: &AuthRequest,
) -> bool {
    auth.judged_without_argon2(req).await.is_some()
}

#[tokio::test(start_paused = true)]
async fn a_refused_directory_password_pays_one_argon2_run_like_every_password_denial() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    w.directory
        .refuse("grace", "right", DirectoryRefusal::NotInGroup);
    w.users
        .insert(record("bob", json!({"identitySource": "corp"})));
    w.directory.insert("bob", "right", mapped(&[]));
    let auth = w.auth(true);
    // Without a record (the default profile) and with one that names the source.
    for (name, pw) in [("alice", "wrong"), ("grace", "right"), ("bob", "wrong")] {
        assert!(
            !judged_without_argon2(&auth, &password(name, pw)).await,
            "{name}'s refusal was answered without an Argon2 run"
        );
    }
    // A directory's yes needs no hash of ours.
    assert!(judged_without_argon2(&auth, &password("alice", "right")).await);
}

#[tokio::test]
async fn each_directory_refusal_has_its_own_reason() {
    let w = World::new();
    let cases = [
        (
            "grace",
            DirectoryRefusal::NotInGroup,
            DenyReason::NotInGroup,
        ),
        ("dave", DirectoryRefusal::Disabled, DenyReason::Disabled),
        ("erin", DirectoryRefusal::Locked, DenyReason::Locked),
        (
            "twin",
            DirectoryRefusal::Ambiguous,
            DenyReason::AmbiguousUser,
        ),
    ];
    for (name, refusal, _) in cases {
        w.directory.refuse(name, "right", refusal);
    }
    let auth = w.auth(true);
    for (name, _, reason) in cases {
        let by_password = auth.authenticate(&password(name, "right")).await;
        assert_eq!(by_password, Decision::Deny(reason), "{name} by password");
        let by_key = auth.authenticate(&key(name)).await;
        assert_eq!(by_key, Decision::Deny(reason), "{name} by key");
    }
}

#[tokio::test]
async fn a_user_unknown_everywhere_is_an_unknown_user() {
    let w = World::new();
    let auth = w.auth(true);
    assert_eq!(
        auth.authenticate(&password("nobody", "x")).await,
        Decision::Deny(DenyReason::UnknownUser)
    );
    assert_eq!(
        auth.authenticate(&key("nobody")).await,
        Decision::Deny(DenyReason::UnknownUser)
    );
}

#[tokio::test]
async fn without_a_default_profile_a_source_serves_only_the_users_whose_record_names_it() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    let decision = w
        .auth(false)
        .authenticate(&password("alice", "right"))
        .await;
    assert_eq!(decision, Decision::Deny(DenyReason::UnknownUser));
    assert_eq!(w.directory.calls(), 0);
    w.users
        .insert(record("alice", json!({"identitySource": "corp"})));
    let answer = allowed(
        w.auth(false)
            .authenticate(&password("alice", "right"))
            .await,
    );
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/home/alice")
    );
}

#[tokio::test]
async fn the_record_decides_when_a_user_is_in_both_the_table_and_the_directory() {
    let w = World::new();
    // A local user: ferry's hash decides, the directory's password does not open the account
    // and the directory is never asked.
    let hash = hash_password("salt-one", &Password::parse("local-pw").unwrap()).unwrap();
    w.users.insert(record(
        "tabitha",
        json!({"passwordHash": hash, "saltVersion": "1"}),
    ));
    w.directory.insert("tabitha", "directory-pw", mapped(&[]));
    let auth = w.auth(true);
    assert_eq!(
        auth.authenticate(&password("tabitha", "directory-pw"))
            .await,
        Decision::Deny(DenyReason::WrongPassword)
    );
    let answer = allowed(auth.authenticate(&password("tabitha", "local-pw")).await);
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/home/tabitha")
    );
    assert_eq!(w.directory.calls(), 0);

    // A record naming the source: the directory checks the password, the record gives the
    // answer (its home, not the profile's) and its refusals stand before the directory is asked.
    w.users
        .insert(record("tabitha", json!({"identitySource": "corp"})));
    let answer = allowed(
        auth.authenticate(&password("tabitha", "directory-pw"))
            .await,
    );
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/home/tabitha")
    );
    assert_eq!(w.directory.calls(), 1);
    w.users.insert(record(
        "tabitha",
        json!({"identitySource": "corp", "status": "disabled"}),
    ));
    assert_eq!(
        auth.authenticate(&password("tabitha", "directory-pw"))
            .await,
        Decision::Deny(DenyReason::Disabled)
    );
    assert_eq!(
        auth.authenticate(&key("tabitha")).await,
        Decision::Deny(DenyReason::Disabled)
    );
    assert_eq!(w.directory.calls(), 1);
}

#[tokio::test]
async fn a_record_naming_a_source_that_is_not_configured_is_refused() {
    let w = World::new();
    w.users
        .insert(record("alice", json!({"identitySource": "elsewhere"})));
    let auth = w.auth(true);
    assert_eq!(
        auth.authenticate(&password("alice", "x")).await,
        Decision::Deny(DenyReason::UnknownSource)
    );
    // Also with no directories at all: never ferry's hash.
    let settings = Settings {
        default_role_arn: ROLE.into(),
        salt_cache: Duration::from_secs(1),
        policy_cache: Duration::from_secs(1),
        verified_cache: Duration::ZERO,
    };
    let plain = Authenticator::new(&w.users, &w.salts, &w.policies, settings);
    assert_eq!(
        plain.authenticate(&password("alice", "x")).await,
        Decision::Deny(DenyReason::UnknownSource)
    );
}

#[tokio::test]
async fn a_key_login_gets_the_directory_keys_and_the_records() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[KEY_A]));
    let auth = w.auth(true);
    let answer = allowed(auth.authenticate(&key("alice")).await);
    assert_eq!(answer.public_keys, Some(vec![KEY_A.to_owned()]));
    w.users.insert(record(
        "alice",
        json!({"identitySource": "corp", "publicKeys": [KEY_B]}),
    ));
    let answer = allowed(auth.authenticate(&key("alice")).await);
    assert_eq!(
        answer.public_keys,
        Some(vec![KEY_B.to_owned(), KEY_A.to_owned()])
    );
    w.directory.insert("bob", "right", mapped(&[]));
    assert_eq!(
        auth.authenticate(&key("bob")).await,
        Decision::Deny(DenyReason::NoKeys)
    );
}

#[tokio::test]
async fn a_directory_that_fails_denies_as_unavailable() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[KEY_A]));
    w.directory.fail_with(Fault::Unavailable);
    let auth = w.auth(true);
    for req in [password("alice", "right"), key("alice")] {
        assert_eq!(
            auth.authenticate(&req).await,
            Decision::Deny(DenyReason::DirectoryUnavailable)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_directory_is_cut_off_at_its_deadline() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    w.directory.answer_after(Duration::from_secs(60));
    let started = tokio::time::Instant::now();
    let decision = w.auth(true).authenticate(&password("alice", "right")).await;
    assert_eq!(decision, Decision::Deny(DenyReason::DirectoryUnavailable));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_defender_counts_directory_refusals_but_not_directory_outages() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    let auth = w
        .auth(true)
        .with_defender(&w.defender, DefenderConfig::default());
    let req = password("alice", "wrong");
    auth.authenticate(&req).await;
    let keys = AttemptKeys::of(&req.username, req.source_ip);
    assert!(
        w.defender.tally(&keys.pair).is_some(),
        "a wrong password is counted"
    );

    let w = World::new();
    w.directory.fail_with(Fault::Unavailable);
    let auth = w
        .auth(true)
        .with_defender(&w.defender, DefenderConfig::default());
    auth.authenticate(&req).await;
    // Written with weight zero: an outage is not the caller's doing.
    for key in [&keys.source, &keys.pair, &keys.account] {
        assert_eq!(w.defender.tally(key).map_or(0, |t| t.score), 0, "{key}");
    }
}

#[tokio::test]
async fn every_directory_denial_answers_the_same_empty_object() {
    let w = World::new();
    w.directory.insert("alice", "right", mapped(&[]));
    let auth = w.auth(true);
    let event = |pw: &str| {
        json!({"username": "alice", "password": pw, "protocol": "SFTP",
               "serverId": "s-0123456789abcdef0", "sourceIp": "203.0.113.7"})
    };
    assert_eq!(auth.handle_event(&event("wrong")).await, json!({}));
    w.directory.fail_with(Fault::Unavailable);
    assert_eq!(auth.handle_event(&event("right")).await, json!({}));
}
