//! The authenticator's decisions, against the in-memory ports of [`crate::testing`]: every reason
//! a login is refused, what an allowed login answers, re-hashing, the keyring reload, the caches
//! and the migration from the seed design. Argon2 is the real one (optimised even in dev builds),
//! so a stored hash here is what a store would hold; no service is involved.
//!
//! `tests/tests/auth.rs` and `tests/tests/rotation.rs` run the same authenticator through the real
//! adapters; these tests are the fast specification of the decisions themselves.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use base64::Engine;
use serde_json::{Value, json};

use super::migration::legacy_key;
use super::{Authenticator, Decision, DenyReason, Settings};
use crate::app::now_epoch;
use crate::domain::defender::{AttemptKeys, DefenderConfig, Tally};
use crate::domain::keyring::Keyring;
use crate::domain::password::{Password, hash_password, pepper};
use crate::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use crate::domain::protocol::Protocol;
use crate::domain::transfer::{AuthRequest, AuthResponse, Credential};
use crate::domain::user::{Mapping, MappingType, PosixProfile, UserRecord};
use crate::domain::username::Username;
use crate::ports::{LegacyUser, NoLegacy};
use crate::testing::{
    Fault, MemoryDefender, MemoryKeyring, MemoryLegacy, MemoryPolicies, MemoryUsers,
};

const DEFAULT_ROLE: &str = "arn:aws:iam::123456789012:role/ferry-default";
const OWN_ROLE: &str = "arn:aws:iam::123456789012:role/partner-bob";
const POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/ferry-scope-down";
const BIG_POLICY_ARN: &str = "arn:aws:iam::123456789012:policy/too-big";
const SERVER: &str = "s-0123456789abcdef0";
const SEED_SALT: &str = "the-seed-design-plain-salt";
/// Versions 0 (the seed design's salt), 1 and 2; new hashes use 2.
const KEYRING: &str =
    r#"{"current":"2","salts":{"0":"the-seed-design-plain-salt","1":"salt-one","2":"salt-two"}}"#;
/// The same after a rotation: 3 added and current.
const ROTATED: &str = r#"{"current":"3","salts":{"0":"the-seed-design-plain-salt","1":"salt-one","2":"salt-two","3":"salt-three"}}"#;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@x";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf3Rw5ojPiuBcXf3lJiZ2nWGwHDeMmKd7Hjt3x9Hx9m b@x";
const KEY_C: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEXAMPLEkeyAAAAAAAAAAAA c@x";

/// The ports one authenticator is built on; tests keep them to arrange faults and to look at
/// what the authenticator did.
struct World {
    users: MemoryUsers,
    salts: MemoryKeyring,
    policies: MemoryPolicies,
    legacy: MemoryLegacy,
    defender: MemoryDefender,
}

type Auth<'a> = Authenticator<&'a MemoryUsers, &'a MemoryKeyring, &'a MemoryPolicies>;
type MigratingAuth<'a> =
    Authenticator<&'a MemoryUsers, &'a MemoryKeyring, &'a MemoryPolicies, &'a MemoryLegacy>;
type DefendedAuth<'a> = Authenticator<
    &'a MemoryUsers,
    &'a MemoryKeyring,
    &'a MemoryPolicies,
    NoLegacy,
    &'a MemoryDefender,
>;

impl World {
    fn new() -> Self {
        let policies = MemoryPolicies::new();
        // Stored pretty-printed, as an author writes it: the answer must carry it minified.
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<Value>(CANONICAL_SCOPE_DOWN).unwrap(),
        )
        .unwrap();
        policies.insert(POLICY_ARN, PolicyDocument::from_json(&pretty).unwrap());
        Self {
            users: MemoryUsers::new(),
            salts: MemoryKeyring::new(keyring(KEYRING)),
            policies,
            legacy: MemoryLegacy::new(),
            defender: MemoryDefender::new(),
        }
    }

    /// An authenticator whose caches outlive the test.
    fn auth(&self) -> Auth<'_> {
        self.auth_caching(Duration::from_secs(3600))
    }

    fn auth_caching(&self, ttl: Duration) -> Auth<'_> {
        let settings = Settings {
            default_role_arn: DEFAULT_ROLE.to_owned(),
            salt_cache: ttl,
            policy_cache: ttl,
            verified_cache: ttl,
        };
        Authenticator::new(&self.users, &self.salts, &self.policies, settings)
    }

    /// An authenticator with the seed design's table configured.
    fn migrating(&self) -> MigratingAuth<'_> {
        self.auth().with_legacy(&self.legacy)
    }

    /// An authenticator guarded by the defender, with its default rules.
    fn defended(&self) -> DefendedAuth<'_> {
        self.defended_by(DefenderConfig::default())
    }

    fn defended_by(&self, config: DefenderConfig) -> DefendedAuth<'_> {
        self.auth().with_defender(&self.defender, config)
    }

    /// A hash of `password` under the keyring's salt `version`, as a store would hold it.
    fn hash(&self, password: &str, version: &str) -> String {
        let keyring = self.salts.keyring();
        let salt = keyring
            .salt(version)
            .expect("the keyring holds this version");
        hash_password(salt, &pw(password)).unwrap()
    }

    /// Stores a user whose password (if any) is hashed under the current salt; `extra`
    /// attributes are applied last, so they may override any of that.
    fn add(&self, name: &str, password: Option<&str>, extra: Value) -> UserRecord {
        let mut attrs = json!({});
        if let Some(password) = password {
            let version = self.salts.keyring().current_version().to_owned();
            attrs = json!({"passwordHash": self.hash(password, &version), "saltVersion": version});
        }
        merge(&mut attrs, extra);
        let user = record(name, attrs);
        self.users.insert(user.clone());
        user
    }

    /// Stores a seed-design user under the key their password gives.
    fn add_legacy(&self, name: &str, password: &str) -> String {
        let key = legacy_key(SEED_SALT, &pw(password), name);
        self.legacy.insert(
            key.clone(),
            LegacyUser {
                username: name.to_owned(),
                bucket: "seed-bucket".to_owned(),
                home: format!("home/{name}"),
                policy_arn: POLICY_ARN.to_owned(),
            },
        );
        key
    }
}

fn keyring(json: &str) -> Keyring {
    Keyring::parse(json).unwrap()
}

fn pw(password: &str) -> Password {
    Password::parse(password).unwrap()
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// A valid record of `name` in bucket `ferry-data` under `home/<name>`, plus `extra`.
fn record(name: &str, extra: Value) -> UserRecord {
    let mut attrs = json!({
        "username": name,
        "bucket": "ferry-data",
        "home": format!("home/{name}"),
        "iamPolicyArn": POLICY_ARN,
    });
    merge(&mut attrs, extra);
    UserRecord::from_json(attrs).unwrap()
}

fn request(name: &str, credential: Credential) -> AuthRequest {
    AuthRequest {
        username: Username::parse(name).unwrap(),
        credential,
        protocol: Protocol::Sftp,
        server_id: SERVER.to_owned(),
        source_ip: "203.0.113.7".parse().unwrap(),
    }
}

fn password(name: &str, password: &str) -> AuthRequest {
    request(name, Credential::Password(pw(password)))
}

fn key(name: &str) -> AuthRequest {
    request(name, Credential::PublicKey)
}

fn deny(reason: DenyReason) -> Decision {
    Decision::Deny(reason)
}

fn allowed(decision: Decision) -> AuthResponse {
    match decision {
        Decision::Allow(response) => response,
        Decision::Deny(reason) => panic!("expected an allowed login, got {reason:?}"),
    }
}

fn canonical_policy() -> Option<String> {
    Some(CANONICAL_SCOPE_DOWN.to_owned())
}

// ---- What an allowed login answers ----

#[tokio::test]
async fn a_right_password_gets_the_default_role_the_minified_policy_and_a_path_home() {
    let w = World::new();
    w.add("alice", Some("correct horse"), json!({}));
    let got = w
        .auth()
        .authenticate(&password("alice", "correct horse"))
        .await;
    assert_eq!(
        got,
        Decision::Allow(AuthResponse {
            role: DEFAULT_ROLE.to_owned(),
            policy: canonical_policy(),
            home_directory_type: "PATH",
            home_directory: Some("/ferry-data/home/alice".to_owned()),
            home_directory_details: None,
            public_keys: None,
            posix_profile: None,
        })
    );
    assert_eq!(w.users.reads(), 1, "one user read per login");
}

#[tokio::test]
async fn a_user_with_their_own_role_logical_home_and_posix_profile_gets_them_back() {
    let w = World::new();
    w.add(
        "bob",
        Some("pw-bob"),
        json!({
            "roleArn": OWN_ROLE,
            "homeDirectoryType": "LOGICAL",
            "homeDirectoryDetails": [
                {"Entry": "/inbox", "Target": "/bucket-a/in/bob", "Type": "DIRECTORY"},
                {"Entry": "/readme.txt", "Target": "/bucket-b/readme.txt", "Type": "FILE"}
            ],
            "posixProfile": {"Uid": 1001, "Gid": 1002, "SecondaryGids": [5, 6]},
        }),
    );
    let got = allowed(w.auth().authenticate(&password("bob", "pw-bob")).await);
    assert_eq!(got.role, OWN_ROLE);
    assert_eq!(got.home_directory_type, "LOGICAL");
    assert_eq!(got.home_directory, None);
    let details: Vec<Mapping> =
        serde_json::from_str(got.home_directory_details.as_deref().unwrap()).unwrap();
    assert_eq!(details.len(), 2);
    assert_eq!(details[0].target, "/bucket-a/in/bob");
    assert_eq!(details[1].kind, Some(MappingType::File));
    assert_eq!(
        got.posix_profile,
        Some(PosixProfile {
            uid: 1001,
            gid: 1002,
            secondary_gids: vec![5, 6]
        })
    );
    assert_eq!(got.policy, canonical_policy());
}

#[tokio::test]
async fn a_key_login_answers_the_live_keys_and_loads_no_keyring() {
    let w = World::new();
    let now = now_epoch();
    w.add(
        "erin",
        Some("pw"),
        json!({"publicKeys": [
            {"key": KEY_A, "expiresAt": now - 3600},
            {"key": KEY_B, "expiresAt": now + 3600},
            KEY_C
        ]}),
    );
    let auth = w.auth();
    let got = allowed(auth.authenticate(&key("erin")).await);
    assert_eq!(
        got.public_keys,
        Some(vec![KEY_B.to_owned(), KEY_C.to_owned()])
    );
    assert_eq!(got.role, DEFAULT_ROLE);
    assert_eq!(got.home_directory.as_deref(), Some("/ferry-data/home/erin"));
    assert_eq!(got.policy, canonical_policy());
    assert_eq!(w.salts.loads(), 0, "a key login needs no salt");
    let by_password = allowed(auth.authenticate(&password("erin", "pw")).await);
    assert_eq!(
        by_password.public_keys, None,
        "never keys on a password login"
    );
}

// ---- Who is refused, and why ----

#[tokio::test]
async fn an_unknown_user_is_refused_in_both_flows() {
    let w = World::new();
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("nobody", "pw")).await,
        deny(DenyReason::UnknownUser)
    );
    assert_eq!(
        auth.authenticate(&key("nobody")).await,
        deny(DenyReason::UnknownUser)
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_even_when_it_differs_only_in_case() {
    let w = World::new();
    w.add("dave", Some("right"), json!({}));
    let auth = w.auth();
    for wrong in ["wrong", "Right", "right "] {
        assert_eq!(
            auth.authenticate(&password("dave", wrong)).await,
            deny(DenyReason::WrongPassword),
            "{wrong:?}"
        );
    }
}

#[tokio::test]
async fn a_hash_claimed_under_another_salt_version_is_a_wrong_password() {
    let w = World::new();
    w.add(
        "iris",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "2"}),
    );
    assert_eq!(
        w.auth().authenticate(&password("iris", "pw")).await,
        deny(DenyReason::WrongPassword)
    );
}

#[tokio::test]
async fn a_password_login_for_a_user_without_a_password_is_refused() {
    let w = World::new();
    w.add("keys-only", None, json!({"publicKeys": [KEY_A]}));
    assert_eq!(
        w.auth()
            .authenticate(&password("keys-only", "anything"))
            .await,
        deny(DenyReason::NoPasswordSet)
    );
}

#[tokio::test]
async fn a_key_login_without_a_live_key_is_refused() {
    let w = World::new();
    w.add("no-keys", Some("pw"), json!({}));
    w.add(
        "old-keys",
        None,
        json!({"publicKeys": [{"key": KEY_A, "expiresAt": now_epoch() - 10}]}),
    );
    let auth = w.auth();
    for name in ["no-keys", "old-keys"] {
        assert_eq!(
            auth.authenticate(&key(name)).await,
            deny(DenyReason::NoKeys),
            "{name}"
        );
    }
}

#[tokio::test]
async fn disabled_invalid_and_expired_users_are_refused_in_both_flows_even_with_the_right_password()
{
    let w = World::new();
    let keys = json!([KEY_A]);
    w.add(
        "disabled-u",
        Some("pw"),
        json!({"status": "disabled", "publicKeys": keys}),
    );
    w.add(
        "invalid-u",
        Some("pw"),
        json!({"status": "invalid", "publicKeys": keys}),
    );
    w.add(
        "expired-u",
        Some("pw"),
        json!({"expiresAt": now_epoch() - 60, "publicKeys": keys}),
    );
    w.add(
        "later-u",
        Some("pw"),
        json!({"expiresAt": now_epoch() + 3600, "publicKeys": keys}),
    );
    let auth = w.auth();
    for (name, reason) in [
        ("disabled-u", DenyReason::Disabled),
        ("invalid-u", DenyReason::Invalid),
        ("expired-u", DenyReason::Expired),
    ] {
        assert_eq!(
            auth.authenticate(&password(name, "pw")).await,
            deny(reason),
            "{name} by password"
        );
        assert_eq!(
            auth.authenticate(&key(name)).await,
            deny(reason),
            "{name} by key"
        );
    }
    allowed(auth.authenticate(&password("later-u", "pw")).await);
    allowed(auth.authenticate(&key("later-u")).await);
}

#[tokio::test]
async fn source_ip_server_and_protocol_lists_are_enforced_in_both_flows() {
    let w = World::new();
    w.add(
        "frank",
        Some("pw"),
        json!({
            "allowedIps": ["203.0.113.0/24", "2001:db8::/32"],
            "allowedServers": [SERVER],
            "protocols": ["SFTP", "FTPS"],
            "publicKeys": [KEY_A],
        }),
    );
    let auth = w.auth();
    for base in [password("frank", "pw"), key("frank")] {
        allowed(auth.authenticate(&base).await);
        let v6 = AuthRequest {
            source_ip: "2001:db8::9".parse().unwrap(),
            ..base.clone()
        };
        allowed(auth.authenticate(&v6).await);
        let cases = [
            (
                AuthRequest {
                    source_ip: "198.51.100.1".parse().unwrap(),
                    ..base.clone()
                },
                DenyReason::IpNotAllowed,
            ),
            (
                AuthRequest {
                    server_id: "s-fffffffffffffffff".to_owned(),
                    ..base.clone()
                },
                DenyReason::ServerNotAllowed,
            ),
            (
                AuthRequest {
                    protocol: Protocol::Ftp,
                    ..base.clone()
                },
                DenyReason::ProtocolNotAllowed,
            ),
        ];
        for (req, reason) in cases {
            assert_eq!(auth.authenticate(&req).await, deny(reason), "{req:?}");
        }
    }
}

#[tokio::test]
async fn restrictions_are_judged_only_after_the_password_so_they_tell_a_guesser_nothing() {
    let w = World::new();
    w.add(
        "gwen",
        Some("pw"),
        json!({"allowedIps": ["203.0.113.0/24"]}),
    );
    let outside = AuthRequest {
        source_ip: "198.51.100.1".parse().unwrap(),
        ..password("gwen", "guess")
    };
    assert_eq!(
        w.auth().authenticate(&outside).await,
        deny(DenyReason::WrongPassword)
    );
}

#[tokio::test]
async fn a_salt_version_the_keyring_does_not_hold_reloads_it_once_and_then_not_for_a_while() {
    let w = World::new();
    w.add(
        "jack",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "7"}),
    );
    let auth = w.auth();
    for attempt in 1..=3 {
        assert_eq!(
            auth.authenticate(&password("jack", "pw")).await,
            deny(DenyReason::SaltVersionMissing)
        );
        // The cached read and one reload on the first miss (the version may have just been
        // made); later guesses at the same missing version reload nothing.
        assert_eq!(w.salts.loads(), 2, "attempt {attempt}");
    }
    // Another missing version is a first miss of its own.
    w.add(
        "jill",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "8"}),
    );
    assert_eq!(
        auth.authenticate(&password("jill", "pw")).await,
        deny(DenyReason::SaltVersionMissing)
    );
    assert_eq!(w.salts.loads(), 3);
}

#[tokio::test]
async fn an_unavailable_user_store_is_refused_in_both_flows() {
    let w = World::new();
    w.add("rosa", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.users.fail_reads_with(Fault::Unavailable);
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("rosa", "pw")).await,
        deny(DenyReason::StoreUnavailable)
    );
    assert_eq!(
        auth.authenticate(&key("rosa")).await,
        deny(DenyReason::StoreUnavailable)
    );
    w.users.recover();
    allowed(auth.authenticate(&password("rosa", "pw")).await);
}

#[tokio::test]
async fn a_malformed_user_record_is_refused_as_invalid_in_both_flows() {
    let w = World::new();
    w.add("mia", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.users.fail_reads_with(Fault::Malformed);
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("mia", "pw")).await,
        deny(DenyReason::InvalidRecord)
    );
    assert_eq!(
        auth.authenticate(&key("mia")).await,
        deny(DenyReason::InvalidRecord)
    );
}

#[tokio::test]
async fn an_unusable_stored_hash_is_refused_as_an_invalid_record() {
    let w = World::new();
    w.add(
        "nia",
        None,
        json!({"passwordHash": "$argon2id$garbage", "saltVersion": "2"}),
    );
    assert_eq!(
        w.auth().authenticate(&password("nia", "pw")).await,
        deny(DenyReason::InvalidRecord)
    );
}

#[tokio::test]
async fn an_unavailable_or_broken_keyring_refuses_passwords_but_not_keys() {
    for fault in [Fault::Unavailable, Fault::Malformed] {
        let w = World::new();
        w.add("sam", Some("pw"), json!({"publicKeys": [KEY_A]}));
        w.salts.fail_with(fault);
        let auth = w.auth();
        assert_eq!(
            auth.authenticate(&password("sam", "pw")).await,
            deny(DenyReason::KeyringUnavailable),
            "{fault:?}"
        );
        allowed(auth.authenticate(&key("sam")).await);
    }
}

#[tokio::test]
async fn an_unknown_user_stays_unknown_when_the_keyring_is_unavailable() {
    let w = World::new();
    w.salts.fail_with(Fault::Unavailable);
    assert_eq!(
        w.auth().authenticate(&password("nobody", "pw")).await,
        deny(DenyReason::UnknownUser)
    );
}

#[tokio::test]
async fn an_unavailable_or_missing_policy_is_refused_in_both_flows() {
    let w = World::new();
    w.add("lee", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.add(
        "lou",
        Some("pw"),
        json!({"iamPolicyArn": "arn:aws:iam::123456789012:policy/does-not-exist"}),
    );
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("lou", "pw")).await,
        deny(DenyReason::PolicyUnavailable),
        "a policy that does not exist"
    );
    w.policies.fail_with(Fault::Unavailable);
    assert_eq!(
        auth.authenticate(&password("lee", "pw")).await,
        deny(DenyReason::PolicyUnavailable)
    );
    assert_eq!(
        auth.authenticate(&key("lee")).await,
        deny(DenyReason::PolicyUnavailable)
    );
}

#[tokio::test]
async fn a_malformed_policy_is_refused_as_invalid_in_both_flows() {
    let w = World::new();
    w.add("pat", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.policies.fail_with(Fault::Malformed);
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("pat", "pw")).await,
        deny(DenyReason::PolicyInvalid)
    );
    assert_eq!(
        auth.authenticate(&key("pat")).await,
        deny(DenyReason::PolicyInvalid)
    );
}

#[tokio::test]
async fn a_policy_over_2048_characters_is_refused_in_both_flows() {
    let w = World::new();
    let big = format!(r#"{{"Version":"2012-10-17","Sid":"{}"}}"#, "x".repeat(2048));
    w.policies
        .insert(BIG_POLICY_ARN, PolicyDocument::from_json(&big).unwrap());
    w.add(
        "kim",
        Some("pw"),
        json!({"iamPolicyArn": BIG_POLICY_ARN, "publicKeys": [KEY_A]}),
    );
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("kim", "pw")).await,
        deny(DenyReason::PolicyTooLarge)
    );
    assert_eq!(
        auth.authenticate(&key("kim")).await,
        deny(DenyReason::PolicyTooLarge)
    );
}

// ---- Re-hashing after a successful login ----

#[tokio::test]
async fn a_login_under_an_older_salt_moves_the_hash_to_the_current_salt() {
    let w = World::new();
    let before = w.add(
        "bob",
        None,
        json!({"passwordHash": w.hash("bob-pw", "1"), "saltVersion": "1"}),
    );
    allowed(w.auth().authenticate(&password("bob", "bob-pw")).await);
    let after = w.users.record("bob").unwrap();
    assert_eq!(after.salt_version.as_deref(), Some("2"));
    assert_ne!(after.password_hash, before.password_hash);
    assert_eq!(w.users.writes(), 1);
    // The new hash is a working one: a cold authenticator lets bob in and writes nothing more.
    allowed(w.auth().authenticate(&password("bob", "bob-pw")).await);
    assert_eq!(w.users.writes(), 1);
}

#[tokio::test]
async fn a_hash_with_weaker_argon2_parameters_is_replaced_at_the_next_login() {
    let w = World::new();
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(4096, 1, 1, None).unwrap(),
    )
    .hash_password(&pepper("salt-two", &pw("weak-pw")))
    .unwrap()
    .to_string();
    w.add(
        "wendy",
        None,
        json!({"passwordHash": weak, "saltVersion": "2"}),
    );
    allowed(w.auth().authenticate(&password("wendy", "weak-pw")).await);
    let after = w.users.record("wendy").unwrap();
    assert!(
        after
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "re-hashed at the configured cost"
    );
    assert_eq!(after.salt_version.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_hash_already_current_is_left_alone() {
    let w = World::new();
    let before = w.add("tess", Some("pw"), json!({}));
    allowed(w.auth().authenticate(&password("tess", "pw")).await);
    assert_eq!(w.users.writes(), 0);
    assert_eq!(stored_but_last_login(&w, "tess"), Some(before));
}

#[tokio::test]
async fn a_re_hash_that_loses_to_a_concurrent_change_keeps_that_change_and_the_login() {
    let w = World::new();
    let old = w.add(
        "xena",
        None,
        json!({"passwordHash": w.hash("old-pw", "1"), "saltVersion": "1"}),
    );
    // An administrator sets a new password between the login's read and its re-hash.
    let changed = record(
        "xena",
        json!({"passwordHash": w.hash("new-pw", "2"), "saltVersion": "2"}),
    );
    w.users.write_after_next_read(changed.clone());
    allowed(w.auth().authenticate(&password("xena", "old-pw")).await);
    assert_eq!(w.users.writes(), 1, "the re-hash was attempted");
    assert_eq!(
        stored_but_last_login(&w, "xena"),
        Some(changed),
        "and the change won"
    );
    assert_ne!(Some(old), w.users.record("xena"));
}

#[tokio::test]
async fn a_re_hash_that_fails_does_not_refuse_the_login() {
    let w = World::new();
    let before = w.add(
        "yuri",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "1"}),
    );
    w.users.fail_writes_with(Fault::Unavailable);
    allowed(w.auth().authenticate(&password("yuri", "pw")).await);
    assert_eq!(w.users.record("yuri"), Some(before));
}

// ---- The keyring reload and the caches ----

#[tokio::test]
async fn a_user_on_a_salt_newer_than_the_cached_keyring_makes_it_reload_once() {
    let w = World::new();
    w.add("alice", Some("alice-pw"), json!({}));
    let auth = w.auth();
    allowed(auth.authenticate(&password("alice", "alice-pw")).await);
    assert_eq!(w.salts.loads(), 1);
    // A rotation, then another instance re-hashed bob under the new salt.
    w.salts.replace(keyring(ROTATED));
    w.add(
        "bob",
        None,
        json!({"passwordHash": w.hash("bob-pw", "3"), "saltVersion": "3"}),
    );
    allowed(auth.authenticate(&password("bob", "bob-pw")).await);
    assert_eq!(w.salts.loads(), 2, "reloaded once");
    allowed(auth.authenticate(&password("bob", "bob-pw")).await);
    assert_eq!(w.salts.loads(), 2, "the reloaded keyring is cached");
    // alice, on version 2, now moves to 3 as well: the reloaded keyring is the one used.
    allowed(auth.authenticate(&password("alice", "alice-pw")).await);
    assert_eq!(
        w.users.record("alice").unwrap().salt_version.as_deref(),
        Some("3")
    );
    assert_eq!(w.salts.loads(), 2);
}

#[tokio::test]
async fn the_keyring_and_each_policy_are_loaded_once_within_their_ttl_and_users_every_time() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.add("bob", Some("pw"), json!({}));
    let auth = w.auth();
    for req in [
        password("alice", "pw"),
        key("alice"),
        password("bob", "pw"),
        password("alice", "pw"),
    ] {
        allowed(auth.authenticate(&req).await);
    }
    assert_eq!(w.salts.loads(), 1);
    assert_eq!(w.policies.loads(), 1, "one policy, shared by both users");
    assert_eq!(w.users.reads(), 4, "a record is read fresh on every login");
}

#[tokio::test]
async fn past_their_ttl_the_keyring_and_the_policy_are_loaded_again() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.auth_caching(Duration::ZERO);
    for _ in 0..2 {
        allowed(auth.authenticate(&password("alice", "pw")).await);
    }
    assert_eq!(w.salts.loads(), 2);
    assert_eq!(w.policies.loads(), 2);
}

#[tokio::test]
async fn clearing_the_caches_loads_the_keyring_and_the_policy_again() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.auth();
    allowed(auth.authenticate(&password("alice", "pw")).await);
    auth.clear_caches();
    allowed(auth.authenticate(&password("alice", "pw")).await);
    assert_eq!((w.salts.loads(), w.policies.loads()), (2, 2));
}

// ---- Migration from the seed design ----

#[tokio::test]
async fn a_seed_users_first_login_migrates_them_under_the_current_salt_and_removes_the_item() {
    let w = World::new();
    let item = w.add_legacy("zoe", "zoe-pw");
    let got = allowed(w.migrating().authenticate(&password("zoe", "zoe-pw")).await);
    assert_eq!(got.home_directory.as_deref(), Some("/seed-bucket/home/zoe"));
    assert_eq!(got.role, DEFAULT_ROLE);
    assert_eq!(got.policy, canonical_policy());
    let migrated = w.users.record("zoe").unwrap();
    assert_eq!(migrated.salt_version.as_deref(), Some("2"));
    assert_eq!(migrated.policy_arn, POLICY_ARN);
    assert!(!w.legacy.contains(&item), "the legacy item is removed");
    // From now on zoe is an ordinary user, with or without the legacy table.
    allowed(w.auth().authenticate(&password("zoe", "zoe-pw")).await);
    assert_eq!(
        w.auth().authenticate(&password("zoe", "not-zoes")).await,
        deny(DenyReason::WrongPassword)
    );
}

#[tokio::test]
async fn a_wrong_password_for_a_seed_user_migrates_nothing() {
    let w = World::new();
    let item = w.add_legacy("yan", "yan-pw");
    assert_eq!(
        w.migrating().authenticate(&password("yan", "Yan-pw")).await,
        deny(DenyReason::UnknownUser)
    );
    assert!(w.users.is_empty());
    assert!(w.legacy.contains(&item));
    assert_eq!(w.users.writes(), 0);
}

#[tokio::test]
async fn a_seed_hit_for_a_user_already_in_the_table_migrates_nothing() {
    let w = World::new();
    let current = w.add("vic", Some("new-pw"), json!({}));
    let item = w.add_legacy("vic", "old-pw");
    assert_eq!(
        w.migrating().authenticate(&password("vic", "old-pw")).await,
        deny(DenyReason::WrongPassword)
    );
    assert_eq!(w.users.record("vic"), Some(current));
    assert!(w.legacy.contains(&item));
    assert_eq!(w.users.writes(), 0);
}

#[tokio::test]
async fn every_denied_password_login_looks_up_the_legacy_table_once_and_nothing_else_does() {
    let w = World::new();
    w.add("ann", Some("pw"), json!({"publicKeys": [KEY_A]}));
    let auth = w.migrating();
    allowed(auth.authenticate(&password("ann", "pw")).await);
    allowed(auth.authenticate(&key("ann")).await);
    assert_eq!(w.legacy.finds(), 0);
    // An unknown user and a wrong password cost the same lookup, so neither stands out.
    for req in [password("nobody", "pw"), password("ann", "wrong")] {
        auth.authenticate(&req).await;
    }
    assert_eq!(w.legacy.finds(), 2);
}

#[tokio::test]
async fn an_unavailable_legacy_table_leaves_the_denial_as_it_was() {
    let w = World::new();
    w.add_legacy("zoe", "zoe-pw");
    w.legacy.fail_with(Fault::Unavailable);
    assert_eq!(
        w.migrating().authenticate(&password("zoe", "zoe-pw")).await,
        deny(DenyReason::UnknownUser)
    );
    assert!(w.users.is_empty());
}

#[tokio::test]
async fn a_migrated_user_that_cannot_be_written_is_refused_and_the_item_kept() {
    let w = World::new();
    let item = w.add_legacy("zoe", "zoe-pw");
    w.users.fail_writes_with(Fault::Unavailable);
    assert_eq!(
        w.migrating().authenticate(&password("zoe", "zoe-pw")).await,
        deny(DenyReason::StoreUnavailable)
    );
    assert!(w.legacy.contains(&item));
}

/// Zoe as a concurrent first login stores her: migrated under the current salt.
fn migrated_zoe(w: &World) -> UserRecord {
    record(
        "zoe",
        json!({
            "bucket": "seed-bucket",
            "passwordHash": w.hash("zoe-pw", "2"),
            "saltVersion": "2",
        }),
    )
}

#[tokio::test]
async fn a_seed_user_migrated_by_a_concurrent_login_before_our_write_is_judged_as_stored() {
    let w = World::new();
    let item = w.add_legacy("zoe", "zoe-pw");
    let theirs = migrated_zoe(&w);
    w.users.write_after_next_read(theirs.clone());
    allowed(w.migrating().authenticate(&password("zoe", "zoe-pw")).await);
    assert_eq!(
        stored_but_last_login(&w, "zoe"),
        Some(theirs),
        "their record stands"
    );
    assert!(!w.legacy.contains(&item));
}

#[tokio::test]
async fn a_seed_user_whose_item_a_concurrent_login_already_removed_is_judged_as_stored() {
    for (attempt, want) in [
        ("zoe-pw", None),
        ("not-zoes", Some(DenyReason::WrongPassword)),
    ] {
        let w = World::new();
        // The other login read the item, stored zoe and removed the item before our lookup.
        w.users.write_after_next_read(migrated_zoe(&w));
        let got = w.migrating().authenticate(&password("zoe", attempt)).await;
        match want {
            None => {
                allowed(got);
            }
            Some(reason) => assert_eq!(got, deny(reason)),
        }
    }
}

// ---- The event boundary ----

/// The `ferry::audit` lines written while it is the thread's subscriber, as field maps.
#[derive(Clone, Default)]
struct AuditLines(Arc<Mutex<Vec<BTreeMap<String, String>>>>);

impl AuditLines {
    fn take(&self) -> Vec<BTreeMap<String, String>> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

struct Fields(BTreeMap<String, String>);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl tracing::Subscriber for AuditLines {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Decided per event: other tests' threads share the callsite cache.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "ferry::audit" {
            let mut fields = Fields(BTreeMap::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn direct_event(name: &str, password: Option<&str>) -> Value {
    json!({
        "username": name,
        "password": password,
        "protocol": "SFTP",
        "serverId": SERVER,
        "sourceIp": "203.0.113.7",
    })
}

fn api_gateway_event(name: &str, password: &str) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(password);
    json!({
        "resource": "/servers/{serverId}/users/{username}/config",
        "path": format!("/servers/{SERVER}/users/{name}/config"),
        "httpMethod": "GET",
        "headers": {"PasswordBase64": b64},
        "queryStringParameters": {"protocol": "SFTP", "sourceIp": "203.0.113.7"},
        "pathParameters": {"serverId": SERVER, "username": name},
        "requestContext": {"stage": "prod"},
    })
}

#[tokio::test]
async fn a_direct_event_is_answered_with_the_response_or_an_empty_object() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.auth();
    let got = auth.handle_event(&direct_event("Alice", Some("pw"))).await;
    assert_eq!(
        got,
        json!({
            "Role": DEFAULT_ROLE,
            "Policy": CANONICAL_SCOPE_DOWN,
            "HomeDirectoryType": "PATH",
            "HomeDirectory": "/ferry-data/home/alice",
        })
    );
    for denied in [
        direct_event("alice", Some("wrong")),
        direct_event("nobody", Some("pw")),
        direct_event("alice", None),
    ] {
        assert_eq!(auth.handle_event(&denied).await, json!({}), "{denied}");
    }
}

#[tokio::test]
async fn an_api_gateway_event_is_answered_in_kind_with_an_empty_body_on_denial() {
    let w = World::new();
    w.add("gina@example.com", Some(r#"p"a\ss{}"#), json!({}));
    let auth = w.auth();
    let got = auth
        .handle_event(&api_gateway_event("gina%40example.com", r#"p"a\ss{}"#))
        .await;
    assert_eq!(got["statusCode"], 200);
    let body: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["HomeDirectory"], "/ferry-data/home/gina@example.com");
    let denied = auth
        .handle_event(&api_gateway_event("gina%40example.com", "wrong"))
        .await;
    assert_eq!(denied["statusCode"], 200);
    assert_eq!(denied["body"], "{}");
}

#[tokio::test]
async fn an_unreadable_event_is_a_bad_request_refused_before_any_lookup() {
    let w = World::new();
    let auth = w.auth();
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    let mut gateway = api_gateway_event("dave", "pw");
    gateway["headers"] = json!({"PasswordBase64": "***"});
    for (event, code, want) in [
        (direct_event("ab", Some("pw")), "bad_username", json!({})),
        (json!([1, 2]), "malformed_event", json!({})),
        (
            gateway,
            "bad_password_input",
            json!({"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}),
        ),
    ] {
        assert_eq!(auth.handle_event(&event).await, want, "{event}");
        let audit = lines.take();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0]["outcome"], "deny");
        assert_eq!(audit[0]["reason"], code);
    }
    assert_eq!(
        (w.users.reads(), w.salts.loads(), w.policies.loads()),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn every_event_writes_one_audit_line_with_the_reason_and_never_the_password() {
    let w = World::new();
    w.add("alice", Some("hunter2-secret"), json!({}));
    let auth = w.auth();
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    for (event, outcome, reason, flow) in [
        (
            direct_event("alice", Some("hunter2-secret")),
            "allow",
            "ok",
            "password",
        ),
        (
            direct_event("alice", Some("hunter3-secret")),
            "deny",
            "wrong_password",
            "password",
        ),
        (direct_event("alice", None), "deny", "no_keys", "public_key"),
    ] {
        auth.handle_event(&event).await;
        let audit = lines.take();
        assert_eq!(audit.len(), 1, "{event}");
        let line = &audit[0];
        assert_eq!(
            (
                line["outcome"].as_str(),
                line["reason"].as_str(),
                line["flow"].as_str()
            ),
            (outcome, reason, flow)
        );
        assert_eq!(line["username"], "alice");
        assert!(
            !format!("{line:?}").contains("-secret"),
            "a password reached the audit line: {line:?}"
        );
    }
}

// ---- Denials take the time of what they are refused like ----

#[tokio::test]
async fn every_key_login_denial_reads_a_policy_as_an_allowed_key_login_does() {
    let w = World::new();
    w.add("kate", None, json!({"publicKeys": [KEY_A]}));
    w.add("nokeys", Some("pw"), json!({}));
    w.add(
        "off",
        None,
        json!({"publicKeys": [KEY_A], "status": "disabled"}),
    );
    w.add(
        "far",
        None,
        json!({"publicKeys": [KEY_A], "allowedIps": ["10.0.0.0/8"]}),
    );
    // No policy cache: every policy read is a load the test can count.
    let auth = w.auth_caching(Duration::ZERO);
    allowed(auth.authenticate(&key("kate")).await);
    assert_eq!(
        w.policies.loads(),
        1,
        "an allowed key login reads the policy"
    );
    for (name, reason) in [
        ("nobody", DenyReason::UnknownUser),
        ("nokeys", DenyReason::NoKeys),
        ("off", DenyReason::Disabled),
        ("far", DenyReason::IpNotAllowed),
    ] {
        let before = (w.users.reads(), w.policies.loads());
        assert_eq!(auth.authenticate(&key(name)).await, deny(reason));
        assert_eq!(
            (w.users.reads(), w.policies.loads()),
            (before.0 + 1, before.1 + 1),
            "{name}: one user read and one policy read, as an allow"
        );
    }
}

#[tokio::test]
async fn a_right_password_refused_by_the_address_list_looks_up_the_legacy_table_as_a_wrong_one_does()
 {
    let w = World::new();
    w.add("lena", Some("pw"), json!({"allowedIps": ["10.0.0.0/8"]}));
    let auth = w.migrating();
    assert_eq!(
        auth.authenticate(&password("lena", "wrong")).await,
        deny(DenyReason::WrongPassword)
    );
    let after_wrong = (w.legacy.finds(), w.users.reads());
    assert_eq!(
        auth.authenticate(&password("lena", "pw")).await,
        deny(DenyReason::IpNotAllowed)
    );
    assert_eq!(
        (w.legacy.finds(), w.users.reads()),
        (after_wrong.0 * 2, after_wrong.1 * 2),
        "the same legacy lookup and user reads as the wrong password"
    );
}

// ---- Seed-design users an operator disables or removes ----

#[tokio::test]
async fn a_seed_user_disabled_before_their_first_login_stays_out_until_enabled_then_migrates() {
    use crate::app::admin::{Admin, Defaults};
    use crate::domain::policy_checks::RecordRules;
    let w = World::new();
    let item = w.add_legacy("uma", "uma-pw");
    let admin = Admin::new(&w.users, &w.salts, Defaults::default());
    let uma = Username::parse("uma").unwrap();
    admin.disable_with_legacy(&uma, &w.legacy).await.unwrap();
    // Disabled: the old password neither logs in nor migrates.
    assert_eq!(
        w.migrating().authenticate(&password("uma", "uma-pw")).await,
        deny(DenyReason::Disabled)
    );
    assert!(w.legacy.contains(&item));
    assert!(w.users.record("uma").unwrap().password_hash.is_none());
    admin
        .enable(&uma, &w.policies, &RecordRules::default())
        .await
        .unwrap();
    // Enabled: a wrong password sets nothing; the old one sets the record's first hash.
    assert_eq!(
        w.migrating()
            .authenticate(&password("uma", "not-umas"))
            .await,
        deny(DenyReason::NoPasswordSet)
    );
    assert!(w.users.record("uma").unwrap().password_hash.is_none());
    let got = allowed(w.migrating().authenticate(&password("uma", "uma-pw")).await);
    assert_eq!(got.home_directory.as_deref(), Some("/seed-bucket/home/uma"));
    assert_eq!(
        w.users.record("uma").unwrap().salt_version.as_deref(),
        Some("2")
    );
    assert!(!w.legacy.contains(&item), "the legacy item is gone");
    allowed(w.auth().authenticate(&password("uma", "uma-pw")).await);
}

#[tokio::test]
async fn a_keys_only_user_is_never_given_a_password_by_a_seed_item_of_the_same_name() {
    let w = World::new();
    w.add("vic", None, json!({"publicKeys": [KEY_A]}));
    let item = w.add_legacy("vic", "vic-pw");
    assert_eq!(
        w.migrating().authenticate(&password("vic", "vic-pw")).await,
        deny(DenyReason::NoPasswordSet)
    );
    assert!(w.users.record("vic").unwrap().password_hash.is_none());
    assert!(w.legacy.contains(&item));
}

#[tokio::test]
async fn a_removed_user_cannot_come_back_through_a_leftover_seed_item() {
    use crate::app::admin::{Admin, Defaults};
    let w = World::new();
    // Migrated, but the legacy item's removal failed at the time: it is still there.
    let item = w.add_legacy("walt", "walt-pw");
    allowed(
        w.migrating()
            .authenticate(&password("walt", "walt-pw"))
            .await,
    );
    let leftover = w.add_legacy("walt", "walt-pw");
    assert_eq!(item, leftover);
    let admin = Admin::new(&w.users, &w.salts, Defaults::default());
    let gone = admin
        .remove_with_legacy(&Username::parse("walt").unwrap(), &w.legacy)
        .await
        .unwrap();
    assert_eq!(gone, 1, "the leftover item is removed with the user");
    assert_eq!(
        w.migrating()
            .authenticate(&password("walt", "walt-pw"))
            .await,
        deny(DenyReason::UnknownUser)
    );
    assert!(w.users.record("walt").is_none(), "not recreated");
}

// ---- The defender ----

/// Public addresses of three different sources.
const FROM_A: &str = "198.51.100.7";
const FROM_B: &str = "198.51.100.8";
const FROM_C: &str = "203.0.113.99";

/// `req` as if it came from `ip`.
fn from(ip: &str, req: AuthRequest) -> AuthRequest {
    AuthRequest {
        source_ip: ip.parse().unwrap(),
        ..req
    }
}

fn keys_of(name: &str, ip: &str) -> AttemptKeys {
    AttemptKeys::of(&Username::parse(name).unwrap(), ip.parse().unwrap())
}

/// A tally locked (banned, throttled or slowed, as its key says) for another ten minutes.
fn locked_now() -> Tally {
    let now = now_epoch();
    Tally {
        window_start: now,
        score: 100,
        until: now + 600,
        strikes: 1,
    }
}

/// A tally whose lock and window both ended a minute ago, remembering `strikes` locks in a row.
fn lock_just_ended(strikes: u32) -> Tally {
    let now = now_epoch();
    Tally {
        window_start: now - 3600,
        score: 20,
        until: now - 60,
        strikes,
    }
}

/// The `ferry::audit` lines whose message is `message` ("login" or "defender").
fn lines_of(lines: &[BTreeMap<String, String>], message: &str) -> Vec<BTreeMap<String, String>> {
    lines
        .iter()
        .filter(|l| l.get("message").map(String::as_str) == Some(message))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_source_is_banned_once_its_score_reaches_20_and_ten_unknown_users_reach_it() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    for i in 0..10 {
        let name = format!("nobody-{i}");
        assert_eq!(
            auth.authenticate(&from(FROM_A, password(&name, "guess")))
                .await,
            deny(DenyReason::UnknownUser),
            "{name}"
        );
    }
    let source = keys_of("alice", FROM_A).source;
    let tally = w.defender.tally(&source).unwrap();
    assert_eq!((tally.score, tally.strikes), (20, 1));
    assert!(tally.until >= now_epoch() + 15 * 60 - 5);
    let bans = lines_of(&lines.take(), "defender");
    assert_eq!(bans.len(), 1, "{bans:?}");
    assert_eq!(bans[0]["action"], "banned");
    assert_eq!(bans[0]["key"], "source#198.51.100.7");

    // Even the right password, by password or key, is refused from there; not from elsewhere.
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Banned)
    );
    assert_eq!(
        auth.authenticate(&from(FROM_A, key("alice"))).await,
        deny(DenyReason::Banned)
    );
    allowed(
        auth.authenticate(&from(FROM_B, password("alice", "pw")))
            .await,
    );
}

#[tokio::test]
async fn a_repeat_ban_within_a_day_doubles_and_a_growing_ban_stops_at_24_hours() {
    let w = World::new();
    let auth = w.defended();
    let source = keys_of("nobody", FROM_A).source;
    for (strikes, minutes) in [(1, 30), (7, 24 * 60)] {
        w.defender.set(source.clone(), lock_just_ended(strikes));
        for i in 0..10 {
            let name = format!("nobody-{i}");
            auth.authenticate(&from(FROM_A, password(&name, "guess")))
                .await;
        }
        let t = w.defender.tally(&source).unwrap();
        assert_eq!(t.strikes, strikes + 1);
        let length = t.until - now_epoch();
        assert!(
            (minutes * 60 - 5..=minutes * 60).contains(&length),
            "strike {}: {length} s",
            t.strikes
        );
    }
}

#[tokio::test]
async fn a_banned_source_costs_one_read_no_lookup_no_argon2_no_policy_and_no_write() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.defender
        .set(keys_of("alice", FROM_A).source, locked_now());
    let auth = w.defended();
    for req in [
        password("alice", "pw"),
        password("nobody", "pw"),
        key("alice"),
    ] {
        assert_eq!(
            auth.authenticate(&from(FROM_A, req)).await,
            deny(DenyReason::Banned)
        );
    }
    // The keyring is not loaded and the user not read: no Argon2 can have run.
    assert_eq!(
        (w.users.reads(), w.salts.loads(), w.policies.loads()),
        (0, 0, 0)
    );
    assert_eq!(
        (
            w.defender.reads(),
            w.defender.failures(),
            w.defender.clears()
        ),
        (3, 0, 0)
    );
}

#[tokio::test]
async fn a_throttled_pair_costs_no_lookup_either() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    w.defender.set(keys_of("alice", FROM_A).pair, locked_now());
    let auth = w.defended();
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Throttled)
    );
    assert_eq!(
        (w.users.reads(), w.salts.loads(), w.policies.loads()),
        (0, 0, 0)
    );
    assert_eq!(w.defender.failures(), 0);
}

#[tokio::test]
async fn a_banned_or_throttled_login_is_answered_like_any_denial_and_the_audit_line_says_which() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    // The events come from 203.0.113.7.
    w.defender
        .set(keys_of("alice", "203.0.113.7").pair, locked_now());
    let auth = w.defended();
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    assert_eq!(
        auth.handle_event(&direct_event("alice", Some("pw"))).await,
        json!({})
    );
    let denied = auth.handle_event(&api_gateway_event("alice", "pw")).await;
    assert_eq!(
        (denied["statusCode"].clone(), denied["body"].clone()),
        (json!(200), json!("{}"))
    );
    w.defender
        .set(keys_of("alice", "203.0.113.7").source, locked_now());
    auth.handle_event(&direct_event("alice", Some("pw"))).await;
    let reasons: Vec<String> = lines_of(&lines.take(), "login")
        .iter()
        .map(|l| l["reason"].clone())
        .collect();
    assert_eq!(reasons, ["throttled", "throttled", "banned"]);
}

#[tokio::test]
async fn five_failures_for_one_user_from_one_source_throttle_that_pair_only() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    w.add("bob", Some("pw"), json!({}));
    let auth = w.defended();
    for _ in 0..5 {
        assert_eq!(
            auth.authenticate(&from(FROM_A, password("alice", "guess")))
                .await,
            deny(DenyReason::WrongPassword)
        );
    }
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Throttled),
        "the right password, from the throttled pair"
    );
    allowed(
        auth.authenticate(&from(FROM_B, password("alice", "pw")))
            .await,
    );
    allowed(
        auth.authenticate(&from(FROM_A, password("bob", "pw")))
            .await,
    );
}

#[tokio::test]
async fn a_right_password_clears_its_pair_but_not_its_sources_score() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    let keys = keys_of("alice", FROM_A);
    for round in 0..2 {
        for _ in 0..4 {
            auth.authenticate(&from(FROM_A, password("alice", "guess")))
                .await;
        }
        allowed(
            auth.authenticate(&from(FROM_A, password("alice", "pw")))
                .await,
        );
        assert_eq!(w.defender.tally(&keys.pair), None, "round {round}");
    }
    assert_eq!(w.defender.tally(&keys.source).map(|t| t.score), Some(8));
    assert_eq!(w.defender.tally(&keys.account).map(|t| t.score), Some(8));
}

#[tokio::test]
async fn a_right_password_for_a_pair_never_counted_writes_nothing() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    allowed(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
    );
    assert_eq!(
        (
            w.defender.reads(),
            w.defender.failures(),
            w.defender.clears()
        ),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn a_key_login_answered_with_keys_does_not_clear_the_pair_since_transfer_checks_the_key_later()
 {
    let w = World::new();
    w.add("alice", Some("pw"), json!({"publicKeys": [KEY_A]}));
    let auth = w.defended();
    for _ in 0..4 {
        auth.authenticate(&from(FROM_A, password("alice", "guess")))
            .await;
    }
    allowed(auth.authenticate(&from(FROM_A, key("alice"))).await);
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "guess")))
            .await,
        deny(DenyReason::WrongPassword)
    );
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Throttled)
    );
}

#[tokio::test]
async fn a_refused_key_login_counts_on_the_source_and_the_pair_but_not_the_account() {
    let w = World::new();
    let auth = w.defended();
    assert_eq!(
        auth.authenticate(&from(FROM_A, key("nobody"))).await,
        deny(DenyReason::UnknownUser)
    );
    let keys = keys_of("nobody", FROM_A);
    assert_eq!(w.defender.tally(&keys.source).map(|t| t.score), Some(1));
    assert_eq!(w.defender.tally(&keys.pair).map(|t| t.score), Some(1));
    assert_eq!(w.defender.tally(&keys.account), None);
}

#[tokio::test]
async fn a_right_password_refused_by_the_users_lists_counts_nothing_but_writes_like_a_wrong_one() {
    let w = World::new();
    w.add("gwen", Some("pw"), json!({"allowedIps": ["192.0.2.0/24"]}));
    let auth = w.defended();
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("gwen", "pw")))
            .await,
        deny(DenyReason::IpNotAllowed)
    );
    assert_eq!(w.defender.failures(), 3);
    let keys = keys_of("gwen", FROM_A);
    for key in keys.to_array() {
        assert_eq!(w.defender.tally(&key).map(|t| t.score), Some(0), "{key}");
    }
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("gwen", "guess")))
            .await,
        deny(DenyReason::WrongPassword)
    );
    assert_eq!(w.defender.failures(), 6);
}

#[tokio::test]
async fn our_own_failures_are_never_held_against_the_caller() {
    let w = World::new();
    w.add("lee", Some("pw"), json!({}));
    let auth = w.defended();
    w.policies.fail_with(Fault::Unavailable);
    for _ in 0..6 {
        assert_eq!(
            auth.authenticate(&from(FROM_A, password("lee", "pw")))
                .await,
            deny(DenyReason::PolicyUnavailable)
        );
    }
    w.policies.recover();
    allowed(
        auth.authenticate(&from(FROM_A, password("lee", "pw")))
            .await,
    );
    let keys = keys_of("lee", FROM_A);
    assert_eq!(w.defender.tally(&keys.source).map(|t| t.score), Some(0));
}

#[tokio::test]
async fn a_safe_listed_source_is_never_counted_nor_refused() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    w.defender
        .set(keys_of("alice", FROM_C).source, locked_now());
    let config = DefenderConfig {
        safe_list: vec!["203.0.113.0/24".parse().unwrap()],
        ..DefenderConfig::default()
    };
    let auth = w.defended_by(config);
    for _ in 0..6 {
        assert_eq!(
            auth.authenticate(&from(FROM_C, password("alice", "guess")))
                .await,
            deny(DenyReason::WrongPassword)
        );
    }
    allowed(
        auth.authenticate(&from(FROM_C, password("alice", "pw")))
            .await,
    );
    assert_eq!(
        (
            w.defender.reads(),
            w.defender.failures(),
            w.defender.clears()
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn ipv6_sources_are_counted_and_banned_by_their_64() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    for i in 0..10 {
        let host = format!("2001:db8:1:2::{:x}", i + 1);
        auth.authenticate(&from(&host, password(&format!("nobody-{i}"), "guess")))
            .await;
    }
    let source = keys_of("alice", "2001:db8:1:2::1").source;
    assert_eq!(source.to_string(), "source#2001:db8:1:2::/64");
    assert_eq!(w.defender.tally(&source).map(|t| t.score), Some(20));
    assert_eq!(
        auth.authenticate(&from("2001:db8:1:2:ffff::1", password("alice", "pw")))
            .await,
        deny(DenyReason::Banned),
        "another host of the same /64"
    );
    allowed(
        auth.authenticate(&from("2001:db8:1:3::1", password("alice", "pw")))
            .await,
    );
}

#[tokio::test]
async fn a_private_source_is_counted_and_reported_but_never_banned_nor_its_pairs_throttled() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    let nlb = "10.0.12.34";
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    for _ in 0..6 {
        auth.authenticate(&from(nlb, password("alice", "guess")))
            .await;
    }
    for i in 0..8 {
        auth.authenticate(&from(nlb, password(&format!("nobody-{i}"), "guess")))
            .await;
    }
    let keys = keys_of("alice", nlb);
    let source = w.defender.tally(&keys.source).unwrap();
    assert_eq!((source.score, source.until), (22, 0));
    assert_eq!(w.defender.tally(&keys.pair).map(|t| t.until), Some(0));
    allowed(auth.authenticate(&from(nlb, password("alice", "pw"))).await);

    let events = lines_of(&lines.take(), "defender");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "private_source_not_banned");
    auth.handle_event(&json!({
        "username": "alice", "password": "pw", "protocol": "SFTP",
        "serverId": SERVER, "sourceIp": nlb,
    }))
    .await;
    let login = lines_of(&lines.take(), "login");
    assert_eq!(login[0]["source_private"], "true");
    auth.handle_event(&direct_event("alice", Some("pw"))).await;
    let login = lines_of(&lines.take(), "login");
    assert_eq!(login[0]["source_private"], "false");
}

#[tokio::test]
async fn a_right_password_from_a_good_source_gets_in_while_another_source_is_banned_for_that_user()
{
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let bad = keys_of("alice", FROM_A);
    w.defender.set(bad.source, locked_now());
    w.defender.set(bad.pair, locked_now());
    let auth = w.defended();
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Banned)
    );
    allowed(
        auth.authenticate(&from(FROM_B, password("alice", "pw")))
            .await,
    );
}

#[tokio::test]
async fn after_100_failures_an_account_is_slowed_not_locked() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({"publicKeys": [KEY_A]}));
    let delay = Duration::from_millis(400);
    let auth = w.defended_by(DefenderConfig {
        account_delay: delay,
        ..DefenderConfig::default()
    });
    let account = keys_of("alice", FROM_A).account;
    // 99 failures from everywhere already; the 100th slows the account.
    w.defender.set(
        account.clone(),
        Tally {
            window_start: now_epoch() - 3600,
            score: 99,
            ..Tally::default()
        },
    );
    let lines = AuditLines::default();
    let _guard = tracing::subscriber::set_default(lines.clone());
    let started = Instant::now();
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "guess")))
            .await,
        deny(DenyReason::WrongPassword)
    );
    assert!(started.elapsed() < delay, "the 100th is not delayed yet");
    let events = lines_of(&lines.take(), "defender");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["action"], "slowed");
    assert_eq!(events[0]["key"], "account#alice");

    let started = Instant::now();
    allowed(
        auth.authenticate(&from(FROM_B, password("alice", "pw")))
            .await,
    );
    assert!(started.elapsed() >= delay, "a right password waits too");
    let started = Instant::now();
    assert_eq!(
        auth.authenticate(&from(FROM_C, password("alice", "guess")))
            .await,
        deny(DenyReason::WrongPassword),
        "a wrong one is judged as ever, after the wait"
    );
    assert!(started.elapsed() >= delay);
    let started = Instant::now();
    allowed(auth.authenticate(&from(FROM_B, key("alice"))).await);
    assert!(started.elapsed() < delay, "key logins are not slowed");
}

#[tokio::test]
async fn an_unknown_account_is_slowed_after_as_many_failures_as_a_known_one() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.defended();
    for name in ["alice", "nobody"] {
        for i in 0..3u8 {
            let ip = format!("198.51.100.{}", 10 + i);
            auth.authenticate(&from(&ip, password(name, "guess"))).await;
        }
    }
    let count = |name: &str| {
        w.defender
            .tally(&keys_of(name, FROM_A).account)
            .map(|t| t.score)
    };
    assert_eq!((count("alice"), count("nobody")), (Some(3), Some(3)));
}

#[tokio::test]
async fn an_unavailable_defender_store_leaves_every_login_judged_as_without_it() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.defender
        .set(keys_of("alice", FROM_A).source, locked_now());
    w.defender.fail_reads_with(Fault::Unavailable);
    w.defender.fail_writes_with(Fault::Unavailable);
    let auth = w.defended();
    allowed(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
    );
    allowed(auth.authenticate(&from(FROM_A, key("alice"))).await);
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "guess")))
            .await,
        deny(DenyReason::WrongPassword)
    );
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("nobody", "pw")))
            .await,
        deny(DenyReason::UnknownUser)
    );
    // Reads and writes were tried, and failed.
    assert_eq!(w.defender.reads(), 4);
    assert!(w.defender.failures() > 0);
    assert!(w.defender.clears() > 0);

    // Writes failing alone: the ban that can be read still holds.
    w.defender.recover();
    w.defender.fail_writes_with(Fault::Malformed);
    assert_eq!(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
        deny(DenyReason::Banned)
    );
}

#[tokio::test]
async fn concurrent_refusals_are_all_counted() {
    let w = World::new();
    let auth = w.defended();
    let guess = |i: u32| {
        let req = from(FROM_A, password(&format!("nobody-{i}"), "guess"));
        let auth = &auth;
        async move { auth.authenticate(&req).await }
    };
    // Interleaved at every await (Argon2 runs on other threads): the authenticator must leave
    // the counting to the store, not add to what it read before judging.
    let results = tokio::join!(guess(0), guess(1), guess(2), guess(3), guess(4), guess(5));
    assert_eq!(results.0, deny(DenyReason::UnknownUser));
    assert_eq!(results.5, deny(DenyReason::UnknownUser));
    assert_eq!(
        w.defender
            .tally(&keys_of("nobody", FROM_A).source)
            .map(|t| t.score),
        Some(12)
    );
}

#[tokio::test]
async fn without_a_defender_nothing_is_counted_and_nothing_refused() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.auth();
    for _ in 0..12 {
        auth.authenticate(&from(FROM_A, password("nobody", "guess")))
            .await;
    }
    allowed(
        auth.authenticate(&from(FROM_A, password("alice", "pw")))
            .await,
    );
    assert!(w.defender.is_empty());
}

#[test]
fn a_defended_login_is_a_future_any_thread_can_run_as_the_lambda_runtime_needs() {
    fn runs_anywhere<T: Send>(_: &T) {}
    let w = World::new();
    let auth = w.defended();
    let event = direct_event("alice", Some("pw"));
    runs_anywhere(&auth.handle_event(&event));
}

// ---- The verified-login cache ----

impl World {
    /// An authenticator that remembers right passwords for `ttl` (its keyring and policies for
    /// an hour, as `auth`'s).
    fn remembering(&self, ttl: Duration) -> Auth<'_> {
        let settings = Settings {
            default_role_arn: DEFAULT_ROLE.to_owned(),
            salt_cache: Duration::from_secs(3600),
            policy_cache: Duration::from_secs(3600),
            verified_cache: ttl,
        };
        Authenticator::new(&self.users, &self.salts, &self.policies, settings)
    }
}

/// `req` judged with no Argon2 run possible ([`Authenticator::judged_without_argon2`]).
async fn without_argon2(auth: &Auth<'_>, req: &AuthRequest) -> Option<Decision> {
    auth.judged_without_argon2(req).await
}

#[tokio::test(start_paused = true)]
async fn a_repeat_right_password_within_the_ttl_skips_argon2_yet_reads_the_user_every_time() {
    let w = World::new();
    w.add("alice", Some("correct horse"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    let req = password("alice", "correct horse");
    assert_eq!(
        without_argon2(&auth, &req).await,
        None,
        "a first login needs Argon2"
    );
    let first = allowed(auth.authenticate(&req).await);
    for _ in 0..3 {
        let again = without_argon2(&auth, &req)
            .await
            .expect("a repeat is judged without Argon2");
        assert_eq!(allowed(again), first, "and answered the same");
    }
    assert_eq!(w.users.reads(), 5, "the record is read on every login");
    assert_eq!(auth.verified.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_remembered_user_disabled_expired_or_restricted_since_is_refused_at_once_after_argon2() {
    let w = World::new();
    let alice = w.add("alice", Some("pw"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    let req = password("alice", "pw");
    allowed(auth.authenticate(&req).await);
    let same_password = json!({"passwordHash": alice.password_hash, "saltVersion": "2"});
    for (change, reason) in [
        (json!({"status": "disabled"}), DenyReason::Disabled),
        (json!({"status": "invalid"}), DenyReason::Invalid),
        (json!({"expiresAt": now_epoch() - 1}), DenyReason::Expired),
        (
            json!({"allowedIps": ["198.51.100.0/24"]}),
            DenyReason::IpNotAllowed,
        ),
        (
            json!({"allowedServers": ["s-fffffffffffffffff"]}),
            DenyReason::ServerNotAllowed,
        ),
        (
            json!({"protocols": ["FTPS"]}),
            DenyReason::ProtocolNotAllowed,
        ),
    ] {
        let mut attrs = same_password.clone();
        merge(&mut attrs, change.clone());
        w.users.insert(record("alice", attrs));
        // The denial runs its Argon2 verification, as every password denial does, so it is not
        // answered sooner for a password that was right a moment ago...
        assert_eq!(without_argon2(&auth, &req).await, None, "{change}");
        // ...and it is the record's verdict as it stands now.
        assert_eq!(auth.authenticate(&req).await, deny(reason), "{change}");
    }
    // The entry was never the judge: with the record as it was, it serves alice again.
    w.users.insert(alice);
    allowed(without_argon2(&auth, &req).await.expect("still remembered"));
}

#[tokio::test(start_paused = true)]
async fn a_changed_password_misses_the_cache_for_the_old_and_the_new_one() {
    let w = World::new();
    w.add("alice", Some("old-pw"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    allowed(auth.authenticate(&password("alice", "old-pw")).await);
    w.add("alice", Some("new-pw"), json!({}));
    for pw in ["old-pw", "new-pw"] {
        assert_eq!(
            without_argon2(&auth, &password("alice", pw)).await,
            None,
            "{pw}"
        );
    }
    assert_eq!(
        auth.authenticate(&password("alice", "old-pw")).await,
        deny(DenyReason::WrongPassword)
    );
    allowed(auth.authenticate(&password("alice", "new-pw")).await);
    allowed(
        without_argon2(&auth, &password("alice", "new-pw"))
            .await
            .expect("the new password is remembered once verified"),
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_hash_of_the_same_password_misses_the_cache_whether_set_again_or_re_hashed() {
    let w = World::new();
    let auth = w.remembering(Duration::from_secs(60));
    // Set again to the same password (`ferry passwd`): the hash has a new random salt.
    w.add("bob", Some("pw"), json!({}));
    allowed(auth.authenticate(&password("bob", "pw")).await);
    w.add("bob", Some("pw"), json!({}));
    assert_eq!(without_argon2(&auth, &password("bob", "pw")).await, None);
    allowed(auth.authenticate(&password("bob", "pw")).await);
    allowed(
        without_argon2(&auth, &password("bob", "pw"))
            .await
            .expect("the new hash is remembered once verified"),
    );
    // Re-hashed by a login under an older salt version: the next login verifies the new hash.
    w.add(
        "carol",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "1"}),
    );
    allowed(auth.authenticate(&password("carol", "pw")).await);
    let moved = w.users.record("carol").unwrap();
    assert_eq!(moved.salt_version.as_deref(), Some("2"), "re-hashed");
    assert_eq!(without_argon2(&auth, &password("carol", "pw")).await, None);
    allowed(auth.authenticate(&password("carol", "pw")).await);
}

#[tokio::test(start_paused = true)]
async fn the_same_hash_claimed_under_another_salt_version_misses_the_cache() {
    let w = World::new();
    let dave = w.add("dave", Some("pw"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    allowed(auth.authenticate(&password("dave", "pw")).await);
    w.add(
        "dave",
        None,
        json!({"passwordHash": dave.password_hash, "saltVersion": "1"}),
    );
    assert_eq!(without_argon2(&auth, &password("dave", "pw")).await, None);
    assert_eq!(
        auth.authenticate(&password("dave", "pw")).await,
        deny(DenyReason::WrongPassword)
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_password_is_never_served_from_the_cache_nor_remembered() {
    let w = World::new();
    w.add("dave", Some("right"), json!({}));
    w.add("erin", Some("erins"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    allowed(auth.authenticate(&password("dave", "right")).await);
    for (name, wrong) in [
        ("dave", "wrong"),
        ("dave", "Right"),
        ("dave", "right "),
        // Dave's remembered password is not erin's.
        ("erin", "right"),
    ] {
        let req = password(name, wrong);
        assert_eq!(without_argon2(&auth, &req).await, None, "{name} {wrong:?}");
        assert_eq!(
            auth.authenticate(&req).await,
            deny(DenyReason::WrongPassword),
            "{name} {wrong:?}"
        );
    }
    assert_eq!(auth.verified.len(), 1, "only the right password");
    allowed(
        without_argon2(&auth, &password("dave", "right"))
            .await
            .expect("and the guesses did not disturb it"),
    );
}

#[tokio::test(start_paused = true)]
async fn with_a_ttl_of_zero_every_login_runs_argon2_and_nothing_is_remembered() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.remembering(Duration::ZERO);
    for _ in 0..2 {
        allowed(auth.authenticate(&password("alice", "pw")).await);
    }
    assert_eq!(without_argon2(&auth, &password("alice", "pw")).await, None);
    assert_eq!(auth.verified.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn past_its_ttl_a_remembered_password_is_verified_again() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let ttl = Duration::from_secs(1);
    let auth = w.remembering(ttl);
    let req = password("alice", "pw");
    allowed(auth.authenticate(&req).await);
    allowed(without_argon2(&auth, &req).await.expect("within the TTL"));
    // The entry's age is real time (std's clock, which tokio's pause does not stop).
    std::thread::sleep(ttl + Duration::from_millis(50));
    assert_eq!(without_argon2(&auth, &req).await, None, "past the TTL");
    allowed(auth.authenticate(&req).await);
    allowed(without_argon2(&auth, &req).await.expect("remembered anew"));
}

#[tokio::test(start_paused = true)]
async fn the_cache_keeps_at_most_its_bound_forgetting_the_oldest_verification_first() {
    let w = World::new();
    let auth = w
        .remembering(Duration::from_secs(60))
        .with_verified_logins_kept(2);
    for name in ["amy", "ben", "cat"] {
        w.add(name, Some("pw"), json!({}));
        allowed(auth.authenticate(&password(name, "pw")).await);
        assert!(auth.verified.len() <= 2, "{name}");
    }
    assert_eq!(auth.verified.len(), 2);
    assert_eq!(
        without_argon2(&auth, &password("amy", "pw")).await,
        None,
        "the oldest is forgotten"
    );
    for name in ["ben", "cat"] {
        allowed(
            without_argon2(&auth, &password(name, "pw"))
                .await
                .expect(name),
        );
    }
    // Verified again, amy takes the place of the oldest left (a hit does not make ben younger).
    allowed(auth.authenticate(&password("amy", "pw")).await);
    assert_eq!(auth.verified.len(), 2);
    assert_eq!(without_argon2(&auth, &password("ben", "pw")).await, None);
    for name in ["cat", "amy"] {
        allowed(
            without_argon2(&auth, &password(name, "pw"))
                .await
                .expect(name),
        );
    }
}

#[tokio::test(start_paused = true)]
async fn clearing_the_caches_forgets_remembered_passwords_too() {
    let w = World::new();
    w.add("alice", Some("pw"), json!({}));
    let auth = w.remembering(Duration::from_secs(60));
    allowed(auth.authenticate(&password("alice", "pw")).await);
    auth.clear_caches();
    assert_eq!(auth.verified.len(), 0);
    assert_eq!(without_argon2(&auth, &password("alice", "pw")).await, None);
}

// ---- The account lifecycle: lastLoginAt, inactivity and password age ----

use crate::domain::lifecycle::{DAY, Lifecycle};

/// Inactive after 90 days, passwords good for 30: the defaults these tests run under.
const LIMITS: Lifecycle = Lifecycle {
    disable_after_inactive_days: Some(90),
    password_max_age_days: Some(30),
};

/// The stored record with `lastLoginAt` left out, for tests about everything else a login
/// leaves alone (an allowed login records itself).
fn stored_but_last_login(w: &World, name: &str) -> Option<UserRecord> {
    w.users.record(name).map(|mut u| {
        u.last_login_at = None;
        u
    })
}

fn last_login(w: &World, name: &str) -> Option<i64> {
    w.users.record(name).and_then(|u| u.last_login_at)
}

/// Whether `t` is the clock's reading of a moment ago (a login just made).
fn just_now(t: Option<i64>) -> bool {
    t.is_some_and(|t| (now_epoch() - 5..=now_epoch()).contains(&t))
}

#[tokio::test]
async fn a_login_records_last_login_once_not_again_within_the_hour_and_again_after_it() {
    let w = World::new();
    w.add("lena", Some("pw"), json!({"publicKeys": [KEY_A]}));
    let auth = w.auth();
    allowed(auth.authenticate(&password("lena", "pw")).await);
    assert_eq!(w.users.touches(), 1);
    let first = last_login(&w, "lena");
    assert!(just_now(first), "{first:?}");
    // Within the hour, neither flow writes: the stored value is recent enough.
    allowed(auth.authenticate(&password("lena", "pw")).await);
    allowed(auth.authenticate(&key("lena")).await);
    assert_eq!(w.users.touches(), 1, "no write within the hour");
    assert_eq!(last_login(&w, "lena"), first);
    assert_eq!(w.users.writes(), 0, "and no other write either");
    // An hour later (the stored value is an hour old), the next login, by key, writes again.
    let mut an_hour_ago = w.users.record("lena").unwrap();
    an_hour_ago.last_login_at = Some(now_epoch() - 3_600);
    w.users.insert(an_hour_ago);
    allowed(auth.authenticate(&key("lena")).await);
    assert_eq!(w.users.touches(), 2);
    assert!(just_now(last_login(&w, "lena")));
}

#[tokio::test]
async fn a_denied_login_records_nothing() {
    let w = World::new();
    w.add("lena", Some("pw"), json!({}));
    let auth = w.auth();
    assert_eq!(
        auth.authenticate(&password("lena", "wrong")).await,
        deny(DenyReason::WrongPassword)
    );
    assert_eq!(
        auth.authenticate(&key("lena")).await,
        deny(DenyReason::NoKeys)
    );
    assert_eq!(w.users.touches(), 0);
    assert_eq!(last_login(&w, "lena"), None);
}

#[tokio::test]
async fn a_last_login_write_that_loses_to_a_concurrent_login_leaves_the_login_allowed() {
    let w = World::new();
    let stale = now_epoch() - 2 * 3_600;
    let before = w.add("mona", Some("pw"), json!({"lastLoginAt": stale}));
    // Another login records itself between this login's read and its write.
    let mut theirs = before.clone();
    theirs.last_login_at = Some(now_epoch() - 1);
    w.users.write_after_next_read(theirs.clone());
    allowed(w.auth().authenticate(&password("mona", "pw")).await);
    assert_eq!(w.users.touches(), 1, "the write was tried");
    assert_eq!(w.users.record("mona"), Some(theirs), "and theirs stands");
}

#[tokio::test]
async fn a_last_login_write_that_fails_leaves_the_login_allowed() {
    let w = World::new();
    w.add("nils", Some("pw"), json!({"publicKeys": [KEY_A]}));
    w.users.fail_writes_with(Fault::Unavailable);
    let auth = w.auth();
    allowed(auth.authenticate(&password("nils", "pw")).await);
    allowed(auth.authenticate(&key("nils")).await);
    assert_eq!(w.users.touches(), 2, "tried each time, failed each time");
    assert_eq!(last_login(&w, "nils"), None);
}

#[tokio::test]
async fn an_inactive_user_is_refused_in_both_flows_even_with_the_right_password() {
    let w = World::new();
    let now = now_epoch();
    w.add(
        "idle",
        Some("pw"),
        json!({"lastLoginAt": now - 90 * DAY, "publicKeys": [KEY_A]}),
    );
    w.add(
        "recent",
        Some("pw"),
        json!({"lastLoginAt": now - 89 * DAY, "publicKeys": [KEY_A]}),
    );
    let auth = w.auth().with_lifecycle(LIMITS);
    for req in [
        password("idle", "pw"),
        password("idle", "wrong"),
        key("idle"),
    ] {
        assert_eq!(
            auth.authenticate(&req).await,
            deny(DenyReason::Inactive),
            "{req:?}"
        );
    }
    // A refused key login still reads the policy, as an allowed one does (pacing).
    assert_eq!(w.policies.loads(), 1);
    assert_eq!(w.users.touches(), 0, "a refusal is not a login");
    allowed(auth.authenticate(&password("recent", "pw")).await);
    allowed(auth.authenticate(&key("recent")).await);
    // Without limits (the default), nobody is inactive.
    allowed(w.auth().authenticate(&password("idle", "pw")).await);
    assert_eq!(DenyReason::Inactive.code(), "inactive");
}

#[tokio::test]
async fn a_password_too_old_refuses_password_logins_but_not_key_logins() {
    let w = World::new();
    let now = now_epoch();
    w.add(
        "stale-pw",
        Some("pw"),
        json!({"passwordChangedAt": now - 30 * DAY, "lastLoginAt": now - 60, "publicKeys": [KEY_A]}),
    );
    w.add(
        "fresh-pw",
        Some("pw"),
        json!({"passwordChangedAt": now - 29 * DAY}),
    );
    let auth = w.auth().with_lifecycle(LIMITS);
    for pw in ["pw", "wrong"] {
        assert_eq!(
            auth.authenticate(&password("stale-pw", pw)).await,
            deny(DenyReason::PasswordExpired),
            "{pw}"
        );
    }
    let got = allowed(auth.authenticate(&key("stale-pw")).await);
    assert_eq!(got.public_keys, Some(vec![KEY_A.to_owned()]));
    allowed(auth.authenticate(&password("fresh-pw", "pw")).await);
    assert_eq!(DenyReason::PasswordExpired.code(), "password_expired");
}

#[tokio::test]
async fn a_users_own_limits_win_over_the_defaults_and_0_exempts_them() {
    let w = World::new();
    let now = now_epoch();
    let old = now - 400 * DAY;
    w.add(
        "exempt",
        Some("pw"),
        json!({"lastLoginAt": old, "passwordChangedAt": old,
               "disableAfterInactiveDays": 0, "passwordMaxAgeDays": 0}),
    );
    w.add(
        "strict",
        Some("pw"),
        json!({"lastLoginAt": now - 11 * DAY, "disableAfterInactiveDays": 10}),
    );
    w.add(
        "lenient",
        Some("pw"),
        json!({"passwordChangedAt": now - 100 * DAY, "lastLoginAt": now - 60, "passwordMaxAgeDays": 365}),
    );
    w.add(
        "tight",
        Some("pw"),
        json!({"passwordChangedAt": now - 8 * DAY, "lastLoginAt": now - 60, "passwordMaxAgeDays": 7}),
    );
    for auth in [w.auth().with_lifecycle(LIMITS), w.auth()] {
        allowed(auth.authenticate(&password("exempt", "pw")).await);
        allowed(auth.authenticate(&password("lenient", "pw")).await);
        // A user's own limit applies with or without a default.
        assert_eq!(
            auth.authenticate(&password("strict", "pw")).await,
            deny(DenyReason::Inactive)
        );
        assert_eq!(
            auth.authenticate(&password("tight", "pw")).await,
            deny(DenyReason::PasswordExpired)
        );
    }
}

#[tokio::test]
async fn a_user_who_never_logged_in_is_judged_from_creation_or_password_and_else_not_judged() {
    let w = World::new();
    let long_ago = now_epoch() - 91 * DAY;
    w.add(
        "pw-never-used",
        Some("pw"),
        json!({"passwordChangedAt": long_ago}),
    );
    w.add(
        "keys-never-used",
        None,
        json!({"enabledAt": long_ago, "publicKeys": [KEY_A]}),
    );
    // Made before ferry recorded any of these dates: not judged until a first login.
    w.add("undated", Some("pw"), json!({"publicKeys": [KEY_A]}));
    let auth = w.auth().with_lifecycle(Lifecycle {
        password_max_age_days: None,
        ..LIMITS
    });
    assert_eq!(
        auth.authenticate(&password("pw-never-used", "pw")).await,
        deny(DenyReason::Inactive)
    );
    assert_eq!(
        auth.authenticate(&key("keys-never-used")).await,
        deny(DenyReason::Inactive)
    );
    allowed(auth.authenticate(&key("undated")).await);
    assert!(
        just_now(last_login(&w, "undated")),
        "from now on they are judged"
    );
    // With a default password age, a hash of unknown date is not judged either.
    allowed(
        w.auth()
            .with_lifecycle(LIMITS)
            .authenticate(&password("undated", "pw"))
            .await,
    );
}

#[tokio::test]
async fn an_operator_lets_an_inactive_user_back_in_by_enabling_them() {
    let w = World::new();
    let mut idle = w.add(
        "idle",
        Some("pw"),
        json!({"lastLoginAt": now_epoch() - 200 * DAY}),
    );
    let auth = w.auth().with_lifecycle(LIMITS);
    assert_eq!(
        auth.authenticate(&password("idle", "pw")).await,
        deny(DenyReason::Inactive)
    );
    // What `ferry user enable` writes (app::admin's tests show it does).
    idle.enabled_at = Some(now_epoch());
    w.users.insert(idle);
    allowed(auth.authenticate(&password("idle", "pw")).await);
}

#[tokio::test]
async fn a_migrated_user_gets_a_password_date_and_a_last_login() {
    let w = World::new();
    w.add_legacy("zoe", "zoe-pw");
    allowed(w.migrating().authenticate(&password("zoe", "zoe-pw")).await);
    let zoe = w.users.record("zoe").unwrap();
    assert!(just_now(zoe.password_changed_at), "{zoe:?}");
    assert!(just_now(zoe.last_login_at), "{zoe:?}");
}

#[tokio::test]
async fn a_re_hash_keeps_the_password_date() {
    let w = World::new();
    let set = now_epoch() - 10 * DAY;
    w.add(
        "olga",
        None,
        json!({"passwordHash": w.hash("pw", "1"), "saltVersion": "1", "passwordChangedAt": set}),
    );
    allowed(w.auth().authenticate(&password("olga", "pw")).await);
    let olga = w.users.record("olga").unwrap();
    assert_eq!(olga.salt_version.as_deref(), Some("2"), "re-hashed");
    assert_eq!(olga.password_changed_at, Some(set), "the same password");
}
