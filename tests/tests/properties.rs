//! Properties of the core's rules, checked by proptest over generated inputs rather than
//! examples: no path leaves its home, the validator never lets a policy reach outside the home,
//! an explicit Deny always wins, records, keyrings and requests read back to themselves, and a
//! login with any password is answered `{}` or a full allow, never something in between.
//!
//! Each property runs `PROPTEST_CASES` cases (proptest's default, 256, unless set); the fuzz
//! targets in `shared/fuzz/` chase the same invariants with coverage guidance.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::app::login::{Authenticator, Settings};
use ferry_core::domain::access::{Request, SessionPolicy, SessionVariables, Verdict};
use ferry_core::domain::keyring::Keyring;
use ferry_core::domain::password::{Password, hash_password};
use ferry_core::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use ferry_core::domain::policy_checks::{check_static, simulate};
use ferry_core::domain::sftp_path::{Location, Namespace, normalize};
use ferry_core::domain::transfer::{Credential, Shape, read_event};
use ferry_core::domain::user::{Mapping, UserRecord};
use ferry_core::testing::{MemoryKeyring, MemoryPolicies, MemoryUsers};
use proptest::prelude::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Paths

/// Path segments as clients send them, climbing ones included.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => Just(String::new()),
        1 => Just("home".to_owned()),
        1 => Just("alice".to_owned()),
        3 => "[a-zA-Z0-9 _.~-]{1,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(segment(), 0..10)).prop_map(|(absolute, segments)| {
        let joined = segments.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

/// Logical homes: a chroot, or entries beside and inside each other.
fn mappings() -> impl Strategy<Value = Vec<Mapping>> {
    let entry = prop_oneof![
        Just("/"),
        Just("/in"),
        Just("/out"),
        Just("/out/deep"),
        Just("/..x")
    ];
    let target = prop_oneof![
        Just("/b1/home/alice"),
        Just("/b1/home/alice/in"),
        Just("/b2/shared/reports"),
        Just("/b2/x")
    ];
    prop::collection::vec((entry, target), 1..4).prop_map(|pairs| {
        let mut seen = std::collections::BTreeSet::new();
        pairs
            .into_iter()
            .filter(|(e, _)| seen.insert(*e))
            .map(|(e, t)| Mapping {
                entry: e.into(),
                target: t.into(),
                kind: None,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn no_path_however_built_leaves_the_root(cwd in path(), p in path()) {
        let Ok(cwd) = normalize("/", &cwd) else { return Ok(()) };
        let full = normalize(&cwd, &p).unwrap();
        prop_assert!(full.starts_with('/'));
        prop_assert!(
            full == "/" || full[1..].split('/').all(|s| !s.is_empty() && s != "." && s != ".."),
            "{} is not normal", full
        );
    }

    #[test]
    fn no_path_however_built_leaves_the_mapping_it_lands_in(
        maps in mappings(),
        cwd in path(),
        p in path(),
    ) {
        let Ok(cwd) = normalize("/", &cwd) else { return Ok(()) };
        let full = normalize(&cwd, &p).unwrap();
        if let Ok(Location::Object { bucket, key }) = Namespace::Logical(maps.clone()).locate(&full) {
            let landed = if key.is_empty() { format!("/{bucket}") } else { format!("/{bucket}/{key}") };
            prop_assert!(
                maps.iter().any(|m| landed == m.target || landed.starts_with(&format!("{}/", m.target))),
                "{} landed on {} outside every target of {:?}", full, landed, maps
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Policies

const HOME_ARN: &str = "arn:aws:iam::123456789012:policy/ferry-scope-down";

fn alice() -> UserRecord {
    UserRecord::from_json(json!({
        "username": "alice",
        "bucket": "bucket",
        "home": "home/alice",
        "iamPolicyArn": HOME_ARN,
    }))
    .unwrap()
}

/// One statement from the pieces policy authors combine, wildcards and Not-forms included.
fn statement() -> impl Strategy<Value = Value> {
    let effect = prop_oneof![3 => Just("Allow"), 1 => Just("Deny")];
    let action = prop_oneof![
        Just("s3:GetObject"),
        Just("s3:PutObject"),
        Just("s3:DeleteObject"),
        Just("s3:ListBucket"),
        Just("s3:Get*"),
        Just("s3:*"),
        Just("*"),
    ];
    let resource = prop_oneof![
        Just("arn:aws:s3:::${transfer:HomeBucket}/${transfer:HomeFolder}/*"),
        Just("arn:aws:s3:::${transfer:HomeDirectory}/*"),
        Just("arn:aws:s3:::bucket/home/alice/*"),
        Just("arn:aws:s3:::bucket/home/alice*"),
        Just("arn:aws:s3:::bucket/home/*"),
        Just("arn:aws:s3:::bucket/*"),
        Just("arn:aws:s3:::bucket"),
        Just("arn:aws:s3:::*"),
        Just("*"),
    ];
    (
        effect,
        prop::bool::weighted(0.2),
        prop::collection::vec(action, 1..3),
        prop::bool::weighted(0.2),
        prop::collection::vec(resource, 1..3),
    )
        .prop_map(|(effect, not_action, actions, not_resource, resources)| {
            let mut s = serde_json::Map::new();
            s.insert("Effect".into(), json!(effect));
            s.insert(
                if not_action { "NotAction" } else { "Action" }.into(),
                json!(actions),
            );
            s.insert(
                if not_resource {
                    "NotResource"
                } else {
                    "Resource"
                }
                .into(),
                json!(resources),
            );
            Value::Object(s)
        })
}

/// A policy: the home statements most authors start from (listing and objects), plus up to three others.
fn policy() -> impl Strategy<Value = String> {
    (
        prop::bool::weighted(0.8),
        prop::collection::vec(statement(), 0..4),
    )
        .prop_map(|(with_home, extra)| {
            let mut statements = Vec::new();
            if with_home {
                let canonical: Value = serde_json::from_str(CANONICAL_SCOPE_DOWN).unwrap();
                statements.extend(canonical["Statement"].as_array().unwrap().iter().cloned());
            }
            statements.extend(extra);
            json!({"Version": "2012-10-17", "Statement": statements}).to_string()
        })
}

/// Requests for objects outside alice's home `bucket/home/alice`.
const OUTSIDE: [(&str, &str); 6] = [
    ("s3:GetObject", "arn:aws:s3:::bucket/home/bob/x"),
    ("s3:PutObject", "arn:aws:s3:::bucket/home/alicebob/x"),
    ("s3:PutObject", "arn:aws:s3:::bucket/home/alice-old/x"),
    ("s3:DeleteObject", "arn:aws:s3:::bucket/x"),
    ("s3:GetObject", "arn:aws:s3:::other/home/alice/x"),
    ("s3:PutObject", "arn:aws:s3:::bucket/home/x"),
];

fn evaluate(policy: &SessionPolicy, action: &str, resource: &str) -> Verdict {
    policy.evaluate(&Request {
        action,
        resource,
        context: &[],
    })
}

proptest! {
    #[test]
    fn a_policy_the_validator_accepts_never_allows_an_object_outside_the_home(doc in policy()) {
        let user = alice();
        prop_assume!(check_static(&doc, &user).is_ok() && simulate(&doc, &user).is_ok());
        let vars = SessionVariables::for_home("/bucket/home/alice", "alice");
        let policy = SessionPolicy::parse(&doc, &vars).unwrap();
        for (action, resource) in OUTSIDE {
            prop_assert_ne!(evaluate(&policy, action, resource), Verdict::Allow, "{} on {} by {}", action, resource, doc);
        }
    }

    #[test]
    fn an_explicit_deny_always_wins(doc in policy(), deny_all in any::<bool>()) {
        let mut value: Value = serde_json::from_str(&doc).unwrap();
        let denied = "arn:aws:s3:::bucket/home/alice/secret/*";
        let deny = if deny_all {
            json!({"Effect": "Deny", "Action": "*", "Resource": "*"})
        } else {
            json!({"Effect": "Deny", "Action": "s3:*", "Resource": denied})
        };
        value["Statement"].as_array_mut().unwrap().push(deny);
        let vars = SessionVariables::for_home("/bucket/home/alice", "alice");
        let policy = SessionPolicy::parse(&value.to_string(), &vars).unwrap();
        for action in ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] {
            prop_assert_ne!(
                evaluate(&policy, action, "arn:aws:s3:::bucket/home/alice/secret/x"),
                Verdict::Allow
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips

fn keyring() -> impl Strategy<Value = Keyring> {
    prop::collection::btree_map(0u32..1000, "[A-Za-z0-9+/=]{1,44}", 1..6).prop_flat_map(|salts| {
        let versions: Vec<u32> = salts.keys().copied().collect();
        (Just(salts), prop::sample::select(versions)).prop_map(|(salts, current)| {
            let salts: BTreeMap<String, String> =
                salts.into_iter().map(|(v, s)| (v.to_string(), s)).collect();
            Keyring::new(current.to_string(), salts).unwrap()
        })
    })
}

fn username() -> impl Strategy<Value = String> {
    "[a-z0-9_][a-z0-9_@.-]{2,40}"
}

fn record() -> impl Strategy<Value = Value> {
    let segment = "[a-z0-9][a-z0-9_-]{0,10}";
    (
        username(),
        prop::collection::vec(segment, 1..4),
        any::<bool>(),
        prop::option::of(prop::collection::vec((any::<[u8; 4]>(), 8u8..=32), 1..4)),
        prop::option::of(prop::sample::subsequence(
            vec!["SFTP", "FTPS", "FTP"],
            1..=3,
        )),
        prop::option::of(1_700_000_000i64..2_000_000_000),
        prop::sample::select(vec!["active", "disabled"]),
        prop::option::of((0u32..70_000, 0u32..70_000)),
        prop::option::of(1u32..400),
    )
        .prop_map(
            |(name, home, chroot, ips, protocols, expires, status, posix, inactive)| {
                let mut v = json!({
                    "username": name,
                    "bucket": "ferry-data",
                    "home": home.join("/"),
                    "iamPolicyArn": HOME_ARN,
                    "status": status,
                });
                if chroot {
                    v["chroot"] = json!(true);
                }
                if let Some(ips) = ips {
                    let cidrs: Vec<String> = ips
                        .iter()
                        .map(|(o, len)| {
                            let mask = u32::MAX << (32 - u32::from(*len));
                            let net = std::net::Ipv4Addr::from(u32::from_be_bytes(*o) & mask);
                            format!("{net}/{len}")
                        })
                        .collect();
                    v["allowedIps"] = json!(cidrs);
                }
                if let Some(p) = protocols {
                    v["protocols"] = json!(p);
                }
                if let Some(e) = expires {
                    v["expiresAt"] = json!(e);
                }
                if let Some((uid, gid)) = posix {
                    v["posixProfile"] = json!({"Uid": uid, "Gid": gid});
                }
                if let Some(days) = inactive {
                    v["disableAfterInactiveDays"] = json!(days);
                }
                v
            },
        )
}

proptest! {
    #[test]
    fn a_keyring_renders_and_reads_back_to_itself(k in keyring()) {
        prop_assert_eq!(Keyring::parse(&k.to_secret_string()).unwrap(), k);
    }

    #[test]
    fn a_record_renders_and_reads_back_to_itself_in_both_forms(v in record()) {
        let user = UserRecord::from_json(v.clone());
        prop_assert!(user.is_ok(), "a well-formed record was refused: {:?} {}", user.err(), v);
        let user = user.unwrap();
        prop_assert!(UserRecord::from_json(user.to_json()).unwrap() == user);
        prop_assert!(UserRecord::from_stored(user.to_stored()).unwrap() == user);
    }

    #[test]
    fn a_request_reads_back_to_what_was_sent_in_both_shapes(
        name in username(),
        password in "\\PC{1,64}",
        protocol in prop::sample::select(vec!["SFTP", "FTPS", "FTP"]),
        server in "s-[0-9a-f]{17}",
        ip in any::<std::net::IpAddr>(),
    ) {
        let direct = json!({
            "username": name, "password": password, "protocol": protocol,
            "serverId": server, "sourceIp": ip.to_string(),
        });
        let encoded: String = url_encode(&name);
        let api = json!({
            "resource": "/servers/{serverId}/users/{username}/config",
            "httpMethod": "GET",
            "headers": {"Password": password},
            "queryStringParameters": {"protocol": protocol, "sourceIp": ip.to_string()},
            "pathParameters": {"serverId": server, "username": encoded},
        });
        for (event, shape) in [(direct, Shape::Direct), (api, Shape::ApiGateway)] {
            let (read_shape, request) = read_event(&event);
            prop_assert_eq!(read_shape, shape);
            let request = request.map_err(|(e, _)| e.code());
            prop_assert!(request.is_ok(), "{:?} refused: {:?}", shape, request.err());
            let request = request.unwrap();
            prop_assert_eq!(request.username.as_str(), name.as_str());
            prop_assert_eq!(request.server_id.as_str(), server.as_str());
            prop_assert_eq!(request.source_ip, ip);
            prop_assert_eq!(request.protocol.to_string(), protocol);
            prop_assert_eq!(request.credential, Credential::Password(Password::parse(password.clone()).unwrap()));
        }
    }
}

/// Percent-encodes a path parameter as API Gateway passes it on.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Whole answers

const RIGHT: &str = "the right password, 2026";
const KEYRING: &str = r#"{"current":"1","salts":{"1":"property-test-salt"}}"#;

fn world() -> (MemoryUsers, MemoryKeyring, MemoryPolicies) {
    let keyring = Keyring::parse(KEYRING).unwrap();
    let hash = hash_password(
        keyring.current_salt(),
        &Password::parse(RIGHT.to_owned()).unwrap(),
    )
    .unwrap();
    let users = MemoryUsers::new();
    users.insert(
        UserRecord::from_json(json!({
            "username": "alice", "passwordHash": hash, "saltVersion": "1",
            "bucket": "ferry-data", "home": "partners/alice", "iamPolicyArn": HOME_ARN,
        }))
        .unwrap(),
    );
    let policies = MemoryPolicies::new();
    policies.insert(
        HOME_ARN,
        PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).unwrap(),
    );
    (users, MemoryKeyring::new(keyring), policies)
}

proptest! {
    // Every case runs Argon2 once: fewer cases than the pure properties.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_login_with_any_password_is_answered_nothing_or_a_full_allow(
        password in prop_oneof![1 => Just(RIGHT.to_owned()), 4 => any::<String>(), 1 => "\\PC{0,3000}"],
        username in prop_oneof![3 => Just("alice".to_owned()), 1 => username()],
    ) {
        let (users, salts, policies) = world();
        let settings = Settings {
            default_role_arn: "arn:aws:iam::123456789012:role/ferry-default".into(),
            salt_cache: Duration::from_secs(60),
            policy_cache: Duration::from_secs(60),
            verified_cache: Duration::from_secs(60),
        };
        let auth = Authenticator::new(&users, &salts, &policies, settings);
        let event = json!({
            "username": username, "password": password, "protocol": "SFTP",
            "serverId": "s-0123456789abcdef0", "sourceIp": "203.0.113.7",
        });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let answer = rt.block_on(auth.handle_event(&event));
        let fields = answer.as_object().unwrap();
        if username == "alice" && password == RIGHT {
            for field in ["Role", "Policy", "HomeDirectory", "HomeDirectoryType"] {
                prop_assert!(fields.contains_key(field), "the allow lacks {}: {}", field, answer);
            }
            prop_assert!(!fields.contains_key("PublicKeys"));
        } else {
            prop_assert!(fields.is_empty(), "a refusal that says something: {}", answer);
        }
    }
}

#[test]
fn the_home_statements_alone_pass_the_validator_so_the_policy_property_is_not_vacuous() {
    assert_eq!(check_static(CANONICAL_SCOPE_DOWN, &alice()), Ok(()));
    assert_eq!(simulate(CANONICAL_SCOPE_DOWN, &alice()), Ok(()));
}
