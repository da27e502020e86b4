//! What the policy validator needs from outside besides policies: a conditional verdict write,
//! and operator alerts.

use std::future::Future;

use serde_json::Value;

use super::StoreError;
use crate::domain::user::Status;

/// Writes a verdict back to the users table.
pub trait VerdictWriter: Send + Sync {
    /// Sets `statusReason` and `validatedAt` (and `status` when given) only if every field of
    /// `seen` still holds the wire-format value it had in the validated image (`None`: absent).
    /// `Ok(false)` when a newer change got there first.
    fn write_verdict(
        &self,
        username: &str,
        seen: &[(&'static str, Option<serde_dynamo::AttributeValue>)],
        status: Option<Status>,
        reason: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Sends an operator alert (SNS on AWS).
pub trait Alerts: Send + Sync {
    fn alert(
        &self,
        subject: &str,
        message: &Value,
        attributes: &[(&str, &str)],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
