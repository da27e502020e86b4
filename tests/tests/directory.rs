//! Directory identity sources against a real OpenLDAP (`scripts/lib/slapd.sh` starts it with
//! `tests/ldap/directory.ldif`): passwords, groups (direct and nested), disabled and locked
//! accounts also on key logins, filter-injection usernames, attribute mapping, a user in both
//! the table and the directory, a certificate that does not verify, and a directory that is down
//! or frozen (denied within the deadline, never a hang). Real network and TLS, no mocks of the
//! directory; the users table and policies are the in-memory ones, as the directory is what is
//! under test here (`tests/tests/sftp.rs`-style end-to-end runs go through `ferry up`).
//!
//! Fails loudly, never skips, when slapd was not started.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferry_core::adapters::ldap::{LdapDirectory, local_sources};
use ferry_core::app::login::{Authenticator, Decision, DenyReason, Settings};
use ferry_core::domain::directory::{DirectoryConfig, parse_sources};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::password::{Password, hash_password};
use ferry_core::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use ferry_core::domain::protocol::Protocol;
use ferry_core::domain::transfer::{AuthRequest, AuthResponse, Credential};
use ferry_core::domain::user::UserRecord;
use ferry_core::domain::username::Username;
use ferry_core::ports::{DirectoryAnswer, DirectoryRefusal, DirectorySource, IdentitySource};
use ferry_core::testing::{MemoryKeyring, MemoryPolicies, MemoryUsers};
use ferry_tests::openssh::{Login, sftp};
use serde_json::{Value, json};

const PROFILE_POLICY: &str = "arn:aws:iam::123456789012:policy/directory-users";
const ALICE_POLICY: &str = "arn:aws:iam::123456789012:policy/alice-scope";
const TABLE_POLICY: &str = "arn:aws:iam::123456789012:policy/table-users";
const ROLE: &str = "arn:aws:iam::123456789012:role/ferry-default";

/// A variable `scripts/lib/slapd.sh` exports. Panics (the test fails) when it is missing.
fn env(name: &str) -> String {
    assert!(
        std::env::var_os("FERRY_TEST_SLAPD").is_some(),
        "these tests need the test directory: source scripts/lib/slapd.sh and run ferry_slapd_start"
    );
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set by scripts/lib/slapd.sh"))
}

/// One source over the test directory; `edit` changes the JSON before it is parsed.
fn config(edit: impl FnOnce(&mut Value)) -> DirectoryConfig {
    let mut source = json!({
        "name": "corp",
        "url": env("FERRY_LDAP_URL"),
        "caBundle": format!("file:{}", env("FERRY_LDAP_CA")),
        "baseDn": env("FERRY_LDAP_BASE_DN"),
        "userFilter": "(objectClass=inetOrgPerson)",
        "bindDn": env("FERRY_LDAP_BIND_DN"),
        "bindPassword": "env:FERRY_LDAP_BIND_PASSWORD",
        "allowedGroups": [env("FERRY_LDAP_GROUP_DN")],
        "groupCheck": "memberSearch",
        "groupBaseDn": env("FERRY_LDAP_GROUP_BASE_DN"),
        "attributes": {
            "uid": "uidNumber", "gid": "gidNumber", "role": "ferryRoleArn",
            "policy": "ferryPolicyArn", "home": "homeDirectory", "publicKeys": "sshPublicKey",
            "accountControl": "userAccountControl"
        },
        "defaultProfile": {
            "bucket": "ferry-data",
            "home": "corp/${transfer:UserName}",
            "iamPolicyArn": PROFILE_POLICY
        },
        "connectTimeoutMs": 1000,
        "operationTimeoutMs": 1000
    });
    edit(&mut source);
    let doc = json!({ "sources": [source] }).to_string();
    parse_sources(&doc)
        .expect("the test configuration parses")
        .remove(0)
}

fn directory(edit: impl FnOnce(&mut Value)) -> DirectorySource {
    local_sources(vec![config(edit)])
        .expect("the test source builds")
        .remove(0)
}

fn user_password() -> Password {
    Password::parse(env("FERRY_LDAP_USER_PASSWORD")).expect("a password")
}

async fn verify(source: &DirectorySource, username: &str, password: &Password) -> DirectoryAnswer {
    source
        .directory
        .verify_password(username, password)
        .await
        .expect("the directory answers")
}

fn refused(answer: DirectoryAnswer) -> DirectoryRefusal {
    match answer {
        DirectoryAnswer::Refused(r) => r,
        DirectoryAnswer::Verified(user) => panic!("expected a refusal, got {user:?}"),
    }
}

/// The ports of one authenticator, kept to arrange records.
struct World {
    users: MemoryUsers,
    salts: MemoryKeyring,
    policies: MemoryPolicies,
}

impl World {
    fn new() -> Self {
        let policies = MemoryPolicies::new();
        for arn in [PROFILE_POLICY, ALICE_POLICY, TABLE_POLICY] {
            policies.insert(
                arn,
                PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).expect("policy"),
            );
        }
        Self {
            users: MemoryUsers::new(),
            salts: MemoryKeyring::new(
                Keyring::parse(r#"{"current":"1","salts":{"1":"salt-one"}}"#).expect("keyring"),
            ),
            policies,
        }
    }

    fn auth(
        &self,
        source: DirectorySource,
    ) -> Authenticator<&MemoryUsers, &MemoryKeyring, &MemoryPolicies> {
        let settings = Settings {
            default_role_arn: ROLE.into(),
            salt_cache: Duration::from_secs(60),
            policy_cache: Duration::from_secs(60),
            verified_cache: Duration::ZERO,
        };
        Authenticator::new(&self.users, &self.salts, &self.policies, settings)
            .with_directories(vec![source])
    }

    fn insert(&self, name: &str, extra: Value) {
        let mut attrs = json!({
            "username": name, "bucket": "ferry-data", "home": format!("table/{name}"),
            "iamPolicyArn": TABLE_POLICY,
        });
        if let (Some(a), Value::Object(e)) = (attrs.as_object_mut(), extra) {
            a.extend(e);
        }
        self.users
            .insert(UserRecord::from_json(attrs).expect("a valid record"));
    }
}

fn request(name: &str, credential: Credential) -> AuthRequest {
    AuthRequest {
        username: Username::parse(name).expect("a username"),
        credential,
        protocol: Protocol::Sftp,
        server_id: "s-0123456789abcdef0".into(),
        source_ip: "203.0.113.7".parse().expect("an address"),
    }
}

fn allowed(decision: Decision) -> AuthResponse {
    match decision {
        Decision::Allow(answer) => answer,
        Decision::Deny(reason) => panic!("expected an allowed login, got {reason:?}"),
    }
}

#[tokio::test]
async fn the_right_password_is_verified_and_a_wrong_one_refused() {
    let source = directory(|_| {});
    let DirectoryAnswer::Verified(alice) = verify(&source, "alice", &user_password()).await else {
        panic!("alice's password is right");
    };
    assert_eq!(alice.dn, format!("uid=alice,{}", env("FERRY_LDAP_BASE_DN")));
    let wrong = Password::parse("not-her-password").expect("a password");
    assert_eq!(
        refused(verify(&source, "alice", &wrong).await),
        DirectoryRefusal::WrongPassword
    );
    assert_eq!(
        refused(verify(&source, "nobody", &user_password()).await),
        DirectoryRefusal::UnknownUser
    );
}

#[tokio::test]
async fn starttls_on_a_plain_ldap_url_works_too() {
    let source = directory(|s| {
        s["url"] = json!(env("FERRY_LDAP_STARTTLS_URL"));
        s["starttls"] = json!(true);
    });
    assert!(matches!(
        verify(&source, "alice", &user_password()).await,
        DirectoryAnswer::Verified(_)
    ));
}

#[tokio::test]
async fn a_user_outside_the_allowed_groups_is_refused_even_with_the_right_password() {
    for check in ["memberSearch", "memberOf"] {
        let source = directory(|s| s["groupCheck"] = json!(check));
        assert_eq!(
            refused(verify(&source, "bob", &user_password()).await),
            DirectoryRefusal::NotInGroup,
            "{check}"
        );
    }
    // Without a group restriction, bob is just a user.
    let open = directory(|s| s["allowedGroups"] = json!([]));
    assert!(matches!(
        verify(&open, "bob", &user_password()).await,
        DirectoryAnswer::Verified(_)
    ));
}

#[tokio::test]
async fn a_user_in_a_nested_group_is_allowed_by_the_member_search() {
    let nested = directory(|_| {});
    assert!(matches!(
        verify(&nested, "carol", &user_password()).await,
        DirectoryAnswer::Verified(_)
    ));
    // memberOf (OpenLDAP's overlay) lists direct groups only: carol is in ops, not sftp-users.
    let direct = directory(|s| s["groupCheck"] = json!("memberOf"));
    assert_eq!(
        refused(verify(&direct, "carol", &user_password()).await),
        DirectoryRefusal::NotInGroup
    );
    assert!(matches!(
        verify(&direct, "alice", &user_password()).await,
        DirectoryAnswer::Verified(_)
    ));
}

#[tokio::test]
async fn disabled_and_locked_accounts_are_refused_on_password_and_key_logins() {
    let source = directory(|_| {});
    for (name, refusal) in [
        ("dave", DirectoryRefusal::Disabled),
        ("erin", DirectoryRefusal::Locked),
    ] {
        assert_eq!(
            refused(verify(&source, name, &user_password()).await),
            refusal
        );
        let looked = source.directory.look_up(name).await.expect("answers");
        assert_eq!(refused(looked), refusal, "{name} by key");
    }
    // Through the authenticator: dave has a key in the directory, and is still refused.
    let world = World::new();
    let auth = world.auth(directory(|_| {}));
    let decision = auth
        .authenticate(&request("dave", Credential::PublicKey))
        .await;
    assert_eq!(decision, Decision::Deny(DenyReason::Disabled));
}

#[tokio::test]
async fn filter_injection_usernames_match_nobody() {
    let source = directory(|s| s["allowedGroups"] = json!([]));
    let password = user_password();
    for name in [
        "*",
        "a*",
        ")(uid=*",
        "alice)(uid=*",
        "*)(|(uid=*",
        "alice\0",
        "\\",
        "\\2a",
        "alice)(|(objectClass=*)",
    ] {
        assert_eq!(
            refused(verify(&source, name, &password).await),
            DirectoryRefusal::UnknownUser,
            "{name:?}"
        );
        let looked = source.directory.look_up(name).await.expect("answers");
        assert_eq!(
            refused(looked),
            DirectoryRefusal::UnknownUser,
            "{name:?} by key"
        );
    }
    // Such names never reach the directory through the front door: they are not usernames.
    let world = World::new();
    let auth = world.auth(directory(|_| {}));
    let event = json!({"username": ")(uid=*", "password": env("FERRY_LDAP_USER_PASSWORD"),
        "protocol": "SFTP", "serverId": "s-0123456789abcdef0", "sourceIp": "203.0.113.7"});
    assert_eq!(auth.handle_event(&event).await, json!({}));
}

#[tokio::test]
async fn a_user_whose_dn_needs_escaping_logs_in() {
    let source = directory(|_| {});
    let DirectoryAnswer::Verified(jane) = verify(&source, "jane.doe_ops-1", &user_password()).await
    else {
        panic!("jane's password is right");
    };
    assert!(jane.dn.starts_with("cn=Doe"), "{}", jane.dn);
}

#[tokio::test]
async fn directory_attributes_map_to_the_answer() {
    let world = World::new();
    let auth = world.auth(directory(|_| {}));
    let password = request("alice", Credential::Password(user_password()));
    let answer = allowed(auth.authenticate(&password).await);
    assert_eq!(answer.role, "arn:aws:iam::123456789012:role/alice-transfer");
    // The directory's home attribute, inside the profile's bucket.
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/home/alice")
    );
    let posix = answer.posix_profile.expect("a POSIX profile");
    assert_eq!((posix.uid, posix.gid), (2001, 3001));
    // carol has no mapped attributes: the default profile's template.
    let carol = request("carol", Credential::Password(user_password()));
    let answer = allowed(auth.authenticate(&carol).await);
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/corp/carol")
    );
    assert_eq!(answer.role, ROLE);

    let key = allowed(
        auth.authenticate(&request("alice", Credential::PublicKey))
            .await,
    );
    let public = std::fs::read_to_string(format!("{}.pub", env("FERRY_LDAP_USER_KEY")))
        .expect("alice's public key");
    assert_eq!(key.public_keys, Some(vec![public.trim().to_owned()]));
}

#[tokio::test]
async fn the_record_decides_for_a_user_in_both_the_table_and_the_directory() {
    let world = World::new();
    let auth = world.auth(directory(|_| {}));
    let local = Password::parse("the-table-password").expect("a password");
    let hash = hash_password("salt-one", &local).expect("a hash");
    world.insert("tabitha", json!({"passwordHash": hash, "saltVersion": "1"}));
    // Her record has no source: the table's password, never the directory's.
    let by_directory = request("tabitha", Credential::Password(user_password()));
    assert_eq!(
        auth.authenticate(&by_directory).await,
        Decision::Deny(DenyReason::WrongPassword)
    );
    let by_table = request("tabitha", Credential::Password(local));
    let answer = allowed(auth.authenticate(&by_table).await);
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/table/tabitha")
    );

    // Her record names the source: the directory's password, the record's home and policy.
    world.insert("tabitha", json!({"identitySource": "corp"}));
    let answer = allowed(auth.authenticate(&by_directory).await);
    assert_eq!(
        answer.home_directory.as_deref(),
        Some("/ferry-data/table/tabitha")
    );
    world.insert(
        "tabitha",
        json!({"identitySource": "corp", "allowedIps": ["198.51.100.0/24"]}),
    );
    assert_eq!(
        auth.authenticate(&by_directory).await,
        Decision::Deny(DenyReason::IpNotAllowed)
    );
}

#[tokio::test]
async fn a_certificate_that_does_not_verify_is_a_denial() {
    let source =
        directory(|s| s["caBundle"] = json!(format!("file:{}", env("FERRY_LDAP_WRONG_CA"))));
    let outcome = source
        .directory
        .verify_password("alice", &user_password())
        .await;
    assert!(outcome.is_err(), "{outcome:?}");
    let world = World::new();
    let auth = world.auth(source);
    let login = request("alice", Credential::Password(user_password()));
    assert_eq!(
        auth.authenticate(&login).await,
        Decision::Deny(DenyReason::DirectoryUnavailable)
    );
}

/// Sends `signal` to the spare slapd.
fn signal(signal: &str) {
    let status = Command::new("kill")
        .args([signal, &env("FERRY_LDAP_SPARE_PID")])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal}");
}

/// Resumes the spare slapd however the test ends, so that no later run finds it frozen.
struct Thaw;

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args([
                "-CONT",
                &std::env::var("FERRY_LDAP_SPARE_PID").unwrap_or_default(),
            ])
            // After the stop case there is nothing left to resume: not worth a line.
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn a_frozen_or_stopped_directory_is_a_denial_within_the_deadline() {
    let source = directory(|s| {
        s["url"] = json!(env("FERRY_LDAP_SPARE_URL"));
        s["connectTimeoutMs"] = json!(500);
        s["operationTimeoutMs"] = json!(500);
    });
    let deadline = source.deadline;
    let world = World::new();
    let auth = world.auth(source);
    let login = request("alice", Credential::Password(user_password()));
    let key = request("alice", Credential::PublicKey);

    // Frozen: the TCP connection is accepted by the kernel, nothing ever answers.
    let _thaw = Thaw;
    signal("-STOP");
    for req in [&login, &key] {
        let started = Instant::now();
        let decision = auth.authenticate(req).await;
        let took = started.elapsed();
        assert_eq!(decision, Decision::Deny(DenyReason::DirectoryUnavailable));
        assert!(
            took <= deadline + Duration::from_millis(500),
            "took {took:?}"
        );
    }
    signal("-CONT");

    // Stopped: nothing listens any more.
    signal("-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let decision = auth.authenticate(&login).await;
    assert_eq!(decision, Decision::Deny(DenyReason::DirectoryUnavailable));
    assert!(
        started.elapsed() <= deadline,
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_port_with_nothing_listening_is_a_denial_at_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("its address").port();
    drop(closed);
    let source = directory(|s| s["url"] = json!(format!("ldaps://127.0.0.1:{port}")));
    let started = Instant::now();
    let outcome = source.directory.look_up("alice").await;
    assert!(outcome.is_err());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn the_service_connection_is_kept_across_logins_and_made_again_once_closed() {
    let ca = std::fs::read_to_string(env("FERRY_LDAP_CA")).expect("the CA");
    let dir = LdapDirectory::new(config(|_| {}), &env("FERRY_LDAP_BIND_PASSWORD"), Some(&ca))
        .expect("builds");
    for _ in 0..20 {
        let answer = dir.look_up("alice").await.expect("answers");
        assert!(matches!(answer, DirectoryAnswer::Verified(_)));
    }
    assert_eq!(
        dir.connections_opened(),
        1,
        "twenty lookups, one connection"
    );
    // Each password check binds on a connection of its own; the searches keep theirs.
    for _ in 0..3 {
        let answer = dir
            .verify_password("alice", &user_password())
            .await
            .expect("answers");
        assert!(matches!(answer, DirectoryAnswer::Verified(_)));
    }
    assert_eq!(dir.connections_opened(), 4);
    // The test directory closes connections idle for 2 s (as a real one does, later): the next
    // login makes the service connection again instead of failing.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let answer = dir.look_up("alice").await.expect("answers after the close");
    assert!(matches!(answer, DirectoryAnswer::Verified(_)));
    assert_eq!(dir.connections_opened(), 5);
}

#[test]
fn directory_users_log_in_over_sftp_through_ferry_up() {
    let work = std::env::temp_dir().join(ferry_tests::fixture::unique("ferry-directory-up"));
    std::fs::create_dir_all(&work).expect("work folder");
    let data = work.join("data");
    // Only keys and account state mapped: the profile's policy is the local stack's own.
    let sources = json!({"sources": [{
        "name": "corp",
        "url": env("FERRY_LDAP_URL"),
        "caBundle": format!("file:{}", env("FERRY_LDAP_CA")),
        "baseDn": env("FERRY_LDAP_BASE_DN"),
        "bindDn": env("FERRY_LDAP_BIND_DN"),
        "bindPassword": "env:FERRY_LDAP_BIND_PASSWORD",
        "allowedGroups": [env("FERRY_LDAP_GROUP_DN")],
        "groupCheck": "memberSearch",
        "groupBaseDn": env("FERRY_LDAP_GROUP_BASE_DN"),
        "attributes": {"publicKeys": "sshPublicKey", "accountControl": "userAccountControl"},
        "defaultProfile": {
            "bucket": "ferry-local",
            "home": "corp/${transfer:UserName}",
            "iamPolicyArn": "arn:aws:iam::000000000000:policy/ferry-scope-down"
        }
    }]});
    let file = work.join("sources.json");
    std::fs::write(&file, sources.to_string()).expect("sources file");
    let mut cmd = Command::new(
        ferry_tests::runtime_api::workspace_binary("ferry").expect("the ferry binary"),
    );
    cmd.args(["up", "--data", data.to_str().expect("utf-8 path")])
        .args(["--listen", "127.0.0.1:0", "--no-console"])
        .args(["--directory", file.to_str().expect("utf-8 path")]);
    let mut started = ferry_tests::up::start(cmd).expect("ferry up starts");
    let port = started.port;

    // alice: her key is in the directory; an upload lands in the profile's home.
    let body = work.join("hello.txt");
    std::fs::write(&body, "from the directory\n").expect("a file");
    let key = env("FERRY_LDAP_USER_KEY");
    let put = format!("put {} hello.txt\n", body.display());
    let (ok, said) = sftp(port, &work, "alice", Login::Key(Path::new(&key)), &put);
    let landed = data.join("objects/ferry-local/corp/alice/hello.txt");
    let stored = std::fs::read_to_string(&landed).unwrap_or_default();
    // carol: by password, through the nested group; then a wrong one, and bob outside it.
    let password = env("FERRY_LDAP_USER_PASSWORD");
    let carol = sftp(port, &work, "carol", Login::Password(&password), "pwd\n");
    let wrong = sftp(
        port,
        &work,
        "carol",
        Login::Password("not-the-password"),
        "pwd\n",
    );
    let bob = sftp(port, &work, "bob", Login::Password(&password), "pwd\n");
    // dave's key is in the directory too, but his account is disabled.
    let dave = sftp(port, &work, "dave", Login::Key(Path::new(&key)), "pwd\n");
    let _ = started.child.kill();
    let _ = started.child.wait();
    let _ = std::fs::remove_dir_all(&work);

    assert!(ok, "alice's key login and upload: {said}");
    assert_eq!(stored, "from the directory\n");
    assert!(carol.0, "carol's password login: {}", carol.1);
    assert!(carol.1.contains("/corp/carol"), "{}", carol.1);
    assert!(!wrong.0, "a wrong password: {}", wrong.1);
    assert!(!bob.0, "a user outside the group: {}", bob.1);
    assert!(!dave.0, "a disabled account's key: {}", dave.1);
}

#[test]
fn the_validator_checks_each_sources_default_profile() {
    let work = std::env::temp_dir().join(ferry_tests::fixture::unique("ferry-directory-validate"));
    let data = work.join("data");
    std::fs::create_dir_all(&work).expect("work folder");
    let ferry = ferry_tests::runtime_api::workspace_binary("ferry").expect("the ferry binary");
    let profile = |policy: &str| {
        json!({"name": "corp", "url": "ldaps://ldap.corp.example", "baseDn": "dc=corp",
               "bindDn": "cn=svc,dc=corp", "bindPassword": "env:UNUSED",
               "defaultProfile": {"bucket": "ferry-local", "home": "corp/${transfer:UserName}",
                                  "iamPolicyArn": policy}})
    };
    let validate = |sources: Value| {
        let file = work.join("sources.json");
        std::fs::write(&file, sources.to_string()).expect("sources file");
        let out = Command::new(&ferry)
            .arg("--local")
            .arg(&data)
            .args(["user", "validate", "--directory"])
            .arg(&file)
            .output()
            .expect("ferry runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let good = validate(
        json!({"sources": [profile("arn:aws:iam::000000000000:policy/ferry-scope-down")]}),
    );
    let missing =
        validate(json!({"sources": [profile("arn:aws:iam::000000000000:policy/no-such-policy")]}));
    let _ = std::fs::remove_dir_all(&work);
    assert!(good.0, "{}", good.1);
    assert!(
        good.1
            .contains("directory source corp (default profile): valid"),
        "{}",
        good.1
    );
    assert!(!missing.0, "{}", missing.1);
    assert!(
        missing
            .1
            .contains("INVALID: iamPolicyArn names no existing policy"),
        "{}",
        missing.1
    );
}

#[test]
fn ferry_login_shows_the_answer_for_a_directory_user() {
    let work = std::env::temp_dir().join(ferry_tests::fixture::unique("ferry-directory-login"));
    std::fs::create_dir_all(&work).expect("work folder");
    let sources = json!({"sources": [{
        "name": "corp",
        "url": env("FERRY_LDAP_URL"),
        "caBundle": format!("file:{}", env("FERRY_LDAP_CA")),
        "baseDn": env("FERRY_LDAP_BASE_DN"),
        "bindDn": env("FERRY_LDAP_BIND_DN"),
        "bindPassword": "env:FERRY_LDAP_BIND_PASSWORD",
        "attributes": {"uid": "uidNumber", "gid": "gidNumber"},
        "defaultProfile": {"bucket": "ferry-local", "home": "corp/${transfer:UserName}",
                           "iamPolicyArn": "arn:aws:iam::000000000000:policy/ferry-scope-down"}
    }]});
    let file = work.join("sources.json");
    std::fs::write(&file, sources.to_string()).expect("sources file");
    let ferry = ferry_tests::runtime_api::workspace_binary("ferry").expect("the ferry binary");
    let login = |user: &str, password: &str| {
        let mut child = Command::new(&ferry)
            .arg("--local")
            .arg(work.join("data"))
            .args(["login", user, "--password-stdin", "--directory"])
            .arg(&file)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ferry runs");
        if let Some(mut stdin) = child.stdin.take() {
            use std::io::Write;
            let _ = writeln!(stdin, "{password}");
        }
        let out = child.wait_with_output().expect("ferry ends");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let right = login("alice", &env("FERRY_LDAP_USER_PASSWORD"));
    let wrong = login("alice", "not-her-password");
    // tabitha gets a keys-only record of her own, then is handed to the source: her directory
    // password opens her record's home, not the profile's.
    let cli = |args: &[&str]| {
        Command::new(&ferry)
            .arg("--local")
            .arg(work.join("data"))
            .args(args)
            .output()
            .expect("ferry runs")
            .status
            .success()
    };
    let added = cli(&[
        "user",
        "add",
        "tabitha",
        "--home",
        "table/tabitha",
        "--no-password",
    ]);
    let own_before = login("tabitha", &env("FERRY_LDAP_USER_PASSWORD"));
    let handed = cli(&["user", "source", "tabitha", "corp"]);
    let own_after = login("tabitha", &env("FERRY_LDAP_USER_PASSWORD"));
    let back = cli(&["user", "source", "tabitha", "--clear"]);
    let own_again = login("tabitha", &env("FERRY_LDAP_USER_PASSWORD"));
    let _ = std::fs::remove_dir_all(&work);
    assert!(added && handed && back);
    assert_eq!(own_before.0, Some(1), "{own_before:?}");
    assert!(own_before.2.contains("no_password_set"), "{own_before:?}");
    assert_eq!(own_after.0, Some(0), "{own_after:?}");
    let answer: Value = serde_json::from_str(&own_after.1).expect("the answer is JSON");
    assert_eq!(
        answer["HomeDirectory"], "/ferry-local/table/tabitha",
        "{answer}"
    );
    assert_eq!(own_again.0, Some(1), "{own_again:?}");
    assert_eq!(right.0, Some(0), "{right:?}");
    let answer: Value = serde_json::from_str(&right.1).expect("the answer is JSON");
    assert_eq!(
        answer["HomeDirectory"], "/ferry-local/corp/alice",
        "{answer}"
    );
    assert_eq!(answer["PosixProfile"]["Uid"], 2001, "{answer}");
    assert_eq!(wrong.0, Some(1), "{wrong:?}");
    assert_eq!(wrong.1.trim(), "{}");
    assert!(wrong.2.contains("wrong_password"), "{wrong:?}");
}

/// Creates a Secrets Manager secret (on moto) holding `value`; its ARN.
async fn aws_secret(f: &ferry_tests::Fixture, value: &str) -> String {
    let created = f
        .secrets
        .create_secret()
        .name(ferry_tests::fixture::unique("ferry/directory"))
        .secret_string(value)
        .send()
        .await
        .expect("moto creates the secret");
    created.arn().expect("an ARN").to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_auth_binary_reads_its_directory_secrets_from_secrets_manager_and_answers() {
    let f = ferry_tests::Fixture::new()
        .await
        .expect("the local services");
    // The bind secret in the toolkit's shape, the CA bundle as it is: both in Secrets Manager.
    let bind = aws_secret(
        &f,
        &json!({"username": env("FERRY_LDAP_BIND_DN"), "password": env("FERRY_LDAP_BIND_PASSWORD")})
            .to_string(),
    )
    .await;
    let ca = aws_secret(
        &f,
        &std::fs::read_to_string(env("FERRY_LDAP_CA")).expect("the CA"),
    )
    .await;
    let sources = json!({"sources": [{
        "name": "corp",
        "url": env("FERRY_LDAP_URL"),
        "caBundle": ca,
        "baseDn": env("FERRY_LDAP_BASE_DN"),
        "bindDn": env("FERRY_LDAP_BIND_DN"),
        "bindPassword": bind,
        "allowedGroups": [env("FERRY_LDAP_GROUP_DN")],
        "groupCheck": "memberSearch",
        "groupBaseDn": env("FERRY_LDAP_GROUP_BASE_DN"),
        "attributes": {"accountControl": "userAccountControl"},
        "defaultProfile": {"bucket": "ferry-data", "home": "corp/${transfer:UserName}",
                           "iamPolicyArn": f.policy_arn}
    }]});
    let mut api = ferry_tests::runtime_api::RuntimeApi::start().expect("a Runtime API");
    let mut child = f
        .auth_command(&api)
        .expect("the auth binary")
        .env("DIRECTORY_SOURCES", sources.to_string())
        // As chatty as it gets short of trace: no level may show a password.
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the auth binary starts");
    // Drained as it runs, so a full pipe never stalls the function.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let wait = Duration::from_secs(30);
    let ready = api.wait_ready(wait).is_ok();
    let mut ask = |user: &str, password: &str| -> Option<Value> {
        let event = ferry_tests::fixture::direct_event(user, Some(password));
        let answer = api.invoke(event.to_string().as_bytes(), wait).ok()?;
        serde_json::from_slice(&answer.body).ok()
    };
    let carol = ready.then(|| ask("carol", &env("FERRY_LDAP_USER_PASSWORD")));
    let wrong = ready.then(|| ask("carol", "not-her-password"));
    let dave = ready.then(|| ask("dave", &env("FERRY_LDAP_USER_PASSWORD")));
    // Stopped before judging, so that a failed assertion leaves no function behind.
    let _ = child.kill();
    let _ = child.wait();
    let printed = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert!(ready, "the auth binary polls the Runtime API: {printed}");
    for secret in [
        env("FERRY_LDAP_USER_PASSWORD"),
        env("FERRY_LDAP_BIND_PASSWORD"),
        "not-her-password".to_owned(),
    ] {
        assert!(!printed.contains(&secret), "a password reached the log");
    }
    // The audit line says why each login was refused.
    for reason in [r#""reason":"wrong_password""#, r#""reason":"disabled""#] {
        assert!(printed.contains(reason), "no {reason} in {printed}");
    }
    let carol = carol.flatten().expect("an answer for carol");
    assert_eq!(carol["HomeDirectory"], "/ferry-data/corp/carol", "{carol}");
    assert_eq!(carol["Role"], ferry_tests::fixture::DEFAULT_ROLE, "{carol}");
    assert!(carol["Policy"].is_string(), "{carol}");
    assert_eq!(wrong.flatten(), Some(json!({})));
    assert_eq!(dave.flatten(), Some(json!({})));
}
