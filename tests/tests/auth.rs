//! The authenticator against DynamoDB Local, moto's Secrets Manager and IAM, through the real
//! SDK adapters: what Transfer Family gets back for every kind of login.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use base64::Engine;
use ferry_core::app::login::{Decision, DenyReason};
use ferry_core::domain::policy::CANONICAL_SCOPE_DOWN;
use ferry_core::domain::transfer::{AuthRequest, read_event};
use ferry_tests::fixture::{DEFAULT_ROLE, Fixture, direct_event as event};
use serde_json::{Value, json};

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl a@x";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf3Rw5ojPiuBcXf3lJiZ2nWGwHDeMmKd7Hjt3x9Hx9m b@x";
const KEY_C: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEXAMPLEkeyAAAAAAAAAAAA c@x";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn with(mut e: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e
}

fn request(e: &Value) -> AuthRequest {
    read_event(e).1.expect("event should be valid")
}

/// The caller sees `{}` and the internal reason is `want`.
async fn assert_denied(f: &Fixture, e: Value, want: DenyReason) {
    let auth = f.authenticator();
    assert_eq!(
        auth.handle_event(&e).await,
        json!({}),
        "caller must see an empty object"
    );
    assert_eq!(auth.authenticate(&request(&e)).await, Decision::Deny(want));
}

#[tokio::test]
async fn a_password_login_returns_role_policy_and_path_home() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("alice", Some("correct horse"), json!({}))
        .await?;
    let got = f
        .authenticator()
        .handle_event(&event("Alice", Some("correct horse")))
        .await;
    let obj = got.as_object().unwrap();
    assert_eq!(
        obj.len(),
        4,
        "only Role, Policy, HomeDirectoryType, HomeDirectory: {got}"
    );
    assert_eq!(got["Role"], DEFAULT_ROLE);
    assert_eq!(got["HomeDirectoryType"], "PATH");
    assert_eq!(got["HomeDirectory"], "/ferry-test-bucket/home/alice");
    let policy = got["Policy"].as_str().unwrap();
    assert_eq!(
        policy, CANONICAL_SCOPE_DOWN,
        "fetched from IAM, decoded and minified"
    );
    assert!(!got.to_string().contains("PublicKeys"));
    Ok(())
}

#[tokio::test]
async fn a_chroot_user_gets_a_logical_root_their_own_role_and_posix_profile() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user(
        "bob",
        Some("pw-bob"),
        json!({
            "chroot": true,
            "roleArn": "arn:aws:iam::000000000000:role/bob-role",
            "posixProfile": {"Uid": 1001, "Gid": 1002, "SecondaryGids": [5, 6]}
        }),
    )
    .await?;
    let got = f
        .authenticator()
        .handle_event(&event("bob", Some("pw-bob")))
        .await;
    assert_eq!(got["Role"], "arn:aws:iam::000000000000:role/bob-role");
    assert_eq!(got["HomeDirectoryType"], "LOGICAL");
    assert!(got.get("HomeDirectory").is_none());
    let details = got["HomeDirectoryDetails"]
        .as_str()
        .expect("details are a JSON string");
    assert_eq!(
        serde_json::from_str::<Value>(details)?,
        json!([{"Entry": "/", "Target": "/ferry-test-bucket/home/bob"}])
    );
    assert_eq!(
        got["PosixProfile"],
        json!({"Uid": 1001, "Gid": 1002, "SecondaryGids": [5, 6]})
    );
    assert_eq!(got["Policy"], CANONICAL_SCOPE_DOWN);
    Ok(())
}

#[tokio::test]
async fn explicit_logical_mappings_are_returned_as_given() -> Result<()> {
    let f = Fixture::new().await?;
    let mappings = json!([{"Entry": "/inbox", "Target": "/bucket-a/in/carol", "Type": "DIRECTORY"}, {"Entry": "/readme.txt", "Target": "/bucket-b/readme.txt", "Type": "FILE"}]);
    f.put_user(
        "carol",
        Some("pw"),
        json!({"homeDirectoryType": "LOGICAL", "homeDirectoryDetails": mappings}),
    )
    .await?;
    let got = f
        .authenticator()
        .handle_event(&event("carol", Some("pw")))
        .await;
    assert_eq!(got["HomeDirectoryType"], "LOGICAL");
    assert_eq!(
        serde_json::from_str::<Value>(got["HomeDirectoryDetails"].as_str().unwrap())?,
        mappings
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_look_the_same() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("dave", Some("right"), json!({})).await?;
    assert_denied(&f, event("dave", Some("wrong")), DenyReason::WrongPassword).await;
    assert_denied(&f, event("dave", Some("Right")), DenyReason::WrongPassword).await;
    assert_denied(
        &f,
        event("nobody-here", Some("right")),
        DenyReason::UnknownUser,
    )
    .await;
    assert_denied(&f, event("nobody-here", None), DenyReason::UnknownUser).await;
    Ok(())
}

#[tokio::test]
async fn disabled_invalid_and_expired_users_are_refused_in_both_flows() -> Result<()> {
    let f = Fixture::new().await?;
    let keys = json!([KEY_A]);
    f.put_user(
        "disabled-u",
        Some("pw"),
        json!({"status": "disabled", "publicKeys": keys}),
    )
    .await?;
    f.put_user(
        "invalid-u",
        Some("pw"),
        json!({"status": "invalid", "publicKeys": keys}),
    )
    .await?;
    f.put_user(
        "expired-u",
        Some("pw"),
        json!({"expiresAt": now() - 60, "publicKeys": keys}),
    )
    .await?;
    f.put_user(
        "later-u",
        Some("pw"),
        json!({"expiresAt": now() + 3600, "status": "active", "publicKeys": keys}),
    )
    .await?;
    for (user, reason) in [
        ("disabled-u", DenyReason::Disabled),
        ("invalid-u", DenyReason::Invalid),
        ("expired-u", DenyReason::Expired),
    ] {
        assert_denied(&f, event(user, Some("pw")), reason).await;
        assert_denied(&f, event(user, None), reason).await;
    }
    let auth = f.authenticator();
    assert_eq!(
        auth.handle_event(&event("later-u", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    assert_eq!(
        auth.handle_event(&event("later-u", None)).await["PublicKeys"],
        json!([KEY_A])
    );
    Ok(())
}

#[tokio::test]
async fn a_key_login_returns_only_unexpired_keys_and_no_password_flow_fields() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user(
        "erin",
        Some("pw"),
        json!({"publicKeys": [
            {"key": KEY_A, "expiresAt": now() - 3600},
            {"key": KEY_B, "expiresAt": now() + 3600},
            KEY_C
        ]}),
    )
    .await?;
    let auth = f.authenticator();
    for e in [event("erin", None), event("erin", Some(""))] {
        let got = auth.handle_event(&e).await;
        assert_eq!(got["PublicKeys"], json!([KEY_B, KEY_C]));
        assert_eq!(got["Role"], DEFAULT_ROLE);
        assert_eq!(got["HomeDirectory"], "/ferry-test-bucket/home/erin");
        assert_eq!(got["Policy"], CANONICAL_SCOPE_DOWN);
    }
    let pw = auth.handle_event(&event("erin", Some("pw"))).await;
    assert!(
        pw.get("PublicKeys").is_none(),
        "never PublicKeys on a password login: {pw}"
    );
    Ok(())
}

#[tokio::test]
async fn a_key_login_with_no_live_key_is_refused() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("no-keys", Some("pw"), json!({})).await?;
    f.put_user(
        "old-keys",
        None,
        json!({"publicKeys": [{"key": KEY_A, "expiresAt": now() - 10}]}),
    )
    .await?;
    assert_denied(&f, event("no-keys", None), DenyReason::NoKeys).await;
    assert_denied(&f, event("old-keys", None), DenyReason::NoKeys).await;
    // A keys-only user cannot log in with any password.
    assert_denied(
        &f,
        event("old-keys", Some("anything")),
        DenyReason::NoPasswordSet,
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn source_ip_server_and_protocol_lists_are_enforced_for_both_flows() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user(
        "frank",
        Some("pw"),
        json!({
            "allowedIps": ["203.0.113.0/24", "2001:db8::/32"],
            "allowedServers": ["s-0123456789abcdef0"],
            "protocols": ["SFTP", "FTPS"],
            "publicKeys": [KEY_A]
        }),
    )
    .await?;
    let auth = f.authenticator();
    for pw in [Some("pw"), None] {
        let ok = event("frank", pw);
        assert_eq!(auth.handle_event(&ok).await["Role"], DEFAULT_ROLE);
        assert_eq!(
            auth.handle_event(&with(ok.clone(), json!({"sourceIp": "2001:db8::9"})))
                .await["Role"],
            DEFAULT_ROLE
        );
        let ftps = with(ok.clone(), json!({"protocol": "FTPS"}));
        if pw.is_some() {
            assert_eq!(auth.handle_event(&ftps).await["Role"], DEFAULT_ROLE);
        } else {
            // Key logins exist only in SFTP: FTPS without a password is refused at the boundary.
            assert_eq!(auth.handle_event(&ftps).await, json!({}));
            let (_, read) = ferry_core::domain::transfer::read_event(&ftps);
            assert_eq!(
                read.unwrap_err().0,
                ferry_core::domain::transfer::RequestError::PasswordRequired
            );
        }
        assert_denied(
            &f,
            with(ok.clone(), json!({"sourceIp": "198.51.100.1"})),
            DenyReason::IpNotAllowed,
        )
        .await;
        assert_denied(
            &f,
            with(ok.clone(), json!({"sourceIp": "2001:db9::1"})),
            DenyReason::IpNotAllowed,
        )
        .await;
        assert_denied(
            &f,
            with(ok.clone(), json!({"serverId": "s-fffffffffffffffff"})),
            DenyReason::ServerNotAllowed,
        )
        .await;
        let ftp = with(ok.clone(), json!({"protocol": "FTP"}));
        if pw.is_some() {
            assert_denied(&f, ftp, DenyReason::ProtocolNotAllowed).await;
        } else {
            // A key login's protocol is SFTP or nothing: FTP without a password never gets as
            // far as the user's protocol list.
            assert_eq!(auth.handle_event(&ftp).await, json!({}));
        }
    }
    Ok(())
}

#[tokio::test]
async fn string_sets_are_accepted_for_ip_server_protocol_and_key_lists() -> Result<()> {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    let f = Fixture::new().await?;
    let hash = f.hash("pw", "2").await?;
    let item = std::collections::HashMap::from([
        ("username".to_owned(), A::S("sets-user".into())),
        ("passwordHash".to_owned(), A::S(hash)),
        ("saltVersion".to_owned(), A::S("2".into())),
        ("bucket".to_owned(), A::S("ferry-test-bucket".into())),
        ("home".to_owned(), A::S("sets".into())),
        ("iamPolicyArn".to_owned(), A::S(f.policy_arn.clone())),
        (
            "allowedIps".to_owned(),
            A::Ss(vec!["203.0.113.7".into(), "10.0.0.0/8".into()]),
        ),
        (
            "allowedServers".to_owned(),
            A::Ss(vec!["s-0123456789abcdef0".into()]),
        ),
        ("protocols".to_owned(), A::Ss(vec!["SFTP".into()])),
        ("publicKeys".to_owned(), A::Ss(vec![KEY_B.into()])),
        ("expiresAt".to_owned(), A::N((now() + 600).to_string())),
    ]);
    f.put_item(item).await?;
    let auth = f.authenticator();
    assert_eq!(
        auth.handle_event(&event("sets-user", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    assert_eq!(
        auth.handle_event(&event("sets-user", None)).await["PublicKeys"],
        json!([KEY_B])
    );
    assert_denied(
        &f,
        with(
            event("sets-user", Some("pw")),
            json!({"sourceIp": "192.0.2.1"}),
        ),
        DenyReason::IpNotAllowed,
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn api_gateway_requests_are_answered_in_api_gateway_shape() -> Result<()> {
    let f = Fixture::new().await?;
    let tricky = r#"p"a\s's\"w\\rd{}%40"#;
    f.put_user("gina@example.com", Some(tricky), json!({}))
        .await?;
    let auth = f.authenticator();
    let gw = |headers: Value, user: &str| {
        json!({
            "resource": "/servers/{serverId}/users/{username}/config",
            "path": format!("/servers/s-0123456789abcdef0/users/{user}/config"),
            "httpMethod": "GET",
            "headers": headers,
            "queryStringParameters": {"protocol": "SFTP", "sourceIp": "203.0.113.7"},
            "pathParameters": {"serverId": "s-0123456789abcdef0", "username": user},
            "requestContext": {"stage": "prod", "httpMethod": "GET"}
        })
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(tricky);
    for headers in [
        json!({"PasswordBase64": b64}),
        json!({"Password": tricky}),
        json!({"password": tricky}),
    ] {
        let got = auth
            .handle_event(&gw(headers.clone(), "gina%40example.com"))
            .await;
        assert_eq!(got["statusCode"], 200, "{headers}");
        let body: Value = serde_json::from_str(got["body"].as_str().unwrap())?;
        assert_eq!(body["Role"], DEFAULT_ROLE, "{headers}");
        assert_eq!(
            body["HomeDirectory"],
            "/ferry-test-bucket/home/gina@example.com"
        );
    }
    let wrong = auth
        .handle_event(&gw(json!({"Password": "nope"}), "gina%40example.com"))
        .await;
    assert_eq!(wrong["statusCode"], 200);
    assert_eq!(wrong["body"], "{}");
    Ok(())
}

#[tokio::test]
async fn a_legacy_plain_string_salt_is_version_zero() -> Result<()> {
    let f = Fixture::with_secret("the-seed-design-plain-salt").await?;
    let hash = f.hash("legacy-pw", "0").await?;
    f.put_user(
        "henry",
        None,
        json!({"passwordHash": hash, "saltVersion": "0"}),
    )
    .await?;
    assert_eq!(
        f.authenticator()
            .handle_event(&event("henry", Some("legacy-pw")))
            .await["Role"],
        DEFAULT_ROLE
    );
    assert_denied(
        &f,
        event("henry", Some("legacy-pW")),
        DenyReason::WrongPassword,
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn a_hash_under_an_older_salt_version_still_verifies() -> Result<()> {
    let f = Fixture::new().await?;
    let old = f.hash("old-pw", "1").await?;
    f.put_user(
        "iris",
        None,
        json!({"passwordHash": old, "saltVersion": "1"}),
    )
    .await?;
    assert_eq!(
        f.authenticator()
            .handle_event(&event("iris", Some("old-pw")))
            .await["Role"],
        DEFAULT_ROLE
    );
    // The same hash claimed under the other version is a wrong password, not a success.
    f.put_user(
        "iris2",
        None,
        json!({"passwordHash": f.hash("old-pw", "1").await?, "saltVersion": "2"}),
    )
    .await?;
    assert_denied(
        &f,
        event("iris2", Some("old-pw")),
        DenyReason::WrongPassword,
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn a_salt_version_the_keyring_no_longer_holds_is_refused() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user(
        "jack",
        None,
        json!({"passwordHash": f.hash("pw", "1").await?, "saltVersion": "7"}),
    )
    .await?;
    assert_denied(
        &f,
        event("jack", Some("pw")),
        DenyReason::SaltVersionMissing,
    )
    .await;
    Ok(())
}

#[tokio::test]
async fn a_policy_over_2048_characters_is_refused_and_a_missing_policy_too() -> Result<()> {
    let f = Fixture::new().await?;
    let statements: Vec<Value> = (0..40)
        .map(|i| json!({"Sid": format!("S{i}"), "Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::bucket-{i}/*")}))
        .collect();
    let big = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    assert!(big.len() > 2048);
    let big_arn = f.policy(&big).await?;
    f.put_user(
        "kim",
        Some("pw"),
        json!({"iamPolicyArn": big_arn, "publicKeys": [KEY_A]}),
    )
    .await?;
    assert_denied(&f, event("kim", Some("pw")), DenyReason::PolicyTooLarge).await;
    assert_denied(&f, event("kim", None), DenyReason::PolicyTooLarge).await;
    f.put_user(
        "lee",
        Some("pw"),
        json!({"iamPolicyArn": "arn:aws:iam::000000000000:policy/does-not-exist"}),
    )
    .await?;
    assert_denied(&f, event("lee", Some("pw")), DenyReason::PolicyUnavailable).await;
    Ok(())
}

#[tokio::test]
async fn an_unusable_record_is_refused_not_trusted() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("mia", Some("pw"), json!({"bucket": "Not_A_Bucket"}))
        .await?;
    f.put_user(
        "nia",
        Some("pw"),
        json!({"passwordHash": "$argon2id$garbage", "saltVersion": "2"}),
    )
    .await?;
    f.put_user("oia", Some("pw"), json!({"passwordHash": 12345}))
        .await?;
    f.put_user("pia", Some("pw"), json!({"homeDirectoryType": "LOGICAL"}))
        .await?;
    f.put_user("qia", Some("pw"), json!({"status": "suspended"}))
        .await?;
    for user in ["mia", "oia", "pia", "qia"] {
        assert_denied(&f, event(user, Some("pw")), DenyReason::InvalidRecord).await;
        assert_denied(&f, event(user, None), DenyReason::InvalidRecord).await;
    }
    assert_denied(&f, event("nia", Some("pw")), DenyReason::InvalidRecord).await;
    Ok(())
}

#[tokio::test]
async fn malformed_events_of_every_kind_are_denied_without_a_panic() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("valid-user", Some("pw"), json!({})).await?;
    let auth = f.authenticator();
    let good = event("valid-user", Some("pw"));
    let mut missing: Vec<Value> = ["username", "protocol", "serverId", "sourceIp"]
        .iter()
        .map(|k| {
            let mut e = good.clone();
            e.as_object_mut().unwrap().remove(*k);
            e
        })
        .collect();
    missing.extend([
        json!(null),
        json!(17),
        json!("valid-user"),
        json!([good.clone()]),
        json!({}),
        with(good.clone(), json!({"username": ["valid-user"]})),
        with(good.clone(), json!({"username": {"S": "valid-user"}})),
        with(good.clone(), json!({"password": 1234})),
        with(good.clone(), json!({"password": {"$ne": ""}})),
        with(good.clone(), json!({"password": "x".repeat(1025)})),
        with(good.clone(), json!({"password": "p".repeat(2_000_000)})),
        with(good.clone(), json!({"username": "v".repeat(1_000_000)})),
        with(good.clone(), json!({"username": "valid-user\u{0}"})),
        with(good.clone(), json!({"username": "VALID-USER "})),
        with(good.clone(), json!({"protocol": "sftp2"})),
        with(good.clone(), json!({"protocol": null})),
        with(good.clone(), json!({"serverId": 42})),
        with(good.clone(), json!({"serverId": "s-../../etc"})),
        with(good.clone(), json!({"sourceIp": "localhost"})),
        with(good.clone(), json!({"sourceIp": "203.0.113.7:22"})),
        json!({"httpMethod": "GET"}),
        json!({"httpMethod": "GET", "pathParameters": {"serverId": "s-1", "username": "valid-user"}, "headers": {"Password": "pw"}}),
        json!({"httpMethod": "GET", "pathParameters": "oops", "headers": [1], "queryStringParameters": 5}),
        json!({"requestContext": {}, "path": "/servers/s-1/users/valid-user/config", "headers": {"PasswordBase64": "!!!"}, "queryStringParameters": {"protocol": "SFTP", "sourceIp": "203.0.113.7"}}),
    ]);
    for e in &missing {
        let got = auth.handle_event(e).await;
        let is_gw = e.get("httpMethod").is_some() || e.get("requestContext").is_some();
        if is_gw {
            assert_eq!(got["statusCode"], 200);
            assert_eq!(got["body"], "{}");
        } else {
            assert_eq!(got, json!({}), "event {:.200}", e.to_string());
        }
    }
    // The well-formed control works, so the denials above are about the input.
    assert_eq!(auth.handle_event(&good).await["Role"], DEFAULT_ROLE);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_a_denial() -> Result<()> {
    let f = Fixture::new().await?;
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dead = aws_sdk_dynamodb::config::Builder::from(&f.sdk)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .build();
    let users = ferry_core::adapters::aws::dynamodb::DynamoUserStore::new(
        aws_sdk_dynamodb::Client::from_conf(dead),
        &f.table,
    );
    let auth = f.authenticator_with(users);
    for e in [event("anyone", Some("pw")), event("anyone", None)] {
        assert_eq!(auth.handle_event(&e).await, json!({}));
        assert_eq!(
            auth.authenticate(&request(&e)).await,
            Decision::Deny(DenyReason::StoreUnavailable)
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_missing_table_or_secret_is_a_denial() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("rosa", Some("pw"), json!({})).await?;
    let gone =
        ferry_core::adapters::aws::dynamodb::DynamoUserStore::new(f.ddb.clone(), "no-such-table");
    let auth = f.authenticator_with(gone);
    assert_eq!(
        auth.authenticate(&request(&event("rosa", Some("pw"))))
            .await,
        Decision::Deny(DenyReason::StoreUnavailable)
    );

    f.secrets
        .delete_secret()
        .secret_id(&f.secret_id)
        .force_delete_without_recovery(true)
        .send()
        .await?;
    let auth = f.authenticator();
    assert_eq!(
        auth.authenticate(&request(&event("rosa", Some("pw"))))
            .await,
        Decision::Deny(DenyReason::KeyringUnavailable)
    );
    Ok(())
}

#[tokio::test]
async fn a_broken_keyring_secret_refuses_passwords_but_not_keys() -> Result<()> {
    let f = Fixture::with_secret(r#"{"current":"9","salts":{"1":"a"}}"#).await?;
    f.put_user("sam", None, json!({"passwordHash": ferry_core::domain::password::DUMMY_HASH, "saltVersion": "1", "publicKeys": [KEY_A]})).await?;
    assert_denied(&f, event("sam", Some("pw")), DenyReason::KeyringUnavailable).await;
    assert_eq!(
        f.authenticator().handle_event(&event("sam", None)).await["PublicKeys"],
        json!([KEY_A])
    );
    Ok(())
}

#[tokio::test]
async fn user_records_are_read_fresh_on_every_login() -> Result<()> {
    let f = Fixture::new().await?;
    f.put_user("tess", Some("pw"), json!({})).await?;
    let auth = f.authenticator();
    assert_eq!(
        auth.handle_event(&event("tess", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    f.put_user("tess", Some("pw"), json!({"status": "disabled"}))
        .await?;
    assert_eq!(
        auth.authenticate(&request(&event("tess", Some("pw"))))
            .await,
        Decision::Deny(DenyReason::Disabled)
    );
    Ok(())
}

#[tokio::test]
async fn a_login_records_last_login_as_a_number_once_an_hour_and_never_creates_a_user() -> Result<()>
{
    use aws_sdk_dynamodb::types::AttributeValue;
    use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
    use ferry_core::domain::username::Username;
    use ferry_core::ports::UserStore;

    let f = Fixture::new().await?;
    f.put_user("lola", Some("pw"), json!({"publicKeys": [KEY_A]}))
        .await?;
    let last_login = || async {
        let out = f
            .ddb
            .get_item()
            .table_name(&f.table)
            .key("username", AttributeValue::S("lola".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item.unwrap().get("lastLoginAt").cloned()
    };
    let auth = f.authenticator();
    assert_eq!(
        auth.handle_event(&event("lola", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    let first = last_login().await;
    let Some(AttributeValue::N(first_n)) = &first else {
        panic!("lastLoginAt is not a number: {first:?}");
    };
    let t: i64 = first_n.parse()?;
    assert!((now() - 5..=now()).contains(&t), "{t}");

    // Within the hour neither flow writes again.
    assert_eq!(
        auth.handle_event(&event("lola", None)).await["PublicKeys"],
        json!([KEY_A])
    );
    assert_eq!(
        auth.handle_event(&event("lola", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    assert_eq!(last_login().await, first, "unchanged within the hour");

    // An hour-old value is replaced by the next login.
    let hour_ago = now() - 3_600;
    f.ddb
        .update_item()
        .table_name(&f.table)
        .key("username", AttributeValue::S("lola".into()))
        .update_expression("SET lastLoginAt = :t")
        .expression_attribute_values(":t", AttributeValue::N(hour_ago.to_string()))
        .send()
        .await?;
    assert_eq!(
        auth.handle_event(&event("lola", None)).await["PublicKeys"],
        json!([KEY_A])
    );
    let Some(AttributeValue::N(again)) = last_login().await else {
        panic!("lastLoginAt went missing");
    };
    assert!(again.parse::<i64>()? > hour_ago);

    // The adapter's condition: a stale value read loses, and a user who is not there (removed
    // since the login read them) is not brought back as a stub item.
    let store = DynamoUserStore::new(f.ddb.clone(), &f.table);
    let lola = Username::parse("lola")?;
    assert!(!store.touch_last_login(&lola, Some(hour_ago), now()).await?);
    assert!(!store.touch_last_login(&lola, None, now()).await?);
    let ghost = Username::parse("ghost")?;
    assert!(!store.touch_last_login(&ghost, None, now()).await?);
    assert!(f.item("ghost").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn inactive_users_and_old_passwords_are_refused_from_dynamodb_records() -> Result<()> {
    use ferry_core::domain::lifecycle::{DAY, Lifecycle};

    let f = Fixture::new().await?;
    f.put_user(
        "idle",
        Some("pw"),
        json!({"lastLoginAt": now() - 91 * DAY, "publicKeys": [KEY_A]}),
    )
    .await?;
    f.put_user(
        "old-pw",
        Some("pw"),
        json!({"lastLoginAt": now() - 60, "passwordChangedAt": now() - 31 * DAY, "publicKeys": [KEY_A]}),
    )
    .await?;
    f.put_user(
        "exempt",
        Some("pw"),
        json!({"lastLoginAt": now() - 400 * DAY, "disableAfterInactiveDays": 0}),
    )
    .await?;
    let auth = f.authenticator().with_lifecycle(Lifecycle {
        disable_after_inactive_days: Some(90),
        password_max_age_days: Some(30),
    });
    for e in [event("idle", Some("pw")), event("idle", None)] {
        assert_eq!(auth.handle_event(&e).await, json!({}));
        assert_eq!(
            auth.authenticate(&request(&e)).await,
            Decision::Deny(DenyReason::Inactive)
        );
    }
    assert_eq!(
        auth.authenticate(&request(&event("old-pw", Some("pw"))))
            .await,
        Decision::Deny(DenyReason::PasswordExpired)
    );
    assert_eq!(
        auth.handle_event(&event("old-pw", None)).await["PublicKeys"],
        json!([KEY_A]),
        "a key login does not use the password"
    );
    assert_eq!(
        auth.handle_event(&event("exempt", Some("pw"))).await["Role"],
        DEFAULT_ROLE
    );
    Ok(())
}
