//! The defender on DynamoDB Local: counts that concurrent writers never lose, bans shared by
//! every auth instance, a right password from a good source let in while another source is
//! banned for the same user, and the `ferry defender` command that lists and lifts them.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use ferry_core::adapters::aws::defender::DynamoFailureStore;
use ferry_core::app::now_epoch;
use ferry_core::domain::defender::{DefenderConfig, DefenderKey, Lock, Rule};
use ferry_core::domain::source::SourceKey;
use ferry_core::ports::FailureStore;
use ferry_tests::Fixture;
use ferry_tests::fixture::{create_defender_table, direct_event, merge, queue_with_arn, unique};
use ferry_tests::runtime_api::workspace_binary;
use serde_json::{Value, json};

async fn table(f: &Fixture) -> Result<(String, DynamoFailureStore)> {
    let name = unique("defender");
    create_defender_table(&f.ddb, &name).await?;
    Ok((
        name.clone(),
        DynamoFailureStore::new(f.ddb.clone(), Some(name)),
    ))
}

fn allowed(answer: &Value) -> bool {
    answer.get("Role").is_some()
}

fn from(event: Value, source: &str) -> Value {
    merge(event, json!({"sourceIp": source}))
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_failures_on_one_key_are_all_counted_and_lock_it_once() -> Result<()> {
    let f = Fixture::new().await?;
    let (_, store) = table(&f).await?;
    let rule = Rule {
        threshold: 30,
        window: Duration::from_secs(900),
        lock: Some(Lock {
            first: Duration::from_secs(900),
            growth: 2,
            cap: Duration::from_secs(86_400),
            repeat_within: Duration::from_secs(86_400),
        }),
    };
    let key = DefenderKey::Source(SourceKey::parse("198.51.100.7").unwrap());
    let now = now_epoch();
    let writers: Vec<_> = (0..40)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { store.record_failure(&key, 1, &rule, now).await })
        })
        .collect();
    for w in writers {
        w.await??;
    }
    let tally = store.tallies(std::slice::from_ref(&key)).await?[0].unwrap();
    assert_eq!(tally.score, 40, "no count lost among 40 concurrent writers");
    assert_eq!(
        tally.strikes, 1,
        "locked once, by the writer that reached 30"
    );
    assert_eq!(tally.until, now + 900);
    let locked = store.locked(now).await?;
    assert_eq!(locked.len(), 1);
    assert!(store.clear(&key).await?);
    assert!(store.locked(now).await?.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ban_made_by_one_instance_holds_in_another_and_spares_a_good_source() -> Result<()> {
    let f = Fixture::new().await?;
    let (name, store) = table(&f).await?;
    f.put_user("alice", Some("right-pw"), json!({})).await?;
    let instance = || {
        f.authenticator()
            .with_defender(store.clone(), DefenderConfig::default())
    };
    let (a, b) = (instance(), instance());
    let attacker = "198.51.100.7";
    // Ten unknown users weigh 20: the source's threshold, so it is banned.
    for i in 0..10 {
        let answer = a
            .handle_event(&from(
                direct_event(&format!("nobody{i}"), Some("x")),
                attacker,
            ))
            .await;
        assert_eq!(answer, json!({}));
    }
    // The other instance sees the ban: even alice's right password is refused from there,
    // with the same empty answer.
    let answer = b
        .handle_event(&from(direct_event("alice", Some("right-pw")), attacker))
        .await;
    assert_eq!(answer, json!({}));
    // From a source that behaved, alice gets in.
    let answer = b
        .handle_event(&from(
            direct_event("alice", Some("right-pw")),
            "203.0.113.9",
        ))
        .await;
    assert!(allowed(&answer), "{answer}");
    // The operator sees the ban and lifts it with the command.
    let ferry = |args: &[&str]| {
        Command::new(workspace_binary("ferry").unwrap())
            .args(args)
            .args(["--defender-table", &name])
            .output()
            .unwrap()
    };
    let listed = ferry(&["defender", "list", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("source#198.51.100.7"), "{listed}");
    assert!(listed.contains("\"standing\":\"banned\""), "{listed}");
    let lifted = ferry(&["defender", "unban", attacker]);
    assert!(
        lifted.status.success(),
        "{}",
        String::from_utf8_lossy(&lifted.stderr)
    );
    let answer = a
        .handle_event(&from(direct_event("alice", Some("right-pw")), attacker))
        .await;
    assert!(allowed(&answer), "unbanned: {answer}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn five_wrong_passwords_throttle_the_pair_and_unlock_lifts_it() -> Result<()> {
    let f = Fixture::new().await?;
    let (name, store) = table(&f).await?;
    f.put_user("bob", Some("right-pw"), json!({})).await?;
    let auth = f
        .authenticator()
        .with_defender(store.clone(), DefenderConfig::default());
    let source = "2001:db8:7:7::1";
    for _ in 0..5 {
        let answer = auth
            .handle_event(&from(direct_event("bob", Some("wrong")), source))
            .await;
        assert_eq!(answer, json!({}));
    }
    // Throttled at that source, even another address of the same /64 with the right password.
    let answer = auth
        .handle_event(&from(
            direct_event("bob", Some("right-pw")),
            "2001:db8:7:7::99",
        ))
        .await;
    assert_eq!(answer, json!({}));
    let out = Command::new(workspace_binary("ferry").unwrap())
        .args(["defender", "unlock", "bob", "--defender-table", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cleared pair#bob#2001:db8:7:7::/64"));
    let answer = auth
        .handle_event(&from(direct_event("bob", Some("right-pw")), source))
        .await;
    assert!(allowed(&answer), "unlocked: {answer}");
    Ok(())
}

/// An EventBridge bus with a rule that sends ferry's events to a new queue: (bus, queue URL).
async fn bus_with_queue(f: &Fixture) -> Result<(String, String)> {
    let events = aws_sdk_eventbridge::Client::new(&f.sdk);
    let bus = unique("audit");
    events.create_event_bus().name(&bus).send().await?;
    let (queue, queue_arn) = queue_with_arn(f, "audit-q").await?;
    let rule = unique("ferry-events");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["ferry"]}"#)
        .send()
        .await?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(queue_arn)
                .build()?,
        )
        .send()
        .await?;
    Ok((bus, queue))
}

/// Every message body in `queue`, waiting until `want` arrived or 15 s passed.
async fn drain(f: &Fixture, queue: &str, want: usize) -> Result<Vec<String>> {
    let sqs = aws_sdk_sqs::Client::new(&f.sdk);
    let mut bodies = Vec::new();
    let until = std::time::Instant::now() + Duration::from_secs(15);
    while bodies.len() < want && std::time::Instant::now() < until {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for m in out.messages() {
            bodies.extend(m.body().map(str::to_owned));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(queue)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
        }
    }
    Ok(bodies)
}

#[tokio::test(flavor = "multi_thread")]
async fn login_decisions_and_bans_arrive_as_events_through_eventbridge_with_no_secret() -> Result<()>
{
    use ferry_core::adapters::aws::eventbridge::EventBridgePublisher;
    use ferry_core::app::audit::BackgroundAudit;
    let f = Fixture::new().await?;
    let (_, store) = table(&f).await?;
    let (bus, queue) = bus_with_queue(&f).await?;
    f.put_user("carol", Some("carols-right-pw"), json!({}))
        .await?;
    let audit = std::sync::Arc::new(BackgroundAudit::start(EventBridgePublisher::new(
        aws_sdk_eventbridge::Client::new(&f.sdk),
        bus,
    )));
    let auth = f
        .authenticator()
        .with_defender(store, DefenderConfig::default())
        .with_audit(audit.clone());
    assert!(allowed(
        &auth
            .handle_event(&direct_event("carol", Some("carols-right-pw")))
            .await
    ));
    let attacker = "198.51.100.99";
    for i in 0..10 {
        auth.handle_event(&from(
            direct_event(&format!("ghost{i}"), Some("a-guessed-pw")),
            attacker,
        ))
        .await;
    }
    // 11 logins and one ban.
    let bodies = drain(&f, &queue, 12).await?;
    assert_eq!(bodies.len(), 12, "{bodies:#?}");
    let events: Vec<Value> = bodies
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let logins: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "ferry login")
        .collect();
    assert_eq!(logins.len(), 11);
    assert!(logins.iter().any(|e| e["detail"]["outcome"] == "allow"
        && e["detail"]["username"] == "carol"
        && e["detail"]["reason"] == "ok"));
    assert_eq!(
        logins
            .iter()
            .filter(|e| e["detail"]["reason"] == "unknown_user")
            .count(),
        10
    );
    let bans: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "ferry defender")
        .collect();
    assert_eq!(bans.len(), 1);
    assert_eq!(bans[0]["detail"]["action"], "banned");
    assert_eq!(bans[0]["detail"]["key"], "source#198.51.100.99");
    assert_eq!(bans[0]["source"], "ferry");
    for body in &bodies {
        for secret in [
            "carols-right-pw",
            "a-guessed-pw",
            "$argon2id$",
            "current-salt",
        ] {
            assert!(!body.contains(secret), "an event holds {secret:?}: {body}");
        }
    }
    assert_eq!(audit.dropped(), 0);
    Ok(())
}

#[tokio::test]
async fn the_ferry_command_lists_and_lifts_locks_in_the_data_folder_and_publishes_each_lift() {
    use ferry_core::adapters::local::store::LocalStore;
    use ferry_core::domain::username::Username;
    let dir = std::env::temp_dir().join(unique("defender-local"));
    let store = LocalStore::open(&dir).unwrap();
    let pair = DefenderKey::Pair(
        Username::parse("dora").unwrap(),
        SourceKey::parse("203.0.113.50").unwrap(),
    );
    let rule = DefenderConfig::default().pair;
    let now = now_epoch();
    for _ in 0..5 {
        store.record_failure(&pair, 1, &rule, now).await.unwrap();
    }
    drop(store);
    let ferry = |args: &[&str]| {
        Command::new(workspace_binary("ferry").unwrap())
            .arg("--local")
            .arg(&dir)
            .args(args)
            .env_remove("AUDIT_EVENT_BUS")
            .output()
            .unwrap()
    };
    let listed = ferry(&["defender", "list", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("pair#dora#203.0.113.50"), "{listed}");
    assert!(listed.contains("\"standing\":\"throttled\""), "{listed}");
    let out = ferry(&["defender", "unlock", "dora"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = ferry(&["defender", "list", "--json"]);
    assert!(String::from_utf8_lossy(&listed.stdout).trim().is_empty());
    let audit = std::fs::read_to_string(dir.join("audit.jsonl")).unwrap();
    assert!(
        audit.contains("\"action\":\"lifted\"") && audit.contains("pair#dora#203.0.113.50"),
        "{audit}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
