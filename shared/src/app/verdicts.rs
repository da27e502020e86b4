//! The policy-validator function's logic: a batch of DynamoDB stream records of the users table
//! in, one verdict per relevant change written back (conditionally), an alert per invalid user,
//! and the sequence numbers of transient failures out, so that only those are retried.
//!
//! Only changes to the fields that decide what a login may reach are validated; the verdict's own
//! fields (`status`, `statusReason`, `validatedAt`) are not among them, so the validator's writes
//! never make it run again.

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::adapters::aws::dynamodb::image_to_json;
use crate::domain::policy_checks::{RecordRules, check_record, check_user};
use crate::domain::user::UserRecord;
use crate::ports::error_chain;
use crate::ports::{Alerts, PolicySource, StoreError, VerdictWriter};

/// The attributes whose change is validated.
pub const VALIDATED_FIELDS: [&str; 9] = [
    "iamPolicyArn",
    "roleArn",
    "bucket",
    "home",
    "chroot",
    "homeDirectoryType",
    "homeDirectoryDetails",
    "allowedIps",
    "posixProfile",
];

/// What happened to one stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Nothing to do (a removal, or no validated field changed).
    Skipped(&'static str),
    Valid {
        username: String,
    },
    Invalid {
        username: String,
        reason: String,
    },
    /// The record changed again before the verdict was written: the newer change's own stream
    /// record will be validated.
    Superseded {
        username: String,
    },
    /// Not a usable stream record: logged, not retried.
    Malformed(String),
    /// A dependency failed (IAM, DynamoDB, SNS): retried through `batchItemFailures`.
    Transient(String),
}

/// Validates one stream record.
pub async fn process_record<P, W, A>(
    record: &Value,
    policies: &P,
    writer: &W,
    alerts: &A,
    rules: &RecordRules,
    now: i64,
) -> RecordOutcome
where
    P: PolicySource,
    W: VerdictWriter,
    A: Alerts,
{
    let ddb = record.get("dynamodb");
    match record.get("eventName").and_then(Value::as_str) {
        Some("REMOVE") => return RecordOutcome::Skipped("removed"),
        Some("INSERT" | "MODIFY") => {}
        _ => return RecordOutcome::Malformed("eventName is not INSERT, MODIFY or REMOVE".into()),
    }
    let Some(new) = ddb
        .and_then(|d| d.get("NewImage"))
        .and_then(Value::as_object)
    else {
        return RecordOutcome::Malformed(
            "no NewImage (the stream must be NEW_AND_OLD_IMAGES)".into(),
        );
    };
    let old = ddb
        .and_then(|d| d.get("OldImage"))
        .and_then(Value::as_object);
    let changed = match old {
        None => true,
        Some(old) => VALIDATED_FIELDS.iter().any(|f| old.get(*f) != new.get(*f)),
    };
    if !changed {
        return RecordOutcome::Skipped("no validated field changed");
    }
    let Some(username) = new
        .get("username")
        .and_then(|u| u.get("S"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return RecordOutcome::Malformed("NewImage has no string username".into());
    };
    let verdict = match judge(new, policies, rules).await {
        Ok(v) => v,
        Err(e) => return RecordOutcome::Transient(error_chain(&e)),
    };
    let seen: Vec<(&'static str, Option<Value>)> = VALIDATED_FIELDS
        .iter()
        .map(|f| (*f, new.get(*f).cloned()))
        .collect();
    // An administrator's `disabled` stands; the validator only moves between active and invalid.
    let disabled = new
        .get("status")
        .and_then(|s| s.get("S"))
        .and_then(Value::as_str)
        == Some("disabled");
    let (status, reason) = match &verdict {
        Ok(()) => ("active", "ok".to_owned()),
        Err(reason) => ("invalid", reason.clone()),
    };
    let written = writer
        .write_verdict(
            &username,
            &seen,
            (!disabled).then_some(status),
            &reason,
            now,
        )
        .await;
    match written {
        Ok(true) => {}
        Ok(false) => {
            info!(
                username,
                "verdict not written: the record changed meanwhile"
            );
            return RecordOutcome::Superseded { username };
        }
        Err(e) => return RecordOutcome::Transient(error_chain(&e)),
    }
    match verdict {
        Ok(()) => {
            info!(username, "user validated");
            RecordOutcome::Valid { username }
        }
        Err(reason) => {
            warn!(username, reason, "user marked invalid");
            let sequence = ddb
                .and_then(|d| d.get("SequenceNumber"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let message = json!({
                "user": username,
                "reason": reason,
                "sequenceNumber": sequence,
                "policyArn": new.get("iamPolicyArn").and_then(|a| a.get("S")),
            });
            if let Err(e) = alerts
                .alert(
                    "ferry: a user failed validation",
                    &message,
                    &[("user", &username), ("verdict", "invalid")],
                )
                .await
            {
                // The verdict is written; the retry writes it again and sends the alert.
                return RecordOutcome::Transient(error_chain(&e));
            }
            RecordOutcome::Invalid { username, reason }
        }
    }
}

/// `Ok(Ok(()))` valid, `Ok(Err(reason))` invalid, `Err` a dependency failed.
async fn judge<P: PolicySource>(
    image: &Map<String, Value>,
    policies: &P,
    rules: &RecordRules,
) -> Result<Result<(), String>, StoreError> {
    match image_to_json(image) {
        Ok(plain) => judge_record(plain, policies, rules).await,
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Every check on a record in the data model's plain JSON (also `ferry user validate`'s):
/// `Ok(Err(reason))` when it is invalid, `Err` when a dependency failed.
pub async fn judge_record<P: PolicySource>(
    record: Value,
    policies: &P,
    rules: &RecordRules,
) -> Result<Result<(), String>, StoreError> {
    let user = match UserRecord::from_json(record) {
        Ok(u) => u,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if let Err(reason) = check_record(&user, rules) {
        return Ok(Err(reason));
    }
    match policies.load_policy(&user.policy_arn).await {
        Ok(doc) => Ok(check_user(&user, &doc, rules)),
        Err(StoreError::NotFound(_)) => Ok(Err("iamPolicyArn names no existing policy".into())),
        Err(StoreError::Malformed(m)) => Ok(Err(format!("policy is unusable: {m}"))),
        Err(e) => Err(e),
    }
}

/// A whole stream batch: `{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}…]}` for
/// the records that failed transiently. A malformed event (no `Records`) fails as a whole.
pub async fn process_batch<P, W, A>(
    event: &Value,
    policies: &P,
    writer: &W,
    alerts: &A,
    rules: &RecordRules,
    now: i64,
) -> Result<(Value, Vec<RecordOutcome>), String>
where
    P: PolicySource,
    W: VerdictWriter,
    A: Alerts,
{
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or("the event has no Records list")?;
    let mut failures = Vec::new();
    let mut outcomes = Vec::with_capacity(records.len());
    for record in records {
        let outcome = process_record(record, policies, writer, alerts, rules, now).await;
        match &outcome {
            RecordOutcome::Transient(why) => {
                let sequence = record
                    .get("dynamodb")
                    .and_then(|d| d.get("SequenceNumber"))
                    .and_then(Value::as_str);
                warn!(error = %why, sequence, "record failed; reported for retry");
                if let Some(seq) = sequence {
                    failures.push(json!({"itemIdentifier": seq}));
                }
            }
            RecordOutcome::Malformed(why) => {
                warn!(reason = %why, "malformed stream record skipped")
            }
            _ => {}
        }
        outcomes.push(outcome);
    }
    Ok((json!({"batchItemFailures": failures}), outcomes))
}
