//! The policy-validator function's logic: a batch of DynamoDB stream records of the users table
//! in, one verdict per relevant change written back (conditionally), an alert per invalid user,
//! and the sequence numbers of transient failures out, so that only those are retried.
//!
//! Only changes to the fields that decide what a login may reach are validated; the verdict's own
//! fields (`status`, `statusReason`, `validatedAt`) are not among them, so the validator's writes
//! never make it run again.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use serde::Deserialize;
use serde_dynamo::{AttributeValue, Item};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::domain::policy_checks::{RecordRules, check_record, check_user};
use crate::domain::user::{Status, UserRecord, attr};
use crate::ports::error_chain;
use crate::ports::{Alerts, PolicySource, StoreError, VerdictWriter};

/// The attributes whose change is validated.
pub const VALIDATED_FIELDS: [&str; 9] = [
    attr::IAM_POLICY_ARN,
    attr::ROLE_ARN,
    attr::BUCKET,
    attr::HOME,
    attr::CHROOT,
    attr::HOME_DIRECTORY_TYPE,
    attr::HOME_DIRECTORY_DETAILS,
    attr::ALLOWED_IPS,
    attr::POSIX_PROFILE,
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
    record: &EventRecord,
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
    match record.event_name.as_str() {
        "REMOVE" => return RecordOutcome::Skipped("removed"),
        "INSERT" | "MODIFY" => {}
        _ => return RecordOutcome::Malformed("eventName is not INSERT, MODIFY or REMOVE".into()),
    }
    let new = &record.change.new_image;
    if new.is_empty() {
        return RecordOutcome::Malformed(
            "no NewImage (the stream must be NEW_AND_OLD_IMAGES)".into(),
        );
    }
    let old = &record.change.old_image;
    // An INSERT has no old image: everything in it is new.
    let changed = old.is_empty() || VALIDATED_FIELDS.iter().any(|f| old.get(*f) != new.get(*f));
    if !changed {
        return RecordOutcome::Skipped("no validated field changed");
    }
    let Some(AttributeValue::S(username)) = new.get(attr::USERNAME).cloned() else {
        return RecordOutcome::Malformed("NewImage has no string username".into());
    };
    let verdict = match judge(new, policies, rules).await {
        Ok(v) => v,
        Err(e) => return RecordOutcome::Transient(error_chain(&e)),
    };
    // The status is pinned too: an operator who disables the user while the checks run must
    // not see the verdict turn them active again.
    let seen: Vec<(&'static str, Option<AttributeValue>)> = VALIDATED_FIELDS
        .iter()
        .chain([&attr::STATUS])
        .map(|f| (*f, new.get(*f).cloned()))
        .collect();
    // An administrator's `disabled` stands; the validator only moves between active and invalid.
    let disabled = matches!(new.get(attr::STATUS), Some(AttributeValue::S(s)) if Status::parse(s) == Some(Status::Disabled));
    let (status, reason) = match &verdict {
        Ok(()) => (Status::Active, "ok".to_owned()),
        Err(reason) => (Status::Invalid, reason.clone()),
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
            let sequence = record.change.sequence_number.as_deref().unwrap_or("");
            let policy_arn = match new.get(attr::IAM_POLICY_ARN) {
                Some(AttributeValue::S(arn)) => Some(arn.as_str()),
                _ => None,
            };
            let message = json!({
                "user": username,
                "reason": reason,
                "sequenceNumber": sequence,
                "policyArn": policy_arn,
            });
            if let Err(e) = alerts
                .alert(
                    "ferry: a user failed validation",
                    &message,
                    &[("user", &username), ("verdict", Status::Invalid.as_str())],
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
    image: &Item,
    policies: &P,
    rules: &RecordRules,
) -> Result<Result<(), String>, StoreError> {
    match serde_dynamo::from_item::<_, Value>(image.clone()) {
        Ok(plain) => judge_record(plain, policies, rules).await,
        Err(e) => Ok(Err(format!("the item does not fit the data model: {e}"))),
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
    let mut response = DynamoDbEventResponse::default();
    let mut outcomes = Vec::with_capacity(records.len());
    for raw in records {
        // Each record is read on its own, so one malformed record is skipped, not the batch.
        let record = match EventRecord::deserialize(raw) {
            Ok(r) => r,
            Err(e) => {
                let outcome =
                    RecordOutcome::Malformed(format!("not a DynamoDB stream record: {e}"));
                warn!(reason = ?outcome, "malformed stream record skipped");
                outcomes.push(outcome);
                continue;
            }
        };
        let outcome = process_record(&record, policies, writer, alerts, rules, now).await;
        match &outcome {
            RecordOutcome::Transient(why) => {
                let sequence = record.change.sequence_number.clone();
                warn!(error = %why, sequence, "record failed; reported for retry");
                if sequence.is_some() {
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = sequence;
                    response.batch_item_failures.push(failure);
                }
            }
            RecordOutcome::Malformed(why) => {
                warn!(reason = %why, "malformed stream record skipped")
            }
            _ => {}
        }
        outcomes.push(outcome);
    }
    let answer = serde_json::to_value(&response).map_err(|e| e.to_string())?;
    Ok((answer, outcomes))
}
