//! The administration use cases against in-memory ports: what each change writes, what it keeps,
//! and what it refuses.

use serde_json::json;

use super::import::{ImportError, RowDefaults, RowOutcome, read_rows};
use super::*;
use crate::domain::keyring::Keyring;
use crate::domain::password::Verifier;
use crate::domain::protocol::Protocol;
use crate::testing::{MemoryKeyring, MemoryUsers};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";
const POLICY: &str = "arn:aws:iam::123456789012:policy/ferry-scope-down";

fn admin(defaults: Defaults) -> Admin<MemoryUsers, MemoryKeyring> {
    let keyring = Keyring::parse(r#"{"current":"2","salts":{"1":"old-salt","2":"new-salt"}}"#)
        .expect("keyring");
    Admin::new(MemoryUsers::new(), MemoryKeyring::new(keyring), defaults)
}

fn name(s: &str) -> Username {
    Username::parse(s).expect("username")
}

fn changes() -> Changes {
    Changes {
        bucket: Some("ferry-data".into()),
        home: Some("partners/alice".into()),
        policy_arn: Some(POLICY.into()),
        ..Changes::default()
    }
}

fn password(s: &str) -> Password {
    Password::parse(s.to_owned()).expect("password")
}

#[tokio::test]
async fn a_new_user_gets_the_defaults_and_a_hash_under_the_current_salt() {
    let a = admin(Defaults {
        bucket: Some("ferry-local".into()),
        policy_arn: Some(POLICY.into()),
    });
    let alice = name("alice");
    let c = Changes {
        home: Some("alice".into()),
        ..Changes::default()
    };
    let written = a
        .add(
            &alice,
            c,
            PasswordChange::Set(password("s3cret-pass")),
            false,
        )
        .await
        .expect("added");
    assert_eq!(written, Written::Created);
    let user = a.users().record("alice").expect("stored");
    assert_eq!(user.bucket, "ferry-local");
    assert_eq!(user.status, Status::Active);
    assert_eq!(user.salt_version.as_deref(), Some("2"));
    let hash = user.password_hash.expect("a hash");
    let peppered = crate::domain::password::pepper("new-salt", &password("s3cret-pass"));
    assert!(matches!(Verifier::new().verify(&hash, &peppered), Ok(true)));
}

#[tokio::test]
async fn adding_a_user_twice_is_refused_and_the_first_stays() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(&alice, changes(), PasswordChange::Remove, false)
        .await
        .expect("first");
    let again = a
        .add(&alice, changes(), PasswordChange::Remove, false)
        .await;
    assert!(matches!(again, Err(AdminError::AlreadyExists(u)) if u == alice));
}

#[tokio::test]
async fn a_new_user_without_bucket_home_or_policy_is_refused_naming_the_attribute() {
    let a = admin(Defaults::default());
    for (missing, expected) in [
        (
            Changes {
                bucket: None,
                ..changes()
            },
            attr::BUCKET,
        ),
        (
            Changes {
                home: None,
                ..changes()
            },
            attr::HOME,
        ),
        (
            Changes {
                policy_arn: None,
                ..changes()
            },
            attr::IAM_POLICY_ARN,
        ),
    ] {
        let r = a
            .add(&name("bob"), missing, PasswordChange::Remove, false)
            .await;
        assert!(
            matches!(r, Err(AdminError::Required(a)) if a == expected),
            "{r:?}"
        );
    }
    assert!(a.users().is_empty());
}

#[tokio::test]
async fn a_change_the_record_parser_refuses_is_not_written() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(&alice, changes(), PasswordChange::Remove, false)
        .await
        .expect("added");
    let bad = Changes {
        allowed_ips: vec!["10.0.0.0/33".into()],
        ..Changes::default()
    };
    let r = a.add(&alice, bad, PasswordChange::Keep, true).await;
    let Err(AdminError::Record(e)) = r else {
        panic!("expected a record error, got {r:?}");
    };
    assert!(e.to_string().contains("allowedIps"), "{e}");
    assert!(
        a.users()
            .record("alice")
            .expect("kept")
            .allowed_ips
            .is_empty()
    );
}

#[tokio::test]
async fn an_update_keeps_the_password_and_attributes_the_model_does_not_know() {
    let a = admin(Defaults::default());
    let mut stored = UserRecord::from_json(json!({
        "username": "alice", "bucket": "ferry-data", "home": "partners/alice",
        "iamPolicyArn": POLICY, "passwordHash": "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB",
        "saltVersion": "1", "uploadRules": {"maxObjectBytes": 10}, "statusReason": "ok"
    }))
    .expect("record");
    stored.status = Status::Active;
    a.users().insert(stored);
    let c = Changes {
        servers: vec!["s-1".into()],
        ..Changes::default()
    };
    let written = a
        .add(&name("alice"), c, PasswordChange::Keep, true)
        .await
        .expect("updated");
    assert_eq!(written, Written::Updated);
    let user = a.users().record("alice").expect("stored");
    assert_eq!(user.allowed_servers, vec!["s-1".to_owned()]);
    assert_eq!(user.salt_version.as_deref(), Some("1"));
    assert_eq!(user.extra["uploadRules"], json!({"maxObjectBytes": 10}));
    assert_eq!(user.extra["statusReason"], json!("ok"));
}

#[tokio::test]
async fn an_update_that_replaces_the_lists_can_empty_them_and_one_that_does_not_keeps_them() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    let restricted = Changes {
        allowed_ips: vec!["192.0.2.0/24".into()],
        servers: vec!["s-1".into()],
        protocols: vec!["sftp".into()],
        ..changes()
    };
    a.add(
        &alice,
        restricted,
        PasswordChange::Set(password("first-pass")),
        false,
    )
    .await
    .expect("added");
    a.add(&alice, Changes::default(), PasswordChange::Keep, true)
        .await
        .expect("updated");
    let kept = a.users().record("alice").expect("stored");
    assert_eq!(
        kept.allowed_servers,
        vec!["s-1".to_owned()],
        "empty lists keep by default"
    );
    let replace = Changes {
        protocols: vec!["sftp".into()],
        replace_lists: true,
        ..Changes::default()
    };
    a.add(&alice, replace, PasswordChange::Keep, true)
        .await
        .expect("updated");
    let user = a.users().record("alice").expect("stored");
    assert!(user.allowed_ips.is_empty() && user.allowed_servers.is_empty());
    assert_eq!(user.protocols, vec![Protocol::Sftp]);
}

#[tokio::test]
async fn disabling_enabling_a_new_password_and_removal_change_only_what_they_say() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(
        &alice,
        changes(),
        PasswordChange::Set(password("first-pass")),
        false,
    )
    .await
    .expect("added");
    let before = a.users().record("alice").expect("stored");
    a.set_status(&alice, Status::Disabled)
        .await
        .expect("disabled");
    assert_eq!(
        a.users().record("alice").expect("stored").status,
        Status::Disabled
    );
    a.set_status(&alice, Status::Active).await.expect("enabled");
    a.set_password(&alice, &password("second-pass"))
        .await
        .expect("changed");
    let after = a.users().record("alice").expect("stored");
    assert_ne!(after.password_hash, before.password_hash);
    assert_eq!(after.home, before.home);
    a.remove(&alice).await.expect("removed");
    assert!(matches!(
        a.remove(&alice).await,
        Err(AdminError::NoSuchUser(_))
    ));
    assert!(matches!(
        a.set_status(&alice, Status::Active).await,
        Err(AdminError::NoSuchUser(_))
    ));
}

#[tokio::test]
async fn keys_are_added_once_whatever_their_comment_and_removed_by_number_or_fingerprint() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(&alice, changes(), PasswordChange::Remove, false)
        .await
        .expect("added");
    let other = KEY.replace("AAAAIOMq", "AAAAIOMr");
    let added = a
        .add_keys(
            &alice,
            &[
                KEY.to_owned(),
                KEY.replace("alice@laptop", "same-key"),
                other,
            ],
            Some(2_000_000_000),
        )
        .await
        .expect("keys");
    assert_eq!(
        added,
        KeysAdded {
            added: 2,
            skipped: 1
        }
    );
    let keys = a.keys(&alice).await.expect("listed");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].expires_at(), Some(2_000_000_000));
    let fp = fingerprint(KEY).expect("fingerprint");
    a.remove_key(&alice, &KeyRef::Fingerprint(fp.clone()))
        .await
        .expect("removed by fingerprint");
    assert!(matches!(
        a.remove_key(&alice, &KeyRef::Fingerprint(fp)).await,
        Err(AdminError::NoKeyFingerprint { .. })
    ));
    assert!(matches!(
        a.remove_key(&alice, &KeyRef::Number(2)).await,
        Err(AdminError::NoKeyNumber { number: 2, .. })
    ));
    a.remove_key(&alice, &KeyRef::Number(1))
        .await
        .expect("removed by number");
    assert!(a.keys(&alice).await.expect("listed").is_empty());
}

#[tokio::test]
async fn an_import_creates_skips_and_reports_each_bad_row_on_its_own() {
    let a = admin(Defaults::default());
    let csv = format!(
        "username,password,home,chroot,public_keys,expires\n\
         alice,first-pass,alice,yes,,2031-03-01\n\
         bob,,bob,no,{KEY},\n\
         carol,,carol,maybe,,\n\
         dave,,dave,,,\n\
         erin,pass-word,erin,,,2026-02-31\n"
    );
    let defaults = RowDefaults {
        bucket: Some("ferry-data".into()),
        policy_arn: Some(POLICY.into()),
    };
    let rows = read_rows(csv.as_bytes(), &defaults).expect("header");
    let mut keyring = None;
    let mut outcomes = Vec::new();
    for (line, row) in rows {
        let outcome = match row {
            Ok(row) => a.import_row(row, false, &mut keyring).await,
            Err(e) => Err(e),
        };
        outcomes.push((line, outcome.map_err(|e| e.to_string())));
    }
    assert_eq!(outcomes[0], (2, Ok(RowOutcome::Created)));
    assert_eq!(outcomes[1], (3, Ok(RowOutcome::Created)));
    assert_eq!(
        outcomes[2],
        (4, Err("chroot must be true or false, not \"maybe\"".into()))
    );
    assert_eq!(
        outcomes[3],
        (5, Err("a new user needs a password or a public key".into()))
    );
    let (line, erin) = &outcomes[4];
    assert_eq!(*line, 6);
    assert!(
        erin.as_ref().is_err_and(|e| e.starts_with("expires: ")),
        "{erin:?}"
    );
    let alice = a.users().record("alice").expect("alice");
    assert!(alice.chroot);
    assert_eq!(
        alice.expires_at,
        Some(1_930_089_600),
        "2031-03-01T00:00:00Z"
    );
    assert_eq!(a.users().len(), 2);
    // A second run skips what is there.
    let rows = read_rows(csv.as_bytes(), &defaults).expect("header");
    let (_, first) = rows.into_iter().next().expect("a row");
    let again = a
        .import_row(first.expect("row"), false, &mut keyring)
        .await
        .expect("skipped");
    assert_eq!(again, RowOutcome::Skipped);
}

#[test]
fn a_row_with_the_wrong_number_of_fields_is_refused_with_its_own_line_number() {
    // Found by the csv_import fuzz target: such rows were reported as line 0.
    let rows = read_rows(
        "username,home\nalice,alice\nbob\ncarol,carol,extra\n\"dave\",dave\n".as_bytes(),
        &RowDefaults::default(),
    )
    .expect("header");
    let lines: Vec<(u64, bool)> = rows.iter().map(|(l, r)| (*l, r.is_ok())).collect();
    assert_eq!(lines, [(2, true), (3, false), (4, false), (5, true)]);
}

#[test]
fn a_file_with_an_unknown_column_or_no_username_is_refused_whole() {
    let r = read_rows(
        "username,colour\nalice,red\n".as_bytes(),
        &RowDefaults::default(),
    );
    assert!(matches!(r, Err(ImportError::UnknownColumn(c)) if c == "colour"));
    let r = read_rows("home\nalice\n".as_bytes(), &RowDefaults::default());
    assert!(matches!(r, Err(ImportError::NoUsernameColumn)));
}

#[tokio::test]
async fn an_invalid_user_is_enabled_only_once_the_record_passes_the_validators_checks() {
    use crate::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
    use crate::testing::MemoryPolicies;
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(&alice, changes(), PasswordChange::Remove, false)
        .await
        .expect("added");
    a.set_status(&alice, Status::Invalid).await.expect("marked");
    let policies = MemoryPolicies::new();
    // A policy that lets every user reach every bucket fails the checks.
    let too_broad = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    policies.insert(POLICY, PolicyDocument::from_json(too_broad).expect("json"));
    let refused = a.enable(&alice, &policies, &RecordRules::default()).await;
    assert!(
        matches!(refused, Err(AdminError::FailsValidation { .. })),
        "{refused:?}"
    );
    assert_eq!(
        a.users().record("alice").expect("kept").status,
        Status::Invalid
    );
    policies.insert(
        POLICY,
        PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).expect("json"),
    );
    a.enable(&alice, &policies, &RecordRules::default())
        .await
        .expect("enabled");
    let user = a.users().record("alice").expect("kept");
    assert_eq!(user.status, Status::Active);
    assert_eq!(user.extra["statusReason"], json!("ok"));
}

// ---- The account lifecycle's dates and limits ----

/// Whether `t` is the clock's reading of a moment ago.
fn just_now(t: Option<i64>) -> bool {
    let now = crate::app::now_epoch();
    t.is_some_and(|t| (now - 5..=now).contains(&t))
}

#[tokio::test]
async fn add_and_passwd_note_when_the_password_was_set_and_a_new_user_when_they_were_created() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(
        &alice,
        changes(),
        PasswordChange::Set(password("first-pass")),
        false,
    )
    .await
    .expect("added");
    let user = a.users().record("alice").expect("stored");
    assert!(just_now(user.password_changed_at), "{user:?}");
    assert!(just_now(user.enabled_at), "created now");
    assert_eq!(user.last_login_at, None, "no login yet");

    // Dates from long ago, then each change: only a new password moves passwordChangedAt.
    let mut old = user;
    old.password_changed_at = Some(1);
    old.enabled_at = Some(1);
    old.last_login_at = Some(1);
    a.users().insert(old);
    let update = Changes {
        home: Some("elsewhere".into()),
        ..Changes::default()
    };
    a.add(&alice, update, PasswordChange::Keep, true)
        .await
        .expect("updated");
    let kept = a.users().record("alice").expect("stored");
    assert_eq!(
        (
            kept.password_changed_at,
            kept.enabled_at,
            kept.last_login_at
        ),
        (Some(1), Some(1), Some(1)),
        "an update keeps every date"
    );
    a.set_password(&alice, &password("second-pass"))
        .await
        .expect("changed");
    let changed = a.users().record("alice").expect("stored");
    assert!(just_now(changed.password_changed_at));
    assert_eq!(
        (changed.enabled_at, changed.last_login_at),
        (Some(1), Some(1))
    );
    // A new password through `add --update` counts as well.
    let mut old = changed;
    old.password_changed_at = Some(1);
    a.users().insert(old);
    a.add(
        &alice,
        Changes::default(),
        PasswordChange::Set(password("third-pass")),
        true,
    )
    .await
    .expect("updated");
    assert!(just_now(
        a.users()
            .record("alice")
            .expect("stored")
            .password_changed_at
    ));
}

#[tokio::test]
async fn a_keys_only_user_has_no_password_date_but_a_creation_date() {
    let a = admin(Defaults::default());
    let bob = name("bob");
    let c = Changes {
        keys: vec![KEY.into()],
        ..changes()
    };
    a.add(&bob, c, PasswordChange::Remove, false)
        .await
        .expect("added");
    let user = a.users().record("bob").expect("stored");
    assert_eq!(user.password_changed_at, None);
    assert!(just_now(user.enabled_at));
}

#[tokio::test]
async fn enabling_a_user_restarts_their_inactivity_clock() {
    use crate::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
    use crate::domain::policy_checks::RecordRules;
    use crate::testing::MemoryPolicies;
    let a = admin(Defaults::default());
    let alice = name("alice");
    a.add(&alice, changes(), PasswordChange::Remove, false)
        .await
        .expect("added");
    let mut old = a.users().record("alice").expect("stored");
    old.enabled_at = Some(1);
    old.last_login_at = Some(2);
    a.users().insert(old);
    let policies = MemoryPolicies::new();
    policies.insert(
        POLICY,
        PolicyDocument::from_json(CANONICAL_SCOPE_DOWN).expect("json"),
    );
    a.enable(&alice, &policies, &RecordRules::default())
        .await
        .expect("enabled");
    let user = a.users().record("alice").expect("stored");
    assert!(just_now(user.enabled_at));
    assert_eq!(user.last_login_at, Some(2), "no login is made up");
}

#[tokio::test]
async fn a_users_own_limits_are_set_kept_and_removed() {
    let a = admin(Defaults::default());
    let alice = name("alice");
    let c = Changes {
        disable_after_inactive_days: Some(Some(30)),
        password_max_age_days: Some(Some(0)),
        ..changes()
    };
    a.add(&alice, c, PasswordChange::Remove, false)
        .await
        .expect("added");
    let user = a.users().record("alice").expect("stored");
    assert_eq!(
        (user.disable_after_inactive_days, user.password_max_age_days),
        (Some(30), Some(0))
    );
    a.add(&alice, Changes::default(), PasswordChange::Keep, true)
        .await
        .expect("updated");
    let kept = a.users().record("alice").expect("stored");
    assert_eq!(kept.disable_after_inactive_days, Some(30), "kept");
    let back_to_default = Changes {
        disable_after_inactive_days: Some(None),
        ..Changes::default()
    };
    a.add(&alice, back_to_default, PasswordChange::Keep, true)
        .await
        .expect("updated");
    let user = a.users().record("alice").expect("stored");
    assert_eq!(
        (user.disable_after_inactive_days, user.password_max_age_days),
        (None, Some(0))
    );
}

#[tokio::test]
async fn an_import_notes_creation_and_password_dates() {
    let a = admin(Defaults::default());
    let csv = format!("username,password,home,public_keys\nann,ann-pass,ann,\nben,,ben,{KEY}\n");
    let defaults = RowDefaults {
        bucket: Some("ferry-data".into()),
        policy_arn: Some(POLICY.into()),
    };
    let mut keyring = None;
    for (_, row) in read_rows(csv.as_bytes(), &defaults).expect("header") {
        a.import_row(row.expect("row"), false, &mut keyring)
            .await
            .expect("imported");
    }
    let ann = a.users().record("ann").expect("ann");
    assert!(just_now(ann.password_changed_at) && just_now(ann.enabled_at));
    let ben = a.users().record("ben").expect("ben");
    assert!(ben.password_changed_at.is_none() && just_now(ben.enabled_at));
}

#[tokio::test]
async fn a_user_is_handed_to_a_directory_source_and_back_with_the_rest_of_the_record_kept() {
    let a = admin(Defaults {
        bucket: Some("ferry-local".into()),
        policy_arn: Some(POLICY.into()),
    });
    let alice = name("alice");
    let c = Changes {
        home: Some("alice".into()),
        ..Changes::default()
    };
    a.add(&alice, c, PasswordChange::Remove, false)
        .await
        .expect("added");
    let corp = crate::domain::directory::SourceName::parse("corp").expect("a source name");
    a.set_identity_source(&alice, Some(&corp))
        .await
        .expect("set");
    let user = a.users().record("alice").expect("stored");
    assert_eq!(user.identity_source(), Some("corp"));
    assert_eq!(user.home_prefix, "alice");
    a.set_identity_source(&alice, None).await.expect("cleared");
    let user = a.users().record("alice").expect("stored");
    assert_eq!(user.identity_source(), None);
    assert!(matches!(
        a.set_identity_source(&name("nobody"), Some(&corp)).await,
        Err(AdminError::NoSuchUser(_))
    ));
}
