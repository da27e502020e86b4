//! The policy validator on the records DynamoDB Local's stream really produces: verdicts written
//! back conditionally, no loop on its own writes, alerts delivered through SNS to an SQS queue,
//! and batch failures naming exactly the records to retry.

#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use anyhow::Result;
use ferry_core::adapters::aws::dynamodb::DynamoUserStore;
use ferry_core::adapters::aws::iam::IamPolicySource;
use ferry_core::adapters::aws::sns::SnsAlerts;
use ferry_core::app::verdicts::{RecordOutcome, process_batch};
use ferry_core::domain::policy::{CANONICAL_SCOPE_DOWN, PolicyDocument};
use ferry_core::domain::policy_checks::RecordRules;
use ferry_core::ports::{PolicySource, StoreError};
use ferry_tests::Fixture;
use ferry_tests::fixture::{received, topic_with_queue};
use ferry_tests::stream::StreamReader;
use serde_json::{Value, json};

/// The validator's dependencies, as the Lambda wires them.
struct Validator {
    users: DynamoUserStore,
    policies: IamPolicySource,
    alerts: SnsAlerts,
}

impl Validator {
    fn new(f: &Fixture, topic: Option<String>) -> Self {
        Self {
            users: DynamoUserStore::new(f.ddb.clone(), &f.table),
            policies: IamPolicySource::new(f.iam.clone()),
            alerts: SnsAlerts::new(aws_sdk_sns::Client::new(&f.sdk), topic),
        }
    }

    async fn run(&self, records: Vec<Value>) -> (Value, Vec<RecordOutcome>) {
        self.run_with(&self.policies, records).await
    }

    async fn run_with<P: PolicySource>(
        &self,
        policies: &P,
        records: Vec<Value>,
    ) -> (Value, Vec<RecordOutcome>) {
        process_batch(
            &json!({ "Records": records }),
            policies,
            &self.users,
            &self.alerts,
            &RecordRules::default(),
            1_800_000_000,
        )
        .await
        .unwrap()
    }
}

async fn item(f: &Fixture, username: &str) -> Value {
    f.item(username).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_valid_user_is_marked_active_and_the_validators_own_write_triggers_nothing() -> Result<()>
{
    let f = Fixture::new().await?;
    let mut stream = StreamReader::enable(&f.sdk, &f.table).await?;
    let v = Validator::new(&f, None);
    f.put_user("alice", Some("pw"), json!({})).await?;
    let (answer, outcomes) = v.run(stream.next_records().await?).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(
        outcomes,
        [RecordOutcome::Valid {
            username: "alice".into()
        }]
    );
    let stored = item(&f, "alice").await;
    assert_eq!(stored["status"], "active");
    assert_eq!(stored["statusReason"], "ok");
    assert_eq!(stored["validatedAt"], 1_800_000_000);
    // The stream now holds the validator's own write: processing it changes nothing.
    let (_, outcomes) = v.run(stream.next_records().await?).await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Skipped("no validated field changed")]
    );
    assert!(stream.next_records().await?.is_empty(), "no further write");
    // A password change is not validated either; a removal is nothing to do.
    f.put_user(
        "alice",
        Some("new-pw"),
        json!({"status": "active", "statusReason": "ok", "validatedAt": 1_800_000_000}),
    )
    .await?;
    f.ddb
        .delete_item()
        .table_name(&f.table)
        .key(
            "username",
            aws_sdk_dynamodb::types::AttributeValue::S("alice".into()),
        )
        .send()
        .await?;
    let (_, outcomes) = v.run(stream.next_records().await?).await;
    assert_eq!(
        outcomes,
        [
            RecordOutcome::Skipped("no validated field changed"),
            RecordOutcome::Skipped("removed")
        ]
    );
    Ok(())
}

#[tokio::test]
async fn bad_policies_mark_users_invalid_with_a_reason_and_alert_through_sns() -> Result<()> {
    let f = Fixture::new().await?;
    let mut stream = StreamReader::enable(&f.sdk, &f.table).await?;
    let (topic, queue) = topic_with_queue(&f).await?;
    let v = Validator::new(&f, Some(topic));
    let wildcard = f
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .await?;
    let read_only = f
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::${transfer:HomeBucket}","Condition":{"StringLike":{"s3:prefix":["${transfer:HomeFolder}/*","${transfer:HomeFolder}"]}}},{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::${transfer:HomeDirectory}/*"}]}"#)
        .await?;
    let cases = [
        ("wanda", wildcard, "every S3 action"),
        ("ruth", read_only, "PutObject is refused inside the home"),
        (
            "nina",
            "arn:aws:iam::123456789012:policy/no-such-policy".to_owned(),
            "no existing policy",
        ),
    ];
    for (user, arn, _) in &cases {
        f.put_user(user, Some("pw"), json!({"iamPolicyArn": arn}))
            .await?;
    }
    let (answer, outcomes) = v.run(stream.next_records().await?).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    for ((user, _, why), outcome) in cases.iter().zip(&outcomes) {
        let RecordOutcome::Invalid { username, reason } = outcome else {
            panic!("{user}: {outcome:?}");
        };
        assert_eq!(username, user);
        assert!(reason.contains(why), "{user}: {reason}");
        let stored = item(&f, user).await;
        assert_eq!(stored["status"], "invalid");
        assert_eq!(stored["statusReason"].as_str(), Some(reason.as_str()));
        assert_eq!(
            stored["iamPolicyArn"],
            json!(cases.iter().find(|c| c.0 == *user).unwrap().1),
            "the policy is never rewritten"
        );
    }
    // An invalid user is refused at login.
    assert_eq!(
        f.authenticator()
            .handle_event(&ferry_tests::fixture::direct_event("wanda", Some("pw")))
            .await,
        json!({})
    );
    let mut alerts = Vec::new();
    for _ in 0..5 {
        alerts.extend(received(&f, &queue).await?);
        if alerts.len() >= 3 {
            break;
        }
    }
    assert_eq!(alerts.len(), 3, "{alerts:?}");
    for envelope in &alerts {
        let message: Value = serde_json::from_str(envelope["Message"].as_str().unwrap())?;
        let user = message["user"].as_str().unwrap();
        assert!(cases.iter().any(|c| c.0 == user));
        assert!(!message["sequenceNumber"].as_str().unwrap().is_empty());
        assert_eq!(envelope["MessageAttributes"]["verdict"]["Value"], "invalid");
        assert_eq!(envelope["MessageAttributes"]["user"]["Value"], user);
    }
    // Fixing the policy makes the user active again.
    f.put_user("wanda", Some("pw"), json!({"status": "invalid"}))
        .await?;
    let (_, outcomes) = v.run(stream.next_records().await?).await;
    assert!(
        outcomes.contains(&RecordOutcome::Valid {
            username: "wanda".into()
        }),
        "{outcomes:?}"
    );
    assert_eq!(item(&f, "wanda").await["status"], "active");
    Ok(())
}

#[tokio::test]
async fn an_edit_made_after_the_record_was_read_wins_over_the_verdict() -> Result<()> {
    let f = Fixture::new().await?;
    let mut stream = StreamReader::enable(&f.sdk, &f.table).await?;
    let v = Validator::new(&f, None);
    let bad = f
        .policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#)
        .await?;
    f.put_user("olga", Some("pw"), json!({"iamPolicyArn": bad}))
        .await?;
    let first = stream.next_records().await?;
    // The operator fixes the policy before the validator gets to the first change.
    f.put_user("olga", Some("pw"), json!({})).await?;
    let (_, outcomes) = v.run(first).await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Superseded {
            username: "olga".into()
        }]
    );
    assert!(
        item(&f, "olga").await.get("status").is_none(),
        "nothing written"
    );
    // The newer change then gets its own verdict.
    let (_, outcomes) = v.run(stream.next_records().await?).await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Valid {
            username: "olga".into()
        }]
    );
    Ok(())
}

/// IAM as a transient fault makes it (unavailable for one policy ARN), which moto cannot do.
struct FlakyIam<'a> {
    real: &'a IamPolicySource,
    down_for: String,
}

impl PolicySource for FlakyIam<'_> {
    async fn load_policy(&self, arn: &str) -> Result<PolicyDocument, StoreError> {
        if arn == self.down_for {
            return Err(StoreError::Unavailable {
                what: "IAM",
                source: "throttled".into(),
            });
        }
        self.real.load_policy(arn).await
    }
}

#[tokio::test]
async fn a_batch_with_one_transient_failure_reports_exactly_that_record() -> Result<()> {
    let f = Fixture::new().await?;
    let mut stream = StreamReader::enable(&f.sdk, &f.table).await?;
    let v = Validator::new(&f, None);
    let flaky = f.policy(CANONICAL_SCOPE_DOWN).await?;
    f.put_user("amy", Some("pw"), json!({})).await?;
    f.put_user("ben", Some("pw"), json!({"iamPolicyArn": flaky}))
        .await?;
    f.put_user("cal", Some("pw"), json!({})).await?;
    let mut records = stream.next_records().await?;
    let ben_sequence = records[1]["dynamodb"]["SequenceNumber"].clone();
    // Malformed records are logged and skipped, never retried.
    records.push(json!({"eventName": "MODIFY"}));
    records.push(json!({"eventName": "INSERT", "dynamodb": {"NewImage": {"home": {"S": "x"}}, "SequenceNumber": "9"}}));
    let iam = FlakyIam {
        real: &v.policies,
        down_for: flaky,
    };
    let (answer, outcomes) = v.run_with(&iam, records).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": ben_sequence}]})
    );
    assert!(matches!(outcomes[1], RecordOutcome::Transient(_)));
    assert!(matches!(outcomes[3], RecordOutcome::Malformed(_)));
    assert!(matches!(outcomes[4], RecordOutcome::Malformed(_)));
    assert_eq!(item(&f, "amy").await["status"], "active");
    assert_eq!(item(&f, "cal").await["status"], "active");
    assert!(item(&f, "ben").await.get("status").is_none());
    // An event with no Records at all is refused as a whole.
    assert!(
        process_batch(
            &json!({"nothing": []}),
            &v.policies,
            &v.users,
            &v.alerts,
            &RecordRules::default(),
            0
        )
        .await
        .is_err()
    );
    Ok(())
}

#[tokio::test]
async fn a_user_disabled_while_being_validated_stays_disabled() -> Result<()> {
    let f = Fixture::new().await?;
    let mut stream = StreamReader::enable(&f.sdk, &f.table).await?;
    let v = Validator::new(&f, None);
    f.put_user("alice", Some("pw"), json!({})).await?;
    let records = stream.next_records().await?;
    // The operator disables alice after the stream record was taken, before the verdict lands.
    f.ddb
        .update_item()
        .table_name(&f.table)
        .key(
            "username",
            aws_sdk_dynamodb::types::AttributeValue::S("alice".into()),
        )
        .update_expression("SET #s = :d")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(
            ":d",
            aws_sdk_dynamodb::types::AttributeValue::S("disabled".into()),
        )
        .send()
        .await?;
    let (_, outcomes) = v.run(records).await;
    assert_eq!(
        outcomes,
        [RecordOutcome::Superseded {
            username: "alice".into()
        }]
    );
    assert_eq!(item(&f, "alice").await["status"], "disabled");
    Ok(())
}
